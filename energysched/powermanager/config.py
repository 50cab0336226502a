"""The power manager's configuration file (a mounted ConfigMap), reloaded without a restart.

Every tunable of the policy and of the manager's passes lives here; command-line flags
are left for what belongs to the process (kubeconfig, identity, Lease, metrics address,
log level, this file's path). The file is read by the one strict reader
(:mod:`energysched.strict`) and watched by the same :class:`~energysched.kube.files.ConfigFile`
as the scheduler's: an unknown key, a wrong type, a negative number or NaN is a
:class:`PowerConfigError` naming the field and the value, and an invalid edit never
replaces the config in force (the manager logs it, counts it and posts a Warning Event).

The defaults are the documented ones (README, "Sleeping nodes on k3s"); the base manifests'
ConfigMap writes every one of them out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator

from energysched.kube.files import ConfigFile
from energysched.power.consolidation import ConsolidationConfig
from energysched.power.policy import PolicyConfig
from energysched.powermanager.view import Selector
from energysched.strict import DocumentError, StrictModel, load_yaml, show, validate

#: What the base manifests' ConfigMap is called, and the key of the file in it.
CONFIG_MAP = "energysched-power-manager"
DEFAULT_KEEP_AWAKE = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class ManagerConfig:
    """The tunables in force (the defaults are the file's; tests build their own)."""

    policy: PolicyConfig = field(default_factory=PolicyConfig)
    keep_awake: Selector = field(default_factory=lambda: Selector.parse(DEFAULT_KEEP_AWAKE))
    #: Seconds between two passes.
    interval: float = 10.0
    command_timeout: float = 120.0
    #: How long the node agent may take to act on a sleep request before the node is
    #: given back (awake) — it stays Ready past ``suspendSeconds`` + this.
    agent_grace_seconds: float = 60.0
    #: How long a node stays tainted (``draining``) before the last emptiness check: a
    #: scheduler that decided for the node just before the taint may still bind to it.
    drain_settle_seconds: float = 5.0
    #: Draining nodes whose pods may all be evicted and placed elsewhere (off by default).
    consolidation: ConsolidationConfig = field(default_factory=ConsolidationConfig)


class PowerConfigError(DocumentError):
    """The power manager's configuration is invalid; the message names field and value."""


def _seconds(lo: float = 0.0, hi: float = 1e7) -> Any:
    # An upper bound keeps every figure a number asyncio.sleep and the backoff arithmetic
    # take (1e308 s would overflow them); 1e7 s is almost four months.
    return Field(ge=lo, le=hi)


class _ConsolidationDoc(StrictModel):
    """Draining nodes that still run evictable pods so that they may sleep (off by default)."""

    enabled: bool = False
    #: What restarting one evicted pod elsewhere costs (J); README, "Consolidation".
    pod_restart_joules: Annotated[float, Field(ge=0.0, le=1e12)] = 600.0
    #: A drain whose pods are not gone after this long is abandoned (the node stays awake).
    drain_timeout_seconds: Annotated[float, _seconds(1.0)] = 300.0

    def config(self) -> ConsolidationConfig:
        return ConsolidationConfig(
            self.enabled, self.pod_restart_joules, self.drain_timeout_seconds
        )


class _ConfigDoc(StrictModel):
    api_version: str | None = None
    kind: str | None = None
    #: Seconds between two passes.
    interval_seconds: Annotated[float, _seconds(0.1, 3600)] = 10.0
    #: Label selector (``key`` or ``key=value``, comma-separated, ANDed) of never-slept nodes.
    keep_awake: str = DEFAULT_KEEP_AWAKE
    hysteresis_seconds: Annotated[float, _seconds()] = 120.0
    min_awake_nodes: Annotated[int, Field(ge=0, le=1_000_000)] = 1
    min_free_fraction: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    wake_backoff_seconds: Annotated[float, _seconds()] = 30.0
    wake_backoff_max_seconds: Annotated[float, _seconds()] = 1800.0
    wake_timeout_factor: Annotated[float, Field(ge=0.0, le=1000.0)] = 2.0
    wake_timeout_margin_seconds: Annotated[float, _seconds()] = 30.0
    command_timeout_seconds: Annotated[float, _seconds(0.1)] = 120.0
    agent_grace_seconds: Annotated[float, _seconds()] = 60.0
    drain_settle_seconds: Annotated[float, _seconds()] = 5.0
    consolidation: _ConsolidationDoc = _ConsolidationDoc()

    @field_validator("keep_awake")
    @classmethod
    def _selector(cls, value: str) -> str:
        try:
            Selector.parse(value)
        except ValueError as exc:
            raise ValueError(f"{exc} (got {show(value)})") from None
        return value

    def config(self) -> ManagerConfig:
        return ManagerConfig(
            policy=PolicyConfig(
                hysteresis_seconds=self.hysteresis_seconds,
                min_awake_nodes=self.min_awake_nodes,
                min_free_fraction=self.min_free_fraction,
                wake_backoff_initial_seconds=self.wake_backoff_seconds,
                wake_backoff_max_seconds=self.wake_backoff_max_seconds,
                wake_timeout_factor=self.wake_timeout_factor,
                wake_timeout_margin_seconds=self.wake_timeout_margin_seconds,
            ),
            keep_awake=Selector.parse(self.keep_awake),
            interval=self.interval_seconds,
            command_timeout=self.command_timeout_seconds,
            agent_grace_seconds=self.agent_grace_seconds,
            drain_settle_seconds=self.drain_settle_seconds,
            consolidation=self.consolidation.config(),
        )


def parse_config(doc: Any) -> ManagerConfig:
    """The configuration from a parsed YAML document (None, an empty file: the defaults)."""
    try:
        return validate(_ConfigDoc, {} if doc is None else doc, root="config").config()
    except DocumentError as exc:
        raise PowerConfigError(exc.problems) from None


def _parse_bytes(data: bytes, path: Path) -> ManagerConfig:
    try:
        return validate(_ConfigDoc, load_yaml(data) or {}, root="config").config()
    except DocumentError as exc:
        raise PowerConfigError(exc.problems, str(path)) from None


def config_file(path: Path | None) -> ConfigFile[ManagerConfig]:
    """The manager's config file (None: the defaults, never reloaded)."""
    return ConfigFile(path, ManagerConfig(), lambda data: _parse_bytes(data, path or Path()))
