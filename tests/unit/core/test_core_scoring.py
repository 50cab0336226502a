"""Scoring on the thesis cluster: v1.0's flaw, v1.1's fix, hybrid, and the policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from energysched.core import (
    ClusterSnapshot,
    ClusterState,
    Decision,
    PodInfo,
    PowerReading,
    ScheduleParams,
    schedule_one,
)
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from tests.unit.core.core_helpers import (
    NOW,
    THESIS,
    node,
    pod,
    profile,
    reading,
    thesis_kb,
    thesis_nodes,
)

pytestmark = pytest.mark.unit


def decide(p: PodInfo, snap: ClusterSnapshot, explain: bool = False, **params: Any) -> Decision:
    d = schedule_one(p, snap, ScheduleParams(**params), explain=explain)
    assert d.error is None, d.error
    return d


def thesis(readings: dict[str, PowerReading] | None = None, **kw: Any) -> ClusterSnapshot:
    return ClusterSnapshot.build(thesis_nodes(**kw), now=NOW, kb=thesis_kb(), readings=readings)


def training(weight: str, name: str = "p", **kw: Any) -> PodInfo:
    return pod(name, cpu="500m", workload="training", weight=weight, **kw)


# -- v1.0 vs v1.1 ------------------------------------------------------------------------


def test_static_raw_reproduces_the_v1_flaw() -> None:
    """Raw P (thousands) and E (hundreds) clip every node to 100: the weight does nothing."""
    snap = thesis()
    chosen = set()
    for w in ("0", "0.5", "1"):
        d = decide(training(w), snap, mode="static-raw")
        assert [b.score for b in d.ranking] == [100.0, 100.0, 100.0]
        chosen.add(d.node)
    assert chosen == {"rpi"}  # the tie-break (name order) decides, not the user's weight


def test_normalized_fixes_it() -> None:
    snap = thesis()
    fastest = decide(training("1"), snap, mode="normalized")
    frugal = decide(training("0"), snap, mode="normalized")
    assert fastest.node == "tvpc"  # highest performance
    assert frugal.node == "rpi"  # highest work per joule
    top = fastest.ranking[0]
    assert top.norm_p == 100.0 and top.score == 100.0
    assert frugal.ranking[0].norm_e == 100.0
    assert "normP" in top.why and "tvpc" in top.why


def test_normalized_balances() -> None:
    d = decide(training("0.5"), thesis(), mode="normalized")
    # tvpc: 0.5*100 + 0.5*(310.4/342.9*100); rpi: 0.5*5.4 + 0.5*100
    assert [b.node for b in d.ranking] == ["tvpc", "rpi", "wyse"]
    assert d.ranking[0].score == pytest.approx(95.26, abs=0.01)
    assert d.runner_up == "rpi"


def test_maxima_are_over_feasible_nodes_only() -> None:
    nodes = [
        node("tvpc", taints=[{"key": "gpu", "effect": "NoSchedule"}]),
        node("wyse"),
        node("rpi"),
    ]
    snap = ClusterSnapshot.build(nodes, now=NOW, kb=thesis_kb())
    d = decide(training("1"), snap)
    assert d.node == "wyse" and d.ranking[0].norm_p == 100.0


def test_each_workload_type_uses_its_own_figures() -> None:
    # sequential: rpi E = 42.86, wyse E = 42.1 -> rpi most efficient; tvpc fastest
    snap = thesis()
    assert decide(pod(workload="sequential", weight="0"), snap).node == "rpi"
    assert decide(pod(workload="sequential", weight="1"), snap).node == "tvpc"


# -- hybrid ------------------------------------------------------------------------------

IDLE = {"tvpc": reading(25.5, 10), "wyse": reading(7.0, 10), "rpi": reading(2.2, 10)}


def test_hybrid_busy_reading_zeroes_the_node() -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, 5)})
    d = decide(training("1"), snap, mode="hybrid", explain=True)
    assert d.node == "wyse"
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    assert tvpc.busy and tvpc.score == 0.0 and tvpc.base_score == 100.0
    assert tvpc.reading_state == "fresh" and tvpc.live_watts == 60.0
    assert "busy" in tvpc.why and "60.0 W" in tvpc.why
    assert d.stale_readings == 0 and d.missing_readings == 0


def test_hybrid_threshold_is_idle_plus_buffer() -> None:
    at_limit = thesis({**IDLE, "tvpc": reading(30.0, 5)})
    assert decide(training("1"), at_limit, mode="hybrid", hybrid_buffer_watts=5.0).node == "tvpc"
    above = thesis({**IDLE, "tvpc": reading(30.1, 5)})
    assert decide(training("1"), above, mode="hybrid", hybrid_buffer_watts=5.0).node == "wyse"


def test_normalized_ignores_readings() -> None:
    snap = thesis({**IDLE, "tvpc": reading(60.0, 5)})
    d = decide(training("1"), snap, mode="normalized")
    assert d.node == "tvpc" and d.ranking[0].reading_state == "not-used"


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
    assert d.stale_readings == 1 and d.missing_readings == 0
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    assert tvpc.reading_state == "stale" and not tvpc.busy
    expected = {"ignore": tvpc.base_score, "penalize": tvpc.base_score * 0.5, "busy": 0.0}[policy]
    assert tvpc.score == pytest.approx(expected)
    assert "300s old" in tvpc.why


def test_hybrid_counts_missing_readings() -> None:
    d = decide(training("1"), thesis({"tvpc": reading(25.5, 1)}), mode="hybrid")
    assert d.missing_readings == 2 and d.stale_readings == 0 and d.node == "tvpc"


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
    assert d.node == "tvpc" and d.ranking[0].predicted_watts == 0.0


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
    assert tvpc.predicted_watts == pytest.approx(71.0 - 25.0)  # training's headroom is largest
    assert tvpc.busy


# -- no data never wins, neutral fallback -------------------------------------------------


def test_node_without_profile_never_outscores_one_with_profile() -> None:
    nodes = [*thesis_nodes(), node("aaa-big", cpu="64", memory="256Gi")]
    readings = {n: reading(500.0, 1) for n in THESIS}  # every profiled node busy: score 0
    snap = ClusterSnapshot.build(nodes, now=NOW, kb=thesis_kb(), readings=readings)
    for mode in ("static-raw", "normalized", "hybrid"):
        for w in ("0", "1"):
            d = decide(training(w), snap, mode=mode, explain=True)
            assert d.node != "aaa-big" and not d.fallback
            assert d.ranking[-1].node == "aaa-big" and d.ranking[-1].kind == "no-profile"
            assert d.ranking[-1].score == 0.0


def test_profile_without_figures_for_the_type_is_no_data() -> None:
    rpi_no_training = ProfileSpec(
        name="rpi",
        node_selector={"kubernetes.io/hostname": "rpi"},
        idle_power_watts=2.0,
        workloads={"inference": WorkloadFigures(300.0, 3.2)},
    )
    kb = KnowledgeBase.of([profile("tvpc"), profile("wyse"), rpi_no_training])
    snap = ClusterSnapshot.build(thesis_nodes(), now=NOW, kb=kb)
    d = decide(training("0"), snap)
    assert d.node == "tvpc"  # not rpi, whose training figures are unknown
    assert d.ranking[-1].node == "rpi" and d.ranking[-1].kind == "no-profile"


def test_broken_figures_are_no_data() -> None:
    zero_power = ProfileSpec(
        name="rpi",
        node_selector={"kubernetes.io/hostname": "rpi"},
        idle_power_watts=2.0,
        workloads={"training": WorkloadFigures(1e9, 0.0)},
    )
    kb = KnowledgeBase.of([profile("tvpc"), profile("wyse"), zero_power])
    d = decide(training("0"), ClusterSnapshot.build(thesis_nodes(), now=NOW, kb=kb))
    assert d.node == "tvpc"


def test_neutral_fallback_without_workload_type() -> None:
    used = [pod("u1", cpu="2", node_name="wyse"), pod("u2", cpu="3", node_name="rpi")]
    snap = ClusterSnapshot.build(thesis_nodes(), used, now=NOW, kb=thesis_kb())
    d = decide(pod(cpu="500m"), snap)
    assert d.fallback and d.node == "tvpc"  # least allocated
    assert "workload-type" in d.fallback_reason and "neutral" in d.fallback_reason
    assert d.ranking[0].kind == "neutral" and "free after placement" in d.ranking[0].why
    assert d.scheduled_message is not None and "neutral" in d.scheduled_message
    typed = decide(pod(cpu="500m", weight="0"), snap, default_workload_type="training")
    assert not typed.fallback and typed.node == "rpi" and typed.workload_type == "training"


def test_neutral_fallback_when_no_feasible_node_has_a_profile() -> None:
    nodes = [
        *thesis_nodes(),
        node("x1", labels={"pool": "big"}),
        node("x2", labels={"pool": "big"}),
    ]
    used = [pod("u", cpu="1", node_name="x1")]
    snap = ClusterSnapshot.build(nodes, used, now=NOW, kb=thesis_kb())
    d = decide(training("1", nodeSelector={"pool": "big"}), snap)
    assert d.fallback and d.node == "x2"
    assert "training" in d.fallback_reason


# -- PreferNoSchedule, ties --------------------------------------------------------------------


def twins(
    *,
    a_taints: list[dict[str, str]] = (),
    b_taints: list[dict[str, str]] = (),  # type: ignore[assignment]
) -> ClusterSnapshot:
    kb = KnowledgeBase.of([profile("wyse", {"class": "wyse"})])
    nodes = [
        node("a", labels={"class": "wyse"}, taints=a_taints),
        node("b", labels={"class": "wyse"}, taints=b_taints),
    ]
    return ClusterSnapshot.build(nodes, now=NOW, kb=kb)


def test_ties_go_to_the_first_name() -> None:
    d = decide(training("0.5"), twins())
    assert (d.node, d.runner_up) == ("a", "b")
    assert d.ranking[0].score == d.ranking[1].score


PNS = {"key": "soon", "value": "x", "effect": "PreferNoSchedule"}


def test_prefer_no_schedule_lowers_the_score() -> None:
    d = decide(training("0.5"), twins(a_taints=[PNS]))
    assert d.node == "b"
    a = d.ranking[1]
    assert a.prefer_no_schedule_taints == 1 and a.taint_factor == 0.5
    assert a.score == pytest.approx(a.base_score * 0.5)
    assert "PreferNoSchedule" in a.why


def test_prefer_no_schedule_normalized_as_kube() -> None:
    other = {"key": "later", "value": "", "effect": "PreferNoSchedule"}
    d = decide(training("0.5"), twins(a_taints=[PNS, other], b_taints=[PNS]))
    by = {b.node: b for b in d.ranking}
    assert by["a"].taint_factor == 0.5  # most such taints: loses the full penalty
    assert by["b"].taint_factor == 0.75  # TaintToleration score 50
    assert d.node == "b"


def test_tolerated_prefer_no_schedule_does_not_count() -> None:
    d = decide(
        training(
            "0.5", tolerations=[{"key": "soon", "operator": "Exists", "effect": "PreferNoSchedule"}]
        ),
        twins(a_taints=[PNS]),
    )
    assert d.node == "a" and d.ranking[0].taint_factor == 1.0


# -- bad input, messages, explain ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "bad"),
    [({"weight": "2"}, '"2"'), ({"weight": "fast"}, '"fast"'), ({"workload": "gpu"}, '"gpu"')],
)
def test_bad_input_is_an_error_decision(kw: dict[str, str], bad: str) -> None:
    p = pod(workload=kw.get("workload", "training"), weight=kw.get("weight"))
    d = schedule_one(p, thesis(), ScheduleParams())
    assert d.error is not None and d.node is None
    assert bad in d.message and "allowed" in d.message


def test_scheduled_message_explains_winner_and_runner_up() -> None:
    d = decide(training("0.5"), thesis())
    msg = d.scheduled_message
    assert msg is not None
    assert msg.startswith("Successfully assigned default/p to tvpc (normalized, training, w=0.50)")
    assert "score 95.3" in msg and "runner-up rpi: score 52.7" in msg


def test_explain_lists_every_node() -> None:
    nodes = [*thesis_nodes(), node("small", cpu="100m")]
    snap = ClusterSnapshot.build(nodes, now=NOW, kb=thesis_kb())
    d = decide(training("0.5"), snap, explain=True)
    assert [r.node for r in d.node_results] == ["rpi", "small", "tvpc", "wyse"]
    small = d.node_results[1]
    assert not small.feasible and small.filter == "NodeResourcesFit"
    assert small.reasons == ("Insufficient cpu",) and small.breakdown is None
    assert all(r.breakdown is not None for r in d.node_results if r.feasible)
    assert d.reasons == {"Insufficient cpu": 1}
    fast = decide(training("0.5"), snap)
    assert len(fast.ranking) == 3 and fast.node_results == ()


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="mode"):
        ScheduleParams(mode="fancy")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_weight"):
        ScheduleParams(default_weight=2.0)
