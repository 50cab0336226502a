"""The normalized score plugin (energysched/core/scores/normalized.py): v1.1."""

from __future__ import annotations

import pytest

from energysched.core.state import build_snapshot
from tests.unit.core.core_helpers import (
    NOW,
    node,
    pod,
    thesis_kb,
)
from tests.unit.core.plugins.score_helpers import decide, thesis, training, two_nodes


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
    snap = build_snapshot(nodes, now=NOW, kb=thesis_kb())
    d = decide(training("1"), snap)
    assert d.node == "wyse" and d.ranking[0].norm_p == 100.0


def test_each_workload_type_uses_its_own_figures() -> None:
    # sequential: rpi E = 42.86, wyse E = 42.1 -> rpi most efficient; tvpc fastest
    snap = thesis()
    assert decide(pod(workload="sequential", weight="0"), snap).node == "rpi"
    assert decide(pod(workload="sequential", weight="1"), snap).node == "tvpc"


@pytest.mark.parametrize(
    ("a", "b", "weight", "scores"),
    [
        # normP = 100*P/maxP, normE = 100*E/maxE, score = w*normP + (1-w)*normE
        ((50.0, 10.0), (20.0, 2.0), "1", {"a": 100.0, "b": 40.0}),
        ((50.0, 10.0), (20.0, 2.0), "0", {"a": 50.0, "b": 100.0}),
        ((50.0, 10.0), (20.0, 2.0), "0.5", {"a": 75.0, "b": 70.0}),
        ((10.0, 10.0), (10.0, 10.0), "0.3", {"a": 100.0, "b": 100.0}),  # tie: name order
    ],
)
def test_normalized_table(
    a: tuple[float, float], b: tuple[float, float], weight: str, scores: dict[str, float]
) -> None:
    d = decide(training(weight), two_nodes(a, b), mode="normalized", explain=True)
    assert {r.node: r.score for r in d.ranking} == pytest.approx(scores)
    assert d.ranking[0].node == ("a" if scores["a"] >= scores["b"] else "b")
