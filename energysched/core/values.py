"""Immutable values the scheduling core works on.

These are deliberately small and free of Kubernetes client types: the
controller, ``energysched explain`` and the simulator all produce them, through
:mod:`energysched.core.parse` (from API JSON) or directly (tests, simulator).

Canonical units, as kube-scheduler's ``framework.Resource``: cpu in millicores,
memory / ephemeral-storage / hugepages / extended resources in whole units
(bytes, devices), ``pods`` as a count. The cluster-wide view is
:class:`energysched.core.snapshot.ClusterSnapshot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Final, Literal

from energysched.contract import PERFORMANCE_WEIGHT_ANNOTATION, WORKLOAD_TYPE_LABEL, WorkloadType

CPU: Final = "cpu"
MEMORY: Final = "memory"
EPHEMERAL_STORAGE: Final = "ephemeral-storage"
PODS: Final = "pods"
#: Resources every node table carries, in this column order.
BASE_RESOURCES: Final = (PODS, CPU, MEMORY, EPHEMERAL_STORAGE)

TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
#: The taint the node lifecycle controller mirrors ``spec.unschedulable`` into.
UNSCHEDULABLE_TAINT_KEY: Final = "node.kubernetes.io/unschedulable"


def _no_strings() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_ints() -> Mapping[str, int]:
    return MappingProxyType({})


def is_scalar_resource_name(name: str) -> bool:
    """``schedutil.IsScalarResourceName``: extended, hugepages, prefixed native, attachable.

    kube-scheduler ignores every other unknown name (e.g. ``storage``) when it
    aggregates requests or allocatable; so do we.
    """
    if name.startswith("hugepages-") or name.startswith("attachable-volumes-"):
        return True
    if "kubernetes.io/" in name:  # prefixed native resource
        return True
    # extended: not native (native = no "/" or a kubernetes.io/ prefix), no "requests." prefix
    return "/" in name and not name.startswith("requests.")


def is_tracked_resource(name: str) -> bool:
    """Whether the scheduler counts this resource name at all."""
    return name in BASE_RESOURCES or is_scalar_resource_name(name)


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"  # str, not TaintEffect: unknown effects must not crash us


@dataclass(frozen=True, slots=True)
class Toleration:
    """``operator`` "" means Equal, as upstream; unknown operators tolerate nothing."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        """``v1.Toleration.ToleratesTaint``.

        Empty effect matches all effects; empty key with Exists matches all keys.
        """
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator in ("", "Equal"):
            return self.value == taint.value
        return self.operator == "Exists"


@dataclass(frozen=True, slots=True)
class HostPort:
    """A host port a pod binds. ``ip`` "" is normalised to 0.0.0.0 (all addresses)."""

    port: int
    protocol: str = "TCP"
    ip: str = "0.0.0.0"


@dataclass(frozen=True, slots=True)
class NodeSelectorRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist, Gt, Lt (anything else invalidates the term)
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """Expressions and fields are ANDed; a term with neither matches nothing."""

    match_expressions: tuple[NodeSelectorRequirement, ...] = ()
    match_fields: tuple[NodeSelectorRequirement, ...] = ()


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node as the scheduler sees it.

    ``allocatable`` holds canonical integers (see module doc) for cpu, memory,
    ephemeral-storage, pods and scalar resources (``nvidia.com/gpu``, hugepages-*).
    A resource missing here is allocatable 0.
    """

    name: str
    labels: Mapping[str, str] = field(default_factory=_no_strings)
    annotations: Mapping[str, str] = field(default_factory=_no_strings)
    allocatable: Mapping[str, int] = field(default_factory=_no_ints)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False

    def structural_key(self) -> tuple[object, ...]:
        """Everything the filters and profile resolution read; annotations excluded.

        The controller's :class:`~energysched.core.state.ClusterState` rebuilds
        its node table only when this changes (annotations change every few
        seconds because the monitor writes watts there).
        """
        return (
            tuple(sorted(self.labels.items())),
            tuple(sorted(self.allocatable.items())),
            self.taints,
            self.unschedulable,
        )


@dataclass(frozen=True, slots=True)
class PodInfo:
    """A pod as the scheduler sees it.

    ``requests`` are the *effective* requests (kube's ``PodRequests``: sidecars,
    init containers, overhead, pod-level resources), canonical integers, and
    include ``pods: 1``. ``required_affinity`` is ``None`` when the pod has no
    required node affinity, and a (possibly empty) tuple of terms when it has one:
    an empty tuple matches no node, as upstream.
    """

    name: str
    namespace: str = "default"
    uid: str = ""
    labels: Mapping[str, str] = field(default_factory=_no_strings)
    annotations: Mapping[str, str] = field(default_factory=_no_strings)
    scheduler_name: str = "default-scheduler"
    node_name: str = ""
    phase: str = "Pending"
    requests: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({PODS: 1}))
    node_selector: Mapping[str, str] = field(default_factory=_no_strings)
    required_affinity: tuple[NodeSelectorTerm, ...] | None = None
    tolerations: tuple[Toleration, ...] = ()
    host_ports: tuple[HostPort, ...] = ()
    #: ``status.startTime`` (the kubelet's): when the pod began to run, if it has.
    started_at: datetime | None = None
    #: The kinds of ``metadata.ownerReferences`` (e.g. ``DaemonSet``: the monitor's
    #: power model counts such pods in a node's idle baseline).
    owner_kinds: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def workload_type_raw(self) -> str | None:
        """The raw workload-type label value (validated by the framework)."""
        return self.labels.get(WORKLOAD_TYPE_LABEL)

    @property
    def weight_raw(self) -> str | None:
        """The raw performance-weight annotation value (validated by the framework)."""
        return self.annotations.get(PERFORMANCE_WEIGHT_ANNOTATION)

    @property
    def is_terminal(self) -> bool:
        """Succeeded/Failed pods free their node's resources (the scheduler ignores them)."""
        return self.phase in ("Succeeded", "Failed")


PowerSourceState = Literal["fresh", "stale", "missing"]


@dataclass(frozen=True, slots=True)
class PowerReading:
    """The latest live power of a node (from the monitor's node annotations)."""

    watts: float
    timestamp: datetime  # timezone-aware
    source: str = "unknown"  # shelly, rapl, nvml, model: software estimates say so

    def __post_init__(self) -> None:
        if self.timestamp.tzinfo is None:
            raise ValueError("PowerReading.timestamp must be timezone-aware")


@dataclass(frozen=True, slots=True)
class RecentBind:
    """A pod bound (or assumed) to a node recently: predicted load in hybrid mode.

    A node's reading taken before ``at`` cannot show this pod's power yet, so the
    hybrid score adds the pod's predicted draw (Trimaran's lesson).
    """

    node: str
    pod_uid: str
    at: datetime  # timezone-aware
    workload_type: WorkloadType | None = None


@dataclass(frozen=True, slots=True)
class WorkItem:
    """A typed pod placed on a node: the work still to be done there (cluster-energy).

    ``work`` is in the knowledge base's units for ``workload_type`` (NaN: the pod
    has no work annotation, the mode's default applies); ``since`` is when it
    began to run, POSIX seconds (NaN: not started yet).
    """

    node: str
    workload_type: WorkloadType
    work: float
    since: float
