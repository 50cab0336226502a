"""The Shelly client against real fake devices on loopback, and the pure reply parsers."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.readings import ReadError
from energysched_monitor.secret import Secret
from energysched_monitor.shelly import ShellySource

from .conftest import PASSWORD

Start = Callable[..., Awaitable[FakeShelly]]


def source(device: FakeShelly, password: str | None = PASSWORD, **kw: Any) -> ShellySource:
    return ShellySource(
        device.url, password=Secret(password) if password else None, timeout=1.0, **kw
    )


async def test_gen1_basic_auth(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=1, password=PASSWORD, power=42.5, energy_wh=2.0)
    src = source(device)
    try:
        reading = await src.read()
    finally:
        await src.close()
    assert reading.watts == 42.5
    assert reading.energy_joules == 120 * 60  # 2 Wh = 120 watt-minutes
    assert reading.detail["gen"] == 1
    assert device.requests[-1] == ("/status", True)


@pytest.mark.parametrize(
    ("gen", "component"), [(2, "switch"), (3, "switch"), (3, "pm1"), (4, "pm1")]
)
async def test_gen2plus_digest_auth(fake_shelly: Start, gen: int, component: str) -> None:
    device = await fake_shelly(
        gen=gen, component=component, password=PASSWORD, power=17.3, energy_wh=1.5
    )
    src = source(device)
    try:
        reading = await src.read()
        assert reading.watts == 17.3
        assert reading.energy_joules == pytest.approx(1.5 * 3600)
        assert reading.detail == {"gen": gen, "component": f"{component}:0"}
        assert reading.uptime_seconds == 0
        # the nonce is reused with an increasing nc: no further 401 round trips
        for _ in range(3):
            await src.read()
    finally:
        await src.close()
    rpc = [r for r in device.requests if r[0].startswith("/rpc/")]
    denied = [r for r in rpc if not r[1]]
    assert len(denied) == 1  # one challenge
    # one request per reading: the counter and the uptime of the same instant
    assert rpc[1:] == [("/rpc/Shelly.GetStatus", True)] * 4


async def test_device_without_auth(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=2, power=5.0)
    src = source(device, password=None)
    try:
        assert (await src.read()).watts == 5.0
    finally:
        await src.close()


@pytest.mark.parametrize("gen", [1, 2, 3])
async def test_wrong_credentials_give_one_auth_error(fake_shelly: Start, gen: int) -> None:
    device = await fake_shelly(gen=gen, password="the-real-one")
    src = source(device, password=PASSWORD)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
    finally:
        await src.close()
    assert info.value.kind == "auth"
    assert "rejected the credentials of user 'admin'" in info.value.message
    assert PASSWORD not in info.value.message and "the-real-one" not in info.value.message


@pytest.mark.parametrize("gen", [1, 2])
async def test_missing_credentials(fake_shelly: Start, gen: int) -> None:
    device = await fake_shelly(gen=gen, password=PASSWORD)
    src = source(device, password=None)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
    finally:
        await src.close()
    assert info.value.kind == "auth"
    # Not "rejected the credentials": there were none to reject.
    assert "requires authentication but no credentials are configured" in info.value.message


@pytest.mark.parametrize(("gen", "component"), [(1, "switch"), (2, "switch"), (4, "pm1")])
async def test_uptime_is_read_and_restarts_at_reboot(
    fake_shelly: Start, clock: Any, gen: int, component: str
) -> None:
    device = await fake_shelly(gen=gen, component=component, password=PASSWORD)
    src = source(device)
    try:
        clock.advance(1234.5)
        assert (await src.read()).uptime_seconds == 1234  # whole seconds, as the firmware
        device.reboot()
        clock.advance(3)
        assert (await src.read()).uptime_seconds == 3
    finally:
        await src.close()


async def test_password_change_is_an_auth_error_then_recovers(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=2, password=PASSWORD)
    src = source(device)
    try:
        await src.read()
        device.set_password("changed")
        with pytest.raises(ReadError, match="rejected"):
            await src.read()
        device.set_password(PASSWORD)
        assert (await src.read()).watts == device.power
    finally:
        await src.close()


async def test_reboot_resets_counter_and_nonces(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=3, password=PASSWORD, energy_wh=10.0)
    src = source(device)
    try:
        before = await src.read()
        device.reboot()  # counters to 0, nonces forgotten: the client re-authenticates
        after = await src.read()
    finally:
        await src.close()
    assert before.energy_joules == pytest.approx(36_000)
    assert after.energy_joules == 0
    assert device.uptime < 5


async def test_hang_is_a_timeout(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=2)
    device.hang()
    src = ShellySource(device.url, timeout=0.2)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
        assert info.value.kind == "timeout"
        device.hang(False)
        assert (await src.read()).watts == device.power  # and it recovers
    finally:
        await src.close()


@pytest.mark.parametrize("gen", [1, 2])
async def test_garbage_is_malformed(fake_shelly: Start, gen: int) -> None:
    device = await fake_shelly(gen=gen)
    src = ShellySource(device.url, timeout=1.0)
    try:
        await src.read()
        device.set_garbage()
        with pytest.raises(ReadError) as info:
            await src.read()
        assert info.value.kind == "malformed"
        assert "not JSON" in info.value.message and "apower" in info.value.message
        device.set_garbage(False)
        assert (await src.read()).watts == device.power
    finally:
        await src.close()


async def test_unreachable() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    src = ShellySource(f"127.0.0.1:{port}", timeout=1.0)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
    finally:
        await src.close()
    assert info.value.kind == "unreachable"
    assert src.base_url == f"http://127.0.0.1:{port}"


async def test_component_pinned_to_switch_on_a_pm1_device(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=3, component="pm1")
    src = ShellySource(device.url, component="switch", timeout=1.0)
    try:
        with pytest.raises(ReadError) as info:
            await src.read()
    finally:
        await src.close()
    assert info.value.kind == "unsupported"


async def test_control_api_over_http(fake_shelly: Start) -> None:
    device = await fake_shelly(gen=2)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{device.url}/_fake/power", json={"watts": 99.5}) as resp:
            assert (await resp.json())["power"] == 99.5
        async with http.post(f"{device.url}/_fake/reboot") as resp:
            assert (await resp.json())["energy_wh"] == 0
        async with http.get(f"{device.url}/shelly") as resp:
            info = await resp.json()
    assert info["gen"] == 2 and info["id"] == device.device_id and info["auth_en"] is False
    assert device.power == 99.5
