"""The cluster as one decision sees it, and the state the controller keeps to make it.

Two layers, so that a snapshot per decision costs microseconds at 5,000 nodes:

:class:`NodeTable` — the *structural* part: nodes sorted by name (index order is
    the tie-break order), allocatable as an ``N x R`` int64 matrix, nodes grouped
    into taint classes (``(unschedulable, taints)``: filters run once per class),
    a lazily built inverted label index (label key -> value -> node indices, so
    nodeSelector/affinity cost one lookup per term, not one per node), and the
    EnergyProfile each node resolves to, as per-workload-type float arrays.
    Rebuilt whole (O(N log N), ~60 ms at 5,000 nodes) only when a node is added or
    removed or gains a resource no node had; one node's labels/taints/
    unschedulable/allocatable changing is patched in (:meth:`NodeTable.with_node`,
    < 1 ms); a swapped knowledge base re-resolves only the profile arrays
    (~10 ms). Annotation-only node updates (the monitor's watts) change nothing.

:class:`ClusterSnapshot` — one immutable view: a table plus the *dynamic*
    arrays (requested resources per node, used host ports, power readings, recent
    binds) and ``now``. Arrays are read-only.

:class:`ClusterState` — the mutable builder the controller owns (single-threaded,
    in its event loop). Reflector events map to methods:

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

    A pod add/remove is O(R): its effective requests are added to / subtracted
    from its node's row in place. Arrays handed to a snapshot are shared
    copy-on-write: the first mutation after ``snapshot()`` copies the matrix
    (~20 us at 5,000 x 6), later ones are in place, and ``snapshot()`` without
    intervening changes reuses everything.
"""

from __future__ import annotations

import copy
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from energysched.contract import WORKLOAD_TYPES, WorkloadType
from energysched.core.parse import parse_workload_type
from energysched.core.quantity import INT64_MAX, INT64_MIN
from energysched.core.values import (
    BASE_RESOURCES,
    PODS,
    HostPort,
    NodeInfo,
    PodInfo,
    PowerReading,
    RecentBind,
    Taint,
)
from energysched.kb.profiles import KnowledgeBase, Resolution

BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
IndexArray = npt.NDArray[np.intp]

WT_CODE: Final[Mapping[WorkloadType, int]] = MappingProxyType(
    {wt: i for i, wt in enumerate(WORKLOAD_TYPES)}
)
_INT64: Final = re.compile(r"[+-]?[0-9]+")


def parse_int64(text: str) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: the label value as an integer, or None."""
    if not _INT64.fullmatch(text):
        return None
    body = text.lstrip("+-").lstrip("0")
    if len(body) > 19:  # also keeps int() below its 4,300-digit limit
        return None
    v = int(text[0] + (body or "0")) if text[0] in "+-" else int(body or "0")
    return v if INT64_MIN <= v <= INT64_MAX else None


def saturate(v: int) -> int:
    """An exact sum as the int64 the arrays hold: a sum that overflows is full."""
    return INT64_MAX if v > INT64_MAX else INT64_MIN if v < INT64_MIN else v


def usable_figures(performance: float, power_watts: float) -> bool:
    """Performance finite and >= 0, power finite and > 0, and what scoring derives
    from them (efficiency ``P/W``, ``100*P``, ``100*P/W``) finite too: figures
    a schema admits (1e308 / 5e-324) must not turn into an inf or NaN score."""
    if not (math.isfinite(performance) and performance >= 0):
        return False
    if not (math.isfinite(power_watts) and power_watts > 0):
        return False
    eff = performance / power_watts  # a float division overflows to inf, it does not raise
    return math.isfinite(eff) and math.isfinite(100.0 * performance) and math.isfinite(100.0 * eff)


def _readonly(a: npt.NDArray[np.generic]) -> None:
    a.flags.writeable = False


@dataclass(frozen=True, slots=True)
class TaintClass:
    """Nodes sharing these fields share the NodeUnschedulable and taint verdicts."""

    unschedulable: bool
    taints: tuple[Taint, ...]


class NodeTable:
    """The structural, rarely changing part of a snapshot (see module doc)."""

    __slots__ = (
        "_label_has",
        "_label_ints",
        "_label_values",
        "allocatable",
        "class_ids",
        "classes",
        "column_index",
        "columns",
        "default_extra_watts",
        "headroom",
        "idle",
        "index",
        "kb",
        "names",
        "nodes",
        "perf",
        "power",
        "profiles",
        "size",
    )

    nodes: tuple[NodeInfo, ...]
    names: tuple[str, ...]
    index: Mapping[str, int]
    size: int
    columns: tuple[str, ...]
    column_index: Mapping[str, int]
    allocatable: IntArray
    classes: tuple[TaintClass, ...]
    class_ids: IndexArray
    kb: KnowledgeBase
    profiles: tuple[Resolution | None, ...]
    perf: Mapping[WorkloadType, FloatArray]
    power: Mapping[WorkloadType, FloatArray]
    idle: FloatArray
    headroom: Mapping[WorkloadType, FloatArray]
    default_extra_watts: FloatArray
    _label_values: dict[str, dict[str, IndexArray]]
    _label_has: dict[str, BoolArray]
    _label_ints: dict[str, tuple[IndexArray, IntArray]]

    def __init__(self, nodes: Iterable[NodeInfo], kb: KnowledgeBase) -> None:
        ordered = tuple(sorted(nodes, key=lambda n: n.name))
        self.nodes = ordered
        self.names = tuple(n.name for n in ordered)
        self.index = MappingProxyType({name: i for i, name in enumerate(self.names)})
        if len(self.index) != len(ordered):
            raise ValueError("node names must be unique")
        self.size = n = len(ordered)

        extra = sorted({r for node in ordered for r in node.allocatable} - set(BASE_RESOURCES))
        self.columns = (*BASE_RESOURCES, *extra)
        self.column_index = MappingProxyType({r: c for c, r in enumerate(self.columns)})
        alloc = np.zeros((n, len(self.columns)), dtype=np.int64)
        for i, node in enumerate(ordered):
            for r, q in node.allocatable.items():
                alloc[i, self.column_index[r]] = saturate(q)
        _readonly(alloc)
        self.allocatable = alloc

        class_of: dict[TaintClass, int] = {}
        ids = np.empty(n, dtype=np.intp)
        for i, node in enumerate(ordered):
            tc = TaintClass(node.unschedulable, node.taints)
            ids[i] = class_of.setdefault(tc, len(class_of))
        _readonly(ids)
        self.class_ids = ids
        self.classes = tuple(class_of)

        self._label_values = {}
        self._label_has = {}
        self._label_ints = {}
        self._resolve_profiles(kb)

    # -- profiles -----------------------------------------------------------------

    def _resolve_profiles(self, kb: KnowledgeBase) -> None:
        """Per node: the profile, and per workload type its figures (NaN = no data).

        Figures are usable when :func:`usable_figures` says so; anything else
        is "no data" for that type, which can never win (PEAKS lesson). Idle
        power that is not finite and >= 0 is NaN: hybrid mode then cannot call
        the node busy.
        """
        n = self.size
        # Resolution depends only on the labels some profile selects on: group
        # the nodes by those and resolve once per group (not once per node).
        keys = sorted({k for p in kb.profiles.values() for k in p.node_selector})
        groups: dict[tuple[str | None, ...], list[int]] = {}
        for i, node in enumerate(self.nodes):
            labels = node.labels
            groups.setdefault(tuple(labels.get(k) for k in keys), []).append(i)
        profiles: list[Resolution | None] = [None] * n
        perf = {wt: np.full(n, np.nan) for wt in WORKLOAD_TYPES}
        power = {wt: np.full(n, np.nan) for wt in WORKLOAD_TYPES}
        idle = np.full(n, np.nan)
        for values, members in groups.items():
            res = kb.resolve({k: v for k, v in zip(keys, values, strict=True) if v is not None})
            if res is None:
                continue
            for i in members:
                profiles[i] = res
            idx = np.asarray(members, dtype=np.intp)
            spec = res.profile
            if np.isfinite(spec.idle_power_watts) and spec.idle_power_watts >= 0:
                idle[idx] = spec.idle_power_watts
            for wt, fig in spec.workloads.items():
                if wt not in perf:
                    continue
                if usable_figures(fig.performance, fig.power_watts):
                    perf[wt][idx] = fig.performance
                    power[wt][idx] = fig.power_watts
        headroom = {}
        for wt in WORKLOAD_TYPES:
            h = np.maximum(power[wt] - np.nan_to_num(idle, nan=0.0), 0.0)
            headroom[wt] = h  # NaN where the type has no figures
        stacked = np.vstack([headroom[wt] for wt in WORKLOAD_TYPES])
        any_fig = ~np.all(np.isnan(stacked), axis=0)
        default_extra = np.zeros(n)
        if any_fig.any():
            default_extra[any_fig] = np.nanmax(stacked[:, any_fig], axis=0)
        for a in (*perf.values(), *power.values(), *headroom.values(), idle, default_extra):
            _readonly(a)
        self.kb = kb
        self.profiles = tuple(profiles)
        self.perf = MappingProxyType(perf)
        self.power = MappingProxyType(power)
        self.idle = idle
        self.headroom = MappingProxyType(headroom)
        self.default_extra_watts = default_extra

    def with_knowledge_base(self, kb: KnowledgeBase) -> NodeTable:
        """The same nodes with profiles re-resolved (label index and classes shared)."""
        other = copy.copy(self)
        other._resolve_profiles(kb)
        return other

    def with_node(self, node: NodeInfo) -> NodeTable | None:
        """The table with one existing node's labels/taints/allocatable changed.

        O(N) array copies instead of a rebuild; label-index entries are dropped
        only for the label keys that changed, profiles re-resolved only when a
        label some profile selects on changed. ``None`` when a rebuild is needed
        (unknown node, or a resource no column holds yet).
        """
        i = self.index.get(node.name)
        if i is None or any(r not in self.column_index for r in node.allocatable):
            return None
        old = self.nodes[i]
        other = copy.copy(self)
        nodes = list(self.nodes)
        nodes[i] = node
        other.nodes = tuple(nodes)
        if node.allocatable != old.allocatable:
            alloc = self.allocatable.copy()
            alloc[i, :] = 0
            for r, q in node.allocatable.items():
                alloc[i, self.column_index[r]] = saturate(q)
            _readonly(alloc)
            other.allocatable = alloc
        tc = TaintClass(node.unschedulable, node.taints)
        if tc != self.classes[int(self.class_ids[i])]:
            try:
                cid = self.classes.index(tc)
            except ValueError:
                cid = len(self.classes)
                other.classes = (*self.classes, tc)
            ids = self.class_ids.copy()
            ids[i] = cid
            _readonly(ids)
            other.class_ids = ids
        if node.labels != old.labels:
            changed = {
                k
                for k in old.labels.keys() | node.labels.keys()
                if old.labels.get(k) != node.labels.get(k)
            }
            other._label_values = {k: v for k, v in self._label_values.items() if k not in changed}
            other._label_has = {k: v for k, v in self._label_has.items() if k not in changed}
            other._label_ints = {k: v for k, v in self._label_ints.items() if k not in changed}
            selected = {k for p in self.kb.profiles.values() for k in p.node_selector}
            if changed & selected:
                other._resolve_profiles(self.kb)
        return other

    def with_nodes(self, nodes: Mapping[str, NodeInfo]) -> NodeTable:
        """The same table with node objects replaced by structurally equal ones."""
        other = copy.copy(self)
        other.nodes = tuple(nodes[name] for name in self.names)
        return other

    # -- label index --------------------------------------------------------------

    def label_values(self, key: str) -> Mapping[str, IndexArray]:
        """Label value -> indices of the nodes carrying it (built on first use)."""
        got = self._label_values.get(key)
        if got is None:
            buckets: dict[str, list[int]] = {}
            for i, node in enumerate(self.nodes):
                v = node.labels.get(key)
                if v is not None:
                    buckets.setdefault(v, []).append(i)
            got = {v: np.asarray(ix, dtype=np.intp) for v, ix in buckets.items()}
            self._label_values[key] = got
        return got

    def has_label(self, key: str) -> BoolArray:
        got = self._label_has.get(key)
        if got is None:
            got = np.zeros(self.size, dtype=np.bool_)
            for ix in self.label_values(key).values():
                got[ix] = True
            _readonly(got)
            self._label_has[key] = got
        return got

    def label_in(self, key: str, values: Iterable[str]) -> BoolArray:
        mask = np.zeros(self.size, dtype=np.bool_)
        index = self.label_values(key)
        for v in set(values):
            ix = index.get(v)
            if ix is not None:
                mask[ix] = True
        return mask

    def label_ints(self, key: str) -> tuple[IndexArray, IntArray]:
        """Nodes whose value of ``key`` parses as int64, and those integers."""
        got = self._label_ints.get(key)
        if got is None:
            idx: list[IndexArray] = []
            vals: list[IntArray] = []
            for v, ix in self.label_values(key).items():
                parsed = parse_int64(v)
                if parsed is not None:
                    idx.append(ix)
                    vals.append(np.full(len(ix), parsed, dtype=np.int64))
            got = (
                np.concatenate(idx) if idx else np.empty(0, dtype=np.intp),
                np.concatenate(vals) if vals else np.empty(0, dtype=np.int64),
            )
            self._label_ints[key] = got
        return got


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

    @classmethod
    def build(
        cls,
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

        self._table: NodeTable | None = None
        self._nodes_changed = False
        self._requested: IntArray = np.zeros((0, len(BASE_RESOURCES)), dtype=np.int64)
        self._requested_shared = False
        self._ports_view: Mapping[int, frozenset[HostPort]] | None = None
        self._watts: FloatArray = np.zeros(0)
        self._ts: FloatArray = np.zeros(0)
        self._readings_shared = False
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
        self._unassume(key)

    def remove_pod(self, uid: str) -> None:
        placed = self._placed.pop(uid, None)
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
                _readonly(a)
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
        for name, reading in self._readings.items():
            i = table.index.get(name, -1)
            if i >= 0:
                self._watts[i] = reading.watts
                self._ts[i] = reading.timestamp.timestamp()
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
            _readonly(self._requested)
            self._requested_shared = True
        if not self._readings_shared:
            _readonly(self._watts)
            _readonly(self._ts)
            self._readings_shared = True
        if self._ports_view is None:
            self._ports_view = MappingProxyType(
                {
                    table.index[name]: frozenset(ports)
                    for name, ports in self._node_ports.items()
                    if ports and name in table.index
                }
            )
        if self._readings_view is None:
            self._readings_view = tuple(self._readings.get(name) for name in table.names)
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
                _readonly(a)
            self._binds_view = (binds, bn, bt, bw)
        binds, bn, bt, bw = self._binds_view
        snap = ClusterSnapshot(
            table=table,
            requested=self._requested,
            used_ports=self._ports_view,
            readings=self._readings_view,
            reading_watts=self._watts,
            reading_ts=self._ts,
            recent_binds=binds,
            bind_node=bn,
            bind_ts=bt,
            bind_type=bw,
            assumed=frozenset(self._assumed),
            now=now,
        )
        self._last = snap
        return snap
