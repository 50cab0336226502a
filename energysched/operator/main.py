"""Running the operator as the main program (``energysched operator``).

The lab runs the same registry in a thread of its own
(:mod:`energysched_lab.operator_thread`).
"""

from __future__ import annotations

import asyncio
import logging

import kopf

from energysched.operator.handlers import build_registry, build_settings
from energysched.operator.runtime import OperatorOptions, OperatorRuntime


def quiet_kopf_object_logs() -> None:
    """kopf logs "Handler ... succeeded" at INFO for every event: every node heartbeat of a
    1,000-node cluster. Keep its per-object logger at WARNING (process-wide setting)."""
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)


def run_operator(options: OperatorOptions) -> None:
    """Run in the calling (main) thread until SIGINT/SIGTERM (kopf handles the signals)."""
    quiet_kopf_object_logs()
    runtime = OperatorRuntime(options)
    asyncio.run(
        kopf.operator(
            registry=build_registry(runtime),
            settings=build_settings(embedded=False),
            clusterwide=True,
            standalone=True,
            liveness_endpoint=options.liveness_endpoint,
        )
    )
