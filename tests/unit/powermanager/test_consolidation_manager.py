"""Consolidation in the manager (the I/O shell): evictions through the Eviction API, the
node given back when a pod cannot go, the reason said (Event, log line, metric).

A fake of the project's own client interface (as test_manager.py); the real API server,
PDBs and the disruption controller are proven in tests/integration/power.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    CONSOLIDATION_ANNOTATION,
    POWER_MANAGEMENT_LABEL,
    SLEEP_REQUESTED_ANNOTATION,
)
from energysched.kube.client import ApiError
from energysched.power.consolidation import ConsolidationConfig
from energysched.power.policy import PolicyConfig
from energysched.powermanager.config import ManagerConfig
from energysched.powermanager.manager import PowerManager

from .test_manager import PROFILE, Clock, FakeKube, control, pod, state, sync, tainted


class EvictingKube(FakeKube):
    """FakeKube that takes Evictions: the pod goes (as the API server deletes it), or a 429
    for the pods whose budget refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.evicted: list[str] = []
        self.refuse: set[str] = set()

    async def create(self, path: str, obj: Any) -> dict[str, Any]:
        parts = path.split("/")  # /api/v1/namespaces/NS/pods/NAME/eviction
        assert parts[-1] == "eviction" and parts[3] == "namespaces", path
        assert obj["apiVersion"] == "policy/v1" and obj["kind"] == "Eviction"
        name = parts[6]
        if name in self.refuse:
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            )
        self.evicted.append(name)
        self.pods = [p for p in self.pods if p["metadata"]["name"] != name]
        return {}


class Recorder:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str]] = []

    def post(self, ref: Any, type_: str, reason: str, note: str) -> bool:
        self.posted.append((ref.name, type_, reason, note))
        return True


def owned(name: str, node: str, kind: str = "ReplicaSet", **spec: Any) -> dict[str, Any]:
    p = pod(name, node)
    p["metadata"]["ownerReferences"] = [{"kind": kind, "name": "rs", "controller": True}]
    p["metadata"]["labels"] = {"app": "web"}
    p["status"]["startTime"] = "2020-01-01T00:00:00Z"  # long quiet
    p["spec"].update(spec)
    return p


@pytest.fixture
def setup(tmp_path: Path) -> tuple[EvictingKube, PowerManager, Clock, Recorder, Path]:
    kube, clock, events = EvictingKube(), Clock(), Recorder()
    config = ManagerConfig(
        policy=PolicyConfig(hysteresis_seconds=10, min_awake_nodes=1, min_free_fraction=0.0),
        interval=1,
        drain_settle_seconds=0,
        consolidation=ConsolidationConfig(True, pod_restart_joules=100),
    )
    manager = PowerManager(kube, kube, config, clock=clock)  # type: ignore[arg-type]
    manager.events = events  # type: ignore[assignment]
    manager.profiles.store["box"] = PROFILE
    manager.pdbs.synced.set()  # what the reflector does once the budgets are listed
    log = tmp_path / "hook.log"
    kube.add_node("spare")
    kube.nodes["spare"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] = "disabled"
    kube.add_node("busy", **{"energy.thesis.io/power-control": control(log)})
    return kube, manager, clock, events, log


async def one_pass(kube: EvictingKube, manager: PowerManager, clock: Clock) -> None:
    sync(kube, manager)
    await manager.reconcile()
    clock.now += 1


async def test_a_quiet_node_is_drained_through_evictions_then_sleeps(setup: Any) -> None:
    kube, manager, clock, events, log = setup
    kube.pods = [owned("web-1", "busy"), owned("web-2", "busy")]
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1", "web-2"]
    assert tainted(kube, "busy") and state(kube, "busy") == "draining"
    assert CONSOLIDATION_ANNOTATION in kube.nodes["busy"]["metadata"]["annotations"]
    assert [r for _, _, r, _ in events.posted].count("PodEvicted") == 2
    await one_pass(kube, manager, clock)  # empty now: the ordinary sleep path
    assert state(kube, "busy") == "asleep" and log.read_text() == "sleep\n"
    assert CONSOLIDATION_ANNOTATION not in kube.nodes["busy"]["metadata"]["annotations"]


async def test_consolidation_is_off_by_default(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    manager.config = dataclasses.replace(manager.config, consolidation=ConsolidationConfig())
    kube.pods = [owned("web-1", "busy")]
    for _ in range(3):
        await one_pass(kube, manager, clock)
    assert kube.evicted == [] and not tainted(kube, "busy")


async def test_a_bare_pod_blocks_the_drain_and_the_manager_says_why(setup: Any) -> None:
    kube, manager, clock, events, _ = setup
    bare = pod("lonely", "busy")
    bare["status"]["startTime"] = "2020-01-01T00:00:00Z"
    kube.pods = [owned("web-1", "busy"), bare]
    for _ in range(3):
        await one_pass(kube, manager, clock)
    assert kube.evicted == [] and not tainted(kube, "busy")
    assert state(kube, "busy") == "None"  # never touched
    blocked = [e for e in events.posted if e[2] == "DrainBlocked"]
    assert len(blocked) == 1  # said once, not every pass
    (node, type_, _, note) = blocked[0]
    assert (node, type_) == ("busy", "Warning") and "ns/lonely" in note and "no controller" in note
    skipped = manager.metrics.skipped.labels(reason="drain-no-controller")._value.get()
    assert skipped == 3


async def test_a_budget_that_refuses_at_eviction_time_gives_the_node_back(setup: Any) -> None:
    """The PDB check passed on the cache but the API server refuses (429): the node is
    untainted and awake, the pods evicted before run elsewhere, and no drain for a while."""
    kube, manager, clock, events, log = setup
    kube.pods = [owned("web-1", "busy"), owned("web-2", "busy")]
    kube.refuse = {"web-2"}
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"]
    assert state(kube, "busy") == "awake" and not tainted(kube, "busy")
    (note,) = [n for _, t, r, n in events.posted if r == "Awake" and t == "Warning"]
    assert "ns/web-2" in note and "refused" in note
    assert manager.metrics.skipped.labels(reason="drain-pdb")._value.get() == 1
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"] and not tainted(kube, "busy")  # the backoff
    assert not log.exists()


async def test_a_pod_that_arrives_unevictable_during_the_drain_stops_it(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    manager.config = dataclasses.replace(manager.config, drain_settle_seconds=5)
    kube.pods = [owned("web-1", "busy")]
    await one_pass(kube, manager, clock)
    assert state(kube, "busy") == "draining" and kube.evicted == []  # settling
    scratch = owned("late", "busy", volumes=[{"name": "scratch", "emptyDir": {}}])
    kube.pods.append(scratch)
    clock.now += 5
    await one_pass(kube, manager, clock)
    assert kube.evicted == [] and state(kube, "busy") == "awake"
    assert not tainted(kube, "busy")
    assert manager.metrics.skipped.labels(reason="drain-local-storage")._value.get() >= 1


async def test_a_drain_that_takes_too_long_is_abandoned(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    manager.config = dataclasses.replace(
        manager.config, consolidation=ConsolidationConfig(True, 100, drain_timeout_seconds=30)
    )
    kube.pods = [owned("web-1", "busy")]
    stuck = owned("web-1", "busy")
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"]
    stuck["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"  # never goes
    kube.pods = [stuck]
    await one_pass(kube, manager, clock)
    assert state(kube, "busy") == "draining"
    clock.now += 31
    await one_pass(kube, manager, clock)
    assert state(kube, "busy") == "awake" and not tainted(kube, "busy")
    assert manager.metrics.skipped.labels(reason="drain-timeout")._value.get() == 1


async def test_a_job_pod_or_pods_that_fit_nowhere_are_not_drained(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    kube.pods = [owned("train", "busy", kind="Job")]
    await one_pass(kube, manager, clock)
    assert manager.metrics.skipped.labels(reason="drain-job-pod")._value.get() == 1
    kube.pods = [
        owned("big", "busy", containers=[{"name": "c", "resources": {"requests": {"cpu": "5"}}}])
    ]
    await one_pass(kube, manager, clock)
    assert manager.metrics.skipped.labels(reason="drain-no-room")._value.get() == 1
    assert kube.evicted == [] and not tainted(kube, "busy")


async def test_once_the_agent_was_asked_turning_consolidation_off_does_not_give_back(
    setup: Any,
) -> None:
    """A drained node whose agent was asked to halt it may already be off: turning
    consolidation off then must not mark it awake and untainted (pods would land on it)."""
    kube, manager, clock, _events, _ = setup
    relay = json.dumps(
        {"method": "shelly-relay", "address": "http://127.0.0.1:9", "haltFirst": True}
    )
    kube.nodes["busy"]["metadata"]["annotations"]["energy.thesis.io/power-control"] = relay
    kube.pods = [owned("web-1", "busy")]
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"] and state(kube, "busy") == "draining"
    await one_pass(kube, manager, clock)  # empty: the agent is asked to power off
    annotations = kube.nodes["busy"]["metadata"]["annotations"]
    assert "poweroff" in annotations[SLEEP_REQUESTED_ANNOTATION]
    manager.config = dataclasses.replace(manager.config, consolidation=ConsolidationConfig())
    await one_pass(kube, manager, clock)
    assert state(kube, "busy") != "awake" and tainted(kube, "busy")


async def test_a_woken_pod_that_is_bound_no_longer_holds_consolidation_back(
    setup: Any,
) -> None:
    kube, manager, clock, _events, _ = setup
    kube.pods = [owned("web-1", "busy"), pod("woke-a-node", "spare")]
    manager._served = {"uid-woke-a-node": "spare"}  # a wake it asked for, long done
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"]


async def test_a_pod_still_waiting_for_a_wake_holds_consolidation_back(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    kube.pods = [owned("web-1", "busy"), pod("waiting", unschedulable=True)]
    manager._served = {"uid-waiting": "elsewhere"}
    await one_pass(kube, manager, clock)
    assert kube.evicted == [] and not tainted(kube, "busy")


async def test_nothing_is_drained_before_the_budgets_are_listed(setup: Any) -> None:
    kube, manager, clock, _events, _ = setup
    manager.pdbs.synced.clear()  # e.g. RBAC without poddisruptionbudgets
    kube.pods = [owned("web-1", "busy")]
    await one_pass(kube, manager, clock)
    assert kube.evicted == [] and not tainted(kube, "busy")
    manager.pdbs.synced.set()
    await one_pass(kube, manager, clock)
    assert kube.evicted == ["web-1"]
