"""The PodScheduled condition, written the way kube-scheduler writes it.

``PodScheduled=False`` with reason ``Unschedulable`` (fits nowhere),
``SchedulerError`` (bad input, bind failures) or ``SchedulingGated`` is patched
only when it changes. The scheduler's Events (``Scheduled``, ``FailedScheduling``)
are written by the shared :class:`energysched.kube.events.EventWriter`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import structlog

from energysched.kube.client import ApiError, KubeClient, api_path

log = structlog.get_logger(__name__)


async def set_pod_scheduled_false(
    kube: KubeClient, pod: Mapping[str, Any], reason: str, message: str
) -> None:
    """Patch PodScheduled=False unless the pod already says exactly that."""
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if (
            cond.get("type") == "PodScheduled"
            and cond.get("status") == "False"
            and cond.get("reason") == reason
            and cond.get("message") == message
        ):
            return
    meta = pod["metadata"]
    patch = {
        "status": {
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": reason,
                    "message": message,
                    "lastProbeTime": None,
                    "lastTransitionTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            ]
        }
    }
    try:
        await kube.patch(
            api_path("v1", "pods", meta["namespace"], meta["name"], "status"), patch, "strategic"
        )
    except ApiError as exc:
        if not exc.not_found:
            log.warning(
                "PodScheduled condition not written",
                pod=f"{meta['namespace']}/{meta['name']}",
                error=str(exc),
            )
