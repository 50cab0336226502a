"""A fake Shelly plug: a real HTTP server on loopback speaking the documented JSON.

For tests and the local demo, never for production::

    python -m energysched_lab.fake_shelly --gen 2 --port 0 --power 12.5 \\
        --password-env FAKE_SHELLY_PASSWORD

prints one JSON line ``{"url": "http://127.0.0.1:PORT", ...}`` and serves until
SIGINT/SIGTERM. It answers ``GET /shelly`` (never authenticated) and

* Gen1: ``GET /status`` (``meters[0].power`` W, ``meters[0].total`` watt-minutes),
  HTTP Basic auth when a password is set;
* Gen2/3/4: ``GET /rpc/Switch.GetStatus?id=0`` or, with ``--component pm1``,
  ``GET /rpc/PM1.GetStatus?id=0`` (``apower`` W, ``aenergy.total`` Wh), plus
  ``Shelly.GetStatus`` (every component and ``sys``), ``Shelly.GetDeviceInfo`` and
  ``Sys.GetStatus`` (``uptime``); SHA-256 digest auth (user admin, realm = device id,
  nonces reusable with an increasing ``nc``, as firmware 2.0+).

The energy counter and the uptime advance with ``clock`` (the monotonic clock, or a
test's own) at the current power. ``true_energy_wh`` is what the load really drew
since the fake started: it survives reboots and ``/_fake/energy``, so a test can
compare a monitor's integral with it. A control API under ``/_fake/``
(unauthenticated; POST JSON) steers the device, as do the Python methods:

* ``/_fake/power {"watts": 40}``, ``/_fake/energy {"wh": 0}``
* ``/_fake/reboot``: counters to 0, uptime to 0, nonces forgotten (the load keeps
  drawing: a plug's meter restarts, the machine behind it does not)
* ``/_fake/hang {"on": true}``: accept connections, never answer
* ``/_fake/garbage {"on": true}``: answer 200 with a truncated, non-JSON body
* ``/_fake/password {"password": "new"}`` (or null): change or drop the credentials
* ``/_fake/relay {"on": false}``: switch the relay by hand (the plug's button)
* ``GET /_fake/state``

The relay (the plug's switch) is real: Gen1 ``GET /relay/0?turn=on|off|toggle`` (Basic
auth, answers the relay's status), Gen2+ ``GET /rpc/Switch.Set?id=0&on=true|false``
(digest auth, answers ``{"was_on": ...}``; a PM Mini has no relay: no handler). While it
is off the load draws nothing: the meter reads 0 W and the counters stand still.
``relay_changes`` records every switching (``True`` = on), and ``on_relay`` is called
with the new state (a test's "machine behind the plug" powers on with it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from energysched_lab.fake_device import serve_until_signalled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
FakeComponent = Literal["switch", "pm1"]

_MODELS: dict[tuple[int, str], tuple[str, str, str]] = {
    # (gen, component): (id prefix, model, app)
    (1, "switch"): ("shellyplug-s", "SHPLG-S", ""),
    (2, "switch"): ("shellyplusplugs", "SNPL-00112EU", "PlusPlugS"),
    (3, "switch"): ("shellyplugsg3", "S3PL-00112EU", "PlugSG3"),
    (3, "pm1"): ("shellypmminig3", "S3PM-001PCEU16", "MiniPMG3"),
    (4, "switch"): ("shellyplugsg4", "S4PL-00112EU", "PlugSG4"),
    (4, "pm1"): ("shellypmminig4", "S4PM-001PCEU16", "MiniPMG4"),
    (2, "pm1"): ("shellypluspmmini", "SNPM-001PCEU16", "PlusPMMini"),
}
GARBAGE = '{"id":0, "apower": 12.3, "aenergy": {"total": <html>502 Bad Gateway'
NONCE_LIFETIME_S = 3600.0


# -- the server side of RFC 7616 digest auth, as a Shelly checks it ---------------------
# (The client side is aiohttp's DigestAuthMiddleware; this is only what the device does.)

_HASHES = {"MD5": "md5", "SHA-256": "sha256"}
_PARAM = re.compile(
    r"""\s*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,]*)\s*(?:,|$)"""
)


class DigestError(ValueError):
    """An Authorization header that cannot be parsed."""


def parse_authorization(header: str) -> dict[str, str]:
    """``Digest a="x", b=y`` into ``{"a": "x", "b": "y"}`` (names lowercased, quotes undone)."""
    scheme, _, text = header.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError("not a Digest Authorization header")
    params: dict[str, str] = {}
    pos, text = 0, text.strip()
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None or match.end() == pos:
            raise DigestError(f"cannot parse auth parameters at {text[pos : pos + 40]!r}")
        name, value = match.group(1).lower(), match.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        params[name] = value
        pos = match.end()
    return params


def _h(algorithm: str, data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.new(_HASHES[algorithm], raw).hexdigest()


def ha1(algorithm: str, username: str, realm: str, password: str) -> str:
    """``H(username:realm:password)``: what a Shelly stores (Shelly.SetAuth's ``ha1``)."""
    return _h(algorithm, f"{username}:{realm}:{password}")


def verify(
    params: Mapping[str, str],
    method: str,
    realm: str,
    stored_ha1: str,
    algorithm: str = "SHA-256",
    body: bytes = b"",
) -> bool:
    """Check an Authorization header's ``response`` (the nonce is the caller's concern).

    qop ``auth``, ``auth-int`` (over ``body``) or none (RFC 2069), as RFC 7616 3.4.1.
    """
    try:
        if params["realm"] != realm or params.get("algorithm", "MD5").upper() != algorithm:
            return False
        qop = params.get("qop")
        ha2 = f"{method.upper()}:{params['uri']}"
        if qop == "auth-int":
            ha2 += ":" + _h(algorithm, body)
        elif qop not in (None, "auth"):
            return False
        ha2 = _h(algorithm, ha2)
        nonce = params["nonce"]
        if qop:
            data = f"{stored_ha1}:{nonce}:{params['nc']}:{params['cnonce']}:{qop}:{ha2}"
        else:
            data = f"{stored_ha1}:{nonce}:{ha2}"
        return hmac.compare_digest(_h(algorithm, data), params["response"].lower())
    except KeyError:
        return False


@dataclass
class _Nonce:
    issued: float
    last_nc: int = 0


@dataclass
class FakeShelly:
    gen: int = 2
    component: FakeComponent = "switch"
    password: str | None = None
    username: str = "admin"
    power: float = 10.0
    host: str = "127.0.0.1"
    port: int = 0
    mac: str = field(default_factory=lambda: secrets.token_hex(6).upper())
    realtime: bool = True  # the counter advances with the clock at `power`
    clock: Callable[[], float] = time.monotonic  # uptime and realtime energy follow it

    energy_wh: float = 0.0
    true_energy_wh: float = 0.0
    hanging: bool = False
    garbage: bool = False
    #: (path with query, authorized) of every device request, for assertions.
    requests: list[tuple[str, bool]] = field(default_factory=list)
    relay_on: bool = True
    relay_changes: list[bool] = field(default_factory=list)
    on_relay: Callable[[bool], None] | None = None

    def __post_init__(self) -> None:
        if (self.gen, self.component) not in _MODELS:
            raise ValueError(f"no fake for gen {self.gen} with component {self.component}")
        prefix, self.model, self.app_name = _MODELS[(self.gen, self.component)]
        self.device_id = f"{prefix}-{self.mac.lower()}"
        self._boot = self.clock()
        self._stamp = self._boot
        self._nonces: dict[str, _Nonce] = {}
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- Python control ----------------------------------------------------------

    def _accrue(self) -> None:
        now = self.clock()
        if self.realtime:
            self._consume(self.drawn * (now - self._stamp) / 3600.0)
        self._stamp = now

    def _consume(self, wh: float) -> None:
        self.energy_wh += wh
        self.true_energy_wh += wh

    def set_power(self, watts: float) -> None:
        self._accrue()
        self.power = watts

    def set_energy_wh(self, wh: float) -> None:
        self._accrue()
        self.energy_wh = wh

    def advance(self, seconds: float) -> None:
        """Add ``seconds`` of consumption at the current power (deterministic tests)."""
        self._accrue()
        self._consume(self.drawn * seconds / 3600.0)

    @property
    def drawn(self) -> float:
        """What the load draws through the plug now: nothing while the relay is off."""
        return self.power if self.relay_on else 0.0

    def set_relay(self, on: bool) -> bool:
        """Switch the relay; returns whether it was on (the Gen2+ reply's ``was_on``)."""
        self._accrue()
        was_on, self.relay_on = self.relay_on, on
        if on != was_on:
            self.relay_changes.append(on)
            if self.on_relay is not None:
                self.on_relay(on)
        return was_on

    def reboot(self) -> None:
        self._accrue()
        self.energy_wh = 0.0
        self._boot = self.clock()
        self._nonces.clear()

    def hang(self, on: bool = True) -> None:
        self.hanging = on
        if not on:
            self._release.set()
        elif self._release.is_set():
            self._release = asyncio.Event()

    def set_garbage(self, on: bool = True) -> None:
        self.garbage = on

    def set_password(self, password: str | None) -> None:
        self.password = password
        self._nonces.clear()

    @property
    def uptime(self) -> int:
        """Whole seconds since boot, rounded down, as the firmware reports it."""
        return int(self.clock() - self._boot)

    @property
    def total_wm(self) -> int:
        self._accrue()
        return int(self.energy_wh * 60)

    def state(self) -> dict[str, Any]:
        self._accrue()
        return {
            "url": self.url,
            "gen": self.gen,
            "component": self.component,
            "device_id": self.device_id,
            "power": self.power,
            "energy_wh": self.energy_wh,
            "true_energy_wh": self.true_energy_wh,
            "uptime": self.uptime,
            "hanging": self.hanging,
            "garbage": self.garbage,
            "auth": self.password is not None,
            "relay_on": self.relay_on,
        }

    # -- documented JSON shapes ----------------------------------------------------

    def shelly_info(self) -> dict[str, Any]:
        if self.gen == 1:
            return {
                "type": self.model,
                "mac": self.mac,
                "auth": self.password is not None,
                "fw": "20230913-112003/v1.14.0-gcb84623",
                "discoverable": False,
                "longid": 1,
                "num_outputs": 1,
                "num_meters": 1,
            }
        return {
            "name": None,
            "id": self.device_id,
            "mac": self.mac,
            "slot": 1,
            "model": self.model,
            "gen": self.gen,
            "fw_id": "20250115-000000/1.5.0-gfake",
            "ver": "1.5.0",
            "app": self.app_name,
            "auth_en": self.password is not None,
            "auth_domain": self.device_id if self.password is not None else None,
        }

    def gen1_status(self) -> dict[str, Any]:
        total = self.total_wm
        now = int(time.time())
        return {
            "wifi_sta": {"connected": True, "ssid": "lab", "ip": self.host, "rssi": -55},
            "cloud": {"enabled": False, "connected": False},
            "mqtt": {"connected": False},
            "time": time.strftime("%H:%M"),
            "unixtime": now,
            "serial": 1,
            "has_update": False,
            "mac": self.mac,
            "cfg_changed_cnt": 0,
            "actions_stats": {"skipped": 0},
            "relays": [self.gen1_relay()],
            "meters": [
                {
                    "power": round(self.drawn, 2),
                    "overpower": 0.0,
                    "is_valid": True,
                    "timestamp": now,
                    "counters": [round(self.drawn, 3)] * 3,
                    "total": total,
                }
            ],
            "temperature": 31.5,
            "overtemperature": False,
            "tmp": {"tC": 31.5, "tF": 88.7, "is_valid": True},
            "update": {"status": "idle", "has_update": False},
            "ram_total": 52064,
            "ram_free": 39444,
            "fs_size": 233681,
            "fs_free": 166664,
            "uptime": self.uptime,
        }

    def gen1_relay(self) -> dict[str, Any]:
        """Gen1 ``/relay/0`` (and ``/status``'s ``relays[0]``)."""
        return {
            "ison": self.relay_on,
            "has_timer": False,
            "timer_started": 0,
            "timer_duration": 0,
            "timer_remaining": 0,
            "overpower": False,
            "source": "http",
        }

    def _aenergy(self) -> dict[str, Any]:
        self._accrue()
        minute = int(time.time()) // 60 * 60
        per_minute_mwh = round(self.drawn / 60.0 * 1000.0, 3)
        return {
            "total": round(self.energy_wh, 3),
            "by_minute": [per_minute_mwh] * 3,
            "minute_ts": minute,
        }

    def rpc_status(self) -> dict[str, Any]:
        voltage = 230.1
        current = round(self.drawn / voltage, 3)
        ret = {"total": 0.0, "by_minute": [0.0, 0.0, 0.0], "minute_ts": int(time.time())}
        if self.component == "pm1":
            return {
                "id": 0,
                "voltage": voltage,
                "current": current,
                "apower": round(self.drawn, 1),
                "aprtpower": round(self.drawn * 1.05, 1),
                "pf": 0.95,
                "freq": 50.0,
                "aenergy": self._aenergy(),
                "ret_aenergy": ret,
            }
        status: dict[str, Any] = {
            "id": 0,
            "source": "init",
            "output": self.relay_on,
            "apower": round(self.drawn, 1),
            "voltage": voltage,
            "freq": 50.0,
            "current": current,
            "aenergy": self._aenergy(),
            "temperature": {"tC": 35.2, "tF": 95.4},
        }
        if self.gen >= 3:
            status["ret_aenergy"] = ret
        return status

    def sys_status(self) -> dict[str, Any]:
        return {
            "mac": self.mac,
            "restart_required": False,
            "time": time.strftime("%H:%M"),
            "unixtime": int(time.time()),
            "uptime": self.uptime,
            "ram_size": 260_000,
            "ram_free": 140_000,
            "fs_size": 458_752,
            "fs_free": 122_880,
            "cfg_rev": 10,
            "available_updates": {},
        }

    def full_status(self) -> dict[str, Any]:
        """``Shelly.GetStatus``: every component under its key, ``sys`` among them."""
        return {
            "ble": {},
            "cloud": {"connected": False},
            "mqtt": {"connected": False},
            f"{self.component}:0": self.rpc_status(),
            "sys": self.sys_status(),
            "wifi": {"sta_ip": self.host, "status": "got ip", "ssid": "lab", "rssi": -55},
            "ws": {"connected": False},
        }

    # -- auth ------------------------------------------------------------------------

    def _basic_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic" or self.password is None:
            return False
        try:
            user, _, pw = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.username) and hmac.compare_digest(pw, self.password)

    def _digest_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization")
        if not header or self.password is None:
            return False
        try:
            params = parse_authorization(header)
        except DigestError:
            return False
        nonce = self._nonces.get(params.get("nonce", ""))
        if nonce is None or time.monotonic() - nonce.issued > NONCE_LIFETIME_S:
            return False
        try:
            nc = int(params.get("nc", "0"), 16)
        except ValueError:
            return False
        if nc <= nonce.last_nc or params.get("username") != self.username:
            return False
        if params.get("uri") != request.path_qs:
            return False
        stored = ha1("SHA-256", self.username, self.device_id, self.password)
        if not verify(params, request.method, self.device_id, stored, "SHA-256"):
            return False
        nonce.last_nc = nc
        return True

    def _challenge(self) -> web.Response:
        nonce = str(int(time.time())) + secrets.token_hex(4)
        self._nonces[nonce] = _Nonce(time.monotonic())
        header = f'Digest qop="auth", realm="{self.device_id}", nonce="{nonce}", algorithm=SHA-256'
        return web.json_response(
            {"code": 401, "message": "Unauthorized"},
            status=401,
            headers={"WWW-Authenticate": header},
        )

    # -- HTTP ------------------------------------------------------------------------

    @web.middleware
    async def _device_behaviour(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)
        if self.hanging:
            await self._release.wait()
        if self.garbage:
            self.requests.append((request.path_qs, False))
            return web.Response(text=GARBAGE, content_type="application/json")
        return await handler(request)

    def _authorized(self, request: web.Request) -> web.StreamResponse | None:
        """None if the request may proceed, else the 401 to send."""
        if self.password is None:
            self.requests.append((request.path_qs, True))
            return None
        ok = self._basic_ok(request) if self.gen == 1 else self._digest_ok(request)
        self.requests.append((request.path_qs, ok))
        if ok:
            return None
        if self.gen == 1:
            return web.Response(
                status=401,
                text="401 Unauthorized",
                headers={"WWW-Authenticate": 'Basic realm="shelly"'},
            )
        return self._challenge()

    async def _shelly(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((request.path_qs, True))
        return web.json_response(self.shelly_info())

    async def _status(self, request: web.Request) -> web.StreamResponse:
        if self.gen != 1:
            return web.json_response({"code": 404, "message": "No handler"}, status=404)
        return self._authorized(request) or web.json_response(self.gen1_status())

    async def _rpc(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if self.gen == 1:
            return web.Response(status=404, text="Not Found")
        if method == "Shelly.GetDeviceInfo":  # unauthenticated, like /shelly
            self.requests.append((request.path_qs, True))
            return web.json_response(self.shelly_info())
        known = {
            "Switch.Set": "switch",
            "Switch.GetStatus": "switch",
            "PM1.GetStatus": "pm1",
            "Sys.GetStatus": "sys",
            "Shelly.GetStatus": "all",
        }
        if method not in known:
            return web.json_response(
                {"code": 404, "message": f"No handler for {method}"}, status=404
            )
        denied = self._authorized(request)
        if denied is not None:
            return denied
        if method == "Sys.GetStatus":
            return web.json_response(self.sys_status())
        if method == "Shelly.GetStatus":
            return web.json_response(self.full_status())
        if known[method] != self.component:
            return web.json_response(
                {"code": 404, "message": f"No handler for {method}"}, status=404
            )
        if request.query.get("id", "0") != "0":
            return web.json_response(
                {"code": -105, "message": f"Argument 'id', value {request.query['id']} not found!"},
                status=500,
            )
        if method == "Switch.Set":
            on = request.query.get("on")
            if on not in ("true", "false"):
                return web.json_response(
                    {"code": -103, "message": f"Invalid argument 'on': {on!r}"}, status=400
                )
            return web.json_response({"was_on": self.set_relay(on == "true")})
        return web.json_response(self.rpc_status())

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        """Gen1 ``GET /relay/0[?turn=on|off|toggle]``: the relay's status after the command."""
        if self.gen != 1:
            return web.json_response({"code": 404, "message": "No handler"}, status=404)
        denied = self._authorized(request)
        if denied is not None:
            return denied
        if request.match_info["id"] != "0":
            return web.Response(status=404, text="Not Found")
        turn = request.query.get("turn")
        if turn == "toggle":
            self.set_relay(not self.relay_on)
        elif turn in ("on", "off"):
            self.set_relay(turn == "on")
        elif turn is not None:
            return web.Response(status=400, text="Bad turn!")
        return web.json_response(self.gen1_relay())

    async def _control(self, request: web.Request) -> web.StreamResponse:
        action = request.match_info["action"]
        body: dict[str, Any] = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return web.json_response({"error": "body is not JSON"}, status=400)
        if action == "power":
            self.set_power(float(body["watts"]))
        elif action == "energy":
            self.set_energy_wh(float(body["wh"]))
        elif action == "reboot":
            self.reboot()
        elif action == "hang":
            self.hang(bool(body.get("on", True)))
        elif action == "garbage":
            self.set_garbage(bool(body.get("on", True)))
        elif action == "password":
            self.set_password(body.get("password"))
        elif action == "relay":
            self.set_relay(bool(body["on"]))
        elif action != "state":
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response(self.state())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._device_behaviour])
        app.router.add_get("/shelly", self._shelly)
        app.router.add_get("/status", self._status)
        app.router.add_get("/rpc/{method}", self._rpc)
        app.router.add_get("/relay/{id}", self._relay)
        app.router.add_route("*", "/_fake/{action}", self._control)
        return app

    async def start(self) -> str:
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fake Shelly serves on loopback only")
        self._release = asyncio.Event()
        if not self.hanging:
            self._release.set()
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeShelly:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _password(args: argparse.Namespace) -> str | None:
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as fh:
            return fh.read().strip()
    if args.password_env:
        value = os.environ.get(args.password_env)
        if value is None:
            raise SystemExit(f"environment variable {args.password_env} is not set")
        return value
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m energysched_lab.fake_shelly", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--gen", type=int, choices=(1, 2, 3, 4), default=2)
    parser.add_argument("--component", choices=("switch", "pm1"), default="switch")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "::1"))
    parser.add_argument("--power", type=float, default=10.0, help="initial watts")
    parser.add_argument("--energy-wh", type=float, default=0.0, help="initial counter (Wh)")
    parser.add_argument("--mac", default=None, help="12 hex digits; random by default")
    parser.add_argument("--password-file", default=None)
    parser.add_argument("--password-env", default=None, help="name of a variable")
    args = parser.parse_args(argv)
    device = FakeShelly(
        gen=args.gen,
        component=args.component,
        password=_password(args),
        power=args.power,
        host=args.host,
        port=args.port,
        energy_wh=args.energy_wh,
        **({"mac": args.mac.upper()} if args.mac else {}),
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_signalled(device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
