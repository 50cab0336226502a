"""Filters with kube-scheduler semantics and reason strings, one module per concern.

Order and short-circuit are kube-scheduler's default profile: a node reports
the reason(s) of the *first* filter it fails::

    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit

Two implementations share each module's semantics:

- :func:`reference_filter` — per node, plain Python, readable against upstream;
  used by explain mode.
- :func:`run_filters` — all nodes at once: unschedulable/taint verdicts once per
  taint class, nodeSelector/affinity through the label index, host ports only on
  nodes that use any, resource fit as numpy comparisons. The property test in
  ``tests/unit/core`` holds the two to identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from energysched.core.filters import affinity, nodename, ports, resources, taints, unschedulable
from energysched.core.snapshot import BoolArray, ClusterSnapshot, IndexArray, NodeUsage
from energysched.core.values import NodeInfo, PodInfo

Check = Callable[[PodInfo, NodeInfo, NodeUsage], tuple[str, ...]]

#: (plugin name, reference check) in kube-scheduler's default order. A node's
#: ``failed_by`` code is the 1-based position here; 0 means feasible.
FILTERS: Final[tuple[tuple[str, Check], ...]] = (
    (unschedulable.NAME, unschedulable.check),
    (nodename.NAME, nodename.check),
    (taints.NAME, taints.check),
    (affinity.NAME, affinity.check),
    (ports.NAME, ports.check),
    (resources.NAME, resources.check),
)
FILTER_NAMES: Final = tuple(name for name, _ in FILTERS)
_UNSCHED, _NODENAME, _TAINT, _AFFINITY, _PORTS, _FIT = range(1, 7)


def reference_filter(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[int, tuple[str, ...]]:
    """``(failed_by, reasons)`` for one node: the first failing filter, or ``(0, ())``."""
    for code, (_, check) in enumerate(FILTERS, start=1):
        reasons = check(pod, node, usage)
        if reasons:
            return code, reasons
    return 0, ()


@dataclass(frozen=True, slots=True, eq=False)
class FilterOutcome:
    """Feasibility of every node of a snapshot for one pod."""

    #: Per node: 0 feasible, else the 1-based index into :data:`FILTERS` that failed first.
    failed_by: npt.NDArray[np.int8]
    feasible: BoolArray
    #: Per taint class: the TaintToleration reason, or None.
    class_taint_reason: tuple[str | None, ...]
    class_ids: IndexArray
    #: NodeResourcesFit: per checked resource, where it is insufficient.
    fit: tuple[tuple[str, BoolArray], ...]

    @property
    def feasible_count(self) -> int:
        return int(np.count_nonzero(self.feasible))

    def reasons_of(self, i: int) -> tuple[str, ...]:
        code = int(self.failed_by[i])
        if code == 0:
            return ()
        if code == _UNSCHED:
            return (unschedulable.REASON,)
        if code == _NODENAME:
            return (nodename.REASON,)
        if code == _TAINT:
            r = self.class_taint_reason[int(self.class_ids[i])]
            assert r is not None
            return (r,)
        if code == _AFFINITY:
            return (affinity.REASON,)
        if code == _PORTS:
            return (ports.REASON,)
        return tuple(resources.reason(r) for r, bad in self.fit if bad[i])

    def histogram(self) -> dict[str, int]:
        """Reason -> number of nodes reporting it (upstream ``FitError`` counting)."""
        hist: dict[str, int] = {}

        def add(reason: str, count: int) -> None:
            if count:
                hist[reason] = hist.get(reason, 0) + count

        fb = self.failed_by
        add(unschedulable.REASON, int(np.count_nonzero(fb == _UNSCHED)))
        add(nodename.REASON, int(np.count_nonzero(fb == _NODENAME)))
        tainted = fb == _TAINT
        if tainted.any():
            per_class = np.bincount(self.class_ids[tainted], minlength=len(self.class_taint_reason))
            for c, count in enumerate(per_class.tolist()):
                r = self.class_taint_reason[c]
                if count and r is not None:
                    add(r, count)
        add(affinity.REASON, int(np.count_nonzero(fb == _AFFINITY)))
        add(ports.REASON, int(np.count_nonzero(fb == _PORTS)))
        unfit = fb == _FIT
        if unfit.any():
            for r, bad in self.fit:
                add(resources.reason(r), int(np.count_nonzero(unfit & bad)))
        return hist


def run_filters(pod: PodInfo, snap: ClusterSnapshot) -> FilterOutcome:
    """The vectorised filter pass over all nodes of ``snap``."""
    table = snap.table
    failed = np.zeros(table.size, dtype=np.int8)

    def mark(code: int, rejected: BoolArray) -> None:
        failed[(failed == 0) & rejected] = code

    tolerated = unschedulable.tolerates_unschedulable(pod)
    class_unsched = np.fromiter(
        (unschedulable.rejects(c.unschedulable, tolerated) for c in table.classes),
        dtype=np.bool_,
        count=len(table.classes),
    )
    untolerated = [taints.first_untolerated(c.taints, pod.tolerations) for c in table.classes]
    class_taint = np.fromiter(
        (t is not None for t in untolerated), dtype=np.bool_, count=len(untolerated)
    )
    if class_unsched.any():
        mark(_UNSCHED, class_unsched[table.class_ids])
    passing = nodename.passing(pod, table)
    if passing is not None:
        mark(_NODENAME, ~passing)
    if class_taint.any():
        mark(_TAINT, class_taint[table.class_ids])
    passing = affinity.passing(pod, table)
    if passing is not None:
        mark(_AFFINITY, ~passing)
    passing = ports.passing(pod, snap)
    if passing is not None:
        mark(_PORTS, ~passing)
    fit = resources.insufficient(pod, snap)
    if fit:
        unfit = fit[0][1].copy()
        for _, bad in fit[1:]:
            unfit |= bad
        mark(_FIT, unfit)
    return FilterOutcome(
        failed_by=failed,
        feasible=failed == 0,
        class_taint_reason=tuple(None if t is None else taints.reason(t) for t in untolerated),
        class_ids=table.class_ids,
        fit=fit,
    )


def reference_outcome(pod: PodInfo, snap: ClusterSnapshot) -> list[tuple[int, tuple[str, ...]]]:
    """:func:`reference_filter` for every node, in table order (explain mode)."""
    return [reference_filter(pod, node, snap.usage(i)) for i, node in enumerate(snap.nodes)]
