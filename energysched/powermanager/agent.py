"""The node agent: suspends or powers off its own node when the power manager asks.

A DaemonSet on opted-in nodes (``energysched power-agent --node $NODE_NAME``). It watches
its own Node object only. When the manager writes ``energy.thesis.io/sleep-requested``
(``<RFC 3339 time> suspend|poweroff``), the agent checks, itself, before anything:

* the request is new (not one it already acted on) and recent (``max_age``): a request
  left on the node from before a reboot must not put it straight back to sleep;
* the node carries the ``energy.thesis.io/asleep`` taint and its power state is
  ``draining`` or ``asleep`` (the manager's own steps, in that order);
* no workload pod is bound to the node, read from the API server at that moment (DaemonSet
  and mirror pods do not count; finished pods do not either).

Only then it asks logind (:mod:`.logind`). Any check failing: nothing happens, and the log
says which check (the manager notices that the node did not fall asleep and gives it back).
Its RBAC is read-only: get/list/watch nodes, list pods.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from energysched.contract import SLEEP_REQUESTED_ANNOTATION
from energysched.core.parse import parse_rfc3339
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched.kube.reflector import EventType, Reflector
from energysched.powermanager import view
from energysched.powermanager.logind import Action, LogindError

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SleepRequest:
    at: dt.datetime
    action: Action
    raw: str


def parse_request(raw: str) -> SleepRequest | None:
    parts = raw.split()
    if len(parts) != 2 or parts[1] not in ("suspend", "poweroff"):
        return None
    at = parse_rfc3339(parts[0])
    if at is None:
        return None
    return SleepRequest(at, "suspend" if parts[1] == "suspend" else "poweroff", raw)


def refusal(
    node: Mapping[str, Any],
    pods: Iterable[Mapping[str, Any]] | None,
    now: dt.datetime,
    handled: str | None,
    max_age: float,
) -> tuple[SleepRequest | None, str | None]:
    """The request to act on and None, or (request or None, why not). Pure."""
    raw = view.annotations_of(node).get(SLEEP_REQUESTED_ANNOTATION)
    if raw is None:
        return None, "no sleep request"
    request = parse_request(raw)
    if request is None:
        return None, f"malformed sleep request {raw!r}"
    if raw == handled:
        return request, "already acted on this request"
    age = (now - request.at).total_seconds()
    if age > max_age or age < -max_age:
        return request, f"request {raw!r} is {age:.0f} s old (limit {max_age:g} s)"
    if not view.has_asleep_taint(node):
        return request, "the node lacks the asleep taint"
    if view.power_state(node) not in ("draining", "asleep"):
        return request, f"the node's power state is {view.power_state(node)}"
    if pods is None:
        return request, "cannot list the node's pods"
    name = view.name_of(node)
    workload = view.pods_by_node(pods).get(name)
    if workload is not None and workload.workload:
        return request, f"pods run on the node: {', '.join(workload.workload[:5])}"
    return request, None


class NodeAgent:
    def __init__(
        self,
        kube: KubeClient,
        node: str,
        act: Callable[[Action], Awaitable[None]],
        max_age: float = 300.0,
    ) -> None:
        self.kube = kube
        self.node = node
        self.act = act
        self.max_age = max_age
        self.handled: str | None = None
        self.acted: list[SleepRequest] = []
        self._wake = asyncio.Event()
        self.reflector = Reflector(
            kube,
            api_path("v1", "nodes"),
            self._on_node,
            name="node",
            params={"fieldSelector": f"metadata.name={node}"},
        )

    def _on_node(self, event: EventType, obj: Any, old: Any) -> None:
        self._wake.set()

    async def run(self) -> None:
        watch = asyncio.create_task(self.reflector.run())
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self.check()
        finally:
            watch.cancel()

    async def check(self) -> None:
        node = self.reflector.store.get(self.node)
        if node is None or SLEEP_REQUESTED_ANNOTATION not in view.annotations_of(node):
            return
        try:
            listing = await self.kube.list_all(
                api_path("v1", "pods"), fieldSelector=f"spec.nodeName={self.node}"
            )
            pods: list[Any] | None = listing.get("items") or []
        except ApiError as exc:
            log.warning("cannot list pods", node=self.node, error=str(exc))
            pods = None
        request, why = refusal(node, pods, dt.datetime.now(dt.UTC), self.handled, self.max_age)
        if why is not None:
            if why != "already acted on this request":
                log.info("not sleeping", node=self.node, why=why)
            return
        assert request is not None
        self.handled = request.raw
        log.info("sleeping the node", node=self.node, action=request.action)
        try:
            await self.act(request.action)
        except LogindError as exc:
            log.error("logind refused", node=self.node, error=str(exc))
            return
        self.acted.append(request)
