"""Events and the PodScheduled condition, against a KubeClient that records instead of sending."""

from __future__ import annotations

import types
from typing import Any

import pytest

from energysched.kube.client import ApiError
from energysched.scheduler import events
from energysched.scheduler.events import EventRecorder, set_pod_scheduled_false
from tests.unit.scheduler.fakes import FakeKube

pytestmark = pytest.mark.unit

EVENTS = "/apis/events.k8s.io/v1/namespaces/ns/events"


def pod(name: str = "p", uid: str = "uid-1", conditions: list[Any] | None = None) -> Any:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "42"},
        "status": {"conditions": conditions or []},
    }


def created(kube: FakeKube) -> list[Any]:
    return [body for verb, path, body in kube.calls if verb == "create" and path == EVENTS]


async def test_event_has_kube_schedulers_shape() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "energy-scheduler")
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", "0/3 nodes are available.")
    (event,) = created(kube)
    assert event["apiVersion"] == "events.k8s.io/v1" and event["kind"] == "Event"
    assert event["metadata"]["namespace"] == "ns"
    assert event["metadata"]["name"].startswith("p.")
    assert event["reportingController"] == "energy-scheduler"
    assert event["reportingInstance"].startswith("energy-scheduler-")
    assert (event["action"], event["reason"], event["type"]) == (
        "Scheduling",
        "FailedScheduling",
        "Warning",
    )
    assert event["note"] == "0/3 nodes are available."
    assert event["eventTime"].endswith("Z") and "." in event["eventTime"]  # MicroTime
    assert event["regarding"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ns",
        "uid": "uid-1",
        "resourceVersion": "42",
    }


async def test_event_names_are_unique_and_notes_capped() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "energy-scheduler")
    await recorder.pod_event(pod(), "Normal", "Scheduled", "x" * 5000)
    await recorder.pod_event(pod(), "Normal", "Scheduled", "x" * 5000)
    first, second = created(kube)
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert len(first["note"]) == 1024


async def test_the_same_warning_is_not_repeated_within_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [500.0]
    monkeypatch.setattr(events, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    kube = FakeKube()
    recorder = EventRecorder(kube, "energy-scheduler", dedup_window=60)
    note = "0/3 nodes are available: 3 Insufficient cpu."
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", note)
    clock[0] += 59
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 1
    # A different note, or another pod, is news.
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", note + " (changed)")
    await recorder.pod_event(pod(uid="uid-2"), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 3
    clock[0] += 2  # 61 s after the first: the window is over
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 4


async def test_normal_events_are_never_deduplicated() -> None:
    kube = FakeKube()
    recorder = EventRecorder(kube, "energy-scheduler")
    for _ in range(3):
        await recorder.pod_event(pod(), "Normal", "Scheduled", "Successfully assigned ns/p to a")
    assert len(created(kube)) == 3


async def test_an_event_that_cannot_be_written_is_not_fatal() -> None:
    kube = FakeKube()
    kube.fail["create"] = ApiError(403, "Forbidden", "events is forbidden")
    recorder = EventRecorder(kube, "energy-scheduler")
    await recorder.pod_event(pod(), "Warning", "FailedScheduling", "nope")  # no raise


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
