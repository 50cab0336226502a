"""Observations: what a finished run says, and every reason it says nothing."""

from __future__ import annotations

import math

import pytest

from energysched.contract import WORK_ANNOTATION, WORKLOAD_TYPE_LABEL
from energysched.learning.observe import (
    FinishedRun,
    Neighbour,
    Observation,
    ObserveConfig,
    Rejected,
    finished_run,
    mean_power,
    observe,
    parse_work,
)

CFG = ObserveConfig()
FLAT = [(0.0, 10.0), (50.0, 30.0), (100.0, 30.0), (150.0, 10.0)]  # idle 10 W, 30 W while it ran


def run(**kw: object) -> FinishedRun:
    base: dict[str, object] = dict(
        key="ns/p",
        node="n1",
        workload_type="training",
        work_raw="1000",
        phase="Succeeded",
        started=50.0,
        finished=150.0,
        reasons=("Completed",),
        exit_codes=(0,),
    )
    base.update(kw)
    return FinishedRun(**base)  # type: ignore[arg-type]


def test_alone_on_its_node_gives_performance_and_power() -> None:
    got = observe(run(), "wyse", FLAT, [], CFG)
    assert isinstance(got, Observation)
    assert got.performance == pytest.approx(10.0)
    assert got.power_watts == pytest.approx(30.0)
    assert got.partial == ()


def test_time_factor_scales_wall_seconds_to_simulated() -> None:
    got = observe(run(), "wyse", FLAT, [], ObserveConfig(time_factor=0.01))
    assert isinstance(got, Observation)
    assert got.performance == pytest.approx(0.1)
    assert got.duration_s == pytest.approx(10_000)


def test_sharing_corrects_performance_and_power_comes_only_from_solo_time() -> None:
    # Another training pod (demand 1 on cpu) for the second half: speed 1/2 there.
    other = Neighbour("training", 100.0, 400.0)
    readings = [(0.0, 10.0), (50.0, 30.0), (100.0, 50.0), (150.0, 30.0)]
    got = observe(run(), "wyse", readings, [other], CFG)
    assert isinstance(got, Observation)
    assert got.performance == pytest.approx(1000 / 75)  # 50 s at full speed + 50 s at half
    assert got.power_watts == pytest.approx(30.0)  # the solo half only
    assert got.solo_s == pytest.approx(50) and got.shared_s == pytest.approx(50)


def test_a_sequential_neighbour_does_not_slow_a_lone_core_user() -> None:
    seq = run(workload_type="sequential", work_raw="100")
    others = [Neighbour("sequential", 0.0, 1000.0), Neighbour("sequential", 0.0, 1000.0)]
    got = observe(seq, "wyse", FLAT, others, CFG)
    assert isinstance(got, Observation)
    assert got.performance == pytest.approx(1.0)  # 3 x 0.25 <= 1: full speed
    assert got.power_watts is None and got.partial == ("never-alone",)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"workload_type": None}, "not-typed"),
        ({"workload_type": "mining"}, "not-typed"),
        ({"reasons": ("OOMKilled",), "exit_codes": (137,), "phase": "Failed"}, "oom-killed"),
        ({"phase": "Failed", "exit_codes": (1,)}, "failed"),
        ({"exit_codes": (2,)}, "failed"),
        ({"started": None}, "no-timestamps"),
        ({"started": 150.0, "finished": 50.0}, "negative-duration"),
        ({"started": 150.0, "finished": 150.0}, "zero-duration"),
        ({"started": 0.0, "finished": 5 * 86400.0}, "too-long"),
    ],
)
def test_garbage_teaches_nothing_and_says_why(change: dict[str, object], reason: str) -> None:
    got = observe(run(**change), "wyse", FLAT, [], CFG)
    assert isinstance(got, Rejected) and got.reason == reason


def test_no_profile_is_refused() -> None:
    got = observe(run(), None, FLAT, [], CFG)
    assert isinstance(got, Rejected) and got.reason == "no-profile"


def test_a_run_the_node_slept_through_is_refused() -> None:
    got = observe(run(), "wyse", FLAT, [], CFG, awake=[(0.0, 100.0), (120.0, 500.0)])
    assert isinstance(got, Rejected) and got.reason == "interrupted-by-sleep"
    ok = observe(run(), "wyse", FLAT, [], CFG, awake=[(0.0, 500.0)])
    assert isinstance(ok, Observation)


@pytest.mark.parametrize("work", [None, "", "abc", "-5", "0", "nan", "inf", "1e400"])
def test_bad_or_missing_work_keeps_power_only(work: str | None) -> None:
    got = observe(run(work_raw=work), "wyse", FLAT, [], CFG)
    assert isinstance(got, Observation)
    assert got.performance is None and got.power_watts == pytest.approx(30.0)
    assert got.partial == (("no-work",) if work is None else ("bad-work",))


def test_a_reading_gap_keeps_performance_only_and_nothing_left_is_a_rejection() -> None:
    sparse = [(0.0, 10.0), (50.0, 30.0)]  # held for 100 s > 90 s
    got = observe(run(), "wyse", sparse, [], CFG)
    assert isinstance(got, Observation)
    assert got.power_watts is None and got.partial == ("reading-gap",)
    none = observe(run(work_raw=None), "wyse", sparse, [], CFG)
    assert isinstance(none, Rejected) and none.reason == "no-work"


def test_mean_power_is_the_step_function_and_refuses_what_it_cannot_see() -> None:
    r = [(0.0, 10.0), (10.0, 20.0)]
    assert mean_power(r, 5.0, 15.0, 60.0) == pytest.approx(15.0)
    assert mean_power(r, -5.0, 5.0, 60.0) is None  # nothing before the start
    assert mean_power([(0.0, math.nan)], 1.0, 2.0, 60.0) is None
    assert mean_power([(0.0, -3.0)], 1.0, 2.0, 60.0) is None
    assert mean_power(r, 5.0, 5.0, 60.0) is None


def test_parse_work() -> None:
    assert parse_work("12.5") == 12.5
    assert parse_work(" 3 ") == 3.0
    assert parse_work("1e400") == "bad-work"


def pod(**status: object) -> dict[str, object]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": "p",
            "labels": {WORKLOAD_TYPE_LABEL: "training"},
            "annotations": {WORK_ANNOTATION: "100"},
        },
        "spec": {"nodeName": "n1"},
        "status": status,
    }


def test_finished_run_reads_the_containers_terminated_state() -> None:
    got = finished_run(
        pod(
            phase="Succeeded",
            containerStatuses=[
                {
                    "state": {
                        "terminated": {
                            "startedAt": "2026-01-01T00:00:10Z",
                            "finishedAt": "2026-01-01T00:01:10Z",
                            "reason": "Completed",
                            "exitCode": 0,
                        }
                    }
                }
            ],
        )
    )
    assert got is not None
    assert got.finished is not None and got.started is not None
    assert got.finished - got.started == 60.0
    assert got.work_raw == "100" and got.workload_type == "training" and got.node == "n1"


@pytest.mark.parametrize(
    "status",
    [
        {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {}}}]},
        {"phase": "Succeeded", "containerStatuses": [{"state": {"running": {}}}]},
        {
            "phase": "Succeeded",
            "containerStatuses": [
                {"state": {"terminated": {"startedAt": "yesterday", "finishedAt": 5}}}
            ],
        },
        {"phase": "Succeeded"},
    ],
)
def test_finished_run_without_readable_stamps_has_none(status: dict[str, object]) -> None:
    got = finished_run(pod(**status))
    assert got is not None and (got.started is None or got.finished is None)
    assert isinstance(observe(got, "wyse", FLAT, [], CFG), Rejected)


def test_running_or_unbound_pods_are_not_finished() -> None:
    assert finished_run(pod(phase="Running")) is None
    assert finished_run({"status": {"phase": "Succeeded"}}) is None
    assert finished_run({}) is None
