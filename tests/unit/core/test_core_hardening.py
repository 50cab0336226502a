"""Input the API server accepts that used to crash the core or make it decide wrongly."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from energysched.contract import CURRENT_WATTS_ANNOTATION, CURRENT_WATTS_TIMESTAMP_ANNOTATION
from energysched.core import (
    ClusterState,
    InputError,
    NodeInfo,
    PowerReading,
    RecentBind,
    ScheduleParams,
    parse_node,
    parse_pod,
    parse_power_reading,
    schedule_one,
)
from energysched.core.nodetable import parse_int64
from energysched.core.parse import parse_rfc3339
from energysched.core.quantity import INT64_MAX
from energysched.core.scores.hybrid import counts_of
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from tests.unit.core.core_helpers import NOW, node, ok, pod, profile, thesis_kb, thesis_nodes
from tests.unit.core.plugins.score_helpers import hybrid_node

# -- int64 overflow of summed requests -------------------------------------------------


def _big_pods() -> list[Any]:
    return [
        pod(f"big{i}", memory="5E", node_name="n", uid=f"big{i}", phase="Running") for i in range(2)
    ]


def test_summed_requests_saturate_and_the_node_is_full() -> None:
    """Two 5E pods on an 8E node: the sum (10E) overflows int64. The full rebuild
    used to raise OverflowError and the incremental path wrapped to a negative sum."""
    n = node("n", memory="8E", cpu="64")
    small = pod("small", cpu="1", memory="4E", workload="training")

    full = build_snapshot([n], _big_pods(), now=NOW)  # rebuild path
    state = ClusterState()
    state.upsert_node(n)
    state.snapshot(NOW)  # a table exists: the pods below go the incremental way
    for p in _big_pods():
        state.add_pod(p)
    incremental = state.snapshot(NOW)

    for snap in (full, incremental):
        assert snap.usage(0).requested["memory"] == INT64_MAX
        d = schedule_one(small, snap, ScheduleParams())
        assert d.node is None
        assert d.reasons == {"Insufficient memory": 1}
        explained = schedule_one(small, snap, ScheduleParams(), explain=True)
        assert explained.reasons == d.reasons
    assert (full.requested == incremental.requested).all()


def test_saturated_sum_comes_back_down_when_a_pod_leaves() -> None:
    state = ClusterState()
    state.upsert_node(node("n", memory="8E"))
    state.snapshot(NOW)
    for p in _big_pods():
        state.add_pod(p)
    assert state.snapshot(NOW).usage(0).requested["memory"] == INT64_MAX
    state.remove_pod("big1")
    assert state.snapshot(NOW).usage(0).requested["memory"] == 5 * 10**18
    fresh = build_snapshot([node("n", memory="8E")], _big_pods()[:1], now=NOW)
    assert (fresh.requested == state.snapshot(NOW).requested).all()


def test_label_integers_beyond_the_str_limit() -> None:
    assert parse_int64("0" * 5000 + "42") == 42
    assert parse_int64("9" * 5000) is None
    assert parse_int64("-9223372036854775808") == -(2**63)
    assert parse_int64("9223372036854775808") is None


# -- NaN and inf scores ----------------------------------------------------------------


def _extreme_kb() -> KnowledgeBase:
    def spec(name: str, perf: float, watts: float) -> ProfileSpec:
        return ProfileSpec(
            name=name,
            node_selector={"kubernetes.io/hostname": name},
            idle_power_watts=0.0,
            workloads={"training": WorkloadFigures(perf, watts)},
        )

    return KnowledgeBase.of(
        [
            spec("a-huge", 1e308, 1e308),  # 100*P overflows: normP would be inf/inf = NaN
            spec("b-tiny", 1.0, 5e-324),  # P/W = inf
            spec("c-sane", 100.0, 10.0),
        ]
    )


@pytest.mark.parametrize("mode", ["static-raw", "normalized", "hybrid"])
def test_figures_that_derive_nan_or_inf_never_win(mode: str) -> None:
    nodes = [node(n) for n in ("a-huge", "b-tiny", "c-sane")]
    snap = build_snapshot(nodes, now=NOW, kb=_extreme_kb())
    p = pod("t", workload="training", weight="0.5")
    fast = schedule_one(p, snap, ScheduleParams(mode=mode))  # type: ignore[arg-type]
    full = schedule_one(p, snap, ScheduleParams(mode=mode), explain=True)  # type: ignore[arg-type]
    assert fast.node == full.node == "c-sane"
    assert fast.runner_up == full.runner_up
    for b in full.ranking:
        assert math.isfinite(b.score) and math.isfinite(b.base_score), b
    # the unusable figures rank as "no data", below every node that has them
    assert [b.kind for b in full.ranking] == ["profile", "no-profile", "no-profile"]


def test_ranking_is_total_when_a_score_is_nan() -> None:
    """A NaN that gets past the figures check (a reading, a future bug) ranks last
    in both paths: np.argmax alone picks the first NaN."""
    import numpy as np

    from energysched.core.interface import Scores
    from energysched.core.runtime import rank

    final = np.array([1.0, np.nan, 3.0, np.nan, -np.inf, 3.0])
    scores = Scores.__new__(Scores)
    object.__setattr__(scores, "final", final)
    object.__setattr__(scores, "tier", np.ones(6, dtype=np.bool_))
    feasible = np.ones(6, dtype=np.bool_)
    full = rank(scores, feasible, None)
    assert full == [2, 5, 0, 1, 3, 4]
    for k in range(1, 7):
        assert rank(scores, feasible, k) == full[:k]


# -- future timestamps -----------------------------------------------------------------


def _reading_node(ts: str, watts: str = "7") -> NodeInfo:
    return node(
        "wyse",
        annotations={CURRENT_WATTS_ANNOTATION: watts, CURRENT_WATTS_TIMESTAMP_ANNOTATION: ts},
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-03-01T12:00:00Z",
        "2026-03-01t12:00:00z",
        "2026-03-01T12:00:00.123456789Z",
        "2026-03-01T13:00:00+01:00",
        "2026-03-01T11:00:00-01:00",
    ],
)
def test_rfc3339_as_written(text: str) -> None:
    ts = parse_rfc3339(text)
    assert ts is not None and ts.timestamp() == pytest.approx(NOW.timestamp(), abs=1)
    assert not isinstance(parse_power_reading(_reading_node(text)), InputError)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T11Z",  # fromisoformat takes these ISO 8601 forms
        "20260131T115955Z",
        "2026-01-31T11:59Z",
        "2026-01-31 11:59:55Z",
        "2026-01-31T11:59:55",  # no zone
        "2026-01-31T11:59:55+0100",
        "2026-02-30T11:59:55Z",
        "2026-01-31T11:59:60Z",
        "2026-01-31T11:59:55+24:00",
        "٢٠٢٦-01-31T11:59:55Z",
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "",
    ],
)
def test_not_rfc3339(text: str) -> None:
    assert parse_rfc3339(text) is None
    got = parse_power_reading(_reading_node(text))
    assert isinstance(got, InputError) and "RFC 3339" in got.message


def test_future_timestamp_beyond_the_allowance_is_invalid_and_counted() -> None:
    """A reading dated 2099 used to be fresh for decades: busy nodes looked idle
    and it hid the predicted load of every later bind."""
    nodes = thesis_nodes()
    params = ScheduleParams(mode="hybrid", stale_policy="busy")
    p = pod("t", workload="training", weight="0")
    future = PowerReading(100.0, NOW.replace(year=2099), "shelly")  # would say busy
    skewed = PowerReading(100.0, NOW + timedelta(seconds=20), "shelly")
    for reading, state, counted in ((future, "future", 1), (skewed, "fresh", 0)):
        snap = build_snapshot(
            nodes, now=NOW, kb=thesis_kb(), readings={"rpi": reading, "wyse": reading}
        )
        fast = schedule_one(p, snap, params)
        full = schedule_one(p, snap, params, explain=True)
        assert (fast.node, counts_of(fast.part).future) == (full.node, counts_of(full.part).future)
        by_node = {b.node: b for b in full.ranking}
        assert hybrid_node(by_node["rpi"]).reading_state == state
        assert counts_of(fast.part).future == 2 * counted
        if state == "future":
            assert "in the future > 30s clock-skew allowance" in by_node["rpi"].why
            assert by_node["rpi"].score == 0.0  # stale policy "busy" applies, as if missing


def test_parse_power_reading_with_now_rejects_the_future() -> None:
    n = _reading_node("2099-01-01T00:00:00Z")
    assert isinstance(parse_power_reading(n), PowerReading)  # without now: syntax only
    got = parse_power_reading(n, now=NOW)
    assert isinstance(got, InputError) and "clock skew" in got.message
    ok_skew = parse_power_reading(_reading_node("2026-03-01T12:00:20Z"), now=NOW)
    assert isinstance(ok_skew, PowerReading)


def test_future_reading_does_not_hide_predicted_load() -> None:
    params = ScheduleParams(mode="hybrid")
    snap = build_snapshot(
        [node("wyse")],
        now=NOW,
        kb=KnowledgeBase.of([profile("wyse")]),
        readings={"wyse": PowerReading(6.5, NOW.replace(year=2099))},
        recent_binds=[RecentBind("wyse", "b1", NOW - timedelta(seconds=1), "training")],
    )
    d = schedule_one(pod("t", workload="training"), snap, params, explain=True)
    assert hybrid_node(d.ranking[0]).reading_state == "future"
    assert counts_of(d.part).future == 1


# -- numbers and shapes the parsers must survive ---------------------------------------


@pytest.mark.parametrize("obj", [[], ["a"], "pod", 5, None])
def test_non_mapping_objects_are_input_errors(obj: Any) -> None:
    for parse in (parse_pod, parse_node):
        got = parse(obj)
        assert isinstance(got, InputError)
        assert "object (a mapping) is required" in got.message


def _pod_obj(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "default"}, "spec": spec}


@pytest.mark.parametrize(
    ("requests", "fragment"),
    [
        ({"cpu": "-1"}, ">= 0"),
        ({"memory": "-1Gi"}, ">= 0"),
        ({"cpu": -2}, ">= 0"),
        ({"memory": "Pi"}, "unable to parse numeric part"),
        ({"memory": "e-10"}, "unable to parse numeric part"),
    ],
)
def test_bad_requests_are_input_errors(requests: dict[str, Any], fragment: str) -> None:
    got = parse_pod(_pod_obj(containers=[{"name": "c", "resources": {"requests": requests}}]))
    assert isinstance(got, InputError) and fragment in got.message, got


def test_huge_quantities_parse_and_saturate() -> None:
    big = "1" * 5000
    p = ok(parse_pod(_pod_obj(containers=[{"name": "c", "resources": {"requests": {"cpu": big}}}])))
    assert p.requests["cpu"] == INT64_MAX
    p = ok(parse_pod(_pod_obj(containers=[{"resources": {"requests": {"memory": 10**5000}}}])))
    assert p.requests["memory"] == INT64_MAX


def test_negative_allocatable_is_an_input_error() -> None:
    got = parse_node({"metadata": {"name": "n"}, "status": {"allocatable": {"memory": "-1"}}})
    assert isinstance(got, InputError) and "status.allocatable[memory]" in got.message


@pytest.mark.parametrize("port", [65536, -1, 10**400])
def test_host_ports_out_of_range(port: int) -> None:
    got = parse_pod(_pod_obj(containers=[{"name": "c", "ports": [{"hostPort": port}]}]))
    assert isinstance(got, InputError) and "0 to 65535" in got.message


def test_non_string_label_keys_are_input_errors() -> None:
    got = parse_node({"metadata": {"name": "n", "labels": {1: "a"}}})
    assert isinstance(got, InputError) and "string keys" in got.message
