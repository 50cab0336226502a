"""The mutable cluster state the controller owns, and the snapshots it hands out.

:class:`ClusterState` is single-threaded (the controller's event loop).
Reflector events map to methods:

====================================  ============================================
node ADDED/MODIFIED                   ``upsert_node(node)`` (+ ``set_reading``)
node DELETED                          ``remove_node(name)``
pod with nodeName, not terminal       ``add_pod(pod)`` (idempotent by uid)
pod DELETED / Succeeded / Failed      ``remove_pod(uid)`` (or ``add_pod``: terminal removes)
our bind in flight                    ``assume(pod, node, at)``
bind failed                           ``forget(uid)``
EnergyProfile set swapped             ``set_knowledge_base(kb)``
before each decision / batch          ``snapshot(now)``; now and then ``prune_binds``
====================================  ============================================

A pod add/remove is O(R): the node's exact sums (Python ints) change and its
row is set to them, saturated at int64 (a sum that overflows is full). Arrays
handed to a snapshot are shared copy-on-write: the first mutation after
``snapshot()`` copies the matrix (~20 us at 5,000 x 6), later ones are in place,
and ``snapshot()`` without intervening changes reuses everything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from energysched.core.nodetable import (
    WT_CODE,
    FloatArray,
    IndexArray,
    IntArray,
    NodeTable,
    readonly,
    saturate,
)
from energysched.core.parse import parse_work, parse_workload_type
from energysched.core.snapshot import ClusterSnapshot
from energysched.core.values import (
    BASE_RESOURCES,
    PODS,
    HostPort,
    NodeInfo,
    PodInfo,
    PowerReading,
    RecentBind,
    WorkItem,
)
from energysched.core.work import WorkColumns
from energysched.kb.profiles import KnowledgeBase


@dataclass(slots=True)
class _Placed:
    node: str
    requests: Mapping[str, int]
    ports: tuple[HostPort, ...]


class ClusterState:
    """The controller's incrementally maintained cluster (see module doc)."""

    def __init__(self, kb: KnowledgeBase | None = None) -> None:
        self._kb = kb or KnowledgeBase()
        self._nodes: dict[str, NodeInfo] = {}
        self._placed: dict[str, _Placed] = {}
        self._node_requested: dict[str, Counter[str]] = {}
        self._node_ports: dict[str, Counter[HostPort]] = {}
        self._assumed: set[str] = set()
        self._binds: dict[str, RecentBind] = {}
        self._readings: dict[str, PowerReading] = {}
        self._work: dict[str, WorkItem] = {}
        self._work_cols = WorkColumns()

        self._table: NodeTable | None = None
        self._nodes_changed = False
        self._requested: IntArray = np.zeros((0, len(BASE_RESOURCES)), dtype=np.int64)
        self._requested_shared = False
        self._ports_view: Mapping[int, frozenset[HostPort]] | None = None
        self._watts: FloatArray = np.zeros(0)
        self._ts: FloatArray = np.zeros(0)
        self._readings_shared = False
        self._latest_ts = -np.inf
        # the readings in table order, patched by index as the watts are (a snapshot
        # copies it at C speed; rebuilding it from the dict cost 44 % of the loop)
        self._reading_at: list[PowerReading | None] = []
        self._readings_view: tuple[PowerReading | None, ...] | None = None
        self._binds_view: (
            tuple[tuple[RecentBind, ...], IndexArray, FloatArray, npt.NDArray[np.int8]] | None
        ) = None
        self._last: ClusterSnapshot | None = None

    # -- nodes and profiles -------------------------------------------------------

    def upsert_node(self, node: NodeInfo) -> None:
        old = self._nodes.get(node.name)
        self._nodes[node.name] = node
        if old is None:
            self._table = None
        elif old.structural_key() != node.structural_key():
            if self._table is not None:  # one node changed: patch, or rebuild when it can't
                self._table = self._table.with_node(node)
        elif old is not node:
            self._nodes_changed = True
        self._last = None

    def remove_node(self, name: str) -> None:
        if self._nodes.pop(name, None) is not None:
            self._readings.pop(name, None)
            self._table = None
            self._last = None

    def set_knowledge_base(self, kb: KnowledgeBase) -> None:
        self._kb = kb
        if self._table is not None:
            self._table = self._table.with_knowledge_base(kb)
        self._last = None

    def set_reading(self, node: str, reading: PowerReading | None) -> None:
        """The node's latest live power (``None``: it has none or it was invalid)."""
        if reading is None:
            if self._readings.pop(node, None) is None:
                return
        else:
            if self._readings.get(node) == reading:
                return
            self._readings[node] = reading
        self._readings_view = None
        self._last = None
        if self._table is not None and (i := self._table.index.get(node)) is not None:
            if self._readings_shared:
                self._watts = self._watts.copy()
                self._ts = self._ts.copy()
                self._readings_shared = False
            self._watts[i] = np.nan if reading is None else reading.watts
            self._ts[i] = np.nan if reading is None else reading.timestamp.timestamp()
            self._reading_at[i] = reading

    # -- pods -----------------------------------------------------------------------

    @staticmethod
    def _pod_key(pod: PodInfo) -> str:
        return pod.uid or pod.key

    def add_pod(self, pod: PodInfo) -> None:
        """A pod event. Bound, non-terminal pods count on their node; others are removed."""
        key = self._pod_key(pod)
        if not pod.node_name or pod.is_terminal:
            self.remove_pod(key)
            return
        self._place(key, pod, pod.node_name)
        self._track_work(key, pod, pod.node_name, None)
        self._unassume(key)

    def remove_pod(self, uid: str) -> None:
        placed = self._placed.pop(uid, None)
        if self._work.pop(uid, None) is not None:
            self._work_cols.remove(uid)
            self._last = None
        self._unassume(uid)
        if placed is not None:
            self._apply(placed, -1)

    def _unassume(self, key: str) -> None:
        if key in self._assumed:
            self._assumed.discard(key)
            self._last = None

    def assume(self, pod: PodInfo, node: str, at: datetime) -> None:
        """Our bind of ``pod`` to ``node`` is in flight: count it now, and predict its load."""
        key = self._pod_key(pod)
        self._place(key, pod, node)
        self._track_work(key, pod, node, at)
        self._assumed.add(key)
        self._last = None
        wt = parse_workload_type(pod)
        self.record_bind(RecentBind(node, key, at, wt if isinstance(wt, str) else None))

    def forget(self, uid: str) -> None:
        """The bind failed: undo :meth:`assume`."""
        if uid in self._assumed:
            self.remove_pod(uid)
        if self._binds.pop(uid, None) is not None:
            self._binds_view = None
            self._last = None

    def record_bind(self, bind: RecentBind) -> None:
        is_new = bind.pod_uid not in self._binds
        self._binds[bind.pod_uid] = bind
        self._last = None
        view, table = self._binds_view, self._table
        # Binds arrive in time order: append to the view instead of re-sorting and
        # re-indexing every recent bind before the next decision (that was O(binds)
        # Python work per decision during a burst).
        if (
            is_new
            and view is not None
            and table is not None
            and bind.node in table.index
            and (not view[0] or (view[0][-1].at, view[0][-1].pod_uid) <= (bind.at, bind.pod_uid))
        ):
            binds, bn, bt, bw = view
            code = -1 if bind.workload_type is None else WT_CODE[bind.workload_type]
            arrays = (
                np.append(bn, np.intp(table.index[bind.node])),
                np.append(bt, bind.at.timestamp()),
                np.append(bw, np.int8(code)),
            )
            for a in arrays:
                readonly(a)
            self._binds_view = ((*binds, bind), *arrays)
        else:
            self._binds_view = None

    def prune_binds(self, before: datetime) -> None:
        """Drop binds older than ``before`` (``now - staleness_window`` is enough:
        older binds are already visible in every reading that is still fresh)."""
        old = [uid for uid, b in self._binds.items() if b.at < before]
        for uid in old:
            del self._binds[uid]
        if old:
            self._binds_view = None
            self._last = None

    def _track_work(self, key: str, pod: PodInfo, node: str, assumed_at: datetime | None) -> None:
        """The typed pod's work on ``node`` (cluster-energy's backlog); untyped pods have none."""
        wt = parse_workload_type(pod)
        if not isinstance(wt, str):
            if self._work.pop(key, None) is not None:
                self._work_cols.remove(key)
                self._last = None
            return
        work = parse_work(pod)
        old = self._work.get(key)
        if pod.started_at is not None:
            since = pod.started_at.timestamp()
        elif assumed_at is not None:
            since = assumed_at.timestamp()
        else:  # bound but not started: keep what the assume said, else not started
            since = old.since if old is not None and old.node == node else float("nan")
        item = WorkItem(node, wt, work if isinstance(work, float) else float("nan"), since)
        if (
            old is None
            or old.node != item.node
            or old.workload_type != item.workload_type
            or (repr(old.work), repr(old.since)) != (repr(item.work), repr(item.since))
        ):
            self._work[key] = item
            self._work_cols.set(key, item)
            self._last = None

    def _place(self, key: str, pod: PodInfo, node: str) -> None:
        old = self._placed.get(key)
        new = _Placed(node, pod.requests, pod.host_ports)
        if old is not None:
            if old.node == new.node and old.requests == new.requests and old.ports == new.ports:
                return
            self._apply(old, -1)
        self._placed[key] = new
        self._apply(new, +1)

    def _apply(self, placed: _Placed, sign: int) -> None:
        agg = self._node_requested.setdefault(placed.node, Counter())
        for r, q in placed.requests.items():
            if r != PODS:
                agg[r] += sign * q
        agg[PODS] += sign
        if placed.ports:
            ports = self._node_ports.setdefault(placed.node, Counter())
            for p in placed.ports:
                ports[p] += sign
            self._node_ports[placed.node] = +ports  # drop zero counts
            self._ports_view = None
        self._last = None
        table = self._table
        if table is None or (i := table.index.get(placed.node)) is None:
            return
        if self._requested_shared:
            self._requested = self._requested.copy()
            self._requested_shared = False
        # Set from the exact sums (Python ints), not `row[c] += q`: int64 would wrap
        # (two 5E pods on a node read as a negative sum), and a saturated sum
        # would not come back down when a pod leaves.
        row = self._requested[i]
        row[0] = saturate(agg[PODS])
        for r in placed.requests:
            c = table.column_index.get(r)
            if c is not None and r != PODS:
                row[c] = saturate(agg[r])

    # -- snapshots ------------------------------------------------------------------

    def _rebuild(self) -> NodeTable:
        table = NodeTable(self._nodes.values(), self._kb)
        req = np.zeros((table.size, len(table.columns)), dtype=np.int64)
        for i, name in enumerate(table.names):
            for r, q in self._node_requested.get(name, {}).items():
                c = table.column_index.get(r)
                if c is not None:
                    req[i, c] = saturate(q)  # a sum that overflows int64: the node is full
        self._requested = req
        self._requested_shared = False
        self._watts = np.full(table.size, np.nan)
        self._ts = np.full(table.size, np.nan)
        self._reading_at = [None] * table.size
        for name, reading in self._readings.items():
            i = table.index.get(name, -1)
            if i >= 0:
                self._watts[i] = reading.watts
                self._ts[i] = reading.timestamp.timestamp()
                self._reading_at[i] = reading
        self._readings_shared = False
        self._ports_view = None
        self._readings_view = None
        self._binds_view = None
        self._nodes_changed = False
        self._table = table
        return table

    def snapshot(self, now: datetime) -> ClusterSnapshot:
        """An immutable view at ``now`` (cheap: see module doc)."""
        if self._last is not None:
            return self._last if self._last.now == now else self._last.at(now)
        table = self._table or self._rebuild()
        if self._nodes_changed:
            table = self._table = table.with_nodes(self._nodes)
            self._nodes_changed = False
        if not self._requested_shared:
            readonly(self._requested)
            self._requested_shared = True
        if not self._readings_shared:
            readonly(self._watts)
            readonly(self._ts)
            self._readings_shared = True
            # fmax skips NaN (no reading); once per change of readings, not per decision
            self._latest_ts = float(np.fmax.reduce(self._ts, initial=-np.inf))
        if self._ports_view is None:
            self._ports_view = MappingProxyType(
                {
                    table.index[name]: frozenset(ports)
                    for name, ports in self._node_ports.items()
                    if ports and name in table.index
                }
            )
        if self._readings_view is None:
            self._readings_view = tuple(self._reading_at)
        if self._binds_view is None:
            binds = tuple(
                sorted(
                    (b for b in self._binds.values() if b.node in table.index),
                    key=lambda b: (b.at, b.pod_uid),
                )
            )
            bn = np.fromiter((table.index[b.node] for b in binds), dtype=np.intp, count=len(binds))
            bt = np.fromiter((b.at.timestamp() for b in binds), dtype=np.float64, count=len(binds))
            bw = np.fromiter(
                (-1 if b.workload_type is None else WT_CODE[b.workload_type] for b in binds),
                dtype=np.int8,
                count=len(binds),
            )
            for a in (bn, bt, bw):
                readonly(a)
            self._binds_view = (binds, bn, bt, bw)
        binds, bn, bt, bw = self._binds_view
        snap = ClusterSnapshot(
            table=table,
            requested=self._requested,
            used_ports=self._ports_view,
            readings=self._readings_view,
            reading_watts=self._watts,
            reading_ts=self._ts,
            latest_reading_ts=self._latest_ts,
            recent_binds=binds,
            bind_node=bn,
            bind_ts=bt,
            bind_type=bw,
            assumed=frozenset(self._assumed),
            now=now,
            work=self._work_cols.arrays(table),
        )
        self._last = snap
        return snap


def build_snapshot(
    nodes: Iterable[NodeInfo],
    pods: Iterable[PodInfo] = (),
    *,
    now: datetime,
    kb: KnowledgeBase | None = None,
    readings: Mapping[str, PowerReading] | None = None,
    recent_binds: Iterable[RecentBind] = (),
) -> ClusterSnapshot:
    """A snapshot from plain lists (tests, explain, the simulator's first step).

    ``pods`` are counted on their ``node_name`` when not terminal; pods without
    a node are ignored.
    """
    state = ClusterState(kb or KnowledgeBase())
    for node in nodes:
        state.upsert_node(node)
    for pod in pods:
        state.add_pod(pod)
    for name, reading in (readings or {}).items():
        state.set_reading(name, reading)
    for bind in recent_binds:
        state.record_bind(bind)
    return state.snapshot(now)
