"""What a plugin is and what it sees: the kernel's interface, as kube-scheduler's framework.

A **filter plugin** (one module in :mod:`energysched.core.filters`) has

- ``name`` (the plugin name shown in explain, e.g. ``NodeResourcesFit``) and
  ``order`` (its place in the chain; kube-scheduler's default profile order);
- ``check(pod, node, usage)``: the reference verdict for one node, the reasons
  it rejects the node for (``()`` = passes), readable against upstream; the
  explain path runs it;
- ``filter(pod, snap)``: the same verdict for every node at once, as a
  :class:`Rejection` (``None`` when every node passes); the fast path runs it.
  The property test holds the two identical.

A **score plugin** (one module in :mod:`energysched.core.scores`) serves one
scoring mode: ``mode``, ``score(inp)`` (vectorised over every node: a
:class:`ScoreInput` in, a :class:`ModeScores` out) and ``why(scores, snap,
params, i)`` (the sentence explaining node ``i``'s score). Optionally:

- ``validate(pod)``: the pod's input the mode alone reads (cluster-energy: the
  work annotation), checked before anything else; an :class:`InputError` keeps
  the pod Pending as a bad weight does.
- ``node_part(scores, snap, i)`` and ``decision_part(scores)``: the mode's own
  figures for one node's breakdown and for the decision (hybrid: the reading's
  state, the busy verdict, the counts of stale readings). Like kube-scheduler's
  CycleState under the plugin's own key, they travel in
  :attr:`ScoreBreakdown.part` and ``Decision.part`` and only the mode (and
  whoever asks for its type) reads them: the shared structures do not grow with
  each mode.

A mode that counts wake-ups sets ``scores_asleep``: the kernel then also
offers it the sleeping nodes the pod would fit once awake
(:mod:`energysched.core.sleeping`), marked in :attr:`ScoreInput.wake`, and
scores them beside the awake ones; when one of them ranks first, the decision
is to wake it (``Decision.wake_node``), not to bind. Every other mode sees a
sleeping node as infeasible, as kube-scheduler does (its taints).

The mode's vectorised figures travel in :attr:`ModeScores.part` to
:attr:`Scores.part` (``why`` and the two hooks read them there).

This module runs nothing and imports no plugin: the registry
(:mod:`energysched.core.registry`) collects them, the runtime
(:mod:`energysched.core.runtime`) runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from energysched.contract import ScoringMode, WorkloadType
from energysched.core.errors import InputError
from energysched.core.params import ScheduleParams
from energysched.core.snapshot import (
    BoolArray,
    ClusterSnapshot,
    FloatArray,
    IndexArray,
    IntArray,
    NodeUsage,
)
from energysched.core.values import NodeInfo, PodInfo

# -- what a vectorised filter returns --------------------------------------------------


class Rejection:
    """The nodes a filter rejects, and the reasons, for every node at once."""

    __slots__ = ("mask",)

    def __init__(self, mask: BoolArray) -> None:
        #: True where the node is rejected.
        self.mask = mask

    def reasons_of(self, i: int) -> tuple[str, ...]:
        """The reasons node ``i`` (a rejected one) is rejected for."""
        raise NotImplementedError

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        """Reason -> count over ``nodes`` (a subset of the rejected ones)."""
        raise NotImplementedError


class SameReason(Rejection):
    """Every rejected node for one reason (most filters)."""

    __slots__ = ("reason",)

    def __init__(self, mask: BoolArray, reason: str) -> None:
        super().__init__(mask)
        self.reason = reason

    def reasons_of(self, i: int) -> tuple[str, ...]:
        return (self.reason,)

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        count = int(np.count_nonzero(nodes))
        return {self.reason: count} if count else {}


class PerClassReason(Rejection):
    """A reason per taint class (nodes sharing unschedulable and taints)."""

    __slots__ = ("class_ids", "class_reasons")

    def __init__(
        self, mask: BoolArray, class_ids: IndexArray, class_reasons: Sequence[str | None]
    ) -> None:
        super().__init__(mask)
        self.class_ids = class_ids
        self.class_reasons = tuple(class_reasons)

    def reasons_of(self, i: int) -> tuple[str, ...]:
        r = self.class_reasons[int(self.class_ids[i])]
        return () if r is None else (r,)

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        hist: dict[str, int] = {}
        if not nodes.any():
            return hist
        per_class = np.bincount(self.class_ids[nodes], minlength=len(self.class_reasons))
        for c, count in enumerate(per_class.tolist()):
            r = self.class_reasons[c]
            if count and r is not None:
                hist[r] = hist.get(r, 0) + count
        return hist


class ManyReasons(Rejection):
    """Several independent reasons, each with its own nodes (e.g. per resource)."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[tuple[str, BoolArray]]) -> None:
        mask = np.zeros(len(parts[0][1]) if parts else 0, dtype=np.bool_)
        for _, bad in parts:
            mask |= bad
        super().__init__(mask)
        self.parts = tuple(parts)

    def reasons_of(self, i: int) -> tuple[str, ...]:
        return tuple(reason for reason, bad in self.parts if bad[i])

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        hist: dict[str, int] = {}
        if not nodes.any():
            return hist
        for reason, bad in self.parts:
            count = int(np.count_nonzero(nodes & bad))
            if count:
                hist[reason] = hist.get(reason, 0) + count
        return hist


# -- the two plugin kinds --------------------------------------------------------------


@runtime_checkable
class FilterPlugin(Protocol):
    """See the module doc."""

    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...

    def check(self, pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]: ...

    def filter(self, pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None: ...


Validate = Callable[[PodInfo], InputError | None]
NodePart = Callable[["Scores", ClusterSnapshot, int], object]
DecisionPart = Callable[["Scores"], object]


@runtime_checkable
class ScorePlugin(Protocol):
    """See the module doc. The three optional hooks are ``None`` when a mode has none."""

    @property
    def mode(self) -> str: ...

    def score(self, inp: ScoreInput) -> ModeScores: ...

    def why(self, scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str: ...

    @property
    def validate(self) -> Validate | None: ...

    @property
    def node_part(self) -> NodePart | None: ...

    @property
    def decision_part(self) -> DecisionPart | None: ...

    @property
    def scores_asleep(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter plugin made of plain functions (what the modules define)."""

    name: str
    order: int
    check: Callable[[PodInfo, NodeInfo, NodeUsage], tuple[str, ...]]
    filter: Callable[[PodInfo, ClusterSnapshot], Rejection | None]


@dataclass(frozen=True, slots=True)
class Scorer:
    """A score plugin made of plain functions (what the modules define)."""

    mode: str
    score: Callable[[ScoreInput], ModeScores]
    why: Callable[[Scores, ClusterSnapshot, ScheduleParams, int], str]
    validate: Validate | None = None
    node_part: NodePart | None = None
    decision_part: DecisionPart | None = None
    #: Score the sleeping nodes the pod fits beside the awake ones (module doc).
    scores_asleep: bool = False


# -- what a score plugin gets and returns, and the result it is part of ----------------

Kind = Literal["profile", "no-profile", "neutral"]


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
    #: Nodes that draw sleep power (:mod:`energysched.core.sleeping`), and of them the
    #: ones this pod would wake (in ``feasible`` and ``scored``). All False unless the
    #: mode ``scores_asleep`` and some node sleeps.
    asleep: BoolArray
    wake: BoolArray


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
    #: The mode's own figures (its type is the mode's), read by its ``why`` and hooks.
    part: object = None


@dataclass(frozen=True, slots=True, eq=False)
class Scores:
    """Vectorised scores of one decision (see :mod:`energysched.core.runtime`)."""

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
    pns: IntArray
    factor: FloatArray
    final: FloatArray
    max_p: float
    max_e: float
    fallback: bool
    fallback_reason: str
    #: Fallback only: free cpu / memory fraction after placement (NaN otherwise).
    free_cpu: FloatArray
    free_mem: FloatArray
    #: The score plugin's own figures (:attr:`ModeScores.part`); None in fallback.
    part: object = None


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
    base_score: float  # before the mode's own adjustments and the taint factor
    idle_watts: float | None
    prefer_no_schedule_taints: int
    taint_factor: float
    score: float
    why: str
    #: The mode's own figures for this node (its ``node_part``); None without one
    #: and for nodes the mode did not score (fallback, no profile).
    part: object = None
