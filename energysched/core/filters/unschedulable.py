"""NodeUnschedulable: ``spec.unschedulable`` nodes reject pods that do not tolerate it.

As upstream, a pod tolerating the taint ``node.kubernetes.io/unschedulable:NoSchedule``
(which the node lifecycle controller mirrors from the field) also tolerates the field.
"""

from __future__ import annotations

from typing import Final

from energysched.core.snapshot import NodeUsage
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
