"""Placeholder replaced below in this change set."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def main(args: argparse.Namespace, scenario: Any, specs: Sequence[Any]) -> int:
    raise SystemExit("the real-cluster mode is not implemented yet")
