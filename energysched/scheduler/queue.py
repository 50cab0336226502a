"""The scheduling queue: active, backoff and unschedulable pods, as kube-scheduler keeps them.

* A pod that failed with an error (bind conflict, API error) backs off 1 s,
  doubling per attempt up to 10 s (kube-scheduler's podInitialBackoff and
  podMaxBackoff defaults).
* A pod that fits nowhere is parked as unschedulable until something changes
  that could make it fit (a node, a pod or a profile event moves all parked pods
  back, still respecting their backoff) or at most 5 minutes have passed
  (podMaxInUnschedulablePodsDuration).
* A key is in the queue at most once; an update to a queued pod does not queue
  it twice.

The clock is injected, so the whole policy is unit-testable without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Entry:
    attempts: int = 0
    ready_at: float = 0.0  # earliest time the pod may be tried again
    parked_at: float | None = None  # when it was marked unschedulable


class SchedulingQueue:
    def __init__(
        self,
        *,
        initial_backoff: float = 1.0,
        max_backoff: float = 10.0,
        max_unschedulable: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.initial_backoff = initial_backoff
        self.max_backoff = max_backoff
        self.max_unschedulable = max_unschedulable
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._active: OrderedDict[str, None] = OrderedDict()  # FIFO of ready keys
        self._backoff: list[tuple[float, str]] = []  # heap of (ready_at, key)
        self._backing_off: set[str] = set()  # keys with a live entry in that heap
        self._unschedulable: set[str] = set()
        self._in_flight: set[str] = set()
        self._wakeup = asyncio.Event()

    # -- producers -----------------------------------------------------------------

    def add(self, key: str) -> None:
        """A new or changed pod that needs scheduling."""
        entry = self._entries.setdefault(key, _Entry())
        if key in self._in_flight or key in self._active:
            return
        if key in self._unschedulable:
            # An update to the pod itself may make it schedulable (kube does the same).
            self._unschedulable.discard(key)
            entry.parked_at = None
        self._push(key, entry)

    def forget(self, key: str) -> None:
        """The pod is gone or bound: drop every trace of it."""
        self._entries.pop(key, None)
        self._active.pop(key, None)
        self._backing_off.discard(key)  # its heap entry, if any, is skipped as stale
        self._unschedulable.discard(key)
        self._in_flight.discard(key)

    def move_all_to_active(self) -> int:
        """A cluster event that may make parked pods fit; returns how many moved."""
        moved = list(self._unschedulable)
        self._unschedulable.clear()
        for key in moved:
            entry = self._entries[key]
            entry.parked_at = None
            self._push(key, entry)
        return len(moved)

    def activate_now(self, key: str) -> None:
        """What this parked pod waited for has happened (the node woken for it is back, or
        its wake is over): try it now, past its backoff, since the moment matters (the
        node may be put to sleep again if it stays empty)."""
        entry = self._entries.get(key)
        if entry is None or key in self._in_flight or key in self._active:
            return
        self._unschedulable.discard(key)
        self._backing_off.discard(key)  # its heap entry, if any, is skipped as stale
        entry.parked_at = None
        entry.ready_at = self.clock()
        self._push(key, entry)

    # -- consumer ------------------------------------------------------------------

    async def pop(self) -> str:
        """The next pod to try; waits until one is ready."""
        while True:
            self._flush()
            if self._active:
                key, _ = self._active.popitem(last=False)
                self._in_flight.add(key)
                return key
            self._wakeup.clear()
            timeout = None
            if self._backoff:
                timeout = max(0.0, self._backoff[0][0] - self.clock())
            if self._unschedulable:
                oldest = min(self._entries[k].parked_at or 0.0 for k in self._unschedulable)
                until = max(0.0, oldest + self.max_unschedulable - self.clock())
                timeout = until if timeout is None else min(timeout, until)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout)

    def done(self, key: str) -> None:
        """Scheduled and bound: forget backoff history."""
        self.forget(key)

    def retry_after_error(self, key: str) -> float:
        """An error (not a misfit): back off exponentially; returns the delay."""
        self._in_flight.discard(key)
        entry = self._entries.setdefault(key, _Entry())
        entry.attempts += 1
        delay: float = min(self.initial_backoff * 2.0 ** (entry.attempts - 1), self.max_backoff)
        entry.ready_at = self.clock() + delay
        self._push(key, entry)
        return delay

    def park_unschedulable(self, key: str) -> None:
        """Fits nowhere now: wait for a cluster change (or at most max_unschedulable)."""
        self._in_flight.discard(key)
        entry = self._entries.setdefault(key, _Entry())
        entry.attempts += 1
        entry.ready_at = self.clock() + min(
            self.initial_backoff * 2 ** (entry.attempts - 1), self.max_backoff
        )
        entry.parked_at = self.clock()
        self._unschedulable.add(key)
        self._wakeup.set()

    # -- introspection -------------------------------------------------------------

    def depths(self) -> dict[str, int]:
        return {
            "active": len(self._active),
            "backoff": len(self._backing_off),
            "unschedulable": len(self._unschedulable),
        }

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    # -- internals -----------------------------------------------------------------

    def _push(self, key: str, entry: _Entry) -> None:
        if entry.ready_at > self.clock():
            # Only keys that are not queued yet get here, or keys already backing
            # off (an update): those keep their one heap entry and ready_at.
            if key not in self._backing_off:
                heapq.heappush(self._backoff, (entry.ready_at, key))
                self._backing_off.add(key)
        else:
            self._backing_off.discard(key)  # its backoff ended; the heap entry goes stale
            self._active[key] = None
        self._wakeup.set()

    def _flush(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            ready_at, key = heapq.heappop(self._backoff)
            entry = self._entries.get(key)
            # Stale heap entries (of a forgotten key, or one queued anew since) are skipped.
            if entry is None or entry.ready_at != ready_at or key not in self._backing_off:
                continue
            self._backing_off.discard(key)
            if key not in self._in_flight and key not in self._unschedulable:
                self._active[key] = None
        expired = [
            k
            for k in self._unschedulable
            if (self._entries[k].parked_at or now) + self.max_unschedulable <= now
        ]
        for key in expired:
            self._unschedulable.discard(key)
            entry = self._entries[key]
            entry.parked_at = None
            self._push(key, entry)
