"""Cumulative energy per node from device counters or, failing that, power samples (pure).

Rules (the issue's section 3):

* Device counters come first: they cover the time between polls exactly, including
  gaps when the device was unreachable.
* A counter that went down was reset (a rebooted plug): the new value is the energy
  since the reset, so it is the delta. Never negative, never the old total again.
* A counter with a known range (RAPL ``max_energy_range_uj``) that went down wrapped:
  the delta is ``range - previous + current``.
* Without counters: the trapezoid over consecutive power samples, but only across
  gaps no longer than ``gap_seconds`` (a few poll intervals); a longer gap adds
  nothing rather than inventing energy for a time nobody measured.
* A counter step larger than the device's maximum power could produce in the elapsed
  time is a glitch; that step falls back to the trapezoid rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from energysched_monitor.readings import Reading

StepKind = Literal["first", "counter", "reset", "wrap", "trapezoid", "gap", "implausible"]
CounterEvent = Literal["counter", "reset", "wrap"]


def counter_delta(
    previous: float, current: float, counter_range: float | None
) -> tuple[float, CounterEvent]:
    """Energy between two counter values: a rise, a wrap (range known) or a reset."""
    if current >= previous:
        return current - previous, "counter"
    if counter_range is not None and counter_range > 0:
        return counter_range - previous + current, "wrap"
    return current, "reset"


class MonotonicCounter:
    """Turns a wrapping or resetting raw counter into a never-decreasing total."""

    def __init__(self, counter_range: float | None = None) -> None:
        self.counter_range = counter_range
        self.total = 0.0
        self._last: float | None = None
        self.last_event: CounterEvent | None = None

    def advance(self, raw: float) -> float:
        if self._last is not None:
            delta, self.last_event = counter_delta(self._last, raw, self.counter_range)
            self.total += delta
        self._last = raw
        return self.total


@dataclass(frozen=True, slots=True)
class Step:
    """What one sample added to the node's total, and by which rule."""

    delta_joules: float
    kind: StepKind


@dataclass(frozen=True, slots=True)
class _Sample:
    t: float
    watts: float
    counter: float | None
    counter_range: float | None


class EnergyIntegrator:
    """The cumulative joules of one node. ``t`` is a monotonic clock in seconds."""

    def __init__(
        self,
        gap_seconds: float,
        max_watts: float | None = None,
        counter_slack_joules: float = 60.0,  # one Gen1 watt-minute: its counter resolution
    ) -> None:
        if gap_seconds <= 0:
            raise ValueError("gap_seconds must be positive")
        self.gap_seconds = gap_seconds
        self.max_watts = max_watts
        self.counter_slack_joules = counter_slack_joules
        self.total_joules = 0.0
        self._last: _Sample | None = None

    def rebase(self) -> None:
        """Forget the previous sample (a new source), keep the total."""
        self._last = None

    def update(self, t: float, reading: Reading) -> Step:
        sample = _Sample(t, reading.watts, reading.energy_joules, reading.counter_range_joules)
        last, self._last = self._last, sample
        if last is None:
            return Step(0.0, "first")
        dt = t - last.t
        if dt <= 0:
            return Step(0.0, "gap")
        step = self._from_counters(last, sample, dt)
        if step is None or step.kind == "implausible":
            fallback = self._trapezoid(last, sample, dt)
            step = fallback if step is None else Step(fallback.delta_joules, "implausible")
        self.total_joules += step.delta_joules
        return step

    def _from_counters(self, last: _Sample, now: _Sample, dt: float) -> Step | None:
        if last.counter is None or now.counter is None:
            return None
        delta, event = counter_delta(last.counter, now.counter, now.counter_range)
        if self.max_watts is not None:
            ceiling = self.max_watts * dt * 1.1 + self.counter_slack_joules
            if delta > ceiling:
                return Step(0.0, "implausible")
        return Step(delta, event)

    def _trapezoid(self, last: _Sample, now: _Sample, dt: float) -> Step:
        if dt > self.gap_seconds:
            return Step(0.0, "gap")
        return Step((last.watts + now.watts) / 2.0 * dt, "trapezoid")
