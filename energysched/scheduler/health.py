"""``/healthz``, ``/readyz`` and ``/metrics`` on one port, served from the scheduler's loop.

As kube-scheduler serves them: ``ok`` with 200 when every check passes, else
500 and one ``[+]name ok`` / ``[-]name failed: why`` line per check (also on
success with ``?verbose``). Served by the scheduler's own event loop on
purpose: a loop that is stuck cannot answer, and the liveness probe sees it.

* ``/healthz`` (liveness): vital tasks alive, the lease not overdue.
* ``/readyz`` (readiness): that, plus caches synced and the pod and node
  watches up; it also says whether this replica leads (a standby is ready).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Checks = Callable[[], list[tuple[str, bool, str]]]


def _report(kind: str, checks: Checks, verbose: bool) -> web.Response:
    results = checks()
    ok = all(passed for _, passed, _ in results)
    if ok and not verbose:
        return web.Response(text="ok")
    lines = [
        f"[+]{name} {msg}" if passed else f"[-]{name} failed: {msg}"
        for name, passed, msg in results
    ]
    lines.append(f"{kind} check {'passed' if ok else 'failed'}")
    return web.Response(text="\n".join(lines) + "\n", status=200 if ok else 500)


def make_app(healthz: Checks, readyz: Checks, registry: CollectorRegistry) -> web.Application:
    async def health(request: web.Request) -> web.Response:
        return _report("healthz", healthz, "verbose" in request.query)

    async def ready(request: web.Request) -> web.Response:
        return _report("readyz", readyz, "verbose" in request.query)

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
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host.strip("[]") or None, int(port))
    await site.start()
    return runner
