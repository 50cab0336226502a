"""Energy as a plug measures it: per node power over time, idle included.

A node's power is a step function (the engine's change points). Its trace file
``metrics_<run>_<node>.txt`` holds one line per second plus every change point,
``<t seconds> <watts>``, each value holding until the next line (the original's
per-second metrics files, made exact): integrating the file as that step function
gives exactly the joules of the CSV.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PowerTrace:
    node: str
    idle_watts: float
    #: (t, watts) change points, t ascending; the first at the run's start.
    points: tuple[tuple[float, float], ...]
    end: float  # the run's end (makespan)

    def watts_at(self, t: float) -> float:
        i = bisect.bisect_right([p[0] for p in self.points], t) - 1
        return self.points[max(0, i)][1]

    def integrate(self, t0: float, t1: float) -> float:
        """Joules between t0 and t1 (step function, constant after the last point)."""
        if t1 <= t0:
            return 0.0
        total = 0.0
        pts = self.points
        for i, (t, w) in enumerate(pts):
            nxt = pts[i + 1][0] if i + 1 < len(pts) else max(t1, t)
            lo, hi = max(t, t0), min(nxt, t1)
            if hi > lo:
                total += w * (hi - lo)
        # Before the first point the node idles (the run starts at the first point).
        if t0 < pts[0][0]:
            total += self.idle_watts * (min(t1, pts[0][0]) - t0)
        return total

    def energy(self) -> float:
        return self.integrate(self.points[0][0], self.end)

    def samples(self) -> list[tuple[float, float]]:
        """The trace file's rows: every whole second and every change point up to ``end``."""
        t0 = self.points[0][0]
        times = [t for t, _ in self.points if t <= self.end]
        s = 0
        while t0 + s <= self.end:
            times.append(t0 + s)
            s += 1
        times.append(self.end)
        rows: list[tuple[float, float]] = []
        for t in sorted(times):
            if rows and t - rows[-1][0] < 1e-9:
                # a whole second that is also a change point: the change wins
                rows[-1] = (rows[-1][0], self.watts_at(t))
                continue
            rows.append((t, self.watts_at(t)))
        return rows


def write_trace(path: Path, trace: PowerTrace, header: Sequence[str] = ()) -> None:
    lines = [f"# {h}" for h in header]
    lines.append(
        f"# node {trace.node}: wall power (W), idle {trace.idle_watts:g} W; each value holds "
        "until the next line; the last line is the run's end"
    )
    lines.append("# t_s watts")
    lines.extend(f"{t:.9f} {w:.6f}" for t, w in trace.samples())
    path.write_text("\n".join(lines) + "\n")


def read_trace(path: Path) -> list[tuple[float, float]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        t, w = line.split()
        rows.append((float(t), float(w)))
    return rows


def integrate_rows(rows: Iterable[tuple[float, float]], t0: float, t1: float) -> float:
    """Joules of a trace file's rows between t0 and t1 (step function)."""
    rows = list(rows)
    total = 0.0
    for (t, w), (tn, _) in itertools.pairwise(rows):
        lo, hi = max(t, t0), min(tn, t1)
        if hi > lo:
            total += w * (hi - lo)
    return total
