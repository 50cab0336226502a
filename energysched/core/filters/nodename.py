"""NodeName: a pod with ``spec.nodeName`` fits only that node.

The controller never schedules such pods (they are not ours: the kubelet runs
them); the filter exists so that ``explain`` and the simulator agree with
kube-scheduler on them.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import Filter, Rejection, SameReason
from energysched.core.nodetable import BoolArray, NodeTable
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.values import NodeInfo, PodInfo

NAME: Final = "NodeName"
REASON: Final = "node(s) didn't match the requested node name"


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return (REASON,) if pod.node_name and pod.node_name != node.name else ()


def passing(pod: PodInfo, table: NodeTable) -> BoolArray | None:
    """Nodes that pass, or ``None`` when all do."""
    if not pod.node_name:
        return None
    mask = np.zeros(table.size, dtype=np.bool_)
    i = table.index.get(pod.node_name)
    if i is not None:
        mask[i] = True
    return mask


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    mask = passing(pod, snap.table)
    return None if mask is None else SameReason(~mask, REASON)


PLUGIN: Final = Filter(NAME, 20, check, filter_all)
