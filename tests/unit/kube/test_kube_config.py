"""The kubeconfig loader: every problem is a KubeConfigError naming the file and the field."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched.kube.config import KubeConfigError, load_access, load_kubeconfig
from energysched_lab.cluster.pki import LocalPKI, Pair

SERVER = "https://127.0.0.1:6443"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> LocalPKI:
    return LocalPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_pair(pki: LocalPKI) -> Pair:
    return pki.client("tester", "tester", "system:masters")


def kubeconfig(
    cluster: dict[str, Any] | None = None,
    user: dict[str, Any] | None = None,
    context: dict[str, Any] | None = None,
    current: str | None = "test",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": SERVER, **(cluster or {})}}],
        "users": [{"name": "u", "user": user or {}}],
        "contexts": [{"name": "test", "context": context or {"cluster": "c", "user": "u"}}],
    }
    if current is not None:
        doc["current-context"] = current
    return doc


def write(tmp_path: Path, doc: Any, name: str = "config") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def load_error(path: Path, context: str | None = None) -> str:
    with pytest.raises(KubeConfigError) as info:
        load_kubeconfig(path, context)
    return str(info.value)


# -- a valid kubeconfig ------------------------------------------------------------------------


def test_client_certificate_files_from_the_local_pki_load(
    tmp_path: Path, pki: LocalPKI, client_pair: Pair
) -> None:
    doc = kubeconfig(
        cluster={"certificate-authority": str(pki.ca.cert)},
        user={"client-certificate": str(client_pair.cert), "client-key": str(client_pair.key)},
    )
    access = load_kubeconfig(write(tmp_path, doc))
    assert access.server == SERVER
    assert access.token is None and access.headers() == {}
    assert access.source == str(tmp_path / "config")
    ctx = access.ssl_context
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] == 1


def test_embedded_data_and_relative_file_paths_load(
    tmp_path: Path, pki: LocalPKI, client_pair: Pair
) -> None:
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "client.crt").write_bytes(client_pair.cert.read_bytes())
    ca_data = base64.b64encode(pki.ca.cert.read_bytes()).decode()
    doc = kubeconfig(
        # kubectl accepts base64 folded over several lines (Go's decoder skips newlines)
        cluster={"certificate-authority-data": "\n".join([ca_data[:40], ca_data[40:]])},
        user={
            "client-certificate": "certs/client.crt",  # relative to the kubeconfig's folder
            "client-key-data": base64.b64encode(client_pair.key.read_bytes()).decode(),
        },
    )
    access = load_kubeconfig(write(tmp_path, doc))
    assert access.ssl_context is not None


def test_context_argument_overrides_current_context(tmp_path: Path) -> None:
    doc = kubeconfig(current="missing")
    doc["clusters"].append({"name": "plain", "cluster": {"server": "http://127.0.0.1:8080/"}})
    doc["contexts"].append({"name": "other", "context": {"cluster": "plain"}})
    access = load_kubeconfig(write(tmp_path, doc), context="other")
    assert access.server == "http://127.0.0.1:8080"  # trailing slash dropped
    assert access.ssl_context is None  # plain http: no TLS at all


def test_token(tmp_path: Path) -> None:
    access = load_kubeconfig(write(tmp_path, kubeconfig(user={"token": "abc.def"})))
    assert access.token == "abc.def"
    assert access.headers() == {"Authorization": "Bearer abc.def"}


def test_token_file_absolute_and_relative(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file\n")
    access = load_kubeconfig(write(tmp_path, kubeconfig(user={"tokenFile": "token"})))
    assert access.token == "from-file"
    path = write(tmp_path, kubeconfig(user={"tokenFile": str(tmp_path / "token")}), "abs")
    assert load_kubeconfig(path).token == "from-file"
    # An inline token wins over a tokenFile, as in client-go.
    path = write(tmp_path, kubeconfig(user={"token": "inline", "tokenFile": "nope"}), "both")
    assert load_kubeconfig(path).token == "inline"


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    doc = kubeconfig(cluster={"insecure-skip-tls-verify": True})
    ctx = load_kubeconfig(write(tmp_path, doc)).ssl_context
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE and not ctx.check_hostname


def test_load_access_prefers_the_argument_then_kubeconfig_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = write(tmp_path, kubeconfig(user={"token": "a"}), "a")
    b = write(tmp_path, kubeconfig(user={"token": "b"}), "b")
    monkeypatch.setenv("KUBECONFIG", f"{b}:{a}")
    assert load_access(a).token == "a"
    assert load_access().token == "b"  # the first file of $KUBECONFIG
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(KubeConfigError, match="not running in a cluster"):
        load_access()


# -- every problem: a KubeConfigError naming the file and the field ----------------------------


def test_missing_file(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nope")
    assert "nope" in message and "No such file" in message


@pytest.mark.parametrize(
    "text",
    ["clusters: [unclosed\n", "a: b: c\n", "\tkind: Config\n"],
)
def test_malformed_yaml(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    message = load_error(path)
    assert str(path) in message and "not valid YAML" in message


def test_binary_garbage(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    message = load_error(path)
    assert str(path) in message


@pytest.mark.parametrize("text", ["", "just a string\n", "- a\n- list\n"])
def test_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    assert str(path) in load_error(path)


def test_no_context(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(current=None))
    message = load_error(path)
    assert str(path) in message and "current-context" in message


def test_missing_context(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(current="prod"))
    message = load_error(path)
    assert str(path) in message and "context" in message and "'prod'" in message
    message = load_error(path, context="staging")
    assert "'staging'" in message


def test_contexts_not_a_list(tmp_path: Path) -> None:
    doc = kubeconfig()
    doc["contexts"] = {"test": {"cluster": "c"}}
    message = load_error(write(tmp_path, doc))
    assert "contexts" in message


def test_context_without_a_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(context={"user": "u"}))
    message = load_error(path)
    assert str(path) in message and "'test'" in message and "cluster" in message


def test_missing_cluster(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(context={"cluster": "gone", "user": "u"}))
    message = load_error(path)
    assert str(path) in message and "cluster" in message and "'gone'" in message


def test_missing_user(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(context={"cluster": "c", "user": "ghost"}))
    message = load_error(path)
    assert str(path) in message and "user" in message and "'ghost'" in message


def test_entry_body_not_a_mapping(tmp_path: Path) -> None:
    doc = kubeconfig()
    doc["clusters"] = [{"name": "c", "cluster": "https://example"}]
    message = load_error(write(tmp_path, doc))
    assert "cluster 'c'" in message


@pytest.mark.parametrize("server", [None, "", "127.0.0.1:6443", "ftp://x", 6443])
def test_bad_server(tmp_path: Path, server: Any) -> None:
    doc = kubeconfig()
    doc["clusters"][0]["cluster"]["server"] = server
    path = write(tmp_path, doc)
    message = load_error(path)
    assert str(path) in message and "server" in message and repr(server) in message


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("cluster", "certificate-authority-data"),
        ("user", "client-certificate-data"),
        ("user", "client-key-data"),
    ],
)
def test_bad_base64(tmp_path: Path, section: str, field: str) -> None:
    doc = kubeconfig(
        **{section: {field: "not*base64!"}},  # type: ignore[arg-type]
    )
    if section == "user":  # the other half of the pair, so the bad one is reached
        other = (
            "client-key-data" if field == "client-certificate-data" else "client-certificate-data"
        )
        doc["users"][0]["user"][other] = base64.b64encode(b"x").decode()
    path = write(tmp_path, doc)
    message = load_error(path)
    assert str(path) in message and field in message and "base64" in message


def test_base64_that_is_not_a_certificate(tmp_path: Path) -> None:
    data = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnope\n").decode()
    path = write(tmp_path, kubeconfig(cluster={"certificate-authority-data": data}))
    message = load_error(path)
    assert str(path) in message and "TLS" in message


def test_ca_data_that_is_not_text(tmp_path: Path) -> None:
    data = base64.b64encode(b"\xff\xfe\x00\x80").decode()
    path = write(tmp_path, kubeconfig(cluster={"certificate-authority-data": data}))
    assert str(path) in load_error(path)


@pytest.mark.parametrize("field", ["certificate-authority", "client-certificate", "client-key"])
def test_unreadable_file(tmp_path: Path, client_pair: Pair, field: str) -> None:
    cluster: dict[str, Any] = {}
    user = {"client-certificate": str(client_pair.cert), "client-key": str(client_pair.key)}
    missing = str(tmp_path / "missing.pem")
    if field == "certificate-authority":
        cluster[field] = missing
    else:
        user[field] = missing
    path = write(tmp_path, kubeconfig(cluster=cluster, user=user))
    message = load_error(path)
    assert str(path) in message and field in message and missing in message


def test_a_directory_instead_of_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(cluster={"certificate-authority": str(tmp_path)}))
    message = load_error(path)
    assert "certificate-authority" in message


def test_client_certificate_without_key(tmp_path: Path, client_pair: Pair) -> None:
    path = write(tmp_path, kubeconfig(user={"client-certificate": str(client_pair.cert)}))
    message = load_error(path)
    assert str(path) in message and "client-key" in message


def test_client_key_that_does_not_match_the_certificate(
    tmp_path: Path, pki: LocalPKI, client_pair: Pair
) -> None:
    other = pki.client("someone-else", "someone-else")
    user = {"client-certificate": str(client_pair.cert), "client-key": str(other.key)}
    path = write(tmp_path, kubeconfig(user=user))
    message = load_error(path)
    assert str(path) in message and "TLS" in message


def test_unreadable_token_file(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(user={"tokenFile": "no-such-token"}))
    message = load_error(path)
    assert str(path) in message and "tokenFile" in message and "no-such-token" in message


def test_auth_provider_plugins_are_named_as_unsupported(tmp_path: Path) -> None:
    path = write(tmp_path, kubeconfig(user={"auth-provider": {"name": "gcp"}}))
    message = load_error(path)
    assert str(path) in message and "auth-provider" in message


@pytest.mark.parametrize(
    ("exec_", "why"),
    [
        ({"apiVersion": "client.authentication.k8s.io/v1"}, "exec.command"),
        ({"command": "aws"}, "exec.apiVersion None"),
        ({"command": "aws", "apiVersion": "client.authentication.k8s.io/v1alpha1"}, "v1alpha1"),
        (
            {"command": "aws", "apiVersion": "client.authentication.k8s.io/v1", "args": "x"},
            "exec.args",
        ),
        (
            {"command": "a", "apiVersion": "client.authentication.k8s.io/v1", "env": [{"n": 1}]},
            "exec.env",
        ),
    ],
)
def test_malformed_exec_plugins_are_named(tmp_path: Path, exec_: Any, why: str) -> None:
    path = write(tmp_path, kubeconfig(user={"exec": exec_}))
    message = load_error(path)
    assert str(path) in message and why in message
