"""Shelly smart plugs as a power source: the asynchronous HTTP client.

The documented replies and their parsers (generation from ``GET /shelly``; Gen1
``/status``; Gen2+ ``Shelly.GetStatus`` with the meter and ``sys.uptime`` of the same
instant) are the power-reading core's, :mod:`energysched_bench.power`, shared with the
benchmark. What is the monitor's: a keep-alive aiohttp session, Gen1 HTTP Basic auth,
and Gen2+ digest auth (SHA-256, user admin, realm = device id) by aiohttp's
``DigestAuthMiddleware`` (RFC 7616; it reuses the nonce with an increasing ``nc``, as
firmware 2.0+ accepts, and answers a fresh challenge after a reboot).

Every failure becomes a :class:`ReadError` of one kind; passwords never appear in one.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import aiohttp
from multidict import CIMultiDictProxy

from energysched_bench.power import (
    DeviceInfo,
    ShellyComponent,
    ShellyReading,
    parse_device_info,
    parse_json,
    parse_shelly_status,
)
from energysched_monitor.readings import PowerSource, ReadError, Reading, SourceKind, excerpt
from energysched_monitor.secret import Secret
from energysched_monitor.source_interface import (
    Address,
    BuildContext,
    Credentials,
    KindFields,
    SourcePlugin,
    SourceSpec,
    address_parts,
    credentials_parts,
    require_address,
)

#: The most of a reply that is read: a status document is a few kB; a device (or whatever
#: answers at its address) sending more is broken, and must not fill the monitor's memory.
MAX_REPLY_BYTES: Final = 256 * 1024
T = TypeVar("T")
_ALGORITHM: Final = re.compile(r"algorithm=\"?([A-Za-z0-9-]+)", re.IGNORECASE)


async def _read_capped(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (``read(n)`` may return fewer than are coming)."""
    body = bytearray()
    while len(body) < limit:
        chunk = await resp.content.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def as_reading(status: ShellyReading) -> Reading:
    return Reading(
        status.watts,
        "shelly",
        energy_joules=status.energy_joules,
        uptime_seconds=status.uptime_seconds,
        detail={"gen": status.gen, "component": status.component},
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
        component: ShellyComponent = "auto",
        timeout: float = 3.0,
    ) -> None:
        self.base_url = _base_url(address)
        self.username = username
        self._password = password
        self.component: ShellyComponent = component
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
        return await self._bounded(self._read)

    async def call(self, gen1_path: str, rpc_path: str) -> str:
        """One authenticated GET, on the generation the device reports: ``gen1_path`` on a
        Gen1 device (HTTP Basic), ``rpc_path`` on Gen2+ (digest); the reply's text.

        What the power manager's relay control sends (``/relay/0?turn=off``,
        ``/rpc/Switch.Set?id=0&on=false``) goes through the same session, generation
        detection and auth as the readings. Raises ReadError, as :meth:`read`.
        """

        async def once() -> str:
            info = await self.device_info()
            if info.gen == 1:
                return await self._get_gen1(gen1_path)
            return await self._get_rpc(rpc_path)

        return await self._bounded(once)

    async def device_info(self) -> DeviceInfo:
        """The device's generation and model (``GET /shelly``, unauthenticated), cached."""
        if self._info is None:
            status, text, _ = await self._get("/shelly", None)
            if status != 200:
                raise ReadError("http", f"GET {self.base_url}/shelly: HTTP {status}")
            self._info = parse_device_info(parse_json(text, "/shelly"))
        return self._info

    async def _bounded(self, action: Callable[[], Awaitable[T]]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await action()
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
        info = await self.device_info()
        if info.gen == 1:
            text = await self._get_gen1("/status")
        else:
            text = await self._get_rpc(info.status_path)
        return as_reading(parse_shelly_status(info, text, self.component))

    # -- Gen1 ----------------------------------------------------------------------

    async def _get_gen1(self, path: str) -> str:
        basic = (
            aiohttp.encode_basic_auth(self.username, self._password.reveal())
            if self._password
            else None
        )
        status, text, _ = await self._get(path, basic)
        if status == 401:
            raise self._auth_error("Basic") if basic else self._no_credentials()
        if status != 200:
            raise ReadError("http", f"GET {self.base_url}{path}: HTTP {status} {excerpt(text)}")
        return text

    # -- Gen2+ ---------------------------------------------------------------------

    async def _get_rpc(self, uri: str) -> str:
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
        return text

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
                raw = await _read_capped(resp, MAX_REPLY_BYTES + 1)
                if len(raw) > MAX_REPLY_BYTES:
                    raise ReadError(
                        "malformed",
                        f"GET {url}: reply longer than {MAX_REPLY_BYTES} bytes: {excerpt(raw)}",
                    )
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


# -- the kind ``shelly`` ---------------------------------------------------------------


class ShellyFields(KindFields):
    address: Address | None = None
    component: ShellyComponent = "auto"  # gen2+: switch or pm1, found automatically
    credentials: Credentials = None


def _check(fields: ShellyFields) -> None:
    require_address("shelly", fields.address)


def _describe(spec: SourceSpec, fields: ShellyFields) -> list[str]:
    component = [] if fields.component == "auto" else [fields.component]
    return address_parts(spec) + component + credentials_parts(spec)


def _build(spec: SourceSpec, fields: ShellyFields, ctx: BuildContext) -> PowerSource:
    assert fields.address is not None
    return ShellySource(
        fields.address,
        username=spec.credentials.username if spec.credentials else "admin",
        password=ctx.password(spec),
        component=fields.component,
        timeout=ctx.timeout_seconds,
    )


PLUGIN: Final = SourcePlugin(
    "shelly",
    ShellyFields,
    _build,
    check=_check,
    describe=_describe,
    refuse_keys_elsewhere=False,
)
