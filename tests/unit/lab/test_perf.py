"""The arithmetic of ``make perf`` (no cluster, no timing)."""

from __future__ import annotations

import math

import pytest

from energysched import contract
from energysched_lab.perf.burst import pod_manifest
from energysched_lab.perf.prepare import class_profiles
from energysched_lab.perf.report import replace_section, result_key
from energysched_lab.perf.stats import (
    bind_rates,
    histogram_delta,
    histogram_quantile,
    latencies,
    parse_histogram,
    quantile,
    share_at_most,
    throughput_from_samples,
)


def test_quantile_interpolates_between_order_statistics() -> None:
    assert quantile([], 0.5) is None
    assert quantile([3.0], 0.99) == 3.0
    assert quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert quantile([float(i) for i in range(101)], 0.99) == pytest.approx(99.0)


def test_throughput_counts_from_first_to_last_bind_interval() -> None:
    # idle 2 s, then 10, 20, 0 (a stall), 30 pods/s, then idle after the last bind
    samples = [(0.0, 0), (1.0, 0), (2.0, 10), (3.0, 30), (4.0, 30), (5.0, 60), (6.0, 60)]
    t = throughput_from_samples(samples)
    assert t["intervals"] == 4
    assert t["average"] == pytest.approx(15.0)
    assert t["p50"] == pytest.approx(15.0)


def test_throughput_uses_actual_sample_spacing() -> None:
    t = throughput_from_samples([(0.0, 0), (0.5, 10), (2.5, 50)])
    assert t["average"] == pytest.approx((20.0 + 20.0) / 2)


def test_throughput_without_binds_is_empty() -> None:
    assert throughput_from_samples([(0.0, 0), (1.0, 0)])["average"] is None
    assert throughput_from_samples([])["intervals"] == 0


def test_bind_rates_bind_phase_and_overall() -> None:
    r = bind_rates([12.0, 10.0, 14.0], start=8.0)
    assert r["bind_phase"] == pytest.approx(2 / 4)
    assert r["overall"] == pytest.approx(3 / 6)
    assert bind_rates([], 0.0)["bind_phase"] is None
    assert bind_rates([5.0], 0.0)["bind_phase"] is None


def test_latencies_from_create_return_to_bind_seen() -> None:
    created = {"a": 1.0, "b": 2.0, "c": 3.0}
    bound = {"a": 2.0, "b": 1.5, "x": 9.0}  # b seen bound before its create returned
    lat = latencies(created, bound)
    assert lat["pods"] == 2
    assert lat["bound_before_create_returned"] == 1
    assert lat["p50"] == pytest.approx(0.5)
    assert lat["max"] == pytest.approx(1.0)


METRICS = """\
# HELP energysched_scheduling_algorithm_duration_seconds Time of the pure decision.
# TYPE energysched_scheduling_algorithm_duration_seconds histogram
energysched_scheduling_algorithm_duration_seconds_bucket{le="0.001"} 50.0
energysched_scheduling_algorithm_duration_seconds_bucket{le="0.002"} 90.0
energysched_scheduling_algorithm_duration_seconds_bucket{le="0.005"} 99.0
energysched_scheduling_algorithm_duration_seconds_bucket{le="0.01"} 100.0
energysched_scheduling_algorithm_duration_seconds_bucket{le="+Inf"} 100.0
energysched_scheduling_algorithm_duration_seconds_count 100.0
energysched_scheduling_algorithm_duration_seconds_sum 0.15
"""


def test_histogram_parse_quantile_and_share() -> None:
    h = parse_histogram(METRICS, "energysched_scheduling_algorithm_duration_seconds")
    assert h is not None
    buckets, count, total = h
    assert count == 100 and total == pytest.approx(0.15)
    assert math.isinf(buckets[-1][0])
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.001)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.005)
    assert histogram_quantile(0.7, buckets) == pytest.approx(0.0015)
    assert share_at_most(0.005, buckets) == pytest.approx(0.99)
    assert parse_histogram(METRICS, "missing") is None


def test_histogram_delta_subtracts_an_earlier_scrape() -> None:
    after = ([(0.001, 10.0), (math.inf, 20.0)], 20.0, 2.0)
    before = ([(0.001, 4.0), (math.inf, 5.0)], 5.0, 0.5)
    assert histogram_delta(after, before) == ([(0.001, 6.0), (math.inf, 15.0)], 15.0, 1.5)
    assert histogram_delta(after, None) == after


def test_replace_section_keeps_other_sections() -> None:
    doc = "# Benchmarks\n\n## Other\n\nkept\n"
    once = replace_section(doc, "perf:1x2", "old figures")
    assert once.startswith(doc)
    assert "<!-- perf:1x2:begin -->\nold figures\n<!-- perf:1x2:end -->" in once
    twice = replace_section(once + "\n## Tail\n", "perf:1x2", "new figures")
    assert "old figures" not in twice and "new figures" in twice
    assert twice.startswith(doc) and twice.endswith("## Tail\n")
    assert twice.count("perf:1x2:begin") == 1


def test_pods_name_their_scheduler_and_workload_type() -> None:
    ours = pod_manifest("p", contract.SCHEDULER_NAME, 1)
    assert ours["spec"]["schedulerName"] == contract.SCHEDULER_NAME
    assert ours["metadata"]["labels"][contract.WORKLOAD_TYPE_LABEL] in contract.WORKLOAD_TYPES
    assert "schedulerName" not in pod_manifest("p", None, 1)["spec"]


def test_class_profiles_select_node_classes_by_instance_type() -> None:
    profiles = class_profiles()
    assert len(profiles) == 3
    for p in profiles:
        assert list(p["spec"]["nodeSelector"]) == ["node.kubernetes.io/instance-type"]


def test_variants_are_kept_apart() -> None:
    base = {"nodes_generated": 1000, "pods": 5000}
    assert result_key(base) == "1000x5000"
    assert result_key({**base, "mode": "stream"}) == "1000x5000"
    assert result_key({**base, "mode": "backlog"}) == "1000x5000-backlog"
    assert result_key({**base, "energysched_leader_election": False}) == "1000x5000-no-le"
    assert result_key({**base, "energysched_profiled": True}) == "1000x5000-profiled"


def test_runqueue_wait_is_read_for_a_live_process_and_none_for_a_gone_one() -> None:
    import os
    import subprocess
    import sys

    from energysched_lab.perf.watch import _runqueue_wait

    own = _runqueue_wait(os.getpid())
    assert own is not None and own >= 0
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert _runqueue_wait(proc.pid) is None
