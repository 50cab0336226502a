"""RAPL over a fake powercap tree (wraparound) and NVML over a fake backend."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from energysched_bench.power import CtypesNvml, rapl_zones
from energysched_monitor.energy import EnergyIntegrator
from energysched_monitor.nvml import NvmlSource
from energysched_monitor.rapl import RaplSource
from energysched_monitor.rapl_nvml import SumSource
from energysched_monitor.readings import ReadError, Reading

from .conftest import Clock

RANGE_UJ = 262_143_328_850


def zone(root: Path, name: str, label: str, energy_uj: int, range_uj: int = RANGE_UJ) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{range_uj}\n")
    return path


def set_energy(path: Path, energy_uj: int) -> None:
    (path / "energy_uj").write_text(f"{energy_uj}\n")


def sleeper(clock: Clock) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    return sleep


async def no_sleep(_: float) -> None:
    return None


async def test_rapl_power_from_counter_difference_with_wraparound(tmp_path: Path) -> None:
    clock = Clock(0.0)
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", RANGE_UJ - 10_000_000)  # 10 J below wrap
    core = zone(tmp_path / "intel-rapl:0", "intel-rapl:0:0", "core", 0)  # ignored: in package
    dram = zone(tmp_path / "intel-rapl:0", "intel-rapl:0:1", "dram", 1_000_000)
    source = RaplSource(tmp_path, clock=clock, sleep=sleeper(clock))

    first = await source.read()  # primes: two samples 0.25 s apart, no energy between
    assert first.estimate and first.source == "rapl" and first.watts == 0.0

    clock.advance(1.0)
    set_energy(pkg, 30_000_000)  # wrapped: 10 J to the top, then 30 J
    set_energy(dram, 6_000_000)  # +5 J
    set_energy(core, 999_999_999)  # must not be added (double counting)
    reading = await source.read()
    assert reading.watts == pytest.approx(45.0)
    assert reading.counter_range_joules is None  # already unwrapped: monotonic

    integ = EnergyIntegrator(gap_seconds=15)
    integ.update(0.25, first)
    step = integ.update(1.25, reading)
    assert step.kind == "counter" and step.delta_joules == pytest.approx(45.0)
    assert "package-0" in source.describe and "dram" in source.describe


async def test_rapl_offset_for_the_rest_of_the_box(tmp_path: Path) -> None:
    clock = Clock(0.0)
    pkg = zone(tmp_path, "intel-rapl:0", "package-0", 0)
    source = RaplSource(tmp_path, offset_watts=20.0, clock=clock, sleep=sleeper(clock))
    await source.read()
    clock.advance(2.0)
    set_energy(pkg, 20_000_000)
    reading = await source.read()
    assert reading.watts == pytest.approx(30.0)
    assert reading.energy_joules == pytest.approx(20.0 + 20.0 * 2.25)


def test_psys_is_preferred(tmp_path: Path) -> None:
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    zone(tmp_path, "intel-rapl:1", "psys", 0)
    assert [z.name for z in rapl_zones(tmp_path, platform=True)] == ["psys"]


async def test_rapl_missing_or_unreadable(tmp_path: Path) -> None:
    with pytest.raises(ReadError) as info:
        await RaplSource(tmp_path / "nope").read()
    assert info.value.kind == "unsupported"
    zone(tmp_path, "intel-rapl:0", "package-0", 0)
    (tmp_path / "intel-rapl:0" / "energy_uj").write_text("garbage\n")
    with pytest.raises(ReadError) as info:
        await RaplSource(tmp_path, prime_seconds=0.0, sleep=no_sleep).read()
    assert info.value.kind == "malformed"
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReadError, match="no RAPL package or psys zone"):
        await RaplSource(empty).read()


class FakeNvml:
    def __init__(self, power_mw: list[int], energy_mj: list[int | None]) -> None:
        self.power = power_mw
        self.energy = energy_mj

    def device_count(self) -> int:
        return len(self.power)

    def power_mw(self, index: int) -> int:
        return self.power[index]

    def energy_mj(self, index: int) -> int | None:
        return self.energy[index]


async def test_nvml_sums_gpus_and_their_counters() -> None:
    backend = FakeNvml([120_000, 30_500], [1_000_000, 5_000])
    source = NvmlSource(backend=lambda: backend)
    first = await source.read()
    assert first.watts == pytest.approx(150.5) and first.estimate
    assert first.energy_joules == 0.0
    backend.energy = [1_600_000, 5_500]
    assert (await source.read()).energy_joules == pytest.approx(600.5)
    backend.energy = [100_000, 6_000]  # driver reloaded on GPU 0: its counter reset
    assert (await source.read()).energy_joules == pytest.approx(600.5 + 100 + 0.5)


async def test_nvml_without_energy_counter_and_selected_gpus() -> None:
    backend = FakeNvml([60_000, 99_000], [None, 1])  # a GTX 1060 has no energy counter
    reading = await NvmlSource(gpus=[0], backend=lambda: backend).read()
    assert reading.watts == 60.0 and reading.energy_joules is None


async def test_nvml_unavailable() -> None:
    with pytest.raises(ReadError) as info:
        await NvmlSource(backend=lambda: CtypesNvml("libdefinitely-not-nvml.so")).read()
    assert info.value.kind == "unsupported"


class Fixed:
    def __init__(self, *readings: Reading) -> None:
        self.readings = list(readings)

    @property
    def kind(self) -> str:
        return "rapl"

    @property
    def describe(self) -> str:
        return "fixed"

    async def read(self) -> Reading:
        return self.readings.pop(0)

    async def close(self) -> None:
        return None


async def test_sum_source_adds_parts() -> None:
    cpu = Fixed(Reading(30, "rapl", True, 100.0), Reading(30, "rapl", True, 130.0))
    gpu = Fixed(Reading(70, "nvml", True, 5.0), Reading(70, "nvml", True, 75.0))
    both = SumSource("rapl+nvml", [cpu, gpu])  # type: ignore[list-item]
    first, second = await both.read(), await both.read()
    assert first.watts == 100 and first.source_label == "rapl+nvml; software-estimate"
    assert (second.energy_joules or 0) - (first.energy_joules or 0) == pytest.approx(100.0)
