"""Suspend or power off this machine through systemd-logind, over the host's D-Bus socket.

``org.freedesktop.login1.Manager.Suspend(b interactive)`` and ``PowerOff(b interactive)``
on ``/org/freedesktop/login1``: what ``systemctl suspend`` calls. Why logind and not a
privileged container writing ``/sys/power/state``: logind runs the system's sleep hooks
(inhibitors, network and disk quiescing), and the only privilege the agent then needs is
the system bus socket plus a polkit rule allowing its user these two actions (README).

The client is jeepney (pure Python, no libdbus; see README, "Packages and why"); an error
reply (``AccessDenied``, ``InteractiveAuthorizationRequired``, a missing logind) becomes a
:class:`LogindError` with the D-Bus error name and message.
"""

from __future__ import annotations

import asyncio
from typing import Final, Literal

from jeepney import DBusAddress, MessageType, new_method_call
from jeepney.io.asyncio import open_dbus_router

SYSTEM_BUS: Final = "unix:path=/run/dbus/system_bus_socket"
LOGIND: Final = DBusAddress(
    "/org/freedesktop/login1",
    bus_name="org.freedesktop.login1",
    interface="org.freedesktop.login1.Manager",
)
Action = Literal["suspend", "poweroff"]
METHODS: Final[dict[Action, str]] = {"suspend": "Suspend", "poweroff": "PowerOff"}


class LogindError(Exception):
    pass


async def request(action: Action, bus: str = SYSTEM_BUS, timeout: float = 10.0) -> None:
    """Ask logind to suspend or power off now (``interactive`` false: never prompts)."""
    message = new_method_call(LOGIND, METHODS[action], "b", (False,))
    try:
        async with asyncio.timeout(timeout):
            async with open_dbus_router(bus) as router:
                reply = await router.send_and_get_reply(message)
    except TimeoutError:
        raise LogindError(f"logind {METHODS[action]}: no reply within {timeout:g} s") from None
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise LogindError(f"logind {METHODS[action]}: D-Bus {bus}: {exc!r}") from None
    if reply.header.message_type == MessageType.error:
        name = reply.header.fields.get(4, "?")  # HeaderFields.error_name
        detail = reply.body[0] if reply.body else ""
        raise LogindError(f"logind {METHODS[action]} refused: {name}: {detail}")
