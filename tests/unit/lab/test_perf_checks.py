"""What set the pace of a ``make perf`` run: the harness checks itself (no cluster)."""

from __future__ import annotations

from typing import Any

import pytest

from energysched_lab.perf.checks import pace_checks
from energysched_lab.perf.stats import cpu_between


def run(rate: float, creator: float, busy: float, **extra: Any) -> dict[str, Any]:
    return {
        "pods_per_second": {"bind_phase": rate},
        "creation": {"pods_per_second": creator},
        "machine_cpu_busy": busy,
        "complete": True,
        "bound_before_scheduler_start": 0,
        **extra,
    }


def test_a_scheduler_below_every_limit_set_its_own_pace() -> None:
    c = pace_checks(run(300.0, 120.0, 0.6), qps=5000, backlog=True)
    assert c["paced_by"] == "the scheduler"
    assert not (c["creator_set_pace"] or c["client_limit_set_pace"] or c["machine_saturated"])


def test_in_stream_mode_binds_as_fast_as_creates_mean_the_creator_set_the_pace() -> None:
    c = pace_checks(run(100.0, 110.0, 0.5), qps=5000, backlog=False)
    assert c["creator_set_pace"]
    assert "pod creator (110 pods/s)" in c["paced_by"]
    # the same figures in backlog mode: the creator was done before the scheduler started
    assert not pace_checks(run(100.0, 110.0, 0.5), qps=5000, backlog=True)["creator_set_pace"]
    # a scheduler well below the creation rate paced itself
    assert not pace_checks(run(50.0, 110.0, 0.5), qps=5000, backlog=False)["creator_set_pace"]


def test_the_client_limit_and_a_saturated_machine_are_named() -> None:
    c = pace_checks(run(49.0, 300.0, 0.97), qps=50, backlog=True)
    assert c["client_limit_set_pace"] and c["machine_saturated"]
    assert c["paced_by"] == ("the client limit (QPS 50) and a saturated machine (CPU 97 % busy)")


def test_a_leaky_backlog_or_an_incomplete_run_is_no_measure() -> None:
    c = pace_checks(run(80.0, 300.0, 0.5, bound_before_scheduler_start=7), qps=5000, backlog=True)
    assert c["backlog_leaked"] and "7 pods bound before" in c["paced_by"]
    c = pace_checks(run(80.0, 300.0, 0.5, complete=False), qps=5000, backlog=True)
    assert "incomplete" in c["paced_by"]


def test_a_run_without_binds_has_no_rate_to_blame() -> None:
    r = run(0.0, 100.0, 0.2)
    r["pods_per_second"]["bind_phase"] = None
    c = pace_checks(r, qps=50, backlog=True)
    assert not c["client_limit_set_pace"]


def test_cpu_between_interpolates_inside_the_samples() -> None:
    samples = [(0.0, 1.0), (1.0, 2.0), (2.0, 2.5), (3.0, 4.5)]
    assert cpu_between(samples, 1.0, 2.0) == pytest.approx(0.5)
    assert cpu_between(samples, 0.5, 2.5) == pytest.approx(3.5 - 1.5)
    assert cpu_between(samples, -1.0, 2.0) is None  # before the first sample
    assert cpu_between(samples, 1.0, 4.0) is None
    assert cpu_between(samples[:1], 0.0, 0.0) is None
