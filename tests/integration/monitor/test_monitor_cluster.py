"""The monitor against the local cluster: fake plugs on loopback, KWOK nodes, real patches.

Acceptance (issue "energy monitor"):
* the node annotations follow the fake plug's power; a reboot gives neither negative nor
  doubled energy; a hung plug leaves a stale timestamp and no new value; wrong
  credentials give one clear error and no annotation;
* the model source drives the annotations of a KWOK node as pods start and finish;
* with many simulated nodes the API write rate stays bounded (opt-in, measured:
  ``ENERGYSCHED_MONITOR_SCALE_NODES=1000``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from energysched.contract import (
    API_VERSION,
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    KWOK_NODE_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    PROFILE_KIND,
    PROFILE_PLURAL,
    SIMULATED_DURATION_ANNOTATION,
    WORKLOAD_TYPE_LABEL,
)
from energysched.kb.profiles import KnowledgeBase
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.config import ConfigStore, parse_config_text
from energysched_monitor.interfaces import NodeInfo, PodInfo
from energysched_monitor.kubeio import KubeNodeAnnotator, KubeNodeReader, ReflectorClusterView
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.power_model_monitor import ModelMonitor
from energysched_monitor.publish import format_timestamp
from energysched_monitor.tracker import Reporter
from tests.support import eventually, pod_manifest, wait_for

PASSWORD = "integration-Pa55"
W, TS = CURRENT_WATTS_ANNOTATION, CURRENT_WATTS_TIMESTAMP_ANNOTATION


def node_manifest(
    name: str, *, kwok: bool = False, labels: Mapping[str, str] = {}
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, **(labels or {})},
            "annotations": {KWOK_NODE_ANNOTATION: "fake"} if kwok else {},
        },
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"},
        },
    }


def profile_manifest(name: str, selector: Mapping[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": PROFILE_KIND,
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": dict(selector),
            "idlePowerWatts": 10.0,
            "workloads": {
                "training": {"performance": 100.0, "powerWatts": 50.0},
                "inference": {"performance": 300.0, "powerWatts": 30.0},
                "sequential": {"performance": 20.0, "powerWatts": 20.0},
            },
        },
    }


@pytest.fixture
async def nodes(kube: KubeClient) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Create Node objects for one test; deleted afterwards."""
    created: list[str] = []

    async def create(prefix: str = "mon", **kw: Any) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        await kube.create(api_path("v1", "nodes"), node_manifest(name, **kw))
        created.append(name)
        return name

    yield create
    for name in created:
        with contextlib.suppress(ApiError):
            await kube.delete(api_path("v1", "nodes", name=name))


async def node_annotations(kube: KubeClient, node: str) -> dict[str, str]:
    obj = await kube.get(api_path("v1", "nodes", name=node))
    return dict((obj.get("metadata") or {}).get("annotations") or {})


async def test_annotator_null_removes_one_key_and_keeps_the_others(
    kube: KubeClient, nodes: Callable[..., Awaitable[str]]
) -> None:
    """The merge patch the unit test sees on the wire, on the real API server."""
    node = await nodes()
    annotator = KubeNodeAnnotator(kube)
    await annotator.patch_node_annotations(node, {"example.com/a": "1", "example.com/b": "2"})
    assert {"example.com/a", "example.com/b"} <= set(await node_annotations(kube, node))
    await annotator.patch_node_annotations(node, {"example.com/a": None})
    after = await node_annotations(kube, node)
    assert "example.com/a" not in after and after["example.com/b"] == "2", after


def config_file(tmp_path: Path, node: str, url: str) -> Path:
    (tmp_path / "plug").write_text(PASSWORD)
    path = tmp_path / "config.yaml"
    path.write_text(
        f"secretsDir: {tmp_path}\ntimeoutSeconds: 0.5\n"
        "publish: {minIntervalSeconds: 15, heartbeatSeconds: 30, heartbeatJitter: 0}\n"
        f"nodes: {{{node}: {{kind: shelly, address: '{url}', credentials: {{secretKey: plug}}}}}}\n"
    )
    return path


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_annotations_follow_the_plug_reboot_and_hang(
    kube: KubeClient, nodes: Callable[..., Awaitable[str]], tmp_path: Path
) -> None:
    node = await nodes()
    clock = Clock()
    # The plug's uptime follows the test's clock, as a real plug's follows real time.
    async with FakeShelly(
        gen=2, password=PASSWORD, power=40.0, realtime=False, clock=clock
    ) as plug:
        monitor = NodeMonitor(
            node,
            ConfigStore(str(config_file(tmp_path, node, plug.url))),
            KubeNodeAnnotator(kube),
            Metrics(),
            structlog.get_logger("test"),
            reader=KubeNodeReader(kube),
            clock=clock,
        )
        try:
            await monitor.reconfigure()
            await monitor.poll_once()
            ann = await node_annotations(kube, node)
            assert ann[W] == "40.0" and ann[POWER_SOURCE_ANNOTATION] == "shelly"
            stamp = datetime.fromisoformat(ann[TS])
            assert abs((datetime.now(UTC) - stamp).total_seconds()) < 10

            for watts in (90.0, 15.5):  # the annotation follows the plug
                clock.now += 15
                plug.set_power(watts)
                plug.advance(15)
                await monitor.poll_once()
                assert (await node_annotations(kube, node))[W] == f"{watts:.1f}"

            energy = monitor.metrics.energy_joules.labels(node, "shelly")
            before = energy._value.get()
            plug.reboot()  # counter back to 0
            clock.now += 15
            plug.advance(15)  # 15.5 W for 15 s = 232.5 J since the reboot
            await monitor.poll_once()
            # aenergy.total has 3 decimals (0.001 Wh = 3.6 J): within one step
            assert energy._value.get() - before == pytest.approx(232.5, abs=3.6)

            stale = await node_annotations(kube, node)
            plug.hang()
            for _ in range(3):
                clock.now += 30  # heartbeats due, but nothing read: nothing written
                await monitor.poll_once()
            assert await node_annotations(kube, node) == stale
            plug.hang(False)
            clock.now += 30
            # The timestamp is the wall clock's, in whole seconds: wait for the next one.
            await eventually(
                wall_second,
                until=lambda now: now != stale[TS],
                timeout=5,
                what="the wall clock's next second",
                interval=0.05,
            )
            await monitor.poll_once()
            assert (await node_annotations(kube, node))[TS] != stale[TS]
        finally:
            await monitor.close()


async def test_wrong_credentials_one_error_no_annotation(
    kube: KubeClient, nodes: Callable[..., Awaitable[str]], tmp_path: Path
) -> None:
    node = await nodes()
    async with FakeShelly(gen=3, password="not-" + PASSWORD) as plug:
        with capture_logs() as logs:
            monitor = NodeMonitor(
                node,
                ConfigStore(str(config_file(tmp_path, node, plug.url))),
                KubeNodeAnnotator(kube),
                Metrics(),
                structlog.get_logger("test"),
                reader=KubeNodeReader(kube),
            )
            try:
                await monitor.reconfigure()
                for _ in range(3):
                    await monitor.poll_once()
            finally:
                await monitor.close()
    assert W not in await node_annotations(kube, node)
    failing = [e for e in logs if e["event"] == "power read failing"]
    assert len(failing) == 1 and failing[0]["kind"] == "auth"
    assert PASSWORD not in repr(logs)


class OnlyNodes:
    """A ClusterView limited to some nodes: the session's other KWOK nodes stay untouched."""

    def __init__(self, view: ReflectorClusterView, names: Callable[[str], bool]) -> None:
        self.view = view
        self.names = names

    def has_synced(self) -> bool:
        return self.view.has_synced()

    def nodes(self) -> Iterable[NodeInfo]:
        return [n for n in self.view.nodes() if self.names(n.name)]

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return self.view.pods_on_node(node)

    def knowledge_base(self) -> KnowledgeBase:
        return self.view.knowledge_base()


@pytest.fixture
async def profile(
    kube: KubeClient, knowledge_base: None
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    created: list[str] = []

    async def create(selector: Mapping[str, str]) -> str:
        name = f"mon-{uuid.uuid4().hex[:8]}"
        await kube.create(api_path(API_VERSION, PROFILE_PLURAL), profile_manifest(name, selector))
        created.append(name)
        return name

    yield create
    for name in created:
        await kube.delete(api_path(API_VERSION, PROFILE_PLURAL, name=name))


async def test_model_drives_kwok_node_annotations_as_pods_start_and_finish(
    kube: KubeClient,
    nodes: Callable[..., Awaitable[str]],
    profile: Callable[..., Awaitable[str]],
    namespace: str,
) -> None:
    node = await nodes("mon-kwok", kwok=True)
    await profile({"kubernetes.io/hostname": node})
    log = structlog.get_logger("test")
    view = ReflectorClusterView(kube, log)
    store = ConfigStore(
        None,
        parse_config_text(
            "pollIntervalSeconds: 1\n"
            "publish: {minIntervalSeconds: 1, heartbeatSeconds: 10, absoluteWatts: 1}\n"
        ),
    )
    monitor = ModelMonitor(
        OnlyNodes(view, lambda n: n == node), KubeNodeAnnotator(kube), store,
        Reporter(Metrics(), log), log,
    )  # fmt: skip
    stop = asyncio.Event()
    tasks = [asyncio.create_task(view.run(stop)), asyncio.create_task(monitor.run(stop))]

    async def watts_are(expected: str) -> bool:
        return (await node_annotations(kube, node)).get(W) == expected

    try:
        await wait_for(lambda: watts_are("10.0"), 30, "the idle power of the profile")
        pod = pod_manifest(
            "train",
            nodeName=node,
            metadata={
                "labels": {WORKLOAD_TYPE_LABEL: "training"},
                "annotations": {SIMULATED_DURATION_ANNOTATION: "6s"},
            },
        )
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "4"
        await kube.create(api_path("v1", "pods", namespace), pod)
        await wait_for(lambda: watts_are("50.0"), 30, "training power while the pod runs")
        assert (await node_annotations(kube, node))[POWER_SOURCE_ANNOTATION] == "model; simulated"
        await wait_for(lambda: watts_are("10.0"), 30, "idle again after the pod finished")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)


class CountingAnnotator:
    def __init__(self, inner: KubeNodeAnnotator) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.latencies: list[float] = []
        self.errors = 0

    async def patch_node_annotations(
        self, node: str, annotations: Mapping[str, str | None]
    ) -> None:
        start = time.monotonic()
        try:
            await self.inner.patch_node_annotations(node, annotations)
        except Exception:
            self.errors += 1
            raise
        self.times.append(start)
        self.latencies.append(time.monotonic() - start)


async def wall_second() -> str:
    """The wall clock as an annotation's timestamp shows it (whole seconds)."""
    return format_timestamp(time.time())


def _max_in_window(times: list[float], window: float) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.mark.skipif(
    not os.environ.get("ENERGYSCHED_MONITOR_SCALE_NODES"),
    reason="opt-in: ENERGYSCHED_MONITOR_SCALE_NODES=1000 [ENERGYSCHED_MONITOR_SCALE_SECONDS=120]",
)
async def test_write_rate_with_many_simulated_nodes(
    kube: KubeClient, kubeconfig: Path, profile: Callable[..., Awaitable[str]]
) -> None:
    n = int(os.environ["ENERGYSCHED_MONITOR_SCALE_NODES"])
    seconds = float(os.environ.get("ENERGYSCHED_MONITOR_SCALE_SECONDS", "120"))
    tag = uuid.uuid4().hex[:8]
    label = {"energysched-monitor-scale": tag}
    await profile(label)
    names = [f"scale-{tag}-{i:05d}" for i in range(n)]
    semaphore = asyncio.Semaphore(32)

    async def create(name: str) -> None:
        async with semaphore:
            await kube.create(api_path("v1", "nodes"), node_manifest(name, labels=label))

    async def delete(name: str) -> None:
        async with semaphore:
            with contextlib.suppress(ApiError):
                await kube.delete(api_path("v1", "nodes", name=name))

    await asyncio.gather(*(create(name) for name in names))
    log = structlog.get_logger("test")
    config = parse_config_text(
        "selectors: [{matchLabels: {energysched-monitor-scale: '" + tag + "'}, "
        "source: {kind: model}}]"
    )
    try:
        async with KubeClient(load_kubeconfig(kubeconfig), qps=100, burst=200) as client:
            counting = CountingAnnotator(KubeNodeAnnotator(client))
            view = ReflectorClusterView(client, log)
            monitor = ModelMonitor(
                OnlyNodes(view, lambda name: name.startswith(f"scale-{tag}-")),
                counting,
                ConfigStore(None, config),
                Reporter(Metrics(), log, quiet_ready=True),
                log,
            )
            stop = asyncio.Event()
            tasks = [asyncio.create_task(view.run(stop)), asyncio.create_task(monitor.run(stop))]
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
        times = sorted(counting.times)
        t0 = times[0]
        steady = [t for t in times if t >= t0 + 60]
        steady_rate = len(steady) / max(1.0, times[-1] - (t0 + 60)) if steady else 0.0
        lat = sorted(counting.latencies)
        report = (
            f"{n} nodes, {seconds:.0f} s: {len(times)} patches, mean "
            f"{len(times) / (times[-1] - t0):.1f}/s, steady (after 60 s) {steady_rate:.1f}/s, "
            f"max 1 s {_max_in_window(times, 1.0)}, max 10 s {_max_in_window(times, 10.0)}, "
            f"patch latency p50 {statistics.median(lat) * 1000:.1f} ms "
            f"p99 {lat[int(len(lat) * 0.99)] * 1000:.1f} ms, errors {counting.errors}"
        )
        print(report)
        budget = config.max_writes_per_second
        assert counting.errors == 0
        assert _max_in_window(times, 10.0) <= budget * 10 + config.write_burst
        listed = await kube.list_all(
            api_path("v1", "nodes"), labelSelector=f"energysched-monitor-scale={tag}"
        )
        fresh = 0
        for obj in listed["items"]:
            stamp = (obj["metadata"].get("annotations") or {}).get(TS)
            if stamp and (datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds() < 60:
                fresh += 1
        print(f"nodes with a reading fresher than 60 s at the end: {fresh}/{n}")
        if seconds >= 90 and n / config.publish.heartbeat_seconds < budget:
            assert fresh == n
    finally:
        await asyncio.gather(*(delete(name) for name in names))
