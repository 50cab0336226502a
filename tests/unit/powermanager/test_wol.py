"""The magic packet and the strict MAC / broadcast parsing; one packet over loopback."""

from __future__ import annotations

import socket

import pytest

from energysched.powermanager.methods import MethodError
from energysched.powermanager.methods.wol import (
    PACKET_BYTES,
    WakeOnLan,
    magic_packet,
    parse_broadcast,
    parse_mac,
)


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("aa:bb:cc:dd:ee:f0", bytes.fromhex("aabbccddeef0")),
        ("AA-BB-CC-DD-EE-F0", bytes.fromhex("aabbccddeef0")),
        ("02:00:00:00:00:01", bytes.fromhex("020000000001")),
    ],
)
def test_mac_accepted(text: str, raw: bytes) -> None:
    assert parse_mac(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "",
        "aa:bb:cc:dd:ee",  # five groups
        "aa:bb:cc:dd:ee:ff:00",  # seven
        "aa:bb-cc:dd:ee:f0",  # mixed separators
        "aabb.ccdd.eef0",  # Cisco's dotted form: not ours
        "aabbccddeef0",  # no separators: ambiguous with other ids, refused
        "aa:bb:cc:dd:ee:fg",  # not hex
        " aa:bb:cc:dd:ee:f0",  # surrounding space
        "a:bb:cc:dd:ee:f0",  # one digit
        "ff:ff:ff:ff:ff:ff",  # broadcast
        "01:00:5e:00:00:01",  # multicast
        "00:00:00:00:00:00",  # all zero
    ],
)
def test_mac_refused_with_the_value(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_mac(text)
    assert repr(text) in str(err.value)


def test_magic_packet_is_sync_then_sixteen_macs() -> None:
    mac = bytes.fromhex("0a1b2c3d4e5f")
    packet = magic_packet(mac)
    assert len(packet) == PACKET_BYTES == 102
    assert packet[:6] == b"\xff" * 6
    for i in range(16):
        assert packet[6 + 6 * i : 12 + 6 * i] == mac
    with pytest.raises(ValueError):
        magic_packet(b"\x00" * 5)


@pytest.mark.parametrize(
    "text", ["255.255.255.255", "0.0.0.0", "224.0.0.1", "::1", "10.0.0", "host.lan", ""]
)
def test_broadcast_refused(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_broadcast(text)
    assert repr(text) in str(err.value) or "limited broadcast" in str(err.value)


async def test_wake_sends_the_packet_to_the_address() -> None:
    """The datagram as the socket API delivers it (loopback stands in for the segment here;
    tests/integration/power proves it on the real node's link, frame by frame)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
        rx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        port = rx.getsockname()[1]
        await WakeOnLan("0a:1b:2c:3d:4e:5f", "127.0.0.1", port, copies=2).wake()
        got = [rx.recv(2048) for _ in range(2)]
    assert got == [magic_packet(bytes.fromhex("0a1b2c3d4e5f"))] * 2


async def test_wake_with_a_bad_mac_is_a_config_error() -> None:
    with pytest.raises(MethodError) as err:
        await WakeOnLan("aa:bb:cc:dd:ee:zz", "127.0.0.1").wake()
    assert err.value.kind == "config"
    assert "'aa:bb:cc:dd:ee:zz'" in err.value.message
