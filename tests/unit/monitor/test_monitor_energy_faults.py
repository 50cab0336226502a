"""The monitor's energy against the true energy of a plug that misbehaves.

A fake plug on loopback draws a known power; it reboots while answering, hangs,
answers garbage and reboots in the middle of outages, and its meter restarts each
time while the load behind it does not. The monitor polls it on its own schedule
(backoff included) with the time of a test clock that the plug shares, so the
scenario is exact and fast. Its integral must stay within 2 % of what the load drew.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import structlog

from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.config import ConfigStore
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor

from .conftest import PASSWORD, Clock, RecordingAnnotator

Start = Callable[..., Awaitable[FakeShelly]]


def write_config(tmp_path: Path, url: str) -> Path:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "plug").write_text(PASSWORD + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"""
secretsDir: {secrets}
pollIntervalSeconds: 5
timeoutSeconds: 0.2
nodes:
  n1: {{kind: shelly, address: "{url}", credentials: {{secretKey: plug}}, maxWatts: 500}}
"""
    )
    return path


def _scenario(device: FakeShelly) -> list[tuple[float, Callable[[], None]]]:
    """(seconds after the first poll, what happens to the plug)."""
    return [
        (22.3, device.reboot),  # answering all the while: the next poll sees uptime 2 s
        (31.0, lambda: device.set_power(140.0)),
        (40.2, device.hang),  # an outage ...
        (47.6, device.reboot),  # ... with a reboot in the middle
        (50.5, lambda: device.hang(False)),
        (61.0, device.set_garbage),  # 200 with a truncated body
        (68.0, lambda: device.set_garbage(False)),
        (75.1, device.hang),  # another outage, the power changing inside it
        (79.0, lambda: device.set_power(90.0)),
        (82.4, device.reboot),
        (86.0, lambda: device.hang(False)),
        (101.7, device.reboot),
    ]


def _count(m: NodeMonitor, metric: str, labels: dict[str, str]) -> float:
    return m.metrics.registry.get_sample_value(metric, {"node": "n1", **labels}) or 0.0


@pytest.mark.parametrize(("gen", "component"), [(1, "switch"), (2, "switch"), (3, "pm1")])
async def test_energy_within_two_percent_through_reboots_hangs_and_garbage(
    fake_shelly: Start,
    tmp_path: Path,
    annotator: RecordingAnnotator,
    clock: Clock,
    gen: int,
    component: str,
) -> None:
    device = await fake_shelly(
        gen=gen, component=component, password=PASSWORD, power=100.0, energy_wh=7.0, realtime=True
    )
    m = NodeMonitor(
        "n1",
        ConfigStore(str(write_config(tmp_path, device.url))),
        annotator,
        Metrics(),
        structlog.get_logger("test"),
        clock=clock,
        wall=clock,
    )
    try:
        await m.reconfigure()
        start = clock.now
        events = _scenario(device)
        delay = await m.poll_once()
        true_start = device.state()["true_energy_wh"]
        while clock.now - start < 120:
            due = clock.now + delay
            while events and start + events[0][0] <= due:
                at, act = events.pop(0)
                clock.now = start + at  # the plug accrues up to here at the old power
                act()
            clock.now = due
            delay = await m.poll_once()
        true_joules = (device.state()["true_energy_wh"] - true_start) * 3600.0
    finally:
        await m.close()

    measured = m.tracker.integrator.total_joules
    figure = f"{(measured / true_joules - 1) * 100:+.2f} %"
    print(f"gen{gen}: monitor {measured:.0f} J, true {true_joules:.0f} J ({figure})")
    assert true_joules == pytest.approx(100 * 31 + 140 * 48 + 90 * 41, rel=0.01)
    # The scenario happened as described: four reboots seen, failures of both kinds.
    steps = "energysched_monitor_integration_steps_total"
    assert _count(m, steps, {"rule": "reboot"}) == 4
    errors = "energysched_monitor_read_errors_total"
    assert _count(m, errors, {"source": "shelly", "kind": "timeout"}) >= 2
    assert _count(m, errors, {"source": "shelly", "kind": "malformed"}) >= 1
    assert measured == pytest.approx(true_joules, rel=0.02), figure
