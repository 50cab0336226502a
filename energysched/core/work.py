"""The typed work placed on nodes, as columns: cluster-energy's backlog, per decision in numpy.

Every typed pod bound or assumed on a node carries work still to be done there
(:class:`~energysched.core.values.WorkItem`). The cluster-energy mode sums it per
node for every decision; walking thousands of placed pods in Python for each one
cost milliseconds (p99 8.8 ms at 5,000 nodes with 5,000 placed pods). The work
is therefore kept as parallel columns with O(1) insert, update and swap-remove,
and a snapshot takes them as arrays at C speed. The node of each item is kept
as its index in the node table, recomputed only when the table's index changes
(a node added or removed), not for every decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np
import numpy.typing as npt

from energysched.core.nodetable import WT_CODE, NodeTable, readonly
from energysched.core.values import WorkItem

IndexArray = npt.NDArray[np.intp]
FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int8]


@dataclass(frozen=True, slots=True, eq=False)
class WorkArrays:
    """The placed work as arrays, one entry per typed pod (read-only)."""

    #: The node's index in the snapshot's table; -1: a node the table does not hold.
    node: IndexArray
    #: The workload type's code (``nodetable.WT_CODE``).
    wt: CodeArray
    #: The amount in the knowledge base's units for the type; NaN: the mode's default.
    work: FloatArray
    #: When it began to run, POSIX seconds; NaN: not started yet.
    since: FloatArray

    @property
    def size(self) -> int:
        return int(self.node.size)


A = TypeVar("A", bound=npt.NDArray[Any])


def _frozen(a: A) -> A:
    readonly(a)
    return a


NO_WORK: Final = WorkArrays(
    _frozen(np.zeros(0, dtype=np.intp)),
    _frozen(np.zeros(0, dtype=np.int8)),
    _frozen(np.zeros(0)),
    _frozen(np.zeros(0)),
)


class WorkColumns:
    """The placed work by pod key, as columns (see module doc).

    The columns are numpy buffers with spare capacity (doubled when full), changed
    in place; a snapshot copies their used part (a memcpy, not a conversion of
    Python lists), so a snapshot taken earlier never sees a later change.
    """

    _INITIAL = 64

    def __init__(self) -> None:
        self._pos: dict[str, int] = {}
        self._keys: list[str] = []
        self._node: list[str] = []
        cap = self._INITIAL
        self._wt = np.zeros(cap, dtype=np.int8)
        self._work = np.zeros(cap)
        self._since = np.zeros(cap)
        #: ``_node`` as table indices, valid for the index mapping ``_index`` (None: stale).
        self._idx = np.full(cap, -1, dtype=np.intp)
        self._index: Mapping[str, int] | None = None
        self._arrays: WorkArrays | None = None

    def __len__(self) -> int:
        return len(self._keys)

    def _grow(self) -> None:
        cap = 2 * self._wt.size
        for name in ("_wt", "_work", "_since", "_idx"):
            old = getattr(self, name)
            new = np.full(cap, -1, dtype=old.dtype) if name == "_idx" else np.zeros(cap, old.dtype)
            new[: old.size] = old
            setattr(self, name, new)

    def set(self, key: str, item: WorkItem) -> None:
        """Insert or replace the work of the pod ``key``."""
        at = self._pos.get(key)
        if at is None:
            at = len(self._keys)
            if at == self._wt.size:
                self._grow()
            self._pos[key] = at
            self._keys.append(key)
            self._node.append(item.node)
        else:
            self._node[at] = item.node
        self._wt[at] = WT_CODE[item.workload_type]
        self._work[at], self._since[at] = item.work, item.since
        self._idx[at] = self._index.get(item.node, -1) if self._index is not None else -1
        self._arrays = None

    def remove(self, key: str) -> bool:
        """Drop the pod's work (swap with the last entry: O(1)); False if it had none."""
        at = self._pos.pop(key, None)
        if at is None:
            return False
        last = len(self._keys) - 1
        if at != last:  # the last entry takes the freed place
            self._pos[self._keys[last]] = at
            self._keys[at], self._node[at] = self._keys[last], self._node[last]
            for column in (self._wt, self._idx, self._work, self._since):
                column[at] = column[last]
        self._keys.pop()
        self._node.pop()
        self._arrays = None
        return True

    def arrays(self, table: NodeTable) -> WorkArrays:
        """The columns as arrays against ``table`` (cached until the work or the index changes)."""
        n = len(self._keys)
        if table.index is not self._index:
            self._idx[:n] = [table.index.get(node, -1) for node in self._node]
            self._index = table.index
            self._arrays = None
        if self._arrays is None:
            self._arrays = (
                WorkArrays(
                    _frozen(self._idx[:n].copy()),
                    _frozen(self._wt[:n].copy()),
                    _frozen(self._work[:n].copy()),
                    _frozen(self._since[:n].copy()),
                )
                if n
                else NO_WORK
            )
        return self._arrays
