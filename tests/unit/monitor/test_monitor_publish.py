"""The publish decision (pure) and the annotation values."""

from __future__ import annotations

from datetime import datetime

import pytest

from energysched.contract import (
    CURRENT_WATTS_ANNOTATION,
    CURRENT_WATTS_TIMESTAMP_ANNOTATION,
    POWER_SOURCE_ANNOTATION,
)
from energysched_monitor.publish import (
    Published,
    PublishPolicy,
    WriteBudget,
    decide,
    format_timestamp,
    format_watts,
    noticeable,
    power_annotations,
)

POLICY = PublishPolicy(
    absolute_watts=5, relative_change=0.10, min_interval_seconds=15, heartbeat_seconds=30
)
HB = 30.0


@pytest.mark.parametrize(
    ("last", "watts", "now", "publish", "reason"),
    [
        (None, 50.0, 0.0, True, "first"),
        (Published(50.0, 0.0), 52.0, 20.0, False, "steady"),  # 2 W < 5 W
        (Published(50.0, 0.0), 56.0, 20.0, True, "change"),  # 6 W >= 5 W and >= 5 W (10 %)
        (Published(200.0, 0.0), 215.0, 20.0, False, "steady"),  # 15 W < 10 % of 200 W
        (Published(200.0, 0.0), 225.0, 20.0, True, "change"),
        (Published(50.0, 0.0), 90.0, 10.0, False, "too-soon"),  # big change, within 15 s
        (Published(50.0, 0.0), 90.0, 15.0, True, "change"),  # exactly the min interval
        (Published(50.0, 0.0), 50.0, 29.9, False, "steady"),
        (Published(50.0, 0.0), 50.0, 30.0, True, "heartbeat"),  # unchanged, but refresh
        (Published(0.0, 0.0), 4.0, 20.0, False, "steady"),  # from 0 W: absolute rules
        (Published(0.0, 0.0), 5.0, 20.0, True, "change"),
        (Published(50.0, 0.0), 40.0, 20.0, True, "change"),  # a drop counts too
    ],
)
def test_decide(
    last: Published | None, watts: float, now: float, publish: bool, reason: str
) -> None:
    d = decide(last, watts, now, POLICY, HB)
    assert (d.publish, d.reason) == (publish, reason)


def test_noticeable_needs_both_thresholds() -> None:
    assert noticeable(100, 111, POLICY)
    assert not noticeable(100, 109, POLICY)  # 9 W: above 5 W, below 10 %
    assert not noticeable(10, 14, POLICY)  # 40 %, but below 5 W


def test_write_rate_of_one_node_is_exactly_one_per_min_interval() -> None:
    """A wildly fluctuating node gets one write per min interval: no more (the bound),
    and no fewer (every change is noticeable, so a write is due as soon as allowed)."""
    last: Published | None = None
    writes: list[float] = []
    for i in range(600):  # 600 polls of 1 s, alternating 10 W / 500 W
        now = float(i)
        if decide(last, 10.0 if i % 2 else 500.0, now, POLICY, HB).publish:
            writes.append(now)
            last = Published(10.0 if i % 2 else 500.0, now)
    assert writes == [i * POLICY.min_interval_seconds for i in range(40)]  # 0, 15, ... 585 s


def test_heartbeat_jitter_is_per_node_and_bounded() -> None:
    beats = {POLICY.heartbeat_for(f"node-{i}") for i in range(200)}
    assert len(beats) > 100  # spread out
    assert all(24.0 <= b <= 36.0 for b in beats)  # 30 s +-20 %
    assert POLICY.heartbeat_for("wyse") == POLICY.heartbeat_for("wyse")
    assert POLICY.draw_heartbeat(0.0) == 24.0 and POLICY.draw_heartbeat(1.0) == 36.0
    tight = PublishPolicy(min_interval_seconds=28, heartbeat_seconds=30)
    assert tight.draw_heartbeat(0.0) == 28  # never below the min interval


@pytest.mark.parametrize(
    "kwargs",
    [
        {"absolute_watts": -1},
        {"min_interval_seconds": 0},
        {"min_interval_seconds": 60, "heartbeat_seconds": 30},
        {"heartbeat_jitter": 0.7},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        PublishPolicy(**kwargs)


def test_format_watts() -> None:
    assert format_watts(13.24) == "13.2"
    assert format_watts(0) == "0.0"
    assert format_watts(-0.01) == "0.0"
    assert format_watts(1234567.0) == "1234567.0"  # never exponent notation
    with pytest.raises(ValueError):
        format_watts(float("nan"))


def test_format_timestamp_is_rfc3339_utc() -> None:
    text = format_timestamp(1_769_947_205.7)
    assert text == "2026-02-01T12:00:05Z"
    assert datetime.fromisoformat(text).utcoffset() is not None


def test_power_annotations() -> None:
    ann = power_annotations(12.345, 1_769_947_205.0, "shelly")
    assert ann == {
        CURRENT_WATTS_ANNOTATION: "12.3",
        CURRENT_WATTS_TIMESTAMP_ANNOTATION: "2026-02-01T12:00:05Z",
        POWER_SOURCE_ANNOTATION: "shelly",
    }


def test_write_budget() -> None:
    budget = WriteBudget(qps=10, burst=5, now=0.0)
    assert sum(budget.take(0.0) for _ in range(20)) == 5  # the burst
    assert sum(budget.take(1.0) for _ in range(20)) == 5  # refilled up to the burst
    assert [budget.take(1.1)] == [True]  # 0.1 s at 10/s = one token
    unlimited = WriteBudget(qps=0, burst=1, now=0.0)
    assert all(unlimited.take(0.0) for _ in range(100))
