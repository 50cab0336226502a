"""The harness checks itself: what set the pace of a run, beside each figure.

A drain rate is a measure of the scheduler only when neither the pod creator, nor the
client rate limit, nor a saturated machine set it. Pure (unit-tested).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Stream mode: binds keeping within this factor of the creation rate were paced by it.
CREATOR_MARGIN = 1.15
#: One Binding request per pod: a bind rate at this share of the client QPS hit the limit.
LIMIT_SHARE = 0.8
#: Machine CPU busy (all cores) at or above this share: the figure is the machine's.
SATURATED = 0.9


def pace_checks(run: Mapping[str, Any], *, qps: float, backlog: bool) -> dict[str, Any]:
    """Flags and a one-line verdict (``paced_by``) for one run's result."""
    rate = (run.get("pods_per_second") or {}).get("bind_phase")
    creator = (run.get("creation") or {}).get("pods_per_second")
    busy = run.get("machine_cpu_busy")
    creator_set_pace = bool(
        not backlog and rate is not None and creator and rate * CREATOR_MARGIN >= creator
    )
    limit_set_pace = bool(rate is not None and qps > 0 and rate >= LIMIT_SHARE * qps)
    saturated = bool(busy is not None and busy >= SATURATED)
    leaked = bool(backlog and run.get("bound_before_scheduler_start"))
    reasons = []
    if creator_set_pace:
        reasons.append(f"the pod creator ({creator:.0f} pods/s)")
    if limit_set_pace:
        reasons.append(f"the client limit (QPS {qps:g})")
    if saturated:
        reasons.append(f"a saturated machine (CPU {(busy or 0.0) * 100:.0f} % busy)")
    if leaked:
        reasons.append(
            f"not a clean backlog ({run['bound_before_scheduler_start']} pods bound before "
            "the scheduler started)"
        )
    if not run.get("complete", False):
        reasons.append("an incomplete run")
    return {
        "creator_set_pace": creator_set_pace,
        "client_limit_set_pace": limit_set_pace,
        "machine_saturated": saturated,
        "backlog_leaked": leaked,
        "paced_by": "the scheduler" if not reasons else " and ".join(reasons),
    }
