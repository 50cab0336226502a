"""Wake-on-LAN on the real node's link: the magic packet as the node's side receives it.

The packet is sent by :class:`WakeOnLan` (the power manager's code) from the host to the
subnet-directed broadcast of the node's veth /30 (10.213.N.3) and captured with a raw
AF_PACKET socket on the node's end of the veth, inside its network namespace. Nothing is
sent anywhere else.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import subprocess
import sys

import pytest

from energysched.powermanager.methods.wol import WakeOnLan
from energysched_lab.cluster import realnode

from .conftest import node_mac

PORT = 9


def capture(net: realnode.NodeNet, count: int, timeout: float = 15) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            "ip", "netns", "exec", net.netns, sys.executable, "-m",
            "energysched_lab.packet_capture", "--interface", net.node_veth,
            "--port", str(PORT), "--count", str(count), "--timeout", str(timeout),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"ready": True}
    return proc


def broadcast(net: realnode.NodeNet) -> str:
    return str(ipaddress.ip_network(f"{net.host_ip}/30", strict=False).broadcast_address)


async def test_magic_packet_reaches_the_node_byte_by_byte(power_net: realnode.NodeNet) -> None:
    mac = node_mac(power_net)  # the node's NIC: its end of the veth
    raw_mac = bytes.fromhex(mac.replace(":", ""))
    proc = capture(power_net, count=3)
    try:
        await WakeOnLan(mac, broadcast(power_net), PORT, copies=3).wake()
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    frames = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert len(frames) == 3, out
    for frame in frames:
        assert frame["dst_mac"] == "ff:ff:ff:ff:ff:ff"  # a link-layer broadcast
        assert frame["dst_ip"] == broadcast(power_net)
        assert frame["src_ip"] == power_net.host_ip
        payload = bytes.fromhex(frame["payload"])
        assert len(payload) == 102
        assert payload[:6] == b"\xff" * 6
        for i in range(16):
            assert payload[6 + 6 * i : 12 + 6 * i] == raw_mac, (i, payload.hex())


async def test_a_wrong_mac_is_not_the_nodes(power_net: realnode.NodeNet) -> None:
    """A packet for another MAC arrives too (it is a broadcast), but does not carry the
    node's address: a NIC would not wake. The manager then sees no Ready node and marks the
    wake failed (tests/unit/powermanager/test_manager.py); the node stays tainted, the pod
    goes elsewhere."""
    mac = node_mac(power_net)
    wrong = "02:00:00:00:00:01" if mac != "02:00:00:00:00:01" else "02:00:00:00:00:02"
    proc = capture(power_net, count=1)
    try:
        await WakeOnLan(wrong, broadcast(power_net), PORT, copies=1).wake()
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    payload = bytes.fromhex(json.loads(out.splitlines()[0])["payload"])
    assert bytes.fromhex(mac.replace(":", "")) not in payload
    assert payload[6:12] == bytes.fromhex(wrong.replace(":", ""))


@pytest.mark.parametrize("bad", ["aa:bb:cc:dd:ee", "ff:ff:ff:ff:ff:ff"])
async def test_a_malformed_mac_sends_nothing(power_net: realnode.NodeNet, bad: str) -> None:
    from energysched.powermanager.methods import MethodError

    proc = capture(power_net, count=1, timeout=3)
    try:
        with pytest.raises(MethodError) as err:
            await WakeOnLan(bad, broadcast(power_net), PORT).wake()
        assert repr(bad) in err.value.message
        out, _ = await asyncio.to_thread(proc.communicate, timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == ""  # nothing on the link within the capture's 3 s
