"""The node table: the structural, rarely changing part of a snapshot.

As kube-scheduler splits its cache (``NodeInfo`` list, ``Snapshot``, ``Cache``),
the core has three modules: this table, the immutable
:class:`~energysched.core.snapshot.ClusterSnapshot` one decision reads, and the
mutable :class:`~energysched.core.state.ClusterState` the controller keeps.

:class:`NodeTable` holds nodes sorted by name (index order is the tie-break
order), allocatable as an ``N x R`` int64 matrix, nodes grouped into taint
classes (``(unschedulable, taints)``: filters run once per class), a lazily
built inverted label index (label key -> value -> node indices, so
nodeSelector/affinity cost one lookup per term, not one per node), and the
EnergyProfile each node resolves to, as per-workload-type float arrays. Rebuilt
whole (O(N log N), ~60 ms at 5,000 nodes) only when a node is added or removed
or gains a resource no node had; one node's labels/taints/unschedulable/
allocatable changing is patched in (:meth:`NodeTable.with_node`, < 1 ms); a
swapped knowledge base re-resolves only the profile arrays (~10 ms).
Annotation-only node updates (the monitor's watts) change nothing.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

import numpy as np
import numpy.typing as npt

from energysched.contract import WORKLOAD_TYPES, WorkloadType
from energysched.core.quantity import INT64_MAX, INT64_MIN
from energysched.core.values import (
    BASE_RESOURCES,
    NodeInfo,
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


def readonly(a: npt.NDArray[np.generic]) -> None:
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
        readonly(alloc)
        self.allocatable = alloc

        class_of: dict[TaintClass, int] = {}
        ids = np.empty(n, dtype=np.intp)
        for i, node in enumerate(ordered):
            tc = TaintClass(node.unschedulable, node.taints)
            ids[i] = class_of.setdefault(tc, len(class_of))
        readonly(ids)
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
            readonly(a)
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
            readonly(alloc)
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
            readonly(ids)
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
            readonly(got)
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
