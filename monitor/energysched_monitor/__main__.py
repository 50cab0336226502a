"""``python -m energysched_monitor``."""

import sys

from energysched_monitor.cli import main

sys.exit(main())
