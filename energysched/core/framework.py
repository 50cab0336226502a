"""The one entry point: :func:`schedule_one`.

The scheduler, ``energysched explain``, the experiment simulator and the
evaluation all call it, so they cannot disagree. It is pure: no I/O, no clock
(``snapshot.now`` is the time), no randomness.

Fast path (default): vectorised filters and scores; full breakdowns only for the
top ``params.detail_top_k`` nodes. Explain path (``explain=True``): the
reference per-node filters and a breakdown for every feasible node; same
scoring. A property test keeps the two identical in feasibility and choice.

Sleeping nodes: a mode that ``scores_asleep`` (cluster-energy) is also offered
the sleeping nodes the pod would fit once awake (:mod:`energysched.core.sleeping`,
:func:`~energysched.core.runtime.wake_candidates`); when one of them ranks first,
the decision has ``wake_node`` set and ``node`` None: the caller asks for that
node to be woken and decides again once it is Ready. Every other mode, and every
mode when no node sleeps, decides exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

import numpy as np

from energysched.contract import ScoringMode, WorkloadType
from energysched.core.errors import InputError
from energysched.core.interface import ScoreBreakdown, ScorePlugin
from energysched.core.messages import fit_error_message
from energysched.core.params import ScheduleParams
from energysched.core.parse import parse_weight, parse_workload_type
from energysched.core.registry import Registry, default_registry
from energysched.core.runtime import (
    breakdown,
    compute_scores,
    rank,
    reference_outcome,
    run_filters,
    wake_candidates,
)
from energysched.core.sleeping import sleeping_nodes
from energysched.core.snapshot import BoolArray, ClusterSnapshot
from energysched.core.values import PodInfo

_EMPTY: Final[MappingProxyType[str, int]] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NodeResult:
    """One node's verdict (explain mode lists every node)."""

    node: str
    feasible: bool
    #: The filter plugin that rejected it (None when feasible).
    filter: str | None = None
    reasons: tuple[str, ...] = ()
    breakdown: ScoreBreakdown | None = None
    #: Asleep (infeasible as it is, for ``reasons``), scored as a node to wake.
    wake: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a pod goes and why; or why it cannot go anywhere."""

    pod: str  # namespace/name
    mode: ScoringMode
    node: str | None = None
    runner_up: str | None = None
    workload_type: WorkloadType | None = None
    weight: float | None = None
    total_nodes: int = 0
    feasible_count: int = 0
    #: Best first: the top ``detail_top_k`` feasible nodes, every feasible node in explain mode.
    ranking: tuple[ScoreBreakdown, ...] = ()
    #: Explain mode only: every node, in name order.
    node_results: tuple[NodeResult, ...] = ()
    #: Reason -> number of infeasible nodes reporting it.
    reasons: MappingProxyType[str, int] = field(default_factory=lambda: _EMPTY)
    #: FailedScheduling event text when no node fits (kube-scheduler's form).
    failed_message: str | None = None
    #: Normal Scheduled event text when a node was chosen.
    scheduled_message: str | None = None
    #: The score plugin's own figures for the decision (its ``decision_part``;
    #: hybrid: :class:`~energysched.core.scores.hybrid.ReadingCounts`), None without.
    part: object = None
    #: The neutral policy placed the pod (and why, for the event).
    fallback: bool = False
    fallback_reason: str = ""
    #: Bad input on the pod (weight, workload type): keep it Pending, Warning event.
    error: InputError | None = None
    #: The best placement is a sleeping node: wake it (``node`` is None), and the
    #: WakingNode event / WaitingForNodeWake condition text.
    wake_node: str | None = None
    wake_message: str | None = None

    @property
    def message(self) -> str:
        """The one line for an event or a log: scheduled, waking, failed or the input error."""
        if self.error is not None:
            return self.error.message
        return self.scheduled_message or self.wake_message or self.failed_message or ""


def _scheduled_message(
    pod: PodInfo, top: tuple[ScoreBreakdown, ...], d: Decision, wake: bool = False
) -> str:
    win = top[0]
    if wake:
        head = f"Waking node {win.node} for {pod.key}, its best placement"
    else:
        head = f"Successfully assigned {pod.key} to {win.node}"
    what = f"{d.mode}, {d.workload_type or 'no workload type'}, w={d.weight:.2f}"
    if d.fallback:
        text = f"{head} ({what}; {d.fallback_reason}): {win.why}"
    else:
        text = f"{head} ({what}): {win.why}"
    if len(top) > 1:
        text += f"; runner-up {top[1].why}"
    return text


def schedule_one(
    pod: PodInfo,
    snapshot: ClusterSnapshot,
    params: ScheduleParams,
    *,
    explain: bool = False,
    registry: Registry | None = None,
) -> Decision:
    """Decide where ``pod`` goes in ``snapshot`` under ``params``. Never raises on bad input.

    ``registry``: the plugins (None: the in-tree ones). A mode it has no score
    plugin for is a configuration error (``ValueError``).
    """
    registry = registry or default_registry()
    scorer = registry.scorer(params.mode)
    weight = parse_weight(pod, params.default_weight)
    if isinstance(weight, InputError):
        return Decision(pod=pod.key, mode=params.mode, error=weight)
    parsed_type = parse_workload_type(pod)
    if isinstance(parsed_type, InputError):
        return Decision(pod=pod.key, mode=params.mode, weight=weight, error=parsed_type)
    workload_type = parsed_type if parsed_type is not None else params.default_workload_type
    # What only the mode reads (cluster-energy: the work annotation); others ignore it.
    if scorer.validate is not None and (bad := scorer.validate(pod)) is not None:
        return Decision(pod=pod.key, mode=params.mode, weight=weight, error=bad)

    table = snapshot.table
    names = registry.filter_names
    if explain:
        verdicts = reference_outcome(pod, snapshot, registry)
        feasible = np.fromiter(
            (code == 0 for code, _ in verdicts), dtype=np.bool_, count=len(verdicts)
        )
        hist: dict[str, int] = {}
        for _, reasons in verdicts:
            for r in reasons:
                hist[r] = hist.get(r, 0) + 1
    else:
        outcome = run_filters(pod, snapshot, registry)
        feasible = outcome.feasible
        hist = outcome.histogram()
    feasible_count = int(np.count_nonzero(feasible))
    wake = _wake_candidates(pod, snapshot, feasible, workload_type, scorer, registry)

    base = Decision(
        pod=pod.key,
        mode=params.mode,
        workload_type=workload_type,
        weight=weight,
        total_nodes=table.size,
        feasible_count=feasible_count,
        reasons=MappingProxyType(hist),
    )
    results: tuple[NodeResult, ...] = ()
    if feasible_count == 0 and (wake is None or not wake[1].any()):
        if explain:
            results = tuple(
                NodeResult(table.names[i], False, names[code - 1], reasons)
                for i, (code, reasons) in enumerate(verdicts)
            )
        return replace(
            base, node_results=results, failed_message=fit_error_message(table.size, hist)
        )

    asleep, to_wake = wake if wake is not None else (None, None)
    if to_wake is not None:
        feasible = feasible | to_wake
    scores = compute_scores(
        pod, snapshot, feasible, workload_type, weight, params, scorer, asleep, to_wake
    )
    order = rank(scores, feasible, None if explain else params.detail_top_k)
    top = tuple(
        breakdown(scores, snapshot, params, scorer, i, r) for r, i in enumerate(order, start=1)
    )
    if explain:
        by_node = {b.node: b for b in top}
        results = tuple(
            NodeResult(
                table.names[i],
                code == 0,
                names[code - 1] if code else None,
                reasons,
                by_node.get(table.names[i]),
                wake=code != 0 and table.names[i] in by_node,
            )
            for i, (code, reasons) in enumerate(verdicts)
        )
    wakes = to_wake is not None and bool(to_wake[order[0]])
    decided = replace(
        base,
        node=None if wakes else top[0].node,
        wake_node=top[0].node if wakes else None,
        runner_up=top[1].node if len(top) > 1 else None,
        ranking=top,
        node_results=results,
        part=(
            scorer.decision_part(scores)
            if scorer.decision_part is not None and not scores.fallback
            else None
        ),
        fallback=scores.fallback,
        fallback_reason=scores.fallback_reason,
    )
    text = _scheduled_message(pod, top, decided, wakes)
    if wakes:
        return replace(decided, wake_message=text)
    return replace(decided, scheduled_message=text)


def _wake_candidates(
    pod: PodInfo,
    snapshot: ClusterSnapshot,
    feasible: BoolArray,
    workload_type: WorkloadType | None,
    scorer: ScorePlugin,
    registry: Registry,
) -> tuple[BoolArray, BoolArray] | None:
    """``(asleep, wake)`` for a mode that scores sleeping nodes, or None (no node sleeps,
    or the mode does not count wake-ups: then nothing differs from before).

    A sleeping node is a candidate only with figures for the pod's workload type (its
    wake is weighed against the work); a pod without a type, or one whose feasible awake
    nodes all lack figures, is placed by the neutral policy among the awake nodes, as
    before (and when nothing awake fits, the caller's wake choice applies).
    """
    if not scorer.scores_asleep or workload_type is None:
        return None
    sleeping = sleeping_nodes(snapshot)
    if sleeping is None:
        return None
    has = ~np.isnan(snapshot.table.perf[workload_type])
    if feasible.any() and not (feasible & has).any():
        return None
    wake = wake_candidates(pod, snapshot, feasible, sleeping, registry) & has
    return sleeping.asleep, wake
