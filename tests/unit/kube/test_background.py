"""The bounded background writer: bounded memory, no task per job, failures logged."""

from __future__ import annotations

import asyncio

from energysched.kube.background import BackgroundWriter


async def test_jobs_run_on_a_fixed_number_of_workers_and_overflow_is_dropped() -> None:
    writer = BackgroundWriter("t", max_queued=3, workers=2)
    ran: list[int] = []

    def job(i: int):  # type: ignore[no-untyped-def]
        async def run() -> None:
            if i == 1:
                raise RuntimeError("a write that fails")
            ran.append(i)

        return run

    accepted = [writer.submit(str(i), job(i)) for i in range(10)]
    assert accepted == [True] * 3 + [False] * 7 and writer.dropped == 7
    before = len(asyncio.all_tasks())
    writer.start()
    assert len(asyncio.all_tasks()) == before + 2
    await asyncio.wait_for(writer.drain(), 2)
    assert sorted(ran) == [0, 2] and writer.failed == 1  # a failure ends no worker
    assert writer.submit("again", job(5))
    await asyncio.wait_for(writer.drain(), 2)
    assert 5 in ran
    await writer.stop()
