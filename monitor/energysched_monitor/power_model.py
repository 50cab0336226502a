"""Model power for simulated (KWOK) nodes: the profile's idle power plus the pods' work.

The math (pure, in :func:`model_power`):

* Each EnergyProfile workload figure ``powerWatts`` is the node's wall power while
  running that workload on the whole node, so its *dynamic* part is
  ``powerWatts - idlePowerWatts`` (never below 0).
* A running pod uses the share ``cpu request / node allocatable cpu`` of the node
  (1.0 if either is unknown or the request is 0: a pod without a request is not free).
* The node saturates: if the shares add up to more than 1 they are scaled down to 1,
  so a full node draws the share-weighted mix of its workloads' power, never more.
* A pod without a workload type, or with one the profile lacks, counts with the mean
  dynamic power of the profile's workloads ("no data" must not look idle).
* DaemonSet pods (kube-proxy, this monitor, ...) are part of the idle baseline the
  profile's ``idlePowerWatts`` was measured with, and add nothing.
* The result is capped at ``maxPowerWatts`` when the profile gives one.

Without a matching profile there is no reading (ReadError "config"), never 0 W.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from energysched.contract import WORKLOAD_TYPES
from energysched.core.values import CPU
from energysched.kb.profiles import ProfileSpec
from energysched_monitor.interfaces import ClusterView, NodeInfo, PodInfo, is_daemon
from energysched_monitor.readings import PowerSource, ReadError, Reading, SourceKind
from energysched_monitor.source_interface import (
    BuildContext,
    ConfigError,
    KindFields,
    SourcePlugin,
    SourceSpec,
)


@dataclass(frozen=True, slots=True)
class ModelPower:
    watts: float
    idle_watts: float
    running_pods: int
    utilisation: float  # sum of the shares after saturation, in [0, 1]
    profile: str


def _dynamic(profile: ProfileSpec, workload_type: str | None) -> float:
    idle = profile.idle_power_watts
    figures = None
    for known in WORKLOAD_TYPES:
        if known == workload_type:
            figures = profile.workloads.get(known)
    if figures is not None:
        return max(0.0, figures.power_watts - idle)
    dynamics = [max(0.0, f.power_watts - idle) for f in profile.workloads.values()]
    return sum(dynamics) / len(dynamics) if dynamics else 0.0


def model_power(
    profile: ProfileSpec, pods: Iterable[PodInfo], allocatable_millicpu: int | None
) -> ModelPower:
    """``allocatable_millicpu`` and the pods' cpu requests in millicores (the core's
    canonical unit); a pod without a cpu request, or a node without allocatable
    cpu, gives the pod the whole node."""
    parts: list[tuple[float, float]] = []  # (dynamic watts, share)
    for pod in pods:
        if pod.phase != "Running" or is_daemon(pod):
            continue
        share = 1.0
        cpu = pod.requests.get(CPU, 0)
        if cpu and allocatable_millicpu and allocatable_millicpu > 0:
            share = min(1.0, cpu / allocatable_millicpu)
        parts.append((_dynamic(profile, pod.workload_type_raw), share))
    total_share = sum(share for _, share in parts)
    scale = 1.0 / total_share if total_share > 1.0 else 1.0
    watts = profile.idle_power_watts + sum(dyn * share * scale for dyn, share in parts)
    if profile.max_power_watts is not None:
        watts = min(watts, profile.max_power_watts)
    return ModelPower(
        watts=watts,
        idle_watts=profile.idle_power_watts,
        running_pods=len(parts),
        utilisation=min(1.0, total_share),
        profile=profile.name,
    )


class ModelSource:
    """A PowerSource for one simulated node over a :class:`ClusterView`."""

    def __init__(self, node: str, view: ClusterView) -> None:
        self.node = node
        self.view = view

    @property
    def kind(self) -> SourceKind:
        return "model"

    @property
    def describe(self) -> str:
        return f"model of node {self.node}"

    async def close(self) -> None:
        return None

    def read_now(self, info: NodeInfo | None = None) -> Reading:
        if info is None:
            info = next((n for n in self.view.nodes() if n.name == self.node), None)
            if info is None:
                raise ReadError("config", f"node {self.node} is not in the cache")
        resolution = self.view.knowledge_base().resolve(info.labels)
        if resolution is None:
            raise ReadError(
                "config", f"no EnergyProfile matches node {self.node} (labels {dict(info.labels)})"
            )
        power = model_power(
            resolution.profile, self.view.pods_on_node(self.node), info.allocatable.get(CPU)
        )
        return Reading(
            power.watts,
            "model",
            estimate=True,
            simulated=True,
            detail={"profile": power.profile, "pods": power.running_pods},
        )

    async def read(self) -> Reading:
        return self.read_now()


# -- the kind ``model`` ----------------------------------------------------------------


def _build(spec: SourceSpec, fields: KindFields, ctx: BuildContext) -> PowerSource:
    if ctx.view is None:
        raise ConfigError(
            f"node {ctx.node}: kind model is served by the model mode (--model), "
            "not by the per-node DaemonSet"
        )
    return ModelSource(ctx.node, ctx.view)


#: No keys of its own: the model reads the node's EnergyProfile and pods.
PLUGIN: Final = SourcePlugin("model", KindFields, _build)
