"""Builders shared by the core unit tests (API-shaped dicts through the real parsers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from energysched.contract import PERFORMANCE_WEIGHT_ANNOTATION, WORKLOAD_TYPE_LABEL
from energysched.core import (
    InputError,
    NodeInfo,
    PodInfo,
    PowerReading,
    parse_node,
    parse_pod,
    reference_filter,
    run_filters,
)
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
T = TypeVar("T")


def ok(value: T | InputError) -> T:
    assert not isinstance(value, InputError), value
    return value


def node(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "8Gi",
    pods: str = "110",
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Mapping[str, str]] = (),
    unschedulable: bool = False,
    extra: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
) -> NodeInfo:
    return ok(
        parse_node(
            {
                "metadata": {
                    "name": name,
                    "labels": {"kubernetes.io/hostname": name, **(labels or {})},
                    "annotations": dict(annotations or {}),
                },
                "spec": {"taints": list(taints), "unschedulable": unschedulable},
                "status": {
                    "allocatable": {"cpu": cpu, "memory": memory, "pods": pods, **(extra or {})}
                },
            }
        )
    )


def container(
    cpu: str | None = None,
    memory: str | None = None,
    *,
    name: str = "c",
    extra: Mapping[str, str] | None = None,
    ports: Iterable[Mapping[str, Any]] = (),
    sidecar: bool = False,
) -> dict[str, Any]:
    requests: dict[str, str] = dict(extra or {})
    if cpu is not None:
        requests["cpu"] = cpu
    if memory is not None:
        requests["memory"] = memory
    c: dict[str, Any] = {"name": name, "resources": {"requests": requests}, "ports": list(ports)}
    if sidecar:
        c["restartPolicy"] = "Always"
    return c


def pod(
    name: str = "p",
    *,
    cpu: str | None = None,
    memory: str | None = None,
    workload: str | None = None,
    weight: str | None = None,
    containers: list[dict[str, Any]] | None = None,
    node_name: str = "",
    uid: str | None = None,
    phase: str = "Pending",
    **spec: Any,
) -> PodInfo:
    labels = {WORKLOAD_TYPE_LABEL: workload} if workload is not None else {}
    annotations = {PERFORMANCE_WEIGHT_ANNOTATION: weight} if weight is not None else {}
    return ok(
        parse_pod(
            {
                "metadata": {
                    "name": name,
                    "namespace": "default",
                    "uid": uid or f"uid-{name}",
                    "labels": labels,
                    "annotations": annotations,
                },
                "spec": {
                    "schedulerName": "energy-scheduler",
                    "nodeName": node_name,
                    "containers": containers
                    if containers is not None
                    else [container(cpu, memory)],
                    **spec,
                },
                "status": {"phase": phase},
            }
        )
    )


def verdict(p: PodInfo, n: NodeInfo, placed: Iterable[PodInfo] = ()) -> tuple[str, ...]:
    """The reasons node ``n`` rejects ``p`` for; fast and reference paths must agree."""
    snap = build_snapshot([n], placed, now=NOW)
    outcome = run_filters(p, snap)
    code, reasons = reference_filter(p, n, snap.usage(0))
    assert int(outcome.failed_by[0]) == code
    assert outcome.reasons_of(0) == reasons
    return reasons


# -- the thesis cluster ------------------------------------------------------------------

#: tvpc: i5-2500K + GTX 1060 (fast, power-hungry); wyse: Celeron J4105, no AVX (mid);
#: rpi: Raspberry Pi 2B, ARMv7 (slow, frugal). Figures are thesis-like, not measured.
THESIS: dict[str, tuple[float, dict[str, tuple[float, float]]]] = {
    "tvpc": (
        25.0,
        {"training": (22036.0, 71.0), "inference": (9000.0, 60.0), "sequential": (800.0, 45.0)},
    ),
    "wyse": (
        6.5,
        {"training": (3000.0, 13.2), "inference": (900.0, 11.0), "sequential": (400.0, 9.5)},
    ),
    "rpi": (
        2.0,
        {"training": (1200.0, 3.5), "inference": (300.0, 3.2), "sequential": (120.0, 2.8)},
    ),
}


def profile(name: str, selector: Mapping[str, str] | None = None) -> ProfileSpec:
    idle, figs = THESIS[name]
    return ProfileSpec(
        name=name,
        node_selector=dict(selector or {"kubernetes.io/hostname": name}),
        idle_power_watts=idle,
        workloads={wt: WorkloadFigures(p, w) for wt, (p, w) in figs.items()},  # type: ignore[misc]
    )


def thesis_kb() -> KnowledgeBase:
    return KnowledgeBase.of(profile(n) for n in THESIS)


def thesis_nodes(**kw: Any) -> list[NodeInfo]:
    return [node(n, **kw) for n in THESIS]


def reading(watts: float, age_s: float, source: str = "shelly") -> PowerReading:
    from datetime import timedelta

    return PowerReading(watts=watts, timestamp=NOW - timedelta(seconds=age_s), source=source)
