"""The client's watch stream parser against a loopback HTTP server sending what a
broken proxy or a cut connection would: garbage, half an event, very long lines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from energysched.kube.client import ApiError, KubeClient, WatchEvent, WatchSilent
from energysched.kube.config import ClusterAccess

Serve = Callable[[list[bytes]], Awaitable[KubeClient]]


def line(type_: str, name: str, rv: str, pad: str = "") -> bytes:
    obj = {"metadata": {"name": name, "resourceVersion": rv, "annotations": {"pad": pad}}}
    return json.dumps({"type": type_, "object": obj}).encode() + b"\n"


@pytest.fixture
async def serve_stream() -> AsyncIterator[Serve]:
    runners: list[web.AppRunner] = []

    async def start(chunks: list[bytes]) -> KubeClient:
        async def handler(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse()
            resp.content_type = "application/json"
            await resp.prepare(request)
            for chunk in chunks:
                await resp.write(chunk)
            return resp

        app = web.Application()
        app.router.add_get("/api/v1/pods", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return KubeClient(ClusterAccess(f"http://127.0.0.1:{port}", None), qps=0)

    yield start
    for r in runners:
        await r.cleanup()


async def collect(kube: KubeClient) -> tuple[list[WatchEvent], ApiError | None]:
    events: list[WatchEvent] = []
    async with kube:
        try:
            async for ev in kube.watch("/api/v1/pods", "1"):
                events.append(ev)
        except ApiError as exc:
            return events, exc
    return events, None


async def test_garbage_in_the_stream_is_an_api_error_after_the_good_events(
    serve_stream: Serve,
) -> None:
    kube = await serve_stream([line("ADDED", "a", "2"), b"\x00garbage{\n", line("ADDED", "b", "3")])
    events, error = await collect(kube)
    assert [e.object["metadata"]["name"] for e in events] == ["a"]
    assert error is not None and error.reason == "BadWatchEvent"
    assert "garbage" in error.message  # the offending bytes are shown


async def test_a_stream_cut_mid_event_is_an_api_error(serve_stream: Serve) -> None:
    whole = line("MODIFIED", "b", "3")
    kube = await serve_stream([line("ADDED", "a", "2"), whole[:25]])
    events, error = await collect(kube)
    assert len(events) == 1
    assert error is not None and "mid-event" in error.message


@pytest.mark.parametrize(
    "bad",
    [
        b"[1, 2]\n",
        b'{"type": "ADDED"}\n',
        b'{"type": "NOPE", "object": {}}\n',
        b"[" * 100000 + b"\n",
    ],
)
async def test_wrong_shapes_are_api_errors(serve_stream: Serve, bad: bytes) -> None:
    kube = await serve_stream([bad])
    events, error = await collect(kube)
    assert events == [] and error is not None and error.reason == "BadWatchEvent"


async def test_an_event_larger_than_aiohttps_line_limit_is_read(serve_stream: Serve) -> None:
    big = line("ADDED", "big", "2", pad="x" * 300_000)  # aiohttp's readline stops at 128 KiB
    kube = await serve_stream([big[:1000], big[1000:], line("DELETED", "big", "3")])
    events, error = await collect(kube)
    assert error is None
    assert [e.type for e in events] == ["ADDED", "DELETED"]
    assert len(events[0].object["metadata"]["annotations"]["pad"]) == 300_000


async def test_an_error_event_carries_the_status(serve_stream: Serve) -> None:
    status = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
    kube = await serve_stream([json.dumps({"type": "ERROR", "object": status}).encode() + b"\n"])
    _, error = await collect(kube)
    assert error is not None and error.gone and error.message == "too old"


async def _hanging_server(
    before: list[bytes], every: float | None, answer: bool = True
) -> tuple[web.AppRunner, KubeClient]:
    """Sends ``before``, then (``every``) a bookmark every so often, or nothing, keeping the
    connection open; ``answer=False``: never even sends the response headers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        if not answer:
            await asyncio.Event().wait()
        resp = web.StreamResponse()
        resp.content_type = "application/json"
        await resp.prepare(request)
        for chunk in before:
            await resp.write(chunk)
        for i in range(1000):
            await asyncio.sleep(every or 3600)
            await resp.write(line("BOOKMARK", "", str(100 + i)))
        return resp

    app = web.Application()
    app.router.add_get("/api/v1/pods", handler)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, KubeClient(ClusterAccess(f"http://127.0.0.1:{port}", None), qps=0)


async def test_a_silent_stream_ends_with_watch_silent_after_its_idle_limit() -> None:
    runner, kube = await _hanging_server([line("ADDED", "a", "2")], every=None)
    events: list[WatchEvent] = []
    try:
        async with kube:
            with pytest.raises(WatchSilent) as silent:
                async with asyncio.timeout(10):
                    async for ev in kube.watch("/api/v1/pods", "1", idle_seconds=0.3):
                        events.append(ev)
    finally:
        await runner.cleanup()
    assert [e.object["metadata"]["name"] for e in events] == ["a"]
    assert "no event and no bookmark for 0.3 s" in str(silent.value)


async def test_bookmarks_keep_a_quiet_watch_alive() -> None:
    runner, kube = await _hanging_server([], every=0.1)
    bookmarks = 0
    try:
        async with kube:
            async with asyncio.timeout(10):
                async for ev in kube.watch("/api/v1/pods", "1", idle_seconds=0.5):
                    assert ev.type == "BOOKMARK"
                    bookmarks += 1
                    if bookmarks == 12:  # 1.2 s: more than twice the idle limit
                        break
    finally:
        await runner.cleanup()
    assert bookmarks == 12


async def test_a_server_that_does_not_answer_is_an_api_error() -> None:
    runner, kube = await _hanging_server([], every=None, answer=False)
    connected: list[bool] = []
    try:
        async with kube:
            with pytest.raises(ApiError) as error:
                async with asyncio.timeout(10):
                    async for _ in kube.watch(
                        "/api/v1/pods",
                        "1",
                        answer_seconds=0.3,
                        on_connect=lambda: connected.append(True),
                    ):
                        pass
    finally:
        await runner.cleanup()
    assert error.value.reason == "WatchNoAnswer" and error.value.status == 0
    assert connected == []
