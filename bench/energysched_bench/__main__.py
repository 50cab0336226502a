"""``python -m energysched_bench``: run the kernels on this machine and print the figures.

With ``--json`` the result document is printed to stdout between marker lines
(what the bench Job's log is parsed for); progress and the table go to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace

from energysched_bench import power
from energysched_bench.result import format_result

WORKLOADS = ("training", "inference", "sequential")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m energysched_bench",
        description="Benchmark kernels for the training, inference and sequential workload "
        "types; energy per unit when a power source is available.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print the result document (between marker lines) to stdout",
    )
    p.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="comma-separated subset of %(default)s"
    )
    p.add_argument("--repeats", type=int, default=5, help="timed repeats (default %(default)s)")
    p.add_argument(
        "--seconds",
        type=float,
        default=0.5,
        help="minimum seconds per repeat (default %(default)s)",
    )
    p.add_argument(
        "--warmup", type=float, default=0.3, help="warm-up seconds per kernel (default %(default)s)"
    )
    p.add_argument(
        "--size",
        choices=("standard", "tiny"),
        default="standard",
        help="kernel sizes; only 'standard' results become profiles",
    )
    p.add_argument(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="float type of the MLP kernels (standard: float32)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS threads (sets OPENBLAS_NUM_THREADS/OMP_NUM_THREADS before numpy "
        "loads; default: BLAS's own choice, all CPUs)",
    )
    p.add_argument("--no-gpu", action="store_true", help="do not try the PyTorch/CUDA kernels")
    p.add_argument(
        "--power",
        default="auto",
        choices=("auto", "none", "shelly", "rapl", "monitor"),
        help="power source (auto: shelly if --shelly-url, else rapl if readable, "
        "else none = energy not measured)",
    )
    p.add_argument("--shelly-url", help="base URL of the node's Shelly plug, e.g. http://10.0.0.5")
    p.add_argument(
        "--shelly-user", help="Gen1 HTTP Basic auth user (default admin with a password)"
    )
    p.add_argument(
        "--shelly-password-file",
        metavar="PATH",
        help="Gen1 HTTP Basic auth password: the file's first line (a mounted Secret; "
        "what `energysched bench run --shelly-password-secret` mounts)",
    )
    p.add_argument(
        "--shelly-password",
        help="the password itself, for a run by hand: it shows in the process list, "
        "prefer --shelly-password-file",
    )
    p.add_argument(
        "--idle-seconds",
        type=float,
        default=3.0,
        help="idle power measurement before the kernels, with a power source",
    )
    p.add_argument("--node", help="node name to report (default: $NODE_NAME, else host name)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    unknown = [w for w in workloads if w not in WORKLOADS]
    if unknown:
        print(
            f"unknown workload(s) {', '.join(unknown)}; allowed: {', '.join(WORKLOADS)}",
            file=sys.stderr,
        )
        return 2
    if args.threads is not None:
        if "numpy" in sys.modules:
            print(
                "warning: numpy is already loaded; --threads may not take effect", file=sys.stderr
            )
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    # numpy loads here, after the thread count is set.
    from energysched_bench import kernels
    from energysched_bench.runner import RunOptions, render, run_all

    config = kernels.STANDARD if args.size == "standard" else kernels.TINY
    if args.dtype:
        config = replace(config, dtype=args.dtype)
    try:
        password = _password(args.shelly_password, args.shelly_password_file)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"--shelly-password-file: cannot read it: {exc}", file=sys.stderr)
        return 2
    # A Gen1 plug's user is "admin" unless it was renamed.
    user = args.shelly_user or ("admin" if password is not None else None)
    auth = (user, password or "") if user else None
    try:
        source = power.choose_source(args.power, shelly_url=args.shelly_url, shelly_auth=auth)
    except ValueError as exc:
        print(f"power source: {exc}", file=sys.stderr)
        return 2
    options = RunOptions(
        config=config,
        workloads=workloads,
        repeats=args.repeats,
        seconds=args.seconds,
        warmup_seconds=args.warmup,
        gpu=not args.no_gpu,
        idle_seconds=args.idle_seconds,
        node=args.node,
    )
    doc = run_all(options, source, progress=lambda m: print(m, file=sys.stderr, flush=True))
    table = render(doc)
    if args.json:
        print(table, file=sys.stderr, flush=True)
        sys.stdout.write(format_result(doc))
        sys.stdout.flush()
    else:
        print(table)
    return 0


def _password(given: str | None, path: str | None) -> str | None:
    """The password from the file (first line, no newline), else as given, else None."""
    if path is None:
        return given
    with open(path, encoding="utf-8") as f:
        return f.readline().rstrip("\r\n")


if __name__ == "__main__":
    sys.exit(main())
