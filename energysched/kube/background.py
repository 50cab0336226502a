"""Writes that may lag (Events, status conditions) done in the background, bounded.

A fixed number of workers drain a bounded queue. When the queue is full (an API
server that does not answer, a flood of failures) a new job is dropped and
counted instead of held: memory and the number of tasks stay bounded whatever
happens, as client-go's event broadcaster drops events when its channel of
1,000 is full. A job that raises is logged; it never stops a worker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger(__name__)

Job = Callable[[], Awaitable[Any]]  # its result is not used


class BackgroundWriter:
    def __init__(self, name: str, *, max_queued: int = 1000, workers: int = 4) -> None:
        self.name = name
        self.queue: asyncio.Queue[tuple[str, Job]] = asyncio.Queue(max_queued)
        self.workers = workers
        self.done = 0
        self.failed = 0
        self.dropped = 0
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, what: str, job: Job) -> bool:
        """Queue ``job``; False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait((what, job))
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning(
                    "background write dropped: queue full",
                    writer=self.name,
                    what=what,
                    dropped=self.dropped,
                )
            return False
        return True

    def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._work(), name=f"{self.name}-{i}")
                for i in range(self.workers)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def drain(self) -> None:
        """Wait until every queued job has run (tests, clean shutdown)."""
        await self.queue.join()

    async def _work(self) -> None:
        while True:
            what, job = await self.queue.get()
            try:
                await job()
                self.done += 1
            except asyncio.CancelledError:
                raise
            except Exception:
                self.failed += 1
                log.exception("background write failed", writer=self.name, what=what)
            finally:
                self.queue.task_done()
