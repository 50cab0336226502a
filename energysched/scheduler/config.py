"""The scheduler's configuration file, loaded and re-loaded without a restart.

An invalid file never replaces a good one: the loader keeps the last good
configuration and says exactly what is wrong (field path and offending value).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from energysched import contract
from energysched.core.params import DEFAULT_CLOCK_SKEW, ScheduleParams, StalePolicy
from energysched.kube.files import ConfigFile
from energysched.learning.knowledge import Knowledge
from energysched.strict import DocumentError, StrictModel, load_yaml, show, validate


class ConfigError(DocumentError):
    """The configuration is invalid; the message names the field and the value."""


#: Ports are ASCII digits only: str.isdigit() also accepts "²" and "١٠٢٦١".
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class ProfileConfig:
    """One scheduling profile: a scheduler name and how it scores."""

    scheduler_name: str = contract.SCHEDULER_NAME
    mode: contract.ScoringMode = contract.DEFAULT_SCORING_MODE
    default_weight: float = 0.5
    hybrid_buffer_watts: float = 5.0
    staleness_seconds: float = 60.0
    stale_policy: StalePolicy = "ignore"
    default_work_seconds: float = 60.0
    clock_skew_seconds: float = DEFAULT_CLOCK_SKEW.total_seconds()

    def params(self) -> ScheduleParams:
        """The pure core's parameters for this profile."""
        return ScheduleParams(
            mode=self.mode,
            default_weight=self.default_weight,
            hybrid_buffer_watts=self.hybrid_buffer_watts,
            staleness_window=timedelta(seconds=self.staleness_seconds),
            stale_policy=self.stale_policy,
            default_work_seconds=self.default_work_seconds,
            clock_skew_allowance=timedelta(seconds=self.clock_skew_seconds),
        )


@dataclass(frozen=True)
class LeaderElectionConfig:
    enabled: bool = True
    namespace: str = "kube-system"
    name: str = "energy-scheduler"
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0


@dataclass(frozen=True)
class SchedulerConfig:
    profiles: tuple[ProfileConfig, ...] = (ProfileConfig(),)
    leader_election: LeaderElectionConfig = field(default_factory=LeaderElectionConfig)
    metrics_address: str = "127.0.0.1:10261"  # "" disables the endpoint
    qps: float = 50.0
    burst: int = 100
    #: Which figures every mode reads: the profiles' spec, or the operator's learned
    #: figures (status.learned) where it has some (README, "Learning from finished pods":
    #: ``learned`` is the default because it was better at cluster level there).
    knowledge: Knowledge = "learned"
    #: Optimism for uncertain learned figures, in posterior standard deviations (UCB); 0: none.
    exploration: float = 0.0

    def profile_for(self, scheduler_name: str) -> ProfileConfig | None:
        return next((p for p in self.profiles if p.scheduler_name == scheduler_name), None)


# -- the file as written (camelCase keys), read by the one strict reader -------------

NonEmpty = Annotated[str, Field(min_length=1)]


def _within(lo: float, hi: float) -> Any:
    return Field(ge=lo, le=hi)


class _HybridDoc(StrictModel):
    buffer_watts: Annotated[float, _within(0.0, 1e6)] = 5.0
    staleness_seconds: Annotated[float, _within(1.0, 86400.0)] = 60.0
    stale_policy: StalePolicy = "ignore"
    #: how far in the future a reading may lie and still count (the clocks of the
    #: monitor's node and the scheduler's differ); beyond it, the reading is invalid
    clock_skew_seconds: Annotated[float, _within(0.0, 3600.0)] = DEFAULT_CLOCK_SKEW.total_seconds()


class _ClusterEnergyDoc(StrictModel):
    default_work_seconds: Annotated[float, _within(0.001, 1e9)] = 60.0


class _ProfileDoc(StrictModel):
    scheduler_name: NonEmpty = contract.SCHEDULER_NAME
    mode: contract.ScoringMode = contract.DEFAULT_SCORING_MODE
    default_weight: Annotated[float, _within(0.0, 1.0)] = 0.5
    hybrid: _HybridDoc | None = None
    cluster_energy: _ClusterEnergyDoc | None = None

    def config(self) -> ProfileConfig:
        hybrid = self.hybrid or _HybridDoc()
        return ProfileConfig(
            scheduler_name=self.scheduler_name,
            mode=self.mode,
            default_weight=self.default_weight,
            hybrid_buffer_watts=hybrid.buffer_watts,
            staleness_seconds=hybrid.staleness_seconds,
            stale_policy=hybrid.stale_policy,
            clock_skew_seconds=hybrid.clock_skew_seconds,
            default_work_seconds=(self.cluster_energy or _ClusterEnergyDoc()).default_work_seconds,
        )


class _LeaderElectionDoc(StrictModel):
    enabled: bool = True
    namespace: NonEmpty = "kube-system"
    name: NonEmpty = "energy-scheduler"
    lease_duration_seconds: Annotated[float, _within(2, 3600)] = 15.0
    renew_deadline_seconds: Annotated[float, _within(1, 3600)] = 10.0
    retry_period_seconds: Annotated[float, _within(0.1, 3600)] = 2.0

    @model_validator(mode="after")
    def _ordered(self) -> _LeaderElectionDoc:
        # the same rule as kube-scheduler's leader election (client-go)
        retry, renew = self.retry_period_seconds, self.renew_deadline_seconds
        if not retry < renew < self.lease_duration_seconds:
            raise ValueError(
                "need retryPeriodSeconds < renewDeadlineSeconds < leaseDurationSeconds, got"
                f" retryPeriodSeconds={retry:g}, renewDeadlineSeconds={renew:g},"
                f" leaseDurationSeconds={self.lease_duration_seconds:g}"
            )
        return self


class _ClientConnectionDoc(StrictModel):
    qps: Annotated[float, _within(0, 1e6)] = 50.0
    burst: Annotated[int, _within(1, 1_000_000)] = 100


class _ConfigDoc(StrictModel):
    api_version: str | None = None
    kind: str | None = None
    profiles: Annotated[list[_ProfileDoc], Field(min_length=1)] = [_ProfileDoc()]
    leader_election: _LeaderElectionDoc | None = None
    metrics_address: str = "127.0.0.1:10261"
    client_connection: _ClientConnectionDoc | None = None
    knowledge: Literal["spec", "learned"] = "learned"
    exploration: Annotated[float, _within(0.0, 3.0)] = 0.0

    @field_validator("metrics_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        """``HOST:PORT`` (host may be empty or a bracketed IPv6 address), or "" for none."""
        if value == "":
            return value
        port = value.rpartition(":")[2] if ":" in value else ""
        if not _PORT.fullmatch(port) or not 0 <= int(port) <= 65535:
            raise ValueError(f"{show(value)} must be HOST:PORT (port 0-65535) or empty")
        return value

    @field_validator("profiles")
    @classmethod
    def _unique(cls, value: list[_ProfileDoc]) -> list[_ProfileDoc]:
        names = [p.scheduler_name for p in value]
        if len(set(names)) != len(names):
            raise ValueError(f"schedulerName must be unique, got {names}")
        return value

    def config(self) -> SchedulerConfig:
        le = self.leader_election or _LeaderElectionDoc()
        client = self.client_connection or _ClientConnectionDoc()
        return SchedulerConfig(
            profiles=tuple(p.config() for p in self.profiles),
            leader_election=LeaderElectionConfig(
                enabled=le.enabled,
                namespace=le.namespace,
                name=le.name,
                lease_duration=le.lease_duration_seconds,
                renew_deadline=le.renew_deadline_seconds,
                retry_period=le.retry_period_seconds,
            ),
            metrics_address=self.metrics_address,
            qps=client.qps,
            burst=client.burst,
            knowledge=self.knowledge,
            exploration=self.exploration,
        )


def parse_config(doc: Any) -> SchedulerConfig:
    """The configuration from a parsed YAML document (None, an empty file: the defaults)."""
    try:
        return validate(_ConfigDoc, {} if doc is None else doc, root="config").config()
    except DocumentError as exc:
        raise ConfigError(exc.problems) from None


class ConfigSource(ConfigFile[SchedulerConfig]):
    """The scheduler's config file, polled for changes; ``poll()`` returns a new config or None."""

    def __init__(self, path: Path | None, base: SchedulerConfig | None = None) -> None:
        super().__init__(
            path, base or SchedulerConfig(), lambda data: _parse_bytes(data, path or Path())
        )


def _parse_bytes(data: bytes, path: Path) -> SchedulerConfig:
    try:
        return validate(_ConfigDoc, load_yaml(data) or {}, root="config").config()
    except DocumentError as exc:
        raise ConfigError(exc.problems, str(path)) from None
