"""``python -m energysched_lab.images``: build (and optionally push) the images."""

from __future__ import annotations

import os
import sys

from energysched_lab.images.build import main

os.umask(0o022)
sys.exit(main())
