"""The registry of power-source kinds: which kinds the config file accepts, in which order.

As the scheduler's plugin registry, a plain value built when asked for: importing this
module imports the kind modules and runs nothing. :data:`IN_TREE` is the explicit list of
the in-tree kinds; adding a kind is one module that defines ``PLUGIN`` (see
:mod:`energysched_monitor.source_interface`), one line here and its test.
:meth:`SourceRegistry.with_kind` adds one more for a caller (a test, an experiment)
without touching the default; the config's parsers take it as ``kinds=...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from energysched_monitor import nvml, power_model, prometheus, rapl, rapl_nvml, redfish, shelly
from energysched_monitor.readings import SourceKind
from energysched_monitor.source_interface import KindFields, SharedKeys, SourcePlugin

#: The in-tree kinds, in the order the config's messages list them.
IN_TREE: Final[tuple[SourcePlugin[Any], ...]] = (
    shelly.PLUGIN,
    rapl.PLUGIN,
    nvml.PLUGIN,
    rapl_nvml.PLUGIN,
    power_model.PLUGIN,
    redfish.PLUGIN,
    prometheus.PLUGIN,
)
#: The names of the in-tree kinds (the ``kind`` values a config may use).
SOURCE_KINDS: Final[tuple[SourceKind, ...]] = tuple(p.name for p in IN_TREE)


@dataclass(frozen=True, slots=True)
class SourceRegistry:
    """The kinds a configuration may use, in order."""

    plugins: tuple[SourcePlugin[Any], ...] = ()

    @property
    def names(self) -> tuple[SourceKind, ...]:
        return tuple(p.name for p in self.plugins)

    def with_kind(self, plugin: SourcePlugin[Any]) -> SourceRegistry:
        """This registry plus ``plugin`` (ValueError if it cannot join, saying why)."""
        if not plugin.name or plugin.name.strip() != plugin.name:
            raise ValueError(f"source kind name {plugin.name!r}: empty or with spaces")
        if plugin.name in self.names:
            raise ValueError(f"source kind {plugin.name!r} is registered already")
        shared = sorted(set(plugin.fields.model_fields) & ({"kind"} | set(SharedKeys.model_fields)))
        if shared:
            raise ValueError(
                f"source kind {plugin.name!r}: {plugin.fields.__name__} declares "
                f"{', '.join(shared)}, which every kind shares (the config file's own keys)"
            )
        if _own_validators(plugin.fields):
            raise ValueError(
                f"source kind {plugin.name!r}: {plugin.fields.__name__} has validator "
                "decorators, which the config's composed entry does not keep; put a key's "
                "rule in its type (Annotated[..., AfterValidator(...)]) and rules across "
                "keys in the plugin's check"
            )
        for other in self.plugins:
            for name, mine in plugin.fields.model_fields.items():
                theirs = other.fields.model_fields.get(name)
                if theirs is not None and _definition(theirs) != _definition(mine):
                    raise ValueError(
                        f"source kind {plugin.name!r}: key {mine.alias or name!r} is "
                        f"declared differently by kind {other.name!r}; share one definition"
                    )
        return SourceRegistry((*self.plugins, plugin))

    def plugin(self, name: SourceKind) -> SourcePlugin[Any]:
        for plugin in self.plugins:
            if plugin.name == name:
                return plugin
        raise ValueError(f"no source kind {name!r} (have: {', '.join(self.names)})")


def _own_validators(fields: type[KindFields]) -> set[str]:
    """The validator decorators ``fields`` adds to those every kind's keys share."""
    base = KindFields.__pydantic_decorators__
    mine = fields.__pydantic_decorators__
    return (set(mine.field_validators) - set(base.field_validators)) | (
        set(mine.model_validators) - set(base.model_validators)
    )


def _definition(field: Any) -> tuple[Any, ...]:
    return (field.annotation, field.default, field.alias, field.metadata)


@cache
def default_registry() -> SourceRegistry:
    """The in-tree kinds (:data:`IN_TREE`), checked as any other registration."""
    registry = SourceRegistry()
    for plugin in IN_TREE:
        registry = registry.with_kind(plugin)
    return registry
