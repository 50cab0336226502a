"""The Redfish power source against a BMC on loopback, and the monitor publishing it.

The BMC here is the project's fake (:mod:`energysched_lab.fake_redfish`, written from
DMTF's schemas: no Redfish server others wrote that serves power readings installs from
a registry); the Reset tests in ``tests/unit/powermanager`` use OpenStack's
sushy-emulator, and ``test_sushy_chassis_has_neither_schema`` reads its chassis here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import structlog

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
)
from energysched_lab.cluster.pki import LocalPKI
from energysched_lab.fake_redfish import FakeRedfish
from energysched_monitor.config import ConfigStore, parse_config
from energysched_monitor.metrics import Metrics
from energysched_monitor.node_monitor import NodeMonitor
from energysched_monitor.readings import ReadError
from energysched_monitor.redfish import RedfishClient, RedfishSource
from energysched_monitor.redfish_payload import parse_power
from energysched_monitor.secret import Secret

from .conftest import PASSWORD, Clock, RecordingAnnotator

Start = Callable[..., Awaitable[FakeRedfish]]


@pytest.fixture
async def bmc() -> AsyncIterator[Start]:
    started: list[FakeRedfish] = []

    async def start(**kwargs: Any) -> FakeRedfish:
        kwargs.setdefault("password", PASSWORD)
        device = FakeRedfish(**kwargs)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


def source(device: FakeRedfish, password: str | None = PASSWORD, **kw: Any) -> RedfishSource:
    client_kw = {k: kw.pop(k) for k in ("auth", "ca_bundle", "insecure", "timeout") if k in kw}
    client_kw.setdefault("timeout", 1.0)
    client = RedfishClient(
        device.url,
        username="admin",
        password=Secret(password) if password else None,
        **client_kw,
    )
    return RedfishSource(client, **kw)


async def read(src: RedfishSource) -> Any:
    try:
        return await src.read()
    finally:
        await src.close()


@pytest.mark.parametrize(
    ("schema", "expected"), [("power", "power"), ("environment", "environmentMetrics")]
)
@pytest.mark.parametrize("auth", ["session", "basic"])
async def test_both_schemas_both_auths(bmc: Start, schema: str, expected: str, auth: str) -> None:
    device = await bmc(schema=schema, power=344.0 if schema == "power" else 374.0)
    reading = await read(source(device, auth=auth))
    assert reading.watts == device.power
    assert reading.source == "redfish"
    assert reading.detail["schema"] == expected
    if schema == "environment":
        assert reading.energy_joules is not None
        assert reading.uptime_seconds == pytest.approx(86400, abs=5)  # SensorResetTime
    else:
        assert reading.energy_joules is None
    if auth == "session":
        assert not device.sessions  # logged out on close


async def test_prefers_environment_metrics_when_both(bmc: Start) -> None:
    device = await bmc(schema="both", power=374.0)
    src = source(device)
    try:
        first = await src.read()
        before = device.requests
        second = await src.read()
        per_poll = device.requests - before
    finally:
        await src.close()
    assert first.detail["schema"] == second.detail["schema"] == "environmentMetrics"
    assert per_poll == 1  # after discovery: one request per poll


async def test_schema_pinned_to_power(bmc: Start) -> None:
    device = await bmc(schema="both")
    reading = await read(source(device, schema="power", chassis="1U"))
    assert reading.detail["resource"] == "/redfish/v1/Chassis/1U/Power"


async def test_neither_schema_is_a_clear_error(bmc: Start) -> None:
    device = await bmc(schema="neither")
    with pytest.raises(ReadError) as err:
        await read(source(device))
    assert err.value.kind == "unsupported"
    assert "/redfish/v1/Chassis/1U link neither EnvironmentMetrics" in err.value.message


@pytest.mark.parametrize("auth", ["session", "basic"])
async def test_wrong_password_401(bmc: Start, auth: str) -> None:
    device = await bmc(schema="both")
    with pytest.raises(ReadError) as err:
        await read(source(device, password="wrong-one", auth=auth))
    assert err.value.kind == "auth"
    assert "rejected user 'admin'" in err.value.message
    assert "wrong-one" not in err.value.message and PASSWORD not in err.value.message


async def test_no_credentials_401(bmc: Start) -> None:
    device = await bmc(schema="both")
    with pytest.raises(ReadError) as err:
        await read(source(device, password=None))
    assert err.value.kind == "auth" and "none configured" in err.value.message


async def test_503_garbage_and_hang(bmc: Start) -> None:
    device = await bmc(schema="both")
    src = source(device, timeout=0.3)
    try:
        assert (await src.read()).watts == 374.0
        device.fault_status = 503
        with pytest.raises(ReadError) as err:
            await src.read()
        assert err.value.kind == "http" and "HTTP 503" in err.value.message
        device.fault_status, device.garbage = None, True
        with pytest.raises(ReadError) as err:
            await src.read()
        assert err.value.kind == "malformed" and "not JSON" in err.value.message
        device.garbage = False
        device.hanging = True
        device._release = asyncio.Event()
        with pytest.raises(ReadError) as err:
            await src.read()
        assert err.value.kind == "timeout" and "0.3 s" in err.value.message
        device.hanging = False
        device._release.set()
        assert (await src.read()).watts == 374.0  # recovers (discovery again after garbage)
    finally:
        await src.close()


async def test_expired_session_logs_in_again(bmc: Start) -> None:
    device = await bmc(schema="both")
    src = source(device)
    try:
        await src.read()
        device.sessions.clear()  # the BMC dropped the session (timeout, reboot)
        assert (await src.read()).watts == 374.0
        assert len(device.sessions) == 1
    finally:
        await src.close()


async def test_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = RedfishClient(f"http://127.0.0.1:{port}", timeout=1.0)
    with pytest.raises(ReadError) as err:
        await read(RedfishSource(client))
    assert err.value.kind == "unreachable"


async def test_tls_with_ca_bundle_and_insecure(bmc: Start, tmp_path: Path) -> None:
    pki = LocalPKI(tmp_path / "pki")
    pair = pki.serving("bmc", ["localhost"], ["127.0.0.1"])
    device = await bmc(schema="power", certfile=str(pair.cert), keyfile=str(pair.key))
    assert device.url.startswith("https://")
    reading = await read(source(device, ca_bundle=str(pki.ca.cert)))
    assert reading.watts == device.power
    with pytest.raises(ReadError) as err:  # the system's CAs do not know the BMC's
        await read(source(device))
    assert "caBundle" in err.value.message and "not trusted" in err.value.message
    assert (await read(source(device, insecure=True))).watts == device.power


def test_payload_parsers_refuse_odd_values() -> None:
    for bad in (None, True, "374", float("nan")):
        with pytest.raises(ReadError) as err:
            parse_power({"PowerWatts": {"Reading": bad}}, "environmentMetrics", "x")
        assert "PowerWatts.Reading" in err.value.message
    with pytest.raises(ReadError) as err:
        parse_power({"PowerControl": [{"Name": "no reading"}]}, "power", "x")
    assert "PowerConsumedWatts" in err.value.message
    assert (
        parse_power(
            {"PowerControl": [{"PowerConsumedWatts": 200}, {"PowerConsumedWatts": 80}]},
            "power",
            "x",
        ).watts
        == 200
    )  # the first (whole chassis); sub-domains are part of it


# -- the monitor publishing a BMC's reading ------------------------------------------


def bmc_monitor(
    tmp_path: Path, url: str, annotator: RecordingAnnotator, clock: Clock, extra: str = ""
) -> NodeMonitor:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "bmc").write_text(PASSWORD)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
secretsDir: {secrets}
timeoutSeconds: 1
publish: {{heartbeatJitter: 0}}
nodes:
  s1: {{kind: redfish, address: "{url}", credentials: {{secretKey: bmc}}, maxWatts: 2000{extra}}}
"""
    )
    m = NodeMonitor(
        "s1",
        ConfigStore(str(config)),
        annotator,
        Metrics(),
        structlog.get_logger("t"),
        clock=clock,
        wall=clock,
    )
    return m


@pytest.mark.parametrize("schema", ["power", "environment"])
async def test_monitor_publishes_the_bmc_watts(
    bmc: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock, schema: str
) -> None:
    device = await bmc(schema=schema, power=344.0)
    m = bmc_monitor(tmp_path, device.url, annotator, clock)
    try:
        await m.reconfigure()
        delay = await m.poll_once()
        assert delay == 10  # a BMC is polled every 10 s by default, not every 5
        assert annotator.last("s1") is not None
        written = annotator.last("s1") or {}
        assert written[CURRENT_WATTS_ANNOTATION] == "344.0"
        assert written[POWER_SOURCE_ANNOTATION] == "redfish"
        device.fault_status = 401  # the BMC refuses: the reading goes missing, no write
        clock.advance(40)
        writes = len(annotator.patches)
        await m.poll_once()
        assert len(annotator.patches) == writes
    finally:
        await m.close()


async def test_monitor_integrates_the_bmc_counter_across_a_reset(
    bmc: Start, tmp_path: Path, annotator: RecordingAnnotator, clock: Clock
) -> None:
    """The kWh counter, reset on the BMC between two polls: counted from the new value,
    never negative, never the old total again (the Shelly counters' rule)."""
    device = await bmc(schema="environment", power=360.0, clock=clock, wall=clock, energy_kwh=5.0)
    m = bmc_monitor(tmp_path, device.url, annotator, clock)
    try:
        await m.reconfigure()
        await m.poll_once()
        for _ in range(6):  # 60 s at 360 W: 21.6 kJ, the counter's 6 Wh
            clock.advance(10)
            await m.poll_once()
        assert m.tracker.integrator.total_joules == pytest.approx(21600, abs=3600)
        clock.advance(5)
        device.reset_energy(0.0)
        clock.advance(5)
        await m.poll_once()
        total = m.tracker.integrator.total_joules
        assert 21600 - 3600 <= total <= 21600 + 3600 + 3600
        for _ in range(6):
            clock.advance(10)
            await m.poll_once()
        assert m.tracker.integrator.total_joules == pytest.approx(2 * 21600 + 3600, abs=7200)
    finally:
        await m.close()


def test_config_names_bad_redfish_settings() -> None:
    with pytest.raises(ValueError) as err:
        parse_config(
            {
                "nodes": {
                    "s": {
                        "kind": "redfish",
                        "address": "bmc.local",
                        "insecureSkipTLSVerify": True,
                        "caBundle": "/x",
                    }
                }
            }
        )
    text = str(err.value)
    assert "needs an address that is an http(s) URL" in text
    with pytest.raises(ValueError) as err:
        parse_config({"nodes": {"s": {"kind": "shelly", "address": "x", "auth": "basic"}}})
    assert "auth: only for kind redfish" in str(err.value)
