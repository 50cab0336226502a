"""The stage code the workflow's image runs on real nodes (numpy only).

Each stage runs the benchmark kernel of its workload type (energysched_bench,
standard sizes) until it has done the amount of work ``pipeline.PIPELINE``
states, in the kernel's units — the units of the EnergyProfiles — so a measured
duration can be compared with the knowledge base's prediction. On the simulated
(KWOK) cluster no container runs: there the experiment derives durations from
the profiles instead.
"""

from __future__ import annotations

import time

from energysched_bench.kernels import CPU_KERNELS, STANDARD
from energysched_mlworkflow.pipeline import PIPELINE, Stage

STAGES: dict[str, Stage] = {stage.name: stage for stage in PIPELINE}


def run(stage_name: str, work: float | None = None) -> float:
    """Run a stage (``work`` units, default the pipeline's); returns its wall time in s."""
    stage = STAGES[stage_name]
    step = CPU_KERNELS[stage.workload_type](STANDARD)
    target = stage.work if work is None else work
    done = 0.0
    t0 = time.perf_counter()
    while done < target:
        done += step()
    return time.perf_counter() - t0
