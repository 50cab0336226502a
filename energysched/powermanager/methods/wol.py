"""Wake-on-LAN: the magic packet, sent to a subnet-directed broadcast address.

The packet is 6 bytes of 0xFF followed by the NIC's MAC address 16 times (AMD's
"Magic Packet" white paper, 1995), carried in a UDP datagram (port 9, "discard", by
convention; 7 also works). Why a broadcast and not a unicast to the sleeping node's
address: a sleeping node answers no ARP, so once the switch's and the sender's
ARP/MAC-table entries expire a unicast packet goes nowhere. A subnet-directed broadcast
(``192.168.1.255`` on ``192.168.1.0/24``) reaches every port of the node's segment; the
limited broadcast ``255.255.255.255`` would leave by whatever interface the default
route names, so it is refused here: say which segment.

MAC addresses are parsed strictly: six groups of two hex digits separated by ``:`` or
``-`` (one separator throughout); a NIC's address is unicast, so the group bit (the
lowest bit of the first octet) must be clear and all-zero is refused. Anything else is a
:class:`ValueError` naming the value.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from dataclasses import dataclass
from typing import Final

from energysched.powermanager.methods import MethodError

_MAC: Final = re.compile(r"[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}")
SYNC: Final = b"\xff" * 6
REPEAT_MAC: Final = 16
PACKET_BYTES: Final = len(SYNC) + 6 * REPEAT_MAC  # 102


def parse_mac(text: str) -> bytes:
    """``"aa:bb:cc:dd:ee:ff"`` -> 6 bytes; ValueError for anything that is not a NIC's MAC."""
    if not isinstance(text, str) or not _MAC.fullmatch(text):
        raise ValueError(
            f"{text!r} is not a MAC address: expected six pairs of hex digits"
            " separated by ':' or '-' (e.g. aa:bb:cc:dd:ee:ff)"
        )
    raw = bytes.fromhex(text.replace(text[2], ""))
    if raw[0] & 0x01:
        raise ValueError(f"{text!r} is a group (multicast/broadcast) MAC address, not a NIC's")
    if raw == bytes(6):
        raise ValueError(f"{text!r} is the all-zero MAC address, not a NIC's")
    return raw


def parse_broadcast(text: str) -> str:
    """An IPv4 address to send to; the limited broadcast and non-IPv4 are refused."""
    try:
        address = ipaddress.IPv4Address(text)
    except (ipaddress.AddressValueError, ValueError, TypeError):
        raise ValueError(
            f"{text!r} is not an IPv4 address: expected one address such as 192.168.1.255"
        ) from None
    if address == ipaddress.IPv4Address("255.255.255.255"):
        raise ValueError(
            "'255.255.255.255' (the limited broadcast) leaves by the default route's interface:"
            " give the node's subnet-directed broadcast (e.g. 192.168.1.255)"
        )
    if address.is_unspecified or address.is_multicast:
        raise ValueError(f"{text!r} is not a unicast or subnet broadcast address")
    return str(address)


def magic_packet(mac: bytes) -> bytes:
    if len(mac) != 6:
        raise ValueError(f"a MAC address has 6 bytes, not {len(mac)}")
    return SYNC + mac * REPEAT_MAC


@dataclass(frozen=True, slots=True)
class WakeOnLan:
    """Wake by magic packet; sleep is the node agent's suspend (nothing for the manager)."""

    mac: str
    broadcast: str
    port: int = 9
    #: Copies sent per wake: UDP is not acknowledged, and a switch port coming out of
    #: power saving may drop the first frame.
    copies: int = 3
    name: str = "wol"

    @property
    def describe(self) -> str:
        return f"wol {self.mac} via {self.broadcast}:{self.port}"

    async def wake(self) -> None:
        try:
            packet = magic_packet(parse_mac(self.mac))
            target = (parse_broadcast(self.broadcast), self.port)
        except ValueError as exc:
            raise MethodError("config", str(exc)) from None
        try:
            await asyncio.to_thread(_send, packet, target, self.copies)
        except OSError as exc:
            raise MethodError(
                "unreachable", f"magic packet to {target[0]}:{target[1]}: {exc}"
            ) from None

    async def finish_sleep(self) -> None:
        return None  # the node agent's suspend is the whole of it

    async def close(self) -> None:
        return None


def _send(packet: bytes, target: tuple[str, int], copies: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for _ in range(copies):
            sock.sendto(packet, target)
