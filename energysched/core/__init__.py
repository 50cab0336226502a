"""The pure scheduling core: no network, no files, no clock (``now`` is passed in).

Public surface::

    schedule_one(pod, snapshot, params, *, explain=False) -> Decision
    parse_pod(obj) / parse_node(obj) -> PodInfo | NodeInfo | InputError
    ClusterState  (the controller's incremental builder) -> ClusterSnapshot
"""

from energysched.core.errors import InputError
from energysched.core.filters import FILTER_NAMES, FilterOutcome, reference_filter, run_filters
from energysched.core.framework import Decision, NodeResult, schedule_one
from energysched.core.messages import fit_error_message
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
from energysched.core.snapshot import ClusterSnapshot, ClusterState, NodeTable, NodeUsage
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
