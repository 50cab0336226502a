"""The reflector against a real API server: list, watch, and relist after 410."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp

from energysched.cluster.local import LocalCluster
from energysched.kube.client import KubeClient, api_path
from energysched.kube.reflector import Reflector
from tests.support import pod_manifest, wait_for


async def _compact_etcd(cluster: LocalCluster) -> None:
    """Compact etcd's history up to now, as the API server does every 5 minutes."""
    state = cluster.load_state()
    assert state is not None
    base = f"http://127.0.0.1:{state.ports['etcd_client']}/v3/kv"
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/range", json={"key": base64.b64encode(b"/").decode()}) as r:
            revision = (await r.json())["header"]["revision"]
        async with http.post(f"{base}/compaction", json={"revision": revision}) as r:
            assert r.status == 200, await r.text()


async def test_expired_watch_is_recovered_by_relist_with_no_pod_missed(
    kube: KubeClient, namespace: str, local_cluster: LocalCluster
) -> None:
    seen: list[tuple[str, str]] = []

    def handler(event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        seen.append((event, obj["metadata"]["name"]))

    path = api_path("v1", "pods", namespace)
    await kube.create(path, pod_manifest("before-1"))
    await kube.create(path, pod_manifest("before-2"))
    reflector = Reflector(kube, path, handler, name="test-pods")
    task = asyncio.create_task(reflector.run())
    await asyncio.wait_for(reflector.synced.wait(), 10)
    assert {n for e, n in seen if e == "ADDED"} == {"before-1", "before-2"}

    # Stop watching, let the world move on, and make the reflector resume from a
    # resourceVersion the API server no longer has: its watch answers 410 Gone.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kube.delete(api_path("v1", "pods", namespace, "before-1"), gracePeriodSeconds=0)
    await kube.create(path, pod_manifest("during"))
    await _compact_etcd(local_cluster)
    reflector.resource_version = "1"
    seen.clear()
    task = asyncio.create_task(reflector.run())
    try:

        async def recovered() -> bool:
            return ("ADDED", "during") in seen and ("DELETED", "before-1") in seen

        await wait_for(recovered, 20, "relist to report what happened while not watching")
        assert reflector.stats.relists_after_expiry >= 1
        # And the watch goes on after the relist.
        await kube.create(path, pod_manifest("after"))
        await wait_for(lambda: _true(("ADDED", "after") in seen), 10, "watch after relist")
        assert set(reflector.store) == {f"{namespace}/{n}" for n in ("before-2", "during", "after")}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value
