"""What consolidation reads from pods, nodes and PodDisruptionBudgets (pure: no I/O).

Turns API objects into the decision's :class:`~energysched.power.consolidation.PodFacts`
(controller, local volumes, the safe-to-evict annotation, the budgets that select the pod,
which nodes would admit it) and builds the Eviction the manager posts. Which nodes admit a
pod is kube-scheduler's answer, resources aside: the core's reference filters
NodeUnschedulable, TaintToleration and NodeAffinity (resources are packed by the decision).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from energysched.contract import CA_SAFE_TO_EVICT_ANNOTATION, SAFE_TO_EVICT_ANNOTATION
from energysched.core.filters import affinity, taints, unschedulable
from energysched.core.parse import parse_node, parse_pod, parse_rfc3339
from energysched.core.snapshot import NodeUsage
from energysched.core.values import NodeInfo, PodInfo
from energysched.power.consolidation import PodFacts
from energysched.powermanager import view
from energysched.powermanager.view import controller_kind

JSON = dict[str, Any]

_NO_USAGE = NodeUsage(requested={}, used_ports=frozenset())


def local_volumes(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """Names of the pod's ``emptyDir`` and ``hostPath`` volumes (data that dies with it)."""
    spec = pod.get("spec")
    raw = spec.get("volumes") if isinstance(spec, Mapping) else None
    if not isinstance(raw, list):
        return ()
    return tuple(
        str(v.get("name", ""))
        for v in raw
        if isinstance(v, Mapping) and ("emptyDir" in v or "hostPath" in v)
    )


def safe_to_evict(pod: Mapping[str, Any]) -> bool | None:
    """Our annotation, else cluster-autoscaler's: ``"true"``, ``"false"``, or None."""
    anns = view.annotations_of(pod)
    for key in (SAFE_TO_EVICT_ANNOTATION, CA_SAFE_TO_EVICT_ANNOTATION):
        raw = anns.get(key)
        if raw == "true":
            return True
        if raw == "false":
            return False
    return None


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector (policy/v1 semantics: ``{}`` selects every pod of the
    namespace; a missing or malformed selector selects none)."""
    if not isinstance(selector, Mapping):
        return False
    match = selector.get("matchLabels") or {}
    exprs = selector.get("matchExpressions") or []
    if not isinstance(match, Mapping) or not isinstance(exprs, list):
        return False
    if any(labels.get(str(k)) != v for k, v in match.items()):
        return False
    for e in exprs:
        if not isinstance(e, Mapping):
            return False
        key, op, values = str(e.get("key", "")), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def budget_key(pdb: Mapping[str, Any]) -> str:
    return f"{view.meta(pdb).get('namespace', '')}/{view.name_of(pdb)}"


def budgets_of(pod: Mapping[str, Any], pdbs: Iterable[Mapping[str, Any]]) -> tuple[str, ...]:
    ns = view.meta(pod).get("namespace", "")
    labels = view.labels_of(pod)
    return tuple(
        sorted(
            budget_key(b)
            for b in pdbs
            if view.meta(b).get("namespace", "") == ns
            and selector_matches((b.get("spec") or {}).get("selector"), labels)
        )
    )


def disruptions_allowed(pdbs: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``status.disruptionsAllowed`` per budget (none yet, or not a number: 0)."""
    out: dict[str, int] = {}
    for b in pdbs:
        status = b.get("status")
        raw = status.get("disruptionsAllowed") if isinstance(status, Mapping) else None
        out[budget_key(b)] = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
    return out


def node_infos(nodes: Iterable[Mapping[str, Any]]) -> dict[str, NodeInfo]:
    out: dict[str, NodeInfo] = {}
    for node in nodes:
        info = parse_node(cast(JSON, node))
        if isinstance(info, NodeInfo):
            out[info.name] = info
    return out


def admitted_by(pod: Mapping[str, Any], nodes: Mapping[str, NodeInfo]) -> frozenset[str]:
    """The nodes kube-scheduler's filters would admit ``pod`` on, resources aside (an
    unreadable pod: none)."""
    info = parse_pod(cast(JSON, pod))
    if not isinstance(info, PodInfo):
        return frozenset()
    return frozenset(
        name
        for name, node in nodes.items()
        if not any(f.check(info, node, _NO_USAGE) for f in (unschedulable, taints, affinity))
    )


def started(pod: Mapping[str, Any]) -> float | None:
    """When the pod began to run (``status.startTime``), else its creation; epoch seconds."""
    status = pod.get("status")
    for raw in (
        status.get("startTime") if isinstance(status, Mapping) else None,
        view.meta(pod).get("creationTimestamp"),
    ):
        when = parse_rfc3339(raw) if isinstance(raw, str) else None
        if when is not None:
            return when.timestamp()
    return None


def workload_by_node(pods: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """The bound, unfinished pods other than DaemonSet and mirror pods, per node."""
    out: dict[str, list[Mapping[str, Any]]] = {}
    for pod in pods:
        node = view.pod_node(pod)
        if node and not view.finished(pod) and not view.is_daemon_or_mirror(pod):
            out.setdefault(node, []).append(pod)
    return out


def pod_facts(
    pod: Mapping[str, Any],
    pdbs: Iterable[Mapping[str, Any]],
    nodes: Mapping[str, NodeInfo],
) -> PodFacts:
    return PodFacts(
        key=f"{view.meta(pod).get('namespace', '')}/{view.name_of(pod)}",
        requests=view.requests_of(pod),
        controller=controller_kind(pod),
        local_volumes=local_volumes(pod),
        safe_to_evict=safe_to_evict(pod),
        terminating=bool(view.meta(pod).get("deletionTimestamp")),
        budgets=budgets_of(pod, pdbs),
        admitted_by=admitted_by(pod, nodes),
        started=started(pod),
    )


def eviction(pod: Mapping[str, Any]) -> JSON:
    """The policy/v1 Eviction for ``pod`` (with its uid: never evicts a replacement)."""
    m = view.meta(pod)
    body: JSON = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": view.name_of(pod), "namespace": m.get("namespace", "")},
    }
    if m.get("uid"):
        body["deleteOptions"] = {"preconditions": {"uid": m["uid"]}}
    return body
