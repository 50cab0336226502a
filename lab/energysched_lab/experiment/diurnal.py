"""The daily shape of a trace's arrivals: relative arrival rate per hour of the day.

Reads a pod list in the Alibaba GPU cluster trace 2023's columns (``creation_time`` in
seconds from the trace's start) and prints 24 hourly weights, the share of arrivals
in each hour of the day, for a scenario's ``arrivals.hourlyWeights``::

    python -m energysched_lab.experiment.diurnal openb_pod_list_default.csv --shift 8

The trace does not say which clock hour its time zero is, so the hour of the day is
``creation_time mod 86400``; ``--shift`` rotates the day (the scenario's hour h is the
trace's hour h + shift) and is stated wherever the shape is used. ``--since`` skips the
sparse first weeks (a few long-running pods) before the trace's dense part.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path


def hourly_weights(path: Path, shift: int, since: float) -> tuple[list[float], int]:
    counts = [0] * 24
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            t = float(row["creation_time"])
            if t >= since:
                counts[int(t % 86400) // 3600] += 1
    total = sum(counts)
    if total == 0:
        raise ValueError(f"{path}: no rows with creation_time >= {since:g}")
    shifted = [counts[(h + shift) % 24] for h in range(24)]
    return [round(24 * c / total, 3) for c in shifted], total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pod_list", type=Path, help="a CSV with a creation_time column (seconds)")
    ap.add_argument("--shift", type=int, default=0, help="scenario hour h = trace hour h+shift")
    ap.add_argument("--since", type=float, default=0.0, help="only rows created from then on")
    args = ap.parse_args(argv)
    weights, n = hourly_weights(args.pod_list, args.shift % 24, args.since)
    shift = args.shift % 24
    print(f"# {n} arrivals from {args.pod_list.name}, shift {shift} h, since {args.since:g} s")
    print(f"hourlyWeights: [{', '.join(f'{w:g}' for w in weights)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
