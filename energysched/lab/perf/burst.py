"""The pod creator: a burst of pods created as fast as the API server takes them, the
watch that records when each one is bound, and the clean-up between runs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from typing import Any

from energysched import contract
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import ClusterAccess
from energysched.kube.reflector import EventType, Reflector
from energysched.lab.perf.common import say
from energysched.lab.perf.stats import bind_rates, latencies, throughput_from_samples


def pod_manifest(name: str, scheduler_name: str | None, index: int) -> JSON:
    spec: JSON = {
        "containers": [
            {
                "name": "main",
                "image": "registry.example/energysched/noop:1",
                "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
            }
        ],
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 0,
    }
    if scheduler_name:
        spec["schedulerName"] = scheduler_name
    wt = contract.WORKLOAD_TYPES[index % len(contract.WORKLOAD_TYPES)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {contract.WORKLOAD_TYPE_LABEL: wt, "app.kubernetes.io/part-of": "perf"},
        },
        "spec": spec,
    }


async def pod_count(kube: KubeClient, namespace: str) -> int:
    page = await kube.get(api_path("v1", "pods", namespace), limit=1)
    meta = page.get("metadata") or {}
    return len(page.get("items") or []) + int(meta.get("remainingItemCount") or 0)


async def run_burst(
    access: ClusterAccess,
    namespace: str,
    count: int,
    scheduler_name: str | None,
    concurrency: int,
    timeout: float,
) -> dict[str, Any]:
    """Create ``count`` pods as fast as possible; watch them bind. Times are monotonic."""
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    failures: list[str] = []

    def on_pod(event: EventType, obj: JSON, old: JSON | None) -> None:
        name = str(obj["metadata"]["name"])
        if name not in bound and (obj.get("spec") or {}).get("nodeName"):
            bound[name] = time.monotonic()

    async with (
        KubeClient(access, qps=0, timeout=120, max_connections=concurrency + 10) as kube,
        KubeClient(access, qps=0, timeout=120, user_agent="energysched-perf-watch") as wkube,
    ):
        await kube.create(
            api_path("v1", "namespaces"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        watch = Reflector(wkube, api_path("v1", "pods", namespace), on_pod, name=namespace)
        watch_task = asyncio.create_task(watch.run())
        await asyncio.wait_for(watch.synced.wait(), 60)

        samples: list[tuple[float, int]] = []

        async def sample() -> None:
            while True:
                samples.append((time.monotonic(), len(bound)))
                await asyncio.sleep(1.0)

        sem = asyncio.Semaphore(concurrency)

        async def create(i: int) -> None:
            name = f"perf-{i:05d}"
            async with sem:
                try:
                    await kube.create(
                        api_path("v1", "pods", namespace), pod_manifest(name, scheduler_name, i)
                    )
                except ApiError as exc:
                    failures.append(f"{name}: {exc}")
                    return
                created[name] = time.monotonic()

        t_start = time.monotonic()
        sampler = asyncio.create_task(sample())
        await asyncio.gather(*(create(i) for i in range(count)))
        t_created = time.monotonic()
        say(
            f"{namespace}: created {len(created)} pods in {t_created - t_start:.1f} s "
            f"({len(failures)} failed); {len(bound)} bound so far"
        )
        deadline = t_start + timeout
        last_report = time.monotonic()
        while len(bound) < len(created) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if time.monotonic() - last_report > 15:
                last_report = time.monotonic()
                say(f"{namespace}: {len(bound)}/{len(created)} bound")
        await asyncio.sleep(1.05)  # one more sample after the last bind
        sampler.cancel()
        watch_task.cancel()
        await asyncio.gather(sampler, watch_task, return_exceptions=True)

    bound_times = [bound[n] for n in created if n in bound]
    return {
        "namespace": namespace,
        "scheduler_name": scheduler_name or "default-scheduler",
        "pods_requested": count,
        "pods_created": len(created),
        "pods_bound": len(bound_times),
        "complete": len(bound_times) == count,
        "create_failures": failures[:10],
        "creation_seconds": t_created - t_start,
        "creation_pods_per_second": len(created) / (t_created - t_start),
        "pods_per_second": bind_rates(bound_times, t_start),
        "scheduler_perf_throughput": throughput_from_samples(
            [(t - t_start, c) for t, c in samples]
        ),
        "latency_seconds": latencies(created, bound),
        "first_bind_after_seconds": (min(bound_times) - t_start) if bound_times else None,
        "last_bind_after_seconds": (max(bound_times) - t_start) if bound_times else None,
        "watch_stats": dataclasses.asdict(watch.stats),
    }


async def delete_pods(access: ClusterAccess, namespace: str, timeout: float = 900) -> float:
    """Delete every pod of ``namespace`` (grace 0) and the namespace; wait for the pods.

    A DELETE of thousands of pods can outlast the API server's request timeout (504)
    while the deletion goes on server-side: keep polling, and re-issue it now and then.
    """
    t0 = time.monotonic()
    path = api_path("v1", "pods", namespace)
    async with KubeClient(access, qps=0, timeout=120) as kube:
        issued = -1e9
        while True:
            if time.monotonic() - issued > 30:
                issued = time.monotonic()
                try:
                    await kube.delete(path, gracePeriodSeconds=0)
                except ApiError as exc:
                    if exc.status not in (0, 429, 500, 503, 504):
                        raise
                    say(f"{namespace}: delete pods: {exc.status} {exc.reason}; still deleting")
            left = await pod_count(kube, namespace)
            if left == 0:
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{left} pods of {namespace} still there after {timeout} s")
            await asyncio.sleep(2)
        with contextlib.suppress(ApiError):
            await kube.delete(api_path("v1", "namespaces", name=namespace))
    return time.monotonic() - t0
