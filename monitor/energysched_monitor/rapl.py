"""RAPL through the Linux powercap tree: a software estimate for nodes without a plug.

The zones and their unwrapped counters are the power-reading core's
(:func:`energysched_bench.power.rapl_zones` with ``platform=True``: ``psys`` if the CPU
has one, otherwise every ``package-*`` plus its ``dram``; ``RaplMeter``).
This source turns two readings into watts. RAPL does not see the power supply, disks,
fans or the GPU, so readings are marked as estimates and an operator may add a constant
``offsetWatts`` for the rest of the box. Since CVE-2020-8694 ``energy_uj`` is readable
by root only: see the README.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Final

from pydantic import Field

from energysched_bench.power import POWERCAP_ROOT, RaplMeter, ReadError, rapl_zones
from energysched_monitor.readings import PowerSource, Reading, SourceKind
from energysched_monitor.source_interface import (
    BuildContext,
    KindFields,
    NotInAnnotation,
    SourcePlugin,
    SourceSpec,
)


class RaplSource:
    """Power from the difference of two unwrapped energy readings."""

    def __init__(
        self,
        root: Path = POWERCAP_ROOT,
        *,
        offset_watts: float = 0.0,
        prime_seconds: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.root = root
        self.offset_watts = offset_watts
        self.prime_seconds = prime_seconds
        self._clock = clock
        self._sleep = sleep
        self._meter: RaplMeter | None = None
        self._start: float | None = None
        self._last: tuple[float, float] | None = None  # (t, joules)

    @property
    def kind(self) -> SourceKind:
        return "rapl"

    @property
    def describe(self) -> str:
        zones = ",".join(z.name for z in self._meter.zones) if self._meter else "?"
        return f"rapl {self.root} [{zones}]"

    async def close(self) -> None:
        return None

    def _sample(self) -> tuple[float, float]:
        if self._meter is None:
            self._meter = RaplMeter(rapl_zones(self.root, platform=True))
        return self._clock(), self._meter.joules()

    async def read(self) -> Reading:
        try:
            if self._last is None:
                self._last = self._sample()
                self._start = self._last[0]
                await self._sleep(self.prime_seconds)
            t0, j0 = self._last
            t1, j1 = self._sample()
        except ReadError:
            self._meter, self._last = None, None  # rediscover next time
            raise
        self._last = (t1, j1)
        if t1 <= t0:
            raise ReadError("malformed", "RAPL samples without elapsed time")
        watts = (j1 - j0) / (t1 - t0) + self.offset_watts
        assert self._start is not None
        energy = j1 + self.offset_watts * (t1 - self._start)
        return Reading(watts, "rapl", estimate=True, energy_joules=energy)


# -- the kind ``rapl`` -----------------------------------------------------------------


class RaplFields(KindFields):
    offset_watts: Annotated[float, Field(ge=0)] = 0.0  # the rest of the box, a constant
    powercap_root: Annotated[str, Field(min_length=1), NotInAnnotation] = str(POWERCAP_ROOT)


def rapl_source(fields: RaplFields) -> RaplSource:
    return RaplSource(Path(fields.powercap_root), offset_watts=fields.offset_watts)


def _build(spec: SourceSpec, fields: RaplFields, ctx: BuildContext) -> PowerSource:
    return rapl_source(fields)


PLUGIN: Final = SourcePlugin("rapl", RaplFields, _build, refuse_keys_elsewhere=False)
