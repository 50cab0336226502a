"""Where the lab keeps what it builds (control plane, node binaries, images, tools).

One root, one variable: ``$ENERGYSCHED_CACHE``, else ``$XDG_CACHE_HOME/energysched``,
else ``~/.cache/energysched``. Each builder keeps its own directory below it
(``controlplane/``, ``node/``, ``images/``, ``quantity/``), so pointing the variable
at an empty directory gives a cold build of everything.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("ENERGYSCHED_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "energysched"
