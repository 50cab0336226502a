"""The one event writer (scheduler and operator), against a recording KubeClient."""

from __future__ import annotations

import asyncio
import types
from typing import Any

import pytest

from energysched.kube import events
from energysched.kube.client import ApiError
from energysched.kube.events import EventWriter, ObjectRef
from tests.unit.scheduler.fakes import FakeKube

EVENTS = "/apis/events.k8s.io/v1/namespaces/ns/events"


def pod(name: str = "p", uid: str = "uid-1") -> Any:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "42"}}


def created(kube: FakeKube, path: str = EVENTS) -> list[Any]:
    return [body for verb, p, body in kube.calls if verb == "create" and p == path]


async def test_event_has_kube_schedulers_shape() -> None:
    kube = FakeKube()
    recorder = EventWriter(kube, "energy-scheduler", "Scheduling", attempts=1)
    await recorder.write(
        ObjectRef.pod(pod()), "Warning", "FailedScheduling", "0/3 nodes are available."
    )
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
    recorder = EventWriter(kube, "energy-scheduler", "Scheduling", attempts=1)
    await recorder.write(ObjectRef.pod(pod()), "Normal", "Scheduled", "x" * 5000)
    await recorder.write(ObjectRef.pod(pod()), "Normal", "Scheduled", "x" * 5000)
    first, second = created(kube)
    assert first["metadata"]["name"] != second["metadata"]["name"]
    assert len(first["note"]) == 1024


async def test_the_same_warning_is_not_repeated_within_the_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [500.0]
    monkeypatch.setattr(events, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    kube = FakeKube()
    recorder = EventWriter(kube, "energy-scheduler", "Scheduling", dedup_window=60)
    note = "0/3 nodes are available: 3 Insufficient cpu."
    await recorder.write(ObjectRef.pod(pod()), "Warning", "FailedScheduling", note)
    clock[0] += 59
    await recorder.write(ObjectRef.pod(pod()), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 1
    # A different note, or another pod, is news.
    await recorder.write(ObjectRef.pod(pod()), "Warning", "FailedScheduling", note + " (changed)")
    await recorder.write(ObjectRef.pod(pod(uid="uid-2")), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 3
    clock[0] += 2  # 61 s after the first: the window is over
    await recorder.write(ObjectRef.pod(pod()), "Warning", "FailedScheduling", note)
    assert len(created(kube)) == 4


async def test_normal_events_are_never_deduplicated() -> None:
    kube = FakeKube()
    recorder = EventWriter(kube, "energy-scheduler", "Scheduling", attempts=1)
    for _ in range(3):
        await recorder.write(
            ObjectRef.pod(pod()), "Normal", "Scheduled", "Successfully assigned ns/p to a"
        )
    assert len(created(kube)) == 3


async def test_an_event_that_cannot_be_written_is_not_fatal() -> None:
    kube = FakeKube()
    kube.fail["create"] = ApiError(403, "Forbidden", "events is forbidden")
    recorder = EventWriter(kube, "energy-scheduler", "Scheduling", attempts=1)
    await recorder.write(ObjectRef.pod(pod()), "Warning", "FailedScheduling", "nope")  # no raise


async def test_posting_is_bounded_and_in_the_background() -> None:
    kube = FakeKube()
    writer = EventWriter(kube, "energy-scheduler", "Scheduling", max_queued=10, workers=1)
    queued = [
        writer.post(ObjectRef.pod(pod(f"p{i}", f"u{i}")), "Normal", "Scheduled", "x")
        for i in range(25)
    ]
    assert queued.count(True) == 10 and writer.dropped == 15
    writer.start()
    await asyncio.wait_for(writer.drain(), 5)
    assert len(created(kube)) == 10 == writer.posted
    await writer.stop()


async def test_cluster_scoped_objects_get_events_in_the_configured_namespace() -> None:
    kube = FakeKube()
    writer = EventWriter(kube, "energysched-operator", "Reconcile", namespace="default")
    ref = ObjectRef("energy.thesis.io/v1alpha1", "EnergyProfile", "wyse", uid="u")
    assert await writer.write(ref, "Warning", "Overlap", "two profiles match node wyse")
    (event,) = created(kube, "/apis/events.k8s.io/v1/namespaces/default/events")
    assert event["regarding"] == {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "name": "wyse",
        "uid": "u",
    }
    assert event["action"] == "Reconcile" and event["metadata"]["name"].startswith("wyse.")


async def test_a_transient_failure_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    kube = FakeKube()
    calls = {"n": 0}
    real_create = kube.create

    async def flaky(path: str, obj: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ApiError(503, "ServiceUnavailable", "try again")
        return await real_create(path, obj)

    monkeypatch.setattr(kube, "create", flaky)
    monkeypatch.setattr(events.asyncio, "sleep", _no_sleep)
    writer = EventWriter(kube, "energy-scheduler", "Scheduling")
    assert await writer.write(ObjectRef.pod(pod()), "Normal", "Scheduled", "ok")
    assert calls["n"] == 2


async def _no_sleep(delay: float) -> None:
    return None
