"""What a power-source kind declares, and what its module may use (the source interface).

A kind (``shelly``, ``rapl``, ``redfish``, ...) is one module that defines ``PLUGIN =
SourcePlugin(name, fields, build, ...)``:

* ``fields``: a :class:`KindFields` model of the keys the kind takes in a config entry
  or a node annotation (camelCase as written, strict types). A key's own rules go in its
  type (``Annotated[..., Field(...), AfterValidator(...)]``), because the config file's
  entry model is composed from every kind's fields and decorators would not carry over;
  rules across keys go in ``check``. The keys every kind shares (``kind``, ``minWatts``,
  ``maxWatts``, ``pollIntervalSeconds``, ``timeoutSeconds``, ``caBundle``,
  ``insecureSkipTLSVerify``) are the config file's; a kind that talks to a device takes
  ``address: Address | None`` and ``credentials: Credentials`` from here.
* ``build(spec, fields, ctx)``: the :class:`~energysched_monitor.readings.PowerSource`
  for one node, or :class:`ConfigError` if it cannot be built (an unreadable secret, a
  kind served by another mode).

The registry (:mod:`energysched_monitor.source_registry`) lists the in-tree kinds; the
config file (:mod:`energysched_monitor.config`) asks it for the per-kind part of an entry.
Nothing here does I/O except :meth:`CredentialRef.resolve` (reading a mounted Secret).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final, Generic, TypeVar
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from energysched.strict import DocumentError, Problem, StrictModel, show
from energysched_monitor.interfaces import ClusterView
from energysched_monitor.readings import PhysicalRange, PowerSource, SourceKind
from energysched_monitor.secret import Secret

_SECRET_KEY = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # a Secret's data key


class ConfigError(DocumentError):
    """An invalid configuration or annotation, or a credential that cannot be read.

    A DocumentError (every problem, each ``path: message, got value``); a plain
    message is one problem without a path."""

    def __init__(self, problems: str | Iterable[Problem], where: str = "") -> None:
        super().__init__([Problem("", problems)] if isinstance(problems, str) else problems, where)


def in_annotation(info: ValidationInfo) -> bool:
    """Whether the document being validated is a node annotation (whoever can annotate a
    node must not make the monitor read arbitrary files, paths or variables)."""
    return isinstance(info.context, Mapping) and bool(info.context.get("annotation"))


class Section(StrictModel):
    """A section of the monitor's documents: strict, and ``key: null`` is the default."""

    @model_validator(mode="before")
    @classmethod
    def _null_is_the_default(cls, data: Any) -> Any:
        """``key: null`` (e.g. ``nodes:`` with every entry commented out) means the
        default, as it always has; an unknown key stays, to be reported as unknown."""
        if isinstance(data, Mapping):
            known = {f.alias or name for name, f in cls.model_fields.items()}
            return {k: v for k, v in data.items() if not (v is None and k in known)}
        return data


# -- credentials -----------------------------------------------------------------------


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


class CredentialsEntry(Section):
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
        if in_annotation(info):
            raise ValueError("not allowed in a node annotation; use secretKey")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> CredentialsEntry:
        if (self.secret_key is None) == (self.env is None):
            raise ValueError("give exactly one of secretKey or env")
        return self

    def ref(self) -> CredentialRef:
        return CredentialRef(self.username, self.secret_key, self.env)


# -- the keys a kind may share ---------------------------------------------------------


def check_address(address: str) -> str:
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
    return address


def _credentials_object(value: Any) -> Any:
    if value is not None and not isinstance(value, Mapping):  # perhaps the password itself
        raise ValueError("must be an object with secretKey or env (the value is not shown)")
    return value


def _not_in_annotation(value: Any, info: ValidationInfo) -> Any:
    # Whoever can annotate a node must not make the monitor read arbitrary paths.
    if in_annotation(info):
        raise ValueError("not allowed in a node annotation")
    return value


#: The device's address: ``host[:port]`` or an ``http(s)://`` URL (use as ``Address | None``).
Address = Annotated[str, Field(min_length=1), AfterValidator(check_address)]
#: Where the password comes from (a Secret key or, outside annotations, a variable).
Credentials = Annotated[CredentialsEntry | None, BeforeValidator(_credentials_object)]
#: Put in a key's type to refuse it in a node annotation (a path the monitor would read).
NotInAnnotation: Final = AfterValidator(_not_in_annotation)


def require_address(kind: SourceKind, address: str | None) -> None:
    if address is None:
        raise ValueError(f"a {kind} source needs an address")


def require_url(kind: SourceKind, address: str | None) -> None:
    if address is None or not address.strip().startswith(("http://", "https://")):
        raise ValueError(
            f"a {kind} source needs an address that is an http(s) URL, got {show(address)}"
        )


class KindFields(Section):
    """The keys one kind takes (subclass it; the base takes none)."""


F = TypeVar("F", bound=KindFields)


class SharedKeys(KindFields):
    """The keys every kind takes, the config file's own: a kind does not declare them."""

    min_watts: Annotated[float, Field(ge=0)] = 0.0
    max_watts: Annotated[float, Field(ge=0)] = 3680.0
    poll_interval_seconds: Annotated[float, Field(ge=0.1)] | None = None
    timeout_seconds: Annotated[float, Field(ge=0.05)] | None = None
    ca_bundle: Annotated[str, Field(min_length=1), NotInAnnotation] | None = None
    insecure_skip_tls_verify: bool = Field(default=False, alias="insecureSkipTLSVerify")


# -- what the config makes of an entry, and what a builder gets ------------------------


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What a builder needs beyond the entry: the node, the file's settings, the cluster."""

    node: str
    secrets_dir: str
    timeout_seconds: float  # per request: the source's own, else its kind's, else the file's
    view: ClusterView | None = None  # the model mode's cluster caches
    environ: Mapping[str, str] | None = None  # for ``credentials: {env: ...}``

    def password(self, spec: SourceSpec) -> Secret | None:
        """The source's password (ConfigError if it cannot be read), None without one."""
        creds = spec.credentials
        return None if creds is None else creds.resolve(self.secrets_dir, self.environ)


def _no_check(fields: KindFields) -> None:
    return None


@dataclass(frozen=True, slots=True)
class SourcePlugin(Generic[F]):
    """One kind of power source: its name, its keys, how to build it."""

    name: SourceKind
    fields: type[F]
    build: Callable[[SourceSpec, F, BuildContext], PowerSource]
    #: Rules across the kind's keys (ValueError with the message), e.g. a required address.
    check: Callable[[F], None] = _no_check
    #: The log description after the kind; default: the address and where the password is.
    describe: Callable[[SourceSpec, F], list[str]] | None = None
    #: Whether it talks TLS to a server: only then are caBundle/insecureSkipTLSVerify allowed.
    tls: bool = False
    #: Its keys are refused on an entry of another kind (a typo of the kind must not silently
    #: read a different meter). False only for the first four kinds: their keys were never
    #: checked per kind, so configs that carry, say, ``gpus`` on a shelly entry keep working.
    refuse_keys_elsewhere: bool = True
    #: A slow meter (a BMC): polled no more often, and given at least this long per request,
    #: unless the source's own pollIntervalSeconds/timeoutSeconds say otherwise.
    min_poll_seconds: float | None = None
    min_timeout_seconds: float | None = None
    #: Requests one read may take one after another (a first read that discovers the
    #: device): the read's deadline is that many timeouts plus a second.
    requests_per_read: int = 3


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One node's source as configured: the shared keys, and the kind's own ``settings``."""

    plugin: SourcePlugin[Any]
    settings: KindFields
    address: str | None = None
    credentials: CredentialRef | None = None
    min_watts: float = 0.0
    max_watts: float = 3680.0
    poll_interval_seconds: float | None = None  # this source's own; None: the file's
    timeout_seconds: float | None = None  # per request; None: the kind's, else the file's
    ca_bundle: str | None = None  # a PEM file to verify the server with
    insecure_skip_tls_verify: bool = False  # no TLS verification

    @property
    def kind(self) -> SourceKind:
        return self.plugin.name

    @property
    def physical_range(self) -> PhysicalRange:
        return PhysicalRange(self.min_watts, self.max_watts)

    def settings_as(self, fields: type[F]) -> F:
        """The kind's own settings, typed (TypeError if this spec is of another kind)."""
        if not isinstance(self.settings, fields):
            raise TypeError(f"a {self.kind} source has no {fields.__name__}")
        return self.settings

    def describe(self) -> str:
        """For logs: everything but secrets (a credential shows only where it comes from)."""
        plugin = self.plugin
        parts = [self.kind]
        parts += (
            access_parts(self) if plugin.describe is None else plugin.describe(self, self.settings)
        )
        if self.insecure_skip_tls_verify:
            parts.append("INSECURE-skip-tls-verify")
        elif self.ca_bundle:
            parts.append(f"caBundle={self.ca_bundle}")
        return " ".join(parts)


def address_parts(spec: SourceSpec) -> list[str]:
    return [spec.address] if spec.address else []


def credentials_parts(spec: SourceSpec) -> list[str]:
    creds = spec.credentials
    if creds is None:
        return []
    where = f"secretKey={creds.secret_key}" if creds.secret_key else f"env={creds.env}"
    return [f"user={creds.username} {where}"]


def access_parts(spec: SourceSpec) -> list[str]:
    """The address and where the password comes from (the default description)."""
    return address_parts(spec) + credentials_parts(spec)


__all__ = [
    "Address",
    "BuildContext",
    "ConfigError",
    "CredentialRef",
    "Credentials",
    "CredentialsEntry",
    "KindFields",
    "NotInAnnotation",
    "Section",
    "SharedKeys",
    "SourcePlugin",
    "SourceSpec",
    "access_parts",
    "address_parts",
    "check_address",
    "credentials_parts",
    "in_annotation",
    "require_address",
    "require_url",
]
