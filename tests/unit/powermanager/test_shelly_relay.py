"""The relay against the fake plug on loopback (a real HTTP server): every generation,
with the documented auth; wrong credentials, an unreachable plug, a plug without a relay."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from energysched.powermanager.methods import MethodError
from energysched.powermanager.methods.shelly_relay import ShellyRelay
from energysched_lab.fake_shelly import FakeShelly
from energysched_monitor.secret import Secret

PASSWORD = "relay-Pa55"
Start = Callable[..., Awaitable[FakeShelly]]


@pytest.fixture
async def plug() -> AsyncIterator[Start]:
    started: list[FakeShelly] = []

    async def start(**kwargs: Any) -> FakeShelly:
        device = FakeShelly(realtime=False, **kwargs)
        await device.start()
        started.append(device)
        return device

    yield start
    for device in started:
        await device.stop()


@pytest.mark.parametrize("gen", [1, 2, 3, 4])
async def test_off_then_on_with_auth(plug: Start, gen: int) -> None:
    device = await plug(gen=gen, password=PASSWORD, power=3.2)
    relay = ShellyRelay(device.url, password=Secret(PASSWORD), timeout=2, cycle_pause=0)
    try:
        await relay.finish_sleep()
        assert device.relay_on is False
        assert device.drawn == 0.0
        await relay.wake()
        assert device.relay_on is True
    finally:
        await relay.close()
    assert device.relay_changes == [False, True]
    path = "/relay/0?turn=" if gen == 1 else "/rpc/Switch.Set?id=0&on="
    commands = [(p, ok) for p, ok in device.requests if p.startswith(path)]
    # every command that took effect was authenticated (Gen2+: a 401 challenge first)
    off, on = path + ("off" if gen == 1 else "false"), path + ("on" if gen == 1 else "true")
    # sleep: off; wake: a power cycle, off (already off: no change) then on
    assert [p for p, ok in commands if ok] == [off, off, on]


@pytest.mark.parametrize("gen", [1, 2])
async def test_wrong_password_is_auth_and_the_relay_stays(plug: Start, gen: int) -> None:
    device = await plug(gen=gen, password=PASSWORD)
    relay = ShellyRelay(device.url, password=Secret("wrong-one"), timeout=2)
    try:
        with pytest.raises(MethodError) as err:
            await relay.finish_sleep()
    finally:
        await relay.close()
    assert err.value.kind == "auth"
    assert "wrong-one" not in err.value.message
    assert device.relay_on is True and device.relay_changes == []


async def test_no_credentials_for_a_protected_plug(plug: Start) -> None:
    device = await plug(gen=3, password=PASSWORD)
    relay = ShellyRelay(device.url, timeout=2)
    try:
        with pytest.raises(MethodError) as err:
            await relay.wake()
    finally:
        await relay.close()
    assert err.value.kind == "auth"


async def test_unreachable_plug() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connection refused
        relay = ShellyRelay(f"http://127.0.0.1:{port}", timeout=1)
        try:
            with pytest.raises(MethodError) as err:
                await relay.wake()
        finally:
            await relay.close()
    assert err.value.kind == "unreachable"


async def test_hanging_plug_times_out(plug: Start) -> None:
    device = await plug(gen=2)
    device.hang(True)
    relay = ShellyRelay(device.url, timeout=0.5)
    try:
        with pytest.raises(MethodError) as err:
            await relay.wake()
    finally:
        await relay.close()
        device.hang(False)
    assert err.value.kind == "timeout"


async def test_a_meter_without_relay_is_refused(plug: Start) -> None:
    device = await plug(gen=3, component="pm1")
    relay = ShellyRelay(device.url, timeout=2)
    try:
        with pytest.raises(MethodError) as err:
            await relay.wake()
    finally:
        await relay.close()
    assert "404" in err.value.message


async def test_garbage_reply_is_a_failure(plug: Start) -> None:
    device = await plug(gen=1)
    device.set_garbage(True)
    relay = ShellyRelay(device.url, timeout=2)
    try:
        with pytest.raises(MethodError) as err:
            await relay.wake()
    finally:
        await relay.close()
    assert err.value.kind == "failed"


@pytest.mark.parametrize("gen", [1, 2, 4])
async def test_the_meter_reads_zero_while_off(plug: Start, gen: int) -> None:
    """The fake's load is behind the relay: the monitor's reading says so."""
    from energysched_monitor.shelly import ShellySource

    seen: list[bool] = []
    device = await plug(gen=gen, power=41.0)
    device.on_relay = seen.append
    relay = ShellyRelay(device.url, timeout=2, cycle_pause=0)
    meter = ShellySource(device.url, timeout=2)
    try:
        assert (await meter.read()).watts == 41.0
        await relay.finish_sleep()
        assert (await meter.read()).watts == 0.0
        device.advance(3600)
        assert device.energy_wh == 0.0
        await relay.wake()
        assert (await meter.read()).watts == 41.0
    finally:
        await relay.close()
        await meter.close()
    assert seen == [False, True]


async def test_gen1_relay_toggle_status_and_bad_turn(plug: Start) -> None:
    import aiohttp

    device = await plug(gen=1)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{device.url}/relay/0?turn=toggle") as resp:
            assert (await resp.json())["ison"] is False
        async with http.get(f"{device.url}/relay/0") as resp:
            assert (await resp.json())["ison"] is False
        async with http.get(f"{device.url}/relay/0?turn=maybe") as resp:
            assert resp.status == 400
        async with http.get(f"{device.url}/relay/1?turn=on") as resp:
            assert resp.status == 404
        async with http.post(f"{device.url}/_fake/relay", json={"on": True}) as resp:
            assert (await resp.json())["relay_on"] is True


async def test_wake_power_cycles_a_relay_left_on(plug: Start) -> None:
    """A board that halted while its relay stayed on starts only after a power cycle."""
    device = await plug(gen=4, password=PASSWORD)
    relay = ShellyRelay(device.url, password=Secret(PASSWORD), timeout=2, cycle_pause=0.1)
    try:
        await relay.wake()
    finally:
        await relay.close()
    assert device.relay_changes == [False, True] and device.relay_on
