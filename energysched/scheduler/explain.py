"""``energysched explain``: the numbers the scheduler would use, for every node.

It lists the cluster once, feeds it through the scheduler's own mapping from
objects to state (:class:`~energysched.scheduler.mirror.ClusterMirror`), and
calls the same ``schedule_one`` in explain mode.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from energysched import contract
from energysched.contract import WorkloadType
from energysched.core.errors import InputError
from energysched.core.framework import Decision, schedule_one
from energysched.core.parse import parse_pod
from energysched.core.snapshot import ClusterSnapshot
from energysched.core.state import ClusterState
from energysched.kb.book import ProfileBook
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.learning.knowledge import Knowledge
from energysched.scheduler.config import SchedulerConfig
from energysched.scheduler.mirror import TERMINAL_PODS_EXCLUDED, ClusterMirror


async def load_state(
    kube: KubeClient, knowledge: Knowledge = "spec", exploration: float = 0.0
) -> tuple[ClusterState, ProfileBook]:
    """One LIST of profiles, nodes and pods, fed through the scheduler's own mapping."""
    mirror = ClusterMirror()
    mirror.set_knowledge(knowledge, exploration)
    try:
        profiles = await kube.list_all(api_path(contract.API_VERSION, contract.PROFILE_PLURAL))
        for obj in profiles["items"]:
            mirror.profile_event("ADDED", obj, None)
    except ApiError as exc:
        if not exc.not_found:
            raise
    for obj in (await kube.list_all(api_path("v1", "nodes")))["items"]:
        mirror.node_event("ADDED", obj, None)
    pods = await kube.list_all(api_path("v1", "pods"), fieldSelector=TERMINAL_PODS_EXCLUDED)
    for obj in pods["items"]:
        mirror.pod_event("ADDED", obj, None)
    return mirror.state, mirror.book


def knowledge_lines(
    book: ProfileBook, workload_type: WorkloadType | None, knowledge: Knowledge
) -> list[str]:
    """Per profile: the spec figure, the learned one, its uncertainty and observations."""
    if workload_type is None:
        return []
    learned = book.learned()
    lines = [f"figures for {workload_type} (the modes read: {knowledge}):"]
    for name, p in sorted(book.kb.profiles.items()):
        fig = p.workloads.get(workload_type)
        if fig is None:
            continue
        text = f"  profile {name}: spec {fig.performance:.4g}/s at {fig.power_watts:.4g} W"
        got = learned.get((name, workload_type))
        if got is None:
            text += "; learned: nothing yet"
        else:
            text += (
                f"; learned {got.performance:.4g}/s (x/ {got.performance_factor:.3g}, "
                f"{got.performance_count} runs) at {got.power_watts:.4g} W "
                f"(x/ {got.power_factor:.3g}, {got.power_count} runs)"
            )
        lines.append(text)
    return lines


def render(
    decision: Decision,
    snapshot: ClusterSnapshot,
    book: ProfileBook | None = None,
    knowledge: Knowledge = "spec",
) -> str:
    """The table: one row per node, its verdict and numbers; ``liveW`` is the node's
    latest reading as the snapshot holds it (whatever the mode makes of it)."""
    table = snapshot.table
    lines = [
        f"pod {decision.pod}: mode {decision.mode}, workload {decision.workload_type or '-'}, "
        f"weight {decision.weight if decision.weight is not None else '-'}",
        f"{'NODE':<16} {'FEASIBLE':<9} {'PROFILE':<12} {'normP':>7} {'normE':>7} "
        f"{'liveW':>7} {'SCORE':>7}  WHY",
    ]
    for r in decision.node_results:
        b = r.breakdown
        if b is None:
            lines.append(
                f"{r.node:<16} {'no':<9} {'':<12} {'':>7} {'':>7} {'':>7} {'':>7}  "
                + "; ".join(r.reasons)
            )
            continue

        def num(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        reading = snapshot.readings[table.index[r.node]]
        live = None if reading is None else reading.watts
        # a sleeping node scored as a node to wake (cluster-energy) is not feasible as it is
        verdict = "wake" if r.wake else "yes"
        lines.append(
            f"{r.node:<16} {verdict:<9} {(b.profile or 'none'):<12} {num(b.norm_p):>7} "
            f"{num(b.norm_e):>7} {num(live):>7} {b.score:>7.2f}  {b.why}"
        )
    if book is not None:
        lines.append("")
        lines.extend(knowledge_lines(book, decision.workload_type, knowledge))
    lines.append("")
    lines.append(f"decision: {decision.message}")
    return "\n".join(lines)


async def explain(kube: KubeClient, pod_obj: JSON, cfg: SchedulerConfig, mode: Any = None) -> str:
    state, book = await load_state(kube, cfg.knowledge, cfg.exploration)
    pod = parse_pod(pod_obj)
    if isinstance(pod, InputError):
        return f"pod is invalid: {pod.message}"
    state.remove_pod(pod.uid or pod.key)  # explain where it would go now, not where it is
    name = (pod_obj.get("spec") or {}).get("schedulerName", contract.SCHEDULER_NAME)
    profile = cfg.profile_for(str(name)) or cfg.profiles[0]
    params = profile.params()
    if mode:
        params = replace(params, mode=mode)
    snapshot = state.snapshot(dt.datetime.now(dt.UTC))
    decision = schedule_one(pod, snapshot, params, explain=True)
    return render(decision, snapshot, book, cfg.knowledge)
