"""The controller without a network: event → state, bind outcomes, supervision, health.

The client is the recording FakeKube; the flow with a real API server is
tests/integration/scheduler.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Literal

import pytest

from energysched.kube.client import JSON, ApiError, KubeClient
from energysched.kube.events import EventWriter
from energysched.scheduler.config import ConfigSource, SchedulerConfig
from energysched.scheduler.controller import EnergyScheduler, SchedulerStopped
from tests.unit.scheduler.fakes import FakeKube

BINDING = "/api/v1/namespaces/ns/pods/p/binding"


def node_obj(name: str = "n1") -> JSON:
    return {
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def pod_obj(name: str = "p", **spec: Any) -> JSON:
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "5"},
        "spec": {
            "schedulerName": "energy-scheduler",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}],
            **spec,
        },
        "status": {"phase": "Pending"},
    }


def scheduler(kube: KubeClient | None = None) -> EnergyScheduler:
    kube = kube or FakeKube()
    return EnergyScheduler(kube, kube, ConfigSource(None, SchedulerConfig()), "me")


def feed(s: EnergyScheduler, *pods: JSON) -> None:
    s._on_node("ADDED", node_obj(), None)
    for p in pods:
        key = f"ns/{p['metadata']['name']}"
        s.pods.store[key] = p
        s._on_pod("ADDED", p, None)


async def attempt(s: EnergyScheduler, key: str) -> None:
    """One scheduling attempt as the loop makes it, then wait for its bind."""
    popped = await asyncio.wait_for(s.queue.pop(), 1)
    assert popped == key
    await s._bind_slots.acquire()
    s.schedule_key(key)
    await asyncio.gather(*s._bind_tasks)


async def test_a_successful_bind_posts_the_binding_with_the_uid() -> None:
    kube = FakeKube()
    s = scheduler(kube)
    feed(s, pod_obj())
    await attempt(s, "ns/p")
    (binding,) = [body for verb, path, body in kube.calls if verb == "create" and path == BINDING]
    assert binding["metadata"]["uid"] == "uid-p" and binding["target"]["name"] == "n1"
    assert s.bound == 1 and "ns/p" not in s.queue


async def test_each_decision_is_timed_in_wall_and_in_its_own_cpu_time() -> None:
    s = scheduler()
    feed(s, pod_obj("a"), pod_obj("b"))
    await attempt(s, "ns/a")
    await attempt(s, "ns/b")
    registry = s.metrics.registry
    wall = registry.get_sample_value("energysched_scheduling_algorithm_duration_seconds_count")
    cpu = registry.get_sample_value("energysched_scheduling_algorithm_cpu_seconds_count")
    assert wall == cpu == 2
    cpu_sum = registry.get_sample_value("energysched_scheduling_algorithm_cpu_seconds_sum")
    assert cpu_sum is not None and cpu_sum > 0


def test_stale_missing_and_future_readings_are_counted_by_state() -> None:
    from energysched.core import Decision
    from energysched.core.scores.hybrid import ReadingCounts

    s = scheduler()
    s._count_readings(Decision("ns/p", "hybrid", part=ReadingCounts(stale=1, missing=2, future=3)))
    sample = s.metrics.registry.get_sample_value
    assert [
        sample("energysched_power_readings_total", {"state": state})
        for state in ("stale", "missing", "future")
    ] == [1, 2, 3]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (404, 'pods "p" not found'),
        (409, "Precondition failed: UID in precondition: uid-p, UID in object meta: uid-2"),
        (409, 'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned'),
    ],
)
async def test_a_pod_gone_replaced_or_bound_elsewhere_is_dropped_not_retried(
    status: int, message: str
) -> None:
    kube = FakeKube()
    kube.fail["create"] = ApiError(status, "x", message)
    s = scheduler(kube)
    feed(s, pod_obj())
    await attempt(s, "ns/p")
    assert "ns/p" not in s.queue  # nothing to retry: another truth won
    assert s.bound == 0
    assert placed(s) == {}  # the assumption is undone
    assert s.events.background.queue.empty()  # and no FailedScheduling event for it


async def test_another_bind_error_is_retried_with_backoff_and_reported() -> None:
    kube = FakeKube()
    kube.fail["create"] = ApiError(500, "InternalError", "etcd timeout")
    s = scheduler(kube)
    feed(s, pod_obj())
    await attempt(s, "ns/p")
    assert "ns/p" in s.queue and s.queue.depths()["backoff"] == 1
    assert placed(s) == {}
    assert s.events.background.queue.qsize() == 1  # the Warning, posted in the background


async def test_a_bound_or_deleted_pod_leaves_the_queue() -> None:
    s = scheduler()
    feed(s, pod_obj())
    assert "ns/p" in s.queue
    s._on_pod("MODIFIED", pod_obj(nodeName="n1"), pod_obj())
    assert "ns/p" not in s.queue
    feed(s, pod_obj("q"))
    s._on_pod("DELETED", pod_obj("q"), pod_obj("q"))
    assert "ns/q" not in s.queue


async def test_terminal_and_foreign_pods_are_not_queued() -> None:
    s = scheduler()
    done = pod_obj("done")
    done["status"]["phase"] = "Succeeded"
    feed(s, done, pod_obj("other", schedulerName="default-scheduler"))
    assert s.queue.depths()["active"] == 0


def test_the_pod_informer_skips_terminal_pods_as_kube_scheduler_does() -> None:
    s = scheduler()
    assert s.pods.params["fieldSelector"] == "status.phase!=Succeeded,status.phase!=Failed"


async def test_a_pod_leaving_the_selection_frees_its_capacity() -> None:
    s = scheduler()
    feed(s, pod_obj("big", nodeName="n1"))
    assert placed(s) == {"cpu": 100, "pods": 1}
    finished = pod_obj("big", nodeName="n1")
    finished["status"]["phase"] = "Succeeded"
    s._on_pod("DELETED", finished, pod_obj("big", nodeName="n1"))  # what the watch sends
    assert placed(s) == {}


async def test_a_gated_pod_is_not_attempted_until_its_gates_are_removed() -> None:
    kube = FakeKube()
    s = scheduler(kube)
    gated = pod_obj(schedulingGates=[{"name": "example.com/quota"}])
    feed(s, gated)
    assert "ns/p" not in s.queue and s._gated == {"ns/p"}
    # No condition yet (an old API server): written once, with kube-scheduler's reason.
    s._on_pod("MODIFIED", {**gated, "metadata": {**gated["metadata"], "labels": {"a": "b"}}}, gated)
    assert s.writer.queue.qsize() == 1
    s.writer.start()
    await s.writer.drain()
    ((_verb, path, (_, patch)),) = [c for c in kube.calls if c[0] == "patch"]
    (cond,) = patch["status"]["conditions"]
    assert path.endswith("/pods/p/status")
    assert (cond["status"], cond["reason"]) == ("False", "SchedulingGated")
    # Gates removed: an update that queues it.
    s.pods.store["ns/p"] = pod_obj()
    s._on_pod("MODIFIED", pod_obj(), gated)
    assert "ns/p" in s.queue and not s._gated
    await attempt(s, "ns/p")
    assert s.bound == 1
    await s.writer.stop()


async def test_a_gated_pod_that_already_says_so_gets_no_patch() -> None:
    s = scheduler()
    gated = pod_obj(schedulingGates=[{"name": "g"}])
    gated["status"]["conditions"] = [
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}
    ]
    feed(s, gated)
    assert s.writer.queue.empty() and "ns/p" not in s.queue


async def test_a_pod_is_parsed_once_not_again_when_it_leaves_the_queue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from energysched.scheduler import mirror

    calls: list[str] = []
    real = mirror.parse_pod

    def counting(obj: Any) -> Any:
        calls.append(obj["metadata"]["name"])
        return real(obj)

    monkeypatch.setattr(mirror, "parse_pod", counting)
    s = scheduler()
    feed(s, pod_obj())
    status_only = pod_obj()
    status_only["status"]["conditions"] = [{"type": "PodScheduled", "status": "False"}]
    s._on_pod("MODIFIED", status_only, pod_obj())  # status churn: not parsed again
    await attempt(s, "ns/p")
    assert calls == ["p"] and s.bound == 1


# -- supervision --------------------------------------------------------------------------


async def _fails() -> None:
    raise RuntimeError("a bug that escaped")


async def _run_with(
    s: EnergyScheduler, **replace: Callable[[], Awaitable[None]]
) -> BaseException | None:
    for name, fn in replace.items():
        getattr(s, name).run = fn
    try:
        await asyncio.wait_for(s.run(), 5)
    except (SchedulerStopped, TimeoutError) as exc:
        return exc
    return None


async def test_a_vital_task_that_fails_stops_the_scheduler_with_the_reason() -> None:
    s = scheduler()
    err = await _run_with(s, pods=_fails)
    assert isinstance(err, SchedulerStopped)
    assert "reflector-pods failed: RuntimeError: a bug that escaped" in str(err)
    assert s.stopped_because == str(err)


async def test_a_vital_task_that_returns_stops_the_scheduler_too() -> None:
    async def returns() -> None:
        return None

    err = await _run_with(scheduler(), nodes=returns)
    assert isinstance(err, SchedulerStopped) and "reflector-nodes ended" in str(err)


async def test_a_failing_schedule_loop_stops_the_scheduler_with_the_reason() -> None:
    s = scheduler()
    s.pods.synced.set()
    s.nodes.synced.set()
    s.profiles.synced.set()

    async def idle() -> None:
        await asyncio.Event().wait()

    async def broken_loop() -> None:
        raise KeyError("a bug in the loop")

    for r in (s.pods, s.nodes, s.profiles):
        r.run = idle  # type: ignore[method-assign]
    s.cfg = SchedulerConfig(
        leader_election=replace(SchedulerConfig().leader_election, enabled=False)
    )
    s._schedule_loop = broken_loop  # type: ignore[method-assign]
    with pytest.raises(SchedulerStopped, match="schedule-loop failed: KeyError"):
        await asyncio.wait_for(s.run(), 5)


async def _returns() -> None:
    return None


@pytest.mark.parametrize("task", ["pods", "nodes", "profiles", "config"])
@pytest.mark.parametrize("end", [_fails, _returns], ids=["fails", "returns"])
async def test_every_stop_is_an_exception_an_embedding_process_can_catch(
    task: str, end: Callable[[], Awaitable[None]]
) -> None:
    """The library never ends the process (no SystemExit): the CLI turns SchedulerStopped
    into an exit code; the experiment and the tests catch it and go on."""
    s = scheduler()
    if task == "config":
        s._poll_config = end  # type: ignore[method-assign]
    else:
        getattr(s, task).run = end
    caught: BaseException | None = None
    try:
        await asyncio.wait_for(s.run(), 5)
    except BaseException as exc:
        caught = exc
    assert type(caught) is SchedulerStopped, repr(caught)
    assert ("config" if task == "config" else f"reflector-{task}") in str(caught)


async def test_no_decision_while_a_vital_watch_is_down() -> None:
    s = scheduler()
    feed(s, pod_obj())
    s.pods._set_up(True)
    s.nodes._set_up(True)
    assert s.watches_up.is_set()
    s.nodes._set_up(False, "ClientConnectorError: connection refused")
    assert not s.watches_up.is_set()
    looked = WatchedEvent()
    s.watches_up = looked  # the loop's gate, seen from inside
    loop = asyncio.create_task(s._schedule_loop())
    # The witness that the loop ran and stopped at the gate (not merely not started yet).
    for _ in range(100):
        if looked.waits:
            break
        await asyncio.sleep(0)
    assert looked.waits == 1
    assert s.bound == 0 and "ns/p" in s.queue  # waiting, not deciding on a stale picture
    s.nodes._set_up(True)
    for _ in range(100):
        if s.bound:
            break
        await asyncio.sleep(0.01)
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    assert s.bound == 1


class WatchedEvent(asyncio.Event):
    """An Event that counts who waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits = 0

    async def wait(self) -> Literal[True]:
        self.waits += 1
        return await super().wait()


def test_readyz_fails_while_a_vital_watch_is_down_and_names_it() -> None:
    s = scheduler()
    for r in (s.pods, s.nodes, s.profiles):
        r.synced.set()
        r._set_up(True)
    assert all(ok for _, ok, _ in s.ready_checks())
    s.pods._set_up(False, "0 ClientConnectorError: refused")
    failed = [(name, msg) for name, ok, msg in s.ready_checks() if not ok]
    assert len(failed) == 1 and failed[0][0] == "watch-pods" and "refused" in failed[0][1]
    assert all(ok for _, ok, _ in s.health_checks())  # alive, just not ready
    s.pods._set_up(True)
    s.profiles._set_up(False, "404 NotFound")  # no CRD: scores fall back, still ready
    assert all(ok for _, ok, _ in s.ready_checks())


async def test_failure_reports_are_bounded() -> None:
    kube = FakeKube()
    s = scheduler(kube)
    s.events = EventWriter(kube, "energy-scheduler", "Scheduling", max_queued=5, workers=1)
    for i in range(50):
        s._event(pod_obj(f"p{i}"), f"ns/p{i}", "Warning", "FailedScheduling", "no")
    assert s.events.background.queue.qsize() == 5 and s.events.dropped == 45
    assert len(asyncio.all_tasks()) == 1  # no task per event: only this test's


def placed(s: EnergyScheduler) -> dict[str, int]:
    """What the scheduler counts as requested on node n1 (assumed pods included)."""
    return dict(s.state.snapshot(dt.datetime.now(dt.UTC)).usage(0).requested)
