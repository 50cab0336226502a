"""TaintToleration: NoSchedule and NoExecute taints filter; PreferNoSchedule only scores.

Filter: the *first* taint (in node order) with effect NoSchedule or NoExecute
that no toleration tolerates rejects the node, reason
``node(s) had untolerated taint {key: value}`` (upstream reports only that one).
Toleration matching is :meth:`energysched.core.values.Toleration.tolerates`.

Score input: the number of PreferNoSchedule taints not tolerated by the pod's
tolerations whose effect is empty or PreferNoSchedule (upstream
``CountIntolerableTaintsPreferNoSchedule``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from energysched.core.interface import Filter, PerClassReason, Rejection
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.values import NodeInfo, PodInfo, Taint, Toleration

NAME: Final = "TaintToleration"
_FILTERED_EFFECTS: Final = ("NoSchedule", "NoExecute")


def reason(taint: Taint) -> str:
    return f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}"


def first_untolerated(taints: Sequence[Taint], tolerations: Sequence[Toleration]) -> Taint | None:
    for taint in taints:
        if taint.effect not in _FILTERED_EFFECTS:
            continue
        if not any(t.tolerates(taint) for t in tolerations):
            return taint
    return None


def intolerable_prefer_no_schedule(
    taints: Sequence[Taint], tolerations: Sequence[Toleration]
) -> int:
    relevant = [t for t in tolerations if t.effect in ("", "PreferNoSchedule")]
    return sum(
        1
        for taint in taints
        if taint.effect == "PreferNoSchedule" and not any(t.tolerates(taint) for t in relevant)
    )


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    taint = first_untolerated(node.taints, pod.tolerations)
    return (reason(taint),) if taint is not None else ()


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    """Once per taint class; the reason names the class's first untolerated taint."""
    table = snap.table
    untolerated = [first_untolerated(c.taints, pod.tolerations) for c in table.classes]
    per_class = np.fromiter(
        (t is not None for t in untolerated), dtype=np.bool_, count=len(untolerated)
    )
    if not per_class.any():
        return None
    return PerClassReason(
        per_class[table.class_ids],
        table.class_ids,
        [None if t is None else reason(t) for t in untolerated],
    )


PLUGIN: Final = Filter(NAME, 30, check, filter_all)
