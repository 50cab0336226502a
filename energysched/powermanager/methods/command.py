"""An operator's hook: two argv lists, run by the power manager to sleep and to wake a node.

``{"method": "command", "sleep": ["ssh", "node3", "systemctl", "suspend"],
"wake": ["/usr/local/bin/ipmi-on", "node3"]}``. No shell: each list is executed as it is,
with the node's name in ``ENERGYSCHED_NODE`` and the step (``sleep`` or ``wake``) in
``ENERGYSCHED_POWER_STEP``. A zero exit is success; a non-zero exit, a missing program or
a run longer than the timeout is a failure whose message has the exit code and the last
lines of the output. The local cluster's tests use it to stop and start the real node's
kubelet.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from energysched.powermanager.methods import MethodError

OUTPUT_TAIL_BYTES = 2000


@dataclass(frozen=True)
class CommandHook:
    sleep_argv: tuple[str, ...]
    wake_argv: tuple[str, ...]
    node: str = ""
    timeout: float = 120.0
    name: str = "command"

    @property
    def describe(self) -> str:
        return f"command wake={self.wake_argv[0]!r} sleep={self.sleep_argv[0]!r}"

    async def wake(self) -> None:
        await run_hook(self.wake_argv, "wake", self.node, self.timeout)

    async def finish_sleep(self) -> None:
        await run_hook(self.sleep_argv, "sleep", self.node, self.timeout)

    async def close(self) -> None:
        return None


async def run_hook(argv: Sequence[str], step: str, node: str, timeout: float) -> str:
    """Run ``argv``; its output on success, MethodError otherwise."""
    if not argv:
        raise MethodError("config", f"command {step}: empty argv")
    env = {**os.environ, "ENERGYSCHED_NODE": node, "ENERGYSCHED_POWER_STEP": step}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    except OSError as exc:
        raise MethodError("config", f"command {step} {argv[0]!r}: cannot run: {exc}") from None
    try:
        async with asyncio.timeout(timeout):
            out, _ = await proc.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise MethodError(
            "timeout", f"command {step} {list(argv)!r}: still running after {timeout:g} s, killed"
        ) from None
    text = out[-OUTPUT_TAIL_BYTES:].decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise MethodError(
            "failed", f"command {step} {list(argv)!r}: exit {proc.returncode}: {text.strip()}"
        )
    return text
