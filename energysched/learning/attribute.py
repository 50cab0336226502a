"""The energy of every pod on a node, from the node's published power.

Method (per node, over every stretch where neither the running pods nor the reading
change):

- power above idle, ``max(P - idle, 0)``, is shared among the running pods in proportion
  to their *modelled* dynamic draw: ``speed x (working power - idle)`` from the
  knowledge base (learned or spec), speed from the sharing model (a pod slowed by
  others draws less);
- idle power is shared equally, by time, among the pods running then (an empty node's
  idle energy belongs to no pod).

So the pods' energies add up to the node's measured energy while it ran pods: the
model only decides the split, the plug decides the total. The error of the method is
measured on the simulator, where the truth is known (``energysched_lab.experiment.learning``).
A stretch the readings do not cover (a gap longer than ``max_gap``) gives its pods no
figure rather than a guess.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from energysched.contract import WorkloadType
from energysched.learning.observe import DEFAULT_DEMAND


@dataclass(frozen=True, slots=True)
class PodRun:
    key: str
    workload_type: WorkloadType | None
    start: float
    end: float
    #: The modelled draw above idle at full speed (working power - idle), watts.
    dynamic_watts: float


@dataclass(frozen=True, slots=True)
class PodEnergy:
    key: str
    dynamic_joules: float
    idle_joules: float

    @property
    def joules(self) -> float:
        return self.dynamic_joules + self.idle_joules


def _reading_at(
    readings: Sequence[tuple[float, float]], t: float, until: float, max_gap: float
) -> float | None:
    """The published value holding over [t, until) (binary search); None when it would be
    held longer than ``max_gap`` by then, or there is none."""
    lo, hi = 0, len(readings)
    while lo < hi:
        mid = (lo + hi) // 2
        if readings[mid][0] <= t:
            lo = mid + 1
        else:
            hi = mid
    if lo == 0:
        return None
    ts, watts = readings[lo - 1]
    if until - ts > max_gap or not (math.isfinite(watts) and watts >= 0):
        return None
    return watts


def attribute(
    runs: Sequence[PodRun],
    readings: Sequence[tuple[float, float]],
    idle_watts: float,
    max_gap: float,
    demand: Mapping[WorkloadType, tuple[str, float]] = DEFAULT_DEMAND,
) -> dict[str, PodEnergy | None]:
    """Each run's energy (None: the readings do not cover it). Times in POSIX seconds."""
    cuts = {t for r in runs for t in (r.start, r.end)}
    if not cuts:
        return {}
    lo, hi = min(cuts), max(cuts)
    cuts.update(ts for ts, _ in readings if lo < ts < hi)
    points = sorted(cuts)
    dyn = {r.key: 0.0 for r in runs}
    idle = {r.key: 0.0 for r in runs}
    gap: set[str] = set()
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        running = [r for r in runs if r.start <= mid < r.end]
        if not running:
            continue
        p = _reading_at(readings, a, b, max_gap)
        if p is None:
            gap.update(r.key for r in running)
            continue
        totals: dict[str, float] = {}
        for r in running:
            res, d = demand.get(r.workload_type, ("cpu", 1.0)) if r.workload_type else ("cpu", 1.0)
            totals[res] = totals.get(res, 0.0) + d
        weights = []
        for r in running:
            res, _ = demand.get(r.workload_type, ("cpu", 1.0)) if r.workload_type else ("cpu", 1.0)
            weights.append(max(r.dynamic_watts, 0.0) / max(1.0, totals[res]))
        total_w = sum(weights)
        above = max(p - idle_watts, 0.0) * (b - a)
        base = min(p, idle_watts) * (b - a) / len(running)
        for r, w in zip(running, weights, strict=True):
            share = w / total_w if total_w > 0 else 1.0 / len(running)
            dyn[r.key] += above * share
            idle[r.key] += base
    return {
        r.key: None if r.key in gap else PodEnergy(r.key, dyn[r.key], idle[r.key]) for r in runs
    }
