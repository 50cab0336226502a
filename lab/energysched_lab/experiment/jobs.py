"""The concrete jobs of one run: a workload plus a seed gives arrivals, work and noise."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from energysched.contract import WorkloadType
from energysched_lab.experiment.scenario import Scenario
from energysched_lab.experiment.tracelist import GPU_MILLI

# Labels of the experiment's Jobs and Pods (a DNS prefix: never rename, results refer to it).
RUN_LABEL = "energysched.lab.experiment/run"
JOB_LABEL = "energysched.lab.experiment/job"
STAGE_LABEL = "energysched.lab.experiment/stage"


@dataclass(frozen=True)
class Job:
    id: str  # DNS label, unique in the run: "wf03-training", "j0007"
    stage: str
    workload_type: WorkloadType
    work: float
    #: Release time (s) for a first stage or a trace job; successors start when ``after`` ends.
    arrival_s: float
    after: str | None
    cpu: str
    memory: str
    gpu: int
    #: Realised run-to-run variation: the job runs at performance x this (truth.runNoise).
    speed_noise: float = 1.0
    workflow: int | None = None
    #: Extended resources requested besides cpu, memory, nvidia.com/gpu (name, quantity).
    extra_requests: tuple[tuple[str, str], ...] = ()
    #: Required GPU models (a trace's gpu_spec; node affinity), empty: any node.
    gpu_models: tuple[str, ...] = ()
    #: Units (GPUs, cores) of the truth's per-unit figures the job occupies (trace jobs).
    units: float = 1.0


def instantiate(scenario: Scenario, seed: int) -> list[Job]:
    """The run's jobs. Same scenario and seed, same jobs (arrivals, work, noise)."""
    rng = random.Random(f"{scenario.name}:{seed}")
    wl = scenario.workload
    noise = scenario.truth.run_noise

    def speed() -> float:
        return math.exp(rng.gauss(0.0, noise)) if noise > 0 else 1.0

    jobs: list[Job] = []
    if wl.kind == "jobs":
        for tj in wl.jobs:
            jobs.append(
                Job(
                    id=tj.name,
                    stage=tj.name,
                    workload_type=tj.workload_type,
                    work=tj.work,
                    arrival_s=tj.arrival_s,
                    after=None,
                    cpu=f"{tj.cpu_milli}m",
                    memory=f"{tj.memory_mib}Mi",
                    gpu=tj.num_gpu,
                    speed_noise=speed(),
                    extra_requests=((GPU_MILLI, str(tj.gpu_milli)),) if tj.gpu_milli else (),
                    gpu_models=tj.gpu_models,
                    units=tj.units,
                )
            )
        return jobs
    t = 0.0
    arrivals = diurnal_arrivals(wl.per_day, wl.hourly_weights, wl.count, rng)
    count = len(arrivals) if wl.process == "diurnal" else wl.count
    width = max(2, len(str(count - 1)))
    for w in range(count):
        if wl.process == "diurnal":
            t = arrivals[w]
        elif w > 0:
            t += (
                rng.expovariate(1.0 / wl.interval_s)
                if wl.process == "poisson" and (wl.interval_s > 0)
                else wl.interval_s
            )
        scale = math.exp(rng.gauss(0.0, wl.work_jitter)) if wl.work_jitter > 0 else 1.0
        prev: str | None = None
        for st in wl.stages:
            jid = st.name if count == 1 else f"wf{w:0{width}d}-{st.name}"
            jobs.append(
                Job(
                    id=jid,
                    stage=st.name,
                    workload_type=st.workload_type,
                    work=st.work * scale,
                    arrival_s=round(t, 3),
                    after=prev,
                    cpu=st.cpu,
                    memory=st.memory,
                    gpu=st.gpu,
                    speed_noise=speed(),
                    workflow=w,
                )
            )
            prev = jid
    return jobs


def diurnal_arrivals(
    per_day: float, weights: tuple[float, ...], limit: int, rng: random.Random
) -> list[float]:
    """Arrival times over one day (s): a Poisson process whose rate in hour h is
    ``per_day x weights[h] / sum(weights)`` per hour; at most ``limit`` arrivals.
    Empty unless the workload's arrivals are diurnal (no weights)."""
    if not weights or per_day <= 0:
        return []
    total = sum(weights)
    out: list[float] = []
    for hour, weight in enumerate(weights):
        rate = per_day * weight / total / 3600.0  # per second
        if rate <= 0:
            continue
        t = hour * 3600.0
        while True:
            t += rng.expovariate(rate)
            if t >= (hour + 1) * 3600.0:
                break
            out.append(round(t, 3))
    return sorted(out)[:limit]
