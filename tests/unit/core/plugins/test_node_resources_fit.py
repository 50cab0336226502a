"""The NodeResourcesFit filter plugin (energysched/core/filters/resources.py), table-driven.

Every case runs through both the vectorised pass and the reference per-node
check (``core_helpers.verdict`` asserts they agree).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.core.core_helpers import container, node, pod, verdict
from tests.unit.core.plugins.filter_helpers import (
    running,
)


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
