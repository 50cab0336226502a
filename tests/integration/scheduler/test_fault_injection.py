"""Faults on the real control plane: the API server stops for 20 s while pods keep
arriving; a watch stream is cut mid-event with garbage. The scheduler recovers (or
exits non-zero and a restart recovers), every pod is bound exactly once, and
/readyz says not ready while the watches are down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from energysched import contract
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.cluster.local import LocalCluster
from energysched_lab.cluster.processes import free_port
from tests.integration.conftest import scheduler_config
from tests.support import SchedulerProcess, eventually, pod_manifest, wait_for

OUTAGE_SECONDS = 20.0


@pytest.fixture(autouse=True)
async def pods_gone_after(kube: KubeClient, namespace: str) -> AsyncIterator[None]:
    """The pods hold cpu on the shared nodes until they are gone; a namespace delete
    leaves that to the namespace controller, which the outage set back: later tests
    would find the fastest node full. Delete them now and wait."""
    yield
    path = api_path("v1", "pods", namespace)
    await kube.delete(path, gracePeriodSeconds=0)

    async def gone() -> bool:
        return not (await kube.get(path, limit=1))["items"]

    await wait_for(gone, 180, "the test's pods to be deleted")


def energy_pod(name: str) -> dict[str, Any]:
    return pod_manifest(
        name,
        schedulerName=contract.SCHEDULER_NAME,
        metadata={"labels": {contract.WORKLOAD_TYPE_LABEL: "training"}},
    )


def config(namespace: str, port: int, leader_election: bool) -> dict[str, Any]:
    cfg = scheduler_config(namespace)
    cfg["metricsAddress"] = f"127.0.0.1:{port}"
    cfg["leaderElection"]["enabled"] = leader_election
    return cfg


class Supervisor:
    """What a Deployment does: start the scheduler again whenever it exits."""

    def __init__(self, kubeconfig: Path, cfg: dict[str, Any], workdir: Path) -> None:
        self.kubeconfig, self.cfg, self.workdir = kubeconfig, cfg, workdir
        self.procs: list[SchedulerProcess] = []
        self.exit_codes: list[int] = []
        self._task: asyncio.Task[None] | None = None

    def _start(self) -> None:
        name = f"sched-{len(self.procs)}"
        self.procs.append(SchedulerProcess(self.kubeconfig, self.cfg, self.workdir, name))

    async def __aenter__(self) -> Supervisor:
        self._start()
        await asyncio.to_thread(self.procs[0].wait_synced)
        self._task = asyncio.create_task(self._watch())
        return self

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            code = self.procs[-1].proc.poll()
            if code is not None:
                self.exit_codes.append(code)
                self._start()

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        for p in self.procs:
            p.stop()

    def bound_lines(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for p in self.procs:
            for line in p.log().splitlines():
                with contextlib.suppress(ValueError):
                    rec = json.loads(line)
                    if isinstance(rec, dict) and rec.get("event") == "bound":
                        counts[rec["pod"]] = counts.get(rec["pod"], 0) + 1
        return counts

    def log(self) -> str:
        return "\n".join(p.log() for p in self.procs)


async def readyz(port: int) -> int | None:
    """The HTTP status of /readyz, or None when nothing answers."""
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/readyz", timeout=aiohttp.ClientTimeout(2)) as r,
        ):
            return r.status
    except (aiohttp.ClientError, TimeoutError):
        return None


async def create_with_retry(kube: KubeClient, ns: str, name: str) -> None:
    while True:
        try:
            await kube.create(api_path("v1", "pods", ns), energy_pod(name))
            return
        except ApiError as exc:
            if exc.conflict:  # created, but the answer was lost in the outage
                return
            await asyncio.sleep(0.5)


async def all_bound_once(kube: KubeClient, ns: str, names: list[str], sup: Supervisor) -> None:
    async def bound() -> bool:
        try:
            pods = (await kube.get(api_path("v1", "pods", ns)))["items"]
        except ApiError:
            return False
        nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods}
        return all(nodes.get(n) for n in names)

    await wait_for(bound, 120, f"all {len(names)} pods bound\n{sup.procs[-1].tail()}")
    twice = {k: n for k, n in sup.bound_lines().items() if n > 1}
    assert not twice, f"bound more than once: {twice}"


@pytest.mark.parametrize("leader_election", [False, True], ids=["recovers", "exits-and-restarts"])
async def test_api_server_down_for_20_s_while_pods_arrive(
    local_cluster: LocalCluster,
    knowledge_base: None,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
    leader_election: bool,
) -> None:
    port = free_port()
    cfg = config(namespace, port, leader_election)
    names = [f"p-{i:02d}" for i in range(24)]
    async with Supervisor(local_cluster.kubeconfig, cfg, tmp_path) as sup:
        assert await wait_for(lambda: _is(readyz(port), 200), 30, "ready at start")

        async def creator() -> None:
            for name in names:
                await create_with_retry(kube, namespace, name)
                await asyncio.sleep(0.4)

        creating = asyncio.create_task(creator())

        async def bound_so_far() -> int:
            return len(sup.bound_lines())

        # A few pods bound before the outage.
        await eventually(
            bound_so_far, until=lambda n: n >= 3, timeout=60, what="3 pods bound before the outage"
        )
        statuses: list[int | None] = []
        await asyncio.to_thread(local_cluster.stop_component, "kube-apiserver")
        stopped = time.monotonic()
        try:
            while time.monotonic() - stopped < OUTAGE_SECONDS:  # the outage, sampled
                statuses.append(await readyz(port))
                await asyncio.sleep(0.5)
        finally:
            await asyncio.to_thread(local_cluster.start_component, "kube-apiserver")
            await nodes_healthy_again(kube)
        await asyncio.wait_for(creating, 120)
        await all_bound_once(kube, namespace, names, sup)
        assert await wait_for(lambda: _is(readyz(port), 200), 60, "ready again")
        if leader_election:
            # The lease could not be renewed: the process stopped with 1, and the
            # one started after it finished the work.
            assert 1 in sup.exit_codes, sup.log()[-3000:]
        else:
            # Not ready while the watches were down, and the same process recovered.
            assert 503 in statuses, statuses
            assert sup.exit_codes == [], sup.log()[-3000:]
            assert "watches up: deciding again" in sup.log()


#: What the node lifecycle controller puts on nodes whose heartbeats stopped.
OUTAGE_TAINTS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


async def nodes_healthy_again(kube: KubeClient) -> None:
    """Leave the session's cluster as it was found: during the outage no node could
    renew its lease, so the node lifecycle controller may mark nodes NotReady and taint
    them; later tests would see those taints. Wait until every node is Ready again and
    untainted (KWOK's heartbeats resume at once; the controller lifts the taints)."""

    async def healthy() -> bool:
        try:
            nodes = (await kube.list_all(api_path("v1", "nodes")))["items"]
        except ApiError:
            return False
        for n in nodes:
            conditions = n.get("status", {}).get("conditions") or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
            tainted = any(
                t.get("key") in OUTAGE_TAINTS for t in n.get("spec", {}).get("taints") or []
            )
            if not ready or tainted:
                return False
        return True

    await wait_for(healthy, 300, "every node Ready and untainted after the outage")


async def _is(status: Any, want: int) -> bool:
    return bool(await status == want)


# -- a watch stream cut mid-event with garbage --------------------------------------------


class SabotagingProxy:
    """Plain HTTP on loopback to the API server (with the admin's client certificate).

    When ``cut_next`` is set, the next pod watch chunk that holds an event is sent
    half, followed by garbage and a newline, and the connection is dropped; pod
    watches are then refused (503) for ``refuse_seconds``.
    """

    def __init__(self, kubeconfig: Path) -> None:
        self.access = load_kubeconfig(kubeconfig)
        self.cut_next = False
        self.cuts = 0
        self.refuse_until = 0.0
        self.refuse_seconds = 6.0
        self.port = free_port()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        pod_watch = request.path == "/api/v1/pods" and request.query.get("watch") in ("1", "true")
        if pod_watch and time.monotonic() < self.refuse_until:
            status = {"kind": "Status", "code": 503, "reason": "ServiceUnavailable"}
            return web.json_response(status, status=503)
        headers = {
            k: v
            for k, v in request.headers.items()
            if k in ("Accept", "Content-Type", "User-Agent")
        }
        upstream = await self.http.request(
            request.method,
            f"{self.access.server}{request.path_qs}",
            headers=headers,
            data=await request.read() if request.can_read_body else None,
            timeout=aiohttp.ClientTimeout(total=None),
        )
        async with upstream:
            if not pod_watch:
                return web.Response(
                    body=await upstream.read(),
                    status=upstream.status,
                    content_type=upstream.content_type,
                )
            resp = web.StreamResponse(status=upstream.status)
            resp.content_type = upstream.content_type
            await resp.prepare(request)
            async for chunk in upstream.content.iter_any():
                if self.cut_next and b"\n" in chunk:
                    self.cut_next = False
                    self.cuts += 1
                    line = chunk.split(b"\n", 1)[0]
                    await resp.write(line[: len(line) // 2] + b"\x00\xff#garbage{\n")
                    self.refuse_until = time.monotonic() + self.refuse_seconds
                    assert request.transport is not None
                    request.transport.close()  # cut: no clean end of the chunked body
                    return resp
                await resp.write(chunk)
            await resp.write_eof()
            return resp

    @contextlib.asynccontextmanager
    async def running(self, workdir: Path) -> AsyncIterator[Path]:
        connector = aiohttp.TCPConnector(ssl=self.access.ssl_context or False)
        self.http = aiohttp.ClientSession(connector=connector)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, handler_cancellation=True)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        kubeconfig = workdir / "via-proxy.kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "clusters": [
                        {"name": "p", "cluster": {"server": f"http://127.0.0.1:{self.port}"}}
                    ],
                    "users": [{"name": "u", "user": {}}],
                    "contexts": [{"name": "p", "context": {"cluster": "p", "user": "u"}}],
                    "current-context": "p",
                }
            )
        )
        try:
            yield kubeconfig
        finally:
            await runner.cleanup()
            await self.http.close()


async def test_a_watch_cut_mid_event_with_garbage(
    local_cluster: LocalCluster,
    knowledge_base: None,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    port = free_port()
    proxy = SabotagingProxy(local_cluster.kubeconfig)
    async with proxy.running(tmp_path) as via_proxy:
        sup = Supervisor(via_proxy, config(namespace, port, False), tmp_path)
        async with sup:
            await kube.create(api_path("v1", "pods", namespace), energy_pod("before"))
            await all_bound_once(kube, namespace, ["before"], sup)
            proxy.cut_next = True
            await kube.create(api_path("v1", "pods", namespace), energy_pod("cut"))
            await wait_for(lambda: _true(proxy.cuts == 1), 30, "the cut")
            # The pod watch is refused for a while: not ready, no decisions.
            assert await wait_for(lambda: _is(readyz(port), 503), 5, "not ready while down")
            await kube.create(api_path("v1", "pods", namespace), energy_pod("after"))
            await all_bound_once(kube, namespace, ["before", "cut", "after"], sup)
            assert await wait_for(lambda: _is(readyz(port), 200), 30, "ready again")
            assert sup.exit_codes == []
            log = sup.log()
            assert "BadWatchEvent" in log or "mid-event" in log, log[-3000:]


async def _true(value: bool) -> bool:
    return value
