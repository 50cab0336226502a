"""What a power source returns, how it fails, and the physical-range check (pure).

Every source (Shelly plug, RAPL, NVML, the model) answers :meth:`PowerSource.read`
with one :class:`Reading` or raises one :class:`ReadError` whose ``kind`` is the
label of the ``read_errors_total`` metric and the state the error log tracks
(:class:`ReadError` is the power-reading core's, :mod:`energysched_bench.power`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

# One error vocabulary for every meter, the benchmark's and the monitor's: the power-reading
# core defines it, the monitor's modules take it from here.
from energysched_bench.power import ERROR_KINDS, ErrorKind, ReadError, excerpt

__all__ = [
    "ERROR_KINDS",
    "ErrorKind",
    "PhysicalRange",
    "PowerSource",
    "ReadError",
    "Reading",
    "SourceKind",
    "excerpt",
]

#: A power-source kind's name (``shelly``, ``rapl``, ...): the names are the registry's
#: (:mod:`energysched_monitor.source_registry`), so that a kind is one module and one line.
SourceKind = str


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a node's power draw.

    ``energy_joules`` is the device's own cumulative counter converted to joules
    (None if the source has none); ``counter_range_joules`` is the value at which
    that counter wraps to zero (RAPL, NVML), or None if a decrease means a reset
    (a rebooted plug). ``uptime_seconds`` is the device's own time since boot (a plug's
    counter restarts at boot: a short uptime reveals a reboot the counter may hide), or
    since the counter was last reset (a BMC's ``SensorResetTime``).
    ``counter_resolution_joules`` is the counter's step where it is coarse (a BMC's kWh
    counter moves in watt-hours): a step that large is never taken for a glitch.
    ``sampled_at`` is the wall time the meter itself gives the sample (a Prometheus
    sample's timestamp), when that is not the time of the read; the published timestamp
    is then the sample's, so a stale sample looks stale. ``simulated``: the power model's
    figure (published as such), not a meter's.
    """

    watts: float
    source: SourceKind
    estimate: bool = False  # a software estimate, not wall power
    energy_joules: float | None = None
    counter_range_joules: float | None = None
    uptime_seconds: float | None = None
    counter_resolution_joules: float | None = None
    sampled_at: float | None = None
    simulated: bool = False  # a model's figure, not a meter's
    detail: Mapping[str, str | int | float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def source_label(self) -> str:
        """The value of the ``power-source`` annotation: estimates say so."""
        if self.simulated:
            return f"{self.source}; simulated"
        return f"{self.source}; software-estimate" if self.estimate else self.source


@dataclass(frozen=True, slots=True)
class PhysicalRange:
    """The watts a device can physically report; anything else is a broken reading.

    Small negative values down to ``-noise_watts`` are meter noise at idle and read
    as 0 W; everything below is rejected (a server is not a generator).
    """

    min_watts: float = 0.0
    max_watts: float = 3680.0  # 16 A at 230 V: the most a Schuko plug can carry
    noise_watts: float = 0.5

    def check(self, reading: Reading) -> Reading:
        """The reading itself (noise clamped), or ReadError("out_of_range")."""
        w = reading.watts
        if not math.isfinite(w):
            raise ReadError("malformed", f"power is not a finite number: {w!r}")
        if self.min_watts - self.noise_watts <= w < self.min_watts:
            w = self.min_watts
        if not self.min_watts <= w <= self.max_watts:
            raise ReadError(
                "out_of_range",
                f"power {w!r} W outside the physical range [{self.min_watts}, {self.max_watts}] W",
            )
        e = reading.energy_joules
        if e is not None and (not math.isfinite(e) or e < 0):
            raise ReadError("out_of_range", f"energy counter {e!r} J is negative or not finite")
        if w == reading.watts:
            return reading
        return dataclasses.replace(reading, watts=w)


class PowerSource(Protocol):
    """A node's power meter. ``read`` returns promptly: sources enforce their timeout."""

    @property
    def kind(self) -> SourceKind: ...

    @property
    def describe(self) -> str:
        """Where readings come from, for logs (an address, a path); never a secret."""
        ...

    async def read(self) -> Reading: ...

    async def close(self) -> None: ...
