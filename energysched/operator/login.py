"""kopf's credentials, taken from the same place as the rest of energysched.

The operator's registry has no fallback logins (``kopf.OperatorRegistry``, not
the "smart" default one), so kopf never falls back to ``~/.kube/config`` and its
current context: it uses the kubeconfig given (``--kubeconfig`` or
``$KUBECONFIG``), else the in-cluster service account, exactly like
:func:`energysched.kube.config.load_access`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import kopf
import yaml

from energysched.kube.config import SERVICE_ACCOUNT_DIR, KubeConfigError


def _named(doc: Mapping[str, Any], kind: str, name: str, path: str) -> Mapping[str, Any]:
    entries = doc.get(f"{kind}s")
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                value = entry.get(kind)
                if isinstance(value, Mapping):
                    return value
    raise KubeConfigError(f"{path}: no {kind} named {name!r}")


def _file(section: Mapping[str, Any], key: str, base: Path) -> str | None:
    value = section.get(key)
    if not value:
        return None
    return str((base / str(value)).expanduser())


def connection_from_kubeconfig(path: str | os.PathLike[str]) -> kopf.ConnectionInfo:
    """The current context of a kubeconfig file as kopf credentials.

    Relative certificate paths are resolved against the kubeconfig's directory
    (as kubectl does); ``*-data`` fields are passed on (kopf decodes base64).
    """
    file = Path(path).expanduser()
    try:
        raw = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise KubeConfigError(f"cannot read kubeconfig {str(file)!r}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise KubeConfigError(f"kubeconfig {str(file)!r} is not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise KubeConfigError(f"{file}: not a kubeconfig (a mapping)")
    context_name = raw.get("current-context")
    if not context_name:
        raise KubeConfigError(f"{file}: no current-context set")
    context = _named(raw, "context", str(context_name), str(file))
    cluster = _named(raw, "cluster", str(context.get("cluster")), str(file))
    user: Mapping[str, Any] = {}
    if context.get("user"):
        user = _named(raw, "user", str(context.get("user")), str(file))
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubeConfigError(f"{file}: cluster server must be an http(s) URL, got {server!r}")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        try:
            token = Path(str(user["tokenFile"])).read_text().strip()
        except OSError as exc:
            raise KubeConfigError(f"{file}: tokenFile: {exc.strerror}") from exc
    base = file.parent
    return kopf.ConnectionInfo(
        server=server.rstrip("/"),
        ca_path=_file(cluster, "certificate-authority", base),
        ca_data=cluster.get("certificate-authority-data") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
        certificate_path=_file(user, "client-certificate", base),
        certificate_data=user.get("client-certificate-data") or None,
        private_key_path=_file(user, "client-key", base),
        private_key_data=user.get("client-key-data") or None,
        token=str(token) if token else None,
        default_namespace=str(context.get("namespace") or "default"),
    )


def connection_in_cluster(sa_dir: Path = SERVICE_ACCOUNT_DIR) -> kopf.ConnectionInfo:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeConfigError(
            "no kubeconfig given, $KUBECONFIG unset, and not running in a cluster"
        )
    if ":" in host:  # IPv6
        host = f"[{host}]"
    try:
        token = (sa_dir / "token").read_text().strip()  # re-read on every login (rotation)
        namespace = (sa_dir / "namespace").read_text().strip()
    except OSError as exc:
        raise KubeConfigError(f"in-cluster service account unusable: {exc}") from exc
    return kopf.ConnectionInfo(
        server=f"https://{host}:{port}",
        ca_path=str(sa_dir / "ca.crt"),
        token=token,
        default_namespace=namespace or "default",
    )


def connection_info(kubeconfig: str | os.PathLike[str] | None) -> kopf.ConnectionInfo:
    """The explicit kubeconfig, else ``$KUBECONFIG`` (first file), else in-cluster."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return connection_from_kubeconfig(str(path).split(os.pathsep)[0])
    return connection_in_cluster()
