"""Running a fake device (a plug, a BMC) as a process of its own.

The fakes are real servers on loopback; run as ``python -m ...`` they print their
state as one JSON line (address, port, credentials) and serve until SIGINT or
SIGTERM, so a test or a user starts them and stops them by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from typing import Any, Protocol


class FakeDevice(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> None: ...

    def state(self) -> dict[str, Any]: ...


async def serve_until_signalled(device: FakeDevice) -> None:
    """Start ``device``, print its state, serve until SIGINT/SIGTERM, stop it."""
    await device.start()
    print(json.dumps(device.state()), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await device.stop()
