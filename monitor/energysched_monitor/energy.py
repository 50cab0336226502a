"""Cumulative energy per node from device counters or, failing that, power samples (pure).

Rules (the issue's section 3):

* Device counters come first: they cover the time between polls exactly, including
  gaps when the device was unreachable.
* A device that rebooted restarted its counter at zero. Its uptime says so even when
  the counter did not go down (a reboot during an outage, a small old value): an
  uptime that grew less than the time between the two samples (by more than
  ``UPTIME_TOLERANCE_S``) is a reboot. The energy of the interval is then the new
  counter (energy since boot) plus the unmeasured time between the previous sample
  and the boot (``dt - uptime``) at the average of the two powers, if that time is
  no longer than ``gap_seconds``; else the new counter alone.
* A counter that went down without an uptime to say why was reset the same way: the
  new value is the energy since the reset; if the gap is short the trapezoid over the
  whole interval is the better floor, so the larger of the two counts. Never
  negative, never the old total again.
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
from typing import Final, Literal

from energysched_bench.power import counter_delta
from energysched_monitor.readings import Reading

StepKind = Literal["first", "counter", "reboot", "reset", "wrap", "trapezoid", "gap", "implausible"]
#: Slack between the device's uptime and the monitor's clock before a short uptime
#: means a reboot: uptimes are whole seconds (up to 1 s each side) plus request latency.
UPTIME_TOLERANCE_S: Final = 2.0
#: And the drift between the device's clock and ours over long gaps (an ESP32's crystal
#: is good to ~100 ppm; ten times that is still far from a reboot).
UPTIME_DRIFT: Final = 1e-3
#: Shelly uptimes are whole seconds, rounded down: on average the device has been up
#: half a second longer than it says, so that much less time went unmeasured.
UPTIME_RESOLUTION_S: Final = 1.0


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
    uptime: float | None
    resolution: float  # the counter's coarsest step, joules (0: fine-grained)


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
        sample = _Sample(
            t,
            reading.watts,
            reading.energy_joules,
            reading.counter_range_joules,
            reading.uptime_seconds,
            reading.counter_resolution_joules or 0.0,
        )
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
        step = self._reboot(last, now, dt)
        if step is None:
            delta, event = counter_delta(last.counter, now.counter, now.counter_range)
            step = Step(delta, event)
            if event == "reset" and dt <= self.gap_seconds:
                step = Step(max(delta, self._trapezoid(last, now, dt).delta_joules), event)
        if self.max_watts is not None:
            slack = max(self.counter_slack_joules, now.resolution)
            ceiling = self.max_watts * dt * 1.1 + slack
            if step.delta_joules > ceiling:
                return Step(0.0, "implausible")
        return step

    def _reboot(self, last: _Sample, now: _Sample, dt: float) -> Step | None:
        """The step across a reboot the uptime reveals, or None if the device stayed up."""
        if last.uptime is None or now.uptime is None or now.counter is None:
            return None
        if now.uptime + UPTIME_TOLERANCE_S + UPTIME_DRIFT * dt >= last.uptime + dt:
            return None
        # Booted ``uptime`` seconds ago: the counter covers that; before it, back to the
        # previous sample, nobody measured.
        unmeasured = max(0.0, dt - now.uptime - UPTIME_RESOLUTION_S / 2)
        if unmeasured > self.gap_seconds:
            return Step(now.counter, "reboot")
        return Step(now.counter + (last.watts + now.watts) / 2.0 * unmeasured, "reboot")

    def _trapezoid(self, last: _Sample, now: _Sample, dt: float) -> Step:
        if dt > self.gap_seconds:
            return Step(0.0, "gap")
        return Step((last.watts + now.watts) / 2.0 * dt, "trapezoid")
