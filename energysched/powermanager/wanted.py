"""Which sleeping node a pending pod needs woken: shared by the scheduler and the manager.

Two ways lead to a wake. (1) ``cluster-energy`` counts wake-ups itself: the core scores
the sleeping nodes a typed pod would fit once awake beside the awake ones (their wake
energy, wake time and hold, :mod:`energysched.core.sleeping`), and when one ranks first
its decision names it (``Decision.wake_node``). (2) Every other mode, and cluster-energy
for a pod it cannot score (no workload type, no figures), sees sleeping nodes as
infeasible (the ``energy.thesis.io/asleep`` NoSchedule taint): when the core finds no
node, this module asks the pure policy (:func:`energysched.power.policy.choose_wake`)
whether a sleeping node would take the pod (its requests fit what the node offers, its
nodeSelector matches). The power manager does (2) for other schedulers' unschedulable
pods, with this same choice.

Either way the scheduler's controller writes the wake request on that node
(``energy.thesis.io/wake-requested`` and ``-by``), marks the pod ``PodScheduled=False`` with
reason ``WaitingForNodeWake`` and posts a ``WakingNode`` Event. The power manager wakes the
node; when it is Ready its taint comes off, the node update re-queues the pod, and the core
binds it as usual. A wake that fails leaves the node ``wake-failed``: the policy skips it
during its backoff, so the next attempt picks another node or reports Unschedulable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from energysched.contract import WAKE_REQUESTED_ANNOTATION, WAKE_REQUESTED_BY_ANNOTATION
from energysched.kb.profiles import KnowledgeBase
from energysched.power import policy
from energysched.power.policy import NodeView, PolicyConfig, Resources, WakeChoice
from energysched.powermanager import view


def _selector_matches(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    spec = pod.get("spec")
    selector = spec.get("nodeSelector") if isinstance(spec, Mapping) else None
    if not isinstance(selector, Mapping):
        return True
    labels = view.labels_of(node)
    return all(labels.get(k) == v for k, v in selector.items())


def node_views(
    nodes: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]], kb: KnowledgeBase
) -> list[NodeView]:
    by_node = view.pods_by_node(pods)
    out = []
    for node in nodes:
        name = view.name_of(node)
        on_node = by_node.get(name, view.NodePods(Resources(), ()))
        resolved = kb.resolve(view.labels_of(node))
        state = view.power_state(node)
        out.append(
            NodeView(
                name=name,
                managed=view.managed(node),
                keep_awake=view.keep_awake(node, view.Selector(())),
                state=state,
                ready=view.is_ready(node),
                allocatable=view.allocatable(node),
                requested=on_node.requested,
                workload_pods=len(on_node.workload),
                empty_since=None,
                idle_watts=resolved.profile.idle_power_watts if resolved else None,
                power=resolved.profile.power_states if resolved else None,
                last_wake_failure=(
                    since.timestamp()
                    if state == "wake-failed" and (since := view.state_since(node))
                    else None
                ),
                wake_failures=_failures(node),
            )
        )
    return out


def _failures(node: Mapping[str, Any]) -> int:
    return policy.wake_failures_of(view.annotations_of(node))


def wake_target(
    pod: Mapping[str, Any],
    nodes: Mapping[str, Mapping[str, Any]],
    pods: Iterable[Mapping[str, Any]],
    kb: KnowledgeBase,
    now: float,
    config: PolicyConfig | None = None,
) -> WakeChoice | None:
    """The sleeping node to wake for ``pod`` (which the core placed nowhere), or None."""
    need = view.requests_of(pod)
    views = node_views(nodes.values(), pods, kb)
    eligible = [v for v in views if _selector_matches(pod, nodes[v.name])]
    if policy.fits_awake(need, eligible):
        return None  # room exists: the pod is held back by something a wake does not change
    return policy.choose_wake(need, eligible, now, config or PolicyConfig())


def waiting_on(node: Mapping[str, Any]) -> bool:
    """Whether a wake of this node is still in progress (asleep with a request, or waking)."""
    state = view.power_state(node)
    return state == "waking" or (state == "asleep" and view.wake_requested(node) is not None)


def request_patch(pod_key: str, now_rfc3339: str) -> dict[str, Any]:
    return {
        "metadata": {
            "annotations": {
                WAKE_REQUESTED_ANNOTATION: now_rfc3339,
                WAKE_REQUESTED_BY_ANNOTATION: pod_key,
            }
        }
    }
