"""A mounted file (a ConfigMap volume) re-read when its content changes.

ConfigMap volumes update by swapping a symlink, so the content's hash (not the
mtime) decides whether the file changed. An invalid new version never replaces
the last good value: :meth:`WatchedFile.poll` raises the parser's error and the
caller keeps what it has. Every process that reloads a config file uses it (the
scheduler's ConfigSource, the monitor's ConfigStore).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class WatchedFile(Generic[T]):
    def __init__(self, path: Path, parse: Callable[[bytes], T]) -> None:
        self.path = path
        self.parse = parse
        self.value: T | None = None
        #: Why the last poll did not give a new value (unreadable file), else None.
        self.unreadable: str | None = None
        self._digest = ""

    def load(self) -> T:
        """The first read: any error is the caller's to report (there is no last good value)."""
        data = self.path.read_bytes()
        self._digest = hashlib.sha256(data).hexdigest()
        self.value = self.parse(data)
        return self.value

    def poll(self) -> T | None:
        """The new value when the content changed and parses; None when unchanged or
        unreadable; the parser's exception when the new content is invalid (asked once
        per distinct content: an unchanged invalid file is not reported again)."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self.unreadable = f"{self.path}: {exc.strerror or exc}"
            return None
        self.unreadable = None
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return None
        self._digest = digest
        self.value = self.parse(data)
        return self.value
