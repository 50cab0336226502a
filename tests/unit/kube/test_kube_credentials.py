"""Tokens that change: a rotated token file and exec plugins, against a loopback server
that accepts only the current token (as an API server does once a token expired)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from energysched.kube.client import ApiError, KubeClient
from energysched.kube.config import load_incluster, load_kubeconfig
from energysched.kube.credentials import FileToken


class Server:
    def __init__(self) -> None:
        self.valid = {"t1"}
        self.seen: list[str] = []
        self.url = ""


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server()

    async def handler(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        state.seen.append(token)
        if token not in state.valid:
            return web.json_response(
                {
                    "kind": "Status",
                    "code": 401,
                    "reason": "Unauthorized",
                    "message": "Unauthorized",
                },
                status=401,
            )
        return web.json_response({"kind": "Namespace", "metadata": {"name": "default"}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/default", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    state.url = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


def kubeconfig(tmp_path: Path, server: Server, user: dict[str, Any]) -> Path:
    path = tmp_path / "config"
    path.write_text(
        yaml.safe_dump(
            {
                "clusters": [{"name": "c", "cluster": {"server": server.url}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


GET: Callable[[KubeClient], Awaitable[Any]] = lambda kube: kube.get("/api/v1/namespaces/default")  # noqa: E731


async def test_a_rotated_token_file_is_reread_on_401_and_the_request_retried_once(
    tmp_path: Path, server: Server
) -> None:
    token = tmp_path / "token"
    token.write_text("t1\n")
    async with KubeClient(
        load_kubeconfig(kubeconfig(tmp_path, server, {"tokenFile": "token"}))
    ) as kube:
        await GET(kube)
        # The kubelet rotates the projected token; the old one stops working.
        token.write_text("t2\n")
        server.valid = {"t2"}
        await GET(kube)
        assert server.seen == ["t1", "t1", "t2"]  # one 401, one retry with the new token
        # A token that is really refused is an error after exactly one retry.
        server.valid = set()
        with pytest.raises(ApiError) as info:
            await GET(kube)
        assert info.value.status == 401 and server.seen[-2:] == ["t2", "t2"]


def test_in_cluster_access_rereads_its_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from energysched_lab.cluster.pki import LocalPKI

    pki = LocalPKI(tmp_path / "pki")
    (tmp_path / "ca.crt").write_bytes(pki.ca.cert.read_bytes())
    (tmp_path / "token").write_text("sa-1")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    access = load_incluster(tmp_path)
    assert access.token == "sa-1"
    assert (
        isinstance(access.token_source, FileToken)
        and access.token_source.path == tmp_path / "token"
    )


async def test_file_token_period_and_a_vanished_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("a")
    source = FileToken(path, period=0)
    assert await source.token() == "a"
    path.write_text("b")
    assert await source.token() == "b"  # re-read once the period is over
    path.unlink()
    assert await source.token() == "b"  # unreadable: keep the last good token
    cached = FileToken(tmp_path / "other", period=3600)
    (tmp_path / "other").write_text("x")
    assert await cached.token() == "x"
    (tmp_path / "other").write_text("y")
    assert await cached.token() == "x" and await cached.token(refresh=True) == "y"


PLUGIN = """
import json, os, pathlib, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False
counter = pathlib.Path(sys.argv[1])
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
if os.environ.get("PLUGIN_FAIL"):
    print("please log in first", file=sys.stderr)
    sys.exit(3)
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential",
                  "status": {"token": f"e{n}", "expirationTimestamp": sys.argv[2]}}))
"""


def exec_user(tmp_path: Path, expires: str, **env: str) -> dict[str, Any]:
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(script), str(tmp_path / "count"), expires],
            "env": [{"name": k, "value": v} for k, v in env.items()],
        }
    }


def in_an_hour() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_an_exec_plugin_token_is_cached_and_rerun_on_401(
    tmp_path: Path, server: Server
) -> None:
    server.valid = {"e1"}
    path = kubeconfig(tmp_path, server, exec_user(tmp_path, in_an_hour()))
    async with KubeClient(load_kubeconfig(path)) as kube:
        await GET(kube)
        await GET(kube)
        assert server.seen == ["e1", "e1"]  # run once, kept until it expires
        server.valid = {"e2"}  # revoked early: the 401 runs the plugin again
        await GET(kube)
        assert server.seen[-2:] == ["e1", "e2"]


async def test_an_expired_exec_token_is_renewed_before_use(tmp_path: Path, server: Server) -> None:
    server.valid = {"e1", "e2", "e3"}
    path = kubeconfig(tmp_path, server, exec_user(tmp_path, "2020-01-01T00:00:00Z"))
    async with KubeClient(load_kubeconfig(path)) as kube:
        await GET(kube)
        await GET(kube)
    assert server.seen == ["e1", "e2"]


async def test_a_failing_exec_plugin_is_a_clear_error(tmp_path: Path, server: Server) -> None:
    path = kubeconfig(tmp_path, server, exec_user(tmp_path, in_an_hour(), PLUGIN_FAIL="1"))
    async with KubeClient(load_kubeconfig(path)) as kube:
        with pytest.raises(ApiError) as info:
            await GET(kube)
    assert info.value.reason == "CredentialError"
    assert "exited 3" in info.value.message and "please log in first" in info.value.message
    assert str(path) in info.value.message
