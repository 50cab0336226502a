"""The reflector against a real API server: list, watch, and relist after 410.

kube-apiserver answers a watch from its watch cache when it can; a 410 comes
when the requested resourceVersion is older than what the cache (or, for
resources without a cache, etcd after compaction) still holds. Events have no
watch cache by default (DefaultWatchCacheSizes), so compacting etcd makes an
old resourceVersion expire deterministically: that is the 410 case here. For
pods, the test resumes from an old resourceVersion and checks that whatever
path the server takes (replay or 410 + relist), no change is missed.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from typing import Any

import aiohttp

from energysched.kube.client import KubeClient, api_path
from energysched.kube.reflector import Reflector
from energysched_lab.cluster.local import LocalCluster
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


def _event(name: str, ns: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {"kind": "Pod", "name": "x", "namespace": ns},
        "reason": "Test",
        "message": name,
        "type": "Normal",
    }


async def _resume_after_changes(
    kube: KubeClient,
    path: str,
    make: Callable[[str], dict[str, Any]],
    cluster: LocalCluster,
) -> tuple[Reflector, list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []

    def handler(event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        seen.append((event, obj["metadata"]["name"]))

    await kube.create(path, make("before-1"))
    await kube.create(path, make("before-2"))
    reflector = Reflector(kube, path, handler, name="test")
    task = asyncio.create_task(reflector.run())
    await asyncio.wait_for(reflector.synced.wait(), 10)
    assert {n for e, n in seen if e == "ADDED"} == {"before-1", "before-2"}
    # Stop watching, let the world move on, compact etcd, then resume from the
    # resourceVersion of the original list.
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await kube.delete(f"{path}/before-1", gracePeriodSeconds=0)
    await kube.create(path, make("during"))
    await _compact_etcd(cluster)
    seen.clear()
    task = asyncio.create_task(reflector.run())
    try:

        async def recovered() -> bool:
            return ("ADDED", "during") in seen and ("DELETED", "before-1") in seen

        await wait_for(recovered, 20, "what happened while not watching")
        await kube.create(path, make("after"))
        await wait_for(lambda: _true(("ADDED", "after") in seen), 10, "the watch to go on")
        ns = path.split("/namespaces/")[1].split("/")[0]
        assert set(reflector.store) == {f"{ns}/{n}" for n in ("before-2", "during", "after")}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return reflector, seen


async def test_expired_watch_410_is_recovered_by_relist_with_nothing_missed(
    kube: KubeClient, namespace: str, local_cluster: LocalCluster
) -> None:
    path = api_path("v1", "events", namespace)
    reflector, _ = await _resume_after_changes(
        kube, path, lambda n: _event(n, namespace), local_cluster
    )
    assert reflector.stats.relists_after_expiry >= 1


async def test_resumed_pod_watch_misses_no_pod(
    kube: KubeClient, namespace: str, local_cluster: LocalCluster
) -> None:
    await _resume_after_changes(
        kube, api_path("v1", "pods", namespace), pod_manifest, local_cluster
    )


async def _true(value: bool) -> bool:
    return value
