"""Pre-score and score: which feasible node is best for the pod, and why.

All arrays cover every node of the snapshot; only feasible nodes are meaningful.
``P`` is a node's benchmarked performance for the pod's workload type (work
units/s), ``W`` the power it draws doing it, ``E = P / W`` its efficiency (work
per joule), ``w`` the pod's performance weight.

Modes (``contract.SCORING_MODES``), one score plugin each in
:mod:`energysched.core.scores` (``static_raw``, ``normalized``, ``hybrid``); this
module is what they share: the no-data and neutral policies, the taint factor,
the ranking and the breakdown.

``static-raw`` (v1.0): ``clip(w*P + (1-w)*E, 0, 100)`` on raw figures (the flaw kept).
``normalized`` (v1.1): ``w*normP + (1-w)*normE``, maxima over the feasible nodes.
``hybrid`` (v2.0): normalized, corrected by live power (busy nodes score 0;
    stale, missing or future readings follow the stale policy).

Policies common to all modes:

- No data never wins (PEAKS' lesson): nodes are ranked first by whether they
  have figures for the workload type, then by score. A node without figures
  shows score 0 and can only be chosen when no feasible node has figures -
  and then the neutral policy decides.
- Neutral policy (fallback; also for pods without a workload type when no
  default type is configured): least-allocated, ``100 * mean(free cpu fraction,
  free memory fraction)`` after placing the pod (kube's LeastAllocated with cpu
  and memory weight 1, without its non-zero request defaults). The decision
  carries ``fallback=True`` and a sentence for the event.
- PreferNoSchedule: ``k`` = number of the node's PreferNoSchedule taints the pod
  does not tolerate; kube's TaintToleration score over the feasible nodes is
  ``t = 100 - 100*k // max(k)`` (100 everywhere when ``max(k) == 0``). The score
  is multiplied by ``1 - prefer_no_schedule_penalty * (100 - t) / 100``: the
  nodes with the most such taints lose that fraction, nodes without keep all,
  ordering among equally tainted nodes is unchanged, and 0 stays 0.
- Ties (equal float scores): the node whose name sorts first wins; node
  indices are name order, so this is also numpy's first-argmax rule.
- The ranking is total: a score that is not a number ranks as -inf (below
  every real score, then by name), in the fast path and in explain alike.
  Profile figures whose efficiency ``P/W`` or ``100*P`` is not finite are "no
  data" (see :class:`~energysched.core.snapshot.NodeTable`), so this is a
  guard, not a path real input takes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np

from energysched.contract import WORKLOAD_TYPE_LABEL, ScoringMode, WorkloadType
from energysched.core.filters import taints
from energysched.core.params import ScheduleParams
from energysched.core.plugin import ScorePlugin, default_registry
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, IntArray
from energysched.core.values import CPU, MEMORY, PodInfo

Kind = Literal["profile", "no-profile", "neutral"]
ReadingState = Literal["fresh", "stale", "missing", "future", "not-used"]
_STATES: Final[tuple[ReadingState, ...]] = ("not-used", "fresh", "stale", "missing", "future")
NOT_USED, FRESH, STALE, MISSING, FUTURE = range(5)


@dataclass(frozen=True, slots=True)
class ScoreBreakdown:
    """How one feasible node's score was made up."""

    node: str
    rank: int  # 1 = chosen
    kind: Kind
    profile: str | None
    raw_p: float | None  # performance, work units/s
    raw_e: float | None  # efficiency, work per joule
    power_watts: float | None  # profile power for this workload type
    norm_p: float | None
    norm_e: float | None
    base_score: float  # before hybrid, stale policy and taint adjustments
    live_watts: float | None
    predicted_watts: float
    idle_watts: float | None
    reading_state: ReadingState
    reading_age_s: float | None
    reading_source: str | None
    busy: bool
    prefer_no_schedule_taints: int
    taint_factor: float
    score: float
    why: str


@dataclass(frozen=True, slots=True, eq=False)
class Scores:
    """Vectorised scores of one decision (see module doc)."""

    mode: ScoringMode
    workload_type: WorkloadType | None
    weight: float
    #: Nodes ranked first (have figures; every node in fallback).
    tier: BoolArray
    raw_p: FloatArray
    raw_e: FloatArray
    power: FloatArray
    norm_p: FloatArray
    norm_e: FloatArray
    base: FloatArray
    predicted: FloatArray
    state: IntArray
    busy: BoolArray
    pns: IntArray
    factor: FloatArray
    final: FloatArray
    max_p: float
    max_e: float
    fallback: bool
    fallback_reason: str
    stale_count: int
    missing_count: int
    #: Readings more than the clock-skew allowance in the future (invalid).
    future_count: int
    #: Fallback only: free cpu / memory fraction after placement (NaN otherwise).
    free_cpu: FloatArray
    free_mem: FloatArray
    #: The score plugin's own per-node figures (see :attr:`ModeScores.extra`).
    extra: Mapping[str, FloatArray] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, eq=False)
class ScoreInput:
    """What a score plugin gets: the decision's inputs and the shared pre-score."""

    pod: PodInfo
    snap: ClusterSnapshot
    params: ScheduleParams
    feasible: BoolArray
    workload_type: WorkloadType
    weight: float
    #: The profile figures for the workload type (NaN: no data) and P / W.
    perf: FloatArray
    power: FloatArray
    eff: FloatArray
    #: Nodes with figures, and those of them that are feasible (the ones scored).
    has: BoolArray
    scored: BoolArray
    #: All NaN (read-only), for arrays a mode does not use.
    nan: FloatArray


@dataclass(frozen=True, slots=True, eq=False)
class ModeScores:
    """What a score plugin returns; arrays over every node (see :class:`Scores`)."""

    base: FloatArray
    #: After the mode's own adjustments (hybrid: busy, stale policy), before taints.
    score: FloatArray
    norm_p: FloatArray
    norm_e: FloatArray
    max_p: float = float("nan")
    max_e: float = float("nan")
    predicted: FloatArray | None = None
    state: IntArray | None = None
    busy: BoolArray | None = None
    stale_count: int = 0
    missing_count: int = 0
    future_count: int = 0
    #: Mode-specific per-node figures a mode's ``why`` explains (e.g. cluster-energy's
    #: predicted duration and joules), arrays over every node.
    extra: Mapping[str, FloatArray] = field(default_factory=dict)


def _neutral(pod: PodInfo, snap: ClusterSnapshot) -> tuple[FloatArray, FloatArray, FloatArray]:
    t = snap.table
    fracs = []
    for r in (CPU, MEMORY):
        c = t.column_index[r]
        alloc = t.allocatable[:, c].astype(np.float64)
        # in float: a saturated row plus a request must not wrap around
        used = snap.requested[:, c].astype(np.float64) + float(pod.requests.get(r, 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(alloc > 0, (alloc - used) / alloc, 0.0)
        fracs.append(np.clip(frac, 0.0, 1.0))
    return 100.0 * (fracs[0] + fracs[1]) / 2.0, fracs[0], fracs[1]


def compute_scores(
    pod: PodInfo,
    snap: ClusterSnapshot,
    feasible: BoolArray,
    workload_type: WorkloadType | None,
    weight: float,
    params: ScheduleParams,
) -> Scores:
    t = snap.table
    n = t.size
    mode = params.mode
    nan = np.full(n, np.nan)
    nan.flags.writeable = False  # shared by several result arrays

    pns_class = np.fromiter(
        (taints.intolerable_prefer_no_schedule(c.taints, pod.tolerations) for c in t.classes),
        dtype=np.int64,
        count=len(t.classes),
    )
    pns = pns_class[t.class_ids]
    max_pns = int(pns[feasible].max()) if feasible.any() else 0
    if max_pns > 0:
        tscore = 100 - (100 * pns) // max_pns
        penalty = params.prefer_no_schedule_penalty * (100 - tscore) / 100.0
        factor: FloatArray = (1.0 - penalty).astype(np.float64)
    else:
        factor = np.ones(n)

    fallback_reason = ""
    if workload_type is None:
        fallback_reason = (
            f"pod has no label {WORKLOAD_TYPE_LABEL} and no default workload type is "
            "configured: placed by the neutral least-allocated policy"
        )
        perf = power = nan
        has = np.zeros(n, dtype=np.bool_)
    else:
        perf = t.perf[workload_type]
        power = t.power[workload_type]
        has = ~np.isnan(perf)
        if not (feasible & has).any():
            fallback_reason = (
                "no feasible node has an EnergyProfile with figures for workload type "
                f"{workload_type}: placed by the neutral least-allocated policy"
            )

    if fallback_reason:
        base, free_cpu, free_mem = _neutral(pod, snap)
        return Scores(
            mode=mode,
            workload_type=workload_type,
            weight=weight,
            tier=np.ones(n, dtype=np.bool_),
            raw_p=perf,
            raw_e=nan,
            power=power,
            norm_p=nan,
            norm_e=nan,
            base=base,
            predicted=np.zeros(n),
            state=np.zeros(n, dtype=np.int64),
            busy=np.zeros(n, dtype=np.bool_),
            pns=pns,
            factor=factor,
            final=base * factor,
            max_p=np.nan,
            max_e=np.nan,
            fallback=True,
            fallback_reason=fallback_reason,
            stale_count=0,
            missing_count=0,
            future_count=0,
            free_cpu=free_cpu,
            free_mem=free_mem,
        )

    assert workload_type is not None
    eff = perf / power
    inp = ScoreInput(
        pod=pod,
        snap=snap,
        params=params,
        feasible=feasible,
        workload_type=workload_type,
        weight=weight,
        perf=perf,
        power=power,
        eff=eff,
        has=has,
        scored=feasible & has,
        nan=nan,
    )
    got = scorer_for(params).score(inp)
    return Scores(
        mode=mode,
        workload_type=workload_type,
        weight=weight,
        tier=has,
        raw_p=perf,
        raw_e=eff,
        power=power,
        norm_p=got.norm_p,
        norm_e=got.norm_e,
        base=got.base,
        predicted=np.zeros(n) if got.predicted is None else got.predicted,
        state=np.zeros(n, dtype=np.int64) if got.state is None else got.state,
        busy=np.zeros(n, dtype=np.bool_) if got.busy is None else got.busy,
        pns=pns,
        factor=factor,
        final=np.where(has, got.score * factor, 0.0),
        max_p=got.max_p,
        max_e=got.max_e,
        fallback=False,
        fallback_reason="",
        stale_count=got.stale_count,
        missing_count=got.missing_count,
        future_count=got.future_count,
        free_cpu=nan,
        free_mem=nan,
        extra=got.extra,
    )


def scorer_for(params: ScheduleParams) -> ScorePlugin:
    """The score plugin serving ``params.mode`` in ``params``' registry."""
    return (params.registry or default_registry()).scorer(params.mode)


def rank(scores: Scores, feasible: BoolArray, k: int | None) -> list[int]:
    """Indices of the best ``k`` feasible nodes (all when ``k`` is None), best first.

    Order: nodes with figures before nodes without, then score descending (NaN
    as -inf), then node name (index) ascending. A total order: the top ``k``
    are always the first ``k`` of the full ranking.
    """
    first = np.flatnonzero(feasible & scores.tier)
    rest = np.flatnonzero(feasible & ~scores.tier)
    vals = scores.final[first]
    if len(vals) and np.isnan(vals.max()):  # max() propagates NaN: one pass to check
        vals = np.where(np.isnan(vals), -np.inf, vals)
    if k is None:
        order = first[np.argsort(-vals, kind="stable")]
        return [*order.tolist(), *rest.tolist()]
    out: list[int] = []
    taken = np.zeros(len(first), dtype=np.bool_)
    for _ in range(min(k, len(first))):
        j = int(np.argmax(vals))  # the first (lowest index) of the best
        if taken[j]:  # only -inf is left: the rest in index order
            j = int(np.flatnonzero(~taken)[0])
        taken[j] = True
        vals[j] = -np.inf
        out.append(int(first[j]))
    if len(out) < k:
        out.extend(rest[: k - len(out)].tolist())
    return out


def _opt(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def breakdown(
    scores: Scores, snap: ClusterSnapshot, pod: PodInfo, params: ScheduleParams, i: int, rank_: int
) -> ScoreBreakdown:
    """The breakdown of node ``i`` (built only for the few nodes a decision shows)."""
    t = snap.table
    name = t.names[i]
    res = t.profiles[i]
    profile = res.profile.name if res is not None else None
    reading = snap.readings[i]
    state = _STATES[int(scores.state[i])]
    age = None if reading is None else snap.now.timestamp() - reading.timestamp.timestamp()
    pns = int(scores.pns[i])
    factor = float(scores.factor[i])
    final = float(scores.final[i])
    base = float(scores.base[i])
    idle = _opt(float(t.idle[i]))
    predicted = float(scores.predicted[i])
    taint_note = (
        f"; x{factor:.2f} for {pns} untolerated PreferNoSchedule taint(s)" if factor != 1.0 else ""
    )

    if scores.fallback:
        kind: Kind = "neutral"
        why = (
            f"neutral score {final:.1f}: {100 * scores.free_cpu[i]:.0f}% cpu and "
            f"{100 * scores.free_mem[i]:.0f}% memory free after placement (least-allocated)"
            f"{taint_note}"
        )
    elif not scores.tier[i]:
        kind = "no-profile"
        why = (
            f"no EnergyProfile figures for workload type {scores.workload_type}: ranked below "
            "every node that has them"
        )
    else:
        kind = "profile"
        why = scorer_for(params).why(scores, snap, params, i)
        why += taint_note

    return ScoreBreakdown(
        node=name,
        rank=rank_,
        kind=kind,
        profile=profile,
        raw_p=_opt(float(scores.raw_p[i])),
        raw_e=_opt(float(scores.raw_e[i])),
        power_watts=_opt(float(scores.power[i])),
        norm_p=_opt(float(scores.norm_p[i])),
        norm_e=_opt(float(scores.norm_e[i])),
        base_score=base,
        live_watts=None if reading is None else reading.watts,
        predicted_watts=predicted,
        idle_watts=idle,
        reading_state=state,
        reading_age_s=age,
        reading_source=None if reading is None else reading.source,
        busy=bool(scores.busy[i]),
        prefer_no_schedule_taints=pns,
        taint_factor=factor,
        score=final,
        why=f"{name}: {why}",
    )
