"""The NodePorts filter plugin (energysched/core/filters/ports.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.core.core_helpers import container, node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    PORTS,
    placed,
    port,
    with_ports,
)


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
