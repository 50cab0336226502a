"""The one token bucket: client-go's flowcontrol limiter (``qps`` a second, ``burst`` at most).

Used by every KubeClient (requests wait for their token) and usable without
waiting (:meth:`TokenBucket.take`, :meth:`TokenBucket.wait_time`, with the time
passed in for deterministic callers such as the monitor's write budget).

Each caller of :meth:`acquire` reserves its token at once (the bucket may go
into debt) and then sleeps off its own wait, as golang.org/x/time/rate does.
Nothing sleeps while holding the bucket, so a busy event loop that wakes a
waiter late loses no tokens: the rate stays the configured one.
"""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, qps: float, burst: int, now: float | None = None) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp = time.monotonic() if now is None else now

    def _refill(self, now: float | None) -> float:
        now = time.monotonic() if now is None else now
        self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.qps)
        self._stamp = now
        return now

    def reserve(self) -> float:
        """Take one token; return how long to wait before using it (seconds)."""
        if self.qps <= 0:
            return 0.0
        self._refill(None)
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    async def acquire(self) -> None:
        wait = self.reserve()  # no await before this: reservations are atomic
        if wait > 0:
            await asyncio.sleep(wait)

    def take(self, now: float | None = None) -> bool:
        """Take a token if one is there now; never goes into debt."""
        if self.qps <= 0:
            return True
        self._refill(now)
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            return True
        return False

    def wait_time(self, now: float | None = None) -> float:
        """Seconds until :meth:`take` succeeds (0 if it would now)."""
        if self.qps <= 0:
            return 0.0
        self._refill(now)
        return max(0.0, (1.0 - self._tokens) / self.qps)
