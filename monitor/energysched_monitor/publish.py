"""When to write a node's power annotations, and what to write (pure).

A node is patched only when its power moved noticeably or a heartbeat interval has
passed, and never more often than ``min_interval_seconds``. Per node this bounds the
write rate at ``1 / min_interval_seconds``; a process serving many nodes (the model
mode) also draws every write from a shared :class:`WriteBudget`.

The heartbeat keeps ``current-watts-timestamp`` fresh while the power is steady, so
a consumer tells "steady" from "monitor dead" by the timestamp alone: a reading
older than its staleness window must be treated as no reading. A healthy node's
timestamp is at most ``heartbeat * (1 + jitter) + poll interval * 1.1 + timeout``
old (30 * 1.2 + 5.5 + 3 = 44.5 s with the defaults), so the scheduler's default
window of 60 s never sees a healthy steady node as stale, and sees a dead monitor
or a hung plug within about a minute.

Heartbeats are re-drawn at random within +-jitter after every write (and polls are
jittered by +-10 %), so that nodes which happened to write together (all monitors
started at once, or all recovering from an API server outage) drift apart within a
few heartbeats instead of hitting the API server in waves.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
)
from energysched.kube.ratelimit import TokenBucket

Reason = Literal["first", "change", "heartbeat", "steady", "too-soon", "write-backoff"]


@dataclass(frozen=True, slots=True)
class PublishPolicy:
    absolute_watts: float = 5.0  # a change smaller than this is never noticeable
    relative_change: float = 0.10  # ... nor one smaller than this fraction of the last value
    min_interval_seconds: float = 15.0  # per-node ceiling: one write per this interval
    heartbeat_seconds: float = 30.0  # rewrite an unchanged value after this long
    heartbeat_jitter: float = 0.2  # +-20 %, re-drawn per write: heartbeats do not align

    def __post_init__(self) -> None:
        if self.absolute_watts < 0 or self.relative_change < 0:
            raise ValueError("thresholds must not be negative")
        if not 0 < self.min_interval_seconds <= self.heartbeat_seconds:
            raise ValueError("need 0 < min_interval_seconds <= heartbeat_seconds")
        if not 0 <= self.heartbeat_jitter < 0.5:
            raise ValueError("heartbeat_jitter must be in [0, 0.5)")

    def heartbeat_for(self, node: str) -> float:
        """The node's first heartbeat: fixed per node name, spread over +-jitter."""
        digest = hashlib.sha256(node.encode()).digest()
        return self.draw_heartbeat(int.from_bytes(digest[:4], "big") / 0xFFFFFFFF)

    def draw_heartbeat(self, unit: float) -> float:
        """The heartbeat for a uniform ``unit`` in [0, 1]: within +-jitter."""
        jittered = self.heartbeat_seconds * (1 + self.heartbeat_jitter * (2 * unit - 1))
        return max(self.min_interval_seconds, jittered)


@dataclass(frozen=True, slots=True)
class Published:
    """The last value written to a node, and when (monotonic seconds)."""

    watts: float
    at: float


@dataclass(frozen=True, slots=True)
class PublishDecision:
    publish: bool
    reason: Reason


def noticeable(old: float, new: float, policy: PublishPolicy) -> bool:
    """A change counts if it exceeds both the absolute and the relative threshold."""
    change = abs(new - old)
    return change >= policy.absolute_watts and change >= policy.relative_change * abs(old)


def decide(
    last: Published | None, watts: float, now: float, policy: PublishPolicy, heartbeat: float
) -> PublishDecision:
    """Publish ``watts`` at monotonic time ``now``? ``heartbeat`` from ``heartbeat_for``."""
    if last is None:
        return PublishDecision(True, "first")
    elapsed = now - last.at
    if elapsed >= heartbeat:
        return PublishDecision(True, "heartbeat")
    if not noticeable(last.watts, watts, policy):
        return PublishDecision(False, "steady")
    if elapsed < policy.min_interval_seconds:
        return PublishDecision(False, "too-soon")
    return PublishDecision(True, "change")


def format_watts(watts: float) -> str:
    """Decimal watts with one decimal place: ``13.2``. Never exponent notation."""
    if not math.isfinite(watts):
        raise ValueError(f"not a finite power: {watts!r}")
    text = f"{watts:.1f}"
    return "0.0" if text == "-0.0" else text


def format_timestamp(wall: float) -> str:
    """RFC 3339 in UTC with a ``Z``: ``2026-02-01T12:00:05Z`` (whole seconds)."""
    return datetime.fromtimestamp(wall, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def power_annotations(watts: float, wall: float, source_label: str) -> Mapping[str, str]:
    """The annotations one publication writes (one merge patch)."""
    return {
        CURRENT_WATTS_ANNOTATION: format_watts(watts),
        CURRENT_WATTS_TIMESTAMP_ANNOTATION: format_timestamp(wall),
        POWER_SOURCE_ANNOTATION: source_label,
    }


#: A token bucket over API writes shared by all nodes of one process: the kube
#: client's own (``WriteBudget(rate, burst, now)``; rate <= 0 disables the limit;
#: the time is passed in, so the bucket is deterministic).
WriteBudget = TokenBucket
