"""What the scheduler knows of the cluster, kept from watch events.

One mapping from Kubernetes objects to the pure core's state, shared by the
scheduler's reflectors and ``explain`` (which feeds it one LIST), so the two
can never disagree on how a pod, node or profile counts. Each pod is parsed
once, here: the scheduler decides on the parsed pod kept in :attr:`pods`
instead of parsing the object again when it comes out of the queue.

Handlers are synchronous and quick; they say what changed so that the caller
(the controller) decides about its queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict, cast

import structlog

from energysched import contract
from energysched.core.errors import InputError
from energysched.core.parse import parse_node, parse_pod, parse_power_reading
from energysched.core.state import ClusterState
from energysched.core.values import PodInfo
from energysched.kb.book import ProfileBook
from energysched.kube.client import JSON
from energysched.kube.reflector import EventType, object_key
from energysched.learning.knowledge import Knowledge

log = structlog.get_logger(__name__)

#: Terminal pods hold no resources; kube-scheduler's informer skips them too.
TERMINAL_PODS_EXCLUDED = "status.phase!=Succeeded,status.phase!=Failed"


# Typed views of the fields the scheduler reads (the objects are plain JSON; a
# view documents and checks what is read, without copying).
class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    resourceVersion: str
    generation: int
    labels: dict[str, str]
    annotations: dict[str, str]
    deletionTimestamp: str


class SchedulingGate(TypedDict):
    name: str


class PodCondition(TypedDict, total=False):
    type: str
    status: str
    reason: str
    message: str


class PodSpecView(TypedDict, total=False):
    nodeName: str
    schedulerName: str
    schedulingGates: list[SchedulingGate]


class PodStatusView(TypedDict, total=False):
    phase: str
    conditions: list[PodCondition]


class PodView(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PodSpecView
    status: PodStatusView


class NodeSpecView(TypedDict, total=False):
    taints: list[dict[str, str]]
    unschedulable: bool


class NodeStatusView(TypedDict, total=False):
    allocatable: dict[str, str]


class NodeView(TypedDict, total=False):
    metadata: ObjectMeta
    spec: NodeSpecView
    status: NodeStatusView


def pod_view(obj: Mapping[str, Any]) -> PodView:
    return cast(PodView, obj)


def node_view(obj: Mapping[str, Any]) -> NodeView:
    return cast(NodeView, obj)


PodChange = Literal["deleted", "unchanged", "updated"]


@dataclass
class PodUpdate:
    change: PodChange
    #: True when capacity was freed (a pod deleted or finished).
    freed: bool = False
    bound: bool = False
    terminating: bool = False


@dataclass
class ClusterMirror:
    state: ClusterState = field(default_factory=ClusterState)
    book: ProfileBook = field(default_factory=ProfileBook)
    #: Which figures the modes read (config ``knowledge``, ``exploration``).
    knowledge: Knowledge = "spec"
    exploration: float = 0.0
    #: Every pod parsed once, by key (a PodInfo, or why it cannot be used).
    pods: dict[str, PodInfo | InputError] = field(default_factory=dict)
    _bad_readings: dict[str, str] = field(default_factory=dict)
    #: What of each node was last given to ``state.upsert_node`` (see node_event).
    _node_views: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    def pod_event(self, event: EventType, obj: JSON, old: JSON | None) -> PodUpdate:
        key = object_key(obj)
        pod = pod_view(obj)
        meta = pod.get("metadata") or ObjectMeta()
        if event == "DELETED":
            self.state.remove_pod(meta.get("uid", ""))
            self.pods.pop(key, None)
            return PodUpdate("deleted", freed=True)
        if (
            event == "MODIFIED"
            and old is not None
            and key in self.pods
            and scheduling_view(old) == scheduling_view(obj)
        ):
            # Status-only churn (KWOK or a kubelet reporting a running pod): nothing
            # a decision depends on changed. Skipping it keeps the loop free for binds.
            return PodUpdate("unchanged")
        parsed = parse_pod(obj)
        self.pods[key] = parsed
        bound = bool((pod.get("spec") or PodSpecView()).get("nodeName"))
        freed = False
        if isinstance(parsed, PodInfo):
            self.state.add_pod(parsed)
            freed = bound and parsed.is_terminal  # it just finished
        elif bound:
            # The API server accepted this pod, so its node really holds it; we
            # cannot count its requests. Say so, with the offending value.
            log.warning("cannot account a bound pod", pod=key, error=parsed.message)
        return PodUpdate(
            "updated",
            freed=freed,
            bound=bound,
            terminating=bool(meta.get("deletionTimestamp")),
        )

    def node_event(self, event: EventType, obj: JSON, old: JSON | None) -> bool:
        """Apply a node event; True when where pods fit may have changed."""
        name = str((node_view(obj).get("metadata") or ObjectMeta()).get("name"))
        if event == "DELETED":
            self.state.remove_node(name)
            self._bad_readings.pop(name, None)
            self._node_views.pop(name, None)
            return False
        node = parse_node(obj)
        if isinstance(node, InputError):
            log.warning("node ignored: invalid", node=name, error=node.message)
            self.state.remove_node(name)
            self._node_views.pop(name, None)
            return False
        view = _node_view(obj)
        if self._node_views.get(name) != view:
            # Only when the node itself changed since we last applied it (not judged by
            # the watch's previous object: relists): a new node object, even an equal
            # one, makes the next snapshot re-collect every node, O(nodes) per decision,
            # and the monitor's readings and heartbeats arrive many times a second.
            self.state.upsert_node(node)
            self._node_views[name] = view
        reading = parse_power_reading(node)
        if isinstance(reading, InputError):
            if self._bad_readings.get(name) != reading.message:
                self._bad_readings[name] = reading.message
                log.warning("invalid power reading ignored", node=name, error=reading.message)
            reading = None
        else:
            self._bad_readings.pop(name, None)
        self.state.set_reading(name, reading)
        return old is None or structural(old) != structural(obj)

    def profile_event(self, event: EventType, obj: JSON, old: JSON | None) -> bool:
        """Apply an EnergyProfile event; True when the knowledge base may have changed."""
        meta = (obj.get("metadata") or {}) if isinstance(obj, Mapping) else {}
        name = str(meta.get("name"))
        if event == "MODIFIED" and old is not None and generation(old) == generation(obj):
            # A status-only change (the operator's): only learned figures matter, and
            # only when the modes read them.
            before = self.book.learned_of(name)
            self.book.set_status(name, obj.get("status"))
            if self.knowledge == "spec" or self.book.learned_of(name) == before:
                return False  # matchedNodes and the like: no figure changed
            self.state.set_knowledge_base(self.book.knowledge_base("learned", self.exploration))
            return True
        if event == "DELETED":
            self.book.delete(name)
        else:
            failure = self.book.upsert(obj)
            if failure is not None:
                kept = (
                    "keeping its last valid version"
                    if name in self.book.kb.profiles
                    else "not used"
                )
                log.warning("invalid EnergyProfile", profile=name, error=str(failure), action=kept)
        self.state.set_knowledge_base(self.book.knowledge_base(self.knowledge, self.exploration))
        return True

    def set_knowledge(self, knowledge: Knowledge, exploration: float) -> bool:
        """Switch which figures the modes read; True when it changed (hot reload)."""
        if (knowledge, exploration) == (self.knowledge, self.exploration):
            return False
        self.knowledge, self.exploration = knowledge, exploration
        self.state.set_knowledge_base(self.book.knowledge_base(knowledge, exploration))
        return True


def scheduling_view(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a pod a decision can depend on (not its status details)."""
    pod = pod_view(obj)
    meta = pod.get("metadata") or ObjectMeta()
    phase = (pod.get("status") or PodStatusView()).get("phase")
    return (
        pod.get("spec"),
        meta.get("labels"),
        meta.get("annotations"),
        meta.get("deletionTimestamp"),
        phase in ("Succeeded", "Failed"),
    )


def generation(obj: Mapping[str, Any]) -> object:
    return (obj.get("metadata") or {}).get("generation")


def structural(obj: Mapping[str, Any]) -> tuple[Any, ...]:
    """What of a node can change where pods fit (not heartbeats or readings).

    The power state too: a wake that failed (taints unchanged) frees the pods waiting for
    it to be decided again at once, and cluster-energy's wake candidates follow it."""
    node = node_view(obj)
    meta = node.get("metadata") or ObjectMeta()
    spec = node.get("spec") or NodeSpecView()
    status = node.get("status") or NodeStatusView()
    return (
        tuple(sorted((meta.get("labels") or {}).items())),
        repr(spec.get("taints")),
        spec.get("unschedulable"),
        repr(status.get("allocatable")),
        (meta.get("annotations") or {}).get(contract.POWER_STATE_ANNOTATION),
    )


def scheduling_gates(obj: Mapping[str, Any]) -> list[str]:
    gates = (pod_view(obj).get("spec") or PodSpecView()).get("schedulingGates") or []
    return [str(g.get("name")) if isinstance(g, Mapping) else str(g) for g in gates]


def has_condition(obj: Mapping[str, Any], type_: str, reason: str) -> bool:
    conditions = (pod_view(obj).get("status") or PodStatusView()).get("conditions") or []
    return any(
        isinstance(c, Mapping) and c.get("type") == type_ and c.get("reason") == reason
        for c in conditions
    )


_READING_ANNOTATIONS = frozenset(
    (contract.CURRENT_WATTS_ANNOTATION, contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION)
)


def _node_view(node: Mapping[str, Any]) -> tuple[Any, ...]:
    """What ``parse_node`` reads, the live reading apart (kept by ``set_reading``)."""
    meta = node.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    return (
        meta.get("labels"),
        {k: v for k, v in annotations.items() if k not in _READING_ANNOTATIONS},
        node.get("spec"),
        (node.get("status") or {}).get("allocatable"),
    )
