"""The cluster-energy score plugin (energysched/core/scores/cluster_energy.py).

Hand-computed on the thesis-like test cluster (tests/unit/core/core_helpers.py):
training figures (P work/s, W watts, idle W): tvpc 22036, 71, 25; wyse 3000, 13.2,
6.5; rpi 1200, 3.5, 2. The cluster's idle power is 25 + 6.5 + 2 = 33.5 W.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from energysched.contract import PERFORMANCE_WEIGHT_ANNOTATION, WORK_ANNOTATION
from energysched.core import ClusterSnapshot, ClusterState, PodInfo, ScheduleParams, schedule_one
from energysched.core.state import build_snapshot
from tests.unit.core.core_helpers import NOW, pod, reading, thesis_kb, thesis_nodes
from tests.unit.core.plugins.score_helpers import decide, thesis

CLUSTER_IDLE = 33.5
P = {"tvpc": 22036.0, "wyse": 3000.0, "rpi": 1200.0}
W = {"tvpc": 71.0, "wyse": 13.2, "rpi": 3.5}
IDLE = {"tvpc": 25.0, "wyse": 6.5, "rpi": 2.0}


def job(work: float | None, weight: str = "0", name: str = "job", **kw: object) -> PodInfo:
    p = pod(name, cpu="500m", workload="training", **kw)  # type: ignore[arg-type]
    ann = {PERFORMANCE_WEIGHT_ANNOTATION: weight}
    if work is not None:
        ann[WORK_ANNOTATION] = f"{work:g}"
    return replace(p, annotations=ann)


def energy(node: str, work: float, backlog: float = 0.0, horizon: float = 0.0) -> float:
    d = work / P[node]
    return (W[node] - IDLE[node]) * d + CLUSTER_IDLE * max(0.0, backlog + d - horizon)


def test_one_job_on_an_idle_cluster_charges_the_idle_cluster_for_its_duration() -> None:
    work = P["tvpc"]  # one second on tvpc
    d = decide(job(work), thesis(), explain=True, mode="cluster-energy")
    # tvpc: 46 W x 1 s + 33.5 W x 1 s = 79.5 J; wyse: 6.7 x 7.35 + 33.5 x 7.35 = 295 J;
    # rpi: 1.5 x 18.4 + 33.5 x 18.4 = 643 J. The most "efficient" node (rpi, 343 work/J
    # against tvpc's 310) costs the cluster eight times the energy.
    assert energy("tvpc", work) == pytest.approx(79.5)
    assert d.node == "tvpc"
    by = {b.node: b for b in d.ranking}
    for name in P:
        assert f"{energy(name, work):.4g} J" in by[name].why
    assert by["wyse"].norm_e == pytest.approx(100 * 79.5 / energy("wyse", work))
    assert "past the 0 s horizon" in by["tvpc"].why
    # v1.1 at w=0 picks the node with the best work per joule of its own.
    assert decide(job(work), thesis(), mode="normalized").node == "rpi"


def placed(node: str, work: float, started: timedelta | None = timedelta(0)) -> PodInfo:
    p = job(work, name=f"running-{node}", node_name=node, phase="Running")
    return replace(p, started_at=None if started is None else NOW - started)


def busy_tvpc_snapshot(started: timedelta | None = timedelta(0)) -> ClusterSnapshot:
    # tvpc already runs 10 s of training work: the cluster's horizon is 10 s.
    return build_snapshot(
        thesis_nodes(), [placed("tvpc", 10 * P["tvpc"], started)], now=NOW, kb=thesis_kb()
    )


def test_a_busy_node_and_the_horizon() -> None:
    work = P["tvpc"]
    snap = busy_tvpc_snapshot()
    d = decide(job(work), snap, explain=True, mode="cluster-energy")
    by = {b.node: b for b in d.ranking}
    # tvpc: finishes at 11 s, 1 s past the horizon: 46 + 33.5 = 79.5 J.
    # wyse: done at 7.35 s, inside the horizon: only its dynamic 6.7 W x 7.35 s = 49.2 J.
    # rpi: done at 18.4 s, 8.4 s past it: 27.5 + 280.1 = 307.7 J.
    expect = {
        "tvpc": energy("tvpc", work, backlog=10, horizon=10),
        "wyse": energy("wyse", work, horizon=10),
        "rpi": energy("rpi", work, horizon=10),
    }
    assert expect["wyse"] == pytest.approx(6.7 * work / 3000)
    assert d.node == "wyse"
    for name, joules in expect.items():
        assert f"cluster energy {joules:.4g} J" in by[name].why
    assert "backlog 10 s" in by["tvpc"].why
    # w=1 is "fastest": wyse completes at 7.35 s, tvpc only at 11 s.
    assert decide(job(work, weight="1"), snap, mode="cluster-energy").node == "wyse"


def test_work_already_done_shortens_the_backlog() -> None:
    # Started 9.5 s ago: 0.5 s left on tvpc; the new 1 s job fits there best again.
    d = decide(job(P["tvpc"]), busy_tvpc_snapshot(timedelta(seconds=9.5)), mode="cluster-energy")
    assert d.node == "tvpc"
    assert "backlog 0.5 s" in d.ranking[0].why


def test_missing_work_annotation_uses_the_default_and_says_so() -> None:
    # On an idle cluster the choice does not depend on the amount of work.
    d = decide(job(None), thesis(), explain=True, mode="cluster-energy")
    assert d.node == "tvpc"
    tvpc = next(b for b in d.ranking if b.node == "tvpc")
    default = 60 * P["tvpc"]  # default_work_seconds on the fastest node
    assert f"for work {default:g}" in tvpc.why and "x 60 s" in tvpc.why
    # Against a backlog it does: 60 s of work outlasts tvpc's 10 s backlog anywhere,
    # and tvpc finishes it soonest (70 s against wyse's 441 s), so tvpc wins; a short
    # job (1 s) fits inside the horizon on wyse (previous test).
    assert decide(job(None), busy_tvpc_snapshot(), mode="cluster-energy").node == "tvpc"
    short = decide(job(None), busy_tvpc_snapshot(), mode="cluster-energy", default_work_seconds=1)
    assert short.node == "wyse"


def test_a_malformed_work_annotation_is_an_input_error_in_this_mode_only() -> None:
    bad = replace(job(1.0), annotations={WORK_ANNOTATION: "lots"})
    d = schedule_one(bad, thesis(), ScheduleParams(mode="cluster-energy"))
    assert d.node is None and d.error is not None
    assert "lots" in d.error.message and WORK_ANNOTATION in d.error.message
    assert schedule_one(bad, thesis(), ScheduleParams(mode="normalized")).error is None


def test_binds_in_flight_count_at_once() -> None:
    # Two 1 s jobs in a row: the first lands on tvpc and is assumed; the second sees
    # tvpc busy until 1 s (horizon 1 s) and still goes there (done at 2 s: 79.5 J)
    # rather than to wyse (7.35 s: 6.7 x 7.35 + 33.5 x 6.35 = 262 J).
    state = ClusterState(thesis_kb())
    for n in thesis_nodes():
        state.upsert_node(n)
    params = ScheduleParams(mode="cluster-energy")
    first = job(P["tvpc"], name="a")
    d1 = schedule_one(first, state.snapshot(NOW), params)
    assert d1.node == "tvpc"
    state.assume(first, "tvpc", NOW)
    d2 = schedule_one(job(P["tvpc"], name="b"), state.snapshot(NOW), params, explain=True)
    tvpc = next(b for b in d2.ranking if b.node == "tvpc")
    assert "backlog 1 s" in tvpc.why and d2.node == "tvpc"
    state.forget(first.uid)
    assert (
        "backlog 0 s"
        in schedule_one(job(P["tvpc"], name="b"), state.snapshot(NOW), params).ranking[0].why
    )


def test_live_power_the_model_cannot_explain_stretches_the_duration() -> None:
    # tvpc reads 48 W: (48 - 25) / (71 - 25) = 50 % busy with work we do not know of.
    readings = {"tvpc": reading(48.0, 5), "wyse": reading(7.0, 5), "rpi": reading(2.0, 5)}
    d = decide(job(P["tvpc"]), thesis(readings), explain=True, mode="cluster-energy")
    by = {b.node: b for b in d.ranking}
    assert "50% of the node busy" in by["tvpc"].why
    assert "done in 1.5 s" in by["tvpc"].why  # 1 s stretched by the unseen half
    assert by["tvpc"].score > 0 and d.node == "tvpc"  # still the cheapest, not zeroed
    # A frugal node's load is seen too: rpi at 2.75 W is half of its 2..3.5 W range.
    rpi = {**readings, "rpi": reading(2.75, 5)}
    d = decide(job(P["tvpc"]), thesis(rpi), explain=True, mode="cluster-energy")
    assert "50% of the node busy" in next(b for b in d.ranking if b.node == "rpi").why
    # With the work known (tvpc's own backlog), the reading is explained: no stretch.
    known = build_snapshot(
        thesis_nodes(),
        [placed("tvpc", 10 * P["tvpc"])],
        now=NOW,
        kb=thesis_kb(),
        readings={**readings, "tvpc": reading(80.0, 5)},
    )
    d = decide(job(P["tvpc"]), known, explain=True, mode="cluster-energy")
    assert "busy with work" not in next(b for b in d.ranking if b.node == "tvpc").why


# -- the backlog from work columns equals the per-pod sum ------------------------------------


def _backlog_by_loop(
    snap: object, items: dict[str, object], default_work_seconds: float
) -> list[float]:
    """The backlog as the mode defines it, one placed pod at a time (the reference)."""
    import math

    from energysched.contract import WORKLOAD_TYPES

    t = snap.table  # type: ignore[attr-defined]
    now = snap.now.timestamp()  # type: ignore[attr-defined]
    total = [0.0] * t.size
    earliest = [math.inf] * t.size
    fastest = {
        wt: max((p for p in t.perf[wt] if p == p), default=math.nan) for wt in WORKLOAD_TYPES
    }
    for item in items.values():
        i = t.index.get(item.node)  # type: ignore[attr-defined]
        if i is None:
            continue
        perf = float(t.perf[item.workload_type][i])  # type: ignore[attr-defined]
        if not perf > 0:
            continue
        work = item.work  # type: ignore[attr-defined]
        if not math.isfinite(work):
            work = default_work_seconds * fastest[item.workload_type]  # type: ignore[attr-defined]
        total[i] += work / perf
        since = item.since if math.isfinite(item.since) else now  # type: ignore[attr-defined]
        earliest[i] = min(earliest[i], since)
    return [
        max(tot - (max(now - e, 0.0) if math.isfinite(e) else 0.0), 0.0)
        for tot, e in zip(total, earliest, strict=True)
    ]


def test_backlog_from_columns_equals_the_per_pod_sum_through_inserts_updates_and_removals() -> None:
    import dataclasses
    import random

    from energysched.contract import WORKLOAD_TYPES
    from energysched.core.scores.cluster_energy import backlog_seconds
    from energysched.core.values import WorkItem
    from energysched.core.work import WorkColumns
    from tests.unit.core.core_helpers import NOW, thesis_kb, thesis_nodes

    rng = random.Random(5)
    snap = build_snapshot(thesis_nodes(), now=NOW, kb=thesis_kb())
    cols = WorkColumns()
    items: dict[str, WorkItem] = {}
    params = ScheduleParams(mode="cluster-energy", default_work_seconds=40.0)
    names = [*snap.table.index, "gone"]  # "gone": a node the table does not hold
    t0 = NOW.timestamp()
    for k in range(300):
        key = f"p{rng.randrange(40)}"
        if key in items and rng.random() < 0.3:
            del items[key]
            assert cols.remove(key)
        else:
            items[key] = WorkItem(
                rng.choice(names),
                rng.choice(WORKLOAD_TYPES),
                rng.choice([float("nan"), rng.uniform(1, 5000)]),
                rng.choice([float("nan"), t0 - rng.uniform(0, 300)]),
            )
            cols.set(key, items[key])
        if k % 23 == 0:
            view = dataclasses.replace(snap, work=cols.arrays(snap.table))
            got = backlog_seconds(view, params)
            want = _backlog_by_loop(view, items, params.default_work_seconds)
            assert got == pytest.approx(want, rel=1e-12, abs=1e-9)
    assert not cols.remove("never-placed")
    assert len(cols) == len(items)
