"""Capture UDP frames on one interface with a raw AF_PACKET socket (Linux, root).

Run inside the namespace whose interface is watched, e.g. the real node's::

    ip netns exec es-1a2b3c4d python -m energysched_lab.packet_capture \\
        --interface es1a2b3c4dn --port 9 --count 3 --timeout 10

prints ``{"ready": true}`` once the socket is bound (so the sender may start), then one JSON
line per matching frame: the whole Ethernet frame in hex, and its decoded destination MAC,
IPv4 source/destination, UDP ports and payload (hex). Frames are matched on EtherType IPv4,
protocol UDP and the destination port; nothing else is kept.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from collections.abc import Sequence
from typing import Any

ETH_P_ALL = 0x0003


def decode(frame: bytes, port: int) -> dict[str, Any] | None:
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[9] != 17:  # UDP
        return None
    total = struct.unpack("!H", ip[2:4])[0]
    udp = ip[ihl:total]
    sport, dport, length = struct.unpack("!HHH", udp[:6])
    if dport != port:
        return None
    return {
        "frame": frame.hex(),
        "dst_mac": frame[0:6].hex(":"),
        "src_ip": socket.inet_ntoa(ip[12:16]),
        "dst_ip": socket.inet_ntoa(ip[16:20]),
        "sport": sport,
        "dport": dport,
        "payload": udp[8:length].hex(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m energysched_lab.packet_capture")
    parser.add_argument("--interface", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.bind((args.interface, 0))
        print(json.dumps({"ready": True}), flush=True)
        deadline = time.monotonic() + args.timeout
        found = 0
        while found < args.count:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            try:
                frame, addr = sock.recvfrom(65535)
            except TimeoutError:
                break
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            decoded = decode(frame, args.port)
            if decoded is not None:
                print(json.dumps(decoded), flush=True)
                found += 1
    return 0 if found >= args.count else 1


if __name__ == "__main__":
    sys.exit(main())
