"""A pod's energy: the plug decides the total, the model the split."""

from __future__ import annotations

import pytest

from energysched.learning.attribute import PodRun, attribute


def test_a_lone_pod_gets_the_node_energy_while_it_ran() -> None:
    got = attribute(
        [PodRun("a", "training", 10.0, 20.0, 15.0)], [(0.0, 5.0), (10.0, 20.0)], 5.0, 60
    )
    e = got["a"]
    assert e is not None
    assert e.dynamic_joules == pytest.approx(150.0) and e.idle_joules == pytest.approx(50.0)


def test_two_pods_split_dynamic_by_modelled_draw_and_idle_by_time() -> None:
    runs = [PodRun("a", "training", 0.0, 10.0, 30.0), PodRun("b", "sequential", 0.0, 10.0, 10.0)]
    # training demand 1 + sequential 0.25 on cpu: both at speed 1/1.25 -> draws 24 and 8
    got = attribute(runs, [(0.0, 37.0)], 5.0, 60)
    a, b = got["a"], got["b"]
    assert a is not None and b is not None
    assert a.dynamic_joules == pytest.approx(320 * 24 / 32)
    assert b.dynamic_joules == pytest.approx(320 * 8 / 32)
    assert a.idle_joules == pytest.approx(25.0) and b.idle_joules == pytest.approx(25.0)
    assert a.joules + b.joules == pytest.approx(370.0)  # all of the node's energy


def test_a_reading_gap_gives_no_figure_not_a_guess() -> None:
    got = attribute([PodRun("a", "training", 100.0, 200.0, 10.0)], [(0.0, 15.0)], 5.0, 60)
    assert got["a"] is None
    assert attribute([], [(0.0, 1.0)], 1.0, 60) == {}


def test_power_below_idle_is_all_idle() -> None:
    got = attribute([PodRun("a", "inference", 0.0, 10.0, 10.0)], [(0.0, 4.0)], 5.0, 60)
    e = got["a"]
    assert e is not None and e.dynamic_joules == 0.0 and e.idle_joules == pytest.approx(40.0)
