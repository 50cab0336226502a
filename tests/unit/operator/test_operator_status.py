"""The operator's pure core: statuses, precedence, and warnings reported once per change."""

from __future__ import annotations

from typing import Any

from energysched.operator.status import (
    REASON_INVALID,
    REASON_NO_PROFILE,
    REASON_OVERLAP,
    OperatorState,
    WarningMemory,
    plan,
)

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T01:00:00Z"


def profile(
    name: str, selector: dict[str, str], *, generation: int = 1, train_power: float = 20.0
) -> dict[str, Any]:
    return {
        "apiVersion": "energy.thesis.io/v1alpha1",
        "kind": "EnergyProfile",
        "metadata": {"name": name, "uid": f"uid-{name}", "generation": generation},
        "spec": {
            "nodeSelector": selector,
            "idlePowerWatts": 10,
            "workloads": {
                "training": {"performance": 100, "powerWatts": train_power},
                "inference": {"performance": 1000, "powerWatts": 25},
            },
        },
    }


def node(name: str, *, ready: bool = True, host: str = "", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": {"kubernetes.io/hostname": host or name, **labels},
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def apply_patches(state: OperatorState, patches: Any) -> None:
    for name, status in patches.items():
        state.record_status(name, {k: v for k, v in status.items() if v is not None})


def test_valid_profile_status_lists_matched_nodes_sorted() -> None:
    state = OperatorState()
    state.upsert_profile(profile("class-a", {"tier": "a"}))
    for n in ("n2", "n1", "n3"):
        state.upsert_node(node(n, tier="a" if n != "n3" else "b"))
    p = plan(state, WarningMemory(), NOW)
    status = p.patches["class-a"]
    assert status["matchedNodes"] == ["n1", "n2"]
    assert status["matchedNodeCount"] == 2
    assert status["observedGeneration"] == 1
    assert status["bestEfficiency"] == 40.0  # inference 1000 / 25
    (cond,) = status["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Valid", "True", "Validated")
    assert cond["lastTransitionTime"] == NOW and cond["observedGeneration"] == 1


def test_invalid_profile_names_field_and_value() -> None:
    state = OperatorState()
    state.upsert_profile(profile("bad", {"kubernetes.io/hostname": "n1"}, train_power=5))
    state.upsert_node(node("n1"))
    status = plan(state, WarningMemory(), NOW).patches["bad"]
    (cond,) = status["conditions"]
    assert (cond["status"], cond["reason"]) == ("False", REASON_INVALID)
    assert cond["message"].startswith(
        "spec.workloads.training.powerWatts: must not be below spec.idlePowerWatts 10 "
        "(power while working includes idle power), got 5\n"
    )
    assert status["matchedNodes"] == [] and status["bestEfficiency"] is None


def test_invalid_edit_keeps_last_valid_version_in_use() -> None:
    state = OperatorState()
    state.upsert_profile(profile("p", {"kubernetes.io/hostname": "n1"}))
    state.upsert_node(node("n1"))
    memory = WarningMemory()
    apply_patches(state, plan(state, memory, NOW).patches)
    state.upsert_profile(
        profile("p", {"kubernetes.io/hostname": "n1"}, generation=2, train_power=1)
    )
    p = plan(state, memory, LATER)
    status = p.patches["p"]
    (cond,) = status["conditions"]
    assert cond["status"] == "False" and cond["lastTransitionTime"] == LATER
    assert "last valid version (generation 1)" in cond["message"]
    assert status["matchedNodes"] == ["n1"] and status["observedGeneration"] == 2
    (event,) = [w for w in p.warnings if w.reason == REASON_INVALID]
    assert event.name == "p" and "generation 2" in event.message
    assert "spec.workloads.training.powerWatts: must not be below" in event.message
    assert ", got 1; the energy-scheduler keeps using generation 1" in event.message
    apply_patches(state, p.patches)
    assert not plan(state, memory, LATER).warnings  # reported once per generation


def test_no_patch_when_nothing_changed_and_heartbeats_are_ignored() -> None:
    state = OperatorState()
    state.upsert_profile(profile("p", {"kubernetes.io/hostname": "n1"}))
    state.upsert_node(node("n1"))
    memory = WarningMemory()
    apply_patches(state, plan(state, memory, NOW).patches)
    assert plan(state, memory, LATER).patches == {}
    heartbeat = node("n1")
    heartbeat["status"]["conditions"][0]["lastHeartbeatTime"] = LATER
    assert state.upsert_node(heartbeat) is False
    relabelled = node("n1", extra="x")
    assert state.upsert_node(relabelled) is True
    assert plan(state, memory, LATER).patches == {}  # still the same profile: nothing to write
    state.upsert_node(node("n2", host="n1"))  # a second match
    status = plan(state, memory, LATER).patches["p"]
    assert status["matchedNodes"] == ["n1", "n2"]
    # the transition time of an unchanged Valid status is kept
    assert status["conditions"][0]["lastTransitionTime"] == NOW


def test_overlap_warns_node_and_profiles_once_naming_the_winner() -> None:
    state = OperatorState()
    state.upsert_profile(profile("host", {"kubernetes.io/hostname": "n1", "tier": "a"}))
    state.upsert_profile(profile("klass", {"tier": "a"}))
    state.upsert_node(node("n1", tier="a"))
    memory = WarningMemory()
    p = plan(state, memory, NOW)
    assert p.assignments == {"n1": "host"}
    overlaps = [w for w in p.warnings if w.reason == REASON_OVERLAP]
    assert {(w.kind, w.name) for w in overlaps} == {
        ("Node", "n1"),
        ("EnergyProfile", "host"),
        ("EnergyProfile", "klass"),
    }
    assert all("'host' wins" in w.message for w in overlaps)
    assert all("more labels (2 vs 1)" in w.message for w in overlaps)
    apply_patches(state, p.patches)
    assert plan(state, memory, LATER).warnings == ()  # a resync reports nothing
    # Another node joins the same overlap: one node event, no new profile events.
    state.upsert_node(node("n2", tier="a", host="n1"))
    again = plan(state, memory, LATER).warnings
    assert [(w.kind, w.name) for w in again] == [("Node", "n2")]


def test_tie_goes_to_the_name_that_sorts_first() -> None:
    state = OperatorState()
    state.upsert_profile(profile("b-prof", {"tier": "a"}))
    state.upsert_profile(profile("a-prof", {"zone": "z"}))
    state.upsert_node(node("n1", tier="a", zone="z"))
    p = plan(state, WarningMemory(), NOW)
    assert p.assignments == {"n1": "a-prof"}
    msg = next(w.message for w in p.warnings if w.kind == "Node")
    assert "sorts first by name" in msg


def test_unmatched_ready_node_warned_once_per_state_change() -> None:
    state = OperatorState()
    state.upsert_profile(profile("p", {"tier": "a"}))
    state.upsert_node(node("n1", ready=False))
    memory = WarningMemory()
    assert not plan(state, memory, NOW).warnings  # not Ready: no warning
    state.upsert_node(node("n1"))
    (w,) = plan(state, memory, NOW).warnings
    assert (w.kind, w.name, w.reason) == ("Node", "n1", REASON_NO_PROFILE)
    assert not plan(state, memory, NOW).warnings
    state.upsert_node(node("n1", tier="a"))
    assert not [x for x in plan(state, memory, NOW).warnings if x.reason == REASON_NO_PROFILE]
    state.upsert_node(node("n1"))
    assert [x.reason for x in plan(state, memory, NOW).warnings] == [REASON_NO_PROFILE]


def test_deleting_a_profile_moves_its_nodes_and_forgets_it() -> None:
    state = OperatorState()
    state.upsert_profile(profile("host", {"kubernetes.io/hostname": "n1", "tier": "a"}))
    state.upsert_profile(profile("klass", {"tier": "a"}))
    state.upsert_node(node("n1", tier="a"))
    memory = WarningMemory()
    apply_patches(state, plan(state, memory, NOW).patches)
    assert state.delete_profile("host") is True
    p = plan(state, memory, LATER)
    assert p.patches["klass"]["matchedNodes"] == ["n1"]
    assert "host" not in p.patches
    assert memory.node_overlaps == {} and memory.profile_overlaps == {}
