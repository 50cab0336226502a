"""Which node reads which power source: the config file and the node annotation override.

The file (YAML or JSON, mounted from a ConfigMap) maps node names, or node label
selectors, to a source; a node's ``energy.thesis.io/power-source-config`` annotation
(a JSON object of the same shape as a ``nodes`` entry) overrides both. See
``monitor/README.md`` for the full reference. Parsing is pure and strict: unknown keys
and wrong types are errors naming the path and the offending value, so that a typo
never silently turns a plug off; every problem of a document is reported at once. The
documents are read by the project's one strict reader (:mod:`energysched.strict`) and the
file is watched with :class:`energysched.kube.files.WatchedFile`, which keeps the last
good configuration.

Credentials are never in the file: a ``secretKey`` names a file in ``secretsDir``
(a mounted Secret, one key per plug) or ``env`` names an environment variable. An
annotation override may use ``secretKey`` only, so that whoever can annotate a node
cannot make the monitor read arbitrary files or variables.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic.alias_generators import to_camel

from energysched.kube.files import WatchedFile
from energysched.strict import (
    DocumentError,
    Problem,
    StrictModel,
    load_json,
    load_yaml,
    show,
    validate,
)
from energysched_bench.power import ShellyComponent as Component
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.publish import PublishPolicy
from energysched_monitor.readings import PhysicalRange, SourceKind
from energysched_monitor.secret import Secret

DEFAULT_SECRETS_DIR: Final = "/etc/energysched-monitor/secrets"
RedfishAuth = Literal["session", "basic"]
RedfishSchema = Literal["auto", "power", "environmentMetrics"]
#: A BMC takes 1-5 s per request and serves many clients: poll it gently by default.
REDFISH_POLL_SECONDS: Final = 10.0
REDFISH_TIMEOUT_SECONDS: Final = 10.0
#: The keys each kind alone uses; any of them with another kind is an error (a typo of
#: the kind must not silently read a different meter).
_KIND_KEYS: Final[dict[str, frozenset[str]]] = {
    "redfish": frozenset({"chassis", "auth", "schema"}),
    "prometheus": frozenset(
        {
            "query",
            "timestamp_query",
            "series_label",
            "series_value",
            "node_label",
            "max_sample_age_seconds",
        }
    ),
}
_TLS_KINDS: Final = frozenset({"redfish", "prometheus"})
_SECRET_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # a Secret's data key
_PASSWORD = re.compile(r"\bpassword\b", re.IGNORECASE)  # not "passwords do not belong"


class ConfigError(DocumentError):
    """An invalid configuration or annotation, or a credential that cannot be read.

    A DocumentError (every problem, each ``path: message, got value``); a plain
    message is one problem without a path."""

    def __init__(self, problems: str | Iterable[Problem], where: str = "") -> None:
        super().__init__([Problem("", problems)] if isinstance(problems, str) else problems, where)


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
    poll_interval_seconds: float | None = None  # this source's own; None: the file's
    timeout_seconds: float | None = None  # per request; None: the file's (redfish: 10 s)
    ca_bundle: str | None = None  # redfish, prometheus: PEM file to verify the server with
    insecure_skip_tls_verify: bool = False  # redfish, prometheus: no TLS verification
    chassis: str | None = None  # redfish: Chassis id; None: the first with a power reading
    auth: RedfishAuth = "session"  # redfish: a session (X-Auth-Token) or Basic on each request
    schema: RedfishSchema = "auto"  # redfish: which power resource
    query: str | None = None  # prometheus: one series per node, all nodes at once
    timestamp_query: str | None = None  # prometheus: default timestamp(<query>)
    series_label: str = "node"  # prometheus: the series label naming the node
    series_value: str = "$node"  # prometheus: its value for a node ($node: see node_label)
    node_label: str | None = None  # prometheus: $node is this node label's value, not the name
    max_sample_age_seconds: float = 60.0  # prometheus: an older sample is no reading

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
        if self.kind == "redfish":
            parts.append(f"auth={self.auth} schema={self.schema}")
            if self.chassis:
                parts.append(f"chassis={self.chassis}")
        if self.kind == "prometheus":
            parts.append(f"query={self.query!r} {self.series_label}={self.series_value!r}")
        if self.insecure_skip_tls_verify:
            parts.append("INSECURE-skip-tls-verify")
        elif self.ca_bundle:
            parts.append(f"caBundle={self.ca_bundle}")
        return " ".join(parts)

    def series_value_for(self, node: NodeInfo) -> str | None:
        """prometheus: the value of ``series_label`` that is this node's series (None if the
        node lacks the ``node_label`` it is named by)."""
        name = node.name if self.node_label is None else node.labels.get(self.node_label)
        if name is None:
            return None
        return Template(self.series_value).safe_substitute(node=name)


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

    def poll_for(self, spec: SourceSpec | None) -> float:
        """The source's own poll interval, else the kind's default, else the file's."""
        if spec is not None and spec.poll_interval_seconds is not None:
            return spec.poll_interval_seconds
        if spec is not None and spec.kind == "redfish":
            return max(REDFISH_POLL_SECONDS, self.poll_interval_seconds)
        return self.poll_interval_seconds

    def timeout_for(self, spec: SourceSpec | None) -> float:
        if spec is not None and spec.timeout_seconds is not None:
            return spec.timeout_seconds
        if spec is not None and spec.kind == "redfish":
            return max(REDFISH_TIMEOUT_SECONDS, self.timeout_seconds)
        return self.timeout_seconds

    def read_deadline_for(self, spec: SourceSpec | None) -> float:
        """The safety net around one read: a Redfish read may take a login, the discovery
        (service root, Chassis, the chassis) and the reading, one request after another."""
        requests = 5 if spec is not None and spec.kind == "redfish" else 3
        return self.timeout_for(spec) * requests + 1

    def gap_seconds_for(self, spec: SourceSpec | None) -> float:
        return self.gap_intervals * self.poll_for(spec)

    def source_for(self, node: NodeInfo) -> tuple[SourceSpec | None, str]:
        """The node's source from the file (no annotation): by name, then selectors."""
        if node.name in self.nodes:
            return self.nodes[node.name], f"config nodes.{node.name}"
        for index, selector in enumerate(self.selectors):
            if selector.matches(node.labels):
                return selector.source, f"config selectors[{index}]"
        return None, "none"


# -- the file and the annotation as written ------------------------------------------
#
# pydantic models of the documents (camelCase keys, strict types, unknown keys are
# errors), converted below into the dataclasses the rest of the monitor uses. Every
# problem of a document is reported at once, each as ``path: message, got value``.

_ANNOTATION: Final = {"annotation": True}  # validation context of a node annotation


def _in_annotation(info: ValidationInfo) -> bool:
    return isinstance(info.context, Mapping) and bool(info.context.get("annotation"))


class _Section(StrictModel):
    @model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        """``key: null`` (e.g. ``nodes:`` with every entry commented out) means the
        default, as it always has; an unknown key stays, to be reported as unknown."""
        if isinstance(data, Mapping):
            known = {f.alias or name for name, f in cls.model_fields.items()}
            return {k: v for k, v in data.items() if not (v is None and k in known)}
        return data


class CredentialsEntry(_Section):
    username: Annotated[str, Field(min_length=1)] = "admin"
    secret_key: Annotated[str, Field(min_length=1)] | None = None
    env: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_password(cls, data: Any) -> Any:
        # Before anything else, and without the value: it is a secret.
        if isinstance(data, Mapping) and "password" in data:
            raise ValueError("passwords do not belong in the config; use secretKey or env")
        return data

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value:  # neither Basic (RFC 7617) nor Digest can carry it
            raise ValueError(f"must not contain ':', got {show(value)}")
        return value

    @field_validator("secret_key")
    @classmethod
    def _key_name(cls, value: str | None) -> str | None:
        if value is not None and not _SECRET_KEY.match(value):
            raise ValueError(
                f"not a Secret key name (letters, digits, '-', '_', '.'), got {show(value)}"
            )
        return value

    @field_validator("env")
    @classmethod
    def _env_outside_annotations(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Whoever can annotate a node must not make the monitor read its variables.
        if _in_annotation(info):
            raise ValueError("not allowed in a node annotation; use secretKey")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialsEntry:
        if (self.secret_key is None) == (self.env is None):
            raise ValueError("give exactly one of secretKey or env")
        return self


class SourceEntry(_Section):
    kind: SourceKind
    address: Annotated[str, Field(min_length=1)] | None = None
    component: Component = "auto"
    credentials: CredentialsEntry | None = None
    min_watts: Annotated[float, Field(ge=0)] = 0.0
    max_watts: Annotated[float, Field(ge=0)] = 3680.0
    offset_watts: Annotated[float, Field(ge=0)] = 0.0
    powercap_root: Annotated[str, Field(min_length=1)] = "/sys/class/powercap"
    gpus: list[Annotated[int, Field(ge=0)]] | None = None
    poll_interval_seconds: Annotated[float, Field(ge=0.1)] | None = None
    timeout_seconds: Annotated[float, Field(ge=0.05)] | None = None
    ca_bundle: Annotated[str, Field(min_length=1)] | None = None
    insecure_skip_tls_verify: bool = Field(default=False, alias="insecureSkipTLSVerify")
    chassis: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    auth: RedfishAuth = "session"
    schema_: RedfishSchema = Field(default="auto", alias="schema")
    query: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    timestamp_query: Annotated[str, Field(min_length=1, max_length=4096)] | None = None
    series_label: Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")] = "node"
    series_value: Annotated[str, Field(min_length=1, max_length=253)] = "$node"
    node_label: Annotated[str, Field(min_length=1, max_length=316)] | None = None
    max_sample_age_seconds: Annotated[float, Field(gt=0)] = 60.0

    @field_validator("credentials", mode="before")
    @classmethod
    def _credentials_object(cls, value: Any) -> Any:
        if value is not None and not isinstance(value, Mapping):  # perhaps the password itself
            raise ValueError("must be an object with secretKey or env (the value is not shown)")
        return value

    @field_validator("address")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None:
            _check_address(value)
        return value

    @field_validator("powercap_root", "ca_bundle")
    @classmethod
    def _path_outside_annotations(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Whoever can annotate a node must not make the monitor read arbitrary paths.
        if _in_annotation(info) and value is not None:
            raise ValueError("not allowed in a node annotation")
        return value

    @field_validator("chassis")
    @classmethod
    def _chassis_id(cls, value: str | None) -> str | None:
        # A path segment of the BMC's URL: no '/', '?', '#' or spaces that would change it.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9._~:@!$&'()*+,;=-]+", value):
            raise ValueError(f"not a Chassis id (one URL path segment), got {show(value)}")
        return value

    @field_validator("series_value")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            names = Template(value).get_identifiers()
        except ValueError as exc:
            raise ValueError(f"not a template ({exc}), got {show(value)}") from None
        if not Template(value).is_valid() or set(names) - {"node"}:
            raise ValueError(f"only $node may be substituted, got {show(value)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SourceEntry:
        if self.kind == "shelly" and self.address is None:
            raise ValueError("a shelly source needs an address")
        http = ("http://", "https://")
        if self.kind in ("redfish", "prometheus") and (
            self.address is None or not self.address.strip().startswith(http)
        ):
            raise ValueError(
                f"a {self.kind} source needs an address that is an http(s) URL, "
                f"got {show(self.address)}"
            )
        if self.kind == "prometheus" and self.query is None:
            raise ValueError("a prometheus source needs a query")
        for kind, keys in _KIND_KEYS.items():
            misplaced = sorted(
                to_camel(k) for k in (self.model_fields_set & keys) if self.kind != kind
            )
            if misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)}: only for kind {kind}, got kind {show(self.kind)}"
                )
        tls = {"ca_bundle", "insecure_skip_tls_verify"} & self.model_fields_set
        if tls and self.kind not in _TLS_KINDS:
            raise ValueError(
                f"caBundle/insecureSkipTLSVerify: only for kinds redfish and "
                f"prometheus, got kind {show(self.kind)}"
            )
        if self.insecure_skip_tls_verify and self.ca_bundle is not None:
            raise ValueError("give caBundle or insecureSkipTLSVerify, not both")
        if self.max_watts <= self.min_watts:
            raise ValueError(
                f"maxWatts must be above minWatts, got maxWatts {show(self.max_watts)}"
                f" and minWatts {show(self.min_watts)}"
            )
        return self

    def spec(self) -> SourceSpec:
        creds = self.credentials
        return SourceSpec(
            kind=self.kind,
            address=self.address,
            component=self.component,
            credentials=(
                None
                if creds is None
                else CredentialRef(creds.username, creds.secret_key, creds.env)
            ),
            min_watts=float(self.min_watts),
            max_watts=float(self.max_watts),
            offset_watts=float(self.offset_watts),
            powercap_root=self.powercap_root,
            gpus=None if self.gpus is None else tuple(self.gpus),
            poll_interval_seconds=_float_or_none(self.poll_interval_seconds),
            timeout_seconds=_float_or_none(self.timeout_seconds),
            ca_bundle=self.ca_bundle,
            insecure_skip_tls_verify=self.insecure_skip_tls_verify,
            chassis=self.chassis,
            auth=self.auth,
            schema=self.schema_,
            query=self.query,
            timestamp_query=self.timestamp_query,
            series_label=self.series_label,
            series_value=self.series_value,
            node_label=self.node_label,
            max_sample_age_seconds=float(self.max_sample_age_seconds),
        )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _check_address(address: str) -> None:
    """``host``, ``host:port`` or an ``http(s)://`` URL, as the Shelly client takes it."""
    text = address.strip()
    url = text if "://" in text else f"http://{text}"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise ValueError(f"not a host or URL ({exc}), got {show(address)}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise ValueError(f"expected host[:port] or an http(s) URL, got {show(address)}")
    if any(c.isspace() for c in text) or not text.isascii():
        raise ValueError(f"not a host or URL, got {show(address)}")


# The defaults are the dataclasses' own, so that a file without a key, an empty file and
# no file at all mean the same (the file's heartbeatJitter default was once 0.1, not 0.2).
_POLICY: Final = PublishPolicy()
_DEFAULT: Final = MonitorConfig()


class PublishSection(_Section):
    absolute_watts: Annotated[float, Field(ge=0)] = _POLICY.absolute_watts
    relative_change: Annotated[float, Field(ge=0)] = _POLICY.relative_change
    min_interval_seconds: Annotated[float, Field(ge=0.1)] = _POLICY.min_interval_seconds
    heartbeat_seconds: Annotated[float, Field(ge=0.1)] = _POLICY.heartbeat_seconds
    heartbeat_jitter: Annotated[float, Field(ge=0)] = _POLICY.heartbeat_jitter
    max_writes_per_second: Annotated[float, Field(ge=0)] = _DEFAULT.max_writes_per_second
    burst: Annotated[float, Field(ge=1)] = _DEFAULT.write_burst

    @model_validator(mode="after")
    def _policy_is_valid(self) -> PublishSection:
        try:
            self.policy()
        except ValueError as exc:  # PublishPolicy's own rules, reported as ``publish: ...``
            raise ValueError(
                f"{exc}, got minIntervalSeconds {show(self.min_interval_seconds)}, "
                f"heartbeatSeconds {show(self.heartbeat_seconds)}, "
                f"heartbeatJitter {show(self.heartbeat_jitter)}"
            ) from None
        return self

    def policy(self) -> PublishPolicy:
        return PublishPolicy(
            absolute_watts=float(self.absolute_watts),
            relative_change=float(self.relative_change),
            min_interval_seconds=float(self.min_interval_seconds),
            heartbeat_seconds=float(self.heartbeat_seconds),
            heartbeat_jitter=float(self.heartbeat_jitter),
        )


class SelectorEntry(_Section):
    match_labels: Annotated[dict[str, str], Field(min_length=1)]
    source: SourceEntry


class ConfigFile(_Section):
    poll_interval_seconds: Annotated[float, Field(ge=0.1)] = _DEFAULT.poll_interval_seconds
    timeout_seconds: Annotated[float, Field(ge=0.05)] | None = None  # min(3, poll)
    gap_intervals: Annotated[float, Field(ge=1)] = _DEFAULT.gap_intervals
    max_backoff_seconds: Annotated[float, Field(ge=0)] | None = None  # max(60, poll)
    reload_seconds: Annotated[float, Field(ge=1)] = _DEFAULT.reload_seconds
    secrets_dir: Annotated[str, Field(min_length=1)] = _DEFAULT.secrets_dir
    publish: PublishSection = PublishSection()
    nodes: dict[str, SourceEntry] = {}
    selectors: list[SelectorEntry] = []

    @model_validator(mode="after")
    def _backoff_not_below_poll(self) -> ConfigFile:
        backoff = self.max_backoff_seconds
        if backoff is not None and backoff < self.poll_interval_seconds:
            raise ValueError(
                f"maxBackoffSeconds: must be >= pollIntervalSeconds "
                f"({show(self.poll_interval_seconds)}), got {show(backoff)}"
            )
        return self

    def config(self) -> MonitorConfig:
        poll = float(self.poll_interval_seconds)
        timeout, backoff = self.timeout_seconds, self.max_backoff_seconds
        return MonitorConfig(
            poll_interval_seconds=poll,
            timeout_seconds=(
                min(_DEFAULT.timeout_seconds, poll) if timeout is None else float(timeout)
            ),
            gap_intervals=float(self.gap_intervals),
            max_backoff_seconds=(
                max(_DEFAULT.max_backoff_seconds, poll) if backoff is None else float(backoff)
            ),
            reload_seconds=float(self.reload_seconds),
            secrets_dir=self.secrets_dir,
            publish=self.publish.policy(),
            max_writes_per_second=float(self.publish.max_writes_per_second),
            write_burst=int(self.publish.burst),
            nodes=MappingProxyType({name: e.spec() for name, e in self.nodes.items()}),
            selectors=tuple(
                Selector(MappingProxyType(dict(s.match_labels)), s.source.spec())
                for s in self.selectors
            ),
        )


def _config_error(exc: DocumentError) -> ConfigError:
    return ConfigError([_hide_password(p) for p in exc.problems], exc.where)


def _hide_password(problem: Problem) -> Problem:
    """No shown value or excerpt with the word ``password`` in it: a value shown where an
    object belongs, or a YAML/JSON excerpt around a syntax error, may hold one."""
    if not _PASSWORD.search(problem.message):
        return problem
    if ", got " in problem.message:
        head = problem.message.split(", got ", 1)[0]
        return Problem(problem.path, f"{head}, got a value with a password in it (not shown)")
    head = problem.message.split(":", 1)[0]  # "not valid YAML: <excerpt>"
    return Problem(problem.path, f"{head} (not shown: the text has a password in it)")


def parse_config(data: Any, where: str = "") -> MonitorConfig:
    """A MonitorConfig from the parsed YAML/JSON document (None: all defaults)."""
    if data is None:
        return MonitorConfig()
    try:
        return validate(ConfigFile, data, where=where).config()
    except DocumentError as exc:
        raise _config_error(exc) from None


def _parse_document(data: bytes | str, where: str) -> MonitorConfig:
    try:
        doc = load_yaml(data, where)  # YAML is a superset of JSON
    except DocumentError as exc:
        raise _config_error(exc) from None
    return parse_config(doc, where)


def parse_config_text(text: str, where: str = "config") -> MonitorConfig:
    return _parse_document(text, where)


def parse_override(text: str) -> SourceSpec:
    """The node annotation's value: a JSON object shaped like a ``nodes`` entry, without
    ``env`` credentials or ``powercapRoot``."""
    try:
        doc = load_json(text, "annotation")
        entry = validate(SourceEntry, doc, prefix="annotation", context=_ANNOTATION)
    except DocumentError as exc:
        raise _config_error(exc) from None
    return entry.spec()


def resolve_source(
    config: MonitorConfig, node: NodeInfo, annotation: str
) -> tuple[SourceSpec | None, str]:
    """Annotation override, else the file. Raises ConfigError for a bad annotation."""
    text = node.annotations.get(annotation)
    if text:
        return parse_override(text), f"annotation {annotation}"
    return config.source_for(node)


class ConfigStore:
    """The config file, re-read when its content changes; keeps the last good version."""

    def __init__(self, path: str | None, config: MonitorConfig | None = None) -> None:
        self.path = path
        self.config = MonitorConfig() if config is None else config
        #: False while the file is unreadable or its current content is invalid.
        self.valid = True
        self._parsed = True  # the file's current content parsed
        self._file = (
            None
            if path is None
            else WatchedFile(Path(path), lambda data: _parse_document(data, path))
        )

    def refresh(self) -> tuple[bool, ConfigError | None]:
        """(changed, error). On error the previous config stays in force; an invalid
        content is reported once, an unreadable file on every refresh."""
        if self._file is None:
            return False, None
        try:
            config = self._file.poll()
        except ConfigError as exc:
            self._parsed = self.valid = False
            return False, exc
        if self._file.unreadable is not None:
            self.valid = False
            return False, ConfigError(f"cannot read {self._file.unreadable}")
        self.valid = self._parsed  # readable again: as good as its (unchanged) content
        if config is None:
            return False, None
        self.config, self._parsed, self.valid = config, True, True
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
