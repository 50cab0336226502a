"""Event texts: FailedScheduling in kube-scheduler's exact form, and Scheduled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

#: Upstream ``ErrNoNodesAvailable``, used when the cluster has no nodes at all.
NO_NODES_AVAILABLE: Final = "no nodes available to schedule pods"


def fit_error_message(total_nodes: int, histogram: Mapping[str, int]) -> str:
    """Upstream ``FitError.Error()`` (without preemption, which we do not do).

    ``"0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's
    node affinity/selector."``: entries ``"<count> <reason>"`` sorted as plain
    strings (so "10 ..." sorts before "2 ...", as upstream), joined by ", ".
    """
    if total_nodes == 0:
        return NO_NODES_AVAILABLE
    msg = f"0/{total_nodes} nodes are available:"
    entries = sorted(f"{count} {reason}" for reason, count in histogram.items())
    if entries:
        msg += f" {', '.join(entries)}."
    return msg
