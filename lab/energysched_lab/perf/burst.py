"""The pod creator (a burst of pods as fast as the API server takes them), the watch that
records when each one is bound, one run in stream or backlog mode, the clean-up between runs."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import Any

from energysched import contract
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import ClusterAccess
from energysched.kube.reflector import EventType, Reflector
from energysched_lab.perf.common import say
from energysched_lab.perf.stats import bind_rates, latencies, throughput_from_samples


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


@dataclasses.dataclass
class Creation:
    """What the pod creator did: when each create call returned, and how fast it went."""

    created: dict[str, float]
    failures: list[str]
    started: float
    finished: float

    def summary(self) -> dict[str, Any]:
        span = self.finished - self.started
        return {
            "pods": len(self.created),
            "seconds": span,
            "pods_per_second": len(self.created) / span if span > 0 else None,
            "failures": self.failures[:10],
            "failed": len(self.failures),
        }


async def create_pods(
    kube: KubeClient, namespace: str, count: int, scheduler_name: str | None, concurrency: int
) -> Creation:
    """Create ``count`` pods as fast as the API server takes them (``concurrency`` in flight)."""
    created: dict[str, float] = {}
    failures: list[str] = []
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

    t0 = time.monotonic()
    await asyncio.gather(*(create(i) for i in range(count)))
    return Creation(created, failures, t0, time.monotonic())


class BindWatch:
    """A watch on one namespace's pods: when each was first seen, and first seen bound;
    plus scheduler_perf's sampling (pods bound so far, once a second)."""

    def __init__(self, kube: KubeClient, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.samples: list[tuple[float, int]] = []
        self.reflector = Reflector(
            kube, api_path("v1", "pods", namespace), self._on_pod, name=namespace
        )
        self._tasks: list[asyncio.Task[None]] = []

    def _on_pod(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        name = str(obj["metadata"]["name"])
        now = time.monotonic()
        self.seen.setdefault(name, now)
        if name not in self.bound and (obj.get("spec") or {}).get("nodeName"):
            self.bound[name] = now

    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self.reflector.run()))
        await asyncio.wait_for(self.reflector.synced.wait(), 60)

    def start_sampling(self) -> None:
        async def sample() -> None:
            while True:
                self.samples.append((time.monotonic(), len(self.bound)))
                await asyncio.sleep(1.0)

        self._tasks.append(asyncio.create_task(sample()))

    async def wait_seen(self, names: Iterable[str], timeout: float) -> bool:
        want = set(names)
        deadline = time.monotonic() + timeout
        while not want <= self.seen.keys():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.2)
        return True

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def run_pods(
    access: ClusterAccess,
    namespace: str,
    count: int,
    scheduler_name: str | None,
    concurrency: int,
    timeout: float,
    *,
    backlog: bool,
    start_scheduler: Callable[[], None],
) -> dict[str, Any]:
    """One run in a fresh namespace. Times are monotonic.

    ``backlog``: every pod is created (and seen by the watch) before ``start_scheduler``
    is called, so the figure is the scheduler draining a queue it found full; the pod
    creator cannot set the pace. Otherwise (``stream``) the scheduler is started first
    and binds while the pods are still being created.
    """
    async with (
        KubeClient(access, qps=0, timeout=120, max_connections=concurrency + 10) as kube,
        KubeClient(access, qps=0, timeout=120, user_agent="energysched-perf-watch") as wkube,
    ):
        await kube.create(
            api_path("v1", "namespaces"),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        watch = BindWatch(wkube, namespace)
        await watch.start()
        try:
            if not backlog:
                t_sched = time.monotonic()
                start_scheduler()
                watch.start_sampling()
            creation = await create_pods(kube, namespace, count, scheduler_name, concurrency)
            created = creation.created
            say(
                f"{namespace}: created {len(created)} pods in "
                f"{creation.finished - creation.started:.1f} s ({len(creation.failures)} "
                f"failed); {len(watch.bound)} bound so far"
            )
            all_seen = True
            bound_before_start = 0
            if backlog:
                all_seen = await watch.wait_seen(created, 120)
                bound_before_start = len(watch.bound)
                t_sched = time.monotonic()
                start_scheduler()
                watch.start_sampling()
            deadline = time.monotonic() + timeout
            last_report = time.monotonic()
            while len(watch.bound) < len(created) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                if time.monotonic() - last_report > 15:
                    last_report = time.monotonic()
                    say(f"{namespace}: {len(watch.bound)}/{len(created)} bound")
            t_end = time.monotonic()
            await asyncio.sleep(1.05)  # one more sample after the last bind
        finally:
            await watch.stop()

    bound = watch.bound
    bound_times = [bound[n] for n in created if n in bound]
    first = min(bound_times) if bound_times else None
    last = max(bound_times) if bound_times else None
    clock0 = t_sched if backlog else creation.started
    return {
        "namespace": namespace,
        "scheduler_name": scheduler_name or "default-scheduler",
        "pods_requested": count,
        "pods_created": len(created),
        "pods_bound": len(bound_times),
        "complete": len(bound_times) == count,
        "creation": creation.summary(),
        "backlog_seen_by_watch_before_start": all_seen if backlog else None,
        "bound_before_scheduler_start": bound_before_start,
        "pods_per_second": bind_rates(bound_times, clock0),
        "scheduler_perf_throughput": throughput_from_samples(
            [(t - clock0, c) for t, c in watch.samples]
        ),
        # From creation in stream mode; in backlog mode mostly the wait for the start.
        "latency_seconds": latencies(created, bound),
        "scheduler_start_to_first_bind_seconds": (first - t_sched) if first else None,
        "scheduler_start_to_last_bind_seconds": (last - t_sched) if last else None,
        "first_bind_after_creation_start_seconds": (first - creation.started) if first else None,
        "last_bind_after_creation_end_seconds": (last - creation.finished) if last else None,
        "waited_seconds": t_end - t_sched,
        # monotonic clock readings, to cut other time series (CPU samples) to the drain
        "clock": {"scheduler_started": t_sched, "first_bind": first, "last_bind": last},
        "watch_stats": dataclasses.asdict(watch.reflector.stats),
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
