"""TokenBucket: client-go's flowcontrol semantics (burst at once, then qps), on a fake clock."""

from __future__ import annotations

import asyncio
import types

import pytest

from energysched.kube import ratelimit
from energysched.kube.ratelimit import TokenBucket


class FakeTime:
    """Stands in for ``time`` and ``asyncio.sleep`` inside energysched.kube.client."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(
        ratelimit, "asyncio", types.SimpleNamespace(Lock=asyncio.Lock, sleep=fake.sleep)
    )
    return fake


async def test_burst_at_once_then_one_per_interval(fake: FakeTime) -> None:
    bucket = TokenBucket(qps=5, burst=3)
    for _ in range(3):
        await bucket.acquire()
    assert fake.sleeps == []
    for _ in range(4):
        await bucket.acquire()
    assert fake.sleeps == pytest.approx([0.2, 0.2, 0.2, 0.2])
    assert fake.now == pytest.approx(100.8)


async def test_tokens_refill_with_time_but_never_above_burst(fake: FakeTime) -> None:
    bucket = TokenBucket(qps=8, burst=2)  # binary-exact intervals: 0.125 s
    await bucket.acquire()
    await bucket.acquire()
    fake.now += 0.125  # one token back
    await bucket.acquire()
    assert fake.sleeps == []
    fake.now += 60  # idle for a minute: still only `burst` tokens
    await bucket.acquire()
    await bucket.acquire()
    assert fake.sleeps == []
    await bucket.acquire()
    assert fake.sleeps == pytest.approx([0.125])


async def test_a_partial_token_shortens_the_wait(fake: FakeTime) -> None:
    bucket = TokenBucket(qps=4, burst=1)
    await bucket.acquire()
    fake.now += 0.125  # half a token
    await bucket.acquire()
    assert fake.sleeps == pytest.approx([0.125])


async def test_burst_below_one_acts_as_one(fake: FakeTime) -> None:
    bucket = TokenBucket(qps=2, burst=0)
    assert bucket.burst == 1
    await bucket.acquire()
    await bucket.acquire()
    assert fake.sleeps == pytest.approx([0.5])


@pytest.mark.parametrize("qps", [0, -1])
async def test_no_positive_qps_means_no_limit(fake: FakeTime, qps: float) -> None:
    bucket = TokenBucket(qps=qps, burst=1)
    for _ in range(1000):
        await bucket.acquire()
    assert fake.sleeps == []


async def test_concurrent_callers_are_spaced_out(fake: FakeTime) -> None:
    """Each concurrent caller reserves its own token at once and waits its own share:
    from the same instant, the waits are 0, 0, 0.1, 0.2, 0.3, 0.4 s (none two at once)."""
    bucket = TokenBucket(qps=10, burst=2)
    waits = [bucket.reserve() for _ in range(6)]
    assert waits == pytest.approx([0.0, 0.0, 0.1, 0.2, 0.3, 0.4])


async def test_a_late_wakeup_loses_no_tokens(fake: FakeTime) -> None:
    """A waiter woken late (busy event loop) does not reset the bucket: the time it
    overslept has refilled tokens for the callers after it."""
    bucket = TokenBucket(qps=10, burst=5)
    assert [bucket.reserve() for _ in range(5)] == [0.0] * 5
    assert bucket.reserve() == pytest.approx(0.1)  # in debt by one token
    fake.now += 0.5  # the loop was busy: that 0.1 s sleep ended 0.4 s late
    # 5 tokens accrued, one paid the debt: 4 free now, the next waits 0.1 s.
    assert [bucket.reserve() for _ in range(4)] == [0.0] * 4
    assert bucket.reserve() == pytest.approx(0.1)


async def test_real_clock_smoke() -> None:
    """Unpatched: a tiny bucket on the real clock waits about 1/qps for the extra call."""
    bucket = TokenBucket(qps=50, burst=2)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for _ in range(3):
        await bucket.acquire()
    assert loop.time() - start >= 0.015


def test_take_and_wait_time_without_waiting_on_a_given_clock() -> None:
    bucket = TokenBucket(qps=10, burst=5, now=0.0)  # as the monitor's write budget uses it
    assert [bucket.take(0.0) for _ in range(6)] == [True] * 5 + [False]
    assert bucket.wait_time(0.0) == pytest.approx(0.1)
    assert bucket.take(0.1) and not bucket.take(0.1)
    assert TokenBucket(qps=0, burst=1, now=0.0).take(0.0)  # no limit
