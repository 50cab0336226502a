"""List-then-watch reflectors that keep a local cache of one resource current.

The contract, as in client-go's Reflector and kopf's watcher:

* LIST (paginated) and replace the cache; objects that vanished while we were
  not watching are reported as deleted, so nothing is missed across a relist;
* WATCH from the list's resourceVersion with bookmarks, resuming from the last
  resourceVersion seen when the server ends the stream;
* relist when the server says the resourceVersion is gone (410 Expired);
* on transport errors, retry with capped exponential backoff — never give up,
  never crash the process.

Handlers run synchronously in the event loop; they must be quick (the scheduler
only updates in-memory state and enqueues pods).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from energysched.kube.client import JSON, ApiError, KubeClient

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
    errors: int = 0


@dataclass
class Reflector:
    """Keeps ``store`` in sync with the API server for one collection path."""

    kube: KubeClient
    path: str
    handler: Handler
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)  # labelSelector, fieldSelector
    watch_timeout: int = 300
    max_backoff: float = 30.0
    on_error: Callable[[str, Exception], None] | None = None
    store: dict[str, JSON] = field(default_factory=dict, init=False)
    synced: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    resource_version: str = field(default="", init=False)
    stats: ReflectorStats = field(default_factory=ReflectorStats, init=False)

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
            except ApiError as exc:
                if exc.gone:
                    self.stats.relists_after_expiry += 1
                    log.info(
                        "watch expired, relisting", reflector=self.name, rv=self.resource_version
                    )
                    need_list = True
                    continue
                self.stats.errors += 1
                if self.on_error:
                    self.on_error(self.name, exc)
                log.warning(
                    "list/watch failed, retrying",
                    reflector=self.name,
                    status=exc.status,
                    error=exc.message[:300],
                    retry_in=round(backoff, 2),
                )
                await asyncio.sleep(backoff * (0.8 + 0.4 * random.random()))
                backoff = min(backoff * 2, self.max_backoff)
                # After a transport error the watch resumes from the last
                # resourceVersion; only an expiry forces a relist.
                need_list = need_list or not self.resource_version

    async def _list(self) -> None:
        listing = await self.kube.list_all(self.path, **self.params)
        self.stats.lists += 1
        fresh = {object_key(o): o for o in listing.get("items") or []}
        old_store, self.store = self.store, fresh
        for key, obj in old_store.items():
            if key not in fresh:
                self.handler("DELETED", obj, obj)
        for key, obj in fresh.items():
            prev = old_store.get(key)
            if prev is None:
                self.handler("ADDED", obj, None)
            elif _rv(prev) != _rv(obj):
                self.handler("MODIFIED", obj, prev)
        self.resource_version = str((listing.get("metadata") or {}).get("resourceVersion", ""))
        self.synced.set()

    async def _watch(self) -> None:
        self.stats.watch_restarts += 1
        async for ev in self.kube.watch(
            self.path, self.resource_version, timeout_seconds=self.watch_timeout, **self.params
        ):
            rv = _rv(ev.object)
            if ev.type == "BOOKMARK":
                self.resource_version = rv or self.resource_version
                continue
            key = object_key(ev.object)
            if ev.type == "DELETED":
                old = self.store.pop(key, None)
                self.handler("DELETED", ev.object, old)
            elif ev.type in ("ADDED", "MODIFIED"):
                old = self.store.get(key)
                self.store[key] = ev.object
                self.handler("ADDED" if old is None else "MODIFIED", ev.object, old)
            if rv:
                self.resource_version = rv


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion", ""))
