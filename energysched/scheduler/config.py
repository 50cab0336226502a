"""The scheduler's configuration file, loaded and re-loaded without a restart.

An invalid file never replaces a good one: the loader keeps the last good
configuration and says exactly what is wrong (field path and offending value).
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from energysched import contract
from energysched.core.params import STALE_POLICIES, ScheduleParams, StalePolicy
from energysched.kube.files import WatchedFile


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field and the value."""


_SHOW = reprlib.Repr()  # keyword arguments only from Python 3.12
_SHOW.maxlevel, _SHOW.maxstring, _SHOW.maxother = 3, 60, 60
_SHOW.maxlist = _SHOW.maxdict = 4
_SHOW.maxlong = 40  # a 400-digit number is shown shortened


def _show(value: Any) -> str:
    """A short, safe repr of any YAML value (deep nesting, huge numbers, long strings)."""
    return _SHOW.repr(value)


#: Ports are ASCII digits only: str.isdigit() also accepts "²" and "١٠٢٦١".
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass(frozen=True)
class ProfileConfig:
    """One scheduling profile: a scheduler name and how it scores."""

    scheduler_name: str = contract.SCHEDULER_NAME
    mode: contract.ScoringMode = "normalized"
    default_weight: float = 0.5
    hybrid_buffer_watts: float = 5.0
    staleness_seconds: float = 60.0
    stale_policy: StalePolicy = "ignore"
    default_work_seconds: float = 60.0

    def params(self) -> ScheduleParams:
        """The pure core's parameters for this profile."""
        return ScheduleParams(
            mode=self.mode,
            default_weight=self.default_weight,
            hybrid_buffer_watts=self.hybrid_buffer_watts,
            staleness_window=timedelta(seconds=self.staleness_seconds),
            stale_policy=self.stale_policy,
            default_work_seconds=self.default_work_seconds,
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

    def profile_for(self, scheduler_name: str) -> ProfileConfig | None:
        return next((p for p in self.profiles if p.scheduler_name == scheduler_name), None)


def _num(
    raw: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float
) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{path}.{key}: {_show(value)} is not a number")
    # Compare before converting: float() of a 400-digit int raises OverflowError.
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path}.{key}: {_show(value)} is not a finite number")
    if not lo <= value <= hi:
        raise ConfigError(f"{path}.{key}: {_show(value)} is outside [{lo:g}, {hi:g}]")
    return float(value)


def _int(raw: Mapping[str, Any], key: str, path: str, default: int, lo: int, hi: int) -> int:
    value = _num(raw, key, path, default, lo, hi)
    if not value.is_integer():
        raise ConfigError(f"{path}.{key}: {_show(raw.get(key))} is not a whole number")
    return int(value)


def _bool(raw: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):  # bool("false") would be True
        raise ConfigError(f"{path}.{key}: {_show(value)} is not true or false")
    return value


def _name(raw: Mapping[str, Any], key: str, path: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{path}.{key}: {_show(value)} must be a non-empty string")
    return value


def _metrics_address(value: Any) -> str:
    """``HOST:PORT`` (host may be empty or a bracketed IPv6 address), or "" for none."""
    if value == "":
        return ""
    port = value.rpartition(":")[2] if isinstance(value, str) and ":" in value else ""
    if not _PORT.fullmatch(port) or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f"metricsAddress: {_show(value)} must be HOST:PORT (port 0-65535) or empty"
        )
    return str(value)


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: must be a mapping, got {_show(value)}")
    return value


def _check_keys(raw: Mapping[str, Any], allowed: set[str], path: str) -> None:
    unknown = sorted(_show(k) for k in set(raw) - allowed)  # YAML keys may be numbers
    if unknown:
        raise ConfigError(
            f"{path}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )


def parse_config(doc: Any) -> SchedulerConfig:
    raw = _mapping(doc, "config")
    _check_keys(
        raw,
        {"apiVersion", "kind", "profiles", "leaderElection", "metricsAddress", "clientConnection"},
        "config",
    )
    profiles = []
    raw_profiles = raw.get("profiles", [{}])
    if not isinstance(raw_profiles, list) or not raw_profiles:
        raise ConfigError(f"profiles: must be a non-empty list, got {_show(raw_profiles)}")
    for i, item in enumerate(raw_profiles):
        path = f"profiles[{i}]"
        p = _mapping(item, path)
        _check_keys(p, {"schedulerName", "mode", "defaultWeight", "hybrid", "clusterEnergy"}, path)
        mode = p.get("mode", "normalized")
        if not isinstance(mode, str) or mode not in contract.SCORING_MODES:
            raise ConfigError(
                f"{path}.mode: {_show(mode)} is not one of {', '.join(contract.SCORING_MODES)}"
            )
        hybrid = _mapping(p.get("hybrid"), f"{path}.hybrid")
        _check_keys(hybrid, {"bufferWatts", "stalenessSeconds", "stalePolicy"}, f"{path}.hybrid")
        policy = hybrid.get("stalePolicy", "ignore")
        if not isinstance(policy, str) or policy not in STALE_POLICIES:
            raise ConfigError(
                f"{path}.hybrid.stalePolicy: {_show(policy)} is not one of"
                f" {', '.join(STALE_POLICIES)}"
            )
        cluster_energy = _mapping(p.get("clusterEnergy"), f"{path}.clusterEnergy")
        _check_keys(cluster_energy, {"defaultWorkSeconds"}, f"{path}.clusterEnergy")
        name = p.get("schedulerName", contract.SCHEDULER_NAME)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{path}.schedulerName: {_show(name)} must be a non-empty string")
        profiles.append(
            ProfileConfig(
                scheduler_name=name,
                mode=mode,
                default_weight=_num(p, "defaultWeight", path, 0.5, 0.0, 1.0),
                hybrid_buffer_watts=_num(hybrid, "bufferWatts", f"{path}.hybrid", 5.0, 0.0, 1e6),
                staleness_seconds=_num(
                    hybrid, "stalenessSeconds", f"{path}.hybrid", 60.0, 1.0, 86400.0
                ),
                stale_policy=policy,
                default_work_seconds=_num(
                    cluster_energy, "defaultWorkSeconds", f"{path}.clusterEnergy", 60.0, 0.001, 1e9
                ),
            )
        )
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError(f"profiles: schedulerName must be unique, got {names}")
    le = _mapping(raw.get("leaderElection"), "leaderElection")
    _check_keys(
        le,
        {
            "enabled",
            "namespace",
            "name",
            "leaseDurationSeconds",
            "renewDeadlineSeconds",
            "retryPeriodSeconds",
        },
        "leaderElection",
    )
    election = LeaderElectionConfig(
        enabled=_bool(le, "enabled", "leaderElection", True),
        namespace=_name(le, "namespace", "leaderElection", "kube-system"),
        name=_name(le, "name", "leaderElection", "energy-scheduler"),
        lease_duration=_num(le, "leaseDurationSeconds", "leaderElection", 15, 2, 3600),
        renew_deadline=_num(le, "renewDeadlineSeconds", "leaderElection", 10, 1, 3600),
        retry_period=_num(le, "retryPeriodSeconds", "leaderElection", 2, 0.1, 3600),
    )
    if not election.retry_period < election.renew_deadline < election.lease_duration:
        raise ConfigError(
            "leaderElection: need retryPeriodSeconds < renewDeadlineSeconds <"
            f" leaseDurationSeconds, got retryPeriodSeconds={election.retry_period:g},"
            f" renewDeadlineSeconds={election.renew_deadline:g},"
            f" leaseDurationSeconds={election.lease_duration:g}"
        )
    client = _mapping(raw.get("clientConnection"), "clientConnection")
    _check_keys(client, {"qps", "burst"}, "clientConnection")
    return SchedulerConfig(
        profiles=tuple(profiles),
        leader_election=election,
        metrics_address=_metrics_address(raw.get("metricsAddress", "127.0.0.1:10261")),
        qps=_num(client, "qps", "clientConnection", 50, 0, 1e6),
        burst=_int(client, "burst", "clientConnection", 100, 1, 1_000_000),
    )


class ConfigSource:
    """The scheduler's config file, polled for changes; ``poll()`` returns a new config or None."""

    def __init__(self, path: Path | None, base: SchedulerConfig | None = None) -> None:
        self.path = path
        self.current = base or SchedulerConfig()
        self.last_error: str | None = None
        self._file = (
            WatchedFile(path, lambda data: _parse_bytes(data, path)) if path is not None else None
        )

    def load_initial(self) -> SchedulerConfig:
        """At start-up an invalid file is fatal (there is no last good config yet)."""
        if self._file is None:
            return self.current
        self.current = self._file.load()
        return self.current

    def poll(self) -> SchedulerConfig | None:
        if self._file is None:
            return None
        try:
            new = self._file.poll()
        except ConfigError as exc:
            self.last_error = f"{exc}; keeping the last good config"
            raise ConfigError(self.last_error) from exc
        if self._file.unreadable:
            self.last_error = f"{self._file.unreadable}; keeping the last good config"
            return None
        if new is None:
            return None
        self.last_error = None
        self.current = new
        return new


def _parse_bytes(data: bytes, path: Path) -> SchedulerConfig:
    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except RecursionError as exc:  # PyYAML composes nested nodes recursively
        raise ConfigError(f"{path}: not usable YAML: nested too deeply") from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # e.g. an integer of more than 4,300 digits (Python's int() limit)
        raise ConfigError(f"{path}: not usable YAML: {str(exc)[:200]}") from exc
    try:
        return parse_config(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        # Each field check should have caught this; never let it end a reload.
        raise ConfigError(f"{path}: invalid: {type(exc).__name__}: {exc}") from exc
