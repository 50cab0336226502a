"""``python -m energysched.lab.perf`` / ``make perf``: arguments, run, write the results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from energysched.lab.perf import __doc__ as PERF_DOC
from energysched.lab.perf.common import ENERGYSCHED, KUBE_SCHEDULER
from energysched.lab.perf.report import write_results
from energysched.lab.perf.run import benchmark


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m energysched.lab.perf", description=(PERF_DOC or "").split("\n")[0]
    )
    ap.add_argument("--nodes", type=int, default=1000, help="generated KWOK nodes (default 1000)")
    ap.add_argument("--pods", type=int, default=5000, help="pods per burst (default 5000)")
    ap.add_argument("--qps", type=float, default=50.0, help="client QPS of both schedulers")
    ap.add_argument("--burst", type=int, default=100, help="client burst of both schedulers")
    ap.add_argument("--concurrency", type=int, default=50, help="pod creates in flight")
    ap.add_argument("--out", default="results/perf.json")
    ap.add_argument("--benchmarks-md", default="BENCHMARKS.md", help="'' to skip")
    ap.add_argument("--cluster-name", default="perf")
    ap.add_argument("--keep-cluster", action="store_true", help="leave the cluster running")
    ap.add_argument(
        "--schedulers",
        nargs="+",
        choices=(KUBE_SCHEDULER, ENERGYSCHED),
        default=[KUBE_SCHEDULER, ENERGYSCHED],
        help="which bursts to run, in this order",
    )
    ap.add_argument("--run-timeout", type=float, default=0.0, help="s per burst (0: auto)")
    ap.add_argument("--log-level", default="info", help="energysched's log level")
    ap.add_argument(
        "--no-leader-election",
        action="store_true",
        help="run energysched without leader election (the local kube-scheduler has none)",
    )
    ap.add_argument("--profile", default="", help="run energysched under cProfile, stats here")
    ap.add_argument("--no-core-bench", action="store_true", help="skip energysched.lab.microbench")
    ap.add_argument("--note", action="append", default=[], help="a note for BENCHMARKS.md")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.run_timeout <= 0:
        args.run_timeout = max(300.0, 4 * args.pods / max(args.qps, 1.0))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = benchmark(args)
    result["notes"] = list(args.note)
    md = Path(args.benchmarks_md) if args.benchmarks_md else None
    write_results(result, Path(args.out), md)
    runs = result.get("runs") or {}
    return 0 if runs and all(r["complete"] for r in runs.values()) else 1
