"""A filter plugin that is not in the tree: one file, as a new in-tree plugin would be.

NodeHasSSD: pods labelled ``example.com/needs-ssd: "true"`` fit only nodes
labelled ``disk: ssd``. Placed after NodeAffinity (40), before NodePorts (50).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from energysched.core.interface import Filter, Rejection, SameReason
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.values import NodeInfo, PodInfo

NAME: Final = "NodeHasSSD"
REASON: Final = "node(s) didn't have an SSD"


def _wants(pod: PodInfo) -> bool:
    return pod.labels.get("example.com/needs-ssd") == "true"


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return (REASON,) if _wants(pod) and node.labels.get("disk") != "ssd" else ()


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    if not _wants(pod):
        return None
    return SameReason(~snap.table.label_in("disk", ("ssd",)) & np.True_, REASON)


PLUGIN: Final = Filter(NAME, 45, check, filter_all)
