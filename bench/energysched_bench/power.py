"""Named power sources for the benchmark: energy over a run, or None.

* ``shelly``:  wall power from a Shelly plug (Gen1 ``/status``, Gen2+
  ``Switch.GetStatus`` / ``PM1.GetStatus``), sampled and integrated;
* ``monitor``: the node's ``current-watts`` annotation written by the monitor
  (itself from a plug), sampled through a hook the caller provides;
* ``rapl``:    the CPU package energy counters under /sys/class/powercap. This
  is a software fallback: it covers the CPU package only, not the wall, and
  the result says so (``scope: cpu-package``).

With no source, energy is *not measured* (None). Nothing here guesses.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

Scope = Literal["wall", "cpu-package"]

POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True, slots=True)
class EnergyReading:
    """Energy over an interval, and the average power."""

    joules: float
    seconds: float
    #: Fraction of the interval covered by samples (1.0 for counters).
    coverage: float = 1.0

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else 0.0


class PowerSource(ABC):
    """Measures energy between :meth:`start` and :meth:`stop`."""

    name: str
    scope: Scope

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> EnergyReading | None:
        """Energy since start, or None when it could not be measured."""

    def describe(self) -> str:
        return f"{self.name} ({self.scope})"


class _Poller:
    """Calls ``poll`` every ``interval`` seconds in a daemon thread until stopped."""

    def __init__(self, poll: Callable[[], None], interval: float) -> None:
        self._poll = poll
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="power-poll", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._poll()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


# --- RAPL -------------------------------------------------------------------------------


def counter_delta(previous: int, current: int, max_range: int) -> int:
    """Increase of a counter that wraps to 0 after ``max_range`` (at most one wrap)."""
    if current >= previous:
        return current - previous
    return max_range - previous + current


@dataclass(frozen=True, slots=True)
class RaplZone:
    path: Path
    name: str
    max_range: int

    def read(self) -> int:
        return int((self.path / "energy_uj").read_text().strip())


def rapl_zones(root: Path = POWERCAP_ROOT) -> list[RaplZone]:
    """Top-level package zones (``intel-rapl:N`` named ``package-N``), readable ones only.

    Subzones (core, uncore, dram) are parts of a package or separate and are not
    summed; ``psys`` would double-count the packages.
    """
    zones: list[RaplZone] = []
    if not root.is_dir():
        return zones
    for path in sorted(root.glob("intel-rapl:*")):
        if path.name.count(":") != 1:
            continue
        try:
            name = (path / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            zone = RaplZone(path, name, int((path / "max_energy_range_uj").read_text().strip()))
            zone.read()  # root-only on kernels with the CVE-2020-8694 fix
        except (OSError, ValueError):
            continue
        zones.append(zone)
    return zones


class RaplSource(PowerSource):
    """CPU package energy from the powercap counters (microjoules, wrapping)."""

    name = "rapl"
    scope: Scope = "cpu-package"

    def __init__(
        self,
        zones: list[RaplZone],
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not zones:
            raise ValueError("no readable RAPL package zone")
        self.zones = zones
        self._clock = clock
        self._last: list[int] = []
        self._microjoules = 0
        self._started = 0.0
        self._ok = True
        self._lock = threading.Lock()
        # Polled so that no counter wraps twice between two reads.
        self._poller = _Poller(self._accumulate, interval)

    @classmethod
    def detect(cls, root: Path = POWERCAP_ROOT) -> RaplSource | None:
        zones = rapl_zones(root)
        return cls(zones) if zones else None

    def _accumulate(self) -> None:
        with self._lock:
            try:
                now = [z.read() for z in self.zones]
            except (OSError, ValueError):
                self._ok = False
                return
            for zone, before, after in zip(self.zones, self._last, now, strict=True):
                self._microjoules += counter_delta(before, after, zone.max_range)
            self._last = now

    def start(self) -> None:
        self._last = [z.read() for z in self.zones]
        self._microjoules = 0
        self._ok = True
        self._started = self._clock()
        self._poller.start()

    def stop(self) -> EnergyReading | None:
        self._poller.stop()
        self._accumulate()
        seconds = self._clock() - self._started
        if not self._ok or seconds <= 0:
            return None
        return EnergyReading(self._microjoules / 1e6, seconds)


# --- sampled sources (Shelly, monitor) --------------------------------------------------


def integrate(samples: list[tuple[float, float]], max_gap: float) -> tuple[float, float]:
    """Trapezoid over (time, watts) samples: (joules, seconds covered).

    Segments longer than ``max_gap`` are not bridged: they count neither energy
    nor time, so the average stays a measured one.
    """
    joules = covered = 0.0
    for (t0, w0), (t1, w1) in itertools.pairwise(samples):
        dt = t1 - t0
        if 0 < dt <= max_gap:
            joules += (w0 + w1) / 2 * dt
            covered += dt
    return joules, covered


class SampledSource(PowerSource):
    """Polls a watts reading (None = no reading) and integrates it over the run."""

    def __init__(
        self,
        name: str,
        read_watts: Callable[[], float | None],
        *,
        scope: Scope = "wall",
        interval: float = 0.5,
        max_gap_intervals: float = 4.0,
        min_coverage: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.scope = scope
        self._read = read_watts
        self._interval = interval
        self._max_gap = interval * max_gap_intervals
        self._min_coverage = min_coverage
        self._clock = clock
        self._samples: list[tuple[float, float]] = []
        self._started = 0.0
        self._lock = threading.Lock()
        self._poller = _Poller(self.sample, interval)

    def sample(self) -> None:
        try:
            watts = self._read()
        except Exception:  # a failed poll is a missing sample, not a crash
            watts = None
        if watts is None or not watts >= 0:
            return
        with self._lock:
            self._samples.append((self._clock(), float(watts)))

    def start(self) -> None:
        with self._lock:
            self._samples = []
        self._started = self._clock()
        self.sample()
        self._poller.start()

    def stop(self) -> EnergyReading | None:
        self._poller.stop()
        self.sample()
        seconds = self._clock() - self._started
        with self._lock:
            samples = list(self._samples)
        joules, covered = integrate(samples, self._max_gap)
        if seconds <= 0 or covered <= 0 or covered / seconds < self._min_coverage:
            return None
        watts = joules / covered
        return EnergyReading(watts * seconds, seconds, coverage=min(1.0, covered / seconds))


def shelly_watts_from(status: Mapping[str, Any]) -> float | None:
    """Active power from a Shelly status document of any generation, or None."""
    meters = status.get("meters")
    if isinstance(meters, list) and meters and isinstance(meters[0], Mapping):
        power = meters[0].get("power")  # Gen1 /status
        return float(power) if isinstance(power, int | float) else None
    power = status.get("apower")  # Gen2+ Switch.GetStatus / PM1.GetStatus
    return float(power) if isinstance(power, int | float) else None


def _get_json(url: str, timeout: float, auth: tuple[str, str] | None) -> Any:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def shelly_status_url(base_url: str, gen: int) -> str:
    base = base_url.rstrip("/")
    return f"{base}/status" if gen == 1 else f"{base}/rpc/Switch.GetStatus?id=0"


class ShellySource(SampledSource):
    """Wall power of a Shelly plug, polled over HTTP.

    ``gen`` None asks ``/shelly`` (Gen1 has no ``gen`` field). Gen1 takes HTTP
    Basic auth; Gen2+ digest auth is not implemented (leave auth off on the
    plug, or use the monitor source).
    """

    def __init__(
        self,
        base_url: str,
        *,
        gen: int | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 2.0,
        interval: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._timeout = timeout
        self.gen = gen
        self._url = ""
        super().__init__("shelly", self._read_plug, scope="wall", interval=interval)

    def _resolve(self) -> str:
        if not self._url:
            if self.gen is None:
                info = _get_json(f"{self.base_url}/shelly", self._timeout, self._auth)
                gen = info.get("gen", 1) if isinstance(info, Mapping) else 1
                self.gen = int(gen) if isinstance(gen, int) else 1
            self._url = shelly_status_url(self.base_url, self.gen)
        return self._url

    def _read_plug(self) -> float | None:
        url = self._resolve()
        try:
            status = _get_json(url, self._timeout, self._auth)
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or "Switch.GetStatus" not in url:
                raise
            # Metering-only Gen3 devices have pm1:0 instead of switch:0.
            self._url = f"{self.base_url}/rpc/PM1.GetStatus?id=0"
            status = _get_json(self._url, self._timeout, self._auth)
        return shelly_watts_from(status) if isinstance(status, Mapping) else None


class MonitorSource(SampledSource):
    """The node's live watts as written by the monitor; the caller provides the reading.

    ``read_watts`` returns the current ``energy.thesis.io/current-watts`` of the
    node (None when absent or stale); the cluster side wires it.
    """

    def __init__(self, read_watts: Callable[[], float | None], *, interval: float = 1.0) -> None:
        super().__init__("monitor", read_watts, scope="wall", interval=interval)


def choose_source(
    kind: str,
    *,
    shelly_url: str | None = None,
    shelly_auth: tuple[str, str] | None = None,
    monitor: Callable[[], float | None] | None = None,
    powercap_root: Path = POWERCAP_ROOT,
) -> PowerSource | None:
    """The source named by ``kind`` (auto, none, shelly, monitor, rapl), or None.

    ``auto`` prefers wall power (shelly, then monitor) over RAPL. An explicitly
    named source that is unavailable raises ValueError with the reason.
    """
    if kind == "none":
        return None
    if kind in ("shelly", "auto") and shelly_url:
        return ShellySource(shelly_url, auth=shelly_auth)
    if kind == "shelly":
        raise ValueError("power source shelly needs --shelly-url")
    if kind in ("monitor", "auto") and monitor is not None:
        return MonitorSource(monitor)
    if kind == "monitor":
        raise ValueError("power source monitor needs a reading hook (wired by the cluster side)")
    if kind in ("rapl", "auto"):
        rapl = RaplSource.detect(powercap_root)
        if rapl is None and kind == "rapl":
            raise ValueError(
                f"no readable RAPL package zone under {powercap_root} "
                "(absent, or energy_uj is readable by root only)"
            )
        return rapl
    raise ValueError(f"unknown power source {kind!r}; allowed: auto, none, shelly, monitor, rapl")
