"""The DaemonSet loop against a fake plug: what gets written, what gets logged, and when."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
    POWER_SOURCE_CONFIG_ANNOTATION,
)
from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.config import ConfigStore
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor

from .conftest import PASSWORD, Clock, RecordingAnnotator

Start = Callable[..., Awaitable[FakeShelly]]
W, TS = CURRENT_WATTS_ANNOTATION, CURRENT_WATTS_TIMESTAMP_ANNOTATION


def write_config(tmp_path: Path, url: str, *, extra_nodes: str = "", poll: float = 5) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "plug").write_text(PASSWORD + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
secretsDir: {secrets}
pollIntervalSeconds: {poll}
timeoutSeconds: 0.3
maxBackoffSeconds: 60
publish:
  absoluteWatts: 5
  relativeChange: 0.1
  minIntervalSeconds: 15
  heartbeatSeconds: 30
  heartbeatJitter: 0
nodes:
  n1: {{kind: shelly, address: "{url}", credentials: {{secretKey: plug}}, maxWatts: 500}}
{extra_nodes}
"""
    )
    return path


class Reader:
    def __init__(self, info: NodeInfo | None = None) -> None:
        self.info = info
        self.fail: Exception | None = None

    async def get_node(self, name: str) -> NodeInfo | None:
        if self.fail:
            raise self.fail
        return self.info or NodeInfo(name)


_MONITORS: list[NodeMonitor] = []


@pytest.fixture(autouse=True)
async def _close_sources() -> AsyncIterator[None]:
    yield
    while _MONITORS:
        await _MONITORS.pop().close()


def monitor(
    config: Path,
    annotator: RecordingAnnotator,
    clock: Clock,
    node: str = "n1",
    reader: Reader | None = None,
) -> NodeMonitor:
    m = NodeMonitor(
        node,
        ConfigStore(str(config)),
        annotator,
        Metrics(),
        structlog.get_logger("test"),
        reader=reader,
        clock=clock,
        wall=clock,
    )
    _MONITORS.append(m)
    return m


def events(logs: Sequence[MutableMapping[str, Any]], name: str) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == name]


def energy(m: NodeMonitor) -> float:
    value = m.metrics.registry.get_sample_value(
        "energysched_monitor_energy_joules_total", {"node": m.node, "source": "shelly"}
    )
    return value or 0.0


def errors(m: NodeMonitor, kind: str) -> float:
    value = m.metrics.registry.get_sample_value(
        "energysched_monitor_read_errors_total",
        {"node": m.node, "source": "shelly", "kind": kind},
    )
    return value or 0.0


async def test_annotations_follow_the_plug(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD, power=10.0)
    m = monitor(write_config(tmp_path, device.url), annotator, clock)
    await m.reconfigure()
    assert await m.poll_once() == 5
    assert annotator.patches == [
        ("n1", {W: "10.0", TS: "1970-01-01T00:16:40Z", POWER_SOURCE_ANNOTATION: "shelly"})
    ]
    clock.advance(5)
    device.set_power(12.0)  # not noticeable: no write
    await m.poll_once()
    assert len(annotator.patches) == 1
    clock.advance(10)
    device.set_power(60.0)
    await m.poll_once()
    assert annotator.last("n1") == {
        W: "60.0",
        TS: "1970-01-01T00:16:55Z",
        POWER_SOURCE_ANNOTATION: "shelly",
    }
    clock.advance(30)  # steady: the heartbeat refreshes the timestamp
    await m.poll_once()
    assert len(annotator.patches) == 3
    assert annotator.last("n1") is not None and annotator.last("n1")[TS] == "1970-01-01T00:17:25Z"  # type: ignore[index]


async def test_reboot_gives_neither_negative_nor_doubled_energy(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=3, password=PASSWORD, power=360.0, energy_wh=100.0)
    m = monitor(write_config(tmp_path, device.url), annotator, clock)
    await m.reconfigure()
    await m.poll_once()  # the 100 Wh the plug counted before we started do not count
    for _ in range(2):
        clock.advance(5)
        device.advance(5)  # 360 W for 5 s = 1800 J
        await m.poll_once()
    assert energy(m) == pytest.approx(3600, abs=1)
    device.reboot()
    clock.advance(5)
    device.advance(5)
    await m.poll_once()  # counter fell from 100.5 Wh to 0.5 Wh, uptime 5 s: +1800 J
    clock.advance(5)
    device.advance(5)
    await m.poll_once()
    assert energy(m) == pytest.approx(4 * 1800, abs=1)
    steps = m.metrics.registry.get_sample_value(
        "energysched_monitor_integration_steps_total", {"node": "n1", "rule": "reboot"}
    )
    assert steps == 1


async def test_gen1_reboot_counts_watt_minutes(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=1, password=PASSWORD, power=120.0, energy_wh=50.0)
    m = monitor(write_config(tmp_path, device.url), annotator, clock)
    await m.reconfigure()
    await m.poll_once()
    device.reboot()
    clock.advance(60)
    device.advance(60)  # 120 W for a minute = 120 watt-minutes = 7200 J
    await m.poll_once()
    assert energy(m) == pytest.approx(7200)


async def test_hung_plug_leaves_the_timestamp_stale(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD, power=30.0)
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, device.url), annotator, clock)
        await m.reconfigure()
        await m.poll_once()
        device.hang()
        for _ in range(3):
            clock.advance(30)  # a heartbeat is due, but there is nothing to publish
            await m.poll_once()
        assert len(annotator.patches) == 1  # no new value, no new timestamp
        device.hang(False)
        clock.advance(30)
        await m.poll_once()
    assert len(annotator.patches) == 2
    assert errors(m, "timeout") == 3
    failing = events(logs, "power read failing")
    assert len(failing) == 1 and failing[0]["kind"] == "timeout"
    assert len(events(logs, "power read recovered")) == 1


async def test_wrong_credentials_one_clear_error_no_annotation_no_password(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password="not-" + PASSWORD)
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, device.url), annotator, clock)
        await m.reconfigure()
        for _ in range(4):
            clock.advance(60)
            await m.poll_once()
    assert annotator.patches == []
    failing = events(logs, "power read failing")
    assert len(failing) == 1
    assert failing[0]["kind"] == "auth"
    assert "rejected the credentials of user 'admin'" in failing[0]["error"]
    rendered = json.dumps(logs, default=repr)
    assert PASSWORD not in rendered
    assert errors(m, "auth") == 4


async def test_out_of_range_reading_is_rejected(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD, power=20.0)
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, device.url), annotator, clock)
        await m.reconfigure()
        await m.poll_once()
        for bad in (99_999.0, -40.0):  # maxWatts is 500; a server does not generate
            device.set_power(bad)
            clock.advance(30)
            await m.poll_once()
    assert [p[1][W] for p in annotator.patches] == ["20.0"]
    failing = events(logs, "power read failing")
    assert len(failing) == 1 and failing[0]["kind"] == "out_of_range"
    assert "99999.0" in failing[0]["error"]
    assert errors(m, "out_of_range") == 2


async def test_errors_are_logged_once_per_state_change(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD)
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, device.url), annotator, clock)
        await m.reconfigure()
        await m.poll_once()  # ok
        device.set_garbage()
        for _ in range(5):
            await m.poll_once()  # malformed x5: one line
        device.set_garbage(False)
        device.hang()
        for _ in range(2):
            await m.poll_once()  # timeout x2: one line (a different state)
        device.hang(False)
        for _ in range(3):
            await m.poll_once()  # ok x3: one line
    names = [
        (e["event"], e.get("kind") or e.get("was")) for e in logs if e["event"].startswith("power")
    ]
    assert names == [
        ("power source configured", None),
        ("power source ready", None),
        ("power read failing", "malformed"),
        ("power read failing", "timeout"),
        ("power read recovered", "timeout"),
    ]
    assert errors(m, "malformed") == 5


async def test_backoff_and_recovery(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD)
    m = monitor(write_config(tmp_path, device.url), annotator, clock)
    await m.reconfigure()
    assert await m.poll_once() == 5
    device.set_garbage()
    delays = [await m.poll_once() for _ in range(6)]
    assert delays == [10, 20, 40, 60, 60, 60]
    device.set_garbage(False)
    assert await m.poll_once() == 5  # recovered by itself
    assert await m.poll_once() == 5


async def test_failed_patch_is_retried_and_logged_once(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD)
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, device.url), annotator, clock)
        await m.reconfigure()
        annotator.fail = RuntimeError("503 apiserver unavailable")
        await m.poll_once()  # fails: the next attempt waits 5 to 15 s (backoff, jittered)
        attempts = m.metrics.annotation_writes.labels("first", "error")
        clock.advance(4.9)
        await m.poll_once()
        assert attempts._value.get() == 1
        for _ in range(12):
            clock.advance(5)
            await m.poll_once()
        assert attempts._value.get() < 8  # backing off, not one write per poll
        annotator.fail = None
        clock.advance(60)
        await m.poll_once()
    assert len(annotator.patches) == 1
    assert len(events(logs, "annotation write failing")) == 1
    assert len(events(logs, "annotation write recovered")) == 1


async def test_node_without_a_source(
    tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, "http://127.0.0.1:9"), annotator, clock, node="n2")
        await m.reconfigure()
        for _ in range(3):
            await m.poll_once()
    assert annotator.patches == []
    failing = events(logs, "power read failing")
    assert len(failing) == 1 and failing[0]["kind"] == "config"
    assert "no power source configured for node n2" in failing[0]["error"]


async def test_without_any_config_file(annotator: RecordingAnnotator, clock: Clock) -> None:
    m = NodeMonitor(
        "n3", ConfigStore(None), annotator, Metrics(), structlog.get_logger("t"), clock=clock
    )
    _MONITORS.append(m)
    with capture_logs() as logs:
        await m.reconfigure()
        await m.poll_once()
    failing = events(logs, "power read failing")
    assert "no power source configured for node n3" in failing[0]["error"]


async def test_annotation_override_and_bad_annotation(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    configured = await fake_shelly(gen=2, password=PASSWORD, power=10.0)
    other = await fake_shelly(gen=3, component="pm1", power=77.0)
    reader = Reader(
        NodeInfo(
            "n1",
            annotations={
                POWER_SOURCE_CONFIG_ANNOTATION: json.dumps({"kind": "shelly", "address": other.url})
            },
        )
    )
    with capture_logs() as logs:
        m = monitor(write_config(tmp_path, configured.url), annotator, clock, reader=reader)
        await m.reconfigure()
        await m.poll_once()
        assert annotator.last("n1") is not None and annotator.last("n1")[W] == "77.0"  # type: ignore[index]
        reader.info = NodeInfo("n1", annotations={POWER_SOURCE_CONFIG_ANNOTATION: "{oops"})
        for _ in range(2):
            await m.reconfigure()  # invalid: keep the current source, log once
        assert m.spec is not None and m.spec.address == other.url
        reader.fail = RuntimeError("apiserver down")
        await m.reconfigure()  # cannot read the node: keep going
        reader.fail, reader.info = None, None
        await m.reconfigure()  # annotation removed: back to the config file
        assert m.spec is not None and m.spec.address == configured.url
    invalid = events(logs, "node annotation override invalid; keeping the current source")
    assert len(invalid) == 1 and "'{oops'" in invalid[0]["error"]


async def test_invalid_config_keeps_the_last_good(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD, power=10.0)
    path = write_config(tmp_path, device.url)
    with capture_logs() as logs:
        m = monitor(path, annotator, clock)
        await m.reconfigure()
        path.write_text("nodes: {n1: {kind: shelly, adress: typo}}")
        await m.reconfigure()
        await m.reconfigure()
        await m.poll_once()
    assert annotator.last("n1") is not None
    bad = events(logs, "config invalid; keeping the last good config")
    assert len(bad) == 1 and bad[0]["error"].startswith(f"{path}: nodes.n1.adress: unknown field")
    assert m.metrics.registry.get_sample_value("energysched_monitor_config_valid") == 0


async def test_unreadable_secret_is_a_config_error_not_a_crash(
    fake_shelly: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD)
    path = write_config(tmp_path, device.url)
    (tmp_path / "secrets" / "plug").unlink()
    with capture_logs() as logs:
        m = monitor(path, annotator, clock)
        await m.reconfigure()
        await m.poll_once()
        (tmp_path / "secrets" / "plug").write_text(PASSWORD)
        await m.reconfigure()  # the Secret appeared: the source is built now
        await m.poll_once()
    failing = events(logs, "power read failing")
    assert len(failing) == 1 and "cannot read secret file" in failing[0]["error"]
    assert len(annotator.patches) == 1
