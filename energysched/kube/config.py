"""Load cluster access from a kubeconfig file or the in-cluster service account.

A malformed kubeconfig never surfaces as a bare KeyError or a TLS traceback: every
problem is a :class:`KubeConfigError` that names the file and the offending field.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from energysched.kube.credentials import (
    EXEC_API_VERSIONS,
    CredentialError,
    ExecToken,
    FileToken,
    StaticToken,
    TokenSource,
)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeConfigError(Exception):
    """The kubeconfig (or in-cluster config) is missing, malformed or unusable."""


@dataclass(frozen=True)
class ClusterAccess:
    """Everything needed to talk to one API server."""

    server: str
    ssl_context: ssl.SSLContext | None
    token: str | None = None
    source: str = ""
    #: Where the bearer token comes from when it can change (a token file, an
    #: exec plugin); None: ``token`` as given, for good.
    token_source: TokenSource | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def tokens(self) -> TokenSource:
        return self.token_source if self.token_source is not None else StaticToken(self.token)


def _mapping(value: Any, where: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise KubeConfigError(f"{path}: {where} must be a mapping, got {value!r:.80}")
    return value


def _named(entries: Any, name: str, kind: str, path: str) -> Mapping[str, Any]:
    if not isinstance(entries, list):
        raise KubeConfigError(f"{path}: '{kind}s' must be a list")
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            return _mapping(entry.get(kind), f"{kind} {name!r}", path)
    raise KubeConfigError(f"{path}: no {kind} named {name!r}")


def resolve_path(file: Any, base: Path) -> Path:
    """A path from the kubeconfig: ``~`` expanded, relative to the kubeconfig's folder."""
    return base / Path(str(file)).expanduser()  # an absolute right side replaces base


def _pem(section: Mapping[str, Any], key: str, base: Path, path: str) -> bytes | None:
    """The PEM bytes of ``key-data`` (base64) or of the file named by ``key``."""
    data = section.get(f"{key}-data")
    if data:
        try:
            # Go's decoder (kubectl's) skips line breaks in folded base64; so do we.
            return base64.b64decode("".join(str(data).split()), validate=True)
        except ValueError as exc:
            raise KubeConfigError(f"{path}: {key}-data is not valid base64") from exc
    file = section.get(key)
    if file:
        file_path = resolve_path(file, base)
        try:
            return file_path.read_bytes()
        except OSError as exc:
            raise KubeConfigError(f"{path}: {key} {str(file_path)!r}: {exc.strerror}") from exc
    return None


def _ssl_context(
    cluster: Mapping[str, Any], user: Mapping[str, Any], base: Path, path: str
) -> ssl.SSLContext | None:
    server = str(cluster.get("server", ""))
    if not server.startswith("https://"):
        return None
    ca = _pem(cluster, "certificate-authority", base, path)
    cert = _pem(user, "client-certificate", base, path)
    key = _pem(user, "client-key", base, path)
    if bool(cert) != bool(key):
        have, missing = (
            ("client-certificate", "client-key") if cert else ("client-key", "client-certificate")
        )
        raise KubeConfigError(f"{path}: user has {have} but no {missing} (or {missing}-data)")
    try:
        # A cluster CA is the only trust root (as in client-go), not an addition
        # to the system's public CAs.
        ctx = ssl.create_default_context(cadata=ca.decode() if ca else None)
        if cluster.get("insecure-skip-tls-verify"):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert and key:
            # ssl can only load a client key pair from files: write them to a
            # private temporary directory that is gone when the load returns.
            with tempfile.TemporaryDirectory(prefix="energysched-") as tmp:
                cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
                cert_file.write_bytes(cert)
                key_file.touch(mode=0o600)
                key_file.write_bytes(key)
                ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, ValueError) as exc:
        raise KubeConfigError(f"{path}: unusable TLS material: {exc}") from exc
    return ctx


@dataclass(frozen=True)
class KubeConfigEntry:
    """One context of a kubeconfig file, checked and with its token resolved.

    Shared by :func:`load_kubeconfig` (our client) and the operator's kopf
    login, so both accept and reject exactly the same files.
    """

    file: Path
    server: str
    cluster: Mapping[str, Any]
    user: Mapping[str, Any]
    namespace: str
    token: str | None
    #: The token's source when it can change (tokenFile, exec plugin).
    token_source: TokenSource | None = None


def read_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> KubeConfigEntry:
    """Read a kubeconfig file; ``context`` defaults to its current-context."""
    file = Path(path).expanduser()
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {str(file)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise KubeConfigError(f"kubeconfig {str(file)!r} is not UTF-8 text: {exc}") from exc
    except yaml.YAMLError as exc:
        raise KubeConfigError(f"kubeconfig {str(file)!r} is not valid YAML: {exc}") from exc
    doc = _mapping(raw, "the document", str(file))
    ctx_name = context or doc.get("current-context")
    if not ctx_name:
        raise KubeConfigError(f"{file}: no context given and no current-context set")
    ctx = _named(doc.get("contexts"), str(ctx_name), "context", str(file))
    if not ctx.get("cluster"):
        raise KubeConfigError(f"{file}: context {str(ctx_name)!r} names no cluster")
    cluster = _named(doc.get("clusters"), str(ctx.get("cluster")), "cluster", str(file))
    user: Mapping[str, Any] = {}
    if ctx.get("user"):
        user = _named(doc.get("users"), str(ctx.get("user")), "user", str(file))
    if user.get("auth-provider"):
        raise KubeConfigError(
            f"{file}: user {str(ctx.get('user'))!r}: 'auth-provider' plugins are not"
            " supported (kubectl dropped them too); use exec, a token, tokenFile or a"
            " client certificate"
        )
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"{file}: cluster server must be an http(s) URL, got {server!r}")
    token = user.get("token")
    source: TokenSource | None = None
    if user.get("exec"):
        source = _exec_plugin(user["exec"], file, str(ctx.get("user")))
    elif not token and user.get("tokenFile"):
        # Re-read periodically and on 401, as client-go does: the file may rotate.
        source = FileToken(resolve_path(user["tokenFile"], file.parent))
        try:
            token = source.read()
        except CredentialError as exc:
            raise KubeConfigError(f"{file}: tokenFile: {exc}") from exc
    return KubeConfigEntry(
        file=file,
        server=server.rstrip("/"),
        cluster=cluster,
        user=user,
        namespace=str(ctx.get("namespace") or "default"),
        token=str(token) if token else None,
        token_source=source,
    )


def _exec_plugin(raw: Any, file: Path, user: str) -> ExecToken:
    where = f"{file}: user {user!r}"
    spec = _mapping(raw, f"user {user!r} exec", str(file))
    command, version = spec.get("command"), spec.get("apiVersion")
    if not isinstance(command, str) or not command:
        raise KubeConfigError(f"{where}: exec.command must be a non-empty string")
    if version not in EXEC_API_VERSIONS:
        raise KubeConfigError(
            f"{where}: exec.apiVersion {version!r} is not one of {', '.join(EXEC_API_VERSIONS)}"
        )
    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise KubeConfigError(f"{where}: exec.args must be a list of strings")
    env: dict[str, str] = {}
    for item in spec.get("env") or []:
        if not (
            isinstance(item, Mapping)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("value"), str)
        ):
            raise KubeConfigError(f"{where}: exec.env entries need string name and value")
        env[item["name"]] = item["value"]
    if "/" in command and not Path(command).is_absolute():
        # client-go: a relative path with a separator is relative to the kubeconfig.
        command = str(file.parent / command)
    return ExecToken(command, tuple(args), env, str(version), cwd=file.parent, where=where)


def load_kubeconfig(path: str | os.PathLike[str], context: str | None = None) -> ClusterAccess:
    """Read a kubeconfig file into access for our client."""
    entry = read_kubeconfig(path, context)
    return ClusterAccess(
        server=entry.server,
        ssl_context=_ssl_context(entry.cluster, entry.user, entry.file.parent, str(entry.file)),
        token=entry.token,
        source=str(entry.file),
        token_source=entry.token_source,
    )


def load_incluster(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> ClusterAccess:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeConfigError("not running in a cluster (KUBERNETES_SERVICE_HOST unset)")
    tokens = FileToken(sa_dir / "token")  # the kubelet rotates it (about hourly)
    try:
        token = tokens.read()
        ctx = ssl.create_default_context(cafile=str(sa_dir / "ca.crt"))
    except (CredentialError, OSError, ssl.SSLError) as exc:
        raise KubeConfigError(f"in-cluster service account unusable: {exc}") from exc
    if ":" in host:  # IPv6
        host = f"[{host}]"
    return ClusterAccess(
        f"https://{host}:{port}", ctx, token, source="in-cluster", token_source=tokens
    )


def load_access(kubeconfig: str | os.PathLike[str] | None = None) -> ClusterAccess:
    """The explicit kubeconfig, else ``$KUBECONFIG``, else in-cluster config."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return load_kubeconfig(str(path).split(os.pathsep)[0])
    return load_incluster()
