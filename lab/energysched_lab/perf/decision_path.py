"""energysched's live decision path replayed in one process, without an API server.

    python -m energysched_lab.perf.decision_path --nodes 5000 --pods 2000 --mode hybrid

What a cluster run cannot isolate on a busy machine: the scheduler's own handlers
(the real ``EnergyScheduler._on_node``, ``_on_pod`` and ``schedule_key``) fed with
the local cluster's node objects (``kb/nodes``, as ``make perf`` generates them), the
thesis profiles and a backlog of ``make perf``'s pods. Between decisions the
monitor's writes arrive as node updates carrying a new reading (``--writes-per-pod``
of them per decision), and each bind comes back as the pod's watch event, as in a
live run. Only the Binding call is left out (it completes at once), so the figures
are the CPU the scheduling loop spends per pod:

* the algorithm alone (``schedule_one``), the whole attempt (``schedule_key``:
  lookup, parse, snapshot, decision, assume), and the node and pod events that
  share the loop with them, each with exact percentiles;
* ``--profile FILE``: the same under cProfile (stats and a text report beside it).

Not a test and not a substitute for ``make perf``: no network, no contention.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import pstats
import random
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from energysched import contract
from energysched.core.framework import Decision, schedule_one
from energysched.core.values import PodInfo
from energysched.kube.client import JSON, KubeClient
from energysched.kube.config import ClusterAccess
from energysched.kube.reflector import object_key
from energysched.scheduler import controller as controller_module
from energysched.scheduler.config import ConfigSource, SchedulerConfig, parse_config
from energysched_lab.cluster import nodes as node_classes
from energysched_lab.perf.burst import pod_manifest
from energysched_lab.perf.prepare import class_profiles

#: Per-event timer: the process's CPU time by default (``--clock cpu``), so that the
#: figures survive a machine shared with other work; ``--clock wall`` for wall time.
CLOCK: Callable[[], float] = time.process_time


def node_objects(generated: int) -> list[JSON]:
    """The local cluster's nodes as the API server returns them once KWOK made them Ready."""
    out = []
    for m in node_classes.node_manifests(node_classes.load_node_classes(), generated):
        m["metadata"]["uid"] = f"uid-{m['metadata']['name']}"
        m["metadata"]["resourceVersion"] = "1"
        m["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        out.append(m)
    return out


def with_reading(node: JSON, watts: float, at: dt.datetime) -> JSON:
    """A copy of ``node`` as the monitor's patch leaves it."""
    meta = dict(node["metadata"])
    meta["annotations"] = {
        **meta.get("annotations", {}),
        contract.CURRENT_WATTS_ANNOTATION: f"{watts:.1f}",
        contract.CURRENT_WATTS_TIMESTAMP_ANNOTATION: at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    meta["resourceVersion"] = str(int(meta.get("resourceVersion", "1")) + 1)
    return {**node, "metadata": meta}


def _ms_percentiles(samples: Sequence[float]) -> dict[str, float | int | None]:
    if len(samples) < 2:
        return {"n": len(samples), "p50_ms": None, "p99_ms": None, "max_ms": None}
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "n": len(samples),
        "p50_ms": q[49] * 1e3,
        "p99_ms": q[98] * 1e3,
        "max_ms": max(samples) * 1e3,
        "mean_ms": statistics.fmean(samples) * 1e3,
    }


class Replay:
    """The real scheduler object, its I/O left out, driven by hand."""

    def __init__(self, mode: str, staleness: float) -> None:
        profile: dict[str, Any] = {"schedulerName": contract.SCHEDULER_NAME, "mode": mode}
        if mode == "hybrid":
            profile["hybrid"] = {"stalenessSeconds": staleness}
        cfg: SchedulerConfig = parse_config({"profiles": [profile]})
        # Never used for a request: the Binding call is replaced below.
        nowhere = KubeClient(ClusterAccess("https://127.0.0.1:9", None))
        self.sched = controller_module.EnergyScheduler(
            nowhere, nowhere, ConfigSource(None, cfg), "replay"
        )
        self.sched._bind = self._bind  # type: ignore[method-assign]
        self.bound: list[tuple[JSON, str]] = []
        self.scheduled = 0
        self.algorithm: list[float] = []
        self._real_schedule_one = schedule_one

        def timed(*args: Any) -> Decision:
            t0 = CLOCK()
            d = self._real_schedule_one(*args)
            self.algorithm.append(CLOCK() - t0)
            return d

        # The controller's own call, timed exactly (its histogram has coarse buckets).
        setattr(controller_module, "schedule_one", timed)  # noqa: B010

    def close(self) -> None:
        setattr(controller_module, "schedule_one", self._real_schedule_one)  # noqa: B010

    async def _bind(
        self, obj: JSON, pod: PodInfo, key: str, decision: Decision, profile_name: str
    ) -> None:
        self.sched._bind_slots.release()
        self.sched.queue.done(key)
        assert decision.node is not None
        self.scheduled += 1
        self.bound.append((obj, decision.node))


async def replay(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    r = Replay(args.mode, args.staleness)
    s = r.sched
    now = dt.datetime.now(dt.UTC)
    nodes = node_objects(args.nodes)
    for obj in class_profiles():
        obj["metadata"]["generation"] = 1
        s._on_profile("ADDED", obj, None)
    for i, n in enumerate(nodes):
        if args.mode == "hybrid" or args.readings:
            nodes[i] = n = with_reading(n, 5.0 + rng.random() * 40, now)
        s._on_node("ADDED", n, None)
    pods = []
    for i in range(args.pods):
        p = pod_manifest(f"perf-{i:05d}", contract.SCHEDULER_NAME, i)
        p["metadata"].update(namespace="perf", uid=f"uid-pod-{i}", resourceVersion="1")
        p["status"] = {"phase": "Pending"}
        pods.append(p)
        s.pods.store[object_key(p)] = p  # what the pod reflector holds
        s._on_pod("ADDED", p, None)
    attempt: list[float] = []
    node_events: list[float] = []
    pod_events: list[float] = []
    writes_due = 0.0

    profiler = cProfile.Profile() if args.profile else None
    t_start = time.perf_counter()
    if profiler:
        profiler.enable()
    done = 0
    while done < args.pods:
        key = await asyncio.wait_for(s.queue.pop(), 5)
        await s._bind_slots.acquire()
        t0 = CLOCK()
        s.schedule_key(key)
        attempt.append(CLOCK() - t0)
        await asyncio.sleep(0)  # let the (instant) bind task run
        for obj, node in r.bound:
            bound_obj = {**obj, "spec": {**obj["spec"], "nodeName": node}}
            bound_obj["metadata"] = {**obj["metadata"], "resourceVersion": "2"}
            t0 = CLOCK()
            s.pods.store[object_key(bound_obj)] = bound_obj
            s._on_pod("MODIFIED", bound_obj, obj)
            pod_events.append(CLOCK() - t0)
        r.bound.clear()
        writes_due += args.writes_per_pod
        while writes_due >= 1.0:
            writes_due -= 1.0
            i = rng.randrange(len(nodes))
            new = with_reading(nodes[i], 5.0 + rng.random() * 40, dt.datetime.now(dt.UTC))
            t0 = CLOCK()
            s.nodes.store[new["metadata"]["name"]] = new
            s._on_node("MODIFIED", new, nodes[i])
            node_events.append(CLOCK() - t0)
            nodes[i] = new
        done += 1
    wall = time.perf_counter() - t_start
    out: dict[str, Any] = {}
    if profiler:
        profiler.disable()
        out["profile"] = _write_profile(profiler, Path(args.profile))
    r.close()
    loop_total = sum(attempt) + sum(node_events) + sum(pod_events)
    out.update(
        {
            "command": "python -m energysched_lab.perf.decision_path " + " ".join(args.argv),
            "nodes": len(nodes),
            "pods": args.pods,
            "mode": args.mode,
            "scheduled": r.scheduled,
            "algorithm": _ms_percentiles(r.algorithm),
            "attempt": _ms_percentiles(attempt),
            "node_event": _ms_percentiles(node_events),
            "pod_event": _ms_percentiles(pod_events),
            "loop_ms_per_pod": loop_total / max(done, 1) * 1e3,
            "wall_seconds": wall,
            "profiled": bool(profiler),
            "clock": args.clock,
        }
    )
    return out


def _write_profile(profiler: cProfile.Profile, path: Path, top: int = 35) -> dict[str, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    profiler.dump_stats(str(path))
    text = []
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        pstats.Stats(str(path), stream=buf).strip_dirs().sort_stats(order).print_stats(top)
        text.append(buf.getvalue())
    report = path.with_suffix(".txt")
    report.write_text("\n".join(text))
    return {"stats": str(path), "report": str(report)}


def render(res: dict[str, Any]) -> str:
    def row(name: str, h: dict[str, Any]) -> str:
        def f(k: str) -> str:
            v = h.get(k)
            return "n/a" if v is None else f"{v:7.3f}"

        return f"  {name:<34} p50 {f('p50_ms')} ms  p99 {f('p99_ms')} ms  max {f('max_ms')} ms"

    lines = [
        f"{res['nodes']} nodes, {res['pods']} pods, mode {res['mode']}, {res['clock']} time"
        + (" (under cProfile: inflated)" if res["profiled"] else ""),
        row("algorithm (schedule_one)", res["algorithm"]),
        row("whole attempt (schedule_key)", res["attempt"]),
        row("node event (monitor write)", res["node_event"]),
        row("pod event (bind seen)", res["pod_event"]),
        f"  loop CPU per pod (attempt + events)    {res['loop_ms_per_pod']:.3f} ms",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    import sys

    ap = argparse.ArgumentParser(
        prog="python -m energysched_lab.perf.decision_path",
        description=(__doc__ or "").split("\n")[0],
    )
    ap.add_argument("--nodes", type=int, default=5000, help="generated nodes (default 5000)")
    ap.add_argument("--pods", type=int, default=2000, help="pods in the backlog (default 2000)")
    ap.add_argument("--mode", choices=contract.SCORING_MODES, default="hybrid")
    ap.add_argument(
        "--writes-per-pod",
        type=float,
        default=1.0,
        help="monitor writes (node updates with a new reading) per decision (default 1)",
    )
    ap.add_argument("--readings", action="store_true", help="readings on nodes in any mode")
    ap.add_argument("--staleness", type=float, default=300.0, help="hybrid stalenessSeconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", default="", help="cProfile stats file (report beside it)")
    ap.add_argument(
        "--clock",
        choices=("cpu", "wall"),
        default="cpu",
        help="time events by process CPU time (default) or wall time",
    )
    args = ap.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    args.argv = list(argv if argv is not None else sys.argv[1:])
    res = asyncio.run(replay(args))
    print(render(res))
    if res.get("profile"):
        print(f"  profile: {res['profile']['report']}")
    return 0 if res["scheduled"] >= args.pods else 1


if __name__ == "__main__":
    raise SystemExit(main())
