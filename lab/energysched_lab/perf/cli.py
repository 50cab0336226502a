"""``python -m energysched_lab.perf`` / ``make perf``: arguments, run, write the results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from energysched_lab.perf import __doc__ as PERF_DOC
from energysched_lab.perf.common import ENERGYSCHED, KUBE_SCHEDULER
from energysched_lab.perf.report import write_results
from energysched_lab.perf.run import benchmark

DEFAULT_LIMITS = ("50:100", "5000:10000")


def _limit(text: str) -> tuple[float, int]:
    try:
        qps, burst = text.split(":")
        value = (float(qps), int(burst))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected QPS:BURST such as 50:100, got {text!r}"
        ) from None
    if value[0] <= 0 or value[1] < 1:
        raise argparse.ArgumentTypeError(f"QPS must be > 0 and burst >= 1, got {text!r}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m energysched_lab.perf", description=(PERF_DOC or "").split("\n")[0]
    )
    ap.add_argument("--nodes", type=int, default=1000, help="generated KWOK nodes (default 1000)")
    ap.add_argument("--pods", type=int, default=5000, help="pods per run (default 5000)")
    ap.add_argument(
        "--mode",
        choices=("backlog", "stream"),
        default="backlog",
        help="backlog (default): all pods created before the scheduler starts, then drained; "
        "stream: the scheduler runs while its pods are created",
    )
    ap.add_argument(
        "--limits",
        nargs="+",
        type=_limit,
        default=[_limit(x) for x in DEFAULT_LIMITS],
        metavar="QPS:BURST",
        help="client limits of both schedulers, one set of runs each (default: "
        + " ".join(DEFAULT_LIMITS)
        + ": kube-scheduler's default, and well above what either reaches)",
    )
    ap.add_argument("--qps", type=float, help="one client limit: QPS (with --burst)")
    ap.add_argument("--burst", type=int, help="one client limit: burst (with --qps)")
    ap.add_argument(
        "--modes",
        nargs="+",
        choices=("normalized", "hybrid", "static-raw"),
        default=["normalized", "hybrid"],
        help="energysched scoring modes, one run each (default: normalized hybrid)",
    )
    ap.add_argument(
        "--monitor",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the monitor's model mode for live readings on every node throughout "
        "(auto: when hybrid is among --modes)",
    )
    ap.add_argument(
        "--monitor-writes", type=float, default=100.0, help="monitor writes/s budget (at least)"
    )
    ap.add_argument(
        "--monitor-heartbeat", type=float, default=120.0, help="s between a node's readings"
    )
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
        help="which schedulers to run, in this order (energysched once per --modes)",
    )
    ap.add_argument("--run-timeout", type=float, default=0.0, help="s per run (0: auto)")
    ap.add_argument("--log-level", default="info", help="energysched's log level")
    ap.add_argument(
        "--no-leader-election",
        action="store_true",
        help="run energysched without leader election (the local kube-scheduler has none)",
    )
    ap.add_argument(
        "--profile",
        default="",
        help="run energysched under cProfile: FILE.prof gives FILE-<run>.prof and .txt per run",
    )
    ap.add_argument("--no-core-bench", action="store_true", help="skip energysched_lab.microbench")
    ap.add_argument("--note", action="append", default=[], help="a note for BENCHMARKS.md")
    args = ap.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    if args.qps is not None or args.burst is not None:
        args.limits = [(args.qps or 50.0, args.burst or 100)]
    if args.run_timeout <= 0:
        slowest = min(q for q, _ in args.limits)
        args.run_timeout = max(300.0, 4 * args.pods / max(slowest, 1.0))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result = benchmark(args)
    result["notes"] = list(args.note)
    md = Path(args.benchmarks_md) if args.benchmarks_md else None
    write_results(result, Path(args.out), md)
    runs = [r for by_limit in (result.get("runs") or {}).values() for r in by_limit.values()]
    return 0 if runs and all(r["complete"] for r in runs) else 1
