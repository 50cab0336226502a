"""Filters, table-driven: kube-scheduler semantics, reason strings and order.

Every case runs through both the vectorised pass and the reference per-node
checks (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.core.core_helpers import container, node, pod, verdict

pytestmark = pytest.mark.unit

UNSCHED = "node(s) were unschedulable"
AFFINITY = "node(s) didn't match Pod's node affinity/selector"
PORTS = "node(s) didn't have free ports for the requested pod ports"
NODENAME = "node(s) didn't match the requested node name"


def taint(key: str, value: str = "", effect: str = "NoSchedule") -> dict[str, str]:
    return {"key": key, "value": value, "effect": effect}


def tol(**kw: str) -> dict[str, str]:
    return kw


# -- NodeUnschedulable -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("tolerations", "expected"),
    [
        ([], (UNSCHED,)),
        ([tol(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoSchedule")], ()),
        ([tol(key="node.kubernetes.io/unschedulable", operator="Exists")], ()),
        ([tol(operator="Exists")], ()),  # empty key + Exists tolerates everything
        (
            [tol(key="node.kubernetes.io/unschedulable", operator="Exists", effect="NoExecute")],
            (UNSCHED,),
        ),
        ([tol(key="other", operator="Exists")], (UNSCHED,)),
    ],
)
def test_unschedulable(tolerations: list[dict[str, str]], expected: tuple[str, ...]) -> None:
    assert verdict(pod(tolerations=tolerations), node("n", unschedulable=True)) == expected


def test_schedulable_node_passes() -> None:
    assert verdict(pod(), node("n")) == ()


# -- NodeName --------------------------------------------------------------------------


def test_node_name() -> None:
    assert verdict(pod(node_name="other"), node("n")) == (NODENAME,)
    assert verdict(pod(node_name="n"), node("n")) == ()


# -- TaintToleration ----------------------------------------------------------------------


def untolerated(key: str, value: str = "") -> str:
    return f"node(s) had untolerated taint {{{key}: {value}}}"


@pytest.mark.parametrize(
    ("taints", "tolerations", "expected"),
    [
        ([], [], ()),
        ([taint("k", "v")], [], (untolerated("k", "v"),)),
        ([taint("k")], [], (untolerated("k"),)),
        ([taint("k", "v")], [tol(key="k", operator="Equal", value="v", effect="NoSchedule")], ()),
        ([taint("k", "v")], [tol(key="k", value="v")], ()),  # operator "" is Equal
        ([taint("k", "v")], [tol(key="k", operator="Equal", value="w")], (untolerated("k", "v"),)),
        ([taint("k", "v")], [tol(key="k", operator="Exists")], ()),
        ([taint("k", "v")], [tol(operator="Exists")], ()),  # wildcard key
        ([taint("k", "v", "NoExecute")], [tol(operator="Exists")], ()),
        (
            [taint("k", "v")],
            [tol(operator="Exists", effect="NoExecute")],
            (untolerated("k", "v"),),
        ),  # wildcard key, but only for NoExecute
        ([taint("k", "v", "NoExecute")], [tol(key="k", operator="Equal", value="v")], ()),
        ([taint("k", "v", "NoExecute")], [], (untolerated("k", "v"),)),
        (
            [taint("k", "v", "NoExecute")],
            [tol(key="k", operator="Exists", effect="NoSchedule")],
            (untolerated("k", "v"),),
        ),
        ([taint("k", "v", "PreferNoSchedule")], [], ()),  # does not filter
        ([taint("a"), taint("b")], [tol(key="a", operator="Exists")], (untolerated("b"),)),
        ([taint("a"), taint("b")], [], (untolerated("a"),)),  # the first only
        ([taint("k", "v")], [tol(key="k", operator="Bogus", value="v")], (untolerated("k", "v"),)),
        (
            [taint("k", "v", "PreferNoSchedule"), taint("x", "y")],
            [tol(key="x", operator="Exists")],
            (),
        ),
    ],
)
def test_taints(
    taints: list[dict[str, str]], tolerations: list[dict[str, str]], expected: tuple[str, ...]
) -> None:
    assert verdict(pod(tolerations=tolerations), node("n", taints=taints)) == expected


# -- NodeAffinity -----------------------------------------------------------------------

LABELS = {"zone": "a", "gen": "5", "disk": "ssd", "name": "x5"}


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


@pytest.mark.parametrize(
    ("selector", "affinity", "fits"),
    [
        ({}, None, True),
        ({"zone": "a"}, None, True),
        ({"zone": "a", "disk": "ssd"}, None, True),
        ({"zone": "b"}, None, False),
        ({"missing": ""}, None, False),
        ({}, required(term(expr("zone", "In", "a", "b"))), True),
        ({}, required(term(expr("zone", "In", "b"))), False),
        ({}, required(term(expr("zone", "NotIn", "a"))), False),
        ({}, required(term(expr("zone", "NotIn", "b"))), True),
        ({}, required(term(expr("absent", "NotIn", "b"))), True),  # absent label passes NotIn
        ({}, required(term(expr("absent", "In", "b"))), False),
        ({}, required(term(expr("zone", "Exists"))), True),
        ({}, required(term(expr("absent", "Exists"))), False),
        ({}, required(term(expr("absent", "DoesNotExist"))), True),
        ({}, required(term(expr("zone", "DoesNotExist"))), False),
        ({}, required(term(expr("gen", "Gt", "4"))), True),
        ({}, required(term(expr("gen", "Gt", "5"))), False),
        ({}, required(term(expr("gen", "Lt", "6"))), True),
        ({}, required(term(expr("gen", "Lt", "+6"))), True),  # ParseInt accepts a sign
        ({}, required(term(expr("gen", "Lt", "5"))), False),
        ({}, required(term(expr("name", "Gt", "1"))), False),  # label is not an integer
        ({}, required(term(expr("absent", "Gt", "1"))), False),
        ({}, required(term(expr("gen", "Gt", "four"))), False),  # invalid term
        ({}, required(term(expr("gen", "Gt", "1", "2"))), False),  # invalid term
        ({}, required(term(expr("zone", "In"))), False),  # In without values: invalid
        ({}, required(term(expr("zone", "Exists", "a"))), False),  # Exists with values: invalid
        ({}, required(term(expr("zone", "Equals", "a"))), False),  # unknown operator
        ({}, required(term(expr("zone", "In", "a"), expr("disk", "In", "hdd"))), False),  # AND
        ({}, required(term(expr("zone", "In", "b")), term(expr("disk", "In", "ssd"))), True),  # OR
        ({}, required(term(expr("zone", "In")), term(expr("disk", "In", "ssd"))), True),
        ({}, required(), False),  # no terms: matches nothing
        ({}, required(term()), False),  # a term without requirements matches nothing
        ({}, required(term(fields=(field("In", "n"),))), True),
        ({}, required(term(fields=(field("In", "m"),))), False),
        ({}, required(term(fields=(field("NotIn", "m"),))), True),
        ({}, required(term(fields=(field("NotIn", "n"),))), False),
        ({}, required(term(fields=(field("In", "n", "m"),))), False),  # one value only
        ({}, required(term(fields=(field("Exists"),))), False),  # In/NotIn only
        ({}, required(term(expr("zone", "In", "a"), fields=(field("In", "m"),))), False),
        ({"zone": "a"}, required(term(expr("disk", "In", "hdd"))), False),  # selector AND aff.
        ({"zone": "b"}, required(term(expr("disk", "In", "ssd"))), False),
        ({"zone": "a"}, required(term(expr("disk", "In", "ssd"))), True),
    ],
)
def test_affinity(selector: dict[str, str], affinity: dict[str, Any] | None, fits: bool) -> None:
    spec: dict[str, Any] = {"nodeSelector": selector}
    if affinity is not None:
        spec["affinity"] = affinity
    assert verdict(pod(**spec), node("n", labels=LABELS)) == (() if fits else (AFFINITY,))


# -- NodePorts --------------------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("used", "wanted", "conflict"),
    [
        (port(80), port(80), True),
        (port(80), port(81), False),
        (port(80, "TCP"), port(80), True),  # protocol defaults to TCP
        (port(80, "UDP"), port(80), False),
        (port(80, "UDP"), port(80, "UDP"), True),
        (port(80), port(80, ip="10.0.0.1"), True),  # used wildcard conflicts with any ip
        (port(80, ip="10.0.0.1"), port(80), True),  # wanted wildcard conflicts with any ip
        (port(80, ip="10.0.0.1"), port(80, ip="10.0.0.2"), False),
        (port(80, ip="10.0.0.1"), port(80, ip="10.0.0.1"), True),
        (port(80, ip="::"), port(80, ip="10.0.0.1"), False),  # "::" is no wildcard (kube)
        (port(80, ip="0.0.0.0"), port(80, ip="10.0.0.1"), True),
    ],
)
def test_host_ports(used: dict[str, Any], wanted: dict[str, Any], conflict: bool) -> None:
    got = verdict(with_ports("p", wanted), node("n"), [placed(used)])
    assert got == ((PORTS,) if conflict else ())


def test_container_port_without_host_port_never_conflicts() -> None:
    wanted = pod("p", containers=[container(ports=[{"containerPort": 80}])])
    assert verdict(wanted, node("n"), [placed(port(80))]) == ()


def test_sidecar_ports_count_init_container_ports_do_not() -> None:
    assert verdict(with_ports("p", port(80), sidecar=True), node("n"), [placed(port(80))]) == (
        PORTS,
    )
    regular_init = pod("p", containers=[container()], initContainers=[container(ports=[port(80)])])
    assert verdict(regular_init, node("n"), [placed(port(80))]) == ()


# -- NodeResourcesFit ----------------------------------------------------------------------


def running(
    cpu: str | None = None,
    memory: str | None = None,
    name: str = "r",
    phase: str = "Running",
    **kw: Any,
) -> Any:
    return pod(name, cpu=cpu, memory=memory, node_name="n", phase=phase, **kw)


@pytest.mark.parametrize(
    ("case", "p", "n", "on_node", "expected"),
    [
        ("fits", pod(cpu="1", memory="1Gi"), node("n"), [], ()),
        ("exactly fits", pod(cpu="3"), node("n", cpu="4"), [running("1")], ()),
        ("cpu", pod(cpu="5"), node("n", cpu="4"), [], ("Insufficient cpu",)),
        (
            "existing pods use it",
            pod(cpu="2"),
            node("n", cpu="4"),
            [running("2500m")],
            ("Insufficient cpu",),
        ),
        (
            "all insufficient resources are reported",
            pod(cpu="5", memory="9Gi"),
            node("n"),
            [],
            ("Insufficient cpu", "Insufficient memory"),
        ),
        (
            "too many pods, even without requests",
            pod(),
            node("n", pods="1"),
            [running()],
            ("Too many pods",),
        ),
        (
            "too many pods and cpu",
            pod(cpu="5"),
            node("n", pods="1", cpu="4"),
            [running()],
            ("Too many pods", "Insufficient cpu"),
        ),
        ("zero requests fit a full node", pod(), node("n", cpu="1"), [running("1")], ()),
        (
            "extended resource the node lacks",
            pod(containers=[container("1", extra={"nvidia.com/gpu": "1"})]),
            node("n"),
            [],
            ("Insufficient nvidia.com/gpu",),
        ),
        (
            "extended resource in use",
            pod(containers=[container(extra={"nvidia.com/gpu": "1"})]),
            node("n", extra={"nvidia.com/gpu": "1"}),
            [running(containers=[container(extra={"nvidia.com/gpu": "1"})])],
            ("Insufficient nvidia.com/gpu",),
        ),
        (
            "extended resource available",
            pod(containers=[container(extra={"nvidia.com/gpu": "1"})]),
            node("n", extra={"nvidia.com/gpu": "2"}),
            [running(containers=[container(extra={"nvidia.com/gpu": "1"})])],
            (),
        ),
        (
            "ephemeral storage",
            pod(containers=[container(extra={"ephemeral-storage": "2Gi"})]),
            node("n", extra={"ephemeral-storage": "1Gi"}),
            [],
            ("Insufficient ephemeral-storage",),
        ),
        (
            "hugepages",
            pod(containers=[container(extra={"hugepages-2Mi": "4Mi"})]),
            node("n", extra={"hugepages-2Mi": "2Mi"}),
            [],
            ("Insufficient hugepages-2Mi",),
        ),
        (
            "an init container larger than the node",
            pod(containers=[container("1")], initContainers=[container("5")]),
            node("n", cpu="4"),
            [],
            ("Insufficient cpu",),
        ),
        (
            "sidecar plus later init container",
            pod(
                containers=[container("1")],
                initContainers=[container("1", sidecar=True), container("3")],
            ),
            node("n", cpu="4"),
            [running("500m")],
            ("Insufficient cpu",),
        ),
        (
            "sidecars of existing pods count",
            pod(cpu="2"),
            node("n", cpu="4"),
            [
                running(
                    containers=[container("1")], initContainers=[container("1500m", sidecar=True)]
                )
            ],
            ("Insufficient cpu",),
        ),
        (
            "overhead",
            pod(cpu="3900m", overhead={"cpu": "200m"}),
            node("n", cpu="4"),
            [],
            ("Insufficient cpu",),
        ),
        (
            "terminal pods free their resources",
            pod(cpu="3"),
            node("n", cpu="4"),
            [running("3", name="done", phase="Succeeded")],
            (),
        ),
    ],
)
def test_resources_fit(
    case: str, p: Any, n: Any, on_node: list[Any], expected: tuple[str, ...]
) -> None:
    assert verdict(p, n, on_node) == expected, case


# -- order and short-circuit ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "n", "on_node", "expected"),
    [
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", unschedulable=True, taints=[taint("k")], labels={"zone": "a"}),
            [],
            (UNSCHED,),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}, node_name="m"),
            node("n", taints=[taint("k")]),
            [],
            (NODENAME,),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", taints=[taint("k")]),
            [],
            (untolerated("k"),),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", labels={"zone": "a"}),
            [],
            (AFFINITY,),
        ),
        (
            pod(containers=[container("9", ports=[port(80)])]),
            node("n"),
            [placed(port(80))],
            (PORTS,),
        ),
    ],
)
def test_first_failing_filter_reports(
    p: Any, n: Any, on_node: list[Any], expected: tuple[str, ...]
) -> None:
    assert verdict(p, n, on_node) == expected
