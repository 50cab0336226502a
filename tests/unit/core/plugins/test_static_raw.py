"""The static-raw score plugin (energysched/core/scores/static_raw.py): v1.0, flaw kept."""

from __future__ import annotations

import pytest

from tests.unit.core.plugins.score_helpers import decide, thesis, training, two_nodes


def test_static_raw_reproduces_the_v1_flaw() -> None:
    """Raw P (thousands) and E (hundreds) clip every node to 100: the weight does nothing."""
    snap = thesis()
    chosen = set()
    for w in ("0", "0.5", "1"):
        d = decide(training(w), snap, mode="static-raw")
        assert [b.score for b in d.ranking] == [100.0, 100.0, 100.0]
        chosen.add(d.node)
    assert chosen == {"rpi"}  # the tie-break (name order) decides, not the user's weight


@pytest.mark.parametrize(
    ("a", "b", "weight", "scores"),
    [
        # score = clip(w*P + (1-w)*P/W, 0, 100), raw
        ((50.0, 10.0), (20.0, 2.0), "1", {"a": 50.0, "b": 20.0}),
        ((50.0, 10.0), (20.0, 2.0), "0", {"a": 5.0, "b": 10.0}),
        ((50.0, 10.0), (20.0, 2.0), "0.5", {"a": 27.5, "b": 15.0}),
        ((500.0, 10.0), (2000.0, 2.0), "0.5", {"a": 100.0, "b": 100.0}),  # both clip
    ],
)
def test_static_raw_table(
    a: tuple[float, float], b: tuple[float, float], weight: str, scores: dict[str, float]
) -> None:
    d = decide(training(weight), two_nodes(a, b), mode="static-raw", explain=True)
    assert {r.node: r.score for r in d.ranking} == pytest.approx(scores)
    best = max(scores.values())
    assert d.node == min(n for n, s in scores.items() if s == pytest.approx(best))
