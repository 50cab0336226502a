"""Prometheus metrics of the scheduler (names follow kube-scheduler's where they exist)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class SchedulerMetrics:
    """One instance per process; tests make their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.attempts = Counter(
            "energysched_schedule_attempts_total",
            "Scheduling attempts by result (scheduled, unschedulable, error, invalid).",
            ["result", "profile"],
            registry=r,
        )
        self.algorithm_latency = Histogram(
            "energysched_scheduling_algorithm_duration_seconds",
            "Time of the pure decision (filter, pre-score, score) per pod; snapshot excluded.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.algorithm_cpu = Histogram(
            "energysched_scheduling_algorithm_cpu_seconds",
            "CPU time of the pure decision per pod (the thread's, so without the time the "
            "process waited for a core: on a saturated machine the duration above carries that).",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.attempt_latency = Histogram(
            "energysched_scheduling_attempt_duration_seconds",
            "One pod's whole scheduling cycle on the loop (lookup, parse, snapshot, decision, "
            "assume); the Binding call runs after it.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.e2e_latency = Histogram(
            "energysched_pod_scheduling_duration_seconds",
            "From a pod's first enqueue to its successful bind.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bind_latency = Histogram(
            "energysched_binding_duration_seconds",
            "Time of the Binding call.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.bind_errors = Counter(
            "energysched_bind_errors_total",
            "Failed Binding calls by HTTP status.",
            ["status"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "energysched_pending_pods", "Pods waiting, by queue.", ["queue"], registry=r
        )
        self.stale_readings = Counter(
            "energysched_power_readings_total",
            "Live power readings seen while scoring, by state (stale, missing, and future: "
            "further ahead of the scheduler's clock than hybrid.clockSkewSeconds).",
            ["state"],
            registry=r,
        )
        self.neutral_fallbacks = Counter(
            "energysched_neutral_fallback_total",
            "Decisions where no feasible node had a profile for the workload type.",
            registry=r,
        )
        self.config_reloads = Counter(
            "energysched_config_reloads_total", "Config reloads by result.", ["result"], registry=r
        )
        self.profiles = Gauge(
            "energysched_energyprofiles", "EnergyProfiles the scheduler uses (valid).", registry=r
        )
        self.watch_up = Gauge(
            "energysched_watch_up",
            "1 while a reflector's list/watch works, by reflector (pods, nodes, energyprofiles).",
            ["reflector"],
            registry=r,
        )
        self.is_leader = Gauge(
            "energysched_leader", "1 while this replica holds the leader lease.", registry=r
        )
