"""``python -m energysched_lab.perf``."""

import sys

from energysched_lab.perf.cli import main

sys.exit(main())
