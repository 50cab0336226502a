"""The plugin protocol and registry: filters and scores, as kube-scheduler's framework.

A **filter plugin** (one module in :mod:`energysched.core.filters`) has

- ``name`` (the plugin name shown in explain, e.g. ``NodeResourcesFit``) and
  ``order`` (its place in the chain; kube-scheduler's default profile order);
- ``check(pod, node, usage)``: the reference verdict for one node, the reasons
  it rejects the node for (``()`` = passes), readable against upstream; the
  explain path runs it;
- ``filter(pod, snap)``: the same verdict for every node at once, as a
  :class:`Rejection` (``None`` when every node passes); the fast path runs it.
  The property test holds the two identical.

A **score plugin** (one module in :mod:`energysched.core.scores`) serves one
scoring mode: ``mode``, ``score(inp)`` (vectorised, see
:class:`~energysched.core.scoring.ScoreInput`) and ``why(scores, snap, params,
i)`` (the sentence explaining node ``i``'s score).

:func:`default_registry` collects every module of those two packages that
defines ``PLUGIN``: adding a filter or a mode is adding one file (and its test
beside the others in tests/unit/core/plugins/). :meth:`Registry.with_filter`
adds one more for a caller (a test, an experiment) without touching the
default; :class:`~energysched.core.params.ScheduleParams` carries the registry a
decision uses.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from energysched.core.params import ScheduleParams
    from energysched.core.scoring import ModeScores, ScoreInput, Scores
    from energysched.core.snapshot import ClusterSnapshot, NodeUsage
    from energysched.core.values import NodeInfo, PodInfo

BoolArray = npt.NDArray[np.bool_]
IndexArray = npt.NDArray[np.intp]


# -- what a vectorised filter returns --------------------------------------------------


class Rejection:
    """The nodes a filter rejects, and the reasons, for every node at once."""

    __slots__ = ("mask",)

    def __init__(self, mask: BoolArray) -> None:
        #: True where the node is rejected.
        self.mask = mask

    def reasons_of(self, i: int) -> tuple[str, ...]:
        """The reasons node ``i`` (a rejected one) is rejected for."""
        raise NotImplementedError

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        """Reason -> count over ``nodes`` (a subset of the rejected ones)."""
        raise NotImplementedError


class SameReason(Rejection):
    """Every rejected node for one reason (most filters)."""

    __slots__ = ("reason",)

    def __init__(self, mask: BoolArray, reason: str) -> None:
        super().__init__(mask)
        self.reason = reason

    def reasons_of(self, i: int) -> tuple[str, ...]:
        return (self.reason,)

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        count = int(np.count_nonzero(nodes))
        return {self.reason: count} if count else {}


class PerClassReason(Rejection):
    """A reason per taint class (nodes sharing unschedulable and taints)."""

    __slots__ = ("class_ids", "class_reasons")

    def __init__(
        self, mask: BoolArray, class_ids: IndexArray, class_reasons: Sequence[str | None]
    ) -> None:
        super().__init__(mask)
        self.class_ids = class_ids
        self.class_reasons = tuple(class_reasons)

    def reasons_of(self, i: int) -> tuple[str, ...]:
        r = self.class_reasons[int(self.class_ids[i])]
        return () if r is None else (r,)

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        hist: dict[str, int] = {}
        if not nodes.any():
            return hist
        per_class = np.bincount(self.class_ids[nodes], minlength=len(self.class_reasons))
        for c, count in enumerate(per_class.tolist()):
            r = self.class_reasons[c]
            if count and r is not None:
                hist[r] = hist.get(r, 0) + count
        return hist


class ManyReasons(Rejection):
    """Several independent reasons, each with its own nodes (e.g. per resource)."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[tuple[str, BoolArray]]) -> None:
        mask = np.zeros(len(parts[0][1]) if parts else 0, dtype=np.bool_)
        for _, bad in parts:
            mask |= bad
        super().__init__(mask)
        self.parts = tuple(parts)

    def reasons_of(self, i: int) -> tuple[str, ...]:
        return tuple(reason for reason, bad in self.parts if bad[i])

    def histogram(self, nodes: BoolArray) -> dict[str, int]:
        hist: dict[str, int] = {}
        if not nodes.any():
            return hist
        for reason, bad in self.parts:
            count = int(np.count_nonzero(nodes & bad))
            if count:
                hist[reason] = hist.get(reason, 0) + count
        return hist


# -- the two plugin kinds --------------------------------------------------------------


@runtime_checkable
class FilterPlugin(Protocol):
    """See the module doc."""

    @property
    def name(self) -> str: ...

    @property
    def order(self) -> int: ...

    def check(self, pod: PodInfo, node: NodeInfo, usage: NodeUsage) -> tuple[str, ...]: ...

    def filter(self, pod: PodInfo, snap: ClusterSnapshot) -> Rejection | None: ...


@runtime_checkable
class ScorePlugin(Protocol):
    """See the module doc."""

    @property
    def mode(self) -> str: ...

    def score(self, inp: ScoreInput) -> ModeScores: ...

    def why(self, scores: Scores, snap: ClusterSnapshot, params: ScheduleParams, i: int) -> str: ...


@dataclass(frozen=True, slots=True)
class Filter:
    """A filter plugin made of plain functions (what the modules define)."""

    name: str
    order: int
    check: Callable[[PodInfo, NodeInfo, NodeUsage], tuple[str, ...]]
    filter: Callable[[PodInfo, ClusterSnapshot], Rejection | None]


@dataclass(frozen=True, slots=True)
class Scorer:
    """A score plugin made of plain functions (what the modules define)."""

    mode: str
    score: Callable[[ScoreInput], ModeScores]
    why: Callable[[Scores, ClusterSnapshot, ScheduleParams, int], str]


# -- the registry ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Registry:
    """The filters (in chain order) and the score plugin per mode a decision uses."""

    filters: tuple[FilterPlugin, ...] = ()
    scorers: Mapping[str, ScorePlugin] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def filter_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.filters)

    def with_filter(self, plugin: FilterPlugin) -> Registry:
        """This registry plus ``plugin``, placed by its ``order`` (after equal orders)."""
        if plugin.name in self.filter_names:
            raise ValueError(f"filter plugin {plugin.name!r} is registered already")
        filters = sorted((*self.filters, plugin), key=lambda f: f.order)  # stable
        return Registry(tuple(filters), self.scorers)

    def with_scorer(self, plugin: ScorePlugin) -> Registry:
        """This registry with ``plugin`` serving its mode (replacing any other)."""
        return Registry(self.filters, MappingProxyType({**self.scorers, plugin.mode: plugin}))

    def scorer(self, mode: str) -> ScorePlugin:
        try:
            return self.scorers[mode]
        except KeyError:
            raise ValueError(
                f"no score plugin for mode {mode!r} (have: {', '.join(self.scorers)})"
            ) from None


def plugins_in(package: ModuleType) -> list[object]:
    """Every ``PLUGIN`` defined by a module of ``package``, in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if plugin is not None:
            found.append(plugin)
    return found


@cache
def default_registry() -> Registry:
    """The in-tree plugins: every module of core.filters and core.scores with a PLUGIN."""
    from energysched.core import filters, scores

    registry = Registry()
    for plugin in plugins_in(filters):
        assert isinstance(plugin, FilterPlugin), plugin
        registry = registry.with_filter(plugin)
    for plugin in plugins_in(scores):
        assert isinstance(plugin, ScorePlugin), plugin
        registry = registry.with_scorer(plugin)
    return registry
