"""The pure scheduling core: no network, no files, no clock (``now`` is passed in).

Public surface::

    schedule_one(pod, snapshot, params, *, explain=False) -> Decision
    parse_pod(obj) / parse_node(obj) -> PodInfo | NodeInfo | InputError
    ClusterState  (the controller's incremental builder) -> ClusterSnapshot

Modules: values (the immutable inputs), quantity and parse (API JSON to
values), nodetable / snapshot / state (kube-scheduler's cache split: the node
table, the immutable snapshot a decision reads, the mutable state the controller
keeps), plugin (the filter/score protocol and registry), filters and scores (one
plugin per file), scoring (what the modes share), framework (schedule_one).
"""

from energysched.core.errors import InputError
from energysched.core.filters import FILTER_NAMES, FilterOutcome, reference_filter, run_filters
from energysched.core.framework import Decision, NodeResult, schedule_one
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
from energysched.core.scoring import ScoreBreakdown
from energysched.core.snapshot import ClusterSnapshot, NodeUsage
from energysched.core.state import ClusterState
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

__all__ = [
    "FILTER_NAMES",
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
