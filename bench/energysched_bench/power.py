"""Power meters read with the standard library only, and energy over a benchmark run.

**The power-reading core** (first half) is shared by the benchmark and the monitor
(``energysched_monitor``): one error type for every meter, counters that wrap or reset,
RAPL through the powercap tree, NVML through ctypes, and the documented Shelly replies.
It imports nothing beyond the standard library, so the benchmark image runs with numpy
only and without energysched; the monitor adds its HTTP client (aiohttp, digest auth)
and its own policy (physical range, energy integration, publishing) around it.

**The benchmark's sources** (second half): energy over a run, or None.

* ``shelly``:  wall power from a Shelly plug (Gen1 ``/status``, Gen2+
  ``Shelly.GetStatus``), sampled and integrated;
* ``monitor``: the node's ``current-watts`` annotation written by the monitor
  (itself from a plug), sampled through a hook the caller provides;
* ``rapl``:    the CPU package energy counters under /sys/class/powercap. This
  is a software fallback: it covers the CPU package only, not the wall, and
  the result says so (``scope: cpu-package``).

With no source, energy is *not measured* (None). Nothing here guesses.
"""

from __future__ import annotations

import base64
import ctypes
import itertools
import json
import math
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol

# === the power-reading core ==============================================================

ErrorKind = Literal[
    "unreachable",  # connection refused, no route, DNS
    "timeout",  # the device accepted but did not answer in time (hung)
    "auth",  # 401: missing or wrong credentials
    "http",  # any other non-2xx answer
    "malformed",  # not JSON, or JSON without the documented fields
    "out_of_range",  # a value outside the device's physical range
    "unsupported",  # the device or host has no such meter (no RAPL, no NVML, gen 5)
    "config",  # nothing (valid) configured for this node, no profile for the model
    "stale",  # the meter's own timestamp is too old (a Prometheus sample nobody refreshed)
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
    "stale",
)

#: Longest excerpt of an offending reply that goes into an error message.
EXCERPT_CHARS: Final = 200


def excerpt(value: object) -> str:
    """A short, single-line rendering of an offending value for a log line."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class ReadError(Exception):
    """A meter could not be read; ``kind`` says why in one word (a metric label)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"ReadError({self.kind!r}, {self.message!r})"


# --- counters ---------------------------------------------------------------------------

CounterEvent = Literal["counter", "reset", "wrap"]


def counter_delta(
    previous: float, current: float, counter_range: float | None
) -> tuple[float, CounterEvent]:
    """Energy between two counter values: a rise, a wrap (range known) or a reset.

    A counter with a range (RAPL ``max_energy_range_uj``) that went down wrapped once:
    ``range - previous + current``. Without a range it was reset (a rebooted plug, a
    reloaded driver): the new value is what it counted since, never negative.
    """
    if current >= previous:
        return current - previous, "counter"
    if counter_range is not None and counter_range > 0:
        return counter_range - previous + current, "wrap"
    return current, "reset"


class MonotonicCounter:
    """Turns a wrapping or resetting raw counter into a never-decreasing total."""

    def __init__(self, counter_range: float | None = None) -> None:
        self.counter_range = counter_range
        self.total = 0.0
        self._last: float | None = None
        self.last_event: CounterEvent | None = None

    def advance(self, raw: float) -> float:
        if self._last is not None:
            delta, self.last_event = counter_delta(self._last, raw, self.counter_range)
            self.total += delta
        self._last = raw
        return self.total


# --- RAPL -------------------------------------------------------------------------------

POWERCAP_ROOT = Path("/sys/class/powercap")


def _read_int(path: Path) -> int:
    try:
        text = path.read_text().strip()
    except PermissionError:
        raise ReadError(
            "unsupported", f"{path} is not readable (root only since CVE-2020-8694)"
        ) from None
    except OSError as exc:
        raise ReadError("unsupported", f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return int(text)
    except ValueError:
        raise ReadError("malformed", f"{path}: not an integer: {text[:40]!r}") from None


@dataclass(frozen=True, slots=True)
class RaplZone:
    """One powercap zone: ``energy_uj`` counts microjoules, wrapping at ``range_uj``."""

    path: Path
    name: str
    range_uj: int

    def read_uj(self) -> int:
        return _read_int(self.path / "energy_uj")


def rapl_zones(root: Path = POWERCAP_ROOT, *, platform: bool = False) -> list[RaplZone]:
    """The zones whose sum is the measurement; ReadError if there are none to read.

    ``platform=False`` (the benchmark's ``cpu-package`` scope): every top-level
    ``package-*`` zone. Subzones (core, uncore) are parts of a package; ``psys`` would
    double-count the packages.

    ``platform=True`` (the monitor's estimate of the box): the platform zone ``psys``
    if the CPU has one (it covers the whole SoC), otherwise every ``package-*`` plus its
    ``dram`` subzone.

    Each zone's ``energy_uj`` is read once here, so that a tree readable by root only
    (since CVE-2020-8694) fails now with that reason, not at the first measurement.
    """
    if not root.is_dir():
        raise ReadError("unsupported", f"no powercap tree at {root}")
    named: list[tuple[Path, str]] = []
    for path in sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1):
        try:
            named.append((path, (path / "name").read_text().strip()))
        except OSError:
            continue
    chosen = [(p, n) for p, n in named if n == "psys"][:1] if platform else []
    if not chosen:
        for path, name in named:
            if not name.startswith("package"):
                continue
            chosen.append((path, name))
            if not platform:
                continue
            for sub in sorted(path.glob(f"{path.name}:*")):
                try:
                    if (sub / "name").read_text().strip() == "dram":
                        chosen.append((sub, f"{name}/dram"))
                except OSError:
                    continue
    if not chosen:
        wanted = "package or psys" if platform else "package"
        raise ReadError("unsupported", f"no RAPL {wanted} zone under {root}")
    zones = [RaplZone(p, n, _read_int(p / "max_energy_range_uj")) for p, n in chosen]
    for zone in zones:
        zone.read_uj()
    return zones


class RaplMeter:
    """The zones' energy in joules since the first read, each zone unwrapped on its own.

    Read it more often than the fastest zone can wrap (minutes at full load on a
    desktop CPU; ``max_energy_range_uj`` / TDP) or a wrap is missed.
    """

    def __init__(self, zones: Sequence[RaplZone]) -> None:
        self.zones = tuple(zones)
        self._counters = [MonotonicCounter(float(z.range_uj)) for z in self.zones]

    def joules(self) -> float:
        total_uj = 0.0
        for zone, counter in zip(self.zones, self._counters, strict=True):
            total_uj += counter.advance(float(zone.read_uj()))
        return total_uj / 1e6


# --- NVML -------------------------------------------------------------------------------

NVML_SUCCESS = 0
NVML_ERROR_NOT_SUPPORTED = 3


class NvmlBackend(Protocol):
    def device_count(self) -> int: ...

    def power_mw(self, index: int) -> int: ...

    def energy_mj(self, index: int) -> int | None:
        """None if the GPU has no energy counter."""
        ...


class CtypesNvml:
    """libnvidia-ml through ctypes. Construction raises ReadError("unsupported") without it.

    ``nvmlDeviceGetPowerUsage`` gives milliwatts, ``nvmlDeviceGetTotalEnergyConsumption``
    (Volta and later) millijoules since the driver loaded; older GPUs such as a GTX 1060
    have no energy counter (``energy_mj`` is None).
    """

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


# --- Shelly replies ---------------------------------------------------------------------
#
# Generation is detected from ``GET /shelly`` (never authenticated):
#
# * Gen1 (Plug S, ...): no ``gen`` field. ``GET /status`` gives ``meters[0].power`` (W),
#   ``meters[0].total`` (watt-minutes, integer, reset on reboot) and ``uptime`` (s).
# * Gen2/3/4: ``"gen": 2|3|4``. ``GET /rpc/Shelly.GetStatus`` gives every component:
#   ``switch:0`` (or, on metering-only devices, ``pm1:0``) with ``apower`` (W) and
#   ``aenergy.total`` (Wh, reset on reboot), and ``sys`` (what ``Sys.GetStatus``
#   returns) with ``uptime`` (s). One request rather than ``Switch.GetStatus`` plus
#   ``Sys.GetStatus``: counter and uptime are then of the same instant.

ShellyComponent = Literal["auto", "switch", "pm1"]
SHELLY_COMPONENTS: Final[tuple[ShellyComponent, ...]] = ("auto", "switch", "pm1")
RPC_GENERATIONS: Final = (2, 3, 4)
STATUS_METHOD: Final = "Shelly.GetStatus"
WATT_MINUTE_J: Final = 60.0
WATT_HOUR_J: Final = 3600.0


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    gen: int
    device_id: str
    model: str
    auth_required: bool

    @property
    def status_path(self) -> str:
        return "/status" if self.gen == 1 else f"/rpc/{STATUS_METHOD}"


@dataclass(frozen=True, slots=True)
class ShellyReading:
    """One status reply: power, the counter in joules, the uptime, which meter."""

    watts: float
    energy_joules: float
    uptime_seconds: float | None
    gen: int
    component: str  # "meters[0]" (Gen1), "switch:0" or "pm1:0"


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ReadError("malformed", f"{where} is not a number: {excerpt(value)}")
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ReadError("malformed", f"{where} is out of range: {excerpt(value)}") from None
    if not math.isfinite(number):
        raise ReadError("malformed", f"{where} is not finite: {excerpt(value)}")
    return number


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ReadError("malformed", f"{where} is not a JSON object: {excerpt(value)}")
    return value


def parse_json(text: str, where: str) -> Mapping[str, Any]:
    """A JSON object, or ReadError("malformed") quoting the start of the text."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # ValueError: JSONDecodeError, > 4300 digits
        raise ReadError("malformed", f"{where}: not JSON: {excerpt(text)}") from None
    return _mapping(value, where)


def parse_device_info(obj: Mapping[str, Any]) -> DeviceInfo:
    """``GET /shelly`` of any generation."""
    if "gen" in obj:
        gen = obj["gen"]
        if isinstance(gen, bool) or not isinstance(gen, int):
            raise ReadError("malformed", f"/shelly: gen is not an integer: {excerpt(gen)}")
        if gen not in RPC_GENERATIONS:
            raise ReadError("unsupported", f"/shelly: unsupported device generation {gen}")
        device_id = obj.get("id")
        if not isinstance(device_id, str) or not device_id:
            raise ReadError("malformed", f"/shelly: gen {gen} reply without id: {excerpt(obj)}")
        return DeviceInfo(gen, device_id, str(obj.get("model", "")), bool(obj.get("auth_en")))
    if "type" in obj and "mac" in obj:  # Gen1: {"type": "SHPLG-S", "mac": ..., "auth": ...}
        return DeviceInfo(1, f"{obj['type']}-{obj['mac']}", str(obj["type"]), bool(obj.get("auth")))
    raise ReadError("malformed", f"/shelly: neither a Gen1 nor a Gen2+ reply: {excerpt(obj)}")


def _uptime(value: Any) -> float | None:
    """A device uptime in seconds, or None if absent or not a plausible one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        uptime = float(value)
    except OverflowError:
        return None
    return uptime if math.isfinite(uptime) and uptime >= 0 else None


def parse_gen1_status(obj: Mapping[str, Any]) -> ShellyReading:
    """``GET /status`` of a Gen1 device: ``meters[0].power`` W, ``meters[0].total`` W·min."""
    meters = obj.get("meters")
    if not isinstance(meters, list) or not meters:
        raise ReadError("malformed", f"/status: no meters[0]: {excerpt(obj)}")
    meter = _mapping(meters[0], "/status meters[0]")
    if meter.get("is_valid") is False:
        raise ReadError("malformed", "/status: meters[0].is_valid is false (meter self-check)")
    watts = _number(meter.get("power"), "/status meters[0].power")
    total = _number(meter.get("total"), "/status meters[0].total")
    return ShellyReading(watts, total * WATT_MINUTE_J, _uptime(obj.get("uptime")), 1, "meters[0]")


def parse_rpc_meter(
    obj: Mapping[str, Any], where: str, gen: int, uptime: float | None = None
) -> ShellyReading:
    """A ``switch:0`` / ``pm1:0`` status: ``apower`` W, ``aenergy.total`` Wh."""
    watts = _number(obj.get("apower"), f"{where} apower")
    aenergy = _mapping(obj.get("aenergy"), f"{where} aenergy")
    total = _number(aenergy.get("total"), f"{where} aenergy.total")
    return ShellyReading(watts, total * WATT_HOUR_J, uptime, gen, where)


def parse_rpc_status(obj: Mapping[str, Any], component: ShellyComponent, gen: int) -> ShellyReading:
    """``Shelly.GetStatus``: the meter of ``switch:0`` (else ``pm1:0``) and ``sys.uptime``."""
    order: tuple[Literal["switch", "pm1"], ...] = (
        ("switch", "pm1") if component == "auto" else (component,)
    )
    sys_status = obj.get("sys")
    uptime = _uptime(sys_status.get("uptime")) if isinstance(sys_status, Mapping) else None
    for name in order:
        key = f"{name}:0"
        if key in obj:
            meter = _mapping(obj[key], f"{STATUS_METHOD} {key}")
            return parse_rpc_meter(meter, key, gen, uptime)
    wanted = " nor ".join(f"{name}:0" for name in order)
    components = ", ".join(sorted(str(k) for k in obj)[:20])
    raise ReadError(
        "unsupported",
        f"{STATUS_METHOD} has {'neither ' if len(order) > 1 else 'no '}"
        f"{wanted} (components: {components})",
    )


def parse_shelly_status(
    info: DeviceInfo, text: str, component: ShellyComponent = "auto"
) -> ShellyReading:
    """The reply to ``GET info.status_path`` of either generation."""
    where = "/status" if info.gen == 1 else STATUS_METHOD
    obj = parse_json(text, where)
    return parse_gen1_status(obj) if info.gen == 1 else parse_rpc_status(obj, component, info.gen)


# === the benchmark's sources =============================================================

Scope = Literal["wall", "cpu-package"]


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


# --- RAPL (cpu-package) ----------------------------------------------------------------


class RaplSource(PowerSource):
    """CPU package energy from the powercap counters (:class:`RaplMeter`)."""

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
        self._meter = RaplMeter(zones)
        self._joules_at_start = 0.0
        self._joules = 0.0
        self._started = 0.0
        self._ok = True
        self._lock = threading.Lock()
        # Polled so that no counter wraps twice between two reads.
        self._poller = _Poller(self._accumulate, interval)

    @classmethod
    def detect(cls, root: Path = POWERCAP_ROOT) -> RaplSource | None:
        try:
            return cls(rapl_zones(root))
        except ReadError:
            return None

    def _accumulate(self) -> None:
        with self._lock:
            try:
                self._joules = self._meter.joules()
            except ReadError:
                self._ok = False

    def start(self) -> None:
        self._meter = RaplMeter(self.zones)
        self._ok = True
        try:  # a counter unreadable now: energy not measured (None), not a crash
            self._joules_at_start = self._joules = self._meter.joules()
        except ReadError:
            self._ok = False
        self._started = self._clock()
        self._poller.start()

    def stop(self) -> EnergyReading | None:
        self._poller.stop()
        self._accumulate()
        seconds = self._clock() - self._started
        if not self._ok or seconds <= 0:
            return None
        return EnergyReading(self._joules - self._joules_at_start, seconds)


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


def _get_text(url: str, timeout: float, auth: tuple[str, str] | None) -> str:
    request = urllib.request.Request(url)
    if auth is not None:
        if ":" in auth[0]:
            raise ValueError("a ':' is not allowed in a Basic auth user name (RFC 7617)")
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return str(response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as exc:
        kind: ErrorKind = "auth" if exc.code == 401 else "http"
        raise ReadError(kind, f"GET {url}: HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ReadError("unreachable", f"GET {url}: {exc}") from None


class ShellySource(SampledSource):
    """Wall power of a Shelly plug, polled over HTTP (the core's reply parsers).

    Gen1 takes HTTP Basic auth. Gen2+ digest auth (SHA-256) is not available here:
    the standard library's urllib knows MD5 and SHA-1 digests only and the benchmark
    image has no aiohttp; leave auth off on the plug, or use the monitor source.
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
        self._info: DeviceInfo | None = (
            DeviceInfo(gen, "", "", auth is not None) if gen is not None else None
        )
        super().__init__("shelly", self._read_plug, scope="wall", interval=interval)

    def _get(self, path: str) -> str:
        return _get_text(self.base_url + path, self._timeout, self._auth)

    def _read_plug(self) -> float | None:
        if self._info is None:
            self._info = parse_device_info(parse_json(self._get("/shelly"), "/shelly"))
            self.gen = self._info.gen
        return parse_shelly_status(self._info, self._get(self._info.status_path)).watts


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
    if kind == "auto":
        return RaplSource.detect(powercap_root)
    if kind == "rapl":
        try:
            return RaplSource(rapl_zones(powercap_root))
        except ReadError as exc:
            raise ValueError(f"no readable RAPL package zone: {exc.message}") from None
    raise ValueError(f"unknown power source {kind!r}; allowed: auto, none, shelly, monitor, rapl")
