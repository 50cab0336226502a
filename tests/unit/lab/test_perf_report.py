"""The ratios, limits and the BENCHMARKS.md section of ``make perf`` (no cluster)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from energysched_lab.perf.cli import _limit, parse_args
from energysched_lab.perf.report import compare, limit_key, render_section


def run(rate: float, cpu: float, drain_cpu_ms: float, paced_by: str) -> dict[str, Any]:
    return {
        "pods_per_second": {"bind_phase": rate, "overall": rate * 0.9},
        "scheduler_perf_throughput": {"average": rate * 0.95, "p50": rate, "p90": rate},
        "scheduler_start_to_first_bind_seconds": 1.0,
        "scheduler_start_to_last_bind_seconds": 1000 / rate + 1.0,
        "creation": {"pods_per_second": 400.0},
        "machine_cpu_busy": 0.5,
        "scheduler_process": {
            "cpu_seconds": cpu,
            "peak_rss_mib": 100.0,
            "cpu_ms_per_pod_first_to_last_bind": drain_cpu_ms,
        },
        "decision": {"p50_ms": 0.5, "p99_ms": 2.0, "share_under_5ms": 1.0},
        "attempt": {"p50_ms": 1.0, "p99_ms": 4.0},
        "pods_bound": 1000,
        "pods_created": 1000,
        "latency_seconds": {"p50": 3.0, "p99": 6.0},
        "checks": {"paced_by": paced_by},
    }


def test_ratios_are_above_one_where_energysched_does_better() -> None:
    runs = {
        "kube-scheduler": run(100.0, 8.0, 7.0, "the scheduler"),
        "energysched-normalized": run(200.0, 4.0, 3.5, "the scheduler"),
    }
    r = compare(runs)["energysched-normalized"]
    assert r["drain_rate"] == pytest.approx(2.0)
    assert r["cpu_per_pod"] == pytest.approx(2.0)
    assert r["cpu_per_pod_drain"] == pytest.approx(2.0)
    assert r["start_to_last_bind"] == pytest.approx(11.0 / 6.0)
    assert compare({"energysched-normalized": runs["energysched-normalized"]}) == {}


def test_limits_parse_and_name_namespaces() -> None:
    assert _limit("50:100") == (50.0, 100)
    assert limit_key(50.0, 100) == "qps50-burst100"
    assert limit_key(2.5, 5) == "qps2-5-burst5"
    for bad in ("50", "a:b", "0:10", "50:0"):
        with pytest.raises(argparse.ArgumentTypeError):
            _limit(bad)
    args = parse_args(["--nodes", "200", "--pods", "1000"])
    assert args.limits == [(50.0, 100), (5000.0, 10000)] and args.mode == "backlog"
    assert args.modes == ["normalized", "hybrid"]
    assert parse_args(["--qps", "20", "--burst", "40"]).limits == [(20.0, 40)]


def test_the_section_says_where_energysched_stands_and_what_set_the_pace() -> None:
    runs = {
        "kube-scheduler": run(50.0, 8.0, 7.0, "the client limit (QPS 50)"),
        "energysched-normalized": run(49.0, 4.0, 3.5, "the client limit (QPS 50)"),
    }
    result = {
        "machine": {"kubernetes": "v1", "nproc": 2, "cpu_model": "x", "memory_gib": 1},
        "runs": {"qps50-burst100": runs},
        "ratios": {"qps50-burst100": compare(runs)},
        "mode": "backlog",
        "nodes_generated": 1000,
        "pods": 5000,
        "date": "2026-11-30T00:00:00+00:00",
        "command": "make perf",
        "loadavg_start": [0.1, 0.1, 0.1],
    }
    text = render_section(result)
    assert "energysched-normalized drains the backlog as fast as kube-scheduler" in text
    assert "ratio 0.98" in text
    assert "| pace set by | the client limit (QPS 50) | the client limit (QPS 50) |" in text
    assert "| **drain rate, pods/s** (first → last bind) | 50.0 | 49.0 | 0.98 |" in text
    assert "0.50 / 2.00" in text  # algorithm-only p50 / p99
