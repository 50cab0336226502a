"""The scoring framework all modes share: no data never wins, the neutral fallback,
PreferNoSchedule, ties, messages. Each mode's own tests are beside its plugin
(tests/unit/core/plugins/test_<mode>.py)."""

from __future__ import annotations

import pytest

from energysched.core import (
    ClusterSnapshot,
    ScheduleParams,
    schedule_one,
)
from energysched.core.state import build_snapshot
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
from tests.unit.core.plugins.score_helpers import decide, thesis, training

# -- no data never wins, neutral fallback -------------------------------------------------


def test_node_without_profile_never_outscores_one_with_profile() -> None:
    nodes = [*thesis_nodes(), node("aaa-big", cpu="64", memory="256Gi")]
    readings = {n: reading(500.0, 1) for n in THESIS}  # every profiled node busy: score 0
    snap = build_snapshot(nodes, now=NOW, kb=thesis_kb(), readings=readings)
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
    snap = build_snapshot(thesis_nodes(), now=NOW, kb=kb)
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
    d = decide(training("0"), build_snapshot(thesis_nodes(), now=NOW, kb=kb))
    assert d.node == "tvpc"


def test_neutral_fallback_without_workload_type() -> None:
    used = [pod("u1", cpu="2", node_name="wyse"), pod("u2", cpu="3", node_name="rpi")]
    snap = build_snapshot(thesis_nodes(), used, now=NOW, kb=thesis_kb())
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
    snap = build_snapshot(nodes, used, now=NOW, kb=thesis_kb())
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
    return build_snapshot(nodes, now=NOW, kb=kb)


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
    snap = build_snapshot(nodes, now=NOW, kb=thesis_kb())
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
    with pytest.raises(ValueError, match="no score plugin for mode 'fancy'"):
        decide(training("0.5"), thesis(), mode="fancy")
    with pytest.raises(ValueError, match="mode"):
        ScheduleParams(mode="")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_weight"):
        ScheduleParams(default_weight=2.0)
