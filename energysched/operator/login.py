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

from energysched.kube.config import (
    SERVICE_ACCOUNT_DIR,
    KubeConfigError,
    read_kubeconfig,
    resolve_path,
)
from energysched.kube.credentials import CredentialError, ExecToken


def _file(section: Mapping[str, Any], key: str, base: Path) -> str | None:
    value = section.get(key)
    return str(resolve_path(value, base)) if value else None


def connection_from_kubeconfig(path: str | os.PathLike[str]) -> kopf.ConnectionInfo:
    """The current context of a kubeconfig file as kopf credentials.

    Parsed and checked by the same reader as our own client
    (:func:`energysched.kube.config.read_kubeconfig`). Relative certificate
    paths are resolved against the kubeconfig's directory (as kubectl does);
    ``*-data`` fields are passed on (kopf decodes base64).
    """
    entry = read_kubeconfig(path)  # read anew on every login: a token file may have rotated
    cluster, user, base = entry.cluster, entry.user, entry.file.parent
    token = entry.token
    if isinstance(entry.token_source, ExecToken):
        # kopf logs in again on a 401, which runs the plugin again (in kopf's thread).
        try:
            token = entry.token_source.token_sync()
        except CredentialError as exc:
            raise KubeConfigError(str(exc)) from exc
    return kopf.ConnectionInfo(
        server=entry.server,
        ca_path=_file(cluster, "certificate-authority", base),
        ca_data=cluster.get("certificate-authority-data") or None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")) or None,
        certificate_path=_file(user, "client-certificate", base),
        certificate_data=user.get("client-certificate-data") or None,
        private_key_path=_file(user, "client-key", base),
        private_key_data=user.get("client-key-data") or None,
        token=token,
        default_namespace=entry.namespace,
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
