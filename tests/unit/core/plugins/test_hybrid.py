"""The hybrid score plugin (energysched/core/scores/hybrid.py): v2.0, live power."""

from __future__ import annotations

from datetime import timedelta

import pytest

from energysched.core import (
    ClusterState,
    ScheduleParams,
    schedule_one,
)
from energysched.core.scores.hybrid import counts_of
from tests.unit.core.core_helpers import (
    NOW,
    pod,
    reading,
    thesis_kb,
    thesis_nodes,
)
from tests.unit.core.plugins.score_helpers import decide, hybrid_node, thesis, training

# -- hybrid ------------------------------------------------------------------------------

IDLE = {"tvpc": reading(25.5, 10), "wyse": reading(7.0, 10), "rpi": reading(2.2, 10)}


def test_hybrid_busy_reading_zeroes_the_node() -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, 5)})
    d = decide(training("1"), snap, mode="hybrid", explain=True)
    assert d.node == "wyse"
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    assert hybrid_node(tvpc).busy and tvpc.score == 0.0 and tvpc.base_score == 100.0
    assert hybrid_node(tvpc).reading_state == "fresh" and hybrid_node(tvpc).live_watts == 60.0
    assert "busy" in tvpc.why and "60.0 W" in tvpc.why
    assert counts_of(d.part).stale == 0 and counts_of(d.part).missing == 0


def test_hybrid_threshold_is_idle_plus_buffer() -> None:
    at_limit = thesis({**IDLE, "tvpc": reading(30.0, 5)})
    assert decide(training("1"), at_limit, mode="hybrid", hybrid_buffer_watts=5.0).node == "tvpc"
    above = thesis({**IDLE, "tvpc": reading(30.1, 5)})
    assert decide(training("1"), above, mode="hybrid", hybrid_buffer_watts=5.0).node == "wyse"


def test_normalized_ignores_readings() -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, 5)})
    d = decide(training("1"), snap, mode="normalized")
    assert d.node == "tvpc" and d.ranking[0].part is None  # hybrid's figures: not there


@pytest.mark.parametrize(
    ("policy", "winner"), [("ignore", "tvpc"), ("penalize", "rpi"), ("busy", "rpi")]
)
def test_hybrid_stale_reading_follows_policy(policy: str, winner: str) -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, 300)})  # busy, but 5 minutes old
    d = decide(
        training("0.5"),
        snap,
        mode="hybrid",
        stale_policy=policy,
        staleness_window=timedelta(seconds=60),
        explain=True,
    )
    assert d.node == winner
    assert counts_of(d.part).stale == 1 and counts_of(d.part).missing == 0
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    assert hybrid_node(tvpc).reading_state == "stale" and not hybrid_node(tvpc).busy
    expected = {"ignore": tvpc.base_score, "penalize": tvpc.base_score * 0.5, "busy": 0.0}[policy]
    assert tvpc.score == pytest.approx(expected)
    assert "300s old" in tvpc.why


def test_hybrid_counts_missing_readings() -> None:
    d = decide(training("1"), thesis({"tvpc": reading(25.5, 1)}), mode="hybrid")
    assert counts_of(d.part).missing == 2 and counts_of(d.part).stale == 0 and d.node == "tvpc"


def test_future_timestamp_counts_as_fresh() -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, -20)})  # clock skew
    assert decide(training("1"), snap, mode="hybrid").node == "wyse"


def test_hybrid_burst_spreads_instead_of_piling_on_the_idle_node() -> None:
    """Readings lag binds: pods bound after a node's reading count as predicted load."""

    def run(record_binds: bool) -> list[str]:
        state = ClusterState(thesis_kb())
        for n in thesis_nodes():
            state.upsert_node(n)
        for name, r in IDLE.items():  # all idle, read 10 s ago
            state.set_reading(name, r)
        chosen = []
        for k in range(3):
            p = training("1", name=f"burst-{k}")
            d = schedule_one(p, state.snapshot(NOW), ScheduleParams(mode="hybrid"))
            assert d.node is not None
            chosen.append(d.node)
            if record_binds:
                state.assume(p, d.node, NOW)
            else:
                state.add_pod(training("1", name=f"burst-{k}", node_name=d.node))
        return chosen

    assert run(record_binds=False) == ["tvpc", "tvpc", "tvpc"]  # what Trimaran warns about
    assert run(record_binds=True) == ["tvpc", "wyse", "rpi"]


def test_binds_before_the_reading_are_already_in_it() -> None:
    state = ClusterState(thesis_kb())
    for n in thesis_nodes():
        state.upsert_node(n)
    for name, r in IDLE.items():
        state.set_reading(name, r)
    state.assume(training("1", name="old"), "tvpc", NOW - timedelta(seconds=30))
    d = schedule_one(training("1"), state.snapshot(NOW), ScheduleParams(mode="hybrid"))
    assert d.node == "tvpc" and hybrid_node(d.ranking[0]).predicted_watts == 0.0


def test_predicted_load_of_untyped_pod_is_the_largest_headroom() -> None:
    state = ClusterState(thesis_kb())
    for n in thesis_nodes():
        state.upsert_node(n)
    for name, r in IDLE.items():
        state.set_reading(name, r)
    state.assume(pod("untyped", cpu="100m"), "tvpc", NOW)
    d = schedule_one(
        training("1"), state.snapshot(NOW), ScheduleParams(mode="hybrid"), explain=True
    )
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    assert hybrid_node(tvpc).predicted_watts == pytest.approx(
        71.0 - 25.0
    )  # training's headroom is largest
    assert hybrid_node(tvpc).busy


@pytest.mark.parametrize(
    ("watts", "age_s", "policy", "state", "score"),
    [
        # wyse: idle 6.5 W, buffer 5 W; w=0.5 on the thesis cluster
        (7.0, 10, "ignore", "fresh", None),  # idle: the normalized score
        (11.4, 10, "ignore", "fresh", None),  # 11.4 <= 6.5 + 5
        (11.6, 10, "ignore", "fresh", 0.0),  # busy
        (11.6, 120, "ignore", "stale", None),  # stale: ignored
        (11.6, 120, "penalize", "stale", "half"),
        (11.6, 120, "busy", "stale", 0.0),
        (7.0, -20, "ignore", "fresh", None),  # 20 s ahead: within the clock-skew allowance
        (7.0, -40, "busy", "future", 0.0),  # 40 s ahead: invalid, as if missing
    ],
)
def test_hybrid_table(
    watts: float, age_s: float, policy: str, state: str, score: float | str | None
) -> None:
    snap = thesis(readings={"wyse": reading(watts, age_s)})
    normal = {r.node: r.score for r in decide(training("0.5"), snap, explain=True).ranking}
    d = decide(training("0.5"), snap, explain=True, mode="hybrid", stale_policy=policy)
    wyse = next(r for r in d.ranking if r.node == "wyse")
    assert hybrid_node(wyse).reading_state == state
    want = normal["wyse"] if score is None else normal["wyse"] / 2 if score == "half" else score
    assert wyse.score == pytest.approx(want)
