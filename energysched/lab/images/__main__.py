"""``python -m energysched.lab.images``: build (and optionally push) the images."""

from __future__ import annotations

import os
import sys

from energysched.lab.images.build import main

os.umask(0o022)
sys.exit(main())
