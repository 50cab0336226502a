"""The one way a test waits: a condition polled until a deadline.

A fixed sleep says "the cluster has surely seen it by now"; on a loaded machine it has
not, and the test fails (or, for a negative check, passes without proving anything).
``eventually`` polls a probe instead and, when the deadline passes, fails with what it
was waiting for and what it last saw, so the failure explains itself.

The probe returns a value; the wait ends when ``until(value)`` holds (by default: the
value is truthy), and the value is returned. ``tests/unit/test_suite_rules.py`` keeps
bare sleeps of a second or more out of tests/integration: this module is where the
polling lives.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: Seconds between two looks; short, since most conditions are met within a poll or two.
INTERVAL = 0.2


class NotYet(AssertionError):
    """The condition did not hold before the deadline (a test failure, not an error).

    ``last`` is the probe's last value, for a caller that reports it itself.
    """

    def __init__(self, message: str, last: object) -> None:
        super().__init__(message)
        self.last = last


def _truthy(value: object) -> bool:
    return bool(value)


def _failure(what: str, timeout: float, last: object, error: BaseException | None) -> NotYet:
    seen = f"last seen: {last!r}"
    if error is not None:
        seen += f"; last probe error: {type(error).__name__}: {error}"
    return NotYet(f"timed out after {timeout:g} s waiting for {what}; {seen}", last)


async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    timeout: float,
    what: str,
    until: Callable[[T], bool] = _truthy,
    interval: float = INTERVAL,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Await ``probe()`` until ``until`` holds for its value; return that value.

    ``ignore`` names exceptions a probe may raise while the condition cannot be read yet
    (e.g. an API server that is restarting); the last one is named on failure.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = await probe()
        except ignore as exc:
            error = exc
        else:
            if until(value):
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, error)
        await asyncio.sleep(interval)


def eventually_sync(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    until: Callable[[T], bool] = _truthy,
    interval: float = INTERVAL,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """:func:`eventually` for synchronous probes (kubectl, files, processes)."""
    deadline = time.monotonic() + timeout
    last: object = None
    error: BaseException | None = None
    while True:
        try:
            value = probe()
        except ignore as exc:
            error = exc
        else:
            if until(value):
                return value
            last, error = value, None
        if time.monotonic() >= deadline:
            raise _failure(what, timeout, last, error)
        time.sleep(interval)


async def wait_for(
    predicate: Callable[[], Awaitable[T | None]],
    timeout: float,
    what: str,
    interval: float = INTERVAL,
) -> T:
    """The positional form most tests use: ``await wait_for(probe, 30, "pod bound")``."""
    value = await eventually(predicate, timeout=timeout, what=what, interval=interval)
    assert value is not None  # truthy, so not None: for the type checker
    return value
