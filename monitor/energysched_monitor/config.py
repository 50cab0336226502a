"""Which node reads which power source: the config file and the node annotation override.

The file (YAML or JSON, mounted from a ConfigMap) maps node names, or node label
selectors, to a source; a node's ``energy.thesis.io/power-source-config`` annotation
(a JSON object of the same shape as a ``nodes`` entry) overrides both. See
``monitor/README.md`` for the full reference. Parsing is pure and strict: unknown keys
and wrong types are errors naming the path and the offending value, so that a typo
never silently turns a plug off. The caller keeps the last good configuration.

Credentials are never in the file: a ``secretKey`` names a file in ``secretsDir``
(a mounted Secret, one key per plug) or ``env`` names an environment variable. An
annotation override may use ``secretKey`` only, so that whoever can annotate a node
cannot make the monitor read arbitrary files or variables.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from energysched_bench.power import SHELLY_COMPONENTS as COMPONENTS
from energysched_bench.power import ShellyComponent as Component
from energysched_monitor.ports import NodeInfo
from energysched_monitor.publish import PublishPolicy
from energysched_monitor.readings import SOURCE_KINDS, PhysicalRange, SourceKind, excerpt
from energysched_monitor.secret import Secret

DEFAULT_SECRETS_DIR: Final = "/etc/energysched-monitor/secrets"
_SECRET_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # a Secret's data key


def _show(value: object) -> str:
    """An offending value as written (strings quoted), shortened for a log line."""
    return excerpt(repr(value))


class ConfigError(ValueError):
    """An invalid configuration: the message names where and what."""


@dataclass(frozen=True, slots=True)
class CredentialRef:
    username: str = "admin"
    secret_key: str | None = None  # file <secretsDir>/<secretKey>
    env: str | None = None  # environment variable holding the password

    def resolve(self, secrets_dir: str, environ: Mapping[str, str] | None = None) -> Secret:
        """The password; ConfigError (never containing it) if it cannot be read."""
        if self.secret_key is not None:
            path = Path(secrets_dir) / self.secret_key
            try:
                value = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"credentials: cannot read secret file {path}: {exc.strerror or exc}"
                ) from None
        else:
            assert self.env is not None
            env = os.environ if environ is None else environ
            if self.env not in env:
                raise ConfigError(f"credentials: environment variable {self.env} is not set")
            value = env[self.env]
        if not value:
            raise ConfigError("credentials: the password is empty")
        return Secret(value)


@dataclass(frozen=True, slots=True)
class SourceSpec:
    kind: SourceKind
    address: str | None = None  # shelly
    component: Component = "auto"  # shelly gen2+
    credentials: CredentialRef | None = None  # shelly
    min_watts: float = 0.0
    max_watts: float = 3680.0
    offset_watts: float = 0.0  # rapl: the rest of the box
    powercap_root: str = "/sys/class/powercap"  # rapl
    gpus: tuple[int, ...] | None = None  # nvml: all if None

    @property
    def physical_range(self) -> PhysicalRange:
        return PhysicalRange(self.min_watts, self.max_watts)

    def describe(self) -> str:
        """For logs: everything but secrets (a credential shows only where it comes from)."""
        parts: list[str] = [self.kind]
        if self.address:
            parts.append(self.address)
        if self.kind == "shelly" and self.component != "auto":
            parts.append(self.component)
        if self.credentials is not None:
            where = (
                f"secretKey={self.credentials.secret_key}"
                if self.credentials.secret_key
                else f"env={self.credentials.env}"
            )
            parts.append(f"user={self.credentials.username} {where}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class Selector:
    match_labels: Mapping[str, str]
    source: SourceSpec

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items())


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    poll_interval_seconds: float = 5.0
    timeout_seconds: float = 3.0
    gap_intervals: float = 3.0  # the trapezoid never bridges more than this many polls
    max_backoff_seconds: float = 60.0
    reload_seconds: float = 30.0
    secrets_dir: str = DEFAULT_SECRETS_DIR
    publish: PublishPolicy = field(default_factory=PublishPolicy)
    max_writes_per_second: float = 50.0  # process-wide (model mode); 0 = unlimited
    write_burst: int = 10
    nodes: Mapping[str, SourceSpec] = field(default_factory=lambda: MappingProxyType({}))
    selectors: tuple[Selector, ...] = ()

    @property
    def gap_seconds(self) -> float:
        return self.gap_intervals * self.poll_interval_seconds

    def source_for(self, node: NodeInfo) -> tuple[SourceSpec | None, str]:
        """The node's source from the file (no annotation): by name, then selectors."""
        if node.name in self.nodes:
            return self.nodes[node.name], f"config nodes.{node.name}"
        for index, selector in enumerate(self.selectors):
            if selector.matches(node.labels):
                return selector.source, f"config selectors[{index}]"
        return None, "none"


# -- parsing --------------------------------------------------------------------------


class _Obj:
    """A mapping being parsed: typed getters that name the path; leftovers are errors."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path or 'config'}: expected an object, got {_show(value)}")
        self.value = value
        self.path = path
        self.used: set[str] = set()

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def get(self, key: str) -> Any:
        self.used.add(key)
        return self.value.get(key)

    def number(self, key: str, default: float, *, minimum: float = 0.0) -> float:
        value = self.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self._at(key)}: expected a number, got {_show(value)}")
        try:
            number = float(value)
        except OverflowError:  # an integer of hundreds of digits
            number = math.inf
        if not math.isfinite(number) or number < minimum:
            raise ConfigError(f"{self._at(key)}: must be a number >= {minimum}, got {_show(value)}")
        return number

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.get(key)
        if value is None:
            return default
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self._at(key)}: expected a non-empty string, got {_show(value)}")
        return value

    def done(self) -> None:
        unknown = sorted(str(k) for k in self.value if k not in self.used)
        if unknown:
            raise ConfigError(f"{self.path or 'config'}: unknown key(s) {', '.join(unknown)}")


def _credentials(value: Any, path: str, *, allow_env: bool) -> CredentialRef:
    obj = _Obj(value, path)
    username = obj.string("username", "admin")
    secret_key = obj.string("secretKey")
    env = obj.string("env")
    if "password" in obj.value:
        raise ConfigError(
            f"{path}.password: passwords do not belong in the config; use secretKey or env"
        )
    obj.done()
    assert username is not None
    if ":" in username:  # neither Basic (RFC 7617) nor Digest can carry it
        raise ConfigError(f"{path}.username: must not contain ':', got {_show(username)}")
    if env is not None and not allow_env:
        raise ConfigError(f"{path}.env: not allowed in a node annotation; use secretKey")
    if (secret_key is None) == (env is None):
        raise ConfigError(f"{path}: give exactly one of secretKey or env")
    if secret_key is not None and not _SECRET_KEY.match(secret_key):
        raise ConfigError(f"{path}.secretKey: not a Secret key name: {secret_key!r}")
    return CredentialRef(username, secret_key, env)


def parse_source(value: Any, path: str, *, allow_env: bool = True) -> SourceSpec:
    obj = _Obj(value, path)
    kind = obj.get("kind")
    if kind not in SOURCE_KINDS:
        raise ConfigError(f"{path}.kind: expected one of {', '.join(SOURCE_KINDS)}, got {kind!r}")
    component = obj.get("component") or "auto"
    if component not in COMPONENTS:
        raise ConfigError(
            f"{path}.component: expected one of {', '.join(COMPONENTS)}, got {component!r}"
        )
    credentials = obj.get("credentials")
    gpus = obj.get("gpus")
    if gpus is not None and (
        not isinstance(gpus, list)
        or not all(isinstance(g, int) and not isinstance(g, bool) and g >= 0 for g in gpus)
    ):
        raise ConfigError(f"{path}.gpus: expected a list of GPU indices, got {_show(gpus)}")
    spec = SourceSpec(
        kind=kind,
        address=obj.string("address"),
        component=component,
        credentials=(
            None
            if credentials is None
            else _credentials(credentials, f"{path}.credentials", allow_env=allow_env)
        ),
        min_watts=obj.number("minWatts", 0.0),
        max_watts=obj.number("maxWatts", 3680.0),
        offset_watts=obj.number("offsetWatts", 0.0),
        powercap_root=obj.string("powercapRoot", "/sys/class/powercap") or "",
        gpus=tuple(gpus) if gpus is not None else None,
    )
    if not allow_env and "powercapRoot" in obj.value:
        raise ConfigError(f"{path}.powercapRoot: not allowed in a node annotation")
    obj.done()
    if spec.kind == "shelly" and not spec.address:
        raise ConfigError(f"{path}: a shelly source needs an address")
    if spec.address is not None:
        _check_address(spec.address, f"{path}.address")
    if spec.max_watts <= spec.min_watts:
        raise ConfigError(f"{path}: maxWatts must be above minWatts")
    return spec


def _check_address(address: str, path: str) -> None:
    """``host``, ``host:port`` or an ``http(s)://`` URL, as the Shelly client takes it."""
    text = address.strip()
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ConfigError(f"{path}: not a host or URL ({exc}): {_show(address)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ConfigError(f"{path}: expected host[:port] or an http(s) URL, got {_show(address)}")
    if any(c.isspace() for c in text) or not text.isascii():
        raise ConfigError(f"{path}: not a host or URL: {_show(address)}")


def _labels(value: Any, path: str) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or not value:
        raise ConfigError(f"{path}: expected a non-empty map of labels, got {_show(value)}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(f"{path}: label keys and values must be strings")
    return MappingProxyType(dict(value))


def parse_config(data: Any) -> MonitorConfig:
    """A MonitorConfig from the parsed YAML/JSON document (None: all defaults)."""
    if data is None:
        return MonitorConfig()
    top = _Obj(data, "")
    poll = top.number("pollIntervalSeconds", 5.0, minimum=0.1)
    timeout = top.number("timeoutSeconds", min(3.0, poll), minimum=0.05)
    gap = top.number("gapIntervals", 3.0, minimum=1.0)
    backoff = top.number("maxBackoffSeconds", max(60.0, poll), minimum=poll)
    reload_s = top.number("reloadSeconds", 30.0, minimum=1.0)
    secrets_dir = top.string("secretsDir", DEFAULT_SECRETS_DIR) or DEFAULT_SECRETS_DIR

    pub = _Obj(top.get("publish") or {}, "publish")
    try:
        policy = PublishPolicy(
            absolute_watts=pub.number("absoluteWatts", 5.0),
            relative_change=pub.number("relativeChange", 0.10),
            min_interval_seconds=pub.number("minIntervalSeconds", 15.0, minimum=0.1),
            heartbeat_seconds=pub.number("heartbeatSeconds", 30.0, minimum=0.1),
            heartbeat_jitter=pub.number("heartbeatJitter", 0.1),
        )
    except ValueError as exc:
        raise ConfigError(f"publish: {exc}") from None
    rate = pub.number("maxWritesPerSecond", 50.0)
    burst = pub.number("burst", 10.0, minimum=1.0)
    pub.done()

    nodes_raw = top.get("nodes") or {}
    if not isinstance(nodes_raw, Mapping):
        raise ConfigError(f"nodes: expected a map of node name to source, got {_show(nodes_raw)}")
    nodes = {str(name): parse_source(v, f"nodes.{name}") for name, v in nodes_raw.items()}

    selectors_raw = top.get("selectors") or []
    if not isinstance(selectors_raw, list):
        raise ConfigError(f"selectors: expected a list, got {_show(selectors_raw)}")
    selectors: list[Selector] = []
    for i, raw in enumerate(selectors_raw):
        sel = _Obj(raw, f"selectors[{i}]")
        labels = _labels(sel.get("matchLabels"), f"selectors[{i}].matchLabels")
        source = parse_source(sel.get("source"), f"selectors[{i}].source")
        sel.done()
        selectors.append(Selector(labels, source))
    top.done()
    return MonitorConfig(
        poll_interval_seconds=poll,
        timeout_seconds=timeout,
        gap_intervals=gap,
        max_backoff_seconds=backoff,
        reload_seconds=reload_s,
        secrets_dir=secrets_dir,
        publish=policy,
        max_writes_per_second=rate,
        write_burst=int(burst),
        nodes=MappingProxyType(nodes),
        selectors=tuple(selectors),
    )


def parse_config_text(text: str, where: str = "config") -> MonitorConfig:
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML/JSON: {excerpt(str(exc))}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply: {excerpt(text)}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits, a bad date
        raise ConfigError(f"{where}: unreadable value ({excerpt(str(exc))})") from None
    try:
        return parse_config(data)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_override(text: str) -> SourceSpec:
    """The node annotation's value: a JSON object shaped like a ``nodes`` entry."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"annotation is not JSON ({exc.msg}): {_show(text)}") from None
    except ValueError:  # not a JSONDecodeError: an integer longer than int() converts
        raise ConfigError(
            f"annotation is not usable JSON (a number of more than 4300 digits): {_show(text)}"
        ) from None
    except RecursionError:
        raise ConfigError(
            f"annotation is not usable JSON (nested too deeply): {_show(text)}"
        ) from None
    return parse_source(data, "annotation", allow_env=False)


def resolve_source(
    config: MonitorConfig, node: NodeInfo, annotation: str
) -> tuple[SourceSpec | None, str]:
    """Annotation override, else the file. Raises ConfigError for a bad annotation."""
    text = node.annotations.get(annotation)
    if text:
        return parse_override(text), f"annotation {annotation}"
    return config.source_for(node)


@dataclass
class ConfigStore:
    """The config file, re-read when its content changes; keeps the last good version."""

    path: str | None
    config: MonitorConfig = field(default_factory=MonitorConfig)
    digest: str = ""
    valid: bool = True

    def refresh(self) -> tuple[bool, ConfigError | None]:
        """(changed, error). On error the previous config stays in force."""
        if self.path is None:
            return False, None
        try:
            raw = Path(self.path).read_bytes()
        except OSError as exc:
            self.valid = False
            return False, ConfigError(f"{self.path}: cannot read: {exc.strerror or exc}")
        digest = hashlib.sha256(raw).hexdigest()
        if digest == self.digest:
            return False, None
        self.digest = digest
        try:
            config = parse_config_text(raw.decode("utf-8", errors="replace"), self.path)
        except ConfigError as exc:
            self.valid = False
            return False, exc
        self.config, self.valid = config, True
        return True, None


__all__ = [
    "ConfigError",
    "ConfigStore",
    "CredentialRef",
    "MonitorConfig",
    "Selector",
    "SourceSpec",
    "parse_config",
    "parse_config_text",
    "parse_override",
    "resolve_source",
]
