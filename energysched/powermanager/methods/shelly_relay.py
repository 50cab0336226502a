"""A Shelly plug's relay: power a board off after a clean halt, and on again to wake it.

For boards that cannot suspend (a Raspberry Pi draws ~0.01 W halted with
``POWER_OFF_ON_HALT=1`` and only a power cycle starts it again). The commands, as the
devices document them:

* Gen1: ``GET /relay/<n>?turn=on|off``, HTTP Basic auth; the reply is the relay's status
  (``{"ison": ...}``), checked against what was asked.
* Gen2+: ``GET /rpc/Switch.Set?id=<n>&on=true|false``, digest auth (SHA-256); the reply is
  ``{"was_on": ...}``.

The transport, the generation detection and both auth schemes are the monitor's Shelly
client's (:class:`energysched_monitor.shelly.ShellySource`): one implementation of the
plug's auth for readings and commands alike.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from energysched.powermanager.methods import FailureKind, MethodError
from energysched_monitor.readings import ReadError
from energysched_monitor.secret import Secret
from energysched_monitor.shelly import ShellySource

_KINDS: dict[str, FailureKind] = {
    "timeout": "timeout",
    "unreachable": "unreachable",
    "auth": "auth",
    "config": "config",
}


@dataclass
class ShellyRelay:
    address: str
    relay: int = 0
    username: str = "admin"
    password: Secret | None = field(default=None, repr=False)
    timeout: float = 5.0
    #: Seconds with the power cut in a wake's power cycle (a board's capacitors drain).
    cycle_pause: float = 2.0
    name: str = "shelly-relay"

    def __post_init__(self) -> None:
        try:
            self._plug = ShellySource(
                self.address, username=self.username, password=self.password, timeout=self.timeout
            )
        except ReadError as exc:
            raise MethodError("config", str(exc)) from None

    @property
    def describe(self) -> str:
        return f"shelly-relay {self._plug.base_url} relay {self.relay}"

    async def switch(self, on: bool) -> None:
        """Switch the relay and check the device's reply says it did."""
        word = "on" if on else "off"
        try:
            text = await self._plug.call(
                f"/relay/{self.relay}?turn={word}",
                f"/rpc/Switch.Set?id={self.relay}&on={'true' if on else 'false'}",
            )
            gen = (await self._plug.device_info()).gen
        except ReadError as exc:
            raise MethodError(_KINDS.get(exc.kind, "failed"), f"relay {word}: {exc}") from None
        try:
            reply = json.loads(text)
        except ValueError:
            reply = None
        if not isinstance(reply, dict):
            raise MethodError("failed", f"relay {word}: {self.describe}: reply not JSON: {text!r}")
        if gen == 1 and reply.get("ison") is not on:
            raise MethodError(
                "refused", f"relay {word}: {self.describe} reports ison={reply.get('ison')!r}"
            )
        if gen != 1 and not isinstance(reply.get("was_on"), bool):
            raise MethodError(
                "failed", f"relay {word}: {self.describe}: no 'was_on' in reply {text[:200]!r}"
            )

    async def wake(self) -> None:
        """A power cycle: off (a no-op when the relay is already off), then on. A board that
        halted while its relay stayed on (a sleep given up half-way) starts only so."""
        await self.switch(False)
        await asyncio.sleep(self.cycle_pause)
        await self.switch(True)

    async def finish_sleep(self) -> None:
        await self.switch(False)

    async def close(self) -> None:
        await self._plug.close()
