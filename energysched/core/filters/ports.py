"""NodePorts: a pod's host ports must not collide with those already used on the node.

Wanted ports are those with hostPort > 0 of regular and sidecar containers
(upstream ``GetHostPorts``). A (ip, protocol, port) conflicts with a used one of
the same protocol and port when either ip is the wildcard 0.0.0.0 (``""`` is
normalised to it at parse time; ``::`` is a plain address, as in
kube-scheduler's HostPortInfo) or the ips are equal; protocol
defaults to TCP (upstream ``HostPortInfo.CheckConflict``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import numpy as np

from energysched.core.interface import Filter, Rejection, SameReason
from energysched.core.snapshot import BoolArray, ClusterSnapshot, NodeUsage
from energysched.core.values import HostPort, NodeInfo, PodInfo

NAME: Final = "NodePorts"
REASON: Final = "node(s) didn't have free ports for the requested pod ports"
WILDCARD: Final = "0.0.0.0"


def conflicts(used: Iterable[HostPort], want: HostPort) -> bool:
    if want.port <= 0:
        return False
    for u in used:
        if u.port != want.port or u.protocol != want.protocol:
            continue
        if want.ip == WILDCARD or u.ip == WILDCARD or u.ip == want.ip:
            return True
    return False


def fits(pod: PodInfo, used: frozenset[HostPort]) -> bool:
    return not any(conflicts(used, p) for p in pod.host_ports)


def check(pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]:
    return () if fits(pod, usage.used_ports) else (REASON,)


def passing(pod: PodInfo, snap: ClusterSnapshot) -> BoolArray | None:
    """Nodes that pass, or ``None`` when all do. Only nodes with used ports are visited."""
    if not pod.host_ports or not snap.used_ports:
        return None
    mask = np.ones(snap.table.size, dtype=np.bool_)
    for i, used in snap.used_ports.items():
        if not fits(pod, used):
            mask[i] = False
    return mask


def filter_all(pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None:
    mask = passing(pod, snap)
    return None if mask is None else SameReason(~mask, REASON)


PLUGIN: Final = Filter(NAME, 50, check, filter_all)
