"""Power sources: RAPL wraparound on a fake powercap tree, sampling, Shelly parsing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from energysched_bench.power import (
    RaplSource,
    SampledSource,
    ShellySource,
    choose_source,
    counter_delta,
    integrate,
    rapl_zones,
    shelly_watts_from,
)

pytestmark = pytest.mark.unit

MAX = 262_143_328_850  # a typical max_energy_range_uj


def _zone(root: Path, name: str, label: str, energy: int, max_range: int = MAX) -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "name").write_text(label + "\n")
    (path / "energy_uj").write_text(f"{energy}\n")
    (path / "max_energy_range_uj").write_text(f"{max_range}\n")
    return path


def test_counter_delta() -> None:
    assert counter_delta(100, 250, 1000) == 150
    assert counter_delta(900, 100, 1000) == 200  # wrapped once
    assert counter_delta(5, 5, 1000) == 0


def test_rapl_zones_only_packages(tmp_path: Path) -> None:
    _zone(tmp_path, "intel-rapl:0", "package-0", 1)
    _zone(tmp_path, "intel-rapl:0:0", "core", 1)
    _zone(tmp_path, "intel-rapl:0:1", "dram", 1)
    _zone(tmp_path, "intel-rapl:1", "psys", 1)
    _zone(tmp_path, "intel-rapl:2", "package-1", 1)
    assert [z.name for z in rapl_zones(tmp_path)] == ["package-0", "package-1"]
    assert rapl_zones(tmp_path / "absent") == []


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
    with pytest.raises(ValueError, match="no readable RAPL"):
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

    source = SampledSource("monitor", read, interval=0.002)
    source.start()
    # Wait for samples, not for a fixed time: a busy machine may delay the thread.
    deadline = time.monotonic() + 10
    while len(reads) < 20 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    reading = source.stop()
    assert reading is not None and 5.0 <= reading.watts <= 15.0
    assert reading.joules == pytest.approx(reading.watts * reading.seconds)


def test_shelly_documents() -> None:
    assert shelly_watts_from({"meters": [{"power": 12.5, "total": 300}]}) == 12.5
    assert shelly_watts_from({"id": 0, "apower": 7.25, "aenergy": {"total": 1.5}}) == 7.25
    assert shelly_watts_from({"meters": []}) is None
    assert shelly_watts_from({"apower": "n/a"}) is None


class _Plug(BaseHTTPRequestHandler):
    routes: dict[str, object] = {}

    def do_GET(self) -> None:
        body = self.routes.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def plug() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Plug)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_shelly_gen1_and_gen3_metering_over_http(plug: str) -> None:
    _Plug.routes = {"/shelly": {"type": "SHPLG-S"}, "/status": {"meters": [{"power": 42.0}]}}
    gen1 = ShellySource(plug)
    assert gen1._read_plug() == 42.0 and gen1.gen == 1
    # A metering-only Gen3 device: no switch:0, so Switch.GetStatus is 404 -> PM1.GetStatus.
    _Plug.routes = {"/shelly": {"gen": 3}, "/rpc/PM1.GetStatus?id=0": {"apower": 8.5}}
    gen3 = ShellySource(plug)
    assert gen3._read_plug() == 8.5 and gen3.gen == 3
