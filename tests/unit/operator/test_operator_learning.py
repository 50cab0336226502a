"""The operator's learner: node readings and pod events in, observations and pod energy out."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import pytest

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    POWER_STATE_ANNOTATION,
    WORK_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
)
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched.learning.observe import Observation, Rejected
from energysched.operator.learning import Collector

T0 = 1_800_000_000.0
KB = KnowledgeBase.of(
    [
        ProfileSpec(
            name="wyse",
            node_selector=MappingProxyType({"kubernetes.io/hostname": "wyse"}),
            idle_power_watts=5.0,
            workloads=MappingProxyType({"training": WorkloadFigures(10.0, 20.0)}),
        )
    ]
)


def stamp(t: float) -> str:
    return datetime.fromtimestamp(T0 + t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node(watts: float, t: float, source: str = "shelly", **ann: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "wyse",
            "labels": {"kubernetes.io/hostname": "wyse"},
            "annotations": {
                CURRENT_WATTS_ANNOTATION: f"{watts}",
                CURRENT_WATTS_TIMESTAMP_ANNOTATION: stamp(t),
                POWER_SOURCE_ANNOTATION: source,
                **ann,
            },
        },
        "status": {"allocatable": {"cpu": "4", "memory": "4Gi", "pods": "110"}},
    }


def pod(
    uid: str, start: float, end: float | None, work: str | None = "1000", **kw: Any
) -> dict[str, Any]:
    state: dict[str, Any]
    if end is None:
        state = {"running": {"startedAt": stamp(start)}}
    else:
        state = {
            "terminated": {
                "startedAt": stamp(start),
                "finishedAt": stamp(end),
                "exitCode": kw.get("code", 0),
                "reason": kw.get("reason", "Completed"),
            }
        }
    ann = {WORK_ANNOTATION: work} if work is not None else {}
    return {
        "metadata": {
            "name": uid,
            "namespace": "team",
            "uid": uid,
            "labels": {WORKLOAD_TYPE_LABEL: "training"},
            "annotations": ann,
        },
        "spec": {"nodeName": "wyse"},
        "status": {
            "phase": kw.get("phase", "Running" if end is None else "Succeeded"),
            "containerStatuses": [{"state": state}],
        },
    }


def feed(c: Collector, points: list[tuple[float, float]]) -> None:
    for t, w in points:
        c.on_node(node(w, t))


def test_a_finished_pod_teaches_and_gets_its_energy() -> None:
    c = Collector()
    feed(c, [(0, 5.0), (10, 25.0), (40, 25.0), (70, 25.0), (110, 5.0)])
    assert c.on_pod(pod("a", 10, None), KB) is None  # running
    done = c.on_pod(pod("a", 10, 110), KB)
    assert done is not None and isinstance(done.outcome, Observation)
    assert done.outcome.performance == pytest.approx(10.0)
    assert done.outcome.power_watts == pytest.approx(25.0)
    assert done.energy is not None
    assert done.energy.joules == pytest.approx(2500.0)
    assert done.energy.idle_joules == pytest.approx(500.0)
    assert c.on_pod(pod("a", 10, 110), KB) is None  # once per pod
    block = c.learned_blocks(KB)["wyse"]
    assert block is not None and block["workloads"]["training"]["performanceObservations"] == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (pod("neg", 100, 50), "negative-duration"),
        (pod("days", 0, 5 * 86400), "too-long"),
        (pod("oom", 10, 50, reason="OOMKilled", code=137, phase="Failed"), "oom-killed"),
        (pod("zero", 10, 10), "zero-duration"),
    ],
)
def test_garbage_is_counted_and_teaches_nothing(body: dict[str, Any], reason: str) -> None:
    c = Collector()
    feed(c, [(0, 5.0), (60, 25.0)])
    done = c.on_pod(body, KB)
    assert done is not None and isinstance(done.outcome, Rejected)
    assert c.rejections == {reason: 1}
    assert c.learned_blocks(KB) == {"wyse": None}


def test_missing_work_and_a_reading_gap_are_counted() -> None:
    c = Collector()
    feed(c, [(0, 5.0), (10, 25.0)])  # nothing after t=10: a gap over the run
    done = c.on_pod(pod("a", 10, 200, work=None), KB)
    assert done is not None and isinstance(done.outcome, Rejected)
    assert c.rejections == {"no-work": 1}
    assert done.energy is None


def test_model_readings_are_not_learned_from() -> None:
    c = Collector()
    for t, w in [(0, 5.0), (10, 25.0), (40, 25.0), (70, 25.0), (110, 5.0)]:
        c.on_node(node(w, t, source="model"))
    done = c.on_pod(pod("a", 10, 110), KB)
    assert done is not None and isinstance(done.outcome, Observation)
    assert done.outcome.power_watts is None and "reading-gap" in done.outcome.partial


def test_a_run_through_a_sleep_is_refused() -> None:
    c = Collector()
    c.on_node(node(5.0, 0, **{POWER_STATE_ANNOTATION: "awake"}))
    c.on_node(node(25.0, 10, **{POWER_STATE_ANNOTATION: "awake"}))
    c.on_node(node(1.0, 40, **{POWER_STATE_ANNOTATION: "asleep"}))
    c.on_node(node(25.0, 70, **{POWER_STATE_ANNOTATION: "awake"}))
    c.on_node(node(5.0, 110, **{POWER_STATE_ANNOTATION: "awake"}))
    done = c.on_pod(pod("a", 10, 110), KB)
    assert done is not None and isinstance(done.outcome, Rejected)
    assert done.outcome.reason == "interrupted-by-sleep"


def test_a_spec_change_resets_and_the_block_disappears() -> None:
    c = Collector()
    feed(c, [(0, 5.0), (10, 25.0), (40, 25.0), (70, 25.0), (110, 5.0)])
    c.on_pod(pod("a", 10, 110), KB)
    assert c.learned_blocks(KB)["wyse"] is not None
    p = KB.profiles["wyse"]
    edited = KnowledgeBase.of(
        [
            ProfileSpec(
                p.name,
                p.node_selector,
                p.idle_power_watts,
                MappingProxyType({"training": WorkloadFigures(12.0, 20.0)}),
            )
        ]
    )
    block = c.learned_blocks(edited)["wyse"]
    assert block is not None
    entry = block["workloads"]["training"]
    assert entry["performanceObservations"] == 0 and entry["performance"] == 12.0
    assert entry["powerObservations"] == 1  # the power's spec did not change
    assert c.estimator.counts["spec-changed"] == 1


def test_unknown_nodes_and_garbage_bodies_are_ignored() -> None:
    c = Collector()
    assert c.on_pod(pod("a", 10, 110), KB) is None  # node never seen
    c.on_node({"metadata": {}})
    assert c.on_pod({}, KB) is None
    c.on_node(node(5.0, 0))
    c.on_node(
        {
            **node(5.0, 5),
            "metadata": {
                **node(5.0, 5)["metadata"],
                "annotations": {CURRENT_WATTS_ANNOTATION: "lots"},
            },
        }
    )
    assert c.bad_readings == 1


def test_a_running_neighbour_known_only_by_its_start_time_is_counted() -> None:
    c = Collector()
    feed(c, [(0, 5.0), (10, 25.0), (40, 45.0), (70, 45.0), (100, 45.0), (110, 25.0)])
    other = pod("b", 40, None)
    other["status"] = {"phase": "Running", "startTime": stamp(40)}
    c.on_pod(other, KB)
    done = c.on_pod(pod("a", 10, 110), KB)
    assert done is not None and isinstance(done.outcome, Observation)
    assert done.outcome.neighbours == 1 and done.outcome.solo_s == pytest.approx(30.0)


def test_learned_updates_are_throttled_per_profile_but_first_writes_and_resets_are_not() -> None:
    import time

    from energysched.operator.runtime import OperatorOptions, OperatorRuntime
    from energysched.operator.status import ProfileRecord

    rt = OperatorRuntime(OperatorOptions(learned_interval_seconds=10.0))
    rt.state.profiles["wyse"] = ProfileRecord(
        "wyse", "u", 1, {"learned": {"observations": 1}}, None
    )
    rt.state.profiles["rpi"] = ProfileRecord("rpi", "u", 1, {}, None)
    rt._learned_written["wyse"] = time.monotonic()
    rt._learned_written["rpi"] = time.monotonic()
    learned: dict[str, Any] = {"wyse": {"observations": 2}, "rpi": {"observations": 1}}
    rt._throttle_learned(learned)
    assert learned == {"wyse": {"observations": 1}, "rpi": {"observations": 1}}
    reset: dict[str, Any] = {"wyse": None}
    rt._throttle_learned(reset)
    assert reset == {"wyse": None}
    rt._learned_written["wyse"] = time.monotonic() - 11
    due: dict[str, Any] = {"wyse": {"observations": 2}}
    rt._throttle_learned(due)
    assert due == {"wyse": {"observations": 2}}


def test_a_sleep_dated_by_its_since_annotation_refuses_the_run_it_interrupted() -> None:
    from energysched.contract import POWER_STATE_SINCE_ANNOTATION

    c = Collector()
    feed(c, [(0, 5.0), (10, 25.0), (40, 25.0), (70, 25.0), (100, 25.0), (110, 5.0)])
    asleep = {POWER_STATE_ANNOTATION: "awake", POWER_STATE_SINCE_ANNOTATION: stamp(0)}
    c.on_node(node(5.0, 120, **asleep))
    # A sleep from 50 to 60 reported late (at t=130 and 140), dated by its since stamps.
    c.on_node(
        node(
            1.0, 130, **{POWER_STATE_ANNOTATION: "asleep", POWER_STATE_SINCE_ANNOTATION: stamp(50)}
        )
    )
    c.on_node(
        node(5.0, 140, **{POWER_STATE_ANNOTATION: "awake", POWER_STATE_SINCE_ANNOTATION: stamp(60)})
    )
    done = c.on_pod(pod("a", 10, 110), KB)
    assert done is not None and isinstance(done.outcome, Rejected)
    assert done.outcome.reason == "interrupted-by-sleep"
    ok = c.on_pod(pod("b", 70, 110), KB)
    assert ok is not None and not isinstance(ok.outcome, Rejected)
