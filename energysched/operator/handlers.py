"""The kopf side: a registry of handlers bound to one :class:`OperatorRuntime`, and settings.

Every handler is registered on a registry of its own (never kopf's global
default), so several operators can exist in one process (tests, embedding) and
importing this module registers nothing.

Only ``@kopf.on.event`` handlers watch objects: they keep no state on the
objects, add no finalizers and write no ``kopf.zalando.org`` annotations. The
handlers are ``async`` so they run in kopf's loop, not in its thread pool: the
runtime's state is touched from one thread only.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from energysched.contract import GROUP, PROFILE_PLURAL, VERSION
from energysched.operator.login import connection_info
from energysched.operator.runtime import OperatorRuntime


def build_registry(runtime: OperatorRuntime) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry, errors=kopf.ErrorsMode.PERMANENT)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return connection_info(runtime.options.kubeconfig)

    @kopf.on.startup(registry=registry, errors=kopf.ErrorsMode.PERMANENT)
    async def startup(**_: Any) -> None:
        await runtime.start()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        await runtime.stop()

    @kopf.on.event(group=GROUP, version=VERSION, plural=PROFILE_PLURAL, registry=registry)
    async def profile_event(event: kopf.RawEvent, **_: Any) -> None:
        runtime.on_profile(event.get("type"), event["object"])

    @kopf.on.event("v1", "nodes", registry=registry)
    async def node_event(event: kopf.RawEvent, **_: Any) -> None:
        runtime.on_node(event.get("type"), event["object"])

    if runtime.options.learning:

        @kopf.on.event("v1", "pods", registry=registry)
        async def pod_event(event: kopf.RawEvent, **_: Any) -> None:
            runtime.on_pod(event.get("type"), event["object"])

    return registry


def build_settings(*, embedded: bool) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    # One operator instance per cluster, no peering objects (no kopf CRDs needed).
    settings.peering.standalone = True
    settings.peering.clusterwide = True
    # Only the initial discovery: no list/watch of CRDs is needed (least privilege).
    # The start-up handler waits until the EnergyProfile CRD exists.
    settings.scanning.disabled = True
    # Events are posted by the runtime (events.k8s.io/v1 in the namespace that
    # cluster-scoped objects' events must live in), never by kopf's logger.
    settings.posting.enabled = False
    settings.posting.level = logging.CRITICAL
    if embedded:
        # kopf would SIGKILL its thread on an unclean exit: that is the whole process.
        settings.process.ultimate_exiting_timeout = None
    return settings
