"""Build a node's PowerSource from its configuration: the runtime of the source plugins.

It knows no kind: the entry's kind was looked up in the registry when the config was
read (:attr:`SourceSpec.plugin`), and that plugin's ``build`` makes the source.
"""

from __future__ import annotations

from collections.abc import Mapping

from energysched_monitor.config import MonitorConfig, SourceSpec
from energysched_monitor.interfaces import ClusterView
from energysched_monitor.readings import PowerSource
from energysched_monitor.source_interface import BuildContext


def build_source(
    spec: SourceSpec,
    config: MonitorConfig,
    *,
    node: str,
    view: ClusterView | None = None,
    environ: Mapping[str, str] | None = None,
) -> PowerSource:
    """A source for ``spec``; ConfigError if it cannot be built (e.g. unreadable secret)."""
    ctx = BuildContext(
        node=node,
        secrets_dir=config.secrets_dir,
        timeout_seconds=config.timeout_for(spec),
        view=view,
        environ=environ,
    )
    return spec.plugin.build(spec, spec.settings, ctx)
