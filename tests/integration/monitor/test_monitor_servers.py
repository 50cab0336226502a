"""Servers' power sources against the local cluster: a BMC over Redfish, a real Prometheus.

Acceptance (issue "beyond smart plugs"):
* the monitor pointed at a Redfish BMC writes the node annotation with the BMC's watts,
  for both schemas (Power and EnvironmentMetrics); a BMC that then answers 503 leaves
  the last value to go stale (nothing new is written);
* the cluster-wide prometheus mode, against Debian's Prometheus scraping an exporter on
  loopback, writes every node's watts from one query per poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from energysched.contract import CURRENT_WATTS_ANNOTATION, POWER_SOURCE_ANNOTATION
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched_lab.fake_redfish import FakeRedfish
from energysched_lab.prometheus_lab import PowerExporter, PrometheusServer
from energysched_monitor.config import ConfigStore, parse_config_text
from energysched_monitor.kubeio import KubeNodeAnnotator, KubeNodeReader, ReflectorClusterView
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.prometheus_monitor import PrometheusMonitor
from energysched_monitor.tracker import Reporter
from tests.support import wait_for

from .test_monitor_cluster import OnlyNodes, node_annotations, node_manifest

PASSWORD = "bmc-integration-Pa55"
W = CURRENT_WATTS_ANNOTATION


@pytest.fixture
async def nodes(kube: KubeClient) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    created: list[str] = []

    async def create(prefix: str = "srv", **kw: Any) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        await kube.create(api_path("v1", "nodes"), node_manifest(name, **kw))
        created.append(name)
        return name

    yield create
    for name in created:
        with contextlib.suppress(ApiError):
            await kube.delete(api_path("v1", "nodes", name=name))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("schema", "watts"), [("power", 344.0), ("environment", 374.0)])
async def test_monitor_writes_the_bmcs_watts(
    kube: KubeClient,
    nodes: Callable[..., Awaitable[str]],
    tmp_path: Path,
    schema: str,
    watts: float,
) -> None:
    node = await nodes()
    (tmp_path / "bmc").write_text(PASSWORD)
    clock = Clock()
    async with FakeRedfish(schema=schema, power=watts, password=PASSWORD) as bmc:  # type: ignore[arg-type]
        config = tmp_path / "config.yaml"
        config.write_text(
            f"secretsDir: {tmp_path}\n"
            "publish: {heartbeatSeconds: 30, heartbeatJitter: 0}\n"
            f"nodes: {{{node}: {{kind: redfish, address: '{bmc.url}', "
            "credentials: {username: admin, secretKey: bmc}}}\n"
        )
        monitor = NodeMonitor(
            node,
            ConfigStore(str(config)),
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
            assert ann[W] == f"{watts:.1f}" and ann[POWER_SOURCE_ANNOTATION] == "redfish"
            bmc.fault_status = 503  # the BMC is busy: the reading goes missing
            for _ in range(3):
                clock.now += 40  # heartbeats due, nothing read, nothing written
                await monitor.poll_once()
            assert await node_annotations(kube, node) == ann
        finally:
            bmc.fault_status = None  # so that the logout below is answered
            await monitor.close()
        assert not bmc.sessions  # the monitor logged its session out


@pytest.fixture
def prometheus() -> Iterator[tuple[PowerExporter, PrometheusServer]]:
    exporter = PowerExporter()
    exporter.start()
    server = PrometheusServer([exporter.url], scrape_seconds=1.0)
    try:
        server.start()
        yield exporter, server
    finally:
        server.stop()
        exporter.stop()


async def test_prometheus_mode_writes_every_node_from_one_query(
    kube: KubeClient,
    knowledge_base: None,  # the cluster view lists EnergyProfiles: their CRD must exist
    nodes: Callable[..., Awaitable[str]],
    prometheus: tuple[PowerExporter, PrometheusServer],
) -> None:
    exporter, server = prometheus
    group = f"rack-{uuid.uuid4().hex[:6]}"
    names = [await nodes("prom", labels={"rack": group}) for _ in range(20)]
    for i, name in enumerate(names):
        exporter.set_watts(name, 200.0 + i)
    await server.wait_for_series("ipmi_dcmi_power_consumption_watts", len(names))
    log = structlog.get_logger("test")
    view = ReflectorClusterView(kube, log)
    store = ConfigStore(
        None,
        parse_config_text(
            "pollIntervalSeconds: 1\npublish: {maxWritesPerSecond: 0}\n"
            f"selectors: [{{matchLabels: {{rack: {group}}}, source: {{kind: prometheus, "
            f"address: '{server.url}', query: ipmi_dcmi_power_consumption_watts}}}}]\n"
        ),
    )
    wanted = set(names)
    monitor = PrometheusMonitor(
        OnlyNodes(view, lambda n: n in wanted), KubeNodeAnnotator(kube), store,
        Reporter(Metrics(), log), log,
    )  # fmt: skip
    stop = asyncio.Event()
    tasks = [asyncio.create_task(view.run(stop))]
    try:
        await wait_for(lambda: _true(view.has_synced()), 30, "caches synced")
        monitor.reconfigure()
        await monitor.tick()
        (client,) = monitor.clients.values()
        assert client.requests == 1  # twenty nodes, one query
        for i, name in enumerate(names):
            ann = await node_annotations(kube, name)
            assert ann[W] == f"{200.0 + i:.1f}" and ann[POWER_SOURCE_ANNOTATION] == "prometheus"
    finally:
        stop.set()
        await monitor.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _true(value: bool) -> bool:
    return value
