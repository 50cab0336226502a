"""RAPL through the Linux powercap tree: a software estimate for nodes without a plug.

``/sys/class/powercap/intel-rapl:N/energy_uj`` counts microjoules and wraps to zero
at ``max_energy_range_uj``. Each zone's counter is unwrapped on its own (a wrap adds
the range); the sum of the zones is then a never-decreasing counter.

Zones: the platform zone ``psys`` if the CPU has one (it covers the whole SoC),
otherwise every ``package-*`` zone plus its ``dram`` subzone. RAPL does not see the
power supply, disks, fans or the GPU, so readings are marked as estimates and an
operator may add a constant ``offsetWatts`` for the rest of the box. Since
CVE-2020-8694 ``energy_uj`` is readable by root only: see the README.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from energysched_monitor.energy import MonotonicCounter
from energysched_monitor.readings import ReadError, Reading, SourceKind

POWERCAP_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True, slots=True)
class Zone:
    path: Path
    name: str
    range_uj: int


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


def discover_zones(root: Path) -> list[Zone]:
    """The zones whose sum is the estimate (see the module docstring)."""
    if not root.is_dir():
        raise ReadError("unsupported", f"no powercap tree at {root}")
    top = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
    named: list[tuple[Path, str]] = []
    for zone in top:
        try:
            named.append((zone, (zone / "name").read_text().strip()))
        except OSError:
            continue
    psys = [(p, n) for p, n in named if n == "psys"]
    chosen: list[tuple[Path, str]] = psys[:1]
    if not chosen:
        for path, name in named:
            if not name.startswith("package"):
                continue
            chosen.append((path, name))
            for sub in sorted(path.glob(f"{path.name}:*")):
                try:
                    if (sub / "name").read_text().strip() == "dram":
                        chosen.append((sub, f"{name}/dram"))
                except OSError:
                    continue
    if not chosen:
        raise ReadError("unsupported", f"no RAPL package or psys zone under {root}")
    return [Zone(p, n, _read_int(p / "max_energy_range_uj")) for p, n in chosen]


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
        self._zones: list[Zone] | None = None
        self._counters: dict[Path, MonotonicCounter] = {}
        self._start: float | None = None
        self._last: tuple[float, float] | None = None  # (t, joules)

    @property
    def kind(self) -> SourceKind:
        return "rapl"

    @property
    def describe(self) -> str:
        zones = ",".join(z.name for z in self._zones) if self._zones else "?"
        return f"rapl {self.root} [{zones}]"

    async def close(self) -> None:
        return None

    def _sample(self) -> tuple[float, float]:
        if self._zones is None:
            self._zones = discover_zones(self.root)
            self._counters = {z.path: MonotonicCounter(float(z.range_uj)) for z in self._zones}
        t = self._clock()
        total_uj = 0.0
        for zone in self._zones:
            total_uj += self._counters[zone.path].advance(float(_read_int(zone.path / "energy_uj")))
        return t, total_uj / 1e6

    async def read(self) -> Reading:
        try:
            if self._last is None:
                self._last = self._sample()
                self._start = self._last[0]
                await self._sleep(self.prime_seconds)
            t0, j0 = self._last
            t1, j1 = self._sample()
        except ReadError:
            self._zones, self._last = None, None  # rediscover next time
            raise
        self._last = (t1, j1)
        if t1 <= t0:
            raise ReadError("malformed", "RAPL samples without elapsed time")
        watts = (j1 - j0) / (t1 - t0) + self.offset_watts
        assert self._start is not None
        energy = j1 + self.offset_watts * (t1 - self._start)
        return Reading(watts, "rapl", estimate=True, energy_joules=energy)
