"""What a power source returns, how it fails, and the physical-range check (pure).

Every source (Shelly plug, RAPL, NVML, the model) answers :meth:`PowerSource.read`
with one :class:`Reading` or raises one :class:`ReadError` whose ``kind`` is the
label of the ``read_errors_total`` metric and the state the error log tracks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal, Protocol

ErrorKind = Literal[
    "unreachable",  # connection refused, no route, DNS
    "timeout",  # the device accepted but did not answer in time (hung)
    "auth",  # 401: missing or wrong credentials
    "http",  # any other non-2xx answer
    "malformed",  # not JSON, or JSON without the documented fields
    "out_of_range",  # a value outside the device's physical range
    "unsupported",  # the device or host has no such meter (no RAPL, no NVML, gen 5)
    "config",  # nothing (valid) configured for this node, no profile for the model
]
ERROR_KINDS: Final[tuple[ErrorKind, ...]] = (
    "unreachable",
    "timeout",
    "auth",
    "http",
    "malformed",
    "out_of_range",
    "unsupported",
    "config",
)

SourceKind = Literal["shelly", "rapl", "nvml", "rapl+nvml", "model"]
SOURCE_KINDS: Final[tuple[SourceKind, ...]] = ("shelly", "rapl", "nvml", "rapl+nvml", "model")

#: Longest excerpt of an offending reply that goes into an error message.
EXCERPT_CHARS: Final = 200


def excerpt(value: object) -> str:
    """A short, single-line rendering of an offending value for a log line."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class ReadError(Exception):
    """A reading could not be taken; no annotation is written from it."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ReadError({self.kind!r}, {self.message!r})"


@dataclass(frozen=True, slots=True)
class Reading:
    """One sample of a node's power draw.

    ``energy_joules`` is the device's own cumulative counter converted to joules
    (None if the source has none); ``counter_range_joules`` is the value at which
    that counter wraps to zero (RAPL, NVML), or None if a decrease means a reset
    (a rebooted plug). ``uptime_seconds`` is the device's own time since boot (a plug's
    counter restarts at boot: a short uptime reveals a reboot the counter may hide).
    """

    watts: float
    source: SourceKind
    estimate: bool = False  # a software estimate, not wall power
    energy_joules: float | None = None
    counter_range_joules: float | None = None
    uptime_seconds: float | None = None
    detail: Mapping[str, str | int | float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def source_label(self) -> str:
        """The value of the ``power-source`` annotation: estimates say so."""
        if self.source == "model":
            return "model; simulated"
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
