"""The operator's Prometheus metrics: what it learned, what it refused, the energy of pods."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class OperatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.observations = Counter(
            "energysched_learning_observations",
            "Finished pods that taught a figure, by workload type.",
            ["workload_type"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "energysched_learning_rejected",
            "Finished pods (or a figure of one) not learned from, by reason "
            "(negative-duration, too-long, no-work, reading-gap, outlier, spec-changed, ...).",
            ["reason"],
            registry=self.registry,
        )
        self.pod_energy = Counter(
            "energysched_pod_energy_joules",
            "Energy attributed to finished pods (above idle by the model's share, plus "
            "their share of idle by time), by namespace and workload type.",
            ["namespace", "workload_type"],
            registry=self.registry,
        )

        self.learned_ratio = Gauge(
            "energysched_learned_to_spec_ratio",
            "Learned figure / spec figure per profile, workload type and figure "
            "(performance, power): how far the knowledge base was off.",
            ["profile", "workload_type", "figure"],
            registry=self.registry,
        )

    def serve(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0", registry=self.registry)
