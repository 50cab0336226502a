"""Pre-score and score: which feasible node is best for the pod, and why.

All arrays cover every node of the snapshot; only feasible nodes are meaningful.
``P`` is a node's benchmarked performance for the pod's workload type (work
units/s), ``W`` the power it draws doing it, ``E = P / W`` its efficiency (work
per joule), ``w`` the pod's performance weight.

Modes (``contract.SCORING_MODES``):

``static-raw`` (v1.0, kept to reproduce the thesis' first results)
    ``score = clip(w*P + (1-w)*E, 0, 100)`` on raw, unnormalised figures. With
    real figures (P in the hundreds or thousands, E in the tens to hundreds)
    nearly every node clips to 100, so the weight has (almost) no effect and the
    tie-break decides. This flaw is deliberate: it is what v1.0 did.
``normalized`` (v1.1)
    Pre-score: ``maxP``, ``maxE`` over the feasible nodes that have figures for
    the workload type. ``normP = 100*P/maxP``, ``normE = 100*E/maxE``,
    ``score = w*normP + (1-w)*normE``.
``hybrid`` (v2.0)
    The v1.1 score, except that a node whose *fresh* reading plus predicted
    load exceeds ``idle + hybrid_buffer_watts`` is busy and scores 0. Fresh:
    ``-clock_skew_allowance <= now - timestamp <= staleness_window`` (a
    timestamp up to ``clock_skew_allowance`` in the future counts as fresh;
    one further ahead is invalid, state ``future``: treated like a missing
    reading and counted separately). Predicted load (Trimaran's lesson): for every
    recent bind to the node *after* its reading, the bound pod's
    ``powerWatts - idle`` from the node's profile for the pod's workload type;
    for a pod without a type, or a type the profile lacks, the largest such
    headroom of the profile (conservative). Stale or missing readings follow
    ``stale_policy`` (see :mod:`energysched.core.params`); the decision counts
    them over the feasible nodes with figures.

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

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from energysched.contract import WORKLOAD_TYPE_LABEL, WORKLOAD_TYPES, ScoringMode, WorkloadType
from energysched.core.filters import taints
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, IntArray
from energysched.core.values import CPU, MEMORY, PodInfo

Kind = Literal["profile", "no-profile", "neutral"]
ReadingState = Literal["fresh", "stale", "missing", "future", "not-used"]
_STATES: Final[tuple[ReadingState, ...]] = ("not-used", "fresh", "stale", "missing", "future")
_NOT_USED, _FRESH, _STALE, _MISSING, _FUTURE = range(5)


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


def _predicted(snap: ClusterSnapshot) -> FloatArray:
    """Watts of pods bound after each node's reading (see module doc)."""
    n = snap.table.size
    if not len(snap.bind_node):
        return np.zeros(n)
    t = snap.table
    bn, bts, btype = snap.bind_node, snap.bind_ts, snap.bind_type
    extra = t.default_extra_watts[bn].copy()
    for code, wt in enumerate(WORKLOAD_TYPES):
        sel = btype == code
        if sel.any():
            h = t.headroom[wt][bn[sel]]
            extra[sel] = np.where(np.isnan(h), extra[sel], h)
    with np.errstate(invalid="ignore"):
        after = bts > snap.reading_ts[bn]  # NaN (no reading) compares False
    return np.bincount(bn[after], weights=extra[after], minlength=n).astype(np.float64)


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
    zeros = np.zeros(n)

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

    state = np.zeros(n, dtype=np.int64)
    busy = np.zeros(n, dtype=np.bool_)
    predicted = zeros
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
            predicted=predicted,
            state=state,
            busy=busy,
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

    scored = feasible & has
    eff = perf / power
    w = weight
    if mode == "static-raw":
        base = np.clip(w * perf + (1 - w) * eff, 0.0, 100.0)
        norm_p = norm_e = nan
        max_p = max_e = np.nan
    else:
        max_p = float(perf[scored].max())
        max_e = float(eff[scored].max())
        # 100 * (x / max), not 100 * x / max: the ratio is <= 1, the product cannot overflow
        with np.errstate(over="ignore", invalid="ignore"):
            norm_p = 100.0 * (perf / max_p) if max_p > 0 else np.where(has, 0.0, np.nan)
            norm_e = 100.0 * (eff / max_e) if max_e > 0 else np.where(has, 0.0, np.nan)
        base = w * norm_p + (1 - w) * norm_e
    base = np.where(has, base, 0.0)
    score = base.copy()

    stale_count = missing_count = future_count = 0
    if mode == "hybrid":
        ts = snap.reading_ts
        with np.errstate(invalid="ignore"):
            age = snap.now.timestamp() - ts
            future = age < -params.clock_skew_allowance.total_seconds()  # NaN: False
        has_reading = ~np.isnan(ts) & ~future  # a future reading is no reading
        with np.errstate(invalid="ignore"):
            fresh = has_reading & (age <= params.staleness_window.total_seconds())
        state = np.where(
            fresh, _FRESH, np.where(has_reading, _STALE, np.where(future, _FUTURE, _MISSING))
        ).astype(np.int64)
        predicted = _predicted(snap)
        with np.errstate(invalid="ignore"):
            limit = t.idle + params.hybrid_buffer_watts
            busy = scored & fresh & (snap.reading_watts + predicted > limit)
        score[busy] = 0.0
        unknown = scored & ~fresh
        stale_count = int(np.count_nonzero(unknown & has_reading))
        future_count = int(np.count_nonzero(unknown & future))
        missing_count = int(np.count_nonzero(unknown & ~has_reading & ~future))
        if params.stale_policy == "penalize":
            score[unknown] *= params.stale_penalty_factor
        elif params.stale_policy == "busy":
            score[unknown] = 0.0

    return Scores(
        mode=mode,
        workload_type=workload_type,
        weight=weight,
        tier=has,
        raw_p=perf,
        raw_e=eff,
        power=power,
        norm_p=norm_p,
        norm_e=norm_e,
        base=base,
        predicted=predicted,
        state=state,
        busy=busy,
        pns=pns,
        factor=factor,
        final=np.where(has, score * factor, 0.0),
        max_p=max_p,
        max_e=max_e,
        fallback=False,
        fallback_reason="",
        stale_count=stale_count,
        missing_count=missing_count,
        future_count=future_count,
        free_cpu=nan,
        free_mem=nan,
    )


def rank(scores: Scores, feasible: BoolArray, k: int | None) -> list[int]:
    """Indices of the best ``k`` feasible nodes (all when ``k`` is None), best first.

    Order: nodes with figures before nodes without, then score descending (NaN
    as -inf), then node name (index) ascending. A total order: the top ``k``
    are always the first ``k`` of the full ranking.
    """
    first = np.flatnonzero(feasible & scores.tier)
    rest = np.flatnonzero(feasible & ~scores.tier)
    vals = scores.final[first]
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
    w = scores.weight

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
        p, e = float(scores.raw_p[i]), float(scores.raw_e[i])
        if scores.mode == "static-raw":
            why = (
                f"score {final:.1f} = clip({w:.2f}*P {p:g} + {1 - w:.2f}*E {e:.4g}, 0, 100) "
                "(static-raw, v1.0: raw figures, not normalised)"
            )
        else:
            why = (
                f"score {base:.1f} = {w:.2f}*normP {scores.norm_p[i]:.1f} + "
                f"{1 - w:.2f}*normE {scores.norm_e[i]:.1f} (P {p:g} of max {scores.max_p:g}, "
                f"E {e:.4g} of max {scores.max_e:.4g} work/J, profile {profile})"
            )
        if scores.mode == "hybrid":
            src = f", {reading.source}" if reading is not None else ""
            buffer = params.hybrid_buffer_watts
            if scores.busy[i]:
                assert reading is not None and age is not None
                why = (
                    f"score 0: busy, live {reading.watts:.1f} W + predicted {predicted:.1f} W > "
                    f"idle {idle} W + buffer {buffer:g} W (reading {age:.0f}s old{src}); "
                    f"normalized would be {base:.1f}"
                )
            elif state == "fresh":
                assert reading is not None and age is not None
                why += (
                    f"; idle: live {reading.watts:.1f} W + predicted {predicted:.1f} W <= "
                    f"idle {idle} W + buffer {buffer:g} W (reading {age:.0f}s old{src})"
                )
            else:
                if state == "stale":
                    what = (
                        f"reading {age:.0f}s old > "
                        f"{params.staleness_window.total_seconds():g}s window"
                    )
                elif state == "future":
                    assert age is not None
                    what = (
                        f"reading {-age:.0f}s in the future > "
                        f"{params.clock_skew_allowance.total_seconds():g}s clock-skew allowance "
                        "(invalid, as if missing)"
                    )
                else:
                    what = "no power reading"
                effect = {
                    "ignore": "ignored, normalized score kept",
                    "penalize": f"penalized x{params.stale_penalty_factor:g}",
                    "busy": "treated as busy, score 0",
                }[params.stale_policy]
                why += f"; {what}: {effect}"
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
