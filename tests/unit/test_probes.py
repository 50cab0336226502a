"""/healthz, /readyz and /metrics served on loopback, in kube's format: one failure code, 503."""

from __future__ import annotations

import socket

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from energysched.probes import FAILED, make_app, serve


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_probes_answer_as_kube_scheduler_does() -> None:
    ready = [True]
    registry = CollectorRegistry()
    Counter("probe_test", "x", registry=registry).inc()

    def readyz() -> list[tuple[str, bool, str]]:
        return [("ping", True, "ok"), ("watch-pods", ready[0], "down for 3 s: refused")]

    port = free_port()
    runner = await serve(
        f"127.0.0.1:{port}", make_app(lambda: [("ping", True, "ok")], readyz, registry)
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            async with http.get("/healthz") as r:
                assert (r.status, await r.text()) == (200, "ok")
            async with http.get("/readyz") as r:
                assert (r.status, await r.text()) == (200, "ok")
            async with http.get("/readyz?verbose") as r:
                assert "[+]watch-pods" in await r.text()
            ready[0] = False
            async with http.get("/readyz") as r:
                body = await r.text()
                assert r.status == FAILED == 503
                assert "[-]watch-pods failed: down for 3 s: refused" in body
                assert body.rstrip().endswith("readyz check failed")
            async with http.get("/metrics") as r:
                assert "probe_test_total 1.0" in await r.text()
    finally:
        await runner.cleanup()


async def test_without_readiness_checks_ready_means_healthy() -> None:
    healthy = [True]
    port = free_port()
    runner = await serve(
        f"127.0.0.1:{port}",
        make_app(lambda: [("loop", healthy[0], "last round 400 s ago")], None, CollectorRegistry()),
    )
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            for path in ("/healthz", "/livez", "/readyz"):
                async with http.get(path) as r:
                    assert (r.status, await r.text()) == (200, "ok")
            healthy[0] = False
            for path in ("/healthz", "/livez", "/readyz"):
                async with http.get(path) as r:
                    assert r.status == 503
                    assert "[-]loop failed: last round 400 s ago" in await r.text()
    finally:
        await runner.cleanup()
