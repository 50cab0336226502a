"""The probe server of every component: ``/healthz``, ``/livez``, ``/readyz`` and ``/metrics``.

One port, kube's format: ``ok`` with 200 when every check passes, else 503 (as
kube-apiserver's ``/readyz`` and kubelet probes expect: any status from 200 to
399 passes, so the failure code only has to be one) with one ``[+]name ok`` /
``[-]name failed: why`` line per check, also on success with ``?verbose``.

Served by the component's own event loop on purpose: a loop that is stuck
cannot answer, and the liveness probe sees it. The scheduler and the monitor
both use it (so they cannot disagree on what a failed probe looks like); each
brings its own checks and its own Prometheus registry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

#: One check: its name, whether it passed, and what it says (why, on failure).
Check = tuple[str, bool, str]
Checks = Callable[[], list[Check]]

#: The status of a failed probe (kube-apiserver's ``/readyz`` and ``/livez`` answer it too).
FAILED: Final = 503


def report(kind: str, results: list[Check], verbose: bool) -> web.Response:
    """The response of one probe for these check results."""
    ok = all(passed for _, passed, _ in results)
    if ok and not verbose:
        return web.Response(text="ok")
    lines = [
        f"[+]{name} {msg}" if passed else f"[-]{name} failed: {msg}"
        for name, passed, msg in results
    ]
    lines.append(f"{kind} check {'passed' if ok else 'failed'}")
    return web.Response(text="\n".join(lines) + "\n", status=200 if ok else FAILED)


def make_app(
    healthz: Checks, readyz: Checks | None, registry: CollectorRegistry
) -> web.Application:
    """``/healthz`` and ``/livez`` run ``healthz``; ``/readyz`` runs ``readyz`` (``None``:
    ready whenever healthy); ``/metrics`` exposes ``registry``."""
    ready_checks = readyz or healthz

    async def health(request: web.Request) -> web.Response:
        return report("healthz", healthz(), "verbose" in request.query)

    async def ready(request: web.Request) -> web.Response:
        return report("readyz", ready_checks(), "verbose" in request.query)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    app = web.Application()
    app.router.add_get("/healthz", health)
    app.router.add_get("/livez", health)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/metrics", metrics)
    return app


async def serve(address: str, app: web.Application) -> web.AppRunner:
    """Listen on ``HOST:PORT`` (host empty: every address; ``[v6]`` brackets allowed)."""
    host, _, port = address.rpartition(":")
    return await listen(app, host.strip("[]") or None, int(port))


async def listen(app: web.Application, host: str | None, port: int) -> web.AppRunner:
    """Listen on ``host`` (``None``: every address) and ``port``; ``cleanup()`` stops it."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
