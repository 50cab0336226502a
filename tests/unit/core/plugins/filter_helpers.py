"""Builders and reason strings shared by the filter plugins' table-driven tests."""

from __future__ import annotations

from typing import Any

from tests.unit.core.core_helpers import container, pod

UNSCHED = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
PORTS = "node(s) didn't have free ports for the requested pod ports"
NODENAME = "node(s) didn't match the requested node name"
LABELS = {"zone": "a", "gen": "5", "disk": "ssd", "name": "x5"}


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    return {"key": key, "value": value, "effect": effect}


def tol(**kw: str) -> dict[str, str]:
    return kw


def untolerated(key: str, value: str = "") -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


def expr(key: str, op: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": op, "values": list(values)}


def field(op: str, *values: str) -> dict[str, Any]:
    return {"key": "metadata.name", "operator": op, "values": list(values)}


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}
        }
    }


def term(*exprs: dict[str, Any], fields: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    t: dict[str, Any] = {"matchExpressions": list(exprs)}
    if fields:
        t["matchFields"] = list(fields)
    return t


def with_ports(name: str, *ports: dict[str, Any], sidecar: bool = False) -> Any:
    if sidecar:
        return pod(
            name,
            node_name="",
            containers=[container()],
            initContainers=[container(name="s", ports=ports, sidecar=True)],
        )
    return pod(name, containers=[container(ports=ports)])


def port(host: int, proto: str | None = None, ip: str | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"containerPort": host, "hostPort": host}
    if proto:
        p["protocol"] = proto
    if ip is not None:
        p["hostIP"] = ip
    return p


def placed(*ports: dict[str, Any]) -> Any:
    return pod("existing", node_name="n", containers=[container(ports=ports)])


def running(
    cpu: str | None = None,
    memory: str | None = None,
    name: str = "r",
    phase: str = "Running",
    **kw: Any,
) -> Any:
    return pod(name, cpu=cpu, memory=memory, node_name="n", phase=phase, **kw)
