"""Small truths and jobs for the experiment's unit tests."""

from __future__ import annotations

from energysched.contract import WorkloadType
from energysched_lab.cluster.nodes import NodeClass
from energysched_lab.experiment.jobs import Job
from energysched_lab.experiment.scenario import NodeTruth, Truth, WorkTruth


def truth(**nodes: tuple[float, dict[str, tuple[float, float, str, float]]]) -> Truth:
    """truth(a=(idle, {"training": (perf, watts, resource, demand)}), ...)"""
    return Truth(
        {
            n: NodeTruth(n, idle, {wt: WorkTruth(*fig) for wt, fig in wls.items()})
            for n, (idle, wls) in nodes.items()
        }
    )


def node_class(name: str, cpu: str = "4", memory: str = "8Gi", gpu: str = "0") -> NodeClass:
    alloc = {"cpu": cpu, "memory": memory, "nvidia.com/gpu": gpu}
    return NodeClass(name, {}, alloc, alloc, {})


def job(
    jid: str,
    wt: WorkloadType,
    work: float,
    *,
    after: str | None = None,
    arrival: float = 0.0,
    noise: float = 1.0,
) -> Job:
    return Job(
        id=jid,
        stage=jid,
        workload_type=wt,
        work=work,
        arrival_s=arrival,
        after=after,
        cpu="500m",
        memory="256Mi",
        gpu=0,
        speed_noise=noise,
    )
