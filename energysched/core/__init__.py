"""The pure scheduling core: no network, no files, no clock (``now`` is passed in).

Public surface::

    schedule_one(pod, snapshot, params, *, explain=False, registry=None) -> Decision
    parse_pod(obj) / parse_node(obj) -> PodInfo | NodeInfo | InputError
    ClusterState  (the controller's incremental builder) -> ClusterSnapshot

Layers, each importing only those below it (an import-linter contract and a
test keep it so; ``a | b``: side by side, independent)::

    framework                      schedule_one, Decision
    runtime                        run_filters, compute_scores, rank, breakdown
    registry                       the plugins a decision uses (built when asked)
    filters | scores               the plugins, one file each
    readings | sleeping            live power as hybrid and cluster-energy see it | which
                                   nodes sleep, which a decision may wake
    interface                      plugin protocols, Rejection, ScoreInput/ModeScores
    state                          the controller's mutable cluster
    snapshot | work | nodetable    what one decision reads (numpy from here up)
    parse                          API JSON to values (pod requests, quantities)
    params | values | quantity | errors | messages

Importing this package loads nothing: the names below are imported when first
used, so a light reader (the monitor) can import ``energysched.core.quantity``
or ``energysched.core.parse`` without numpy or the plugins.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from energysched.core.errors import InputError
    from energysched.core.framework import Decision, NodeResult, schedule_one
    from energysched.core.interface import ScoreBreakdown
    from energysched.core.messages import fit_error_message
    from energysched.core.nodetable import NodeTable
    from energysched.core.params import STALE_POLICIES, ScheduleParams, StalePolicy
    from energysched.core.parse import (
        parse_node,
        parse_pod,
        parse_power_reading,
        parse_weight,
        parse_workload_type,
        pod_requests,
    )
    from energysched.core.quantity import QuantityError, parse_quantity
    from energysched.core.runtime import FilterOutcome, reference_filter, run_filters
    from energysched.core.snapshot import ClusterSnapshot, NodeUsage
    from energysched.core.state import ClusterState, build_snapshot
    from energysched.core.values import (
        HostPort,
        NodeInfo,
        NodeSelectorRequirement,
        NodeSelectorTerm,
        PodInfo,
        PowerReading,
        RecentBind,
        Taint,
        Toleration,
    )

_WHERE = {
    "InputError": "errors",
    "Decision": "framework",
    "NodeResult": "framework",
    "schedule_one": "framework",
    "ScoreBreakdown": "interface",
    "fit_error_message": "messages",
    "NodeTable": "nodetable",
    "STALE_POLICIES": "params",
    "ScheduleParams": "params",
    "StalePolicy": "params",
    "parse_node": "parse",
    "parse_pod": "parse",
    "parse_power_reading": "parse",
    "parse_weight": "parse",
    "parse_workload_type": "parse",
    "pod_requests": "parse",
    "QuantityError": "quantity",
    "parse_quantity": "quantity",
    "FilterOutcome": "runtime",
    "reference_filter": "runtime",
    "run_filters": "runtime",
    "ClusterSnapshot": "snapshot",
    "NodeUsage": "snapshot",
    "ClusterState": "state",
    "build_snapshot": "state",
    "HostPort": "values",
    "NodeInfo": "values",
    "NodeSelectorRequirement": "values",
    "NodeSelectorTerm": "values",
    "PodInfo": "values",
    "PowerReading": "values",
    "RecentBind": "values",
    "Taint": "values",
    "Toleration": "values",
}

__all__ = [
    "STALE_POLICIES",
    "ClusterSnapshot",
    "ClusterState",
    "Decision",
    "FilterOutcome",
    "HostPort",
    "InputError",
    "NodeInfo",
    "NodeResult",
    "NodeSelectorRequirement",
    "NodeSelectorTerm",
    "NodeTable",
    "NodeUsage",
    "PodInfo",
    "PowerReading",
    "QuantityError",
    "RecentBind",
    "ScheduleParams",
    "ScoreBreakdown",
    "StalePolicy",
    "Taint",
    "Toleration",
    "build_snapshot",
    "fit_error_message",
    "parse_node",
    "parse_pod",
    "parse_power_reading",
    "parse_quantity",
    "parse_weight",
    "parse_workload_type",
    "pod_requests",
    "reference_filter",
    "run_filters",
    "schedule_one",
]


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
