"""Which node reads which power source: the config file and the node annotation override.

The file (YAML or JSON, mounted from a ConfigMap) maps node names, or node label
selectors, to a source; a node's ``energy.thesis.io/power-source-config`` annotation
(a JSON object of the same shape as a ``nodes`` entry) overrides both. See
``monitor/README.md`` for the full reference. Parsing is pure and strict: unknown keys
and wrong types are errors naming the path and the offending value, so that a typo
never silently turns a plug off; every problem of a document is reported at once. The
documents are read by the project's one strict reader (:mod:`energysched.strict`) and the
file is watched with :class:`energysched.kube.files.WatchedFile`, which keeps the last
good configuration. Which kinds a source may be, and each kind's own keys and rules, come
from the source registry (:mod:`energysched_monitor.source_registry`): this module names
no kind.

Credentials are never in the file: a ``secretKey`` names a file in ``secretsDir``
(a mounted Secret, one key per plug) or ``env`` names an environment variable. An
annotation override may use ``secretKey`` only, so that whoever can annotate a node
cannot make the monitor read arbitrary files or variables.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Final, Literal

from pydantic import Field, create_model, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from energysched.kube.files import WatchedFile
from energysched.strict import (
    DocumentError,
    Problem,
    load_json,
    load_yaml,
    show,
    validate,
)
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.publish import PublishPolicy
from energysched_monitor.source_interface import (
    ConfigError,
    CredentialRef,
    CredentialsEntry,
    KindFields,
    Section,
    SharedKeys,
    SourcePlugin,
    SourceSpec,
)
from energysched_monitor.source_registry import SourceRegistry, default_registry

DEFAULT_SECRETS_DIR: Final = "/etc/energysched-monitor/secrets"
_PASSWORD = re.compile(r"\bpassword\b", re.IGNORECASE)  # not "passwords do not belong"


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
    #: The source kinds this config was read with; a node annotation is read with the same.
    kinds: SourceRegistry = field(default_factory=default_registry, compare=False, repr=False)

    @property
    def gap_seconds(self) -> float:
        return self.gap_intervals * self.poll_interval_seconds

    def poll_for(self, spec: SourceSpec | None) -> float:
        """The source's own poll interval, else at least its kind's minimum, else the file's."""
        if spec is None:
            return self.poll_interval_seconds
        if spec.poll_interval_seconds is not None:
            return spec.poll_interval_seconds
        return max(spec.plugin.min_poll_seconds or 0.0, self.poll_interval_seconds)

    def timeout_for(self, spec: SourceSpec | None) -> float:
        """The source's own timeout per request, else at least its kind's, else the file's."""
        if spec is None:
            return self.timeout_seconds
        if spec.timeout_seconds is not None:
            return spec.timeout_seconds
        return max(spec.plugin.min_timeout_seconds or 0.0, self.timeout_seconds)

    def read_deadline_for(self, spec: SourceSpec | None) -> float:
        """The safety net around one read: as many timeouts as the kind's requests in one
        read (a Redfish read may take a login, the discovery and the reading), plus 1 s."""
        requests = 3 if spec is None else spec.plugin.requests_per_read
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
#
# A source entry is composed from the registry: ``kind`` (one of its names), every
# kind's own keys, then the keys all kinds share. One composed model, not one per kind,
# so that every problem of an entry is reported at once whatever its kind says, and an
# unknown key lists every key a source may have.

_ANNOTATION: Final = {"annotation": True}  # validation context of a node annotation


_SHARED: Final = frozenset(SharedKeys.model_fields)
_TLS_KEYS: Final = frozenset({"ca_bundle", "insecure_skip_tls_verify"})


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


class _SourceEntry(Section):
    """The base of the composed entry: the rules across its keys."""

    source_kinds: ClassVar[SourceRegistry]  # the registry it was composed from

    @model_validator(mode="after")
    def _consistent(self) -> _SourceEntry:
        kinds = self.source_kinds
        values = dict(self)
        plugin = kinds.plugin(values["kind"])
        missing = [
            info.alias or to_camel(name)
            for name, info in plugin.fields.model_fields.items()
            if info.is_required() and name not in self.model_fields_set
        ]
        if missing:
            raise ValueError(f"{', '.join(missing)}: required for kind {plugin.name}")
        plugin.check(_settings(plugin, values, self.model_fields_set))
        given = self.model_fields_set - _SHARED - {"kind"}
        own = set(plugin.fields.model_fields)
        # Keys of the first kinds were never checked per kind: they stay allowed anywhere.
        tolerated = {
            k for p in kinds.plugins if not p.refuse_keys_elsewhere for k in p.fields.model_fields
        }
        for other in kinds.plugins:
            if other is plugin or not other.refuse_keys_elsewhere:
                continue
            theirs = other.fields.model_fields
            misplaced = sorted(
                theirs[k].alias or to_camel(k) for k in given & set(theirs) - own - tolerated
            )
            if misplaced:
                raise ValueError(
                    f"{', '.join(misplaced)}: only for kind {other.name}, "
                    f"got kind {show(plugin.name)}"
                )
        if _TLS_KEYS & self.model_fields_set and not plugin.tls:
            tls = [p.name for p in kinds.plugins if p.tls]
            raise ValueError(
                f"caBundle/insecureSkipTLSVerify: only for kind{'s' if len(tls) > 1 else ''} "
                f"{_joined(tls)}, got kind {show(plugin.name)}"
            )
        if values["insecure_skip_tls_verify"] and values["ca_bundle"] is not None:
            raise ValueError("give caBundle or insecureSkipTLSVerify, not both")
        if values["max_watts"] <= values["min_watts"]:
            raise ValueError(
                f"maxWatts must be above minWatts, got maxWatts {show(values['max_watts'])}"
                f" and minWatts {show(values['min_watts'])}"
            )
        return self

    def spec(self) -> SourceSpec:
        kinds = self.source_kinds
        values = dict(self)
        plugin = kinds.plugin(values["kind"])
        creds: CredentialsEntry | None = values.get("credentials")
        return SourceSpec(
            plugin=plugin,
            settings=_settings(plugin, values, self.model_fields_set),
            address=values.get("address"),
            credentials=None if creds is None else creds.ref(),
            min_watts=float(values["min_watts"]),
            max_watts=float(values["max_watts"]),
            poll_interval_seconds=_float_or_none(values["poll_interval_seconds"]),
            timeout_seconds=_float_or_none(values["timeout_seconds"]),
            ca_bundle=values["ca_bundle"],
            insecure_skip_tls_verify=values["insecure_skip_tls_verify"],
        )


def _settings(plugin: SourcePlugin[Any], values: Mapping[str, Any], given: set[str]) -> KindFields:
    """The kind's own keys of an entry, as the kind's model (already validated)."""
    names = plugin.fields.model_fields
    settings: KindFields = plugin.fields.model_construct(
        _fields_set=given & set(names), **{n: values[n] for n in names}
    )
    return settings


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


@cache
def entry_model(registry: SourceRegistry) -> type[_SourceEntry]:
    """The model of one source entry for these kinds: ``kind`` (one of their names: an
    unknown kind's message lists them), the kinds' own keys, the shared keys (in that
    order: the order an unknown key's message lists them)."""

    class _Composed(_SourceEntry):
        source_kinds: ClassVar[SourceRegistry] = registry

    fields: dict[str, Any] = {"kind": (Literal[registry.names], ...)}
    for plugin in registry.plugins:
        for name, info in plugin.fields.model_fields.items():
            # The registry checked that kinds sharing a key define it alike.
            fields.setdefault(name, _field(info, optional=True))
    for name, info in SharedKeys.model_fields.items():
        fields[name] = _field(info)
    return create_model("SourceEntry", __base__=_Composed, **fields)


def _field(info: FieldInfo, *, optional: bool = False) -> tuple[Any, FieldInfo]:
    annotation: Any = info.annotation
    if optional and info.is_required():  # required by its kind only: checked per entry
        return (annotation | None, FieldInfo.merge_field_infos(info, default=None))
    return (annotation, info)


# The defaults are the dataclasses' own, so that a file without a key, an empty file and
# no file at all mean the same (the file's heartbeatJitter default was once 0.1, not 0.2).
_POLICY: Final = PublishPolicy()
_DEFAULT: Final = MonitorConfig(kinds=SourceRegistry())  # no kinds: nothing at import


class PublishSection(Section):
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


class ConfigFile(Section):
    """The file; its ``nodes`` and ``selectors`` are typed by :func:`config_file_model`."""

    poll_interval_seconds: Annotated[float, Field(ge=0.1)] = _DEFAULT.poll_interval_seconds
    timeout_seconds: Annotated[float, Field(ge=0.05)] | None = None  # min(3, poll)
    gap_intervals: Annotated[float, Field(ge=1)] = _DEFAULT.gap_intervals
    max_backoff_seconds: Annotated[float, Field(ge=0)] | None = None  # max(60, poll)
    reload_seconds: Annotated[float, Field(ge=1)] = _DEFAULT.reload_seconds
    secrets_dir: Annotated[str, Field(min_length=1)] = _DEFAULT.secrets_dir
    publish: PublishSection = PublishSection()
    nodes: dict[str, _SourceEntry] = {}
    selectors: list[SelectorEntry] = []
    source_kinds: ClassVar[SourceRegistry]

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
            kinds=self.source_kinds,
        )


class SelectorEntry(Section):
    match_labels: Annotated[dict[str, str], Field(min_length=1)]
    source: _SourceEntry


@cache
def config_file_model(registry: SourceRegistry) -> type[ConfigFile]:
    """The file's model for these kinds (its entries from :func:`entry_model`)."""
    entry = entry_model(registry)
    selector = create_model("SelectorEntry", __base__=SelectorEntry, source=(entry, FieldInfo()))

    class _Composed(ConfigFile):
        source_kinds: ClassVar[SourceRegistry] = registry

    return create_model(
        "ConfigFile",
        __base__=_Composed,
        nodes=(dict[str, entry], FieldInfo(default={})),  # type: ignore[valid-type]
        selectors=(list[selector], FieldInfo(default=[])),  # type: ignore[valid-type]
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


def parse_config(
    data: Any, where: str = "", *, kinds: SourceRegistry | None = None
) -> MonitorConfig:
    """A MonitorConfig from the parsed YAML/JSON document (None: all defaults); its
    sources' kinds are ``kinds``' (default: the in-tree kinds)."""
    kinds = default_registry() if kinds is None else kinds
    if data is None:
        return MonitorConfig(kinds=kinds)
    try:
        return validate(config_file_model(kinds), data, where=where).config()
    except DocumentError as exc:
        raise _config_error(exc) from None


def _parse_document(
    data: bytes | str, where: str, kinds: SourceRegistry | None = None
) -> MonitorConfig:
    try:
        doc = load_yaml(data, where)  # YAML is a superset of JSON
    except DocumentError as exc:
        raise _config_error(exc) from None
    return parse_config(doc, where, kinds=kinds)


def parse_config_text(
    text: str, where: str = "config", *, kinds: SourceRegistry | None = None
) -> MonitorConfig:
    return _parse_document(text, where, kinds)


def parse_override(text: str, *, kinds: SourceRegistry | None = None) -> SourceSpec:
    """The node annotation's value: a JSON object shaped like a ``nodes`` entry, without
    ``env`` credentials or paths (``powercapRoot``, ``caBundle``)."""
    model = entry_model(default_registry() if kinds is None else kinds)
    try:
        doc = load_json(text, "annotation")
        entry = validate(model, doc, prefix="annotation", context=_ANNOTATION)
    except DocumentError as exc:
        raise _config_error(exc) from None
    return entry.spec()


def resolve_source(
    config: MonitorConfig, node: NodeInfo, annotation: str
) -> tuple[SourceSpec | None, str]:
    """Annotation override (read with the config's kinds), else the file. Raises
    ConfigError for a bad annotation."""
    text = node.annotations.get(annotation)
    if text:
        return parse_override(text, kinds=config.kinds), f"annotation {annotation}"
    return config.source_for(node)


class ConfigStore:
    """The config file, re-read when its content changes; keeps the last good version.

    ``kinds``: the source kinds the file may use (default: the in-tree kinds)."""

    def __init__(
        self,
        path: str | None,
        config: MonitorConfig | None = None,
        *,
        kinds: SourceRegistry | None = None,
    ) -> None:
        self.path = path
        kinds = default_registry() if kinds is None else kinds
        self.config = MonitorConfig(kinds=kinds) if config is None else config
        #: False while the file is unreadable or its current content is invalid.
        self.valid = True
        self._parsed = True  # the file's current content parsed
        self._file = (
            None
            if path is None
            else WatchedFile(Path(path), lambda data: _parse_document(data, path, kinds))
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
    "DEFAULT_SECRETS_DIR",
    "ConfigError",
    "ConfigStore",
    "CredentialRef",
    "MonitorConfig",
    "Selector",
    "SharedKeys",
    "SourceSpec",
    "config_file_model",
    "entry_model",
    "parse_config",
    "parse_config_text",
    "parse_override",
    "resolve_source",
]
