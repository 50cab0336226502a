"""Error state per node and the polling backoff (pure).

Errors are logged once per *state change*, not per poll: a plug that stays
unreachable for an hour yields one "failing" line and one "recovered" line, while
the ``read_errors_total`` counter still counts every failed poll.
"""

from __future__ import annotations

from dataclasses import dataclass

from energysched_monitor.readings import ErrorKind


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of a node's state; ``new is None`` means it recovered."""

    old: ErrorKind | None
    new: ErrorKind | None
    failures: int  # consecutive failures before this transition (for a recovery)
    since: float  # monotonic time the old state began


class ErrorState:
    """``ok`` or the kind of the current error; reports only the transitions."""

    def __init__(self, now: float) -> None:
        self.current: ErrorKind | None = None
        self.failures = 0
        self._since = now
        self._seen_ok = False

    def failed(self, kind: ErrorKind, now: float) -> Transition | None:
        self.failures += 1
        if self.current == kind:
            return None
        transition = Transition(self.current, kind, self.failures - 1, self._since)
        self.current, self._since = kind, now
        return transition

    def succeeded(self, now: float) -> Transition | None:
        first = not self._seen_ok
        self._seen_ok = True
        failures, self.failures = self.failures, 0
        if self.current is None and not first:
            return None
        transition = Transition(self.current, None, failures, self._since)
        self.current, self._since = None, now
        return transition


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the next poll: the poll interval while healthy, doubling per
    consecutive failure up to ``max_seconds``; the first success resets it."""

    interval_seconds: float
    max_seconds: float = 60.0
    factor: float = 2.0

    def __post_init__(self) -> None:
        if self.interval_seconds <= 0 or self.max_seconds < self.interval_seconds:
            raise ValueError("need 0 < interval_seconds <= max_seconds")
        if self.factor < 1:
            raise ValueError("factor must be >= 1")

    def delay(self, consecutive_failures: int) -> float:
        if consecutive_failures <= 0:
            return self.interval_seconds
        exponent = min(consecutive_failures, 32)
        return min(self.max_seconds, self.interval_seconds * self.factor**exponent)
