"""An asyncio REST client for the Kubernetes API (aiohttp), with a client-side rate limit.

It speaks JSON only, keeps one connection pool, and never hides an API error: a
non-2xx answer raises :class:`ApiError` with the API server's own ``Status``.
The rate limit mirrors client-go's token bucket (QPS and burst), so a fair
comparison with kube-scheduler can give both the same limits.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Literal

import aiohttp

from energysched.kube.config import ClusterAccess
from energysched.kube.credentials import CredentialError
from energysched.kube.ratelimit import TokenBucket as TokenBucket  # re-exported

JSON = dict[str, Any]

#: A watch that hears nothing (no event, no bookmark) for this long is taken as dead and
#: ended (:class:`WatchSilent`). The API server sends a bookmark about once a minute to a
#: watch that asked for them (``allowWatchBookmarks``; kube-apiserver's cacher:
#: ``defaultBookmarkFrequency``), so longer silence is a half-open connection or a server
#: that stopped answering. client-go notices those through HTTP/2 pings in ~45 s; this
#: client speaks HTTP/1.1, so silence is the sign. A resource the server sends no bookmark
#: for (none of its objects changed since the server started) just gets its watch renewed
#: once a minute, which costs one request.
WATCH_IDLE_SECONDS: Final = 62.0
#: How long a watch request may wait for the server's answer (the response headers, sent at
#: once by a healthy server, from its watch cache). Silence plus this bounds how long a dead
#: server goes unnoticed: 77 s.
WATCH_ANSWER_SECONDS: Final = 15.0
PatchType = Literal["merge", "strategic", "json", "apply"]
_PATCH_CONTENT_TYPES: Mapping[PatchType, str] = {
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "json": "application/json-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ApiError(Exception):
    """A non-success answer of the API server (or a transport failure, status 0)."""

    def __init__(self, status: int, reason: str, message: str, body: Any = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        """The resourceVersion is too old (watch expired): relist."""
        return self.status == 410


class WatchSilent(Exception):
    """A watch heard nothing for its idle limit: the connection is taken as dead.

    Not an :class:`ApiError`: nothing was refused. The caller re-establishes the
    watch from the last resourceVersion; whether the server answers that says
    whether it is alive."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"no event and no bookmark for {seconds:g} s")
        self.seconds = seconds


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED, BOOKMARK
    object: JSON


def api_path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """``/api/v1/namespaces/ns/pods/name/binding`` and the like."""
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


class KubeClient:
    """Use as ``async with KubeClient(access) as kube: ...``."""

    def __init__(
        self,
        access: ClusterAccess,
        *,
        qps: float = 50.0,
        burst: int = 100,
        timeout: float = 30.0,
        user_agent: str = "energysched",
        max_connections: int = 100,
    ) -> None:
        self.access = access
        self.limiter = TokenBucket(qps, burst)
        self.timeout = timeout
        # The bearer token is added per request: it can rotate (credentials.py).
        self._headers = {"User-Agent": user_agent, "Accept": "application/json"}
        self._tokens = access.tokens()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        await self.open()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                ssl=self.access.ssl_context if self.access.ssl_context else False,
                limit=self._max_connections,
            )
            self._session = aiohttp.ClientSession(
                base_url=self.access.server, connector=connector, headers=self._headers
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient used outside 'async with' / before open()")
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        text: bool = False,
    ) -> Any:
        """The response's JSON (``text=True``: its text, e.g. a pod's log)."""
        await self.limiter.acquire()
        data = None if body is None else json.dumps(body)
        base = {"Content-Type": content_type} if data is not None else {}
        reconnected = refreshed = False
        while True:
            headers = {**base, **await self._auth(refresh=refreshed)}
            try:
                async with self.session.request(
                    method,
                    path,
                    params=params,
                    data=data,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
                ) as resp:
                    # a log may hold any bytes; JSON must be UTF-8 (RFC 8259)
                    body_text = await resp.text(errors="replace" if text else "strict")
                    if resp.status == 401 and not refreshed:
                        # A rotated or expired token: fetch a new one, retry once
                        # (client-go's behaviour); the request was not applied.
                        refreshed = True
                        continue
                    if resp.status >= 400:
                        # An error's body may be plain text ("404 page not found" for a
                        # resource type the server does not serve, e.g. a missing CRD):
                        # the status and the text say more than "not JSON".
                        raise _error(resp.status, _json_or_none(body_text), body_text)
                    if text:
                        return body_text
                    payload: Any = json.loads(body_text) if body_text else None
                    return payload
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientConnectionResetError) as exc:
                # A pooled keep-alive connection the server had already closed:
                # the request never reached it, so one retry on a new connection
                # is safe (creates and binds are protected by name and UID).
                if reconnected:
                    raise ApiError(0, type(exc).__name__, str(exc) or "disconnected") from exc
                reconnected = True
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ApiError(0, type(exc).__name__, str(exc) or "transport failure") from exc
            except (ValueError, RecursionError) as exc:  # not JSON, not UTF-8, too deep
                raise ApiError(0, "BadResponse", f"not JSON: {exc}") from exc

    async def _auth(self, refresh: bool = False) -> dict[str, str]:
        try:
            token = await self._tokens.token(refresh=refresh)
        except CredentialError as exc:
            raise ApiError(0, "CredentialError", str(exc)) from exc
        return {"Authorization": f"Bearer {token}"} if token else {}

    # -- conveniences ----------------------------------------------------------------

    async def get(self, path: str, **params: str | int) -> JSON:
        result: JSON = await self.request("GET", path, params=params or None)
        return result

    async def get_text(
        self, path: str, *, timeout: float | None = None, **params: str | int
    ) -> str:
        """A plain-text GET (``pods/NAME/log``)."""
        result: str = await self.request(
            "GET", path, params=params or None, text=True, timeout=timeout
        )
        return result

    async def list_all(self, path: str, *, limit: int = 500, **params: str | int) -> JSON:
        """A paginated LIST folded into one list object (items, last resourceVersion)."""
        items: list[JSON] = []
        cont = ""
        while True:
            query: dict[str, str | int] = {**params, "limit": limit}
            if cont:
                query["continue"] = cont
            page = await self.get(path, **query)
            items.extend(page.get("items") or [])
            cont = (page.get("metadata") or {}).get("continue") or ""
            if not cont:
                page["items"] = items
                return page

    async def create(self, path: str, obj: Mapping[str, Any]) -> JSON:
        result: JSON = await self.request("POST", path, body=obj)
        return result

    async def replace(self, path: str, obj: Mapping[str, Any]) -> JSON:
        result: JSON = await self.request("PUT", path, body=obj)
        return result

    async def patch(self, path: str, patch: Any, patch_type: PatchType = "merge") -> JSON:
        result: JSON = await self.request(
            "PATCH", path, body=patch, content_type=_PATCH_CONTENT_TYPES[patch_type]
        )
        return result

    async def delete(self, path: str, **params: str | int) -> JSON | None:
        result: JSON | None = await self.request("DELETE", path, params=params or None)
        return result

    async def bind(self, namespace: str, pod: str, uid: str, node: str) -> None:
        """POST a Binding with the pod's UID as precondition (never binds a replacement pod)."""
        await self.create(
            api_path("v1", "pods", namespace, pod, "binding"),
            {
                "apiVersion": "v1",
                "kind": "Binding",
                "metadata": {"name": pod, "namespace": namespace, "uid": uid},
                "target": {"apiVersion": "v1", "kind": "Node", "name": node},
            },
        )

    async def watch(
        self,
        path: str,
        resource_version: str,
        *,
        timeout_seconds: int = 300,
        bookmarks: bool = True,
        on_connect: Callable[[], None] | None = None,
        idle_seconds: float = WATCH_IDLE_SECONDS,
        answer_seconds: float = WATCH_ANSWER_SECONDS,
        **params: str | int,
    ) -> AsyncIterator[WatchEvent]:
        """Stream watch events from ``resource_version``; an ERROR event raises ApiError.

        The stream ends normally when the server closes it (``timeout_seconds``);
        the caller resumes from the last resourceVersion it saw. ``on_connect``
        runs once the server has accepted the watch (before any event). A line
        that is not a well-formed event (a stream cut mid-object, garbage from a
        proxy) raises ApiError with reason ``BadWatchEvent``: nothing of it is
        applied, and the caller resumes from the last good resourceVersion.

        A server that does not answer the request within ``answer_seconds`` is an
        ApiError (``WatchNoAnswer``); a stream that stays silent (no event, no
        bookmark) for ``idle_seconds`` raises :class:`WatchSilent`.
        """
        await self.limiter.acquire()
        query: dict[str, str | int] = {
            **params,
            "watch": "1",
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_seconds,
            "allowWatchBookmarks": "true" if bookmarks else "false",
        }
        try:
            # Two clocks, not aiohttp's one sock_read: the answer must come soon, while
            # events may be a minute apart (a bookmark's period).
            async with asyncio.timeout(answer_seconds) as answer:
                async with self.session.get(
                    path,
                    params=query,
                    headers=await self._auth(),
                    timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.timeout),
                ) as resp:
                    if resp.status == 401:
                        # Re-read the token now; the reflector's retry uses the new one.
                        await self._auth(refresh=True)
                    if resp.status >= 400:
                        text = await resp.text()
                        raise _error(resp.status, _try_json(text), text)
                    answer.reschedule(None)
                    if on_connect is not None:
                        on_connect()
                    async for line in _lines(resp.content, idle_seconds):
                        yield _watch_event(line)
        except TimeoutError as exc:
            if answer.expired():
                raise ApiError(
                    0, "WatchNoAnswer", f"the server did not answer within {answer_seconds:g} s"
                ) from exc
            raise ApiError(0, type(exc).__name__, str(exc) or "watch transport timeout") from exc
        except aiohttp.ClientError as exc:
            raise ApiError(0, type(exc).__name__, str(exc) or "watch transport failure") from exc


#: The longest watch event accepted (the API server's own request limit is 3 MiB;
#: a large object's event is a little more). aiohttp's readline stops at 128 KiB,
#: which a node with many images or a big custom resource exceeds.
MAX_EVENT_BYTES = 16 * 1024 * 1024


async def _lines(stream: aiohttp.StreamReader, idle_seconds: float) -> AsyncIterator[bytes]:
    """Newline-separated lines of a chunked stream, however long (up to a limit); silence
    for ``idle_seconds`` raises :class:`WatchSilent`."""
    buf = bytearray()
    while True:
        try:
            async with asyncio.timeout(idle_seconds):
                chunk = await stream.readany()
        except TimeoutError:
            raise WatchSilent(idle_seconds) from None
        if not chunk:
            break
        buf.extend(chunk)
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            line = bytes(buf[start:end])
            start = end + 1
            if line.strip():
                yield line
        del buf[:start]
        if len(buf) > MAX_EVENT_BYTES:
            raise ApiError(0, "BadWatchEvent", f"watch event longer than {MAX_EVENT_BYTES} bytes")
    if buf.strip():
        # The stream ended inside an event: the connection was cut mid-object.
        raise ApiError(0, "BadWatchEvent", f"watch stream ended mid-event: {bytes(buf[:200])!r}")


def _watch_event(line: bytes) -> WatchEvent:
    try:
        event = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ApiError(
            0, "BadWatchEvent", f"malformed watch event ({exc}): {line[:200]!r}"
        ) from exc
    if not isinstance(event, dict):
        raise ApiError(0, "BadWatchEvent", f"watch event is not an object: {line[:200]!r}")
    type_, obj = event.get("type"), event.get("object")
    if type_ == "ERROR":
        status = obj if isinstance(obj, dict) else {}
        code = status.get("code")
        raise _error(code if isinstance(code, int) and code >= 400 else 500, status, str(status))
    if type_ not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") or not isinstance(obj, dict):
        raise ApiError(0, "BadWatchEvent", f"watch event without type or object: {line[:200]!r}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        raise ApiError(0, "BadWatchEvent", f"watch event object has no metadata: {line[:200]!r}")
    return WatchEvent(type_, obj)


def _try_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


def _error(status: int, payload: Any, text: str) -> ApiError:
    if isinstance(payload, Mapping) and payload.get("kind") == "Status":
        return ApiError(
            status, str(payload.get("reason", "")), str(payload.get("message", "")), payload
        )
    return ApiError(status, "", text[:500], payload)
