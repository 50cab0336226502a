"""A server's BMC over Redfish: the HTTP client and the power source.

:class:`RedfishClient` is the transport, shared with the power manager's Redfish wake and
sleep method: a session (``POST /redfish/v1/SessionService/Sessions``, then the
``X-Auth-Token`` header; the session is deleted on close) or HTTP Basic on every request;
TLS verified against the system's CAs or a CA bundle, or not verified at all only when
the config says ``insecureSkipTLSVerify``. BMCs are slow (1-5 s a request is normal) and
small: one request at a time per BMC (a connection limit of 1), a per-request timeout
of 10 s by default, and the source is polled every 10 s by default (see ``config``).

:class:`RedfishSource` finds the chassis' power resource once (the configured chassis,
or the first one that has one), then reads one resource per poll: EnvironmentMetrics
(``PowerWatts``, ``EnergykWh``) where the chassis has it, else Power
(``PowerControl[].PowerConsumedWatts``). Every failure is one :class:`ReadError`;
a password never appears in one.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

import aiohttp
from pydantic import AfterValidator, Field

from energysched.strict import show
from energysched_monitor.readings import PowerSource, ReadError, Reading, SourceKind, excerpt
from energysched_monitor.redfish_payload import (
    ENERGY_RESOLUTION_JOULES,
    ChassisLinks,
    Schema,
    chassis_links,
    collection_members,
    counter_age,
    has_power_watts,
    http_date,
    parse_power,
    service_link,
)
from energysched_monitor.secret import Secret
from energysched_monitor.source_interface import (
    Address,
    BuildContext,
    Credentials,
    KindFields,
    SourcePlugin,
    SourceSpec,
    access_parts,
    require_url,
)

MAX_REPLY_BYTES: Final = 1024 * 1024  # a Redfish resource is a few kB; a mockup's root 10
SESSIONS_PATH: Final = "/redfish/v1/SessionService/Sessions"
SERVICE_ROOT: Final = "/redfish/v1"
#: At most this many chassis are looked at to find one with a power reading (a blade
#: enclosure lists dozens; name the one you mean with ``chassis``).
MAX_CHASSIS_SCANNED: Final = 8
#: A BMC takes 1-5 s per request and serves many clients: poll it gently by default.
REDFISH_POLL_SECONDS: Final = 10.0
REDFISH_TIMEOUT_SECONDS: Final = 10.0


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any  # the parsed JSON (None for an empty body)
    headers: Mapping[str, str]


def tls_context(ca_bundle: str | None, insecure: bool) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl`` argument: a context verifying against ``ca_bundle`` (or the
    system's CAs), or False for ``insecureSkipTLSVerify``. ReadError("config") for a
    bundle that cannot be read."""
    if insecure:
        return False
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ReadError("config", f"caBundle {ca_bundle}: cannot be loaded: {exc}") from None


class RedfishClient:
    """One BMC: authenticated JSON requests, one at a time. Raises ReadError."""

    def __init__(
        self,
        address: str,
        *,
        username: str = "",
        password: Secret | None = None,
        auth: str = "session",
        ca_bundle: str | None = None,
        insecure: bool = False,
        timeout: float = 10.0,
    ) -> None:
        self.base_url = address.strip().rstrip("/")
        self.username = username
        self._password = password
        self.auth = auth
        self.insecure = insecure
        self.timeout = timeout
        self._ssl = tls_context(ca_bundle, insecure)
        self._session: aiohttp.ClientSession | None = None
        self._token: str | None = None
        self._session_uri: str | None = None
        self._lock = asyncio.Lock()  # one request at a time: BMCs are small

    def __repr__(self) -> str:
        return f"RedfishClient({self.base_url!r}, username={self.username!r}, auth={self.auth!r})"

    @property
    def describe(self) -> str:
        tls = " (TLS NOT VERIFIED: insecureSkipTLSVerify)" if self.insecure else ""
        return f"redfish {self.base_url}{tls}"

    async def close(self) -> None:
        """Log the session out (best effort: the BMC times it out anyway), close sockets."""
        if self._session_uri is not None and self._session is not None:
            try:
                async with asyncio.timeout(self.timeout):
                    await self._send("DELETE", self._session_uri, None, self._auth_headers())
            except (ReadError, TimeoutError):
                pass
        self._token = self._session_uri = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- requests --------------------------------------------------------------------

    async def get(self, path: str) -> Reply:
        """GET a resource; ReadError unless it answers 200 with a JSON object."""
        reply = await self.request("GET", path)
        if reply.status != 200:
            raise self._status_error("GET", path, reply)
        if not isinstance(reply.body, dict):
            raise ReadError(
                "malformed",
                f"GET {self.base_url}{path}: not a JSON object: {excerpt(repr(reply.body))}",
            )
        return reply

    async def request(self, method: str, path: str, body: Any = None) -> Reply:
        """One authenticated request (logging in first if need be); a 401 on a session
        logs in again once (sessions expire). Raises ReadError for transport failures
        and for 401 after that; other statuses are the caller's."""
        async with self._lock:
            try:
                async with asyncio.timeout(self.timeout):
                    if self.auth == "session" and self._password and self._token is None:
                        await self._login()
                reply = await self._timed(method, path, body)
                if reply.status == 401 and self.auth == "session" and self._password:
                    self._token = self._session_uri = None  # expired or revoked: log in again
                    async with asyncio.timeout(self.timeout):
                        await self._login()
                    reply = await self._timed(method, path, body)
            except TimeoutError:
                raise ReadError(
                    "timeout",
                    f"{method} {self.base_url}{path}: no answer within {self.timeout:g} s",
                ) from None
        if reply.status == 401:
            raise self._auth_error(f"{method} {path}")
        return reply

    async def _timed(self, method: str, path: str, body: Any) -> Reply:
        async with asyncio.timeout(self.timeout):
            return await self._send(method, path, body, self._auth_headers())

    def _auth_headers(self) -> dict[str, str]:
        if not self._password:
            return {}
        if self.auth == "basic":
            return {
                "Authorization": aiohttp.encode_basic_auth(self.username, self._password.reveal())
            }
        return {"X-Auth-Token": self._token} if self._token else {}

    async def _login(self) -> None:
        assert self._password is not None
        body = {"UserName": self.username, "Password": self._password.reveal()}
        reply = await self._send("POST", SESSIONS_PATH, body, {})
        if reply.status == 401 or reply.status == 403:
            raise self._auth_error("session login")
        if reply.status not in (200, 201):
            raise ReadError(
                "http" if reply.status != 404 else "unsupported",
                f"POST {self.base_url}{SESSIONS_PATH}: HTTP {reply.status}"
                + (
                    " (no SessionService here: use auth: basic)"
                    if reply.status in (404, 405)
                    else ""
                ),
            )
        token = reply.headers.get("X-Auth-Token")
        if not token:
            raise ReadError(
                "auth", f"POST {self.base_url}{SESSIONS_PATH}: no X-Auth-Token in the reply"
            )
        location = reply.headers.get("Location")
        if location is None and isinstance(reply.body, dict):
            odata = reply.body.get("@odata.id")
            location = odata if isinstance(odata, str) else None
        if location and "://" in location:  # an absolute URL: keep its path
            location = "/" + location.split("://", 1)[1].split("/", 1)[-1]
        self._token, self._session_uri = token, location

    async def _send(self, method: str, path: str, body: Any, headers: Mapping[str, str]) -> Reply:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
        url = self.base_url + path
        data = None if body is None else json.dumps(body)
        send_headers = {"Accept": "application/json", **headers}
        if data is not None:
            send_headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(method, url, data=data, headers=send_headers) as resp:
                raw = await resp.content.read(MAX_REPLY_BYTES + 1)
                while len(raw) <= MAX_REPLY_BYTES:
                    chunk = await resp.content.read(MAX_REPLY_BYTES + 1 - len(raw))
                    if not chunk:
                        break
                    raw += chunk
                if len(raw) > MAX_REPLY_BYTES:
                    raise ReadError(
                        "malformed", f"{method} {url}: reply longer than {MAX_REPLY_BYTES} bytes"
                    )
                headers_out = {k: v for k, v in resp.headers.items()}
                status = resp.status
        except TimeoutError:
            raise
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ReadError(
                "unreachable",
                f"{method} {url}: TLS certificate not trusted ({exc.certificate_error}): "
                "give the BMC's CA as caBundle (insecureSkipTLSVerify turns checking off)",
            ) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:
            raise ReadError("unreachable", f"{method} {url}: {type(exc).__name__}: {exc}") from None
        except aiohttp.ClientError as exc:
            raise ReadError("http", f"{method} {url}: {type(exc).__name__}: {exc}") from None
        parsed: Any = None
        if raw.strip():
            try:
                parsed = json.loads(raw)
            except ValueError:
                if 200 <= status < 300:
                    raise ReadError(
                        "malformed", f"{method} {url}: not JSON: {excerpt(raw)}"
                    ) from None
                parsed = raw.decode("utf-8", errors="replace")
        return Reply(status, parsed, headers_out)

    # -- errors ----------------------------------------------------------------------

    def _auth_error(self, what: str) -> ReadError:
        if not self._password:
            return ReadError(
                "auth", f"{self.base_url}: {what}: the BMC requires credentials, none configured"
            )
        return ReadError(
            "auth",
            f"{self.base_url}: {what}: the BMC rejected user {self.username!r} "
            f"({'session' if self.auth == 'session' else 'Basic'} auth): check the Secret",
        )

    def _status_error(self, method: str, path: str, reply: Reply) -> ReadError:
        message = _redfish_message(reply.body)
        hint = " (the BMC is busy or starting: retried with backoff)" if reply.status == 503 else ""
        return ReadError(
            "http" if reply.status != 404 else "unsupported",
            f"{method} {self.base_url}{path}: HTTP {reply.status}{hint}"
            + (f": {message}" if message else ""),
        )


def _redfish_message(body: Any) -> str:
    """The ``error.message`` of a Redfish error reply, else an excerpt of the body."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return excerpt(error["message"])
    return excerpt(str(body)) if body else ""


class RedfishSource:
    """A node's wall power from its BMC."""

    def __init__(
        self,
        client: RedfishClient,
        *,
        chassis: str | None = None,
        schema: str = "auto",
    ) -> None:
        self.client = client
        self.chassis = chassis
        self.schema = schema
        self._resource: tuple[str, Schema] | None = None  # found once, kept

    @property
    def kind(self) -> SourceKind:
        return "redfish"

    @property
    def describe(self) -> str:
        where = f" {self._resource[0]}" if self._resource else ""
        return f"{self.client.describe}{where}"

    async def close(self) -> None:
        await self.client.close()

    async def read(self) -> Reading:
        if self._resource is None:
            self._resource = await self._discover()
        path, schema = self._resource
        try:
            reply = await self.client.get(path)
            power = parse_power(reply.body, schema, f"{self.client.base_url}{path}")
        except ReadError as exc:
            if exc.kind in ("malformed", "unsupported"):
                self._resource = None  # a firmware update may have moved it: look again
            raise
        return Reading(
            power.watts,
            "redfish",
            energy_joules=power.energy_joules,
            counter_resolution_joules=(
                ENERGY_RESOLUTION_JOULES if power.energy_joules is not None else None
            ),
            uptime_seconds=counter_age(power, http_date(reply.headers.get("Date"))),
            detail={"resource": path, "schema": schema},
        )

    async def _discover(self) -> tuple[str, Schema]:
        """The power resource of the chassis: (path, schema)."""
        if self.chassis is not None:
            candidates = [f"{SERVICE_ROOT}/Chassis/{self.chassis}"]
        else:
            root = await self.client.get(SERVICE_ROOT)
            collection = service_link(root.body, "Chassis", self.client.base_url + SERVICE_ROOT)
            members = await self.client.get(collection)
            candidates = collection_members(members.body, self.client.base_url + collection)
            if not candidates:
                raise ReadError("unsupported", f"{self.client.base_url}{collection}: no chassis")
        seen: list[str] = []
        for path in candidates[:MAX_CHASSIS_SCANNED]:
            chassis = await self.client.get(path)
            links = chassis_links(chassis.body, self.client.base_url + path)
            found = await self._choose(links)
            if found is not None:
                return found
            seen.append(path)
        wanted = {
            "auto": "EnvironmentMetrics with PowerWatts nor Power with PowerControl",
            "environmentMetrics": "EnvironmentMetrics with PowerWatts (schema: environmentMetrics)",
            "power": "Power (schema: power)",
        }[self.schema]
        raise ReadError(
            "unsupported",
            f"{self.client.base_url}: {', '.join(seen)} link neither {wanted}"
            if self.schema == "auto"
            else f"{self.client.base_url}: {', '.join(seen)} has no {wanted}",
        )

    async def _choose(self, links: ChassisLinks) -> tuple[str, Schema] | None:
        if self.schema in ("auto", "environmentMetrics") and links.environment_metrics:
            if self.schema == "environmentMetrics":
                return links.environment_metrics, "environmentMetrics"
            metrics = await self.client.get(links.environment_metrics)
            if has_power_watts(metrics.body):
                return links.environment_metrics, "environmentMetrics"
        if self.schema in ("auto", "power") and links.power:
            return links.power, "power"
        return None


# -- the kind ``redfish`` --------------------------------------------------------------

RedfishAuth = Literal["session", "basic"]
RedfishSchema = Literal["auto", "power", "environmentMetrics"]


def _chassis_id(value: str) -> str:
    # A path segment of the BMC's URL: no '/', '?', '#' or spaces that would change it.
    if not re.fullmatch(r"[A-Za-z0-9._~:@!$&'()*+,;=-]+", value):
        raise ValueError(f"not a Chassis id (one URL path segment), got {show(value)}")
    return value


class RedfishFields(KindFields):
    address: Address | None = None
    credentials: Credentials = None
    #: The Chassis id; None: the first with a power reading.
    chassis: (
        Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_chassis_id)] | None
    ) = None
    auth: RedfishAuth = "session"  # a session (X-Auth-Token) or Basic on each request
    schema_: RedfishSchema = Field(default="auto", alias="schema")  # which power resource


def _check(fields: RedfishFields) -> None:
    require_url("redfish", fields.address)


def _describe(spec: SourceSpec, fields: RedfishFields) -> list[str]:
    parts = [*access_parts(spec), f"auth={fields.auth} schema={fields.schema_}"]
    return parts + ([f"chassis={fields.chassis}"] if fields.chassis else [])


def _build(spec: SourceSpec, fields: RedfishFields, ctx: BuildContext) -> PowerSource:
    assert fields.address is not None
    client = RedfishClient(
        fields.address,
        username=spec.credentials.username if spec.credentials else "",
        password=ctx.password(spec),
        auth=fields.auth,
        ca_bundle=spec.ca_bundle,
        insecure=spec.insecure_skip_tls_verify,
        timeout=ctx.timeout_seconds,
    )
    return RedfishSource(client, chassis=fields.chassis, schema=fields.schema_)


PLUGIN: Final = SourcePlugin(
    "redfish",
    RedfishFields,
    _build,
    check=_check,
    describe=_describe,
    tls=True,
    min_poll_seconds=REDFISH_POLL_SECONDS,
    min_timeout_seconds=REDFISH_TIMEOUT_SECONDS,
    requests_per_read=5,  # a login, the service root, Chassis, the chassis, the reading
)
