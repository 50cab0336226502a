"""The PodScheduled condition, against a KubeClient that records instead of sending."""

from __future__ import annotations

from typing import Any

import pytest

from energysched.kube.client import ApiError
from energysched.scheduler.events import set_pod_scheduled_false
from tests.unit.scheduler.fakes import FakeKube


def pod(name: str = "p", uid: str = "uid-1", conditions: list[Any] | None = None) -> Any:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "42"},
        "status": {"conditions": conditions or []},
    }


async def test_pod_scheduled_false_is_patched_onto_the_status() -> None:
    kube = FakeKube()
    await set_pod_scheduled_false(kube, pod(), "Unschedulable", "0/3 nodes are available.")
    ((verb, path, (patch_type, patch)),) = kube.calls
    assert (verb, path, patch_type) == ("patch", "/api/v1/namespaces/ns/pods/p/status", "strategic")
    (cond,) = patch["status"]["conditions"]
    assert cond["type"] == "PodScheduled" and cond["status"] == "False"
    assert cond["reason"] == "Unschedulable" and cond["message"] == "0/3 nodes are available."
    assert cond["lastTransitionTime"].endswith("Z")


async def test_an_unchanged_condition_is_not_patched_again() -> None:
    kube = FakeKube()
    same = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/3 nodes are available.",
    }
    await set_pod_scheduled_false(
        kube, pod(conditions=[same]), "Unschedulable", "0/3 nodes are available."
    )
    assert kube.calls == []
    await set_pod_scheduled_false(kube, pod(conditions=[same]), "Unschedulable", "0/4 nodes ...")
    await set_pod_scheduled_false(kube, pod(conditions=[same]), "SchedulerError", "bad weight")
    assert len(kube.calls) == 2


@pytest.mark.parametrize("status", [404, 500])
async def test_a_failed_condition_patch_is_not_fatal(status: int) -> None:
    kube = FakeKube()
    kube.fail["patch"] = ApiError(status, "x", "gone or broken")
    await set_pod_scheduled_false(kube, pod(), "Unschedulable", "msg")  # no raise
