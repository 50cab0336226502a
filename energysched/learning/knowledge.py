"""The learned figures as a knowledge base every scoring mode reads (``knowledge: learned``).

The modes read a profile's figures through the node table (``core/nodetable.py``), so
``learned`` is a knowledge base whose profiles carry the posterior figures in place of
the spec's: no mode changes, and a decision costs exactly what it costs with ``spec``
(the table re-resolves profile arrays when the knowledge base is swapped, ~10 ms at
5,000 nodes, once per learned update, not per decision).

Exploration is an upper confidence bound (UCB), not a random draw: each figure is
taken optimistically by ``exploration`` posterior standard deviations (performance
x ``f**exploration``, working power / ``f**exploration``, with ``f`` the figure's
uncertainty factor), so a node whose figures are uncertain looks as good as it might
be, and is tried when that could win. The optimism shrinks as observations come in
(``f`` -> 1), so its cost is bounded and vanishes; ``exploration: 0`` turns it off.
Deterministic: the same observations give the same decisions, no seed needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType
from typing import Final, Literal

from energysched.contract import WorkloadType
from energysched.kb.profiles import KnowledgeBase, ProfileSpec, WorkloadFigures
from energysched.learning.estimate import Learned

#: Which figures every scoring mode reads: what a person wrote (``spec``), or the
#: posterior the operator learned from finished pods (``learned``, profile status).
Knowledge = Literal["spec", "learned"]
KNOWLEDGE: Final[tuple[Knowledge, ...]] = ("spec", "learned")


def learned_knowledge_base(
    kb: KnowledgeBase,
    learned: Mapping[tuple[str, WorkloadType], Learned],
    exploration: float = 0.0,
) -> KnowledgeBase:
    """``kb`` with each learned (profile, type)'s figures replaced by the learned ones."""
    if exploration < 0:
        raise ValueError(f"exploration must be >= 0, got {exploration}")
    profiles: list[ProfileSpec] = []
    for p in kb.profiles.values():
        workloads: dict[WorkloadType, WorkloadFigures] = dict(p.workloads)
        for wt, fig in p.workloads.items():
            got = learned.get((p.name, wt))
            if got is None:
                continue
            perf = got.performance * got.performance_factor**exploration
            power = got.power_watts / got.power_factor**exploration
            # Working power below idle would be a node that saves power by working.
            power = max(power, p.idle_power_watts)
            workloads[wt] = replace(fig, performance=perf, power_watts=power)
        profiles.append(replace(p, workloads=MappingProxyType(workloads)))
    return KnowledgeBase.of(profiles)
