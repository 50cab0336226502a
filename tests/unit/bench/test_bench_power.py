"""The power-reading core (counters, RAPL, Shelly replies) and the benchmark's sources."""

from __future__ import annotations

import ast
import asyncio
import itertools
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from energysched_bench import power
from energysched_bench.power import (
    DeviceInfo,
    MonotonicCounter,
    RaplMeter,
    RaplSource,
    ReadError,
    SampledSource,
    ShellySource,
    choose_source,
    counter_delta,
    integrate,
    parse_device_info,
    parse_gen1_status,
    parse_json,
    parse_rpc_meter,
    parse_rpc_status,
    parse_shelly_status,
    rapl_zones,
)
from energysched_lab.fake_shelly import FakeShelly

MAX = 262_143_328_850  # a typical max_energy_range_uj


def _zone(root: Path, name: str, label: str, energy: int, max_range: int = MAX) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


def test_the_core_needs_only_the_standard_library() -> None:
    """The benchmark image has numpy and this package, not energysched or aiohttp."""
    tree = ast.parse(Path(power.__file__).read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


@pytest.mark.parametrize(
    ("prev", "cur", "rng", "expected"),
    [
        (100.0, 160.0, None, (60.0, "counter")),
        (100.0, 100.0, None, (0.0, "counter")),
        (5000.0, 30.0, None, (30.0, "reset")),  # reboot: the new value is the delta
        (990.0, 10.0, 1000.0, (20.0, "wrap")),  # wrap: range - prev + cur
        (900.0, 100.0, 1000.0, (200.0, "wrap")),
    ],
)
def test_counter_delta(
    prev: float, cur: float, rng: float | None, expected: tuple[float, str]
) -> None:
    assert counter_delta(prev, cur, rng) == expected


def test_monotonic_counter_unwraps_and_survives_resets() -> None:
    c = MonotonicCounter(counter_range=1000.0)
    assert [c.advance(v) for v in (900.0, 950.0, 50.0, 60.0)] == [0.0, 50.0, 150.0, 160.0]
    assert c.last_event == "counter"
    r = MonotonicCounter()
    assert [r.advance(v) for v in (10.0, 20.0, 5.0)] == [0.0, 10.0, 15.0]
    assert r.last_event == "reset"


def test_rapl_zones_only_packages(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    _zone(tmp_path, "intel-rapl:0:0", "core", 1)
    _zone(tmp_path, "intel-rapl:0:1", "dram", 1)
    _zone(tmp_path, "intel-rapl:1", "psys", 1)
    _zone(tmp_path, "intel-rapl:2", "package-1", 1)
    assert [z.name for z in rapl_zones(tmp_path)] == ["package-0", "package-1"]
    # The monitor's estimate of the box: the platform zone when there is one ...
    assert [z.name for z in rapl_zones(tmp_path, platform=True)] == ["psys"]
    (tmp_path / "intel-rapl:1" / "name").write_text("not-psys\n")
    # ... else the packages and their DRAM (sysfs nests subzones in their package too).
    _zone(tmp_path / "intel-rapl:0", "intel-rapl:0:1", "dram", 1)
    assert [z.name for z in rapl_zones(tmp_path, platform=True)] == [
        "package-0",
        "package-0/dram",
        "package-1",
    ]
    with pytest.raises(ReadError, match="no powercap tree"):
        rapl_zones(tmp_path / "absent")


def test_rapl_unreadable_or_garbage(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReadError, match="no RAPL package zone") as info:
        rapl_zones(empty)
    assert info.value.kind == "unsupported"
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    (p0 / "energy_uj").write_text("garbage\n")
    with pytest.raises(ReadError) as info:
        rapl_zones(tmp_path)
    assert info.value.kind == "malformed" and "garbage" in info.value.message
    (p0 / "energy_uj").unlink()
    with pytest.raises(ReadError) as info:
        rapl_zones(tmp_path)
    assert info.value.kind == "unsupported"


def test_rapl_meter_unwraps_each_zone(tmp_path: Path) -> None:
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", MAX - 1_000_000)
    p1 = _zone(tmp_path, "intel-rapl:1", "package-1", 0)
    meter = RaplMeter(rapl_zones(tmp_path))
    assert meter.joules() == 0.0
    (p0 / "energy_uj").write_text("500000\n")  # wrapped: +1.5 J
    (p1 / "energy_uj").write_text("2000000\n")  # +2 J
    assert meter.joules() == pytest.approx(3.5)


def test_rapl_wraparound(tmp_path: Path) -> None:
    p0 = _zone(tmp_path, "intel-rapl:0", "package-0", MAX - 1_000_000)
    p1 = _zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000)
    now = [100.0]
    source = RaplSource(rapl_zones(tmp_path), interval=3600, clock=lambda: now[0])
    source.start()
    # package-0 wraps: 1 J up to the top, then 2.5 J after the wrap.
    (p0 / "energy_uj").write_text("2500000\n")
    (p1 / "energy_uj").write_text("8000000\n")
    source._accumulate()  # what the poller does between reads
    (p0 / "energy_uj").write_text("4500000\n")
    now[0] = 102.0
    reading = source.stop()
    assert reading is not None
    assert reading.joules == pytest.approx(1.0 + 2.5 + 2.0 + 3.0)
    assert reading.seconds == 2.0 and reading.watts == pytest.approx(4.25)
    assert source.scope == "cpu-package"


def test_rapl_detect_and_choose(tmp_path: Path) -> None:
    assert RaplSource.detect(tmp_path) is None
    with pytest.raises(ValueError, match="no readable RAPL package zone: no RAPL package"):
        choose_source("rapl", powercap_root=tmp_path)
    assert choose_source("auto", powercap_root=tmp_path) is None
    _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    source = choose_source("auto", powercap_root=tmp_path)
    assert isinstance(source, RaplSource)
    assert choose_source("none", powercap_root=tmp_path) is None
    assert isinstance(
        choose_source("auto", shelly_url="http://plug", powercap_root=tmp_path), ShellySource
    )
    assert choose_source("monitor", monitor=lambda: 3.0) is not None
    with pytest.raises(ValueError, match="needs a reading hook"):
        choose_source("monitor")
    with pytest.raises(ValueError, match="unknown power source"):
        choose_source("nvml")


def test_integrate_does_not_bridge_gaps() -> None:
    samples = [(0.0, 10.0), (1.0, 10.0), (2.0, 20.0), (10.0, 20.0), (11.0, 20.0)]
    joules, covered = integrate(samples, max_gap=2.0)
    assert covered == 3.0
    assert joules == pytest.approx(10 + 15 + 20)


def test_sampled_source_with_no_readings_measures_nothing() -> None:
    source = SampledSource("monitor", lambda: None, interval=0.005)
    source.start()
    threading.Event().wait(0.03)
    assert source.stop() is None

    def broken() -> float:
        raise OSError("plug unreachable")

    source = SampledSource("shelly", broken, interval=0.005)
    source.start()
    threading.Event().wait(0.03)
    assert source.stop() is None


def test_sampled_source_averages() -> None:
    reads: list[float] = []

    def read() -> float:
        reads.append(5.0 if len(reads) % 2 == 0 else 15.0)
        return reads[-1]

    # The source's own clock advances one millisecond a call: how late a busy machine
    # runs the polling thread cannot open gaps (> 4 intervals) that void the reading.
    ticks = itertools.count()
    source = SampledSource("monitor", read, interval=0.002, clock=lambda: next(ticks) * 0.001)
    source.start()
    # Wait for samples, not for a fixed time: a busy machine may delay the thread.
    deadline = time.monotonic() + 10
    while len(reads) < 20 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    reading = source.stop()
    assert reading is not None and 5.0 <= reading.watts <= 15.0
    assert reading.joules == pytest.approx(reading.watts * reading.seconds)


async def test_shelly_over_http_against_the_fake_plug() -> None:
    """The benchmark's urllib client with the core's parsers, against the project's fake."""
    async with FakeShelly(gen=1, password="pw", power=42.0, realtime=False) as gen1:
        src = ShellySource(gen1.url, auth=("admin", "pw"))
        assert await asyncio.to_thread(src._read_plug) == 42.0 and src.gen == 1
        anonymous = ShellySource(gen1.url)
        with pytest.raises(ReadError) as info:
            await asyncio.to_thread(anonymous._read_plug)
        assert info.value.kind == "auth"
    # A metering-only Gen3 device: pm1:0 instead of switch:0, found in Shelly.GetStatus.
    async with FakeShelly(gen=3, component="pm1", power=8.5, realtime=False) as gen3:
        src = ShellySource(gen3.url)
        assert await asyncio.to_thread(src._read_plug) == 8.5 and src.gen == 3
        gen3.set_garbage()
        with pytest.raises(ReadError) as info:
            await asyncio.to_thread(src._read_plug)
        assert info.value.kind == "malformed"


# -- Shelly replies (the core's parsers, the monitor's too) -----------------------------


def test_parse_device_info() -> None:
    assert parse_device_info({"type": "SHPLG-S", "mac": "A1", "auth": True}).gen == 1
    info = parse_device_info({"id": "shellyplugsg3-x", "gen": 3, "auth_en": True})
    assert (info.gen, info.device_id, info.auth_required) == (3, "shellyplugsg3-x", True)
    assert info.status_path == "/rpc/Shelly.GetStatus"
    cases: list[tuple[dict[str, Any], str]] = [
        ({"gen": 5, "id": "x"}, "unsupported"),
        ({"gen": "2", "id": "x"}, "malformed"),
        ({"gen": 2}, "malformed"),
        ({"hello": 1}, "malformed"),
    ]
    for bad, kind in cases:
        with pytest.raises(ReadError) as info_err:
            parse_device_info(bad)
        assert info_err.value.kind == kind


@pytest.mark.parametrize(
    "status",
    [
        {},
        {"meters": []},
        {"meters": [{"power": "12", "total": 1}]},
        {"meters": [{"power": True, "total": 1}]},
        {"meters": [{"power": 1.0}]},
        {"meters": [{"power": 1.0, "total": 1, "is_valid": False}]},
        {"meters": ["x"]},
        {"meters": [{"power": 10**400, "total": 1}]},  # float() would overflow
    ],
)
def test_gen1_malformed(status: dict[str, Any]) -> None:
    with pytest.raises(ReadError) as info:
        parse_gen1_status(status)
    assert info.value.kind == "malformed"


def test_gen1_reading_and_uptime() -> None:
    status = {"meters": [{"power": 1.5, "total": 3}], "uptime": 4242}
    reading = parse_gen1_status(status)
    assert (reading.watts, reading.energy_joules, reading.uptime_seconds) == (1.5, 180.0, 4242)
    assert parse_gen1_status({**status, "uptime": None}).uptime_seconds is None
    assert parse_gen1_status({**status, "uptime": 10**400}).uptime_seconds is None


@pytest.mark.parametrize(
    "status",
    [
        {"apower": 1.0},
        {"apower": 1.0, "aenergy": {}},
        {"apower": None, "aenergy": {"total": 1.0}},
        {"aenergy": {"total": 1.0}},
        {"apower": float("nan"), "aenergy": {"total": 1.0}},
    ],
)
def test_rpc_malformed(status: dict[str, Any]) -> None:
    with pytest.raises(ReadError) as info:
        parse_rpc_meter(status, "switch:0", 2)
    assert info.value.kind == "malformed"


def test_rpc_status_picks_the_meter_and_the_uptime() -> None:
    meter = {"apower": 5.0, "aenergy": {"total": 2.0}}
    reading = parse_rpc_status({"switch:0": meter, "sys": {"uptime": 77}}, "auto", 2)
    assert (reading.component, reading.watts, reading.energy_joules) == ("switch:0", 5.0, 7200.0)
    assert reading.uptime_seconds == 77
    reading = parse_rpc_status({"pm1:0": meter}, "auto", 3)
    assert reading.component == "pm1:0" and reading.uptime_seconds is None
    for bad_uptime in (-1, "12", True, float("inf")):
        reading = parse_rpc_status({"pm1:0": meter, "sys": {"uptime": bad_uptime}}, "pm1", 3)
        assert reading.uptime_seconds is None
    with pytest.raises(ReadError) as info:
        parse_rpc_status({"pm1:0": meter, "sys": {}}, "switch", 3)
    assert info.value.kind == "unsupported" and "pm1:0" in info.value.message
    with pytest.raises(ReadError) as info:
        parse_rpc_status({"switch:0": [1, 2]}, "auto", 2)
    assert info.value.kind == "malformed"


@pytest.mark.parametrize(
    "text", ["", "<html>502</html>", "[1, 2]", "1" * 5000, "[" * 100_000, '{"a": 1']
)
def test_parse_json_never_raises_anything_but_malformed(text: str) -> None:
    with pytest.raises(ReadError) as info:
        parse_json(text, "/status")
    assert info.value.kind == "malformed" and len(info.value.message) < 300


def test_parse_shelly_status_by_generation() -> None:
    gen1 = DeviceInfo(1, "SHPLG-S-A1", "SHPLG-S", False)
    assert parse_shelly_status(gen1, '{"meters": [{"power": 2, "total": 1}]}').watts == 2
    gen2 = DeviceInfo(2, "x", "", False)
    text = '{"switch:0": {"apower": 3, "aenergy": {"total": 0}}}'
    assert parse_shelly_status(gen2, text).watts == 3
