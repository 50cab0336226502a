"""The Redfish wake/sleep method against OpenStack's sushy-emulator (a Redfish server
others wrote; its fake driver, on loopback, Basic auth from an htpasswd file)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from energysched.powermanager.control import RedfishControl, parse_power_control
from energysched.powermanager.methods import MethodError
from energysched.powermanager.methods.build import build_method
from energysched.powermanager.methods.redfish import RedfishReset
from energysched_lab.fake_redfish import FakeRedfish
from energysched_lab.prometheus_lab import free_port
from energysched_lab.sushy_lab import SYSTEM_UUID, SushyEmulator
from energysched_monitor.secret import Secret

PASSWORD = "bmc-Pa55word"
UUID = SYSTEM_UUID


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[str]:
    sushy = SushyEmulator(tmp_path / "sushy", password=PASSWORD)
    yield sushy.start()
    sushy.stop()


async def _wait_state(method: RedfishReset, want: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = await method.power_state()
        if state == want:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"power state {state!r}, wanted {want!r}")


async def test_sleep_then_wake_changes_the_emulators_power_state(emulator: str) -> None:
    control = parse_power_control(
        f'{{"method": "redfish", "address": "{emulator}", "credentialsSecret": "es/bmc",'
        ' "auth": "basic"}'
    )
    assert isinstance(control, RedfishControl)
    method = build_method(control, "srv1", username="admin", password=Secret(PASSWORD))
    assert isinstance(method, RedfishReset)
    try:
        assert await method.power_state() == "On"
        await method.finish_sleep()  # GracefulShutdown (the emulator applies it in 1-11 s)
        await _wait_state(method, "Off")
        await method.finish_sleep()  # already off: nothing sent, no error
        await method.wake()  # On
        await _wait_state(method, "On")
    finally:
        await method.close()


async def test_wrong_password_is_an_auth_failure(emulator: str) -> None:
    method = RedfishReset(emulator, UUID, "admin", Secret("wrong"), auth="basic", timeout=5)
    with pytest.raises(MethodError) as err:
        await method.finish_sleep()
    await method.close()
    assert err.value.kind == "auth" and "rejected user 'admin'" in err.value.message
    assert "wrong" not in err.value.message.replace("wrong password", "")


async def test_refused_power_off_keeps_the_node_awake(tmp_path: Path) -> None:
    sushy = SushyEmulator(tmp_path / "sushy", password=PASSWORD, power_off_disabled=True)
    method = RedfishReset(sushy.start(), UUID, "admin", Secret(PASSWORD), auth="basic", timeout=5)
    try:
        with pytest.raises(MethodError) as err:
            await method.finish_sleep()
        assert err.value.kind == "refused" and "HTTP 400" in err.value.message
        assert await method.power_state() == "On"
    finally:
        await method.close()
        sushy.stop()


async def test_reset_types_the_bmc_announces_are_respected() -> None:
    """A BMC offering no GracefulShutdown is not sent ForceOff instead; one that announces
    nothing is tried; a system already off is sent nothing (our fake BMC: sushy-emulator
    always announces every type). Session auth, as BMCs use it."""
    async with FakeRedfish(password=PASSWORD, reset_types=["On", "ForceOff"]) as bmc:
        method = RedfishReset(bmc.url, None, "admin", Secret(PASSWORD), timeout=5)
        try:
            with pytest.raises(MethodError) as err:
                await method.finish_sleep()
            assert err.value.kind == "refused"
            assert "offers only ['On', 'ForceOff']" in err.value.message
            assert bmc.resets == [] and bmc.power_state == "On"
            bmc.reset_types = None  # not announced: GracefulShutdown is tried
            await method.finish_sleep()
            await method.finish_sleep()  # already Off: nothing sent
            assert bmc.resets == ["GracefulShutdown"] and bmc.power_state == "Off"
            await method.wake()
            assert bmc.resets == ["GracefulShutdown", "On"] and bmc.power_state == "On"
        finally:
            await method.close()
        assert not bmc.sessions  # logged out


async def test_unreachable_bmc() -> None:
    method = RedfishReset(f"http://127.0.0.1:{free_port()}", "1", timeout=2)
    with pytest.raises(MethodError) as err:
        await method.wake()
    await method.close()
    assert err.value.kind == "unreachable"


def test_bad_annotation_names_the_field() -> None:
    from energysched.strict import DocumentError

    with pytest.raises(DocumentError) as err:
        parse_power_control('{"method": "redfish", "address": "bmc-17"}')
    assert "address" in str(err.value) and "http(s)://" in str(err.value)
