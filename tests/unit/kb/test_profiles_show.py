"""show: node x workload table, which profile, also-matched, and "none"."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.kb.show import NO_PROFILE, NodeRef, kb_table, nodes_from_objects, show
from energysched.kb.validate import parse_profile


@pytest.fixture
def kb(good_profile: Callable[[], dict[str, Any]]) -> KnowledgeBase:
    specific = good_profile()
    broad = good_profile()
    broad["metadata"]["name"] = "all-workers"
    broad["spec"]["nodeSelector"] = {"role": "worker"}
    broad["spec"]["workloads"] = {"inference": {"performance": 10, "powerWatts": 7}}
    specific["spec"]["nodeSelector"] = {"role": "worker", "kubernetes.io/hostname": "wyse"}
    profiles = [parse_profile(specific), parse_profile(broad)]
    assert all(isinstance(p, ProfileSpec) for p in profiles)
    return KnowledgeBase.of(p for p in profiles if isinstance(p, ProfileSpec))


def test_table(kb: KnowledgeBase) -> None:
    nodes = [
        NodeRef("wyse", {"role": "worker", "kubernetes.io/hostname": "wyse"}),
        NodeRef("rpi", {"role": "worker", "kubernetes.io/hostname": "rpi"}),
        NodeRef("lonely", {"kubernetes.io/hostname": "lonely"}),
    ]
    rows = {(r.node, r.workload): r for r in kb_table(nodes, kb)}
    assert len(rows) == 9
    wyse = rows[("wyse", "inference")]
    assert (wyse.profile, wyse.also_matched) == ("wyse", ("all-workers",))
    assert wyse.efficiency == pytest.approx(900 / 11)
    rpi_training = rows[("rpi", "training")]
    assert rpi_training.profile == "all-workers" and rpi_training.performance is None
    assert "no training figures" in rpi_training.note
    lonely = rows[("lonely", "sequential")]
    assert lonely.profile == NO_PROFILE and lonely.efficiency is None
    assert lonely.as_dict()["profile"] is None

    text = show(nodes, kb)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["NODE", "WORKLOAD", "PERFORMANCE"]
    assert [line.split()[0] for line in lines[1:]] == ["lonely"] * 3 + ["rpi"] * 3 + ["wyse"] * 3
    wyse_training = next(line for line in lines if line.startswith("wyse") and "training" in line)
    assert "120" in wyse_training and "13.2" in wyse_training and "9.09" in wyse_training
    assert "all-workers" in wyse_training and "estimated" in wyse_training
    assert all(NO_PROFILE in line for line in lines[1:4])


def test_no_nodes() -> None:
    assert show([], KnowledgeBase()) == "no nodes"


def test_nodes_from_objects() -> None:
    objects: list[dict[str, Any]] = [
        {"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "a": "b"}}},
        {"metadata": {"name": "n2"}},  # a Node object is taken as it is
        {"name": "n3", "labels": {"x": "y"}},  # an offline description gets the hostname label
        {"kind": "Something"},
    ]
    nodes = nodes_from_objects(objects)
    assert [n.name for n in nodes] == ["n1", "n2", "n3"]
    assert nodes[1].labels == {}
    assert nodes[2].labels == {"x": "y", "kubernetes.io/hostname": "n3"}
