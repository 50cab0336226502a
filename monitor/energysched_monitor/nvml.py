"""GPU power through NVML (libnvidia-ml, loaded with ctypes): a software estimate.

``nvmlDeviceGetPowerUsage`` gives milliwatts, ``nvmlDeviceGetTotalEnergyConsumption``
(Volta and later) millijoules since the driver loaded; older GPUs such as a GTX 1060
have no energy counter, and the integrator then falls back to the trapezoid. The
backend is a Protocol so that tests need no GPU.
"""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Callable, Sequence
from typing import Protocol

from energysched_monitor.energy import MonotonicCounter
from energysched_monitor.readings import ReadError, Reading, SourceKind

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3


class NvmlBackend(Protocol):
    def device_count(self) -> int: ...

    def power_mw(self, index: int) -> int: ...

    def energy_mj(self, index: int) -> int | None:
        """None if the GPU has no energy counter."""
        ...


class CtypesNvml:
    """The real library. Construction raises ReadError("unsupported") without it."""

    def __init__(self, library: str = "libnvidia-ml.so.1") -> None:
        try:
            self._lib = ctypes.CDLL(library)
        except OSError as exc:
            raise ReadError("unsupported", f"NVML not available ({library}): {exc}") from None
        self._check(self._lib.nvmlInit_v2(), "nvmlInit_v2")
        self._handles: dict[int, ctypes.c_void_p] = {}

    @staticmethod
    def _check(code: int, what: str) -> None:
        if code != NVML_SUCCESS:
            raise ReadError("unsupported", f"{what} failed with NVML error {code}")

    def _handle(self, index: int) -> ctypes.c_void_p:
        if index not in self._handles:
            handle = ctypes.c_void_p()
            self._check(
                self._lib.nvmlDeviceGetHandleByIndex_v2(index, ctypes.byref(handle)),
                f"nvmlDeviceGetHandleByIndex_v2({index})",
            )
            self._handles[index] = handle
        return self._handles[index]

    def device_count(self) -> int:
        count = ctypes.c_uint()
        self._check(self._lib.nvmlDeviceGetCount_v2(ctypes.byref(count)), "nvmlDeviceGetCount_v2")
        return count.value

    def power_mw(self, index: int) -> int:
        value = ctypes.c_uint()
        code = self._lib.nvmlDeviceGetPowerUsage(self._handle(index), ctypes.byref(value))
        self._check(code, f"nvmlDeviceGetPowerUsage({index})")
        return value.value

    def energy_mj(self, index: int) -> int | None:
        value = ctypes.c_ulonglong()
        code = self._lib.nvmlDeviceGetTotalEnergyConsumption(
            self._handle(index), ctypes.byref(value)
        )
        if code == NVML_ERROR_NOT_SUPPORTED:
            return None
        self._check(code, f"nvmlDeviceGetTotalEnergyConsumption({index})")
        return value.value


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
