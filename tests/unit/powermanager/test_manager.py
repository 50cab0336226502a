"""The power manager's passes, against a fake of the project's own client interface.

The fake keeps node objects, applies merge patches (optimistic on resourceVersion, as the
API server does: 409 on a stale one) and strategic status patches (conditions merged by
type), and lists pods by ``spec.nodeName``. The reflectors' stores are filled directly.
The command method runs real commands (files written by ``sh -c``-free argv).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    POWER_CONTROL_ANNOTATION,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_ANNOTATION,
    POWER_STATE_CONDITION,
    WAKE_FAILURES_ANNOTATION,
    WAKE_REQUESTED_ANNOTATION,
)
from energysched.contract import SLEEP_REQUESTED_ANNOTATION as SLEEP_REQUESTED
from energysched.kube.client import ApiError
from energysched.power.policy import PolicyConfig
from energysched.powermanager.config import ManagerConfig
from energysched.powermanager.manager import PowerManager, rfc3339
from energysched.powermanager.view import Selector

PROFILE = {
    "apiVersion": "energy.thesis.io/v1alpha1",
    "kind": "EnergyProfile",
    "metadata": {"name": "box", "resourceVersion": "1"},
    "spec": {
        "nodeSelector": {"class": "box"},
        "idlePowerWatts": 40.0,
        "workloads": {
            "training": {"powerWatts": 80.0, "performance": 10.0, "unit": "steps/s"},
        },
        "powerStates": {
            "sleepWatts": 4.0,
            "sleepKind": "suspend",
            "suspendSeconds": 5,
            "wakeSeconds": 8,
            "wakeJoules": 360,
        },
    },
}


class FakeKube:
    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []
        self.rv = 10
        self.fail_patches = False

    def add_node(self, name: str, **annotations: str) -> dict[str, Any]:
        self.rv += 1
        node = {
            "metadata": {
                "name": name,
                "uid": f"uid-{name}",
                "resourceVersion": str(self.rv),
                "labels": {"class": "box", POWER_MANAGEMENT_LABEL: "enabled"},
                "annotations": dict(annotations),
            },
            "spec": {},
            "status": {
                "allocatable": {"cpu": "4", "memory": "8Gi"},
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "lastHeartbeatTime": "2020-01-01T00:00:00Z",
                    }
                ],
            },
        }
        self.nodes[name] = node
        return node

    def heartbeat(self, name: str, ts: float, ready: bool = True) -> None:
        cond = self.nodes[name]["status"]["conditions"][0]
        cond["status"] = "True" if ready else "False"
        cond["lastHeartbeatTime"] = rfc3339(ts)
        self.rv += 1
        self.nodes[name]["metadata"]["resourceVersion"] = str(self.rv)

    async def patch(self, path: str, patch: Any, patch_type: str = "merge") -> dict[str, Any]:
        if self.fail_patches:
            raise ApiError(0, "ClientConnectorError", "API server down")
        parts = path.split("/")  # /api/v1/nodes/NAME[/status], as the API server wants
        assert parts[:4] == ["", "api", "v1", "nodes"] and len(parts) in (5, 6), path
        name = parts[4]
        node = self.nodes.get(name)
        if node is None:
            raise ApiError(404, "NotFound", name)
        if parts[-1] == "status":
            conds = node["status"]["conditions"]
            for new in patch["status"]["conditions"]:
                conds[:] = [c for c in conds if c["type"] != new["type"]] + [new]
        else:
            meta = patch.get("metadata", {})
            rv = meta.get("resourceVersion")
            if rv is not None and rv != node["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", "the object has been modified")
            for k, v in (meta.get("annotations") or {}).items():
                if v is None:
                    node["metadata"]["annotations"].pop(k, None)
                else:
                    node["metadata"]["annotations"][k] = v
            if "spec" in patch:
                node["spec"].update(patch["spec"])
        self.rv += 1
        node["metadata"]["resourceVersion"] = str(self.rv)
        return json.loads(json.dumps(node))

    async def list_all(self, path: str, **params: Any) -> dict[str, Any]:
        node = str(params.get("fieldSelector", "")).removeprefix("spec.nodeName=")
        return {"items": [p for p in self.pods if p["spec"].get("nodeName") == node]}

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        raise ApiError(404, "NotFound", path)


def pod(name: str, node: str = "", unschedulable: bool = False, cpu: str = "1") -> dict[str, Any]:
    conditions = (
        [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]
        if unschedulable
        else []
    )
    return {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}"},
        "spec": {
            "nodeName": node,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
        },
        "status": {"phase": "Running" if node else "Pending", "conditions": conditions},
    }


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def hook(log: Path, step: str, exit_code: int = 0) -> list[str]:
    code = f"open({str(log)!r},'a').write({step!r}+'\\n'); raise SystemExit({exit_code})"
    return [sys.executable, "-c", code]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[FakeKube, PowerManager, Clock, Path]:
    kube = FakeKube()
    clock = Clock()
    config = ManagerConfig(
        policy=PolicyConfig(hysteresis_seconds=10, min_awake_nodes=1, min_free_fraction=0.0),
        keep_awake=Selector.parse("node-role.kubernetes.io/control-plane"),
        interval=1,
        drain_settle_seconds=0,
    )
    manager = PowerManager(kube, kube, config, clock=clock)  # type: ignore[arg-type]
    manager.profiles.store["box"] = PROFILE
    log = tmp_path / "hook.log"
    return kube, manager, clock, log


def sync(kube: FakeKube, manager: PowerManager) -> None:
    """What the reflectors would bring."""
    manager.nodes.store = {n: json.loads(json.dumps(o)) for n, o in kube.nodes.items()}
    manager.pods.store = {f"ns/{p['metadata']['name']}": p for p in kube.pods}


def control(log: Path, wake_exit: int = 0) -> str:
    return json.dumps(
        {"method": "command", "sleep": hook(log, "sleep"), "wake": hook(log, "wake", wake_exit)}
    )


def state(kube: FakeKube, name: str) -> str:
    return str(kube.nodes[name]["metadata"]["annotations"].get(POWER_STATE_ANNOTATION))


def tainted(kube: FakeKube, name: str) -> bool:
    return any(t["key"] == ASLEEP_TAINT_KEY for t in kube.nodes[name]["spec"].get("taints", []))


async def test_sleep_then_wake_for_an_unschedulable_pod(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")  # stays awake: min one awake node
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log)})
    kube.pods.append(pod("busy", "keep", cpu="3500m"))
    sync(kube, manager)
    await manager.reconcile()  # n1 first seen empty now: not yet past break-even
    assert state(kube, "n1") == "None" and not tainted(kube, "n1")
    clock.now += 60  # break-even 360 J / 36 W + 5 s = 15 s, + hysteresis 10 s
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "asleep" and tainted(kube, "n1")
    assert log.read_text().split() == ["sleep"]
    cond = next(
        c for c in kube.nodes["n1"]["status"]["conditions"] if c["type"] == POWER_STATE_CONDITION
    )
    assert (cond["status"], cond["reason"]) == ("False", "Asleep")

    # A pod that fits no awake node: the manager requests a wake and wakes n1.
    clock.now += 100
    kube.pods.append(pod("needs-room", unschedulable=True, cpu="2"))
    sync(kube, manager)
    await manager.reconcile()
    assert kube.nodes["n1"]["metadata"]["annotations"][WAKE_REQUESTED_ANNOTATION]
    assert state(kube, "n1") == "waking" and tainted(kube, "n1")
    assert log.read_text().split() == ["sleep", "wake"]

    # Ready, but with the heartbeat from before the wake: still waking.
    clock.now += 3
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "waking"
    kube.heartbeat("n1", clock.now)  # kubelet is back
    clock.now += 1
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    assert manager.metrics.wake_seconds.collect()[0].samples[-2].value >= 1  # _count

    # Woken, its pod not bound yet: the empty time starts again at the wake, so the node is
    # not drained again at the next pass (it slept 100 s, far past its 25 s hold).
    clock.now += 1
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    assert log.read_text().split() == ["sleep", "wake"]


async def test_a_pod_arriving_during_drain_gives_the_node_back(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log)})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    # The cache says empty, the API server knows better (a pod bound a moment ago).
    kube.pods.append(pod("late", "n1"))
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    assert not log.exists()  # the sleep command never ran


async def test_bad_annotation_keeps_the_node_awake(setup: Any) -> None:
    kube, manager, clock, _log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    bad = json.dumps({"method": "wol", "mac": "zz:bb:cc:dd:ee:ff", "broadcast": "10.0.0.255"})
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: bad})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 600
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "None" and not tainted(kube, "n1")
    skipped = {
        s.labels["reason"]: s.value
        for s in manager.metrics.skipped.collect()[0].samples
        if s.name.endswith("_total")
    }
    assert skipped.get("invalid-power-control", 0) >= 1


async def test_a_node_that_never_wakes_fails_then_is_retried_after_backoff(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log)})
    kube.pods.append(pod("busy", "keep", cpu="3500m"))
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "asleep"
    kube.heartbeat("n1", clock.now - 30, ready=False)
    kube.pods.append(pod("needs-room", unschedulable=True, cpu="2"))
    clock.now += 10
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "waking"
    # wake timeout: 8 s x 2 + margin 30 s = 46 s; the node never reports Ready
    clock.now += 47
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "wake-failed" and tainted(kube, "n1")
    assert kube.nodes["n1"]["metadata"]["annotations"][WAKE_FAILURES_ANNOTATION] == "1"
    # Within the backoff (30 s) nothing is retried, even on a new request.
    manager._served.clear()
    clock.now += 5
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "wake-failed"
    assert log.read_text().split() == ["sleep", "wake"]
    clock.now += 40
    manager._served.clear()
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "waking"
    assert log.read_text().split() == ["sleep", "wake", "wake"]
    kube.heartbeat("n1", clock.now + 1)
    clock.now += 2
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    assert WAKE_FAILURES_ANNOTATION not in kube.nodes["n1"]["metadata"]["annotations"]


async def test_failing_wake_command_marks_wake_failed(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log, wake_exit=7)})
    kube.pods.append(pod("busy", "keep", cpu="3500m"))
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()
    kube.pods.append(pod("needs-room", unschedulable=True, cpu="2"))
    clock.now += 10
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "wake-failed" and tainted(kube, "n1")
    failures = manager.metrics.wake_failures.collect()[0].samples
    assert any(s.labels.get("method") == "command" and s.value == 1 for s in failures)


async def test_restart_mid_drain_continues_from_the_node(setup: Any) -> None:
    """A manager killed between the taint and the sleep: the next one finishes (node empty)
    or gives the node back (a pod arrived) — the state is on the node, not in memory."""
    kube, _, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node(
        "n1", **{POWER_CONTROL_ANNOTATION: control(log), POWER_STATE_ANNOTATION: "draining"}
    )
    kube.nodes["n1"]["spec"]["taints"] = [{"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"}]
    kube.add_node(
        "n2", **{POWER_CONTROL_ANNOTATION: control(log), POWER_STATE_ANNOTATION: "draining"}
    )
    kube.nodes["n2"]["spec"]["taints"] = [{"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"}]
    kube.pods.append(pod("stays", "n2"))
    fresh = PowerManager(kube, kube, setup[1].config, clock=clock)  # type: ignore[arg-type]
    fresh.profiles.store["box"] = PROFILE
    sync(kube, fresh)
    await fresh.reconcile()
    assert state(kube, "n1") == "asleep" and tainted(kube, "n1")
    assert state(kube, "n2") == "awake" and not tainted(kube, "n2")


async def test_api_server_down_leaves_state_for_the_next_pass(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node(
        "n1",
        **{
            POWER_CONTROL_ANNOTATION: control(log),
            POWER_STATE_ANNOTATION: "waking",
            "energy.thesis.io/power-state-since": rfc3339(clock.now - 5),
        },
    )
    kube.nodes["n1"]["spec"]["taints"] = [{"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"}]
    kube.heartbeat("n1", clock.now)
    sync(kube, manager)
    kube.fail_patches = True
    with pytest.raises(ApiError):
        await manager.reconcile()  # run() logs it and retries on the next pass
    assert state(kube, "n1") == "waking" and tainted(kube, "n1")
    kube.fail_patches = False
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")


async def test_after_a_failed_wake_the_pod_wakes_another_node(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log, wake_exit=7)})
    kube.add_node("n2", **{POWER_CONTROL_ANNOTATION: control(log)})
    kube.pods.append(pod("busy", "keep", cpu="3500m"))
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    for _ in range(2):  # one node per pass keeps the headroom check honest
        sync(kube, manager)
        await manager.reconcile()
    assert state(kube, "n1") == "asleep" and state(kube, "n2") == "asleep"
    kube.pods.append(pod("needs-room", unschedulable=True, cpu="2"))
    clock.now += 10
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "wake-failed"  # same cost, ties by name: n1 first
    clock.now += 1
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n2") == "waking"
    assert log.read_text().split().count("wake") == 2


async def test_drain_settles_before_the_last_check(setup: Any) -> None:
    """With a settle time the node stays tainted a while before its last check; a pod bound
    meanwhile (a scheduler that decided before the taint) gives the node back."""
    kube, manager, clock, log = setup
    manager.config = dataclasses.replace(manager.config, drain_settle_seconds=5)
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log)})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "draining" and tainted(kube, "n1")
    kube.pods.append(pod("raced", "n1"))
    clock.now += 2
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "draining"  # still settling
    clock.now += 4
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    assert not log.exists()


async def test_a_pod_bound_to_a_sleeping_node_wakes_it(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: control(log)})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "asleep"
    kube.pods.append(pod("tolerates-all", "n1"))
    clock.now += 1
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "waking"
    assert log.read_text().split() == ["sleep", "wake"]


async def test_a_failed_sleep_step_backs_off(setup: Any) -> None:
    kube, manager, clock, log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    failing = json.dumps(
        {"method": "command", "sleep": hook(log, "sleep", 1), "wake": hook(log, "wake")}
    )
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: failing})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") == "awake" and not tainted(kube, "n1")
    for _ in range(5):  # within the backoff (30 s): no new attempt, no taint flapping
        clock.now += 5
        sync(kube, manager)
        await manager.reconcile()
    assert log.read_text().split() == ["sleep"]
    clock.now += 10
    sync(kube, manager)
    await manager.reconcile()
    assert log.read_text().split() == ["sleep", "sleep"]


async def test_pods_after_the_agent_was_asked_mean_a_wake_not_a_give_back(setup: Any) -> None:
    """Once the node agent may have halted the machine, a pod that arrives must not find an
    "awake" node that is off: the node is called asleep and woken."""
    kube, manager, clock, _log = setup
    kube.add_node("keep")
    kube.nodes["keep"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    relay = json.dumps(
        {"method": "shelly-relay", "address": "http://127.0.0.1:9", "haltFirst": True}
    )
    kube.add_node("n1", **{POWER_CONTROL_ANNOTATION: relay})
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 60
    sync(kube, manager)
    await manager.reconcile()  # tainted, agent asked to power off; the relay waits 5 s
    annotations = kube.nodes["n1"]["metadata"]["annotations"]
    assert state(kube, "n1") == "draining" and "poweroff" in annotations[SLEEP_REQUESTED]
    kube.pods.append(pod("late", "n1"))
    clock.now += 1
    sync(kube, manager)
    await manager.reconcile()
    assert state(kube, "n1") != "awake" and tainted(kube, "n1")
