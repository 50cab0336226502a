"""Writes a SYNTHETIC node list and pod list in the Alibaba GPU trace 2023's columns.

Not the trace: every row is drawn here from stated distributions (seeded), so the
project can ship and test the "trace + node list" format without the real files.
The node mix follows the trace's model names (G1/G2/G3, V100M16/M32, P100, T4, A10,
CPU-only); its shares are made up. ::

    python -m energysched_lab.experiment.synthetic_trace kb/scenarios/gpu-trace-1500 \\
        --nodes 1523 --pods 8152 --days 8 --seed 7
"""

from __future__ import annotations

import argparse
import csv
import math
import random
from collections.abc import Sequence
from pathlib import Path

NODE_FILE = "openb_node_list_all_node.csv"
POD_FILE = "openb_pod_list_default.csv"

#: (model, gpus, cpu_milli, memory_mib, share of the nodes): made-up shares.
NODE_MIX: tuple[tuple[str, int, int, int, float], ...] = (
    ("", 0, 96000, 393216, 0.20),
    ("G1", 8, 96000, 786432, 0.22),
    ("G2", 8, 96000, 786432, 0.18),
    ("G3", 4, 64000, 393216, 0.04),
    ("V100M16", 8, 96000, 393216, 0.10),
    ("V100M32", 8, 96000, 786432, 0.08),
    ("P100", 2, 64000, 262144, 0.06),
    ("T4", 2, 64000, 262144, 0.08),
    ("A10", 1, 32000, 131072, 0.04),
)
GPU_SPECS = ("V100M16|V100M32", "T4", "A10", "P100", "G2|G3")


def _counts(total: int) -> list[int]:
    """Largest remainder: the shares of NODE_MIX as integers summing to ``total``."""
    raw = [total * m[4] for m in NODE_MIX]
    counts = [math.floor(r) for r in raw]
    order = sorted(range(len(raw)), key=lambda i: raw[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def node_rows(total: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for (model, gpu, cpu, mem, _), n in zip(NODE_MIX, _counts(total), strict=True):
        for _ in range(n):
            rows.append(
                {
                    "sn": f"synthetic-node-{len(rows):04d}",
                    "cpu_milli": cpu,
                    "memory_mib": mem,
                    "gpu": gpu,
                    "model": model,
                }
            )
    return rows


def pod_rows(count: int, days: float, seed: int) -> list[dict[str, object]]:
    rng = random.Random(seed)
    created = sorted(rng.uniform(0, days * 86400) for _ in range(count))
    rows: list[dict[str, object]] = []
    for i, t in enumerate(created):
        kind = rng.random()
        num_gpu, gpu_milli, spec = 0, 0, ""
        if kind < 0.30:  # CPU only
            cpu = rng.choice((500, 1000, 2000, 4000, 8000, 16000))
            mem = cpu * rng.choice((2, 4, 8))
        else:
            if kind < 0.45:  # a share of one GPU
                num_gpu, gpu_milli = 1, rng.choice((100, 200, 250, 500))
            else:
                num_gpu = rng.choices((1, 2, 4, 8), weights=(60, 15, 10, 15))[0]
                gpu_milli = 1000
            cpu = min(32000, 4000 * num_gpu)
            mem = min(131072, 16384 * num_gpu)
            if rng.random() < 0.15:
                spec = rng.choice(GPU_SPECS)
        never_ran = rng.random() < 0.03
        start = t + rng.uniform(0, 60)
        duration = min(2 * 86400.0, rng.lognormvariate(math.log(7200), 1.0))
        rows.append(
            {
                "name": f"synthetic-pod-{i:05d}",
                "cpu_milli": cpu,
                "memory_mib": mem,
                "num_gpu": num_gpu,
                "gpu_milli": gpu_milli,
                "gpu_spec": spec,
                "qos": rng.choice(("LS", "BE", "Burstable")),
                "pod_phase": "Pending" if never_ran else "Succeeded",
                "creation_time": round(t),
                "deletion_time": "" if never_ran else round(start + duration),
                "scheduled_time": "" if never_ran else round(start),
            }
        )
    return rows


def write(path: Path, rows: Sequence[dict[str, object]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("out", type=Path, help="directory for the two CSV files")
    p.add_argument("--nodes", type=int, default=1523)
    p.add_argument("--pods", type=int, default=8152)
    p.add_argument("--days", type=float, default=8.0, help="creation times span this many days")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    if args.nodes < 1 or args.pods < 1 or args.days <= 0:
        p.error("--nodes, --pods and --days must be positive")
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / NODE_FILE, node_rows(args.nodes))
    write(args.out / POD_FILE, pod_rows(args.pods, args.days, args.seed))
    print(f"wrote {args.nodes} nodes and {args.pods} pods (SYNTHETIC) to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
