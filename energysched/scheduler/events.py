"""Events and the PodScheduled condition, written the way kube-scheduler writes them.

* events.k8s.io/v1 Events with ``reportingController`` = the scheduler name,
  action ``Scheduling``, reason ``Scheduled`` (Normal) or ``FailedScheduling``
  (Warning), so ``kubectl describe pod`` shows them like the default scheduler's.
* Events go through their own client (own rate limit), as kube-scheduler's
  event broadcaster does: a flood of events never slows binding.
* The same Warning for the same pod is not repeated within ``dedup_window``.
* ``PodScheduled=False`` with reason ``Unschedulable`` (fits nowhere) or
  ``SchedulerError`` (bad input, bind failures) is patched only when it changes.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from energysched.kube.client import ApiError, KubeClient, api_path

log = structlog.get_logger(__name__)

EVENTS_API = "events.k8s.io/v1"


def _micro_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventRecorder:
    def __init__(self, kube: KubeClient, controller: str, dedup_window: float = 60.0) -> None:
        self.kube = kube
        self.controller = controller
        self.instance = f"{controller}-{os.uname().nodename}"
        self.dedup_window = dedup_window
        self._recent: dict[tuple[str, str], float] = {}

    async def pod_event(self, pod: Mapping[str, Any], type_: str, reason: str, note: str) -> None:
        meta = pod["metadata"]
        key = (meta.get("uid", ""), f"{reason}:{note}")
        now = time.monotonic()
        if type_ == "Warning" and now - self._recent.get(key, -1e9) < self.dedup_window:
            return
        self._recent[key] = now
        if len(self._recent) > 10_000:  # bounded memory on long runs
            cutoff = now - self.dedup_window
            self._recent = {k: t for k, t in self._recent.items() if t > cutoff}
        event = {
            "apiVersion": EVENTS_API,
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:16]}",
                "namespace": meta["namespace"],
            },
            "eventTime": _micro_now(),
            "reportingController": self.controller,
            "reportingInstance": self.instance,
            "action": "Scheduling",
            "reason": reason,
            "type": type_,
            "note": note[:1024],
            "regarding": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid", ""),
                "resourceVersion": meta.get("resourceVersion", ""),
            },
        }
        try:
            await self.kube.create(api_path(EVENTS_API, "events", meta["namespace"]), event)
        except ApiError as exc:
            # An event that cannot be written is logged, never fatal.
            log.warning(
                "event not written",
                pod=f"{meta['namespace']}/{meta['name']}",
                reason=reason,
                error=str(exc),
            )


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
