"""List-then-watch reflectors that keep a local cache of one resource current.

The contract, as in client-go's Reflector and kopf's watcher:

* LIST (paginated) and replace the cache; objects that vanished while we were
  not watching are reported as deleted, so nothing is missed across a relist;
* WATCH from the list's resourceVersion with bookmarks, resuming from the last
  resourceVersion seen when the server ends the stream;
* relist when the server says the resourceVersion is gone (410 Expired);
* a watch that hears nothing, not even a bookmark, for a minute is taken as dead
  (a half-open connection, a stopped server) and re-established at once; the cache
  stays trusted unless the new watch fails too, which then counts as any error;
* on any error (transport, a malformed event, a bug), log it and retry with
  capped exponential backoff — never give up, never end silently; a handler's
  exception is logged and counted, and the watch goes on.

Handlers run synchronously in the event loop; they must be quick (the scheduler
only updates in-memory state and enqueues pods).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from energysched.kube.client import JSON, ApiError, KubeClient, WatchSilent

log = structlog.get_logger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]


class Handler(Protocol):
    def __call__(self, event: EventType, obj: JSON, old: JSON | None) -> None: ...


def object_key(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


@dataclass
class ReflectorStats:
    lists: int = 0
    relists_after_expiry: int = 0
    watch_restarts: int = 0
    #: Watches ended because they heard nothing (not even a bookmark) for their idle limit.
    silent_watches: int = 0
    errors: int = 0
    handler_errors: int = 0


@dataclass
class Reflector:
    """Keeps ``store`` in sync with the API server for one collection path.

    ``run`` never returns and never raises (except on cancellation): every
    failure is logged and retried with backoff. Whether the cache can be trusted
    right now is :attr:`up` (listed, and the last list or watch call did not
    fail); :attr:`down_since` says since when it cannot.
    """

    kube: KubeClient
    path: str
    handler: Handler
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # labelSelector, fieldSelector
    watch_timeout: int = 300
    max_backoff: float = 30.0
    on_error: Callable[[str, Exception], None] | None = None
    #: Called with ``up`` whenever it changes (the controller pauses decisions).
    on_health: Callable[[str, bool], None] | None = None
    store: dict[str, JSON] = field(default_factory=dict, init=False)
    synced: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    resource_version: str = field(default="", init=False)
    stats: ReflectorStats = field(default_factory=ReflectorStats, init=False)
    up: bool = field(default=False, init=False)
    down_since: float | None = field(default=None, init=False)
    last_error: str = field(default="", init=False)

    def _set_up(self, up: bool, error: str = "") -> None:
        if up:
            self.last_error = ""
            self.down_since = None
        else:
            self.last_error = error
            if self.down_since is None:
                self.down_since = time.monotonic()
        if up != self.up:
            self.up = up
            if self.on_health is not None:
                self.on_health(self.name, up)

    async def run(self) -> None:
        backoff = 0.5
        # A restarted reflector resumes its watch where it stopped; only a
        # first start (or an expired resourceVersion) lists.
        need_list = not self.resource_version
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                backoff = 0.5  # a clean end of stream: resume at once
            except asyncio.CancelledError:
                raise
            except WatchSilent as exc:
                # Dead or merely quiet: asking again tells. A server that answers resumes
                # the stream from our resourceVersion (nothing is lost, the cache stays
                # up); one that does not fails the next watch, and we go down then.
                self.stats.silent_watches += 1
                log.info(
                    "watch silent, re-establishing",
                    reflector=self.name,
                    rv=self.resource_version,
                    silent_seconds=exc.seconds,
                )
            except ApiError as exc:
                if exc.gone:
                    self.stats.relists_after_expiry += 1
                    log.info(
                        "watch expired, relisting", reflector=self.name, rv=self.resource_version
                    )
                    need_list = True
                    continue
                self._failed(exc, f"{exc.status} {exc.reason}: {exc.message[:300]}", backoff)
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                # After a transport error the watch resumes from the last
                # resourceVersion; only an expiry forces a relist.
                need_list = need_list or not self.resource_version
            except Exception as exc:  # a bug or a surprise: never end the watch for good
                self._failed(exc, f"{type(exc).__name__}: {exc}"[:300], backoff, trace=True)
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                # The cache may be half-updated: relist to be sure it is true again.
                need_list = True

    def _failed(self, exc: Exception, error: str, backoff: float, trace: bool = False) -> None:
        self.stats.errors += 1
        self._set_up(False, error)
        if self.on_error:
            try:
                self.on_error(self.name, exc)
            except Exception:
                log.exception("reflector error callback failed", reflector=self.name)
        (log.exception if trace else log.warning)(
            "list/watch failed, retrying",
            reflector=self.name,
            error=error,
            retry_in=round(backoff, 2),
        )

    def _dispatch(self, event: EventType, obj: JSON, old: JSON | None) -> None:
        """Call the handler; its exception is logged and counted, never ends the watch."""
        try:
            self.handler(event, obj, old)
        except Exception:
            self.stats.handler_errors += 1
            log.exception(
                "event handler failed", reflector=self.name, type=event, object=object_key(obj)
            )

    async def _list(self) -> None:
        listing = await self.kube.list_all(self.path, **self.params)
        self.stats.lists += 1
        fresh = {object_key(o): o for o in listing.get("items") or [] if isinstance(o, dict)}
        old_store, self.store = self.store, fresh
        for key, obj in old_store.items():
            if key not in fresh:
                self._dispatch("DELETED", obj, obj)
        for key, obj in fresh.items():
            prev = old_store.get(key)
            if prev is None:
                self._dispatch("ADDED", obj, None)
            elif _rv(prev) != _rv(obj):
                self._dispatch("MODIFIED", obj, prev)
        self.resource_version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        self._set_up(True)
        self.synced.set()

    async def _watch(self) -> None:
        self.stats.watch_restarts += 1
        async for ev in self.kube.watch(
            self.path,
            self.resource_version,
            timeout_seconds=self.watch_timeout,
            on_connect=lambda: self._set_up(True),
            **self.params,
        ):
            rv = _rv(ev.object)
            if ev.type == "BOOKMARK":
                self.resource_version = rv or self.resource_version
                continue
            key = object_key(ev.object)
            if ev.type == "DELETED":
                old = self.store.pop(key, None)
                self._dispatch("DELETED", ev.object, old)
            elif ev.type in ("ADDED", "MODIFIED"):
                old = self.store.get(key)
                self.store[key] = ev.object
                self._dispatch("ADDED" if old is None else "MODIFIED", ev.object, old)
            if rv:
                self.resource_version = rv


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
