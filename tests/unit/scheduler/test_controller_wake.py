"""The controller's side of a wake cluster-energy chose: the request on that node, the pod
waiting for it (not re-placed mid-wake on the awake node it was judged worse than), and the
bind once the node is back. Against the recording FakeKube; the same flow on a real API
server is tests/integration/power/test_wake_cluster_energy.py."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from energysched import contract
from energysched.kube.client import JSON
from energysched.scheduler.config import ConfigSource, SchedulerConfig
from energysched.scheduler.controller import EnergyScheduler
from energysched.scheduler.queue import SchedulingQueue
from tests.unit.scheduler.fakes import FakeKube

NODES = "/api/v1/nodes"
BINDING = "/api/v1/namespaces/ns/pods/long/binding"


def profile(name: str, perf: float, power_states: dict[str, Any] | None = None) -> JSON:
    spec: dict[str, Any] = {
        "nodeSelector": {"kubernetes.io/hostname": name},
        "idlePowerWatts": 40.0,
        "workloads": {"training": {"performance": perf, "powerWatts": 80.0}},
    }
    if power_states is not None:
        spec["powerStates"] = power_states
    return {
        "apiVersion": contract.API_VERSION,
        "kind": contract.PROFILE_KIND,
        "metadata": {"name": name, "generation": 1, "resourceVersion": "1"},
        "spec": spec,
    }


FAST_STATES = {
    "sleepWatts": 4.0,
    "sleepKind": "suspend",
    "suspendSeconds": 1,
    "wakeSeconds": 8,
    "wakeJoules": 36,
}


def node(name: str, state: str = "awake", rv: str = "1") -> JSON:
    asleep = state != "awake"
    return {
        "metadata": {
            "name": name,
            "resourceVersion": rv,
            "labels": {
                "kubernetes.io/hostname": name,
                contract.POWER_MANAGEMENT_LABEL: contract.POWER_MANAGEMENT_ENABLED,
            },
            "annotations": {contract.POWER_STATE_ANNOTATION: state},
        },
        "spec": {
            "taints": [{"key": contract.ASLEEP_TAINT_KEY, "effect": "NoSchedule"}] if asleep else []
        },
        "status": {
            "allocatable": {"cpu": "8", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "Unknown" if asleep else "True"}],
        },
    }


def long_job() -> JSON:
    """1,000 units of training: 1,000 s on slow, 100 s on fast (see the KWOK test's sums:
    fast, woken, costs about 12,000 J against slow's 40,000 J)."""
    return {
        "metadata": {
            "name": "long",
            "namespace": "ns",
            "uid": "uid-long",
            "resourceVersion": "5",
            "labels": {contract.WORKLOAD_TYPE_LABEL: "training"},
            "annotations": {
                contract.WORK_ANNOTATION: "1000",
                contract.PERFORMANCE_WEIGHT_ANNOTATION: "0",
            },
        },
        "spec": {
            "schedulerName": "energy-scheduler",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1"}}}],
        },
        "status": {"phase": "Pending"},
    }


def set_node(s: EnergyScheduler, obj: JSON) -> None:
    name = obj["metadata"]["name"]
    old = s.nodes.store.get(name)
    s.nodes.store[name] = obj
    s._on_node("ADDED" if old is None else "MODIFIED", obj, copy.deepcopy(old) if old else None)


async def attempt(s: EnergyScheduler) -> None:
    assert await asyncio.wait_for(s.queue.pop(), 2) == "ns/long"
    await s._bind_slots.acquire()
    s.schedule_key("ns/long")
    await asyncio.gather(*s._bind_tasks)


async def drain_writes(s: EnergyScheduler) -> None:
    while not s.writer.queue.empty():
        _, job = s.writer.queue.get_nowait()
        await job()


def bindings(kube: FakeKube) -> list[Any]:
    return [body for verb, path, body in kube.calls if verb == "create" and path == BINDING]


async def test_the_pod_waits_for_the_node_cluster_energy_chose_and_binds_there() -> None:
    kube = FakeKube()
    s = EnergyScheduler(kube, kube, ConfigSource(None, SchedulerConfig()), "me")
    assert s.cfg.profiles[0].mode == "cluster-energy"
    s.queue = SchedulingQueue(initial_backoff=0.0, max_backoff=0.0)
    s._on_profile("ADDED", profile("slow", 1.0), None)
    s._on_profile("ADDED", profile("fast", 10.0, FAST_STATES), None)
    set_node(s, node("slow"))
    set_node(s, node("fast", "asleep"))
    pod = long_job()
    s.pods.store["ns/long"] = pod
    s._on_pod("ADDED", pod, None)

    await attempt(s)
    assert bindings(kube) == [] and s._waking["ns/long"].node == "fast"
    await drain_writes(s)
    patches = [(p, body) for verb, p, (_, body) in _patches(kube)]
    # the request on the chosen node first, then the pod's condition
    assert patches[0][0] == f"{NODES}/fast"
    ann = patches[0][1]["metadata"]["annotations"]
    assert ann[contract.WAKE_REQUESTED_BY_ANNOTATION] == "ns/long"
    (cond,) = patches[1][1]["status"]["conditions"]
    assert cond["reason"] == contract.WAITING_FOR_NODE_WAKE_REASON
    assert cond["message"].startswith("Waking node fast for ns/long, its best placement")

    # the manager marks it waking: that node update re-queues the pod (as would any
    # cluster change), which keeps waiting (the node is still tainted: deciding again
    # would put it on slow)
    set_node(s, node("fast", "waking", rv="2"))
    await attempt(s)
    assert bindings(kube) == []
    assert len([c for c in _patches(kube) if c[1] == f"{NODES}/fast"]) == 1  # asked once

    # awake and Ready, the taint gone: bound there
    set_node(s, node("fast", "awake", rv="3"))
    await attempt(s)
    (binding,) = bindings(kube)
    assert binding["target"]["name"] == "fast"


async def test_a_wake_that_failed_lets_the_pod_be_decided_again() -> None:
    kube = FakeKube()
    s = EnergyScheduler(kube, kube, ConfigSource(None, SchedulerConfig()), "me")
    s.queue = SchedulingQueue(initial_backoff=0.0, max_backoff=0.0)
    s._on_profile("ADDED", profile("slow", 1.0), None)
    s._on_profile("ADDED", profile("fast", 10.0, FAST_STATES), None)
    set_node(s, node("slow"))
    set_node(s, node("fast", "asleep"))
    pod = long_job()
    s.pods.store["ns/long"] = pod
    s._on_pod("ADDED", pod, None)
    await attempt(s)
    assert s._waking["ns/long"].node == "fast"
    failed = node("fast", "wake-failed", rv="2")
    failed["metadata"]["annotations"].update(
        {
            contract.WAKE_FAILURES_ANNOTATION: "1",
            contract.POWER_STATE_SINCE_ANNOTATION: "2099-01-01T00:00:00Z",  # in its backoff
        }
    )
    set_node(s, failed)  # its taints unchanged: the power state alone re-queues the pod
    await attempt(s)
    (binding,) = bindings(kube)
    assert binding["target"]["name"] == "slow"  # the only node it may have now


async def test_the_pod_is_tried_the_moment_its_node_is_back_not_after_its_backoff() -> None:
    """Parked pods back off up to 10 s; a node woken for a pod may be put to sleep again if
    it stays empty, so the pod waiting for it is tried at once when it is back."""
    kube = FakeKube()
    s = EnergyScheduler(kube, kube, ConfigSource(None, SchedulerConfig()), "me")
    s.queue = SchedulingQueue(initial_backoff=60.0, max_backoff=60.0)
    s._on_profile("ADDED", profile("slow", 1.0), None)
    s._on_profile("ADDED", profile("fast", 10.0, FAST_STATES), None)
    set_node(s, node("slow"))
    set_node(s, node("fast", "asleep"))
    pod = long_job()
    s.pods.store["ns/long"] = pod
    s._on_pod("ADDED", pod, None)
    await attempt(s)  # waking fast: parked, 60 s of backoff
    set_node(s, node("fast", "awake", rv="3"))
    await attempt(s)  # within attempt()'s 2 s
    (binding,) = bindings(kube)
    assert binding["target"]["name"] == "fast"


def _patches(kube: FakeKube) -> list[tuple[str, str, Any]]:
    return [c for c in kube.calls if c[0] == "patch"]
