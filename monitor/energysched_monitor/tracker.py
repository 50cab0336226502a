"""Per-node bookkeeping shared by the DaemonSet and the model mode.

:class:`NodeTracker` is the pure core: it takes a reading or an error and the time,
and says what the energy step was, whether the error state changed (and so whether
to log), whether to publish and what, and when to poll next. :class:`Reporter` turns
that into metrics and (state-change-only) log lines; it is the only I/O here.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from energysched_monitor.energy import EnergyIntegrator, Step
from energysched_monitor.failures import Backoff, ErrorState, Transition
from energysched_monitor.metrics import Metrics
from energysched_monitor.publish import (
    PublishDecision,
    Published,
    PublishPolicy,
    Reason,
    decide,
    power_annotations,
)
from energysched_monitor.readings import PhysicalRange, ReadError, Reading


@dataclass(frozen=True, slots=True)
class Observation:
    node: str
    reading: Reading | None
    error: ReadError | None
    step: Step | None
    transition: Transition | None
    publish: Mapping[str, str] | None
    reason: Reason | None
    next_delay: float
    at: float  # monotonic time of the observation


class NodeTracker:
    def __init__(
        self,
        node: str,
        *,
        policy: PublishPolicy,
        backoff: Backoff,
        physical: PhysicalRange,
        gap_seconds: float,
        now: float,
    ) -> None:
        self.node = node
        self.policy = policy
        self.backoff = backoff
        self.physical = physical
        self.heartbeat = policy.heartbeat_for(node)
        self._rng = random.Random(node)  # deterministic per node, for reproducible tests
        self.integrator = EnergyIntegrator(gap_seconds, max_watts=physical.max_watts)
        self.errors = ErrorState(now)
        self.write_errors = ErrorState(now)
        self.last_published: Published | None = None
        self.write_retry_at = float("-inf")  # after a failed patch: not before this

    def reconfigure(
        self,
        *,
        policy: PublishPolicy,
        backoff: Backoff,
        physical: PhysicalRange,
        gap_seconds: float,
    ) -> None:
        self.policy, self.backoff, self.physical = policy, backoff, physical
        self.heartbeat = policy.heartbeat_for(self.node)
        self.integrator.gap_seconds = gap_seconds
        self.integrator.max_watts = physical.max_watts

    def new_source(self) -> None:
        """A different meter from now on: its counter is not continuous with the old one."""
        self.integrator.rebase()

    def observe(self, outcome: Reading | ReadError, mono: float, wall: float) -> Observation:
        if isinstance(outcome, Reading):
            try:
                outcome = self.physical.check(outcome)
            except ReadError as exc:
                outcome = exc
        if isinstance(outcome, ReadError):
            transition = self.errors.failed(outcome.kind, mono)
            return Observation(
                self.node,
                None,
                outcome,
                None,
                transition,
                None,
                None,
                self.backoff.delay(self.errors.failures),
                mono,
            )
        if outcome.sampled_at is not None:
            # The meter's own sample time (a Prometheus sample): integrate and publish at
            # that instant, so that an old sample is published as old.
            age = max(0.0, wall - outcome.sampled_at)
            sample_mono, wall = mono - age, wall - age
        else:
            sample_mono = mono
        step = self.integrator.update(sample_mono, outcome)
        transition = self.errors.succeeded(mono)
        decision = decide(self.last_published, outcome.watts, mono, self.policy, self.heartbeat)
        if decision.publish and mono < self.write_retry_at:
            decision = PublishDecision(False, "write-backoff")
        publish = None
        if decision.publish:
            publish = power_annotations(outcome.watts, wall, outcome.source_label)
        return Observation(
            self.node,
            outcome,
            None,
            step,
            transition,
            publish,
            decision.reason,
            self.backoff.delay(0),
            mono,
        )

    def published(self, watts: float, mono: float) -> Transition | None:
        self.last_published = Published(watts, mono)
        self.write_retry_at = float("-inf")
        self.heartbeat = self.policy.draw_heartbeat(self._rng.random())
        return self.write_errors.succeeded(mono)

    def publish_failed(self, mono: float) -> Transition | None:
        """A patch failed: retry after a jittered backoff, so that a thousand monitors
        neither hammer a struggling API server nor all return at the same instant."""
        transition = self.write_errors.failed("http", mono)
        delay = self.backoff.delay(self.write_errors.failures)
        self.write_retry_at = mono + delay * (0.5 + self._rng.random())
        return transition


class Reporter:
    """Metrics for every observation; a log line only when a state changes."""

    def __init__(self, metrics: Metrics, log: Any, *, quiet_ready: bool = False) -> None:
        self.metrics = metrics
        self.log = log
        self.quiet_ready = quiet_ready  # model mode: no "ready" line for each of 1,000 nodes

    def observed(self, obs: Observation, source: str, describe: str, wall: float) -> None:
        m = self.metrics
        node = obs.node
        if obs.reading is not None:
            m.power_watts.labels(node, source).set(obs.reading.watts)
            m.last_success.labels(node).set(wall)
            m.source_up.labels(node).set(1)
            if obs.step is not None:
                m.integration_steps.labels(node, obs.step.kind).inc()
                if obs.step.delta_joules > 0:
                    m.energy_joules.labels(node, source).inc(obs.step.delta_joules)
        elif obs.error is not None:
            m.read_errors.labels(node, source, obs.error.kind).inc()
            m.source_up.labels(node).set(0)
        t = obs.transition
        if t is None:
            return
        if t.new is not None:
            assert obs.error is not None
            self.log.error(
                "power read failing",
                node=node,
                source=describe,
                kind=t.new,
                previous=t.old or "ok",
                error=obs.error.message,
                next_poll_s=round(obs.next_delay, 3),
            )
        elif t.old is not None:
            self.log.info(
                "power read recovered",
                node=node,
                source=describe,
                was=t.old,
                failed_polls=t.failures,
                down_s=round(max(0.0, obs.at - t.since), 3),
            )
        else:
            assert obs.reading is not None
            emit = self.log.debug if self.quiet_ready else self.log.info
            emit("power source ready", node=node, source=describe, watts=obs.reading.watts)

    def write_result(
        self, node: str, reason: str, transition: Transition | None, error: BaseException | None
    ) -> None:
        self.metrics.annotation_writes.labels(reason, "error" if error else "ok").inc()
        if transition is None:
            return
        if transition.new is not None:
            self.log.error(
                "annotation write failing",
                node=node,
                error=f"{type(error).__name__}: {error}" if error else "",
            )
        elif transition.old is not None:
            self.log.info(
                "annotation write recovered", node=node, failed_writes=transition.failures
            )
