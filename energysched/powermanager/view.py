"""What the power manager reads from node and pod objects (pure: no I/O, no clock).

Node objects become the policy's :class:`~energysched.power.policy.NodeView`; the power
state, the wake request, our taint and readiness are read here, once, the same way for the
manager, the node agent and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    KEEP_AWAKE_LABEL,
    POWER_MANAGEMENT_ENABLED,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_SINCE_ANNOTATION,
    WAKE_REQUESTED_ANNOTATION,
    PowerState,
)
from energysched.core.parse import parse_rfc3339, pod_requests
from energysched.power.policy import Resources, power_state_of

JSON = dict[str, Any]


def meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    raw = meta(obj).get("labels")
    return raw if isinstance(raw, Mapping) else {}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, str]:
    raw = meta(obj).get("annotations")
    return raw if isinstance(raw, Mapping) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(meta(obj).get("name", ""))


def managed(node: Mapping[str, Any]) -> bool:
    return labels_of(node).get(POWER_MANAGEMENT_LABEL) == POWER_MANAGEMENT_ENABLED


@dataclass(frozen=True, slots=True)
class Selector:
    """An equality/existence label selector: ``key``, ``key=value``, comma-separated (ANDed)."""

    terms: tuple[tuple[str, str | None], ...]

    @classmethod
    def parse(cls, text: str) -> Selector:
        terms: list[tuple[str, str | None]] = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not key.strip():
                raise ValueError(f"label selector {text!r}: empty key in {part!r}")
            terms.append((key.strip(), value.strip() if eq else None))
        return cls(tuple(terms))

    def matches(self, node_labels: Mapping[str, str]) -> bool:
        if not self.terms:
            return False  # an empty selector selects nothing (never "every node")
        return all(
            k in node_labels if v is None else node_labels.get(k) == v for k, v in self.terms
        )


def keep_awake(node: Mapping[str, Any], selector: Selector) -> bool:
    node_labels = labels_of(node)
    return node_labels.get(KEEP_AWAKE_LABEL) == "true" or selector.matches(node_labels)


def power_state(node: Mapping[str, Any]) -> PowerState:
    """The annotation's state; a node without one (or with a value we do not know) is awake."""
    return power_state_of(annotations_of(node))


def state_since(node: Mapping[str, Any]) -> datetime | None:
    raw = annotations_of(node).get(POWER_STATE_SINCE_ANNOTATION)
    return parse_rfc3339(raw) if isinstance(raw, str) else None


def wake_requested(node: Mapping[str, Any]) -> datetime | None:
    raw = annotations_of(node).get(WAKE_REQUESTED_ANNOTATION)
    return parse_rfc3339(raw) if isinstance(raw, str) else None


def taints(node: Mapping[str, Any]) -> list[JSON]:
    spec = node.get("spec")
    raw = spec.get("taints") if isinstance(spec, Mapping) else None
    return [t for t in raw if isinstance(t, dict)] if isinstance(raw, list) else []


def has_asleep_taint(node: Mapping[str, Any]) -> bool:
    return any(t.get("key") == ASLEEP_TAINT_KEY for t in taints(node))


def _conditions(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = obj.get("status")
    raw = status.get("conditions") if isinstance(status, Mapping) else None
    return [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []


def ready_condition(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    return next((c for c in _conditions(node) if c.get("type") == "Ready"), None)


def is_ready(node: Mapping[str, Any], heartbeat_after: datetime | None = None) -> bool:
    """Ready=True; with ``heartbeat_after``, only if kubelet reported so after that time.

    Why the heartbeat: the node lifecycle controller marks a silent node NotReady only after
    its grace period (40 s by default, longer on many clusters), so right after a node went
    to sleep its Ready condition may still say True. A wake is complete when kubelet has
    posted Ready since the wake began.
    """
    cond = ready_condition(node)
    if cond is None or cond.get("status") != "True":
        return False
    if heartbeat_after is None:
        return True
    beat = cond.get("lastHeartbeatTime")
    seen = parse_rfc3339(beat) if isinstance(beat, str) else None
    return seen is not None and seen >= heartbeat_after


def allocatable(node: Mapping[str, Any]) -> Resources:
    from energysched.core.parse import parse_node

    alloc = getattr(parse_node(cast(JSON, node)), "allocatable", None)
    if not isinstance(alloc, Mapping):
        return Resources()  # a node object we cannot read offers nothing
    return _resources(alloc)


def pod_node(pod: Mapping[str, Any]) -> str:
    spec = pod.get("spec")
    return str(spec.get("nodeName") or "") if isinstance(spec, Mapping) else ""


def pod_phase(pod: Mapping[str, Any]) -> str:
    status = pod.get("status")
    return str(status.get("phase") or "") if isinstance(status, Mapping) else ""


def finished(pod: Mapping[str, Any]) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def controller_kind(pod: Mapping[str, Any]) -> str | None:
    """The kind of the pod's controlling owner (``controller: true``), if any."""
    owners = meta(pod).get("ownerReferences")
    if not isinstance(owners, list):
        return None
    for o in owners:
        if isinstance(o, Mapping) and o.get("controller") is True:
            return str(o.get("kind") or "") or None
    return None


def is_daemon_or_mirror(pod: Mapping[str, Any]) -> bool:
    """DaemonSet pods and static (mirror) pods stay on a sleeping node: they do not count."""
    if "kubernetes.io/config.mirror" in annotations_of(pod):
        return True
    return controller_kind(pod) == "DaemonSet"


def requests_of(pod: Mapping[str, Any]) -> Resources:
    reqs = pod_requests(cast(JSON, pod))
    if not isinstance(reqs, Mapping):
        return Resources()
    return _resources(reqs)


def _resources(amounts: Mapping[str, Any]) -> Resources:
    """Canonical amounts (cpu in millicores, memory in bytes) as the policy's Resources;
    extended resources (a ``/`` in the name: ``nvidia.com/gpu``) in units."""
    extended = {k: float(v) for k, v in amounts.items() if "/" in k}
    return Resources(
        float(amounts.get("cpu", 0)), float(amounts.get("memory", 0)), MappingProxyType(extended)
    )


@dataclass(frozen=True, slots=True)
class NodePods:
    """The pods bound to one node that are not finished."""

    requested: Resources
    workload: tuple[str, ...]  # namespace/name of pods other than DaemonSet and mirror pods


def pods_by_node(pods: Iterable[Mapping[str, Any]]) -> dict[str, NodePods]:
    acc: dict[str, tuple[Resources, list[str]]] = {}
    for pod in pods:
        node = pod_node(pod)
        if not node or finished(pod):
            continue
        req, names = acc.get(node, (Resources(), []))
        r = requests_of(pod)
        req = Resources(req.cpu_milli + r.cpu_milli, req.memory_bytes + r.memory_bytes)
        if not is_daemon_or_mirror(pod):
            names.append(f"{meta(pod).get('namespace', '')}/{name_of(pod)}")
        acc[node] = (req, names)
    return {n: NodePods(req, tuple(sorted(names))) for n, (req, names) in acc.items()}


def unschedulable_pending(pod: Mapping[str, Any]) -> bool:
    """Pending, unbound, and a scheduler said it fits no node (PodScheduled=False,
    reason Unschedulable), as cluster-autoscaler reads it."""
    if pod_node(pod) or pod_phase(pod) not in ("", "Pending"):
        return False
    if meta(pod).get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "PodScheduled"
        and c.get("status") == "False"
        and c.get("reason") == "Unschedulable"
        for c in _conditions(pod)
    )
