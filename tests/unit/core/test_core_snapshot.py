"""ClusterState: incremental updates equal a rebuild; snapshots are immutable."""

from __future__ import annotations

import random
from datetime import timedelta

import numpy as np
import pytest

from energysched.core import ClusterState, RecentBind, ScheduleParams, schedule_one
from energysched.core.state import build_snapshot
from energysched.kb.profiles import KnowledgeBase
from tests.unit.core.core_helpers import (
    NOW,
    container,
    node,
    pod,
    profile,
    reading,
    thesis_kb,
    thesis_nodes,
)


def state_with(nodes: list[object] | None = None) -> ClusterState:
    s = ClusterState(thesis_kb())
    for n in nodes or thesis_nodes():
        s.upsert_node(n)  # type: ignore[arg-type]
    return s


def test_incremental_equals_rebuild() -> None:
    rng = random.Random(7)
    s = state_with()
    live: dict[str, object] = {}
    s.snapshot(NOW)
    for k in range(300):
        if live and rng.random() < 0.4:
            uid = rng.choice(sorted(live))
            del live[uid]
            s.remove_pod(uid)
        else:
            p = pod(
                f"p{k}",
                cpu=f"{rng.randrange(1, 900)}m",
                memory=f"{rng.randrange(1, 99)}Mi",
                node_name=rng.choice(["tvpc", "wyse", "rpi", "gone"]),
                containers=[
                    container(
                        f"{rng.randrange(1, 900)}m", ports=[{"containerPort": 1, "hostPort": k}]
                    )
                ],
            )
            live[p.uid] = p
            s.add_pod(p)
        if k % 50 == 0:
            s.snapshot(NOW)  # interleave snapshots: exercises copy-on-write
    got = s.snapshot(NOW)
    want = build_snapshot(
        thesis_nodes(),
        live.values(),
        now=NOW,  # type: ignore[arg-type]
        kb=thesis_kb(),
    )
    assert np.array_equal(got.requested, want.requested)
    assert dict(got.used_ports) == dict(want.used_ports)


def test_incremental_readings_equal_a_rebuild() -> None:
    """Readings patched by index (set, cleared, node gone and back) match a fresh state."""
    rng = random.Random(11)
    nodes = {n.name: n for n in thesis_nodes()}  # type: ignore[attr-defined]
    s = state_with()
    live: dict[str, object] = {}
    present = set(nodes)
    for k in range(400):
        name = rng.choice(sorted(nodes))
        roll = rng.random()
        if roll < 0.1 and name in present:
            s.remove_node(name)
            present.discard(name)
            live.pop(name, None)
        elif roll < 0.2 and name not in present:
            s.upsert_node(nodes[name])
            present.add(name)
        elif name not in present:
            continue  # readings come from the node object: none without a node
        elif roll < 0.35:
            s.set_reading(name, None)
            live.pop(name, None)
        else:
            live[name] = reading(float(rng.randrange(1, 200)), k)
            s.set_reading(name, live[name])  # type: ignore[arg-type]
        if k % 7 == 0:
            s.snapshot(NOW)  # interleave snapshots: exercises copy-on-write
    got = s.snapshot(NOW)
    fresh = state_with([nodes[n] for n in sorted(present)])
    for name, r in live.items():
        fresh.set_reading(name, r)  # type: ignore[arg-type]
    want = fresh.snapshot(NOW)
    assert {n: got.readings[i] for n, i in got.table.index.items()} == {
        n: want.readings[i] for n, i in want.table.index.items()
    }
    for n, i in got.table.index.items():
        j = want.table.index[n]
        assert np.array_equal(got.reading_watts[i], want.reading_watts[j], equal_nan=True)


def test_snapshots_are_immutable_and_copy_on_write() -> None:
    s = state_with()
    first = s.snapshot(NOW)
    before = first.requested.copy()
    s.add_pod(pod("a", cpu="1", node_name="wyse"))
    s.set_reading("wyse", reading(9.0, 1))
    second = s.snapshot(NOW)
    assert np.array_equal(first.requested, before)
    assert np.isnan(first.reading_watts).all()
    i = second.table.index["wyse"]
    assert second.requested[i, second.table.column_index["cpu"]] == 1000
    assert second.requested[i, 0] == 1  # pods
    assert second.reading_watts[i] == 9.0
    with pytest.raises(ValueError):
        second.requested[0, 0] = 5
    assert s.snapshot(NOW) is second  # nothing changed: reused


def test_terminal_and_rebound_pods() -> None:
    s = state_with()
    s.add_pod(pod("a", cpu="1", node_name="wyse"))
    s.add_pod(pod("a", cpu="1", node_name="wyse", phase="Succeeded"))
    assert s.snapshot(NOW).usage(s.snapshot(NOW).table.index["wyse"]).requested == {}
    s.add_pod(pod("b", cpu="1", node_name="wyse"))
    s.add_pod(pod("b", cpu="2", node_name="rpi"))  # same uid, updated: moves, no double count
    snap = s.snapshot(NOW)
    assert snap.usage(snap.table.index["wyse"]).requested == {}
    assert snap.usage(snap.table.index["rpi"]).requested == {"cpu": 2000, "pods": 1}


def test_assume_then_bound_then_forget() -> None:
    s = state_with()
    p = pod("a", cpu="1", workload="training")
    s.assume(p, "tvpc", NOW)
    snap = s.snapshot(NOW)
    tvpc = snap.table.index["tvpc"]
    assert snap.assumed == {p.uid}
    assert snap.usage(tvpc).requested == {"cpu": 1000, "pods": 1}
    assert snap.recent_binds == (RecentBind("tvpc", p.uid, NOW, "training"),)
    s.add_pod(pod("a", cpu="1", workload="training", node_name="tvpc"))  # the watch confirms
    snap = s.snapshot(NOW)
    assert snap.assumed == frozenset() and snap.usage(tvpc).requested == {"cpu": 1000, "pods": 1}
    s.forget(p.uid)  # no longer assumed: forgetting only drops the bind record
    assert s.snapshot(NOW).usage(tvpc).requested == {"cpu": 1000, "pods": 1}
    q = pod("q", cpu="1")
    s.assume(q, "tvpc", NOW)
    s.forget(q.uid)
    snap = s.snapshot(NOW)
    assert snap.usage(tvpc).requested == {"cpu": 1000, "pods": 1} and snap.recent_binds == ()


def test_prune_binds() -> None:
    s = state_with()
    s.assume(pod("old"), "tvpc", NOW - timedelta(minutes=5))
    s.assume(pod("new"), "tvpc", NOW)
    s.prune_binds(NOW - timedelta(minutes=1))
    assert [b.pod_uid for b in s.snapshot(NOW).recent_binds] == ["uid-new"]


def test_annotation_change_keeps_the_table_label_change_patches_it() -> None:
    s = state_with()
    first = s.snapshot(NOW)
    s.upsert_node(node("wyse", annotations={"x": "y"}))
    second = s.snapshot(NOW)
    assert second.table.allocatable is first.table.allocatable
    assert second.nodes[second.table.index["wyse"]].annotations == {"x": "y"}
    s.upsert_node(node("wyse", labels={"new": "label"}))
    third = s.snapshot(NOW)
    assert third.table is not second.table
    assert third.table.allocatable is first.table.allocatable  # allocatable unchanged: shared
    assert third.table.label_in("new", ["label"]).tolist() == [False, False, True]


def test_pods_before_their_node_and_node_removal() -> None:
    s = ClusterState(thesis_kb())
    s.add_pod(pod("early", cpu="1", node_name="late"))
    s.upsert_node(node("late"))
    snap = s.snapshot(NOW)
    assert snap.usage(0).requested == {"cpu": 1000, "pods": 1}
    s.remove_node("late")
    assert s.snapshot(NOW).table.size == 0


def test_knowledge_base_swap() -> None:
    s = state_with()
    assert s.snapshot(NOW).table.profiles[0] is not None
    s.set_knowledge_base(KnowledgeBase())
    snap = s.snapshot(NOW)
    assert all(p is None for p in snap.table.profiles)
    assert np.isnan(snap.table.perf["training"]).all()


def test_new_extended_resource_column_keeps_existing_requests() -> None:
    s = state_with()
    s.add_pod(pod("g", node_name="tvpc", containers=[container(extra={"nvidia.com/gpu": "1"})]))
    s.upsert_node(node("tvpc", extra={"nvidia.com/gpu": "1"}))  # device plugin came up
    snap = s.snapshot(NOW)
    assert snap.usage(snap.table.index["tvpc"]).requested == {"nvidia.com/gpu": 1, "pods": 1}


def test_at_moves_the_clock_only() -> None:
    snap = build_snapshot(thesis_nodes(), now=NOW)
    later = snap.at(NOW + timedelta(seconds=5))
    assert later.now > snap.now and later.requested is snap.requested


def test_patched_node_table_equals_a_rebuild() -> None:
    """One node's labels/taints/allocatable change: the patch equals a fresh build."""
    rng = random.Random(11)
    nodes = {n.name: n for n in thesis_nodes()}
    nodes.update({f"x{i}": node(f"x{i}", labels={"class": "rpi"}) for i in range(4)})
    kb = KnowledgeBase.of([*thesis_kb().profiles.values(), profile("rpi", {"class": "rpi"})])
    s = ClusterState(kb)
    for n in nodes.values():
        s.upsert_node(n)
    s.add_pod(pod("u", cpu="1", node_name="x1"))
    probes = [
        pod("a", cpu="1", workload="training", weight="0.5"),
        pod("b", cpu="2", workload="training", weight="1", nodeSelector={"class": "rpi"}),
        pod("c", cpu="1", workload="inference", tolerations=[{"key": "t", "operator": "Exists"}]),
        pod(
            "d",
            cpu="3500m",
            affinity={
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": "gen", "operator": "Gt", "values": ["2"]}
                                ]
                            }
                        ]
                    }
                }
            },
        ),
    ]
    for _ in range(30):
        s.snapshot(NOW)  # a table exists, so the next change is patched
        name = rng.choice(sorted(nodes))
        labels = {k: v for k, v in nodes[name].labels.items() if k != "kubernetes.io/hostname"}
        labels[rng.choice(["class", "gen"])] = rng.choice(["rpi", "wyse", "1", "3"])
        taints = rng.choice(
            [
                [],
                [{"key": "t", "value": "v", "effect": "NoSchedule"}],
                [{"key": "p", "effect": "PreferNoSchedule"}],
            ]
        )
        nodes[name] = node(
            name,
            cpu=rng.choice(["2", "4"]),
            labels=labels,
            taints=taints,
            unschedulable=rng.random() < 0.2,
        )
        s.upsert_node(nodes[name])
        patched = s.snapshot(NOW)
        fresh = build_snapshot(nodes.values(), [pod("u", cpu="1", node_name="x1")], now=NOW, kb=kb)
        for p in probes:
            for explain in (False, True):
                a = schedule_one(p, patched, ScheduleParams(), explain=explain)
                b = schedule_one(p, fresh, ScheduleParams(), explain=explain)
                assert (a.node, a.runner_up, a.reasons, a.ranking) == (
                    b.node,
                    b.runner_up,
                    b.reasons,
                    b.ranking,
                )


def test_binds_appended_in_a_burst_equal_a_full_rebuild() -> None:
    """record_bind appends to the snapshot's bind arrays; they must equal a rebuild."""
    from energysched_lab import microbench as core_bench

    rng = random.Random(3)
    now = core_bench.datetime.now(core_bench.UTC)
    state = core_bench.cluster(60, now, rng)
    pods = core_bench.pods(80, rng)
    params = ScheduleParams(mode="hybrid")
    for i, burst_pod in enumerate(pods):
        at = now + timedelta(milliseconds=i)
        decision = schedule_one(burst_pod, state.snapshot(at), params)
        if decision.node:
            state.assume(burst_pod, decision.node, at)
    incremental = state.snapshot(now + timedelta(seconds=1))
    state._binds_view = None  # force the full rebuild
    state._last = None
    rebuilt = state.snapshot(now + timedelta(seconds=1))
    assert incremental.recent_binds == rebuilt.recent_binds
    assert len(rebuilt.recent_binds) > 50
    for a, b in (
        (incremental.bind_node, rebuilt.bind_node),
        (incremental.bind_ts, rebuilt.bind_ts),
        (incremental.bind_type, rebuilt.bind_type),
    ):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
