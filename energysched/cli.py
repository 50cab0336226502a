"""The ``energysched`` command: one entry point, one subcommand per concern.

Each subcommand's module is imported only when it runs, so ``energysched
cluster status`` does not pay for importing kopf or numpy.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from typing import Any

from energysched.kb.commands import add_parsers as add_kb_parsers
from energysched.scheduler.commands import add_parsers as add_scheduler_parsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="energysched",
        description="Energy-aware scheduling for heterogeneous Kubernetes clusters.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # The product image ships without the lab (local cluster, experiment): its
    # commands exist only where energysched.lab is installed (a checkout).
    has_lab = importlib.util.find_spec("energysched.lab") is not None
    if has_lab:
        from energysched.lab.cluster.commands import add_cluster_parser

        add_cluster_parser(sub)
    add_scheduler_parsers(sub)
    if has_lab:
        from energysched.lab.experiment import add_parser as add_experiment_parser

        add_experiment_parser(sub)
    add_kb_parsers(sub)
    _add_monitor_parser(sub)
    return parser


def _add_monitor_parser(sub: Any) -> None:
    p = sub.add_parser(
        "monitor",
        help="the energy monitor (DaemonSet process, or --model for simulated nodes)",
        add_help=False,
    )
    p.add_argument("args", nargs=argparse.REMAINDER)  # handled in main()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["monitor"]:  # the monitor parses its own options
        from energysched_monitor.cli import main as monitor_main

        return int(monitor_main(argv[1:]) or 0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
