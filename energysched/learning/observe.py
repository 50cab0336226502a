"""A finished pod -> an observation of its node class, or the counted reason why not.

What a real cluster shows, and nothing more: the pod's container start and finish
(``status.containerStatuses[*].state.terminated``, whole seconds), its work annotation,
the node's power as the monitor published it (``current-watts`` + timestamp; each
reading holds until the next), the other pods that ran on the node meanwhile, and the
node's power-state transitions. Never a guess: a run that cannot be read cleanly gives
no observation, and says which rule refused it (:data:`REJECTIONS`), so a metric counts
every case.

Concurrency (the sharing model of kb/scenarios/README.md): a pod of type T occupies
``demand`` of one node resource; while the demands on a resource sum to D > 1, every
pod there runs at speed 1/D. The pod did ``work`` in ``integral of speed dt``
seconds of full speed, so ``performance = work / that``. Working power is read only
while the pod ran alone (the node's power then is idle + this pod's draw, nothing to
split); a run never alone observes performance only.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final, Literal

from energysched.contract import (
    WORK_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
    WORKLOAD_TYPES,
    WorkloadType,
)

#: Why a finished pod taught nothing (whole run), or a part of it (``partial``).
Rejection = Literal[
    "not-typed",  # no or an unknown workload-type label
    "no-profile",  # its node resolves to no EnergyProfile
    "failed",  # phase Failed, or a container that did not exit 0
    "oom-killed",
    "no-timestamps",  # no terminated container with startedAt and finishedAt
    "negative-duration",
    "zero-duration",  # shorter than min_duration_s: whole-second stamps say nothing
    "too-long",  # longer than max_duration_s (days): stuck, suspended, or a clock jump
    "interrupted-by-sleep",  # the node was not awake for the whole run
    "reading-gap",  # the node's readings do not cover the run (power part)
    "no-work",  # missing work annotation (performance part)
    "bad-work",  # work annotation not a positive finite decimal (performance part)
    "never-alone",  # the pod never ran alone on its node (power part)
]
REJECTIONS: Final[tuple[Rejection, ...]] = (
    "not-typed",
    "no-profile",
    "failed",
    "oom-killed",
    "no-timestamps",
    "negative-duration",
    "zero-duration",
    "too-long",
    "interrupted-by-sleep",
    "reading-gap",
    "no-work",
    "bad-work",
    "never-alone",
)

#: The documented default sharing model: (node resource, demand) per workload type.
#: Sequential work is one thread (a core of four); training and inference use every core.
DEFAULT_DEMAND: Final[Mapping[WorkloadType, tuple[str, float]]] = MappingProxyType(
    {"training": ("cpu", 1.0), "inference": ("cpu", 1.0), "sequential": ("cpu", 0.25)}
)


def sharing_model(cpu_cores: float, gpus: float) -> Mapping[WorkloadType, tuple[str, float]]:
    """The documented sharing model from what a node's ``allocatable`` shows.

    Sequential work is one thread: one core of ``cpu_cores``; training uses the GPU
    when the node has one, else every core; inference every core (kb/scenarios/README.md).
    """
    cores = max(1.0, cpu_cores) if math.isfinite(cpu_cores) else 1.0
    return MappingProxyType(
        {
            "training": ("gpu", 1.0) if gpus > 0 else ("cpu", 1.0),
            "inference": ("cpu", 1.0),
            "sequential": ("cpu", round(1.0 / cores, 4)),
        }
    )


@dataclass(frozen=True, slots=True)
class ObserveConfig:
    """How strict the reader is. Times in wall seconds, as the API shows them."""

    #: Wall seconds per simulated second (1 on a real cluster; the simulator's factor).
    time_factor: float = 1.0
    #: Container stamps are whole seconds: a shorter run is refused (zero-duration).
    min_duration_s: float = 2.0
    #: A longer run is refused (too-long): 2 days.
    max_duration_s: float = 2 * 86400.0
    #: The longest a published reading may hold before the run counts as a reading gap.
    #: The monitor republishes an unchanged value at least every 30 s (heartbeat).
    max_reading_gap_s: float = 90.0
    #: Resolution of the container stamps (the API gives whole seconds).
    stamp_resolution_s: float = 1.0
    #: Least time alone on the node for a power observation.
    min_solo_s: float = 2.0
    demand: Mapping[WorkloadType, tuple[str, float]] = field(default_factory=lambda: DEFAULT_DEMAND)


@dataclass(frozen=True, slots=True)
class FinishedRun:
    """A finished pod as the API shows it (see :func:`finished_run`)."""

    key: str  # namespace/name
    node: str
    workload_type: str | None
    work_raw: str | None
    phase: str
    #: POSIX seconds of the first container's start and the last one's finish.
    started: float | None
    finished: float | None
    #: A terminated container's reason (``OOMKilled``, ``Error``, ``Completed``).
    reasons: tuple[str, ...] = ()
    exit_codes: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Neighbour:
    """Another pod on the same node: its type and when it ran (end inf: still running)."""

    workload_type: str | None
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Observation:
    """What one finished run says about its node class and workload type."""

    pod: str
    node: str
    profile: str
    workload_type: WorkloadType
    #: When the run finished (POSIX wall seconds): the clock of the half-life.
    at: float
    duration_s: float  # simulated seconds (wall / time_factor)
    #: Work per second at full speed; None when the work is unknown (see ``partial``).
    performance: float | None
    #: The node's mean power while the pod ran alone; None when not observed.
    power_watts: float | None
    #: Seconds alone on the node, seconds at a reduced speed (sharing), neighbours met.
    solo_s: float
    shared_s: float
    neighbours: int
    #: Log standard deviation the stamps' resolution adds to ``performance``
    #: (the estimator weighs the observation down by it).
    stamp_sigma: float = 0.0
    #: The parts not observed, and why (counted like whole rejections).
    partial: tuple[Rejection, ...] = ()


@dataclass(frozen=True, slots=True)
class Rejected:
    pod: str
    reason: Rejection
    detail: str = ""


def parse_work(raw: str | None) -> float | Rejection:
    """The work annotation as a positive finite float, or why not."""
    if raw is None:
        return "no-work"
    try:
        value = Decimal(raw.strip())
    except InvalidOperation:
        return "bad-work"
    if not value.is_finite() or value <= 0:
        return "bad-work"
    f = float(value)
    return f if math.isfinite(f) and f > 0 else "bad-work"


def mean_power(
    readings: Sequence[tuple[float, float]], start: float, end: float, max_gap: float
) -> float | None:
    """Time-weighted mean of the published step function over [start, end].

    ``readings``: (timestamp, watts) sorted by time; each holds until the next. None
    when they do not cover the window: no reading at or before ``start`` younger than
    ``max_gap``, or any reading held longer than ``max_gap`` inside it, or a value
    that is not finite and >= 0.
    """
    if end <= start:
        return None
    prev: tuple[float, float] | None = None
    energy = 0.0
    for ts, watts in readings:
        if ts <= start:
            prev = (ts, watts)
            continue
        if ts >= end:
            break
        if prev is None:
            return None
        if ts - prev[0] > max_gap or not (math.isfinite(prev[1]) and prev[1] >= 0):
            return None
        energy += prev[1] * (ts - max(prev[0], start))
        prev = (ts, watts)
    if prev is None or end - prev[0] > max_gap or not (math.isfinite(prev[1]) and prev[1] >= 0):
        return None
    energy += prev[1] * (end - max(prev[0], start))
    return energy / (end - start)


def _segments(
    start: float, end: float, neighbours: Sequence[Neighbour]
) -> list[tuple[float, float, tuple[Neighbour, ...]]]:
    """[start, end] cut where a neighbour starts or ends: (a, b, neighbours running)."""
    cuts = {start, end}
    for n in neighbours:
        for t in (n.start, n.end):
            if start < t < end:
                cuts.add(t)
    points = sorted(cuts)
    out = []
    for a, b in itertools.pairwise(points):
        mid = (a + b) / 2
        out.append((a, b, tuple(n for n in neighbours if n.start <= mid < n.end)))
    return out


def _speed(
    wt: WorkloadType, others: Sequence[Neighbour], demand: Mapping[WorkloadType, tuple[str, float]]
) -> float:
    resource, own = demand.get(wt, ("cpu", 1.0))
    total = own
    for n in others:
        if n.workload_type in WORKLOAD_TYPES:
            r, d = demand.get(n.workload_type, ("cpu", 1.0))
        else:  # an untyped pod: assume it takes the whole node (no better knowledge)
            r, d = resource, 1.0
        if r == resource:
            total += d
    return 1.0 / max(1.0, total)


def observe(
    run: FinishedRun,
    profile: str | None,
    readings: Sequence[tuple[float, float]],
    neighbours: Sequence[Neighbour],
    cfg: ObserveConfig,
    awake: Sequence[tuple[float, float]] | None = None,
    demand: Mapping[WorkloadType, tuple[str, float]] | None = None,
) -> Observation | Rejected:
    """One finished run -> an observation or a rejection (see module doc).

    ``awake``: the intervals the node was awake (POSIX seconds) if the node's power
    state is managed, None when it is not (always awake). ``demand``: the node's
    sharing model (:func:`sharing_model`); None: ``cfg.demand``.
    """
    demand = cfg.demand if demand is None else demand
    if run.workload_type not in WORKLOAD_TYPES:
        return Rejected(run.key, "not-typed", repr(run.workload_type))
    wt: WorkloadType = run.workload_type
    if profile is None:
        return Rejected(run.key, "no-profile", run.node)
    if "OOMKilled" in run.reasons:
        return Rejected(run.key, "oom-killed")
    if run.phase != "Succeeded" or any(c != 0 for c in run.exit_codes):
        return Rejected(run.key, "failed", f"phase {run.phase}, exit codes {run.exit_codes}")
    if run.started is None or run.finished is None:
        return Rejected(run.key, "no-timestamps")
    wall = run.finished - run.started
    if wall < 0:
        return Rejected(run.key, "negative-duration", f"{wall:g} s")
    if wall < cfg.min_duration_s:
        return Rejected(run.key, "zero-duration", f"{wall:g} s")
    if wall > cfg.max_duration_s:
        return Rejected(run.key, "too-long", f"{wall:g} s")
    if awake is not None and not any(a <= run.started and run.finished <= b for a, b in awake):
        return Rejected(run.key, "interrupted-by-sleep")

    partial: list[Rejection] = []
    full_speed = 0.0
    solo: list[tuple[float, float]] = []
    shared = 0.0
    met = 0
    seen: set[int] = set()
    for a, b, others in _segments(run.started, run.finished, neighbours):
        s = _speed(wt, others, demand)
        full_speed += (b - a) * s
        if others:
            shared += b - a
            for n in others:
                if id(n) not in seen:
                    seen.add(id(n))
                    met += 1
        else:
            solo.append((a, b))
    work = parse_work(run.work_raw)
    performance: float | None = None
    if isinstance(work, float):
        performance = work / (full_speed / cfg.time_factor)
    else:
        partial.append(work)

    power: float | None = None
    solo_s = sum(b - a for a, b in solo)
    if solo_s < cfg.min_solo_s:
        partial.append("never-alone")
    else:
        joules = 0.0
        for a, b in solo:
            p = mean_power(readings, a, b, cfg.max_reading_gap_s)
            if p is None:
                partial.append("reading-gap")
                break
            joules += p * (b - a)
        else:
            power = joules / solo_s
    if performance is None and power is None:
        return Rejected(run.key, partial[0], "nothing observed: " + ", ".join(partial))
    return Observation(
        pod=run.key,
        node=run.node,
        profile=profile,
        workload_type=wt,
        at=run.finished,
        duration_s=wall / cfg.time_factor,
        performance=performance,
        power_watts=power,
        solo_s=solo_s / cfg.time_factor,
        shared_s=shared / cfg.time_factor,
        neighbours=met,
        # Both stamps truncated to the resolution: the difference errs by a
        # triangular +-1 resolution, standard deviation resolution / sqrt(6).
        stamp_sigma=cfg.stamp_resolution_s / math.sqrt(6.0) / wall,
        partial=tuple(partial),
    )


def posix_seconds(value: object) -> float | None:
    """An RFC 3339 timestamp as POSIX seconds, None when absent or unreadable."""
    if not isinstance(value, str):
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.timestamp() if t.tzinfo is not None else None


def finished_run(pod: Mapping[str, Any]) -> FinishedRun | None:
    """A pod object (API JSON) as a :class:`FinishedRun`; None unless it is terminal and bound.

    Start = the earliest ``startedAt`` of the app containers' terminated states, finish =
    the latest ``finishedAt`` (init containers are not the work).
    """
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    phase = status.get("phase")
    node = spec.get("nodeName")
    if phase not in ("Succeeded", "Failed") or not isinstance(node, str) or not node:
        return None
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    starts: list[float] = []
    ends: list[float] = []
    reasons: list[str] = []
    codes: list[int] = []
    missing = False
    for cs in status.get("containerStatuses") or ():
        term = ((cs or {}).get("state") or {}).get("terminated") or (
            (cs or {}).get("lastState") or {}
        ).get("terminated")
        if not isinstance(term, dict):
            missing = True
            continue
        s, f = posix_seconds(term.get("startedAt")), posix_seconds(term.get("finishedAt"))
        if s is None or f is None:
            missing = True
        else:
            starts.append(s)
            ends.append(f)
        if isinstance(term.get("reason"), str):
            reasons.append(term["reason"])
        code = term.get("exitCode")
        if isinstance(code, int) and not isinstance(code, bool):
            codes.append(code)
    wt = labels.get(WORKLOAD_TYPE_LABEL)
    work = annotations.get(WORK_ANNOTATION)
    return FinishedRun(
        key=f"{meta.get('namespace', '')}/{meta.get('name', '')}",
        node=node,
        workload_type=wt if isinstance(wt, str) else None,
        work_raw=work if isinstance(work, str) else None,
        phase=str(phase),
        started=None if missing or not starts else min(starts),
        finished=None if missing or not ends else max(ends),
        reasons=tuple(reasons),
        exit_codes=tuple(codes),
    )
