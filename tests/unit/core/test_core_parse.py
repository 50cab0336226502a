"""API JSON -> PodInfo / NodeInfo: effective requests as kube-scheduler, clear errors."""

from __future__ import annotations

from typing import Any

import pytest

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    PERFORMANCE_WEIGHT_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
)
from energysched.core import (
    HostPort,
    InputError,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    Taint,
    Toleration,
    parse_node,
    parse_pod,
    parse_power_reading,
    parse_weight,
    parse_workload_type,
    pod_requests,
)
from tests.unit.core.core_helpers import container, node, ok, pod

GI = 2**30


def reqs(spec: dict[str, Any]) -> dict[str, int]:
    return dict(ok(pod_requests({"metadata": {"name": "p"}, "spec": spec})))


@pytest.mark.parametrize(
    ("name", "spec", "expected"),
    [
        (
            "containers add up",
            {"containers": [container("250m", "1Gi"), container("500m", "1Gi")]},
            {"cpu": 750, "memory": 2 * GI, "pods": 1},
        ),
        ("no requests: only the pod count", {"containers": [container()]}, {"pods": 1}),
        (
            "an init container larger than the containers wins",
            {"containers": [container("500m")], "initContainers": [container("2")]},
            {"cpu": 2000, "pods": 1},
        ),
        (
            "init containers take the max per resource",
            {
                "containers": [container("500m", "2Gi")],
                "initContainers": [container("1", "1Gi"), container("100m", "3Gi")],
            },
            {"cpu": 1000, "memory": 3 * GI, "pods": 1},
        ),
        (
            "a sidecar runs alongside: init = its request + sidecars started before it",
            {
                "containers": [container("500m")],
                "initContainers": [container("200m", sidecar=True), container("1")],
            },
            {"cpu": 1200, "pods": 1},
        ),
        (
            "a sidecar started after a regular init container does not add to it",
            {
                "containers": [container("500m")],
                "initContainers": [container("1"), container("200m", sidecar=True)],
            },
            {"cpu": 1000, "pods": 1},
        ),
        (
            "sidecars count with the containers",
            {
                "containers": [container("500m")],
                "initContainers": [
                    container("300m", sidecar=True),
                    container("400m", sidecar=True),
                ],
            },
            {"cpu": 1200, "pods": 1},
        ),
        (
            "overhead is added",
            {
                "containers": [container("500m", "1Gi")],
                "overhead": {"cpu": "100m", "memory": "1Gi"},
            },
            {"cpu": 600, "memory": 2 * GI, "pods": 1},
        ),
        (
            "pod-level requests replace the container sum for cpu and memory",
            {
                "containers": [container("500m", "1Gi", extra={"nvidia.com/gpu": "1"})],
                "resources": {"requests": {"cpu": "3"}},
            },
            {"cpu": 3000, "memory": GI, "nvidia.com/gpu": 1, "pods": 1},
        ),
        (
            "a limit without a request is the request (API defaulting)",
            {"containers": [{"name": "c", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}]},
            {"cpu": 2000, "memory": GI, "pods": 1},
        ),
        (
            "sums are exact, rounded once",
            {"containers": [container("0.0005"), container("0.0005")]},
            {"cpu": 1, "pods": 1},
        ),
        (
            "extended and hugepages resources are kept, unknown names dropped",
            {
                "containers": [
                    container(
                        "1", extra={"nvidia.com/gpu": "2", "hugepages-2Mi": "4Mi", "storage": "1Gi"}
                    )
                ]
            },
            {"cpu": 1000, "nvidia.com/gpu": 2, "hugepages-2Mi": 4 * 2**20, "pods": 1},
        ),
    ],
)
def test_effective_requests(name: str, spec: dict[str, Any], expected: dict[str, int]) -> None:
    assert reqs(spec) == expected, name


def test_malformed_quantity_names_value_field_and_what_is_allowed() -> None:
    err = parse_pod(
        {"metadata": {"name": "p", "namespace": "ml"}, "spec": {"containers": [container("1.5.5")]}}
    )
    assert isinstance(err, InputError)
    assert err.subject == "pod ml/p"
    assert err.field == "spec.containers[0].resources.requests[cpu]"
    assert err.value == "1.5.5"
    assert '"1.5.5"' in err.message and "Ki" in err.message and "500m" in err.message


@pytest.mark.parametrize(
    "obj",
    [
        {"metadata": {"name": "p"}, "spec": {"containers": "nope"}},
        {"metadata": {"name": "p"}, "spec": {"containers": [{"ports": [{"hostPort": "80"}]}]}},
        {"metadata": {"name": "p"}, "spec": {"nodeSelector": {"a": 1}}},
        {"metadata": {}, "spec": {}},
        {"metadata": {"name": "p"}, "spec": [1, 2]},
    ],
)
def test_malformed_structure_is_an_error_value(obj: dict[str, Any]) -> None:
    assert isinstance(parse_pod(obj), InputError)


def test_pod_fields() -> None:
    p = ok(
        parse_pod(
            {
                "metadata": {
                    "name": "train",
                    "namespace": "ml",
                    "uid": "u1",
                    "labels": {WORKLOAD_TYPE_LABEL: "training"},
                    "annotations": {PERFORMANCE_WEIGHT_ANNOTATION: "0.7"},
                },
                "spec": {
                    "schedulerName": "energy-scheduler",
                    "nodeSelector": {"disk": "ssd"},
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {"key": "gen", "operator": "Gt", "values": ["3"]}
                                        ]
                                    },
                                    {
                                        "matchFields": [
                                            {
                                                "key": "metadata.name",
                                                "operator": "In",
                                                "values": ["wyse"],
                                            }
                                        ]
                                    },
                                ]
                            }
                        }
                    },
                    "tolerations": [
                        {"operator": "Exists"},
                        {"key": "k", "value": "v", "effect": "NoSchedule"},
                    ],
                    "initContainers": [
                        {
                            "name": "side",
                            "restartPolicy": "Always",
                            "ports": [{"containerPort": 9000, "hostPort": 9000, "protocol": "UDP"}],
                        },
                        {"name": "init", "ports": [{"containerPort": 1, "hostPort": 1}]},
                    ],
                    "containers": [
                        {
                            "name": "c",
                            "ports": [
                                {"containerPort": 80, "hostPort": 8080},
                                {"containerPort": 81, "hostPort": 8081, "hostIP": "::"},
                                {"containerPort": 82, "hostPort": 8082, "hostIP": "10.0.0.1"},
                                {"containerPort": 83},
                            ],
                        }
                    ],
                },
                "status": {"phase": "Pending"},
            }
        )
    )
    assert p.key == "ml/train" and p.uid == "u1" and p.scheduler_name == "energy-scheduler"
    assert p.workload_type_raw == "training" and p.weight_raw == "0.7"
    assert p.node_selector == {"disk": "ssd"}
    assert p.required_affinity == (
        NodeSelectorTerm(match_expressions=(NodeSelectorRequirement("gen", "Gt", ("3",)),)),
        NodeSelectorTerm(match_fields=(NodeSelectorRequirement("metadata.name", "In", ("wyse",)),)),
    )
    assert p.tolerations == (
        Toleration(operator="Exists"),
        Toleration(key="k", operator="", value="v", effect="NoSchedule"),
    )
    # sidecar ports count, regular init container ports do not; only "" means all addresses
    # ("::" is a plain address to kube-scheduler's HostPortInfo)
    assert p.host_ports == (
        HostPort(9000, "UDP", "0.0.0.0"),
        HostPort(8080, "TCP", "0.0.0.0"),
        HostPort(8081, "TCP", "::"),
        HostPort(8082, "TCP", "10.0.0.1"),
    )


def test_required_affinity_absent_vs_empty() -> None:
    assert pod().required_affinity is None
    empty = pod(
        affinity={
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}
            }
        }
    )
    assert empty.required_affinity == ()


def test_parse_node() -> None:
    n = ok(
        parse_node(
            {
                "metadata": {"name": "tvpc", "labels": {"a": "b"}},
                "spec": {
                    "unschedulable": True,
                    "taints": [
                        {"key": "k", "value": "v", "effect": "NoSchedule"},
                        {"key": "p", "effect": "PreferNoSchedule"},
                    ],
                },
                "status": {
                    "allocatable": {
                        "cpu": "3900m",
                        "memory": "7Gi",
                        "pods": "110",
                        "nvidia.com/gpu": "1",
                        "ephemeral-storage": "100G",
                        "storage": "5",
                    }
                },
            }
        )
    )
    assert n.allocatable == {
        "cpu": 3900,
        "memory": 7 * GI,
        "pods": 110,
        "nvidia.com/gpu": 1,
        "ephemeral-storage": 100 * 10**9,
    }
    assert n.taints == (Taint("k", "v", "NoSchedule"), Taint("p", "", "PreferNoSchedule"))
    assert n.unschedulable and n.labels == {"a": "b"}


def test_parse_node_errors() -> None:
    err = parse_node({"metadata": {"name": "x"}, "status": {"allocatable": {"cpu": "four"}}})
    assert isinstance(err, InputError)
    assert (
        err.subject == "node x" and err.field == "status.allocatable[cpu]" and err.value == "four"
    )
    assert isinstance(
        parse_node({"metadata": {"name": "x"}, "spec": {"unschedulable": "yes"}}), InputError
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0", 0.0), ("1", 1.0), ("0.25", 0.25), (" 0.3 ", 0.3), ("1.0", 1.0), (".5", 0.5)],
)
def test_weight(raw: str, expected: float) -> None:
    assert parse_weight(pod(weight=raw), 0.5) == expected


@pytest.mark.parametrize("raw", ["abc", "1.5", "-0.1", "nan", "inf", "", "0,5", "1e5"])
def test_bad_weight_names_value_and_range(raw: str) -> None:
    err = parse_weight(pod(weight=raw), 0.5)
    assert isinstance(err, InputError)
    assert f'"{raw}"' in err.message
    assert "0.0" in err.message and "1.0" in err.message
    assert PERFORMANCE_WEIGHT_ANNOTATION in err.message


def test_default_weight_when_absent() -> None:
    assert parse_weight(pod(), 0.8) == 0.8


def test_workload_type() -> None:
    assert parse_workload_type(pod(workload="inference")) == "inference"
    assert parse_workload_type(pod()) is None
    err = parse_workload_type(pod(workload="gpu"))
    assert isinstance(err, InputError)
    assert '"gpu"' in err.message
    assert all(t in err.message for t in ("training", "inference", "sequential"))


def test_power_reading() -> None:
    n = node(
        "wyse",
        annotations={
            CURRENT_WATTS_ANNOTATION: "7.25",
            CURRENT_WATTS_TIMESTAMP_ANNOTATION: "2026-03-01T11:59:50Z",
            POWER_SOURCE_ANNOTATION: "shelly",
        },
    )
    r = parse_power_reading(n)
    assert r is not None and not isinstance(r, InputError)
    assert r.watts == 7.25 and r.source == "shelly" and r.timestamp.tzinfo is not None
    assert parse_power_reading(node("x")) is None
    for ann in (
        {CURRENT_WATTS_ANNOTATION: "lots", CURRENT_WATTS_TIMESTAMP_ANNOTATION: "2026-03-01T12:00Z"},
        {CURRENT_WATTS_ANNOTATION: "-1", CURRENT_WATTS_TIMESTAMP_ANNOTATION: "2026-03-01T12:00Z"},
        {CURRENT_WATTS_ANNOTATION: "5"},
        {CURRENT_WATTS_ANNOTATION: "5", CURRENT_WATTS_TIMESTAMP_ANNOTATION: "2026-03-01T12:00"},
        {CURRENT_WATTS_ANNOTATION: "5", CURRENT_WATTS_TIMESTAMP_ANNOTATION: "yesterday"},
    ):
        assert isinstance(parse_power_reading(node("x", annotations=ann)), InputError), ann
