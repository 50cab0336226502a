"""Builders shared by the score plugins' tests and the scoring framework's tests."""

from __future__ import annotations

from typing import Any

from energysched.core import (
    ClusterSnapshot,
    Decision,
    PodInfo,
    PowerReading,
    ScheduleParams,
    schedule_one,
)
from energysched.core.interface import ScoreBreakdown
from energysched.core.scores.hybrid import HybridNode
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from tests.unit.core.core_helpers import NOW, node, pod, thesis_kb, thesis_nodes


def hybrid_node(b: ScoreBreakdown) -> HybridNode:
    """Hybrid's own figures of one node (its part of the breakdown)."""
    assert isinstance(b.part, HybridNode), b.part
    return b.part


def decide(p: PodInfo, snap: ClusterSnapshot, explain: bool = False, **params: Any) -> Decision:
    """One decision; ``normalized`` (v1.1) unless a mode is given (the tests' reference mode,
    not the shipped default)."""
    params.setdefault("mode", "normalized")
    d = schedule_one(p, snap, ScheduleParams(**params), explain=explain)
    assert d.error is None, d.error
    return d


def thesis(readings: dict[str, PowerReading] | None = None, **kw: Any) -> ClusterSnapshot:
    return build_snapshot(thesis_nodes(**kw), now=NOW, kb=thesis_kb(), readings=readings)


def training(weight: str, name: str = "p", **kw: Any) -> PodInfo:
    return pod(name, cpu="500m", workload="training", weight=weight, **kw)


def two_nodes(a: tuple[float, float], b: tuple[float, float]) -> ClusterSnapshot:
    kb = KnowledgeBase.of(
        ProfileSpec(
            name=name,
            node_selector={"kubernetes.io/hostname": name},
            idle_power_watts=1.0,
            workloads={"training": WorkloadFigures(*figs)},
        )
        for name, figs in (("a", a), ("b", b))
    )
    return build_snapshot([node("a"), node("b")], now=NOW, kb=kb)
