"""The pure power policy: break-even, sleep candidates with headroom, wake choice, backoff."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energysched.kb.profiles import PowerStates
from energysched.power.policy import (
    SKIP_REASONS,
    NodeView,
    PolicyConfig,
    Resources,
    break_even_seconds,
    choose_wake,
    fits_awake,
    hold_seconds,
    may_retry_wake,
    may_transition,
    sleep_verdicts,
    wake_backoff_seconds,
    wake_timeout_seconds,
)

GI = 1024.0**3
DESKTOP = PowerStates(
    sleep_watts=3.5, sleep_kind="suspend", suspend_seconds=5, wake_seconds=10, wake_joules=600
)
PI = PowerStates(
    sleep_watts=0.01, sleep_kind="halt", suspend_seconds=10, wake_seconds=60, wake_joules=150
)
CONFIG = PolicyConfig(hysteresis_seconds=60, min_awake_nodes=1, min_free_fraction=0.2)


def node(name: str, **kw: object) -> NodeView:
    base: dict[str, object] = {
        "name": name,
        "managed": True,
        "keep_awake": False,
        "state": "awake",
        "ready": True,
        "allocatable": Resources(4000, 8 * GI),
        "requested": Resources(100, 0.1 * GI),  # a DaemonSet pod
        "workload_pods": 0,
        "empty_since": 0.0,
        "idle_watts": 40.0,
        "power": DESKTOP,
    }
    base.update(kw)
    return NodeView(**base)  # type: ignore[arg-type]


def test_break_even_is_wake_energy_over_the_saving_plus_the_fall() -> None:
    assert break_even_seconds(40.0, DESKTOP) == pytest.approx(600 / 36.5 + 5)
    assert hold_seconds(40.0, DESKTOP, CONFIG) == pytest.approx(600 / 36.5 + 5 + 60)
    assert break_even_seconds(3.0, DESKTOP) == math.inf  # sleeping draws more than idle


def test_an_empty_node_past_break_even_sleeps_and_one_stays_awake() -> None:
    now = 1000.0
    verdicts = {v.node: v for v in sleep_verdicts([node("a"), node("b")], now, CONFIG)}
    # equal savings: ties go by name, the second is kept for headroom (min 1 awake)
    assert verdicts["a"].sleep and verdicts["a"].reason is None
    assert not verdicts["b"].sleep and verdicts["b"].reason == "min-awake-nodes"


def test_the_largest_saving_sleeps_first() -> None:
    verdicts = {
        v.node: v
        for v in sleep_verdicts(
            [node("a-pi", idle_watts=1.5, power=PI), node("z-desktop")], 1000.0, CONFIG
        )
    }
    assert verdicts["z-desktop"].sleep
    assert verdicts["a-pi"].reason == "min-awake-nodes"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"managed": False}, "not-managed"),
        ({"keep_awake": True}, "keep-awake"),
        ({"state": "waking"}, "not-awake"),
        ({"state": "wake-failed"}, "not-awake"),
        ({"ready": False}, "not-ready"),
        ({"workload_pods": 1, "empty_since": None}, "runs-pods"),
        ({"power": None}, "no-power-state-figures"),
        ({"idle_watts": None}, "no-power-state-figures"),
        ({"idle_watts": 3.0}, "no-saving"),
        ({"empty_since": 990.0}, "empty-too-briefly"),
    ],
)
def test_every_skip_has_its_reason(change: dict[str, object], reason: str) -> None:
    verdicts = {
        v.node: v for v in sleep_verdicts([node("a", **change), node("keep")], 1000.0, CONFIG)
    }
    assert not verdicts["a"].sleep
    assert verdicts["a"].reason == reason
    assert verdicts["a"].message


def test_empty_too_briefly_names_the_figures() -> None:
    (v,) = [
        v
        for v in sleep_verdicts(
            [node("a", empty_since=990.0), node("b", workload_pods=2, empty_since=None)],
            1000.0,
            CONFIG,
        )
        if v.node == "a"
    ]
    assert "10 s" in v.message and "hysteresis 60 s" in v.message


def test_the_reserve_kept_awake_is_the_cheapest() -> None:
    # The desktop is busy; the Pi is empty past break-even. Were the Pi to sleep, the
    # desktop would be the last awake node once empty, and never sleep again.
    pi = node("pi", idle_watts=1.5, power=PI)
    busy_desktop = node("desktop", workload_pods=1, empty_since=None)
    verdicts = {v.node: v for v in sleep_verdicts([pi, busy_desktop], 1000.0, CONFIG)}
    assert verdicts["pi"].reason == "min-awake-nodes"
    assert "1 costlier" in verdicts["pi"].message
    # once the desktop is empty too, it sleeps and the Pi stays
    verdicts = {v.node: v for v in sleep_verdicts([pi, node("desktop")], 1000.0, CONFIG)}
    assert verdicts["desktop"].sleep and not verdicts["pi"].sleep
    # a node that never sleeps counts as the reserve whatever it draws
    server = node("server", managed=False, idle_watts=95.0)
    verdicts = {v.node: v for v in sleep_verdicts([pi, server], 1000.0, CONFIG)}
    assert verdicts["pi"].sleep


def test_headroom_keeps_free_cpu() -> None:
    busy = node("busy", workload_pods=3, empty_since=None, requested=Resources(3500, 1 * GI))
    verdicts = {v.node: v for v in sleep_verdicts([node("idle"), busy], 1000.0, CONFIG)}
    # without "idle", the awake CPU would be 12.5 % free (< 20 %)
    assert verdicts["idle"].reason == "headroom-cpu"
    assert "13%" in verdicts["idle"].message or "12%" in verdicts["idle"].message


def test_headroom_keeps_free_memory() -> None:
    busy = node("busy", workload_pods=3, empty_since=None, requested=Resources(100, 7.5 * GI))
    verdicts = {v.node: v for v in sleep_verdicts([node("idle"), busy], 1000.0, CONFIG)}
    assert verdicts["idle"].reason == "headroom-memory"


def test_min_awake_nodes_zero_lets_every_empty_node_sleep() -> None:
    config = dataclasses.replace(CONFIG, min_awake_nodes=0, min_free_fraction=0.0)
    assert all(v.sleep for v in sleep_verdicts([node("a"), node("b")], 1000.0, config))


def test_the_reason_labels_are_fixed() -> None:
    assert len(set(SKIP_REASONS)) == len(SKIP_REASONS)


def test_wake_picks_the_cheapest_node_that_fits() -> None:
    asleep = [
        node("desktop", state="asleep", ready=False),
        node(
            "pi",
            state="asleep",
            ready=False,
            idle_watts=1.5,
            power=PI,
            allocatable=Resources(4000, 0.8 * GI),
        ),
    ]
    small = Resources(500, 0.25 * GI)
    choice = choose_wake(small, asleep, 0.0, CONFIG)
    assert choice is not None and choice.node == "pi" and choice.wake_seconds == 60
    big = Resources(500, 2 * GI)  # only the desktop has the memory
    choice = choose_wake(big, asleep, 0.0, CONFIG)
    assert choice is not None and choice.node == "desktop"
    assert choose_wake(Resources(500, 64 * GI), asleep, 0.0, CONFIG) is None


def test_extended_resources_must_fit() -> None:
    gpu = Resources(4000, 8 * GI, {"nvidia.com/gpu": 1.0})
    asleep = [node("cpu-only", state="asleep"), node("gpu", state="asleep", allocatable=gpu)]
    choice = choose_wake(Resources(100, GI, {"nvidia.com/gpu": 1.0}), asleep, 0.0, CONFIG)
    assert choice is not None and choice.node == "gpu"
    assert not fits_awake(Resources(100, GI, {"nvidia.com/gpu": 1.0}), [node("a")])
    assert gpu.minus(Resources(0, 0, {"nvidia.com/gpu": 1.0})).plus(Resources()).extended == {
        "nvidia.com/gpu": 0.0
    }


def test_wake_counts_the_pods_expected_energy() -> None:
    asleep = [node("a", state="asleep"), node("b", state="asleep")]
    choice = choose_wake(Resources(100, GI), asleep, 0.0, CONFIG, {"a": 5000.0})
    assert choice is not None and choice.node == "b"


def test_wake_ties_go_by_name_and_skips_unmanaged_awake_and_keep_awake() -> None:
    nodes = [
        node("c", state="asleep"),
        node("b", state="asleep"),
        node("a", state="asleep", managed=False),
        node("a2", state="asleep", keep_awake=True),
        node("a3", state="waking"),
        node("a4", state="awake"),
    ]
    choice = choose_wake(Resources(100, GI), nodes, 0.0, CONFIG)
    assert choice is not None and choice.node == "b"


def test_a_failed_wake_is_retried_after_its_backoff() -> None:
    failed = node("f", state="wake-failed", ready=False, wake_failures=2, last_wake_failure=100.0)
    assert wake_backoff_seconds(2, CONFIG) == 60.0
    assert not may_retry_wake(failed, 159.0, CONFIG)
    assert may_retry_wake(failed, 160.0, CONFIG)
    assert choose_wake(Resources(), [failed], 159.0, CONFIG) is None
    choice = choose_wake(Resources(), [failed], 160.0, CONFIG)
    assert choice is not None and choice.node == "f"


@given(st.integers(min_value=0, max_value=10_000))
def test_backoff_doubles_and_is_capped(failures: int) -> None:
    b = wake_backoff_seconds(failures, CONFIG)
    assert 0 <= b <= CONFIG.wake_backoff_max_seconds
    if failures >= 1:
        assert wake_backoff_seconds(failures + 1, CONFIG) >= b


def test_wake_timeout() -> None:
    assert wake_timeout_seconds(PI, CONFIG) == 60 * 2 + 30


def test_fits_awake() -> None:
    assert fits_awake(Resources(1000, GI), [node("a")])
    assert not fits_awake(Resources(1000, GI), [node("a", state="asleep")])
    assert not fits_awake(Resources(1000, GI), [node("a", ready=False)])
    assert not fits_awake(Resources(5000, GI), [node("a")])


def test_transitions() -> None:
    assert may_transition("awake", "draining")
    assert not may_transition("awake", "asleep")
    assert may_transition("waking", "wake-failed")
    assert may_transition("wake-failed", "waking")


@pytest.mark.parametrize(
    "change",
    [
        {"hysteresis_seconds": -1.0},
        {"hysteresis_seconds": math.nan},
        {"min_free_fraction": 1.5},
        {"min_awake_nodes": -1},
        {"wake_backoff_max_seconds": math.inf},
    ],
)
def test_bad_config_is_named(change: dict[str, object]) -> None:
    (field,) = change
    with pytest.raises(ValueError, match=field):
        PolicyConfig(**change)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(
            st.booleans(),
            st.sampled_from(["awake", "asleep", "waking"]),
            st.integers(0, 2),
            st.floats(0, 4000),
            st.floats(0, 2000),
        ),
        min_size=1,
        max_size=6,
    ),
    st.integers(0, 3),
)
def test_headroom_always_holds(specs: list[tuple[bool, str, int, float, float]], keep: int) -> None:
    config = dataclasses.replace(CONFIG, min_awake_nodes=keep)
    nodes = [
        node(
            f"n{i}",
            managed=managed,
            state=state,
            workload_pods=pods,
            empty_since=None if pods else 0.0,
            requested=Resources(cpu, 0.0),
            ready=state == "awake",
        )
        for i, (managed, state, pods, cpu, _) in enumerate(specs)
    ]
    verdicts = sleep_verdicts(nodes, 10_000.0, config)
    sleeping = {v.node for v in verdicts if v.sleep}
    awake_before = [n for n in nodes if n.state == "awake" and n.ready]
    left = [n for n in awake_before if n.name not in sleeping]
    if sleeping:
        assert len(left) >= keep
    if sleeping and left:
        total = sum(n.allocatable.cpu_milli for n in left)
        used = sum(n.requested.cpu_milli for n in left)
        assert (total - used) / total >= config.min_free_fraction - 1e-9
    assert all(nodes[int(name[1:])].workload_pods == 0 for name in sleeping)
