"""Filter plugins with kube-scheduler semantics and reason strings, one module each.

Each module defines ``PLUGIN`` (see :mod:`energysched.core.plugin`); the
registry orders them by ``order``, kube-scheduler's default profile. A node
reports the reason(s) of the *first* filter it fails::

    NodeUnschedulable, NodeName, TaintToleration, NodeAffinity, NodePorts, NodeResourcesFit

Two paths run the same plugins:

- :func:`reference_filter` — per node, each plugin's ``check`` (plain Python,
  readable against upstream); used by explain mode.
- :func:`run_filters` — all nodes at once, each plugin's ``filter``:
  unschedulable/taint verdicts once per taint class, nodeSelector/affinity
  through the label index, host ports only on nodes that use any, resource fit
  as numpy comparisons. The property test in ``tests/unit/core`` holds the two
  to identical results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from energysched.core.plugin import Registry, Rejection, default_registry
from energysched.core.snapshot import BoolArray, ClusterSnapshot, NodeUsage
from energysched.core.values import NodeInfo, PodInfo


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


def reference_outcome(
    pod: PodInfo, snap: ClusterSnapshot, registry: Registry | None = None
) -> list[tuple[int, tuple[str, ...]]]:
    """:func:`reference_filter` for every node, in table order (explain mode)."""
    return [
        reference_filter(pod, node, snap.usage(i), registry) for i, node in enumerate(snap.nodes)
    ]


#: The default chain's plugin names, in order (``failed_by`` codes index it from 1).
FILTER_NAMES: Final = default_registry().filter_names
