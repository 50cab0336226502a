"""What the monitor needs from Kubernetes, as Protocols, plus pure object converters.

The monitor never talks to the API server itself; the process wiring plugs in
implementations of these (energysched's aiohttp client and reflector caches).
:mod:`energysched_monitor.kubeio` has simple ones over ``energysched.kube``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from energysched.contract import KWOK_NODE_ANNOTATION, WORKLOAD_TYPE_LABEL
from energysched.kb.profiles import KnowledgeBase

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    annotations: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    allocatable_cpu: float | None = None  # cores

    @property
    def simulated(self) -> bool:
        """A KWOK node (``kwok.x-k8s.io/node`` annotation): served by the model mode."""
        return KWOK_NODE_ANNOTATION in self.annotations


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    node: str
    phase: str
    workload_type: str | None = None
    cpu_request: float | None = None  # cores, summed over the regular containers
    daemon: bool = False  # owned by a DaemonSet: part of the node's idle baseline

    @property
    def running(self) -> bool:
        return self.phase == "Running"


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


# -- converters from API objects (JSON dicts) ---------------------------------------------

_CPU = re.compile(r"^([0-9]+(?:\.[0-9]+)?|\.[0-9]+)(m|k|M|G)?$")
_SCALE = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}


def parse_cpu(quantity: object) -> float | None:
    """A CPU quantity (``"500m"``, ``"2"``, ``1.5``) in cores; None if unparseable."""
    if isinstance(quantity, bool):
        return None
    if isinstance(quantity, int | float):
        return float(quantity) if math.isfinite(quantity) and quantity >= 0 else None
    if not isinstance(quantity, str):
        return None
    match = _CPU.match(quantity.strip())
    if match is None:
        return None
    cores = float(match.group(1)) * _SCALE[match.group(2)]  # 400 digits: inf, not an error
    return cores if math.isfinite(cores) else None


def _str_map(value: Any) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        return _EMPTY
    return MappingProxyType({str(k): str(v) for k, v in value.items()})


def node_info(obj: Mapping[str, Any]) -> NodeInfo:
    meta = obj.get("metadata") or {}
    status = obj.get("status") or {}
    return NodeInfo(
        name=str(meta.get("name", "")),
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
        allocatable_cpu=parse_cpu((status.get("allocatable") or {}).get("cpu")),
    )


def pod_info(obj: Mapping[str, Any]) -> PodInfo:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    total = 0.0
    seen = False
    for container in spec.get("containers") or []:
        cpu = parse_cpu(((container.get("resources") or {}).get("requests") or {}).get("cpu"))
        if cpu is not None:
            total += cpu
            seen = True
    labels = meta.get("labels") or {}
    workload = labels.get(WORKLOAD_TYPE_LABEL)
    owners = meta.get("ownerReferences") or []
    daemon = any(isinstance(o, Mapping) and o.get("kind") == "DaemonSet" for o in owners)
    return PodInfo(
        namespace=str(meta.get("namespace", "")),
        name=str(meta.get("name", "")),
        node=str(spec.get("nodeName") or ""),
        phase=str((obj.get("status") or {}).get("phase") or ""),
        workload_type=str(workload) if workload else None,
        cpu_request=total if seen else None,
        daemon=daemon,
    )
