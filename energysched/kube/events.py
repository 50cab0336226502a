"""events.k8s.io/v1 Events, written one way for the scheduler and the operator.

* The Event's shape is kube-scheduler's (``reportingController``,
  ``reportingInstance``, ``action``, ``regarding``, a MicroTime ``eventTime``),
  so ``kubectl describe`` shows ours like the default scheduler's.
* Posting never blocks the caller and is bounded: events wait in a bounded
  queue drained by a fixed number of workers (:class:`BackgroundWriter`); when
  the queue is full they are dropped and counted, as client-go's broadcaster
  drops them. Give the writer its own client (own rate limit), as
  kube-scheduler does: a flood of events never slows binding.
* The same Warning about the same object is not repeated within
  ``dedup_window``; transient failures are retried a few times; an event that
  cannot be written is logged, never fatal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from energysched.kube.background import BackgroundWriter
from energysched.kube.client import JSON, ApiError, KubeClient, api_path

log = structlog.get_logger(__name__)

EVENTS_API: Final = "events.k8s.io/v1"
#: Answers that another try will not change.
_PERMANENT = (400, 403, 404, 422)


def micro_now() -> str:
    """A MicroTime (what events.k8s.io/v1 wants in ``eventTime``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object an event is about (its ``regarding``)."""

    api_version: str
    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    resource_version: str = ""

    @classmethod
    def pod(cls, pod: Mapping[str, Any]) -> ObjectRef:
        meta = pod.get("metadata") or {}
        return cls(
            "v1",
            "Pod",
            str(meta.get("name", "")),
            str(meta.get("namespace", "")),
            str(meta.get("uid", "")),
            str(meta.get("resourceVersion", "")),
        )

    def as_json(self) -> JSON:
        ref: JSON = {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}
        for key, value in (
            ("namespace", self.namespace),
            ("uid", self.uid),
            ("resourceVersion", self.resource_version),
        ):
            if value:
                ref[key] = value
        return ref


class EventWriter:
    def __init__(
        self,
        kube: KubeClient,
        controller: str,
        action: str,
        *,
        namespace: str | None = None,
        dedup_window: float = 60.0,
        max_queued: int = 1000,
        workers: int = 2,
        attempts: int = 3,
    ) -> None:
        self.kube = kube
        self.controller = controller
        self.instance = f"{controller}-{os.uname().nodename}"[:128]
        self.action = action
        #: Where events go; None: the object's own namespace. Events about
        #: cluster-scoped objects must live in ``default`` or ``kube-system``.
        self.namespace = namespace
        self.dedup_window = dedup_window
        self.attempts = attempts
        self.posted = 0
        self.background = BackgroundWriter(
            f"{controller}-events", max_queued=max_queued, workers=workers
        )
        self._recent: dict[tuple[str, str], float] = {}

    @property
    def dropped(self) -> int:
        return self.background.dropped

    def start(self) -> None:
        self.background.start()

    async def stop(self) -> None:
        await self.background.stop()

    async def drain(self) -> None:
        await self.background.drain()

    def post(self, ref: ObjectRef, type_: str, reason: str, note: str) -> bool:
        """Queue an event; False when it is a repeat or the queue is full."""
        if self._repeat(ref, type_, reason, note):
            return False
        return self.background.submit(
            f"{ref.kind} {ref.name} {reason}", lambda: self._write(ref, type_, reason, note)
        )

    async def write(self, ref: ObjectRef, type_: str, reason: str, note: str) -> bool:
        """Write an event now (deduplicated like :meth:`post`); True when written."""
        if self._repeat(ref, type_, reason, note):
            return False
        return await self._write(ref, type_, reason, note)

    def _repeat(self, ref: ObjectRef, type_: str, reason: str, note: str) -> bool:
        if type_ != "Warning" or self.dedup_window <= 0:
            return False
        key = (ref.uid or f"{ref.kind}/{ref.namespace}/{ref.name}", f"{reason}:{note}")
        now = time.monotonic()
        if now - self._recent.get(key, -1e18) < self.dedup_window:
            return True
        self._recent[key] = now
        if len(self._recent) > 10_000:  # bounded memory on long runs
            cutoff = now - self.dedup_window
            self._recent = {k: t for k, t in self._recent.items() if t > cutoff}
        return False

    def body(self, ref: ObjectRef, type_: str, reason: str, note: str) -> JSON:
        return {
            "apiVersion": EVENTS_API,
            "kind": "Event",
            "metadata": {
                "name": f"{ref.name}.{uuid.uuid4().hex[:16]}",
                "namespace": self.namespace or ref.namespace or "default",
            },
            "eventTime": micro_now(),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": self.action,
            "reason": reason,
            "type": type_,
            "note": note[:1024],
            "regarding": ref.as_json(),
        }

    async def _write(self, ref: ObjectRef, type_: str, reason: str, note: str) -> bool:
        body = self.body(ref, type_, reason, note)
        path = api_path(EVENTS_API, "events", body["metadata"]["namespace"])
        for attempt in range(1, self.attempts + 1):
            try:
                await self.kube.create(path, body)
                self.posted += 1
                return True
            except ApiError as exc:
                if exc.status in _PERMANENT or attempt == self.attempts:
                    log.warning(
                        "event not written",
                        object=f"{ref.kind} {ref.namespace}/{ref.name}".replace(" /", " "),
                        reason=reason,
                        status=exc.status,
                        error=exc.message[:300],
                    )
                    return False
                await asyncio.sleep(float(attempt))
        return False
