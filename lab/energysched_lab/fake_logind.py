"""A fake systemd-logind on a private D-Bus daemon: the agent's suspend, tested for real.

``FakeLogind`` starts ``dbus-daemon`` (Debian's) on a Unix socket in a directory of the
test's, owns ``org.freedesktop.login1`` on it and answers ``Suspend(b)`` and ``PowerOff(b)``
on ``/org/freedesktop/login1`` (interface ``org.freedesktop.login1.Manager``) as logind
does: an empty method return, or, with ``deny=True``, the error polkit's refusal gives
(``org.freedesktop.DBus.Error.InteractiveAuthorizationRequired``). ``calls`` records
``(member, interactive)`` of each call. Nothing is suspended. Any user may connect, as on the
system bus (its ``<allow user="*"/>``): the agent in its pod is uid 10001, the daemon root.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

from jeepney import HeaderFields, MessageType, new_error, new_method_return
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class FakeLogind:
    directory: Path
    deny: bool = False
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.socket = self.directory / "system_bus_socket"
        self.address = f"unix:path={self.socket}"
        self._daemon: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        binary = shutil.which("dbus-daemon")
        if binary is None:
            raise RuntimeError("dbus-daemon is not installed (Debian: dbus-daemon)")
        config = self.directory / "bus.conf"
        config.write_text(_CONFIG.format(socket=self.socket))
        self._daemon = subprocess.Popen(
            [binary, f"--config-file={config}", "--nofork", "--nopidfile"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        conn = None
        for _ in range(100):
            try:
                conn = open_dbus_connection(self.address)
                break
            except OSError:
                self._stop.wait(0.05)
        if conn is None:
            raise RuntimeError("the private dbus-daemon did not come up")
        reply = conn.send_and_get_reply(message_bus.RequestName("org.freedesktop.login1"))
        if reply.body != (1,):  # DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
            raise RuntimeError(f"could not own org.freedesktop.login1: {reply.body}")
        self._thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
        self._thread.start()

    def _serve(self, conn: object) -> None:
        while not self._stop.is_set():
            try:
                msg = conn.receive(timeout=0.2)  # type: ignore[attr-defined]
            except TimeoutError:
                continue
            except (OSError, EOFError):
                return
            fields = msg.header.fields
            if msg.header.message_type != MessageType.method_call:
                continue
            member = fields.get(HeaderFields.member)
            ok_target = (
                fields.get(HeaderFields.path) == "/org/freedesktop/login1"
                and fields.get(HeaderFields.interface) == "org.freedesktop.login1.Manager"
            )
            if ok_target and member in ("Suspend", "PowerOff") and msg.body and len(msg.body) == 1:
                self.calls.append((str(member), bool(msg.body[0])))
                if self.deny:
                    reply = new_error(
                        msg,
                        "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
                        "s",
                        ("Interactive authentication required.",),
                    )
                else:
                    reply = new_method_return(msg)
            else:
                reply = new_error(
                    msg, "org.freedesktop.DBus.Error.UnknownMethod", "s", (f"{member}",)
                )
            conn.send(reply)  # type: ignore[attr-defined]
        conn.close()  # type: ignore[attr-defined]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._daemon is not None:
            self._daemon.terminate()
            self._daemon.wait(timeout=5)
