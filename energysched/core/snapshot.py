"""The cluster as one decision sees it: an immutable :class:`ClusterSnapshot`.

A :class:`~energysched.core.nodetable.NodeTable` (the structural part) plus the
*dynamic* arrays (requested resources per node, used host ports, power
readings, recent binds) and ``now``. Arrays are read-only. The controller's
mutable builder is :class:`~energysched.core.state.ClusterState` (and
:func:`~energysched.core.state.build_snapshot` makes one from plain lists); a snapshot per
decision costs microseconds at 5,000 nodes because the state shares its
arrays copy-on-write.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import numpy.typing as npt

from energysched.core.nodetable import BoolArray, FloatArray, IndexArray, IntArray, NodeTable
from energysched.core.values import HostPort, NodeInfo, PowerReading, RecentBind
from energysched.core.work import NO_WORK, WorkArrays
from energysched.kb.profiles import KnowledgeBase


@dataclass(frozen=True, slots=True)
class NodeUsage:
    """What is already placed on one node (reference filter path, explain)."""

    requested: Mapping[str, int]
    used_ports: frozenset[HostPort]


@dataclass(frozen=True, slots=True, eq=False)
class ClusterSnapshot:
    """One immutable view of the cluster for one decision (see module doc).

    ``requested[i, c]`` is the sum of the effective requests (column
    ``table.columns[c]``; ``pods`` counts pods) of all non-terminal pods bound or
    assumed on node ``table.nodes[i]``. ``reading_ts`` is POSIX seconds, NaN when
    a node has no reading; ``bind_*`` are the recent binds as arrays (node index,
    POSIX seconds, workload-type code or -1).
    """

    table: NodeTable
    requested: IntArray
    used_ports: Mapping[int, frozenset[HostPort]]
    readings: tuple[PowerReading | None, ...]
    reading_watts: FloatArray
    reading_ts: FloatArray
    recent_binds: tuple[RecentBind, ...]
    bind_node: IndexArray
    bind_ts: FloatArray
    bind_type: npt.NDArray[np.int8]
    assumed: frozenset[str]
    now: datetime
    #: Typed pods placed on nodes and their work (the cluster-energy mode's backlog).
    work: WorkArrays = NO_WORK
    #: The latest reading timestamp (POSIX seconds; -inf without readings):
    #: hybrid scoring looks for readings from the future only when this is one.
    latest_reading_ts: float = -math.inf

    @property
    def nodes(self) -> tuple[NodeInfo, ...]:
        return self.table.nodes

    @property
    def kb(self) -> KnowledgeBase:
        return self.table.kb

    def usage(self, i: int) -> NodeUsage:
        row = self.requested[i]
        return NodeUsage(
            requested={r: int(row[c]) for c, r in enumerate(self.table.columns) if row[c]},
            used_ports=self.used_ports.get(i, frozenset()),
        )

    def at(self, now: datetime) -> ClusterSnapshot:
        """The same cluster at another instant (simulator, explain)."""
        return replace(self, now=now)


__all__ = ["BoolArray", "ClusterSnapshot", "FloatArray", "IndexArray", "IntArray", "NodeUsage"]
