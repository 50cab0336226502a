"""The kind ``rapl+nvml``: RAPL for the CPU and NVML for the GPU of one box, added up.

Both are software estimates (see :mod:`energysched_monitor.rapl` and
:mod:`energysched_monitor.nvml`); the sum keeps one counter per part, so that one part
wrapping or restarting does not look like the box's energy going backwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Final

from energysched_bench.power import MonotonicCounter
from energysched_monitor.nvml import NvmlFields, NvmlSource
from energysched_monitor.rapl import RaplFields, rapl_source
from energysched_monitor.readings import PowerSource, Reading, SourceKind
from energysched_monitor.source_interface import BuildContext, SourcePlugin, SourceSpec


class SumSource:
    """Several software meters of one box added up (RAPL for the CPU, NVML for the GPU)."""

    def __init__(self, kind: SourceKind, parts: Sequence[PowerSource]) -> None:
        self._kind = kind
        self.parts = tuple(parts)
        self._counters = [MonotonicCounter() for _ in self.parts]

    @property
    def kind(self) -> SourceKind:
        return self._kind

    @property
    def describe(self) -> str:
        return " + ".join(p.describe for p in self.parts)

    async def close(self) -> None:
        for part in self.parts:
            await part.close()

    async def read(self) -> Reading:
        readings = await asyncio.gather(*(p.read() for p in self.parts))
        energy: float | None = 0.0
        for counter, reading in zip(self._counters, readings, strict=True):
            if reading.energy_joules is None or energy is None:
                energy = None
                continue
            energy += counter.advance(reading.energy_joules)
        return Reading(
            sum(r.watts for r in readings),
            self._kind,
            estimate=any(r.estimate for r in readings),
            energy_joules=energy,
        )


class RaplNvmlFields(RaplFields, NvmlFields):
    """The keys of both: offsetWatts, powercapRoot, gpus."""


def _build(spec: SourceSpec, fields: RaplNvmlFields, ctx: BuildContext) -> PowerSource:
    return SumSource("rapl+nvml", [rapl_source(fields), NvmlSource(gpus=fields.gpus)])


PLUGIN: Final = SourcePlugin("rapl+nvml", RaplNvmlFields, _build, refuse_keys_elsewhere=False)
