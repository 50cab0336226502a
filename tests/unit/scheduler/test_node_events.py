"""Node events as the scheduler applies them: a new reading is not a new node."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from energysched import contract
from energysched.kube.client import KubeClient
from energysched.kube.config import ClusterAccess
from energysched.scheduler.config import ConfigSource, SchedulerConfig
from energysched.scheduler.controller import EnergyScheduler

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


def node(watts: str, ts: str = "2026-03-01T11:59:50Z", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "wyse",
            "labels": {"kubernetes.io/hostname": "wyse", **labels},
            "annotations": {
                contract.CURRENT_WATTS_ANNOTATION: watts,
                contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION: ts,
            },
        },
        "spec": {},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": ts}],
        },
    }


@pytest.fixture
def sched() -> EnergyScheduler:
    # Never used for a request here: only the event handlers run.
    nowhere = KubeClient(ClusterAccess("https://127.0.0.1:9", None))
    return EnergyScheduler(nowhere, nowhere, ConfigSource(None, SchedulerConfig()), "test")


async def test_a_new_reading_updates_the_reading_and_keeps_the_node(
    sched: EnergyScheduler,
) -> None:
    first = node("10.0")
    sched._on_node("ADDED", first, None)
    before = sched.state.snapshot(NOW)
    assert before.readings[0] is not None and before.readings[0].watts == 10.0

    second = node("20.5", "2026-03-01T11:59:55Z")
    sched._on_node("MODIFIED", second, first)
    after = sched.state.snapshot(NOW)
    reading = after.readings[0]
    assert reading is not None and reading.watts == 20.5
    assert reading.timestamp == dt.datetime(2026, 3, 1, 11, 59, 55, tzinfo=dt.UTC)
    # The node table was not re-collected for a reading (nor for a heartbeat).
    assert after.table.nodes[0] is before.table.nodes[0]
    heartbeat = copy.deepcopy(second)
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = "2026-03-01T12:00:00Z"
    sched._on_node("MODIFIED", heartbeat, second)
    assert sched.state.snapshot(NOW).table.nodes[0] is before.table.nodes[0]


async def test_a_changed_node_is_still_applied(sched: EnergyScheduler) -> None:
    first = node("10.0")
    sched._on_node("ADDED", first, None)
    relabelled = node("10.0", zone="b")
    sched._on_node("MODIFIED", relabelled, first)
    assert sched.state.snapshot(NOW).table.nodes[0].labels["zone"] == "b"
    other = node("10.0", zone="b")
    other["metadata"]["annotations"]["example.com/owner"] = "lab"
    sched._on_node("MODIFIED", other, relabelled)
    assert sched.state.snapshot(NOW).table.nodes[0].annotations["example.com/owner"] == "lab"


async def test_a_node_deleted_or_invalid_and_back_is_applied_again(
    sched: EnergyScheduler,
) -> None:
    first = node("10.0")
    sched._on_node("ADDED", first, None)
    sched._on_node("DELETED", first, first)
    assert sched.state.snapshot(NOW).table.size == 0
    sched._on_node("ADDED", first, None)
    assert sched.state.snapshot(NOW).table.names == ("wyse",)
    broken = copy.deepcopy(first)
    broken["status"]["allocatable"]["cpu"] = "lots"
    sched._on_node("MODIFIED", broken, first)
    assert sched.state.snapshot(NOW).table.size == 0
    sched._on_node("MODIFIED", first, broken)  # the same view as before it broke
    assert sched.state.snapshot(NOW).table.names == ("wyse",)


async def test_an_invalid_reading_is_dropped_not_kept(sched: EnergyScheduler) -> None:
    first = node("10.0")
    sched._on_node("ADDED", first, None)
    bad = node("lots")
    sched._on_node("MODIFIED", bad, first)
    assert sched.state.snapshot(NOW).readings[0] is None
