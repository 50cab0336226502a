"""The learned figures in an EnergyProfile's ``status.learned``; the spec stays as written.

The operator writes, the scheduler reads (``knowledge: learned``)::

    status:
      learned:
        observations: 42            # accepted, all workload types (figures counted once)
        lastUpdate: "2026-12-07T04:00:00Z"
        workloads:
          training:
            specPerformance: 85     # the spec figures these were learned against
            specPowerWatts: 16.5
            performance: 101.3      # the posterior's figure (exp of its log mean)
            performanceUncertainty: 1.04   # one standard deviation, as a factor
            performanceObservations: 17
            powerWatts: 20.1
            powerUncertainty: 1.03
            powerObservations: 12

A block whose ``specPerformance``/``specPowerWatts`` differ from the spec's figures was
learned against an old spec: the reader ignores it (and the operator resets it), the
rule of :mod:`energysched.learning.estimate`. The status is also how the operator
resumes after a restart (:func:`restore`): the posterior's figure and uncertainty
determine its state exactly (the prior is known from the spec).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from energysched.contract import WORKLOAD_TYPES, WorkloadType
from energysched.kb.profiles import KnowledgeBase, ProfileSpec
from energysched.learning.estimate import Estimator, FigureState, Learned

LEARNED_KEY = "learned"


def _rfc3339(ts: float) -> str | None:
    if not math.isfinite(ts):
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp(value: object) -> float:
    if not isinstance(value, str):
        return -math.inf
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return -math.inf
    return t.timestamp() if t.tzinfo is not None else -math.inf


def _r(x: float) -> float:
    return float(f"{x:.6g}")


def learned_block(profile: ProfileSpec, estimator: Estimator) -> dict[str, Any] | None:
    """``status.learned`` of one profile; None when nothing was ever learned for it."""
    learned = estimator.learned(KnowledgeBase.of([profile]))
    workloads: dict[str, Any] = {}
    total = 0
    last = -math.inf
    for (_, wt), got in sorted(learned.items()):
        if got.performance_count == 0 and got.power_count == 0:
            continue
        fig = profile.workloads[wt]
        workloads[wt] = {
            "specPerformance": fig.performance,
            "specPowerWatts": fig.power_watts,
            "performance": _r(got.performance),
            "performanceUncertainty": _r(got.performance_factor),
            "performanceObservations": got.performance_count,
            "powerWatts": _r(got.power_watts),
            "powerUncertainty": _r(got.power_factor),
            "powerObservations": got.power_count,
        }
        total += max(got.performance_count, got.power_count)
        last = max(last, got.last)
    if not workloads:
        return None
    return {"observations": total, "lastUpdate": _rfc3339(last), "workloads": workloads}


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    f = float(v)
    return f if math.isfinite(f) and f > 0 else None


def _count(v: object) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def learned_from_status(
    profile: ProfileSpec, status: object
) -> Mapping[tuple[str, WorkloadType], Learned]:
    """The usable learned figures of a profile's status (garbage and stale blocks skipped)."""
    if not isinstance(status, Mapping):
        return MappingProxyType({})
    block = status.get(LEARNED_KEY)
    if not isinstance(block, Mapping) or not isinstance(block.get("workloads"), Mapping):
        return MappingProxyType({})
    last = _stamp(block.get("lastUpdate"))
    out: dict[tuple[str, WorkloadType], Learned] = {}
    for wt, entry in block["workloads"].items():
        if wt not in WORKLOAD_TYPES or not isinstance(entry, Mapping):
            continue
        fig = profile.workloads.get(wt)
        if fig is None:
            continue
        if entry.get("specPerformance") != fig.performance:
            continue
        if entry.get("specPowerWatts") != fig.power_watts:
            continue
        values = [
            _number(entry.get(k))
            for k in ("performance", "performanceUncertainty", "powerWatts", "powerUncertainty")
        ]
        if any(v is None for v in values):
            continue
        perf, pf, power, wf = (v for v in values if v is not None)
        if pf < 1 or wf < 1:
            continue
        out[(profile.name, wt)] = Learned(
            perf,
            pf,
            power,
            wf,
            _count(entry.get("performanceObservations")),
            _count(entry.get("powerObservations")),
            last,
        )
    return MappingProxyType(out)


def restore(estimator: Estimator, kb: KnowledgeBase, statuses: Mapping[str, object]) -> int:
    """Resume the estimator from the profiles' statuses; returns the figures restored."""
    restored = 0
    sigma = estimator.cfg.obs_sigma
    estimator.sync(kb)
    for name, status in statuses.items():
        profile = kb.profiles.get(name)
        if profile is None:
            continue
        for (_, wt), got in learned_from_status(profile, status).items():
            for figure, value, factor, count in (
                ("performance", got.performance, got.performance_factor, got.performance_count),
                ("power", got.power_watts, got.power_factor, got.power_count),
            ):
                st = estimator.states.get((name, wt, figure))  # type: ignore[arg-type]
                if st is None or count == 0:
                    continue
                sd = math.log(factor)
                p0 = 1.0 / st.prior_sigma**2
                if sd <= 0:
                    continue
                p1 = max(0.0, 1.0 / sd**2 - p0)
                weight = p1 * sigma**2
                sum_log = (math.log(value) * (p0 + p1) - math.log(st.spec) * p0) * sigma**2
                estimator.states[(name, wt, figure)] = FigureState(  # type: ignore[index]
                    spec=st.spec,
                    prior_sigma=st.prior_sigma,
                    weight=weight,
                    sum_log=sum_log,
                    count=count,
                    last=got.last,
                )
                restored += 1
    return restored
