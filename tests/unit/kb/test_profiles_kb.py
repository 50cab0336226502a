"""kb/profiles: the estimates load, validate, say they are estimates, and rank sensibly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from energysched.contract import WORKLOAD_TYPES
from energysched.kb.io import load_profiles
from energysched.kb.profiles import KnowledgeBase
from energysched.kb.show import nodes_from_objects
from energysched.kb.validate import unit_conflicts

NODES = ("tvpc", "wyse", "rpi")


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    root = Path(__file__).resolve().parents[3]
    result = load_profiles(root / "kb/profiles")
    assert result.ok, [str(f) for f in result.failures]
    return result.knowledge_base()


def test_one_profile_per_original_node(kb: KnowledgeBase) -> None:
    assert set(kb.profiles) == set(NODES)
    for name in NODES:
        profile = kb.profiles[name]
        assert dict(profile.node_selector) == {"kubernetes.io/hostname": name}
        assert set(profile.workloads) == set(WORKLOAD_TYPES)
        resolution = kb.resolve({"kubernetes.io/hostname": name})
        assert resolution is not None and resolution.profile.name == name


def test_estimates_say_so(kb: KnowledgeBase) -> None:
    for profile in kb.profiles.values():
        assert "not measured" in profile.provenance.lower()
        for wtype, figures in profile.workloads.items():
            assert figures.source == "estimated", (profile.name, wtype)
            assert figures.provenance.startswith("Estimated"), (profile.name, wtype)
            assert figures.unit
    assert unit_conflicts(kb.profiles.values()) == []


def test_orderings_are_realistic(kb: KnowledgeBase) -> None:
    p = kb.profiles
    for wtype in WORKLOAD_TYPES:
        perf = {n: p[n].workloads[wtype].performance for n in NODES}
        power = {n: p[n].workloads[wtype].power_watts for n in NODES}
        assert perf["tvpc"] > perf["wyse"] > perf["rpi"], wtype
        assert power["tvpc"] > power["wyse"] > power["rpi"], wtype
    assert p["rpi"].idle_power_watts < p["wyse"].idle_power_watts < p["tvpc"].idle_power_watts
    assert (
        max(p["tvpc"].workloads.values(), key=lambda f: f.power_watts)
        is p["tvpc"].workloads["training"]
    )


def test_weight_zero_and_one_choose_differently(kb: KnowledgeBase) -> None:
    """Weight 1 ranks by performance, weight 0 by efficiency: they must part somewhere."""
    differ = []
    for wtype in WORKLOAD_TYPES:
        figures = {n: kb.profiles[n].workloads[wtype] for n in NODES}
        fastest = max(figures, key=lambda n: figures[n].performance)
        most_efficient = max(figures, key=lambda n: figures[n].efficiency)
        if fastest != most_efficient:
            differ.append(wtype)
    assert set(differ) & {"training", "inference"}, differ


def test_lead_node_descriptions_resolve(kb: KnowledgeBase) -> None:
    root = Path(__file__).resolve().parents[3] / "kb/nodes"
    if not root.is_dir():
        pytest.skip("kb/nodes not present")
    nodes = nodes_from_objects([yaml.safe_load(p.read_text()) for p in sorted(root.glob("*.yaml"))])
    for node in nodes:
        if node.name in NODES:
            resolution = kb.resolve(node.labels)
            assert resolution is not None and resolution.profile.name == node.name
