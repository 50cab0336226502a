"""The simulated power manager's decisions and bookkeeping, against a fake of the project's
own client (the cluster side is proven in tests/integration/experiment/test_power.py)."""

from __future__ import annotations

from typing import Any

import pytest

from energysched import contract
from energysched.kb.profiles import KnowledgeBase, PowerStates, ProfileSpec, WorkloadFigures
from energysched.power.policy import PolicyConfig
from energysched_lab.experiment.engine import ClusterSim
from energysched_lab.experiment.jobs import Job
from energysched_lab.experiment.powersim import PowerManagerSim
from energysched_lab.experiment.scenario import NodeTruth, PowerTruth, Truth, WorkTruth
from energysched_lab.experiment.simulator import SimClock

from .experiment_helpers import node_class


class FakeKube:
    """Nodes as a dict; the power-state annotation moves Ready as KWOK's stages do."""

    def __init__(self, names: list[str]) -> None:
        self.nodes: dict[str, dict[str, Any]] = {
            n: {
                "metadata": {"name": n, "annotations": {}, "resourceVersion": "1"},
                "spec": {},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }
            for n in names
        }
        self.bound: dict[str, list[dict[str, Any]]] = {n: [] for n in names}

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        if "/pods" in path:
            node = str(params["fieldSelector"]).split("=")[1]
            return {"items": self.bound[node]}
        return self.nodes[path.rsplit("/", 1)[1]]

    async def patch(self, path: str, patch: dict[str, Any]) -> dict[str, Any]:
        node = self.nodes[path.rsplit("/", 1)[1]]
        node["metadata"]["annotations"].update(patch.get("metadata", {}).get("annotations", {}))
        if "taints" in patch.get("spec", {}):
            node["spec"]["taints"] = patch["spec"]["taints"]
        state = node["metadata"]["annotations"].get(contract.POWER_STATE_ANNOTATION)
        ready = "Unknown" if state in ("asleep", "waking", "wake-failed") else "True"
        node["status"]["conditions"][0]["status"] = ready
        return node


class FakeLive:
    def __init__(self) -> None:
        self.clock = SimClock(1.0)
        self.ns = "exp"
        self.records: dict[str, Any] = {}
        self.published: list[str] = []

    def publish(self, node: str) -> None:
        self.published.append(node)

    def pending_events(self) -> list[tuple[float, str, str, str]]:
        return []

    def in_flight(self) -> bool:
        return False


DESK = PowerStates(3.5, "suspend", 5.0, 10.0, 600.0)
PI = PowerStates(0.01, "halt", 10.0, 60.0, 150.0)


def _setup(fail_desk: float = 0.0) -> tuple[PowerManagerSim, FakeKube, FakeLive]:
    fig = {"training": WorkTruth(100.0, 100.0, "gpu", 1.0)}
    truth = Truth(
        {
            "desk": NodeTruth("desk", 40.0, fig, PowerTruth(3.5, 5.0, 10.0, 600.0, fail_desk)),
            "pi": NodeTruth(
                "pi", 1.5, {"training": WorkTruth(5.0, 3.0)}, PowerTruth(0.01, 10.0, 60.0, 150.0)
            ),
        }
    )
    classes = {"desk": "desk", "pi": "pi"}
    kb = KnowledgeBase.of(
        [
            ProfileSpec(
                "desk",
                {"kubernetes.io/hostname": "desk"},
                40.0,
                {"training": WorkloadFigures(100.0, 100.0)},
                power_states=DESK,
            ),
            ProfileSpec(
                "pi",
                {"kubernetes.io/hostname": "pi"},
                1.5,
                {"training": WorkloadFigures(5.0, 3.0)},
                power_states=PI,
            ),
        ]
    )
    kube = FakeKube(["desk", "pi"])
    pm = PowerManagerSim(
        kube,  # type: ignore[arg-type]
        ClusterSim(truth, classes),
        classes,
        [node_class("desk", gpu="1"), node_class("pi", memory="862Mi")],
        kb,
        seed="t",
        config=PolicyConfig(hysteresis_seconds=60, min_awake_nodes=1, min_free_fraction=0.0),
        ready_timeout_s=1.0,
    )
    live = FakeLive()
    pm.attach(live)  # type: ignore[arg-type]
    return pm, kube, live


def _gpu_job() -> Job:
    return Job("train", "train", "training", 1000.0, 0.0, None, "500m", "256Mi", 1)


async def _run_until(pm: PowerManagerSim, t: float) -> None:
    while (nxt := pm.next_event()) is not None and nxt <= t:
        await pm.fire(nxt)
        if pm.next_event() == nxt:
            break


async def test_the_desktop_sleeps_after_break_even_and_a_gpu_pod_wakes_it() -> None:
    pm, kube, live = _setup()
    hold = 600 / 36.5 + 5 + 60
    await _run_until(pm, hold - 1)
    assert pm.nodes["desk"].state == "awake"
    await _run_until(pm, hold + 1)
    desk = kube.nodes["desk"]
    assert pm.nodes["desk"].state == "asleep"
    assert desk["metadata"]["annotations"][contract.POWER_STATE_ANNOTATION] == "asleep"
    assert {"key": contract.ASLEEP_TAINT_KEY, "effect": "NoSchedule"} in desk["spec"]["taints"]
    assert pm.nodes["pi"].state == "awake"  # min one awake node
    # falling asleep draws idle power, then sleep power
    await _run_until(pm, hold + 6)
    assert pm.sim.nodes["desk"].mode == "asleep"
    # a GPU pod fits no awake node: the desktop wakes
    pm.sim.advance(1000.0)
    pm.on_unschedulable(_gpu_job(), 1000.0)
    await pm.fire(1000.0)
    assert pm.nodes["desk"].state == "waking"
    ann = desk["metadata"]["annotations"]
    assert ann[contract.WAKE_REQUESTED_BY_ANNOTATION] == "exp/train"
    assert pm.sim.nodes["desk"].mode == "waking"
    done = pm.nodes["desk"].wake_done
    assert done is not None and 1000 < done < 1000 + 60
    await _run_until(pm, done)
    assert pm.nodes["desk"].state == "awake"
    assert desk["spec"]["taints"] == []
    assert live.clock.holds == 1  # until the pod is bound
    pm.on_started(_gpu_job(), "desk", done)
    assert live.clock.holds == 0
    (wait,) = pm.summary(86400.0)["waits"]
    assert wait == pytest.approx(done - 1000.0)
    # the step function: idle, falling (idle), asleep, waking (60 W), on
    watts = [w for _, w in pm.sim.nodes["desk"].power]
    assert watts == [40.0, 3.5, 60.0, 40.0]


def _small_job() -> Job:
    """Fits the awake Pi as well as the sleeping desktop."""
    return Job("small", "small", "training", 10.0, 0.0, None, "100m", "64Mi", 0)


async def test_a_wake_the_scheduler_asked_for_is_made_though_an_awake_node_fits() -> None:
    """cluster-energy may find a sleeping node cheaper than an awake one that fits: its
    scheduler writes the wake request itself (the pod waits with WaitingForNodeWake). The
    simulated manager, like the real one, wakes the node asked for; without the request it
    leaves the pod to the awake node, as before."""
    pm, kube, _ = _setup()
    await _run_until(pm, 200.0)
    assert pm.nodes["desk"].state == "asleep" and pm.nodes["pi"].state == "awake"
    pm.sim.advance(1000.0)
    pm.on_unschedulable(_small_job(), 1000.0)  # Unschedulable: it fits the Pi
    await pm.fire(1000.0)
    assert pm.nodes["desk"].state == "asleep" and "small" in pm.pending
    annotations = kube.nodes["desk"]["metadata"]["annotations"]
    annotations[contract.WAKE_REQUESTED_BY_ANNOTATION] = "exp/small"
    pm.on_unschedulable(_small_job(), 1000.0, wake_asked=True)
    await pm.fire(1000.0)
    assert pm.nodes["desk"].state == "waking"
    assert "small" in pm.nodes["desk"].waiting and "small" not in pm.pending
    done = pm.nodes["desk"].wake_done
    assert done is not None
    await _run_until(pm, done)
    assert pm.nodes["desk"].state == "awake"


async def test_a_wake_asked_for_another_pod_is_not_taken_as_this_ones() -> None:
    pm, kube, _ = _setup()
    await _run_until(pm, 200.0)
    pm.sim.advance(1000.0)
    annotations = kube.nodes["desk"]["metadata"]["annotations"]
    annotations[contract.WAKE_REQUESTED_BY_ANNOTATION] = "other-namespace/small"
    pm.on_unschedulable(_small_job(), 1000.0, wake_asked=True)
    await pm.fire(1000.0)
    assert pm.nodes["desk"].state == "asleep" and "small" in pm.pending


async def test_a_failed_wake_times_out_and_is_retried_after_backoff() -> None:
    pm, kube, _ = _setup(fail_desk=1.0)
    await _run_until(pm, 200.0)
    assert pm.nodes["desk"].state == "asleep"
    pm.sim.advance(1000.0)
    pm.on_unschedulable(_gpu_job(), 1000.0)
    await pm.fire(1000.0)
    assert pm.nodes["desk"].wake_done is None  # this wake never completes
    assert pm.sim.nodes["desk"].mode == "asleep"  # the machine never came up
    await _run_until(pm, 1000.0 + 10 * 2 + 30)
    assert pm.nodes["desk"].state == "wake-failed"
    ann = kube.nodes["desk"]["metadata"]["annotations"]
    assert ann[contract.POWER_STATE_ANNOTATION] == "wake-failed"
    assert "train" in pm.pending  # planned again
    # retried after the 30 s backoff (no other node has a GPU)
    await _run_until(pm, 1050.0 + 29)
    assert pm.nodes["desk"].state == "wake-failed"
    await _run_until(pm, 1050.0 + 30)
    assert pm.nodes["desk"].state == "waking"
    assert pm.nodes["desk"].wakes == 2 and pm.nodes["desk"].wake_failures == 1


async def test_a_pod_bound_during_the_sleep_keeps_the_node_awake() -> None:
    pm, kube, _ = _setup()
    kube.bound["desk"] = [{"metadata": {"labels": {"energysched.lab.experiment/job": "x"}}}]
    pm.live.records["x"] = type("R", (), {"status": "submitted"})()  # type: ignore[union-attr]
    await _run_until(pm, 200.0)
    assert pm.nodes["desk"].state == "awake"
    assert kube.nodes["desk"]["spec"]["taints"] == []
    assert any("sleep abandoned" in n for n in pm.notes)
