"""NodeResourcesFit: the pod's effective requests must fit the node's free allocatable.

Upstream ``fitsRequest``, reporting *every* insufficient resource of a node:

- pods: ``"Too many pods"`` when the node already runs ``allocatable.pods`` pods
  (checked even when the pod requests nothing else);
- cpu, memory, ephemeral-storage: checked when the request is > 0,
  ``"Insufficient <name>"`` when ``request > allocatable - requested``;
- scalar resources (``nvidia.com/gpu``, hugepages-*): checked when != 0; a node
  that does not have the resource at all has allocatable 0, so any request is
  insufficient.

Reasons come in that order (scalar names sorted; upstream iterates a Go map,
the FailedScheduling histogram is sorted anyway).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import Filter, ManyReasons, Rejection
from energysched.core.snapshot import BoolArray, ClusterSnapshot, NodeUsage
from energysched.core.values import BASE_RESOURCES, PODS, NodeInfo, PodInfo

NAME: Final = "NodeResourcesFit"
TOO_MANY_PODS: Final = "Too many pods"


def reason(resource: str) -> str:
    return TOO_MANY_PODS if resource == PODS else f"Insufficient {resource}"


def checked_requests(pod: PodInfo) -> list[tuple[str, int]]:
    """The (resource, request) pairs upstream compares, in its order."""
    out: list[tuple[str, int]] = [(PODS, 1)]
    for r in BASE_RESOURCES[1:]:
        q = pod.requests.get(r, 0)
        if q > 0:
            out.append((r, q))
    for r in sorted(pod.requests):
        if r not in BASE_RESOURCES and pod.requests[r] != 0:
            out.append((r, pod.requests[r]))
    return out


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return tuple(
        reason(r)
        for r, q in checked_requests(pod)
        if q > node.allocatable.get(r, 0) - usage.requested.get(r, 0)
    )


def insufficient(pod: PodInfo, snap: ClusterSnapshot) -> tuple[tuple[str, BoolArray], ...]:
    """Per checked resource, the nodes where it is insufficient (vectorised)."""
    table = snap.table
    out = []
    for r, q in checked_requests(pod):
        c = table.column_index.get(r)
        if c is None:  # no node has it: allocatable 0 everywhere
            free = np.zeros(table.size, dtype=np.int64)
        else:
            free = table.allocatable[:, c] - snap.requested[:, c]
        out.append((r, np.asarray(q > free, dtype=np.bool_)))
    return tuple(out)


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    parts = [(reason(r), bad) for r, bad in insufficient(pod, snap)]
    return ManyReasons(parts) if parts else None


PLUGIN: Final = Filter(NAME, 60, check, filter_all)
