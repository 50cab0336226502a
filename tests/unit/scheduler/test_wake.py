"""The scheduler's choice of a sleeping node to wake for a pod that fits no awake node."""

from __future__ import annotations

import copy
from typing import Any

from energysched.contract import (
    ASLEEP_TAINT_KEY,
    POWER_MANAGEMENT_LABEL,
    POWER_STATE_ANNOTATION,
    POWER_STATE_SINCE_ANNOTATION,
    WAKE_FAILURES_ANNOTATION,
    WAKE_REQUESTED_ANNOTATION,
)
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.validate import parse_profile
from energysched.scheduler.wake import waiting_on, wake_target
from tests.unit.powermanager.test_manager import PROFILE

NOW = 1_800_000_000.0


def kb() -> KnowledgeBase:
    spec = parse_profile(PROFILE)
    assert isinstance(spec, ProfileSpec)
    return KnowledgeBase.of([spec])


def node(name: str, state: str = "awake", **extra: Any) -> dict[str, Any]:
    annotations = {POWER_STATE_ANNOTATION: state, **extra}
    return {
        "metadata": {
            "name": name,
            "labels": {"class": "box", POWER_MANAGEMENT_LABEL: "enabled", "zone": name},
            "annotations": annotations,
        },
        "spec": {"taints": [] if state == "awake" else [{"key": ASLEEP_TAINT_KEY}]},
        "status": {
            "allocatable": {"cpu": "4", "memory": "8Gi"},
            "conditions": [{"type": "Ready", "status": "True" if state == "awake" else "False"}],
        },
    }


def pod(cpu: str, node_name: str = "", **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"p{cpu}", "namespace": "ns"},
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}],
            **spec,
        },
        "status": {"phase": "Running" if node_name else "Pending"},
    }


def cluster(*nodes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["metadata"]["name"]: n for n in nodes}


def test_wakes_the_sleeping_node_when_no_awake_node_fits() -> None:
    nodes = cluster(node("a"), node("s1", "asleep"), node("s2", "asleep"))
    choice = wake_target(pod("2"), nodes, [pod("3", "a")], kb(), NOW)
    assert choice is not None and choice.node == "s1"  # equal cost: ties by name


def test_no_wake_when_an_awake_node_has_room() -> None:
    nodes = cluster(node("a"), node("s1", "asleep"))
    assert wake_target(pod("2"), nodes, [], kb(), NOW) is None


def test_node_selector_is_honoured() -> None:
    nodes = cluster(node("a"), node("s1", "asleep"), node("s2", "asleep"))
    choice = wake_target(pod("2", nodeSelector={"zone": "s2"}), nodes, [pod("3", "a")], kb(), NOW)
    assert choice is not None and choice.node == "s2"
    none = wake_target(pod("2", nodeSelector={"zone": "x"}), nodes, [pod("3", "a")], kb(), NOW)
    assert none is None


def test_a_failed_node_is_skipped_during_its_backoff() -> None:
    failed = node(
        "s1",
        "wake-failed",
        **{
            WAKE_FAILURES_ANNOTATION: "1",
            POWER_STATE_SINCE_ANNOTATION: "2027-01-15T08:00:00Z",  # NOW - 0 s
        },
    )
    nodes = cluster(node("a"), failed, node("s2", "asleep"))
    choice = wake_target(pod("2"), nodes, [pod("3", "a")], kb(), NOW)
    assert choice is not None and choice.node == "s2"


def test_waiting_on() -> None:
    assert waiting_on(node("w", "waking"))
    asleep = node("s", "asleep")
    assert not waiting_on(asleep)
    requested = copy.deepcopy(asleep)
    requested["metadata"]["annotations"][WAKE_REQUESTED_ANNOTATION] = "2027-01-15T08:00:00Z"
    assert waiting_on(requested)
    assert not waiting_on(node("f", "wake-failed"))


def test_extended_resources_count() -> None:
    """A GPU pod wakes only a sleeping node that has a GPU free."""
    gpu_node = node("s2", "asleep")
    gpu_node["status"]["allocatable"]["nvidia.com/gpu"] = "1"
    nodes = cluster(node("a"), node("s1", "asleep"), gpu_node)
    wants_gpu = pod("1")
    wants_gpu["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1"
    wants_gpu["spec"]["containers"][0]["resources"]["limits"] = {"nvidia.com/gpu": "1"}
    choice = wake_target(wants_gpu, nodes, [], kb(), NOW)
    assert choice is not None and choice.node == "s2"
