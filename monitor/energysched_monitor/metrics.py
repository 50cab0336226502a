"""Prometheus metrics (prefix ``energysched_monitor_``); :mod:`energysched.probes` serves them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from energysched_monitor.readings import ERROR_KINDS

PREFIX = "energysched_monitor"


class Metrics:
    """All series of one process, in its own registry (tests create many)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.power_watts = Gauge(
            f"{PREFIX}_power_watts", "Last accepted power reading.", ["node", "source"], registry=r
        )
        self.energy_joules = Counter(
            f"{PREFIX}_energy_joules",
            "Cumulative energy since the monitor started (device counters, else trapezoid).",
            ["node", "source"],
            registry=r,
        )
        self.read_errors = Counter(
            f"{PREFIX}_read_errors",
            "Failed power reads by kind.",
            ["node", "source", "kind"],
            registry=r,
        )
        self.last_success = Gauge(
            f"{PREFIX}_last_success_timestamp_seconds",
            "Unix time of the last accepted reading.",
            ["node"],
            registry=r,
        )
        self.source_up = Gauge(
            f"{PREFIX}_source_up", "1 if the last read succeeded, else 0.", ["node"], registry=r
        )
        self.integration_steps = Counter(
            f"{PREFIX}_integration_steps",
            "Energy integration steps by rule (counter, reset, wrap, trapezoid, gap, ...).",
            ["node", "rule"],
            registry=r,
        )
        self.annotation_writes = Counter(
            f"{PREFIX}_annotation_writes",
            "Node annotation patches by reason and result.",
            ["reason", "result"],
            registry=r,
        )
        self.writes_deferred = Counter(
            f"{PREFIX}_annotation_writes_deferred",
            "Publications postponed because the process-wide write budget was exhausted.",
            registry=r,
        )
        self.config_valid = Gauge(
            f"{PREFIX}_config_valid", "1 if the config file last read was valid.", registry=r
        )
        self.config_reloads = Counter(
            f"{PREFIX}_config_reloads", "Config reloads by result.", ["result"], registry=r
        )
        self.nodes_served = Gauge(
            f"{PREFIX}_nodes_served", "Nodes this process publishes for.", registry=r
        )
        self.config_valid.set(1)

    def init_node(self, node: str, source: str) -> None:
        """Create the node's series at 0 so that rates work from the first error."""
        self.energy_joules.labels(node, source)
        for kind in ERROR_KINDS:
            self.read_errors.labels(node, source, kind)

    def forget_node(self, node: str) -> None:
        """Drop every series of a node that is gone (model mode: a deleted KWOK node)."""
        for metric in (
            self.power_watts,
            self.energy_joules,
            self.read_errors,
            self.last_success,
            self.source_up,
            self.integration_steps,
        ):
            for labels in list(_label_sets(metric)):
                if labels and labels[0] == node:
                    metric.remove(*labels)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _label_sets(metric: Gauge | Counter) -> list[tuple[str, ...]]:
    return [tuple(labels) for labels in metric._metrics]
