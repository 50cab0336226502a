"""GPU power through NVML (libnvidia-ml, loaded with ctypes): a software estimate.

The library binding is the power-reading core's (:class:`energysched_bench.power.CtypesNvml`).
``nvmlDeviceGetTotalEnergyConsumption`` exists on Volta and later; older GPUs such as a
GTX 1060 have no energy counter, and the integrator then falls back to the trapezoid.
The backend is a Protocol so that tests need no GPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated, Final

from pydantic import Field

from energysched_bench.power import CtypesNvml, MonotonicCounter, NvmlBackend, ReadError
from energysched_monitor.readings import PowerSource, Reading, SourceKind
from energysched_monitor.source_interface import BuildContext, KindFields, SourcePlugin, SourceSpec


class NvmlSource:
    def __init__(
        self,
        *,
        gpus: Sequence[int] | None = None,
        backend: Callable[[], NvmlBackend] = CtypesNvml,
    ) -> None:
        self.gpus = tuple(gpus) if gpus is not None else None
        self._factory = backend
        self._backend: NvmlBackend | None = None
        self._counters: dict[int, MonotonicCounter] = {}

    @property
    def kind(self) -> SourceKind:
        return "nvml"

    @property
    def describe(self) -> str:
        return f"nvml gpus={list(self.gpus) if self.gpus is not None else 'all'}"

    async def close(self) -> None:
        return None

    def _read_sync(self) -> Reading:
        if self._backend is None:
            self._backend = self._factory()
        backend = self._backend
        indices = self.gpus if self.gpus is not None else tuple(range(backend.device_count()))
        if not indices:
            raise ReadError("unsupported", "NVML reports no GPU")
        watts = 0.0
        energy: float | None = 0.0
        for index in indices:
            watts += backend.power_mw(index) / 1000.0
            mj = backend.energy_mj(index)
            if mj is None or energy is None:
                energy = None
                continue
            counter = self._counters.setdefault(index, MonotonicCounter())
            energy += counter.advance(mj / 1000.0)
        return Reading(watts, "nvml", estimate=True, energy_joules=energy)

    async def read(self) -> Reading:
        return await asyncio.to_thread(self._read_sync)


# -- the kind ``nvml`` -----------------------------------------------------------------


class NvmlFields(KindFields):
    gpus: list[Annotated[int, Field(ge=0)]] | None = None  # None: every GPU


def _build(spec: SourceSpec, fields: NvmlFields, ctx: BuildContext) -> PowerSource:
    return NvmlSource(gpus=fields.gpus)


PLUGIN: Final = SourcePlugin("nvml", NvmlFields, _build, refuse_keys_elsewhere=False)
