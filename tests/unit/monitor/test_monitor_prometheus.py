"""The prometheus source against a real Prometheus (Debian's package) scraping an exporter
on loopback, through the cluster-wide mode that sends one query per poll for all nodes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    POWER_SOURCE_CONFIG_ANNOTATION,
)
from energysched.kb.profiles import KnowledgeBase
from energysched_lab.prometheus_lab import PowerExporter, PrometheusServer
from energysched_monitor.config import ConfigStore
from energysched_monitor.interfaces import NodeInfo, PodInfo
from energysched_monitor.metrics import Metrics
from energysched_monitor.prometheus import (
    NodeQuery,
    PrometheusClient,
    Series,
    combined_query,
    node_outcomes,
)
from energysched_monitor.prometheus_monitor import PrometheusMonitor
from energysched_monitor.readings import ReadError, Reading
from energysched_monitor.tracker import Reporter

from .conftest import RecordingAnnotator

NODES = [f"srv-{i:02d}" for i in range(10)]
IPMI = "ipmi_dcmi_power_consumption_watts"


@pytest.fixture(scope="module")
def prom() -> Iterator[tuple[PowerExporter, PrometheusServer]]:
    exporter = PowerExporter({name: 100.0 + i for i, name in enumerate(NODES)})
    exporter.two_sensors.add("srv-09")
    exporter.start()
    server = PrometheusServer([exporter.url], scrape_seconds=1.0)
    try:
        server.start()
        yield exporter, server
    finally:
        server.stop()
        exporter.stop()


class View:
    """The project's own ClusterView interface, over a fixed node list."""

    def __init__(self, nodes: Iterable[NodeInfo]) -> None:
        self._nodes = list(nodes)

    def has_synced(self) -> bool:
        return True

    def nodes(self) -> Iterable[NodeInfo]:
        return self._nodes

    def pods_on_node(self, node: str) -> Iterable[PodInfo]:
        return ()

    def knowledge_base(self) -> KnowledgeBase:
        raise AssertionError("not used by the prometheus mode")


def monitor(tmp_path: Path, url: str, source: str, annotator: RecordingAnnotator) -> Any:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
publish: {{maxWritesPerSecond: 0, heartbeatJitter: 0}}
selectors:
  - matchLabels: {{rack: a}}
    source: {{kind: prometheus, address: "{url}", {source}}}
"""
    )
    view = View(NodeInfo(n, labels={"rack": "a"}) for n in NODES)
    log = structlog.get_logger("t")
    return PrometheusMonitor(
        view, annotator, ConfigStore(str(config)), Reporter(Metrics(), log), log
    )


async def read_all(m: PrometheusMonitor) -> dict[str, Reading | ReadError]:
    m.reconfigure()
    config = m.store.config
    nodes = {n.name: n for n in m.view.nodes() if m._served(n, config)}
    return await m.read_all(nodes, config)


async def test_one_request_serves_every_node_and_publishes_them(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    await server.wait_for_series(IPMI, len(NODES))
    m = monitor(tmp_path, server.url, f"query: {IPMI}", annotator)
    try:
        m.reconfigure()
        sent = await m.tick()
        (client,) = m.clients.values()
        assert client.requests == 1  # ten nodes, one query
        assert sent == len(NODES)
        for i, name in enumerate(NODES):
            assert (annotator.last(name) or {})[CURRENT_WATTS_ANNOTATION] == f"{100.0 + i:.1f}"
        await m.tick()
        assert client.requests == 2  # one per poll
    finally:
        await m.close()


async def test_staleness_is_the_samples_own_time(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    await server.wait_for_series(IPMI, len(NODES))
    client = PrometheusClient(server.url, timeout=5)
    try:
        series = await client.query(combined_query(IPMI, None))
    finally:
        await client.close()
    mine = [x for x in series if x.labels.get("node") == "srv-00"]
    (watts,) = [x for x in mine if x.labels["energysched_field"] == "watts"]
    (stamp,) = [x for x in mine if x.labels["energysched_field"] == "ts"]
    # the scrape's own time: before the query's evaluation, within the 1 s scrape interval
    assert watts.evaluated_at - 3.0 < stamp.value < watts.evaluated_at
    outcomes = node_outcomes(
        series, "node", [NodeQuery("srv-00", "srv-00", 60)], stamp.value + 1, "p"
    )
    reading = outcomes["srv-00"]
    assert isinstance(reading, Reading) and reading.sampled_at == stamp.value
    old = monitor(tmp_path, server.url, f"query: {IPMI}, maxSampleAgeSeconds: 0.001", annotator)
    try:
        stale = (await read_all(old))["srv-00"]
    finally:
        await old.close()
    assert isinstance(stale, ReadError) and stale.kind == "stale"
    assert "s old (maxSampleAgeSeconds 0.001)" in stale.message


async def test_documented_queries_kepler_and_hwmon(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    await server.wait_for_series("kepler_node_platform_joules_total", len(NODES))
    kepler = monitor(
        tmp_path,
        server.url,
        "query: 'sum by (node) (rate(kepler_node_platform_joules_total[5s]))', "
        "timestampQuery: 'timestamp(kepler_node_platform_joules_total)'",
        annotator,
    )
    hwmon = monitor(
        tmp_path,
        server.url,
        "query: 'node_hwmon_power_average_watt{sensor=\"power1\"}'",
        annotator,
    )
    try:
        await server.wait_for_series("rate(kepler_node_platform_joules_total[5s])", len(NODES))
        k = await read_all(kepler)
        h = await read_all(hwmon)
    finally:
        await kepler.close()
        await hwmon.close()
    for i, name in enumerate(NODES):
        kr, hr = k[name], h[name]
        assert isinstance(kr, Reading) and kr.watts == pytest.approx(100.0 + i, rel=0.05)
        assert isinstance(hr, Reading) and hr.watts == 100.0 + i


async def test_several_series_for_one_node_is_no_reading(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    await server.wait_for_series("node_hwmon_power_average_watt", len(NODES) + 1)
    m = monitor(tmp_path, server.url, "query: node_hwmon_power_average_watt", annotator)
    try:
        outcomes = await read_all(m)
    finally:
        await m.close()
    bad = outcomes["srv-09"]
    assert isinstance(bad, ReadError) and bad.kind == "malformed"
    assert '2 series for node="srv-09"' in bad.message and 'sensor="power2"' in bad.message
    assert isinstance(outcomes["srv-08"], Reading)


async def test_promql_error_names_the_problem(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    m = monitor(tmp_path, server.url, "query: 'sum by (node (ipmi'", annotator)
    try:
        with capture_logs() as logs:
            outcomes = await read_all(m)
            await m.tick()
            await m.tick()
    finally:
        await m.close()
    events = [e["event"] for e in logs]
    # one line for the query, not one per node, and not again while it keeps failing
    assert events.count("prometheus query failing; its nodes get no reading") == 1
    assert "power read failing" not in events
    assert set(outcomes) == set(NODES)
    error = outcomes["srv-00"]
    assert isinstance(error, ReadError) and error.kind == "config"
    assert "PromQL bad_data error" in error.message and "parse error" in error.message
    assert annotator.patches == []  # no node got a number


async def test_unreachable_prometheus() -> None:
    from energysched_lab.prometheus_lab import free_port

    client = PrometheusClient(f"http://127.0.0.1:{free_port()}", timeout=1.0)
    with pytest.raises(ReadError) as err:
        await client.query(combined_query(IPMI, None))
    await client.close()
    assert err.value.kind == "unreachable"


async def test_a_gone_exporter_series_means_no_reading(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    exporter, server = prom
    await server.wait_for_series(IPMI, len(NODES))
    exporter.set_watts("srv-05", None)
    m = monitor(tmp_path, server.url, f"query: {IPMI}", annotator)
    try:
        import asyncio
        import time

        deadline = time.monotonic() + 15
        outcome: Reading | ReadError = Reading(0, "prometheus")
        while time.monotonic() < deadline:  # the next scrape marks the series stale
            outcome = (await read_all(m))["srv-05"]
            if isinstance(outcome, ReadError):
                break
            await asyncio.sleep(0.25)
    finally:
        exporter.set_watts("srv-05", 105.0)
        await m.close()
    assert isinstance(outcome, ReadError) and outcome.kind == "stale"
    assert 'no series with node="srv-05"' in outcome.message


def test_node_outcomes_pure() -> None:
    series = [
        Series({"node": "a", "energysched_field": "watts"}, 50.0, 1000.0),
        Series({"node": "a", "energysched_field": "ts"}, 990.0, 1000.0),
        Series({"node": "b", "energysched_field": "watts"}, float("nan"), 1000.0),
    ]
    wanted = [NodeQuery("a", "a", 30), NodeQuery("b", "b", 30), NodeQuery("c", None, 30)]
    out = node_outcomes(series, "node", wanted, 1000.0, "prom")
    a = out["a"]
    assert isinstance(a, Reading) and a.watts == 50 and a.sampled_at == 990.0
    assert isinstance(out["b"], ReadError) and "nan" in out["b"].message
    assert isinstance(out["c"], ReadError) and out["c"].kind == "config"
    old = node_outcomes(series, "node", [NodeQuery("a", "a", 5)], 1000.0, "prom")["a"]
    assert isinstance(old, ReadError) and "10 s old" in old.message


async def test_published_timestamp_is_the_samples(
    prom: tuple[PowerExporter, PrometheusServer], tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    _, server = prom
    await server.wait_for_series(IPMI, len(NODES))
    m = monitor(tmp_path, server.url, f"query: {IPMI}", annotator)
    try:
        m.reconfigure()
        await m.tick()
        outcomes = await read_all(m)
    finally:
        await m.close()
    written = annotator.last("srv-00") or {}
    reading = outcomes["srv-00"]
    assert isinstance(reading, Reading) and reading.sampled_at is not None
    import datetime as dt

    stamp = dt.datetime.fromisoformat(written[CURRENT_WATTS_TIMESTAMP_ANNOTATION] or "")
    assert abs(stamp.timestamp() - reading.sampled_at) <= 3.0  # scrapes 1 s apart, whole seconds


def test_series_value_templated_by_name_or_label() -> None:
    from energysched_monitor.config import parse_config, parse_override
    from energysched_monitor.prometheus import PrometheusFields

    spec = parse_config(
        {
            "nodes": {
                "a": {
                    "kind": "prometheus",
                    "address": "http://prom:9090",
                    "query": IPMI,
                    "seriesLabel": "instance",
                    "seriesValue": "$node:9290",
                    "nodeLabel": "kubernetes.io/hostname",
                }
            }
        }
    ).nodes["a"]
    query = spec.settings_as(PrometheusFields)  # the kind's own keys
    node = NodeInfo("a", labels={"kubernetes.io/hostname": "a.rack1"})
    assert query.series_value_for(node) == "a.rack1:9290"
    assert query.series_value_for(NodeInfo("a")) is None  # lacks the label: no reading
    by_name = parse_override('{"kind": "prometheus", "address": "http://prom:9090", "query": "up"}')
    assert by_name.settings_as(PrometheusFields).series_value_for(NodeInfo("b")) == "b"
    with pytest.raises(ValueError) as err:  # a path in an annotation: refused
        parse_override(
            '{"kind": "prometheus", "address": "https://p", "query": "up", "caBundle": "/etc/x"}'
        )
    assert "caBundle: not allowed in a node annotation" in str(err.value)


def test_a_bad_override_annotation_is_logged_once_and_the_node_not_served(
    tmp_path: Path, annotator: RecordingAnnotator
) -> None:
    m = monitor(tmp_path, "http://127.0.0.1:9", f"query: {IPMI}", annotator)
    m.reconfigure()
    config = m.store.config
    bad = NodeInfo(
        "srv-bad",
        labels={"rack": "a"},
        annotations={POWER_SOURCE_CONFIG_ANNOTATION: '{"kind": "prometheus", "query": 7}'},
    )
    with capture_logs() as logs:
        assert not m._served(bad, config)
        assert not m._served(bad, config)  # the same value: not logged again
        assert m._served(NodeInfo(bad.name, labels=bad.labels), config)  # removed: served
    invalid = [e for e in logs if e["event"].startswith("node annotation override invalid")]
    assert len(invalid) == 1, logs
    assert invalid[0]["node"] == "srv-bad" and "query" in invalid[0]["error"]
    assert "Prometheus" in invalid[0]["event"]
    assert [e["event"] for e in logs][-1] == "node annotation override valid again"
