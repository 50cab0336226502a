"""SchedulingQueue: backoff, de-duplication, parking and waking, on an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from energysched.scheduler.queue import SchedulingQueue


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def queue(clock: FakeClock) -> SchedulingQueue:
    return SchedulingQueue(clock=clock)


async def ready(q: SchedulingQueue) -> list[str]:
    """Everything pop() hands out right now (without the clock moving)."""
    out: list[str] = []
    while True:
        try:
            out.append(await asyncio.wait_for(q.pop(), 0.01))
        except TimeoutError:
            return out


# -- backoff ----------------------------------------------------------------------------


async def test_error_backoff_starts_at_1s_and_doubles_to_10s(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("ns/p")
    assert await ready(queue) == ["ns/p"]
    delays = []
    for _ in range(7):
        delay = queue.retry_after_error("ns/p")
        delays.append(delay)
        clock.advance(delay - 0.01)
        assert await ready(queue) == [], "popped before its backoff ended"
        clock.advance(0.01)
        assert await ready(queue) == ["ns/p"]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


async def test_done_resets_the_backoff(queue: SchedulingQueue, clock: FakeClock) -> None:
    queue.add("ns/p")
    await ready(queue)
    for _ in range(3):
        clock.advance(queue.retry_after_error("ns/p"))
        await ready(queue)
    queue.done("ns/p")
    assert "ns/p" not in queue
    queue.add("ns/p")
    assert await ready(queue) == ["ns/p"]
    assert queue.retry_after_error("ns/p") == 1.0


async def test_unschedulable_attempts_back_off_too(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("ns/p")
    await ready(queue)
    queue.park_unschedulable("ns/p")  # attempt 1: backoff 1 s
    clock.advance(0.5)
    queue.move_all_to_active()
    assert await ready(queue) == []
    clock.advance(0.5)
    assert await ready(queue) == ["ns/p"]
    queue.park_unschedulable("ns/p")  # attempt 2: backoff 2 s
    clock.advance(1.9)
    queue.move_all_to_active()
    assert await ready(queue) == []
    clock.advance(0.1)
    assert await ready(queue) == ["ns/p"]


# -- a key is queued once ------------------------------------------------------------------


async def test_a_key_is_queued_once(queue: SchedulingQueue) -> None:
    for _ in range(3):
        queue.add("ns/a")
    queue.add("ns/b")
    queue.add("ns/a")
    assert queue.depths() == {"active": 2, "backoff": 0, "unschedulable": 0}
    assert await ready(queue) == ["ns/a", "ns/b"]  # FIFO


async def test_update_while_in_flight_does_not_queue_a_second_copy(
    queue: SchedulingQueue,
) -> None:
    queue.add("ns/a")
    assert await ready(queue) == ["ns/a"]
    queue.add("ns/a")  # an update arrives while the pod is being scheduled
    assert await ready(queue) == []
    queue.done("ns/a")
    assert await ready(queue) == []


async def test_update_while_backing_off_keeps_one_copy_and_the_backoff(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("ns/a")
    await ready(queue)
    queue.retry_after_error("ns/a")
    queue.add("ns/a")
    queue.add("ns/a")
    assert queue.depths() == {"active": 0, "backoff": 1, "unschedulable": 0}
    assert await ready(queue) == []
    clock.advance(1.0)
    assert await ready(queue) == ["ns/a"]
    assert queue.depths() == {"active": 0, "backoff": 0, "unschedulable": 0}


async def test_update_after_the_backoff_ended_is_counted_once(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("ns/a")
    await ready(queue)
    queue.retry_after_error("ns/a")
    clock.advance(5.0)  # over, but nobody popped since
    queue.add("ns/a")
    assert queue.depths() == {"active": 1, "backoff": 0, "unschedulable": 0}
    assert await ready(queue) == ["ns/a"]
    assert queue.depths() == {"active": 0, "backoff": 0, "unschedulable": 0}


# -- parked unschedulable pods ---------------------------------------------------------------


async def test_parked_pods_wait_for_a_cluster_event(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    for key in ("ns/a", "ns/b"):
        queue.add(key)
    assert await ready(queue) == ["ns/a", "ns/b"]
    queue.park_unschedulable("ns/a")
    queue.park_unschedulable("ns/b")
    assert queue.depths() == {"active": 0, "backoff": 0, "unschedulable": 2}
    clock.advance(30)  # backoff long over, but nothing changed in the cluster
    assert await ready(queue) == []
    assert queue.move_all_to_active() == 2
    assert sorted(await ready(queue)) == ["ns/a", "ns/b"]
    assert queue.move_all_to_active() == 0


async def test_an_update_to_a_parked_pod_requeues_it_after_its_backoff(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("ns/a")
    await ready(queue)
    queue.park_unschedulable("ns/a")
    queue.add("ns/a")  # e.g. its tolerations were edited
    assert queue.depths()["unschedulable"] == 0
    assert await ready(queue) == []
    clock.advance(1.0)
    assert await ready(queue) == ["ns/a"]


async def test_parked_pods_come_back_after_max_unschedulable(clock: FakeClock) -> None:
    queue = SchedulingQueue(clock=clock, max_unschedulable=300.0)
    queue.add("ns/a")
    await ready(queue)
    queue.park_unschedulable("ns/a")
    clock.advance(299.0)
    assert await ready(queue) == []
    clock.advance(1.0)
    assert await ready(queue) == ["ns/a"]


# -- forget --------------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["active", "backoff", "unschedulable", "in-flight"])
async def test_forget_removes_every_trace(
    queue: SchedulingQueue, clock: FakeClock, state: str
) -> None:
    queue.add("ns/a")
    if state != "active":
        await ready(queue)
    if state == "backoff":
        queue.retry_after_error("ns/a")
    elif state == "unschedulable":
        queue.park_unschedulable("ns/a")
    queue.forget("ns/a")
    assert "ns/a" not in queue
    assert queue.depths() == {"active": 0, "backoff": 0, "unschedulable": 0}
    clock.advance(600)
    assert queue.move_all_to_active() == 0
    assert await ready(queue) == []
    # The same name again (a new pod) starts fresh: no backoff carried over.
    queue.add("ns/a")
    assert await ready(queue) == ["ns/a"]
    assert queue.retry_after_error("ns/a") == 1.0


async def test_a_recreated_pod_is_not_reported_as_backing_off(
    queue: SchedulingQueue,
) -> None:
    queue.add("ns/a")
    await ready(queue)
    queue.retry_after_error("ns/a")
    queue.forget("ns/a")  # deleted while backing off, then created again
    queue.add("ns/a")
    assert await ready(queue) == ["ns/a"]
    assert queue.depths() == {"active": 0, "backoff": 0, "unschedulable": 0}


# -- pop() wakes up ------------------------------------------------------------------------


async def test_pop_wakes_when_a_pod_is_added() -> None:
    queue = SchedulingQueue()
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    queue.add("ns/a")
    assert await asyncio.wait_for(waiter, 0.2) == "ns/a"


async def test_pop_wakes_when_parked_pods_are_moved() -> None:
    queue = SchedulingQueue(initial_backoff=0.0)
    queue.add("ns/a")
    await queue.pop()
    queue.park_unschedulable("ns/a")
    waiter = asyncio.create_task(queue.pop())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    queue.move_all_to_active()
    assert await asyncio.wait_for(waiter, 0.2) == "ns/a"


async def test_pop_wakes_when_a_backoff_ends() -> None:
    """A real (monotonic) clock and a 50 ms backoff: pop() sleeps just that long."""
    queue = SchedulingQueue(initial_backoff=0.05)
    queue.add("ns/a")
    await queue.pop()
    queue.retry_after_error("ns/a")
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await asyncio.wait_for(queue.pop(), 0.2) == "ns/a"
    assert loop.time() - start >= 0.04


async def test_pop_wakes_when_the_unschedulable_limit_passes() -> None:
    queue = SchedulingQueue(initial_backoff=0.0, max_unschedulable=0.05)
    queue.add("ns/a")
    await queue.pop()
    queue.park_unschedulable("ns/a")
    assert await asyncio.wait_for(queue.pop(), 0.2) == "ns/a"


async def test_activate_now_skips_the_backoff_of_a_parked_pod(
    queue: SchedulingQueue, clock: FakeClock
) -> None:
    queue.add("a")
    queue.add("b")
    assert await ready(queue) == ["a", "b"]
    for _ in range(4):  # parked four times: its backoff is now 8 s
        queue.park_unschedulable("a")
        queue.move_all_to_active()
        clock.advance(10)
        assert await ready(queue) == ["a"]
    queue.park_unschedulable("a")
    queue.park_unschedulable("b")
    queue.move_all_to_active()
    assert await ready(queue) == []  # both back off
    queue.activate_now("a")  # the node woken for it is back
    assert await ready(queue) == ["a"]
    clock.advance(10)
    assert await ready(queue) == ["b"]  # a's stale backoff entry hands out nothing
    queue.activate_now("gone")  # unknown: nothing
    queue.activate_now("a")  # in flight: nothing
    assert await ready(queue) == []
