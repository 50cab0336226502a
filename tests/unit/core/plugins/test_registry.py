"""The filter chain: order and short-circuit, and the registry picking up a new plugin."""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

from energysched.contract import SCORING_MODES
from energysched.core import PodInfo, ScheduleParams, schedule_one
from energysched.core.interface import FilterPlugin, ScorePlugin
from energysched.core.registry import default_registry, plugins_in
from energysched.core.state import build_snapshot
from tests.unit.core.core_helpers import NOW, container, node, pod, thesis_kb, thesis_nodes, verdict
from tests.unit.core.plugins import extra_filter, extra_mode
from tests.unit.core.plugins.filter_helpers import (
    AFFINITY,
    NODENAME,
    PORTS,
    UNSCHED,
    placed,
    port,
    taint,
    untolerated,
)


@pytest.mark.parametrize(
    ("p", "n", "on_node", "expected"),
    [
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", unschedulable=True, taints=[taint("k")], labels={"zone": "a"}),
            [],
            (UNSCHED,),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}, node_name="m"),
            node("n", taints=[taint("k")]),
            [],
            (NODENAME,),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", taints=[taint("k")]),
            [],
            (untolerated("k"),),
        ),
        (
            pod(cpu="9", nodeSelector={"zone": "b"}),
            node("n", labels={"zone": "a"}),
            [],
            (AFFINITY,),
        ),
        (
            pod(containers=[container("9", ports=[port(80)])]),
            node("n"),
            [placed(port(80))],
            (PORTS,),
        ),
    ],
)
def test_first_failing_filter_reports(
    p: Any, n: Any, on_node: list[Any], expected: tuple[str, ...]
) -> None:
    assert verdict(p, n, on_node) == expected


# -- the registry ------------------------------------------------------------------------


def test_default_registry_holds_the_in_tree_plugins_in_kube_order() -> None:
    reg = default_registry()
    assert reg.filter_names == (
        "NodeUnschedulable",
        "NodeName",
        "TaintToleration",
        "NodeAffinity",
        "NodePorts",
        "NodeResourcesFit",
    )
    assert sorted(reg.scorers) == sorted(SCORING_MODES)
    for plugin in reg.filters:
        assert isinstance(plugin, FilterPlugin)
    for mode, scorer in reg.scorers.items():
        assert isinstance(scorer, ScorePlugin) and scorer.mode == mode


def needs_ssd(p: PodInfo) -> PodInfo:
    return dataclasses.replace(p, labels={**p.labels, "example.com/needs-ssd": "true"})


def test_a_new_filter_is_one_file_and_the_fast_path_and_explain_pick_it_up() -> None:
    registry = default_registry().with_filter(extra_filter.PLUGIN)
    assert registry.filter_names[3:5] == ("NodeAffinity", "NodeHasSSD")
    params = ScheduleParams()
    nodes = [
        node("a", labels={"disk": "hdd"}),
        node("b", labels={"disk": "ssd", "zone": "x"}),
        node("c", labels={"zone": "x"}),
    ]
    snap = build_snapshot(nodes, now=NOW)
    wants = needs_ssd(pod("w", cpu="1"))
    fast = schedule_one(wants, snap, params, registry=registry)
    full = schedule_one(wants, snap, params, explain=True, registry=registry)
    assert fast.node == full.node == "b"
    assert fast.reasons == full.reasons == {extra_filter.REASON: 2}
    by_node = {r.node: r for r in full.node_results}
    assert (by_node["a"].filter, by_node["a"].reasons) == ("NodeHasSSD", (extra_filter.REASON,))
    assert by_node["b"].feasible

    # earlier filters still report first; the FailedScheduling text counts the new reason
    picky = needs_ssd(pod("p", cpu="1", nodeSelector={"zone": "x"}))
    snap2 = build_snapshot([nodes[0], nodes[2]], now=NOW)
    for explain in (False, True):
        d = schedule_one(picky, snap2, params, explain=explain, registry=registry)
        assert d.failed_message == (
            "0/2 nodes are available: 1 node(s) didn't have an SSD, "
            "1 node(s) didn't match Pod's node affinity/selector."
        )
    # the default registry is untouched: without the plugin, node c fits
    assert schedule_one(picky, snap2, ScheduleParams()).node == "c"


def test_registry_discovers_every_plugin_file_of_a_package(tmp_path: Path) -> None:
    """What default_registry does for core.filters and core.scores: a file with a
    PLUGIN is a plugin; nothing else needs editing."""
    pkg = tmp_path / "more_filters"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    source = Path(extra_filter.__file__).read_text()
    (pkg / "node_has_ssd.py").write_text(source)
    (pkg / "not_a_plugin.py").write_text("X = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        found = plugins_in(importlib.import_module("more_filters"))
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.startswith("more_filters")]:
            del sys.modules[name]
    assert [p.name for p in found] == ["NodeHasSSD"]  # type: ignore[attr-defined]


def test_a_filter_name_is_registered_once() -> None:
    with pytest.raises(ValueError, match="registered already"):
        default_registry().with_filter(default_registry().filters[0])


def test_a_new_mode_is_one_file() -> None:
    registry = default_registry().with_scorer(extra_mode.PLUGIN)
    params = ScheduleParams(mode="performance-only")  # type: ignore[arg-type]
    snap = build_snapshot(thesis_nodes(), now=NOW, kb=thesis_kb())
    p = pod("t", cpu="1", workload="training", weight="0")  # the weight is not used
    fast = schedule_one(p, snap, params, registry=registry)
    full = schedule_one(p, snap, params, explain=True, registry=registry)
    assert fast.node == full.node == "tvpc"  # the fastest, although w=0 asks for energy
    assert full.ranking[0].why == "tvpc: score 100.0 = normP (performance only)"
    with pytest.raises(ValueError, match="performance-only"):  # not in the default registry
        schedule_one(p, snap, params)
