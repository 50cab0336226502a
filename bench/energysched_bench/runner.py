"""Timing of the kernels and the result document.

Each kernel: warm-up, then ``repeats`` timed repeats of at least ``seconds``
each; the rate of every repeat is recorded, the median and the spread (IQR and
min/max) reported. Energy is measured across all timed repeats of a kernel when
a power source is given; otherwise watts and joules per unit are None.

Depends on numpy and the standard library only (it runs in the bench image on
every architecture), never on the energysched package.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from energysched_bench import kernels, sysinfo
from energysched_bench.kernels import STANDARD, KernelConfig, Step
from energysched_bench.power import EnergyReading, PowerSource
from energysched_bench.result import SCHEMA

WORKLOADS: tuple[str, ...] = ("training", "inference", "sequential")
#: Environment variables that set the BLAS thread count (recorded in the result).
BLAS_THREAD_VARS: tuple[str, ...] = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
#: A 1-minute load average above this fraction of the CPUs marks the run as disturbed:
#: multithreaded BLAS collapses when its threads share cores with other work.
BUSY_LOAD_FRACTION = 0.25
#: GPU variants of these workloads are tried when PyTorch with CUDA is importable.
GPU_WORKLOADS: tuple[str, ...] = ("training", "inference")


@dataclass(frozen=True, slots=True)
class RunOptions:
    config: KernelConfig = STANDARD
    workloads: tuple[str, ...] = WORKLOADS
    repeats: int = 5
    #: Minimum duration of one timed repeat.
    seconds: float = 0.5
    warmup_seconds: float = 0.3
    gpu: bool = True
    #: Idle power measured before the kernels (only with a power source; 0 = skip).
    idle_seconds: float = 3.0
    node: str | None = None
    clock: Callable[[], float] = field(default=time.perf_counter)


def timed_rates(
    step: Step,
    *,
    repeats: int,
    seconds: float,
    warmup_seconds: float,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[list[float], float, float]:
    """Rates (units/s) of each repeat, total units and total seconds of the timed part."""
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    start = clock()
    step()  # at least one warm-up step, even with warmup_seconds 0
    while clock() - start < warmup_seconds:
        step()
    rates: list[float] = []
    total_units = total_seconds = 0.0
    for _ in range(repeats):
        units = 0.0
        t0 = clock()
        while True:
            units += step()
            elapsed = clock() - t0
            if elapsed >= seconds:
                break
        rates.append(units / elapsed)
        total_units += units
        total_seconds += elapsed
    return rates, total_units, total_seconds


def spread(rates: Sequence[float]) -> dict[str, float]:
    """Median, quartiles (inclusive method) and range."""
    ordered = sorted(rates)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "q1": q1,
        "q3": q3,
        "min": ordered[0],
        "max": ordered[-1],
    }


def run_kernel(
    name: str,
    workload: str,
    device: str,
    make_step: Callable[[], Step],
    options: RunOptions,
    source: PowerSource | None,
) -> dict[str, Any]:
    """Run one kernel; an unavailable kernel (GPU) is reported, not raised."""
    entry: dict[str, Any] = {
        "name": name,
        "workload": workload,
        "device": device,
        "unit": kernels.UNITS[workload],
        "config": options.config.describe(workload),
    }
    try:
        step = make_step()
    except kernels.GpuUnavailable as exc:
        entry.update(available=False, reason=str(exc))
        return entry
    step()  # first call outside the power window: allocations, lazy init
    reading: EnergyReading | None = None
    if source is not None:
        source.start()
    try:
        rates, units, seconds = timed_rates(
            step,
            repeats=options.repeats,
            seconds=options.seconds,
            warmup_seconds=options.warmup_seconds,
            clock=options.clock,
        )
    finally:
        if source is not None:
            reading = source.stop()
    stats = spread(rates)
    entry.update(
        available=True,
        reason=None,
        median=stats["median"],
        spread={k: stats[k] for k in ("q1", "q3", "min", "max")},
        repeats=len(rates),
        rates=rates,
        seconds=seconds,
        units=units,
        power_source=source.name if source is not None and reading is not None else None,
        power_scope=source.scope if source is not None and reading is not None else None,
        watts=reading.watts if reading is not None else None,
        # Average power over the run divided by the reported rate, so that
        # 1 / joules_per_unit equals median / watts, the profile's efficiency.
        joules_per_unit=(reading.watts / stats["median"]) if reading is not None else None,
        power_coverage=reading.coverage if reading is not None else None,
    )
    if source is not None and reading is None:
        entry["power_note"] = f"{source.describe()} gave no reading; energy not measured"
    return entry


def measure_idle(source: PowerSource, seconds: float) -> dict[str, Any] | None:
    source.start()
    time.sleep(seconds)
    reading = source.stop()
    if reading is None:
        return None
    return {"watts": reading.watts, "seconds": reading.seconds, "coverage": reading.coverage}


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on Linux
        return None


def busy_warning(doc: dict[str, Any]) -> str | None:
    """A warning when the machine was busy before the run (figures not representative)."""
    load = doc.get("loadavg_before")
    cpus = doc.get("cpu_count") or 1
    if isinstance(load, int | float) and load > BUSY_LOAD_FRACTION * cpus:
        return (
            f"warning: the machine was busy before the run (1-min load {load:g} on {cpus} "
            "CPUs); multithreaded figures are not representative of an idle node"
        )
    return None


def _gpu_name() -> str | None:
    try:
        return kernels.gpu_name()
    except kernels.GpuUnavailable:
        return None


def run_all(
    options: RunOptions,
    source: PowerSource | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the kernels and return the result document."""
    say = progress or (lambda _msg: None)
    cpu = sysinfo.cpu_info()
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "node": options.node or sysinfo.node_name(),
        "arch": platform.machine(),
        "cpu_model": cpu.model,
        "avx": cpu.avx,
        "cpu_count": sysinfo.cpu_count(),
        "gpu": _gpu_name() if options.gpu else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "config": options.config.as_dict(),
        "standard_config": options.config == STANDARD,
        "repeats": options.repeats,
        "seconds_per_repeat": options.seconds,
        "blas_threads_env": {k: os.environ[k] for k in BLAS_THREAD_VARS if k in os.environ},
        "loadavg_before": _loadavg(),
        "power_source": source.name if source is not None else None,
        "power_scope": source.scope if source is not None else None,
        "idle": None,
        "kernels": [],
    }
    if source is not None and options.idle_seconds > 0:
        say(f"idle power: {source.describe()} for {options.idle_seconds:g} s")
        doc["idle"] = measure_idle(source, options.idle_seconds)
    for workload in options.workloads:
        say(f"{workload} (cpu): {options.config.describe(workload)}")
        doc["kernels"].append(
            run_kernel(
                f"{workload}-cpu",
                workload,
                "cpu",
                partial(kernels.CPU_KERNELS[workload], options.config),
                options,
                source,
            )
        )
        if options.gpu and workload in GPU_WORKLOADS:
            say(f"{workload} (gpu)")
            doc["kernels"].append(
                run_kernel(
                    f"{workload}-gpu",
                    workload,
                    "gpu",
                    partial(kernels.gpu_step, workload, options.config),
                    options,
                    source,
                )
            )
    doc["loadavg_after"] = _loadavg()
    doc["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return doc


def render(doc: dict[str, Any]) -> str:
    """The figures as a small text table."""
    lines = [
        f"node {doc['node']}  arch {doc['arch']}  cpu {doc['cpu_model'] or '?'}  "
        f"avx {'yes' if doc['avx'] else 'no'}  cpus {doc['cpu_count']}  "
        f"python {doc['python']}  numpy {doc['numpy']}",
        f"power source: {doc['power_source'] or 'none (energy not measured)'}"
        + (f" [{doc['power_scope']}]" if doc.get("power_scope") else ""),
    ]
    if doc.get("idle"):
        lines.append(f"idle: {doc['idle']['watts']:.2f} W")
    warning = busy_warning(doc)
    if warning:
        lines.append(warning)
    lines.append(
        f"{'KERNEL':<16}{'MEDIAN':>14} {'UNIT':<10}{'IQR':>22}{'MIN..MAX':>24}"
        f"{'W':>9}{'J/UNIT':>12}"
    )
    for k in doc["kernels"]:
        if not k.get("available"):
            lines.append(f"{k['name']:<16}{'not available':>14} ({k.get('reason')})")
            continue
        s = k["spread"]
        watts = f"{k['watts']:.2f}" if k.get("watts") is not None else "-"
        jpu = f"{k['joules_per_unit']:.4g}" if k.get("joules_per_unit") is not None else "-"
        lines.append(
            f"{k['name']:<16}{k['median']:>14.4g} {k['unit']:<10}"
            f"{s['q1']:>10.4g}..{s['q3']:<10.4g}{s['min']:>11.4g}..{s['max']:<11.4g}"
            f"{watts:>9}{jpu:>12}"
        )
    return "\n".join(lines)
