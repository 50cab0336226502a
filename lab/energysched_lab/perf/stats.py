"""The arithmetic of ``make perf``: quantiles, rates, latencies, Prometheus histograms.

Pure functions (no clock, no I/O); unit-tested.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def quantile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between order statistics."""
    if not values:
        return None
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def throughput_from_samples(samples: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """scheduler_perf's SchedulingThroughput from (time, pods bound so far) samples.

    Per-interval rates from the first interval in which the count rose through the
    interval in which it reached its final value (idle intervals before the first
    and after the last bind are not counted; stalls in between are).
    """
    empty: dict[str, Any] = {"average": None, "p50": None, "p90": None, "p99": None, "intervals": 0}
    first = next((i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]), None)
    if first is None:
        return empty
    final = samples[-1][1]
    last = next(i for i in range(len(samples)) if samples[i][1] == final)
    rates = []
    for i in range(first, last + 1):
        dt_ = samples[i][0] - samples[i - 1][0]
        if dt_ > 0:
            rates.append((samples[i][1] - samples[i - 1][1]) / dt_)
    if not rates:
        return empty
    return {
        "average": statistics.fmean(rates),
        "p50": quantile(rates, 0.50),
        "p90": quantile(rates, 0.90),
        "p99": quantile(rates, 0.99),
        "intervals": len(rates),
    }


def bind_rates(bound_at: Sequence[float], start: float) -> dict[str, float | None]:
    """Pods/s over the bind phase (first to last bind) and overall (``start`` to last)."""
    if not bound_at:
        return {"bind_phase": None, "overall": None, "bind_phase_seconds": None}
    first, last = min(bound_at), max(bound_at)
    phase = last - first
    return {
        "bind_phase": (len(bound_at) - 1) / phase if phase > 0 else None,
        "overall": len(bound_at) / (last - start) if last > start else None,
        "bind_phase_seconds": phase,
    }


def latencies(created: Mapping[str, float], bound: Mapping[str, float]) -> dict[str, Any]:
    """Creation (create call returned) to bound (seen by the watch), per pod, in seconds.

    A pod seen bound before its create call returned counts as 0 (and is counted).
    """
    values = []
    early = 0
    for name, t_bound in bound.items():
        t_created = created.get(name)
        if t_created is None:
            continue
        d = t_bound - t_created
        if d < 0:
            early += 1
            d = 0.0
        values.append(d)
    return {
        "p50": quantile(values, 0.50),
        "p90": quantile(values, 0.90),
        "p99": quantile(values, 0.99),
        "max": max(values) if values else None,
        "pods": len(values),
        "bound_before_create_returned": early,
    }


def cpu_between(samples: Sequence[tuple[float, float]], t0: float, t1: float) -> float | None:
    """CPU seconds spent between ``t0`` and ``t1``, from (time, cumulative CPU) samples,
    linearly interpolated between samples; None when the samples do not cover the span."""
    if len(samples) < 2 or t1 < t0 or t0 < samples[0][0] or t1 > samples[-1][0]:
        return None

    def at(t: float) -> float:
        for (ta, ca), (tb, cb) in itertools.pairwise(samples):
            if ta <= t <= tb:
                return ca if tb == ta else ca + (cb - ca) * (t - ta) / (tb - ta)
        return samples[-1][1]

    return at(t1) - at(t0)


Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), sorted; last is +Inf


def parse_histogram(text: str, name: str) -> tuple[Buckets, float, float] | None:
    """(buckets, count, sum) of an unlabelled-or-summed Prometheus histogram, or None."""
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        by_le: dict[float, float] = {}
        count = total = 0.0
        for s in family.samples:
            if s.name == f"{name}_bucket":
                le = float(s.labels["le"])
                by_le[le] = by_le.get(le, 0.0) + float(s.value)
            elif s.name == f"{name}_count":
                count += float(s.value)
            elif s.name == f"{name}_sum":
                total += float(s.value)
        return sorted(by_le.items()), count, total
    return None


def histogram_delta(
    after: tuple[Buckets, float, float], before: tuple[Buckets, float, float] | None
) -> tuple[Buckets, float, float]:
    if before is None:
        return after
    prev = dict(before[0])
    return (
        [(le, c - prev.get(le, 0.0)) for le, c in after[0]],
        after[1] - before[1],
        after[2] - before[2],
    )


def histogram_quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return prev_le  # above the highest finite bound: say that bound
            if c == prev_c:
                return le
            return prev_le + (le - prev_le) * (rank - prev_c) / (c - prev_c)
        prev_le, prev_c = le, c
    return prev_le


def share_at_most(limit: float, buckets: Buckets) -> float | None:
    """Fraction of observations <= ``limit`` (exact when ``limit`` is a bucket bound)."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    below = [c for le, c in buckets if le <= limit]
    return (below[-1] if below else 0.0) / buckets[-1][1]


def histogram_summary(h: tuple[Buckets, float, float] | None) -> dict[str, Any] | None:
    if h is None:
        return None
    buckets, count, total = h
    return {
        "count": count,
        "mean_ms": total / count * 1e3 if count else None,
        "p50_ms": _ms(histogram_quantile(0.50, buckets)),
        "p99_ms": _ms(histogram_quantile(0.99, buckets)),
        "share_under_5ms": share_at_most(0.005, buckets),
        "buckets": [[le if math.isfinite(le) else "+Inf", c] for le, c in buckets],
    }


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1e3
