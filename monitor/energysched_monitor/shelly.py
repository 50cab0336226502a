"""Shelly smart plugs as a power source: reply parsing (pure) and the HTTP client.

Generation is detected from ``GET /shelly`` (never authenticated):

* Gen1 (Plug S, ...): no ``gen`` field. ``GET /status`` gives ``meters[0].power`` (W),
  ``meters[0].total`` (watt-minutes, integer, reset on reboot) and ``uptime`` (s).
  HTTP Basic auth.
* Gen2/Gen3/Gen4: ``"gen": 2|3|4``, ``auth_en``. ``GET /rpc/Shelly.GetStatus`` gives
  every component in one reply: ``switch:0`` (or, on metering-only devices, ``pm1:0``)
  with ``apower`` (W) and ``aenergy.total`` (Wh, reset on reboot), and ``sys`` (what
  ``Sys.GetStatus`` returns) with ``uptime`` (s). One request rather than
  ``Switch.GetStatus`` plus ``Sys.GetStatus``: the counter and the uptime are then of
  the same instant, so a reboot between two requests cannot be mistaken for none.
  Digest auth (SHA-256, user admin, realm = device id) by aiohttp's
  ``DigestAuthMiddleware`` (RFC 7616; it reuses the nonce with an increasing ``nc``, as
  firmware 2.0+ accepts, and answers a fresh challenge after a reboot).

Every failure becomes a :class:`ReadError` of one kind; passwords never appear in one.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp
from multidict import CIMultiDictProxy

from energysched_monitor.readings import ReadError, Reading, SourceKind, excerpt
from energysched_monitor.secret import Secret

Component = Literal["auto", "switch", "pm1"]
COMPONENTS: Final[tuple[Component, ...]] = ("auto", "switch", "pm1")
RPC_GENERATIONS: Final = (2, 3, 4)
STATUS_METHOD: Final = "Shelly.GetStatus"
_ALGORITHM: Final = re.compile(r"algorithm=\"?([A-Za-z0-9-]+)", re.IGNORECASE)

WATT_MINUTE_J: Final = 60.0
WATT_HOUR_J: Final = 3600.0


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    gen: int
    device_id: str
    model: str
    auth_required: bool


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReadError("malformed", f"{where} is not a number: {excerpt(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise ReadError("malformed", f"{where} is not finite: {excerpt(value)}")
    return number


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReadError("malformed", f"{where} is not a JSON object: {excerpt(value)}")
    return value


def parse_json(text: str, where: str) -> Mapping[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise ReadError("malformed", f"{where}: not JSON: {excerpt(text)}") from None
    return _mapping(value, where)


def parse_device_info(obj: Mapping[str, Any]) -> DeviceInfo:
    """``GET /shelly`` of any generation."""
    if "gen" in obj:
        gen = obj["gen"]
        if isinstance(gen, bool) or not isinstance(gen, int):
            raise ReadError("malformed", f"/shelly: gen is not an integer: {excerpt(gen)}")
        if gen not in RPC_GENERATIONS:
            raise ReadError("unsupported", f"/shelly: unsupported device generation {gen}")
        device_id = obj.get("id")
        if not isinstance(device_id, str) or not device_id:
            raise ReadError("malformed", f"/shelly: gen {gen} reply without id: {excerpt(obj)}")
        return DeviceInfo(gen, device_id, str(obj.get("model", "")), bool(obj.get("auth_en")))
    if "type" in obj and "mac" in obj:  # Gen1: {"type": "SHPLG-S", "mac": ..., "auth": ...}
        return DeviceInfo(1, f"{obj['type']}-{obj['mac']}", str(obj["type"]), bool(obj.get("auth")))
    raise ReadError("malformed", f"/shelly: neither a Gen1 nor a Gen2+ reply: {excerpt(obj)}")


def _uptime(value: Any) -> float | None:
    """A device uptime in seconds, or None if absent or not a plausible one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def parse_gen1_status(obj: Mapping[str, Any]) -> Reading:
    """``GET /status`` of a Gen1 device: ``meters[0].power`` W, ``meters[0].total`` W·min."""
    meters = obj.get("meters")
    if not isinstance(meters, list) or not meters:
        raise ReadError("malformed", f"/status: no meters[0]: {excerpt(obj)}")
    meter = _mapping(meters[0], "/status meters[0]")
    if meter.get("is_valid") is False:
        raise ReadError("malformed", "/status: meters[0].is_valid is false (meter self-check)")
    watts = _number(meter.get("power"), "/status meters[0].power")
    total = _number(meter.get("total"), "/status meters[0].total")
    return Reading(
        watts,
        "shelly",
        energy_joules=total * WATT_MINUTE_J,
        uptime_seconds=_uptime(obj.get("uptime")),
        detail={"gen": 1},
    )


def parse_rpc_meter(
    obj: Mapping[str, Any], where: str, gen: int, uptime: float | None = None
) -> Reading:
    """A ``switch:0`` / ``pm1:0`` status: ``apower`` W, ``aenergy.total`` Wh."""
    watts = _number(obj.get("apower"), f"{where} apower")
    aenergy = _mapping(obj.get("aenergy"), f"{where} aenergy")
    total = _number(aenergy.get("total"), f"{where} aenergy.total")
    return Reading(
        watts,
        "shelly",
        energy_joules=total * WATT_HOUR_J,
        uptime_seconds=uptime,
        detail={"gen": gen, "component": where},
    )


def parse_rpc_status(
    obj: Mapping[str, Any], component: Component, gen: int
) -> tuple[Reading, Literal["switch", "pm1"]]:
    """``Shelly.GetStatus``: the meter of ``switch:0`` (else ``pm1:0``) and ``sys.uptime``."""
    order: tuple[Literal["switch", "pm1"], ...] = (
        ("switch", "pm1") if component == "auto" else (component,)
    )
    sys_status = obj.get("sys")
    uptime = _uptime(sys_status.get("uptime")) if isinstance(sys_status, Mapping) else None
    for name in order:
        key = f"{name}:0"
        if key in obj:
            meter = _mapping(obj[key], f"{STATUS_METHOD} {key}")
            return parse_rpc_meter(meter, key, gen, uptime), name
    wanted = " nor ".join(f"{name}:0" for name in order)
    components = ", ".join(sorted(str(k) for k in obj)[:20])
    raise ReadError(
        "unsupported",
        f"{STATUS_METHOD} has {'neither ' if len(order) > 1 else 'no '}"
        f"{wanted} (components: {components})",
    )


def _base_url(address: str) -> str:
    address = address.strip().rstrip("/")
    return address if "://" in address else f"http://{address}"


class ShellySource:
    """One plug. Holds a keep-alive session, the detected generation and the nonce.

    Raises ReadError("config") for credentials no HTTP auth scheme can carry (a ``:``
    in the user name, RFC 7617 and 7616 alike).
    """

    def __init__(
        self,
        address: str,
        *,
        username: str = "admin",
        password: Secret | None = None,
        component: Component = "auto",
        timeout: float = 3.0,
    ) -> None:
        self.base_url = _base_url(address)
        self.username = username
        self._password = password
        self.component: Component = component
        self.timeout = timeout
        self._info: DeviceInfo | None = None
        if ":" in username:
            raise ReadError("config", f"user name {username!r}: a ':' cannot be sent in HTTP auth")
        self._digest = self._new_digest()
        self._session: aiohttp.ClientSession | None = None

    def _new_digest(self) -> aiohttp.DigestAuthMiddleware | None:
        if not self._password:
            return None
        return aiohttp.DigestAuthMiddleware(self.username, self._password.reveal())

    @property
    def kind(self) -> SourceKind:
        return "shelly"

    @property
    def describe(self) -> str:
        gen = f" gen{self._info.gen}" if self._info else ""
        return f"shelly{gen} {self.base_url}"

    def __repr__(self) -> str:
        return f"ShellySource({self.base_url!r}, username={self.username!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def read(self) -> Reading:
        try:
            async with asyncio.timeout(self.timeout):
                return await self._read()
        except TimeoutError:
            raise ReadError(
                "timeout", f"{self.base_url} did not answer within {self.timeout:g} s"
            ) from None
        except ReadError as exc:
            if exc.kind in ("malformed", "http", "unsupported"):
                self._info = None  # maybe another device now: detect again next time
            if exc.kind == "auth":
                # The middleware keeps the last challenge and answers it before being
                # asked; after a rejection or an unusable challenge, start afresh.
                self._digest = self._new_digest()
            raise

    async def _read(self) -> Reading:
        if self._info is None:
            status, text, _ = await self._get("/shelly", None)
            if status != 200:
                raise ReadError("http", f"GET {self.base_url}/shelly: HTTP {status}")
            self._info = parse_device_info(parse_json(text, "/shelly"))
        if self._info.gen == 1:
            return await self._read_gen1()
        return await self._read_rpc(self._info)

    # -- Gen1 ----------------------------------------------------------------------

    async def _read_gen1(self) -> Reading:
        basic = (
            aiohttp.encode_basic_auth(self.username, self._password.reveal())
            if self._password
            else None
        )
        status, text, _ = await self._get("/status", basic)
        if status == 401:
            raise self._auth_error("Basic") if basic else self._no_credentials()
        if status != 200:
            raise ReadError("http", f"GET {self.base_url}/status: HTTP {status}")
        return parse_gen1_status(parse_json(text, "/status"))

    # -- Gen2+ ---------------------------------------------------------------------

    async def _read_rpc(self, info: DeviceInfo) -> Reading:
        uri = f"/rpc/{STATUS_METHOD}"
        status, text, headers = await self._get(uri, None, digest=True)
        if status == 401:
            challenge = headers.get("WWW-Authenticate", "")
            if self._digest is None:
                raise self._no_credentials()
            if not challenge.lower().startswith("digest "):
                raise ReadError(
                    "auth", f"{self.base_url}: unusable 401 challenge: {excerpt(challenge)}"
                )
            algorithm = _ALGORITHM.search(challenge)
            raise self._auth_error(f"Digest {algorithm.group(1) if algorithm else 'MD5'}")
        if status != 200:
            raise ReadError("http", f"GET {self.base_url}{uri}: HTTP {status} {excerpt(text)}")
        reading, _ = parse_rpc_status(parse_json(text, STATUS_METHOD), self.component, info.gen)
        return reading

    # -- transport -----------------------------------------------------------------

    def _no_credentials(self) -> ReadError:
        return ReadError(
            "auth", f"{self.base_url} requires authentication but no credentials are configured"
        )

    def _auth_error(self, scheme: str) -> ReadError:
        return ReadError(
            "auth",
            f"{self.base_url} rejected the credentials of user {self.username!r} "
            f"({scheme}): check the Secret",
        )

    async def _get(
        self, path: str, authorization: str | None, *, digest: bool = False
    ) -> tuple[int, str, CIMultiDictProxy[str]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=2),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        headers = {"Authorization": authorization} if authorization else None
        middlewares = (self._digest,) if digest and self._digest else ()
        url = self.base_url + path
        try:
            async with self._session.get(url, headers=headers, middlewares=middlewares) as resp:
                raw = await resp.read()
                return resp.status, raw.decode("utf-8", errors="replace"), resp.headers
        except TimeoutError:  # before OSError: TimeoutError is one
            raise
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ReadError("unreachable", f"GET {url}: {type(exc).__name__}: {exc}") from None
        except aiohttp.ClientPayloadError as exc:
            raise ReadError("malformed", f"GET {url}: broken body: {exc}") from None
        except aiohttp.ClientError as exc:
            # The digest middleware raises the base class itself for a challenge it cannot
            # answer (no nonce, an unknown algorithm or qop); transport errors are subclasses.
            if type(exc) is aiohttp.ClientError:
                raise ReadError("auth", f"{url}: unusable 401 challenge: {exc}") from None
            raise ReadError("http", f"GET {url}: {type(exc).__name__}: {exc}") from None
