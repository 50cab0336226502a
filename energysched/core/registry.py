"""The registry: which filter plugins (in chain order) and which score plugin per mode.

As kube-scheduler's ``pkg/scheduler/framework/plugins/registry.go``, a plain
value built when asked for, never at import: importing this module (or any
plugin) runs nothing. :func:`default_registry` collects every module of
:mod:`energysched.core.filters` and :mod:`energysched.core.scores` that defines
``PLUGIN``: adding a filter or a mode is adding one file (and its test beside
the others in tests/unit/core/plugins/). :meth:`Registry.with_filter` and
:meth:`Registry.with_scorer` add one more for a caller (a test, an experiment)
without touching the default; ``schedule_one(..., registry=...)`` takes it.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType, ModuleType

from energysched.core.interface import FilterPlugin, ScorePlugin


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
    from energysched.core import filters, scores  # the packages only: no plugin imports us

    registry = Registry()
    for plugin in plugins_in(filters):
        assert isinstance(plugin, FilterPlugin), plugin
        registry = registry.with_filter(plugin)
    for plugin in plugins_in(scores):
        assert isinstance(plugin, ScorePlugin), plugin
        registry = registry.with_scorer(plugin)
    return registry
