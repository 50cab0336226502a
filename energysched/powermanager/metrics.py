"""Prometheus metrics of the power manager (names in energysched.contract)."""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from energysched.contract import (
    METRIC_POWER_CONFIG_RELOADS,
    METRIC_POWER_SLEEP_SKIPPED,
    METRIC_POWER_STATE,
    METRIC_POWER_TRANSITIONS,
    METRIC_POWER_WAKE_FAILURES,
    METRIC_POWER_WAKE_SECONDS,
    POWER_STATES,
    PowerState,
)

_WAKE_BUCKETS = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class PowerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            METRIC_POWER_STATE,
            "1 for the power state each managed node is in, 0 for the others.",
            ["node", "state"],
            registry=r,
        )
        self.transitions = Counter(
            METRIC_POWER_TRANSITIONS,
            "Power-state transitions made by the power manager.",
            ["node", "from", "to"],
            registry=r,
        )
        # ``_total`` is added by the client library to a Counter's name.
        self.skipped = Counter(
            METRIC_POWER_SLEEP_SKIPPED.removesuffix("_total"),
            "Managed nodes not put to sleep in a pass, by reason.",
            ["reason"],
            registry=r,
        )
        self.wake_seconds = Histogram(
            METRIC_POWER_WAKE_SECONDS,
            "From the wake request until the node was Ready again.",
            buckets=_WAKE_BUCKETS,
            registry=r,
        )
        self.wake_failures = Counter(
            METRIC_POWER_WAKE_FAILURES.removesuffix("_total"),
            "Wakes that failed (the method failed, or the node was not Ready in time).",
            ["method"],
            registry=r,
        )
        self.config_reloads = Counter(
            METRIC_POWER_CONFIG_RELOADS.removesuffix("_total"),
            "Config file reloads by result (applied; invalid: the last good config stays).",
            ["result"],
            registry=r,
        )

    def set_state(self, node: str, state: PowerState) -> None:
        for s in POWER_STATES:
            self.state.labels(node=node, state=s).set(1 if s == state else 0)

    def forget(self, node: str) -> None:
        for s in POWER_STATES:
            with contextlib.suppress(KeyError):
                self.state.remove(node, s)
