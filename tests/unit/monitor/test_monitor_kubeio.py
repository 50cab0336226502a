"""The ports over energysched's KubeClient, against a tiny fake API server on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from aiohttp import web

from energysched.contract import API_VERSION, KWOK_NODE_ANNOTATION, WORKLOAD_TYPE_LABEL
from energysched.kube import ClusterAccess, KubeClient
from energysched_monitor.interfaces import simulated
from energysched_monitor.kubeio import KubeNodeAnnotator, KubeNodeReader, ReflectorClusterView

NODE = {
    "metadata": {
        "name": "kwok-0",
        "labels": {"energy.thesis.io/class": "wyse"},
        "annotations": {KWOK_NODE_ANNOTATION: "fake"},
    },
    "status": {"allocatable": {"cpu": "4"}},
}
POD = {
    "metadata": {"name": "p", "namespace": "ns", "labels": {WORKLOAD_TYPE_LABEL: "training"}},
    "spec": {"nodeName": "kwok-0", "containers": [{"resources": {"requests": {"cpu": "2"}}}]},
    "status": {"phase": "Running"},
}
PROFILE = {  # as a LIST item: no apiVersion/kind
    "metadata": {"name": "wyse", "resourceVersion": "7"},
    "spec": {
        "nodeSelector": {"energy.thesis.io/class": "wyse"},
        "idlePowerWatts": 6.5,
        "workloads": {"training": {"performance": 120.0, "powerWatts": 13.2}},
    },
}
BROKEN = {"metadata": {"name": "broken"}, "spec": {"idlePowerWatts": -1}}


class FakeApi:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.raw_bodies: list[str] = []  # as sent, before parsing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("watch") == "1":  # a watch that stays quiet until shutdown
            self.requests.append((request.method, request.path, dict(request.query), None))
            resp = web.StreamResponse()
            await resp.prepare(request)
            await asyncio.sleep(3600)
            return resp
        raw = await request.text() if request.can_read_body else ""
        self.raw_bodies.append(raw)
        body = json.loads(raw) if raw else None
        self.requests.append((request.method, request.path, dict(request.query), body))
        if request.content_type and body is not None:
            self.requests[-1][2]["content-type"] = request.content_type
        path = request.path
        if path == "/api/v1/nodes/missing":
            return web.json_response(
                {"kind": "Status", "code": 404, "reason": "NotFound", "message": "nope"},
                status=404,
            )
        if path.startswith("/api/v1/nodes/"):
            return web.json_response(NODE)
        if path == "/api/v1/nodes":
            return web.json_response({"items": [NODE], "metadata": {}})
        if path == "/api/v1/pods":
            return web.json_response({"items": [POD], "metadata": {}})
        if path == f"/apis/{API_VERSION}/energyprofiles":
            return web.json_response({"items": [PROFILE, BROKEN], "metadata": {}})
        return web.json_response({}, status=404)


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, KubeClient]]:
    fake = FakeApi()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    client = KubeClient(ClusterAccess(f"http://127.0.0.1:{port}", None))
    await client.open()
    yield fake, client
    await client.close()
    await runner.cleanup()


async def test_annotator_sends_one_merge_patch(api: tuple[FakeApi, KubeClient]) -> None:
    fake, client = api
    await KubeNodeAnnotator(client).patch_node_annotations(
        "wyse", {"energy.thesis.io/current-watts": "9.5", "gone": None}
    )
    method, path, query, body = fake.requests[-1]
    assert (method, path) == ("PATCH", "/api/v1/nodes/wyse")
    assert query["content-type"] == "application/merge-patch+json"
    assert body == {
        "metadata": {"annotations": {"energy.thesis.io/current-watts": "9.5", "gone": None}}
    }
    # On the wire: JSON's null (what removes a key in a merge patch), not a string "None".
    raw = fake.raw_bodies[-1]
    assert json.loads(raw) == body and '"gone":null' in raw.replace(" ", ""), raw


async def test_reader(api: tuple[FakeApi, KubeClient]) -> None:
    _, client = api
    reader = KubeNodeReader(client)
    info = await reader.get_node("kwok-0")
    assert info is not None and simulated(info) and info.allocatable["cpu"] == 4000
    assert await reader.get_node("missing") is None


async def test_reflector_view(api: tuple[FakeApi, KubeClient]) -> None:
    fake, client = api
    view = ReflectorClusterView(client, structlog.get_logger("test"))
    assert not view.has_synced()
    stop = asyncio.Event()
    task = asyncio.create_task(view.run(stop))
    try:
        for _ in range(100):
            if view.has_synced():
                break
            await asyncio.sleep(0.02)
        assert view.has_synced()
        assert [n.name for n in view.nodes()] == ["kwok-0"]
        assert [p.name for p in view.pods_on_node("kwok-0")] == ["p"]
        kb = view.knowledge_base()
        assert list(kb.profiles) == ["wyse"]  # the broken one is skipped
        resolution = kb.resolve({"energy.thesis.io/class": "wyse"})
        assert resolution is not None and resolution.profile.idle_power_watts == 6.5
        pods_query = next(q for m, p, q, _ in fake.requests if p == "/api/v1/pods")
        assert pods_query["fieldSelector"] == "spec.nodeName!="
        # events: the pod finishes and goes away, the node is deleted
        view._on_pod("DELETED", POD, POD)
        assert list(view.pods_on_node("kwok-0")) == []
        view._on_profile("DELETED", PROFILE, PROFILE)
        assert list(view.knowledge_base().profiles) == []
        view._on_node("DELETED", NODE, NODE)
        assert list(view.nodes()) == []
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
