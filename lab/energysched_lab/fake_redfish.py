"""A fake BMC: a real HTTP(S) server on loopback speaking DMTF Redfish, for power readings.

Ours, written from DMTF's published schemas (``Chassis.v1``, ``Power.v1``,
``EnvironmentMetrics.v1``, ``SessionService``/``Session.v1``), because no Redfish server
others wrote that serves power readings is installable here: OpenStack's sushy-emulator
(used for the Reset tests) has no Power resource, and DMTF's Redfish Mockup Server is not
on PyPI. The resources follow the shapes of DMTF's public ``public-rackmount1`` mockup:
one chassis ``1U`` with ``Power`` (``PowerControl[0].PowerConsumedWatts``) and/or
``EnvironmentMetrics`` (``PowerWatts.Reading``, ``EnergykWh.Reading`` with
``SensorResetTime``), chosen by ``schema``::

    python -m energysched_lab.fake_redfish --schema both --power 374 --port 0 \\
        --password-env FAKE_BMC_PASSWORD

prints ``{"url": ...}`` and serves until SIGINT/SIGTERM. Auth as BMCs do it: a session
(``POST /redfish/v1/SessionService/Sessions`` with ``UserName``/``Password`` gives
``X-Auth-Token`` and ``Location``; ``DELETE`` on it logs out) or HTTP Basic; the
service root ``/redfish/v1`` is unauthenticated, as the standard says. The energy
counter advances with the clock at the current power, in watt-hour steps.

It also has one ComputerSystem ``1`` with ``#ComputerSystem.Reset`` (``reset_types`` is
its ``ResetType@Redfish.AllowableValues``, None for a BMC that does not announce them), to
test that the power method respects them.

Control API under ``/_fake/`` (unauthenticated, POST JSON): ``power {"watts": 80}``,
``energy {"kwh": 0}`` (a counter reset: ``SensorResetTime`` becomes now),
``fault {"status": 503}`` / ``{"garbage": true}`` / ``{"hang": true}`` / ``{}`` (clear),
``schema {"schema": "neither"}``, ``expire`` (forget every session), ``GET state``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import hmac
import os
import secrets
import ssl
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any, Literal

from aiohttp import web

from energysched_lab.fake_device import serve_until_signalled

FakeSchema = Literal["power", "environment", "both", "neither"]
CHASSIS = "1U"
_ROOT = "/redfish/v1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


@dataclass
class FakeRedfish:
    schema: FakeSchema = "both"
    power: float = 374.0
    username: str = "admin"
    password: str | None = None
    energy_kwh: float = 0.0
    host: str = "127.0.0.1"
    port: int = 0
    certfile: str | None = None
    keyfile: str | None = None
    clock: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    url: str = ""
    requests: int = 0  # every request served, control API excluded
    sessions: dict[str, str] = field(default_factory=dict)  # token -> session id
    fault_status: int | None = None
    garbage: bool = False
    hanging: bool = False
    #: the system's ResetType@Redfish.AllowableValues (None: not announced)
    reset_types: list[str] | None = field(
        default_factory=lambda: ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
    )
    power_state: str = "On"
    resets: list[str] = field(default_factory=list)  # every ResetType accepted
    _energy_j: float = 0.0
    _last: float = 0.0
    _reset_at: float = 0.0
    _runner: web.AppRunner | None = None
    _release: asyncio.Event | None = None

    def __post_init__(self) -> None:
        self._energy_j = self.energy_kwh * 3.6e6
        self._last = self.clock()
        self._reset_at = self.wall() - 86400.0  # the counter has run for a day

    # -- the device ----------------------------------------------------------------

    def _advance(self) -> None:
        now = self.clock()
        self._energy_j += self.power * max(0.0, now - self._last)
        self._last = now

    def set_power(self, watts: float) -> None:
        self._advance()
        self.power = watts

    def reset_energy(self, kwh: float = 0.0) -> None:
        self._advance()
        self._energy_j = kwh * 3.6e6
        self._reset_at = self.wall()

    def energy_reading_kwh(self) -> float:
        """Whole watt-hours, as kWh with three decimals (what BMCs report)."""
        self._advance()
        return round(int(self._energy_j / 3600.0) / 1000.0, 3)

    def state(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "schema": self.schema,
            "power": self.power,
            "energy_kwh": self.energy_reading_kwh(),
            "requests": self.requests,
            "sessions": len(self.sessions),
        }

    # -- auth ------------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        if self.password is None:
            return True
        token = request.headers.get("X-Auth-Token")
        if token is not None:
            return token in self.sessions
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return user == self.username and hmac.compare_digest(password, self.password)
        return False

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        body = {"error": {"code": "Base.1.8.GeneralError", "message": message}}
        return web.json_response(body, status=status)

    @web.middleware
    async def _behaviour(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_fake/"):
            return await handler(request)
        self.requests += 1
        if self.hanging:
            assert self._release is not None
            await self._release.wait()
        if self.fault_status is not None:
            return self._error(self.fault_status, f"fault injected: HTTP {self.fault_status}")
        public = request.path.rstrip("/") == _ROOT or (
            request.path == f"{_ROOT}/SessionService/Sessions" and request.method == "POST"
        )
        if not public and not self._authorized(request):
            denied = self._error(401, "authentication required")
            denied.headers["WWW-Authenticate"] = 'Basic realm="Redfish"'
            return denied
        if self.garbage:
            return web.Response(status=200, text='{"PowerWatts": {"Read', content_type="text/html")
        response = await handler(request)
        response.headers["OData-Version"] = "4.0"
        # The BMC's own clock (``wall``), as SensorResetTime is: a test's clock moves both.
        response.headers["Date"] = formatdate(self.wall(), usegmt=True)
        return response

    # -- resources -------------------------------------------------------------------

    async def _root(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
                "@odata.id": _ROOT,
                "Id": "RootService",
                "RedfishVersion": "1.17.0",
                "Chassis": {"@odata.id": f"{_ROOT}/Chassis"},
                "Systems": {"@odata.id": f"{_ROOT}/Systems"},
                "SessionService": {"@odata.id": f"{_ROOT}/SessionService"},
                "Links": {"Sessions": {"@odata.id": f"{_ROOT}/SessionService/Sessions"}},
            }
        )

    async def _chassis_collection(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "@odata.type": "#ChassisCollection.ChassisCollection",
                "@odata.id": f"{_ROOT}/Chassis",
                "Members@odata.count": 1,
                "Members": [{"@odata.id": f"{_ROOT}/Chassis/{CHASSIS}"}],
            }
        )

    async def _chassis(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != CHASSIS:
            return self._error(404, "no such chassis")
        base = f"{_ROOT}/Chassis/{CHASSIS}"
        doc: dict[str, Any] = {
            "@odata.type": "#Chassis.v1_23_0.Chassis",
            "@odata.id": base,
            "Id": CHASSIS,
            "ChassisType": "RackMount",
            "PowerState": "On",
            "Thermal": {"@odata.id": f"{base}/Thermal"},
        }
        if self.schema in ("power", "both"):
            doc["Power"] = {"@odata.id": f"{base}/Power"}
        if self.schema in ("environment", "both"):
            doc["PowerSubsystem"] = {"@odata.id": f"{base}/PowerSubsystem"}
            doc["EnvironmentMetrics"] = {"@odata.id": f"{base}/EnvironmentMetrics"}
        return web.json_response(doc)

    async def _power(self, request: web.Request) -> web.Response:
        if self.schema not in ("power", "both"):
            return self._error(404, "no Power resource")
        base = f"{_ROOT}/Chassis/{CHASSIS}/Power"
        return web.json_response(
            {
                "@odata.type": "#Power.v1_7_1.Power",
                "@odata.id": base,
                "Id": "Power",
                "PowerControl": [
                    {
                        "@odata.id": f"{base}#/PowerControl/0",
                        "MemberId": "0",
                        "Name": "Server Power Control",
                        "PowerConsumedWatts": self.power,
                        "PowerCapacityWatts": 800,
                    }
                ],
            }
        )

    async def _environment(self, request: web.Request) -> web.Response:
        if self.schema not in ("environment", "both"):
            return self._error(404, "no EnvironmentMetrics resource")
        base = f"{_ROOT}/Chassis/{CHASSIS}"
        return web.json_response(
            {
                "@odata.type": "#EnvironmentMetrics.v1_3_0.EnvironmentMetrics",
                "@odata.id": f"{base}/EnvironmentMetrics",
                "Name": "Chassis Environment Metrics",
                "TemperatureCelsius": {"Reading": 39},
                "PowerWatts": {
                    "Reading": self.power,
                    "DataSourceUri": f"{base}/Sensors/TotalPower",
                },
                "EnergykWh": {
                    "Reading": self.energy_reading_kwh(),
                    "SensorResetTime": _iso(self._reset_at),
                    "DataSourceUri": f"{base}/Sensors/TotalEnergy",
                },
            }
        )

    async def _power_subsystem(self, request: web.Request) -> web.Response:
        base = f"{_ROOT}/Chassis/{CHASSIS}/PowerSubsystem"
        return web.json_response(
            {
                "@odata.type": "#PowerSubsystem.v1_1_0.PowerSubsystem",
                "@odata.id": base,
                "CapacityWatts": 800,
            }
        )

    async def _systems(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "@odata.type": "#ComputerSystemCollection.ComputerSystemCollection",
                "@odata.id": f"{_ROOT}/Systems",
                "Members": [{"@odata.id": f"{_ROOT}/Systems/1"}],
            }
        )

    async def _system(self, request: web.Request) -> web.Response:
        if request.match_info["id"] != "1":
            return self._error(404, "no such system")
        action: dict[str, Any] = {"target": f"{_ROOT}/Systems/1/Actions/ComputerSystem.Reset"}
        if self.reset_types is not None:
            action["ResetType@Redfish.AllowableValues"] = self.reset_types
        return web.json_response(
            {
                "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
                "@odata.id": f"{_ROOT}/Systems/1",
                "Id": "1",
                "PowerState": self.power_state,
                "Actions": {"#ComputerSystem.Reset": action},
            }
        )

    async def _reset(self, request: web.Request) -> web.Response:
        body = await request.json()
        reset_type = body.get("ResetType") if isinstance(body, dict) else None
        if self.reset_types is not None and reset_type not in self.reset_types:
            return self._error(400, f"ResetType {reset_type!r} is not supported")
        self.resets.append(str(reset_type))
        self.power_state = "Off" if reset_type in ("ForceOff", "GracefulShutdown") else "On"
        return web.Response(status=204)

    async def _sessions(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._error(400, "not JSON")
        user, password = body.get("UserName"), body.get("Password")
        if self.password is None or (
            user == self.username
            and isinstance(password, str)
            and hmac.compare_digest(password, self.password)
        ):
            token, sid = secrets.token_hex(16), secrets.token_hex(4)
            self.sessions[token] = sid
            location = f"{_ROOT}/SessionService/Sessions/{sid}"
            return web.json_response(
                {"@odata.id": location, "Id": sid, "UserName": user},
                status=201,
                headers={"X-Auth-Token": token, "Location": location},
            )
        return self._error(401, "invalid credentials")

    async def _session_delete(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        for token, value in list(self.sessions.items()):
            if value == sid:
                del self.sessions[token]
                return web.Response(status=204)
        return self._error(404, "no such session")

    async def _control(self, request: web.Request) -> web.Response:
        action = request.match_info["action"]
        body: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            body = await request.json()
        if action == "power":
            self.set_power(float(body["watts"]))
        elif action == "energy":
            self.reset_energy(float(body.get("kwh", 0.0)))
        elif action == "fault":
            self.fault_status = body.get("status")
            self.garbage = bool(body.get("garbage", False))
            hang = bool(body.get("hang", False))
            if self.hanging and not hang and self._release is not None:
                self._release.set()
            if hang and not self.hanging:
                self._release = asyncio.Event()
            self.hanging = hang
        elif action == "schema":
            self.schema = body["schema"]
        elif action == "expire":
            self.sessions.clear()
        elif action != "state":
            return web.json_response({"error": f"unknown action {action}"}, status=404)
        return web.json_response(self.state())

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._behaviour])
        base = f"{_ROOT}/Chassis/{{id}}"
        app.router.add_get(_ROOT, self._root)
        app.router.add_get(f"{_ROOT}/", self._root)
        app.router.add_get(f"{_ROOT}/Chassis", self._chassis_collection)
        app.router.add_get(base, self._chassis)
        app.router.add_get(f"{base}/Power", self._power)
        app.router.add_get(f"{base}/EnvironmentMetrics", self._environment)
        app.router.add_get(f"{base}/PowerSubsystem", self._power_subsystem)
        app.router.add_get(f"{_ROOT}/Systems", self._systems)
        app.router.add_get(f"{_ROOT}/Systems/{{id}}", self._system)
        app.router.add_post(f"{_ROOT}/Systems/{{id}}/Actions/ComputerSystem.Reset", self._reset)
        app.router.add_post(f"{_ROOT}/SessionService/Sessions", self._sessions)
        app.router.add_delete(f"{_ROOT}/SessionService/Sessions/{{sid}}", self._session_delete)
        app.router.add_route("*", "/_fake/{action}", self._control)
        return app

    async def start(self) -> str:
        if self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the fake BMC serves on loopback only")
        self._release = asyncio.Event()
        if not self.hanging:
            self._release.set()
        context = None
        if self.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.certfile, self.keyfile)
        self._runner = web.AppRunner(self.app(), handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=context)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.url = f"{'https' if context else 'http'}://{self.host}:{self.port}"
        return self.url

    async def stop(self) -> None:
        if self._release is not None:
            self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeRedfish:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m energysched_lab.fake_redfish", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--schema", choices=("power", "environment", "both", "neither"), default="both"
    )
    parser.add_argument("--power", type=float, default=374.0)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1", choices=("127.0.0.1", "::1"))
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password-env", default=None, help="name of a variable")
    parser.add_argument("--certfile", default=None)
    parser.add_argument("--keyfile", default=None)
    args = parser.parse_args(argv)
    password = None
    if args.password_env:
        password = os.environ.get(args.password_env)
        if password is None:
            raise SystemExit(f"environment variable {args.password_env} is not set")
    device = FakeRedfish(
        schema=args.schema,
        power=args.power,
        username=args.username,
        password=password,
        host=args.host,
        port=args.port,
        certfile=args.certfile,
        keyfile=args.keyfile,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_until_signalled(device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
