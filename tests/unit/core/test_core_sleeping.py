"""Sleeping nodes in the core: cluster-energy's wake terms, and every other mode unchanged.

The thesis-like test cluster (tests/unit/core/core_helpers.py) with the power-state
figures of kb/profiles (tvpc: sleep 3.5 W, suspend 5 s, wake 10 s / 600 J; wyse: 1.5 W,
5 s, 8 s / 80 J; rpi: 0.01 W, 10 s, 60 s / 150 J). Training figures (P work/s, W watts,
idle W): tvpc 22036, 71, 25; wyse 3000, 13.2, 6.5; rpi 1200, 3.5, 2.

The hold of a woken tvpc is the policy's: break-even 600 / (25 - 3.5) = 27.9 s, plus the
5 s suspend, plus the manager's default hysteresis of 120 s: 152.9 s.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    KEEP_AWAKE_LABEL,
    POWER_MANAGEMENT_ENABLED,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_ANNOTATION,
    POWER_STATE_SINCE_ANNOTATION,
    SCORING_MODES,
    WAKE_FAILURES_ANNOTATION,
    WORK_ANNOTATION,
)
from energysched.core import ClusterSnapshot, NodeInfo, PodInfo, ScheduleParams, schedule_one
from energysched.core.framework import Decision
from energysched.core.sleeping import sleeping_nodes
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase, PowerStates
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.power.policy import PolicyConfig, hold_seconds
from energysched.scheduler.explain import render
from tests.unit.core.core_helpers import NOW, THESIS, node, pod, profile

P = {"tvpc": 22036.0, "wyse": 3000.0, "rpi": 1200.0}
W = {"tvpc": 71.0, "wyse": 13.2, "rpi": 3.5}
IDLE = {"tvpc": 25.0, "wyse": 6.5, "rpi": 2.0}
STATES = {
    "tvpc": PowerStates(3.5, "suspend", 5.0, 10.0, 600.0),
    "wyse": PowerStates(1.5, "suspend", 5.0, 8.0, 80.0),
    "rpi": PowerStates(0.01, "halt", 10.0, 60.0, 150.0),
}
HOLD_TVPC = 600 / (25 - 3.5) + 5 + 120
ASLEEP_TAINTS = (
    {"key": ASLEEP_TAINT_KEY, "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
)
MANAGED = {POWER_MANAGEMENT_LABEL: POWER_MANAGEMENT_ENABLED}


def kb(states: Mapping[str, PowerStates | None] = STATES, cls: bool = False) -> KnowledgeBase:
    """The thesis profiles with power-state figures; ``cls``: select by a class label."""
    return KnowledgeBase.of(
        replace(
            profile(name, {"class": name} if cls else None),
            power_states=states.get(name),
        )
        for name in THESIS
    )


def sleeping(
    name: str,
    state: str = "asleep",
    labels: Mapping[str, str] = MANAGED,
    annotations: Mapping[str, str] | None = None,
) -> NodeInfo:
    """A node as the power manager leaves it asleep (annotation, our taint, the
    controller's unreachable taints)."""
    return node(
        name,
        labels={**labels, "class": name.split("-")[0]},
        taints=ASLEEP_TAINTS,
        annotations={POWER_STATE_ANNOTATION: state, **(annotations or {})},
    )


def awake(name: str) -> NodeInfo:
    return node(name, labels={**MANAGED, "class": name.split("-")[0]})


def job(work_s_on_tvpc: float, name: str = "job", weight: str = "0", **kw: Any) -> PodInfo:
    p = pod(name, cpu="500m", workload="training", **kw)
    return replace(
        p,
        annotations={
            WORK_ANNOTATION: f"{work_s_on_tvpc * P['tvpc']:g}",
            "energy.thesis.io/performance-weight": weight,
        },
    )


def running_on(node_name: str, seconds_left: float) -> PodInfo:
    """A training pod that started now on ``node_name`` with that much work for it."""
    p = pod(f"running-{node_name}", cpu="500m", workload="training", node_name=node_name)
    p = replace(p, phase="Running", started_at=NOW)
    return replace(
        p, annotations={WORK_ANNOTATION: f"{seconds_left * P[node_name.split('-')[0]]:g}"}
    )


def snap(
    nodes: list[NodeInfo],
    pods: list[PodInfo] | None = None,
    knowledge: KnowledgeBase | None = None,
) -> ClusterSnapshot:
    return build_snapshot(nodes, pods or [], now=NOW, kb=knowledge or kb(cls=True))


def decide(p: PodInfo, s: ClusterSnapshot, mode: str = "cluster-energy", **kw: Any) -> Decision:
    d = schedule_one(p, s, ScheduleParams(mode=mode), **kw)  # type: ignore[arg-type]
    assert d.error is None, d.error
    return d


# -- the figures --------------------------------------------------------------------------


def test_the_hold_is_the_policys() -> None:
    assert hold_seconds(25.0, STATES["tvpc"], PolicyConfig()) == pytest.approx(HOLD_TVPC)


def test_a_sleeping_fast_node_beats_a_busy_slow_one() -> None:
    # tvpc sleeps; wyse runs a pod with 10 s left (the horizon). The job is 600 s on tvpc.
    s = snap([sleeping("tvpc"), awake("wyse")], [running_on("wyse", 10.0)])
    d = decide(job(600.0), s, explain=True)
    cluster_idle = IDLE["wyse"] + STATES["tvpc"].sleep_watts  # awake idle + sleep power
    d_wyse = 600 * P["tvpc"] / P["wyse"]
    e_wyse = (W["wyse"] - IDLE["wyse"]) * d_wyse + cluster_idle * (10 + d_wyse - 10)
    e_tvpc = (
        600.0  # the wake
        + (W["tvpc"] - IDLE["tvpc"]) * 600  # dynamic
        + (IDLE["tvpc"] - 3.5) * (600 + HOLD_TVPC)  # awake instead of asleep, held after
        + cluster_idle * (10 + 600 - 10)  # done at 610 s, the horizon is 10 s
    )
    assert e_tvpc < e_wyse  # 50,390 J against 73,600 J
    assert d.node is None and d.wake_node == "tvpc"
    assert d.feasible_count == 1  # wyse: the only awake node that fits
    by = {b.node: b for b in d.ranking}
    assert f"cluster energy {e_tvpc:.4g} J" in by["tvpc"].why
    assert f"cluster energy {e_wyse:.4g} J" in by["wyse"].why
    # the wake terms, as explain shows them
    why = by["tvpc"].why
    assert "asleep, to wake" in why
    assert "wake 600 J" in why and "wake 10 s first" in why
    assert f"hold {HOLD_TVPC:.3g} s" in why and "sleep 3.5" in why
    assert f"cluster idle {cluster_idle:g} W" in why
    assert "1 sleeping node(s) at their sleep power" in by["wyse"].why
    assert d.message.startswith("Waking node tvpc for default/job, its best placement")
    assert d.scheduled_message is None and d.failed_message is None
    row = next(r for r in d.node_results if r.node == "tvpc")
    assert row.wake and not row.feasible and row.filter == "TaintToleration"
    assert row.breakdown is not None


def test_a_sleeping_node_loses_to_an_idle_awake_one_of_its_class() -> None:
    s = snap([awake("tvpc-a"), sleeping("tvpc-b"), awake("wyse")])
    d = decide(job(60.0), s, explain=True)
    assert d.node == "tvpc-a" and d.wake_node is None
    by = {b.node: b for b in d.ranking}
    assert by["tvpc-b"].score < by["tvpc-a"].score
    assert "asleep, to wake" in by["tvpc-b"].why
    assert d.message.startswith("Successfully assigned default/job to tvpc-a")


def test_the_fast_path_and_explain_agree() -> None:
    for nodes, pods in (
        ([sleeping("tvpc"), awake("wyse")], [running_on("wyse", 10.0)]),
        ([awake("tvpc-a"), sleeping("tvpc-b"), awake("wyse")], []),
    ):
        s = snap(nodes, pods)
        for work in (1.0, 60.0, 600.0):
            fast, full = decide(job(work), s), decide(job(work), s, explain=True)
            assert (fast.node, fast.wake_node, fast.message) == (
                full.node,
                full.wake_node,
                full.message,
            )


def test_a_short_job_stays_on_the_busy_slow_node() -> None:
    # 1 s on tvpc = 7.3 s on wyse, inside wyse's 10 s horizon: no idle charged there,
    # while waking tvpc costs its 600 J wake and its hold.
    s = snap([sleeping("tvpc"), awake("wyse")], [running_on("wyse", 10.0)])
    d = decide(job(1.0), s)
    assert d.node == "wyse" and d.wake_node is None


def asleep_energy(name: str, work_s_on_tvpc: float, cluster_idle: float) -> float:
    """E_n of a sleeping node on an idle cluster (horizon 0)."""
    figures = STATES[name]
    d = work_s_on_tvpc * P["tvpc"] / P[name]
    hold = hold_seconds(IDLE[name], figures, PolicyConfig())
    return (
        figures.wake_joules
        + (W[name] - IDLE[name]) * d
        + (IDLE[name] - figures.sleep_watts) * (d + hold)
        + cluster_idle * (figures.wake_seconds + d)
    )


@pytest.mark.parametrize(("work", "best"), [(60.0, "wyse"), (600.0, "tvpc")])
def test_when_nothing_awake_fits_cluster_energy_wakes_its_best(work: float, best: str) -> None:
    s = snap([sleeping("tvpc"), sleeping("wyse"), sleeping("rpi")])
    d = decide(job(work), s)
    cluster_idle = sum(f.sleep_watts for f in STATES.values())
    energies = {n: asleep_energy(n, work, cluster_idle) for n in STATES}
    # 60 s on tvpc: wyse 8,189 J, tvpc 8,288 J (its 600 J wake and 21.5 W held awake
    # outweigh 7x the speed); 600 s: tvpc 47,443 J, wyse 74,466 J
    assert min(energies, key=energies.__getitem__) == best
    assert d.wake_node == best and d.feasible_count == 0
    assert f"cluster energy {energies[best]:.4g} J" in d.ranking[0].why


def test_other_modes_see_a_sleeping_node_as_infeasible() -> None:
    s = snap([sleeping("tvpc"), awake("wyse")], [running_on("wyse", 10.0)])
    for mode in SCORING_MODES:
        if mode == "cluster-energy":
            continue
        d = decide(job(600.0), s, mode=mode, explain=True)
        assert d.node == "wyse" and d.wake_node is None, mode
        assert all(not r.wake for r in d.node_results)
        # nothing awake fits: no node, and the shell's wake choice applies
        alone = decide(job(600.0), snap([sleeping("tvpc")]), mode=mode)
        assert alone.node is None and alone.wake_node is None and alone.failed_message


def test_no_power_state_figures_never_a_wake_candidate() -> None:
    no_figures = kb({"wyse": STATES["wyse"], "rpi": STATES["rpi"]}, cls=True)
    s = snap([sleeping("tvpc"), awake("wyse")], [running_on("wyse", 10.0)], no_figures)
    assert decide(job(600.0), s).node == "wyse"
    alone = decide(job(600.0), snap([sleeping("tvpc")], knowledge=no_figures))
    assert alone.node is None and alone.wake_node is None
    assert "untolerated taint" in (alone.failed_message or "")


@pytest.mark.parametrize(
    "figures",
    [
        PowerStates(math.nan, "suspend", 5.0, 10.0, 600.0),
        PowerStates(3.5, "suspend", 5.0, math.nan, 600.0),
        PowerStates(3.5, "suspend", 5.0, 10.0, math.nan),
        PowerStates(3.5, "suspend", 5.0, 10.0, -1.0),
        PowerStates(3.5, "suspend", -5.0, 10.0, 600.0),
        PowerStates(3.5, "suspend", 5.0, 0.0, 600.0),
        PowerStates(30.0, "suspend", 5.0, 10.0, 600.0),  # no saving: sleeps above idle
    ],
)
def test_figures_that_no_profile_can_have_make_no_wake_candidate(figures: PowerStates) -> None:
    """The reader rejects them (next test); a profile built in code is guarded too."""
    knowledge = kb({**STATES, "tvpc": figures}, cls=True)
    d = decide(job(600.0), snap([sleeping("tvpc")], knowledge=knowledge))
    assert d.wake_node is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sleepWatts", math.nan),
        ("sleepWatts", -1.0),
        ("wakeSeconds", math.nan),
        ("wakeSeconds", 0),
        ("wakeJoules", math.nan),
        ("wakeJoules", -1.0),
        ("suspendSeconds", -1.0),
    ],
)
def test_the_profile_reader_rejects_nan_and_negative_figures(field: str, value: float) -> None:
    doc = {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": "tvpc"},
        "spec": {
            "nodeSelector": {"class": "tvpc"},
            "idlePowerWatts": 25,
            "workloads": {"training": {"performance": 22036, "powerWatts": 71}},
            "powerStates": {
                "sleepWatts": 3.5,
                "sleepKind": "suspend",
                "suspendSeconds": 5,
                "wakeSeconds": 10,
                "wakeJoules": 600,
                field: value,
            },
        },
    }
    parsed = parse_profile(doc)
    assert isinstance(parsed, ValidationFailure), parsed
    assert f"spec.powerStates.{field}" in str(parsed)


def test_who_may_be_woken() -> None:
    failed_at = (NOW - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    failed = {POWER_STATE_SINCE_ANNOTATION: failed_at, WAKE_FAILURES_ANNOTATION: "1"}
    s = snap(
        [
            sleeping("tvpc-asleep"),
            sleeping("tvpc-unmanaged", labels={}),
            sleeping("tvpc-keep", labels={**MANAGED, KEEP_AWAKE_LABEL: "true"}),
            # one failure: 30 s backoff, 20 s ago
            sleeping("tvpc-failed", "wake-failed", annotations=failed),
            # the same failure seen 20 s later (past the backoff)
            sleeping("tvpc-waking", "waking"),
            awake("wyse"),
        ]
    )
    got = sleeping_nodes(s)
    assert got is not None
    names = s.table.names
    assert [names[i] for i in got.asleep.nonzero()[0]] == [
        "tvpc-asleep",
        "tvpc-failed",
        "tvpc-keep",
        "tvpc-unmanaged",
    ]
    assert [names[i] for i in got.wakeable.nonzero()[0]] == ["tvpc-asleep"]
    later = sleeping_nodes(s.at(NOW + timedelta(seconds=20)))
    assert later is not None
    assert [names[i] for i in later.wakeable.nonzero()[0]] == ["tvpc-asleep", "tvpc-failed"]


def test_no_sleeping_node_no_change() -> None:
    s = snap([awake("tvpc"), awake("wyse")])
    assert sleeping_nodes(s) is None
    d = decide(job(60.0), s, explain=True)
    assert d.node == "tvpc" and "sleeping node" not in d.message


def test_a_pod_without_a_workload_type_wakes_nothing_in_the_core() -> None:
    untyped = pod("plain", cpu="500m")
    d = decide(untyped, snap([sleeping("tvpc")]))
    assert d.node is None and d.wake_node is None  # the shell's wake choice applies


def test_a_pod_that_does_not_fit_the_sleeping_node_does_not_wake_it() -> None:
    big = replace(job(600.0), requests={**job(600.0).requests, "cpu": 64_000})
    d = decide(big, snap([sleeping("tvpc"), awake("wyse")]))
    assert d.node is None and d.wake_node is None
    assert "Insufficient cpu" in (d.failed_message or "")


# -- explain, as a golden file ------------------------------------------------------------

GOLDEN = Path(__file__).resolve().parent / "goldens" / "explain-asleep.txt"


def golden_text() -> str:
    """``energysched explain`` on the cases above, every mode (the table and the decision).

    Write the file (only when the change is intended)::

        .venv/bin/python -m tests.unit.core.test_core_sleeping --write
    """
    cases = {
        "a sleeping fast node beats a busy slow one": (
            [sleeping("tvpc"), awake("wyse")],
            [running_on("wyse", 10.0)],
            600.0,
        ),
        "a sleeping node loses to an idle awake one": (
            [awake("tvpc-a"), sleeping("tvpc-b"), awake("wyse")],
            [],
            60.0,
        ),
        "nothing awake fits": ([sleeping("tvpc"), sleeping("wyse"), sleeping("rpi")], [], 60.0),
    }
    out = []
    for title, (nodes, pods, work) in cases.items():
        s = snap(nodes, pods)
        for mode in SCORING_MODES:
            out.append(f"=== {title} / {mode}")
            out.append(render(decide(job(work), s, mode=mode, explain=True), s))
    return "\n".join(out) + "\n"


def test_explain_shows_the_wake_terms_golden() -> None:
    assert GOLDEN.read_text() == golden_text(), (
        "explain's output changed; if intended: .venv/bin/python -m "
        "tests.unit.core.test_core_sleeping --write"
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        GOLDEN.write_text(golden_text())
