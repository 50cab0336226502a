"""NodeUnschedulable: ``spec.unschedulable`` nodes reject pods that do not tolerate it.

As upstream, a pod tolerating the taint ``node.kubernetes.io/unschedulable:NoSchedule``
(which the node lifecycle controller mirrors from the field) also tolerates the field.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import Filter, Rejection, SameReason
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.values import UNSCHEDULABLE_TAINT_KEY, NodeInfo, PodInfo, Taint

NAME: Final = "NodeUnschedulable"
REASON: Final = "node(s) were unschedulable"
_TAINT: Final = Taint(key=UNSCHEDULABLE_TAINT_KEY, value="", effect="NoSchedule")


def tolerates_unschedulable(pod: PodInfo) -> bool:
    return any(t.tolerates(_TAINT) for t in pod.tolerations)


def rejects(unschedulable: bool, tolerated: bool) -> bool:
    return unschedulable and not tolerated


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return (REASON,) if rejects(node.unschedulable, tolerates_unschedulable(pod)) else ()


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    """Once per taint class (nodes sharing unschedulable and taints), not per node."""
    table = snap.table
    tolerated = tolerates_unschedulable(pod)
    per_class = np.fromiter(
        (rejects(c.unschedulable, tolerated) for c in table.classes),
        dtype=np.bool_,
        count=len(table.classes),
    )
    if not per_class.any():
        return None
    return SameReason(per_class[table.class_ids], REASON)


PLUGIN: Final = Filter(NAME, 10, check, filter_all)
