"""What the monitor needs from Kubernetes, as Protocols, plus pure object converters.

Nodes and pods are the core's :class:`~energysched.core.values.NodeInfo` and
:class:`~energysched.core.values.PodInfo`, read by the core's parser (exact
quantities, kube-scheduler's effective pod requests): one reader for the
scheduler and the monitor.

The monitor never talks to the API server itself; the process wiring plugs in
implementations of these (energysched's aiohttp client and reflector caches).
:mod:`energysched_monitor.kubeio` has simple ones over ``energysched.kube``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Protocol

from energysched.contract import KWOK_NODE_ANNOTATION

# The core's light layers only (no numpy, no plugins): the one reader of Kubernetes
# values the scheduler uses too.
from energysched.core.parse import parse_node, parse_pod
from energysched.core.values import NodeInfo, PodInfo
from energysched.kb.profiles import KnowledgeBase

__all__ = [
    "ClusterView",
    "NodeAnnotator",
    "NodeInfo",
    "NodeReader",
    "PodInfo",
    "is_daemon",
    "node_info",
    "pod_info",
    "simulated",
]

_EMPTY: Mapping[str, str] = MappingProxyType({})


def simulated(node: NodeInfo) -> bool:
    """A KWOK node (``kwok.x-k8s.io/node`` annotation): served by the model mode."""
    return KWOK_NODE_ANNOTATION in node.annotations


def is_daemon(pod: PodInfo) -> bool:
    """Owned by a DaemonSet: part of the node's idle baseline."""
    return "DaemonSet" in pod.owner_kinds


class NodeAnnotator(Protocol):
    """Writes annotations on a node with ONE merge patch; ``None`` removes a key.

    Raises on failure (any exception); the monitor counts it and retries later.
    """

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None: ...


class NodeReader(Protocol):
    """One node, for its labels and the ``power-source-config`` override (DaemonSet)."""

    async def get_node(self, name: str) -> NodeInfo | None:
        """None if the node does not exist; raises on API failure."""
        ...


class ClusterView(Protocol):
    """Cached cluster state for the model mode (reflector caches; reads are cheap)."""

    def has_synced(self) -> bool:
        """True once nodes, pods and profiles have been listed at least once."""
        ...

    def nodes(self) -> Iterable[NodeInfo]: ...

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        """Pods whose ``spec.nodeName`` is ``node``, in any phase."""
        ...

    def knowledge_base(self) -> KnowledgeBase: ...


# -- converters from API objects (JSON dicts): the core's one reader ------------------


def _str_map(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        return _EMPTY
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return meta if isinstance(meta, Mapping) else {}


def node_info(obj: Mapping[str, Any]) -> NodeInfo:
    """The node as the scheduler reads it (quantities exact, allocatable cpu in millicores).

    The API server validates nodes, so the core's reader takes every real one; a
    malformed object (a hand-made one) keeps its name, labels and annotations and
    has no allocatable (the power model then gives each pod the whole node).
    """
    parsed = parse_node(obj)
    if isinstance(parsed, NodeInfo):
        return parsed
    meta = _meta(obj)
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
    )


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    """The pod as the scheduler reads it: effective requests with kube-scheduler's rules
    (init containers, sidecars, overhead, pod-level resources), cpu in millicores.

    A pod the core cannot read (the API server would not have admitted it) keeps its
    identity, node, phase and labels, and requests nothing.
    """
    parsed = parse_pod(obj)
    if isinstance(parsed, PodInfo):
        return parsed
    meta = _meta(obj)
    spec = obj.get("spec") if isinstance(obj, Mapping) else None
    spec = spec if isinstance(spec, Mapping) else {}
    status = obj.get("status") if isinstance(obj, Mapping) else None
    status = status if isinstance(status, Mapping) else {}
    owners = meta.get("ownerReferences")
    return PodInfo(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        labels=_str_map(meta.get("labels")),
        node_name=str(spec.get("nodeName") or ""),
        phase=str(status.get("phase") or ""),
        owner_kinds=tuple(
            str(o.get("kind")) for o in owners or () if isinstance(o, Mapping) and o.get("kind")
        )
        if isinstance(owners, list)
        else (),
    )
