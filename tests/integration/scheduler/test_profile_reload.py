"""Live knowledge-base changes: an edited EnergyProfile takes effect without a restart; an
invalid edit is ignored (the scheduler keeps the last valid version)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from tests.support import ROOT, Kubectl, SchedulerProcess, eventually, pod_manifest, wait_for

WYSE = api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name="wyse")


@pytest.fixture
def restore_wyse(kubectl: Kubectl, knowledge_base: None) -> Iterator[None]:
    yield
    kubectl("apply", "-f", str(ROOT / "kb" / "profiles" / "wyse.yaml"))


def _fast_pod(name: str) -> dict[str, Any]:
    """An inference pod with weight 1.0: the fastest node for inference wins."""
    return pod_manifest(
        name,
        schedulerName=contract.SCHEDULER_NAME,
        metadata={
            "labels": {contract.WORKLOAD_TYPE_LABEL: "inference"},
            "annotations": {contract.PERFORMANCE_WEIGHT_ANNOTATION: "1.0"},
        },
    )


async def _placed(kube: KubeClient, ns: str, name: str) -> str:
    await kube.create(api_path("v1", "pods", ns), _fast_pod(name))

    async def bound() -> str | None:
        pod = await kube.get(api_path("v1", "pods", ns, name))
        node: str | None = pod["spec"].get("nodeName")
        return node

    node: str = await wait_for(bound, 30, f"pod {name} to be bound")
    return node


async def test_profile_edit_flips_placement_and_invalid_edit_is_ignored(
    kube: KubeClient,
    namespace: str,
    start_scheduler: Callable[..., SchedulerProcess],
    restore_wyse: None,
) -> None:
    sched = start_scheduler(mode="normalized")
    # kb/profiles: tvpc is the fastest node for inference.
    assert await _placed(kube, namespace, "before") == "tvpc"

    await kube.patch(WYSE, {"spec": {"workloads": {"inference": {"performance": 10_000_000}}}})
    # Watches of different resources are not ordered, so no pod can say when the scheduler
    # has the edit: new pods arrive until one lands on wyse (without the edit, none would).
    attempt = itertools.count()

    async def next_pod_placed() -> str:
        return await _placed(kube, namespace, f"after-edit-{next(attempt)}")

    await eventually(
        next_pod_placed,
        until=lambda node: node == "wyse",
        timeout=30,
        what="a pod placed on wyse after the profile edit",
    )

    # Invalid: power below idle power. Were it taken, tvpc would be the fastest again.
    await kube.patch(
        WYSE, {"spec": {"workloads": {"inference": {"performance": 10, "powerWatts": 1}}}}
    )

    async def rejected() -> bool:
        return "invalid EnergyProfile" in sched.log() and "keeping its last valid" in sched.log()

    await wait_for(rejected, 30, "the scheduler to report the invalid edit")
    assert await _placed(kube, namespace, "after-invalid-edit") == "wyse"
    assert sched.proc.poll() is None  # never restarted
