"""``python -m energysched.lab.perf``."""

import sys

from energysched.lab.perf.cli import main

sys.exit(main())
