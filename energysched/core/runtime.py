"""The kernel's runtime: run the filters, pre-score, run the score plugin, rank, explain.

Filters. Two paths run the same plugins (the registry's chain order):

- :func:`reference_filter` - per node, each plugin's ``check`` (plain Python,
  readable against upstream); used by explain mode.
- :func:`run_filters` - all nodes at once, each plugin's ``filter``:
  unschedulable/taint verdicts once per taint class, nodeSelector/affinity
  through the label index, host ports only on nodes that use any, resource fit
  as numpy comparisons. The property test in ``tests/unit/core`` holds the two
  to identical results. A node reports the reason(s) of the *first* filter it fails.

Scores: which feasible node is best for the pod, and why. All arrays cover every
node of the snapshot; only feasible nodes are meaningful.
``P`` is a node's benchmarked performance for the pod's workload type (work
units/s), ``W`` the power it draws doing it, ``E = P / W`` its efficiency (work
per joule), ``w`` the pod's performance weight.

Modes (``contract.SCORING_MODES``), one score plugin each in
:mod:`energysched.core.scores` (``static_raw``, ``normalized``, ``hybrid``,
``cluster_energy``); this module is what they share: the no-data and neutral
policies, the taint factor, the ranking and the breakdown. A mode's own figures
stay in its part of the result (:attr:`~energysched.core.interface.Scores.part`).

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

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from energysched.contract import WORKLOAD_TYPE_LABEL, WorkloadType
from energysched.core.filters import taints
from energysched.core.interface import (
    Kind,
    Rejection,
    ScoreBreakdown,
    ScoreInput,
    ScorePlugin,
    Scores,
)
from energysched.core.params import ScheduleParams
from energysched.core.registry import Registry, default_registry
from energysched.core.sleeping import POWER_TOLERATIONS, SleepingNodes
from energysched.core.snapshot import BoolArray, ClusterSnapshot, FloatArray, NodeUsage
from energysched.core.values import CPU, MEMORY, NodeInfo, PodInfo

# -- filters ------------------------------------------------------------------------


def reference_filter(
    pod: PodInfo, node: NodeInfo, usage: NodeUsage, registry: Registry | None = None
) -> tuple[int, tuple[str, ...]]:
    """``(failed_by, reasons)`` for one node: the first failing filter (1-based
    position in the registry's chain), or ``(0, ())``."""
    filters = (registry or default_registry()).filters
    for code, plugin in enumerate(filters, start=1):
        reasons = plugin.check(pod, node, usage)
        if reasons:
            return code, reasons
    return 0, ()


@dataclass(frozen=True, slots=True, eq=False)
class FilterOutcome:
    """Feasibility of every node of a snapshot for one pod."""

    #: Per node: 0 feasible, else the 1-based position in ``names`` of the filter that failed first.
    failed_by: npt.NDArray[np.int8]
    feasible: BoolArray
    #: The filter plugins' names, in chain order.
    names: tuple[str, ...]
    #: Per plugin: what it rejected (None: nothing).
    rejections: tuple[Rejection | None, ...]

    @property
    def feasible_count(self) -> int:
        return int(np.count_nonzero(self.feasible))

    def reasons_of(self, i: int) -> tuple[str, ...]:
        code = int(self.failed_by[i])
        if code == 0:
            return ()
        rejection = self.rejections[code - 1]
        assert rejection is not None
        return rejection.reasons_of(i)

    def histogram(self) -> dict[str, int]:
        """Reason -> number of nodes reporting it (upstream ``FitError`` counting)."""
        hist: dict[str, int] = {}
        for code, rejection in enumerate(self.rejections, start=1):
            if rejection is None:
                continue
            for reason, count in rejection.histogram(self.failed_by == code).items():
                hist[reason] = hist.get(reason, 0) + count
        return hist


def run_filters(
    pod: PodInfo, snap: ClusterSnapshot, registry: Registry | None = None
) -> FilterOutcome:
    """The vectorised filter pass over all nodes of ``snap``."""
    reg = registry or default_registry()
    failed = np.zeros(snap.table.size, dtype=np.int8)
    rejections = []
    first = True
    for code, plugin in enumerate(reg.filters, start=1):
        rejection = plugin.filter(pod, snap)
        rejections.append(rejection)
        if rejection is not None:
            failed[rejection.mask if first else (failed == 0) & rejection.mask] = code
            first = False
    return FilterOutcome(
        failed_by=failed,
        feasible=failed == 0,
        names=reg.filter_names,
        rejections=tuple(rejections),
    )


def wake_candidates(
    pod: PodInfo,
    snap: ClusterSnapshot,
    feasible: BoolArray,
    sleeping: SleepingNodes,
    registry: Registry | None = None,
) -> BoolArray:
    """The wakeable sleeping nodes ``pod`` would fit once awake: the filters run again
    with the sleep taints tolerated (:mod:`energysched.core.sleeping`)."""
    if not sleeping.wakeable.any():
        return np.zeros(snap.table.size, dtype=np.bool_)
    awake_pod = replace(pod, tolerations=(*pod.tolerations, *POWER_TOLERATIONS))
    return run_filters(awake_pod, snap, registry).feasible & sleeping.wakeable & ~feasible


def reference_outcome(
    pod: PodInfo, snap: ClusterSnapshot, registry: Registry | None = None
) -> list[tuple[int, tuple[str, ...]]]:
    """:func:`reference_filter` for every node, in table order (explain mode)."""
    return [
        reference_filter(pod, node, snap.usage(i), registry) for i, node in enumerate(snap.nodes)
    ]


# -- scores -------------------------------------------------------------------------


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
    scorer: ScorePlugin,
    asleep: BoolArray | None = None,
    wake: BoolArray | None = None,
) -> Scores:
    """Pre-score (figures, taint factor), then ``scorer``, or the neutral fallback.

    ``wake``: sleeping nodes scored beside the awake ones (a subset of ``feasible``, with
    figures for the workload type); ``asleep``: every node that draws sleep power.
    """
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
            pns=pns,
            factor=factor,
            final=base * factor,
            max_p=np.nan,
            max_e=np.nan,
            fallback=True,
            fallback_reason=fallback_reason,
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
        asleep=asleep if asleep is not None else np.zeros(n, dtype=np.bool_),
        wake=wake if wake is not None else np.zeros(n, dtype=np.bool_),
    )
    got = scorer.score(inp)
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
        pns=pns,
        factor=factor,
        final=np.where(has, got.score * factor, 0.0),
        max_p=got.max_p,
        max_e=got.max_e,
        fallback=False,
        fallback_reason="",
        free_cpu=nan,
        free_mem=nan,
        part=got.part,
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
    scores: Scores,
    snap: ClusterSnapshot,
    params: ScheduleParams,
    scorer: ScorePlugin,
    i: int,
    rank_: int,
) -> ScoreBreakdown:
    """The breakdown of node ``i`` (built only for the few nodes a decision shows)."""
    t = snap.table
    name = t.names[i]
    res = t.profiles[i]
    profile = res.profile.name if res is not None else None
    pns = int(scores.pns[i])
    factor = float(scores.factor[i])
    final = float(scores.final[i])
    base = float(scores.base[i])
    idle = _opt(float(t.idle[i]))
    part = None
    if not scores.fallback and scorer.node_part is not None:
        part = scorer.node_part(scores, snap, i)
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
        why = scorer.why(scores, snap, params, i)
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
        idle_watts=idle,
        prefer_no_schedule_taints=pns,
        taint_factor=factor,
        score=final,
        why=f"{name}: {why}",
        part=part,
    )
