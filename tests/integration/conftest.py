"""Integration fixtures: the EnergyProfile CRD and kb/ profiles, scheduler processes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from energysched_lab.cluster.local import LocalCluster
from tests.support import ROOT, Kubectl, SchedulerProcess


def install_knowledge_base(cluster: LocalCluster) -> None:
    """The CRD and the thesis profiles (kb/profiles)."""
    kubectl = Kubectl(cluster.kubeconfig)
    kubectl("apply", "-f", str(ROOT / "manifests" / "crd" / "energyprofiles.yaml"))
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/energyprofiles.energy.thesis.io",
    )
    kubectl("apply", "-f", str(ROOT / "kb" / "profiles"))


@pytest.fixture(scope="session")
def knowledge_base(local_cluster: LocalCluster) -> None:
    """The CRD and the thesis profiles, installed once per session."""
    install_knowledge_base(local_cluster)


@pytest.fixture(autouse=True)
def _kb_profiles_as_written(request: pytest.FixtureRequest) -> None:
    """Each test that uses the session's knowledge base finds the kb profiles as written:
    an experiment run on the shared cluster installs its scenario's profiles in their place
    (and removes the others), as it must on a cluster of its own."""
    if "knowledge_base" in request.fixturenames:
        cluster: LocalCluster = request.getfixturevalue("local_cluster")
        Kubectl(cluster.kubeconfig)("apply", "-f", str(ROOT / "kb" / "profiles"))


@pytest.fixture(scope="module")
def private_cluster(request: pytest.FixtureRequest) -> Iterator[LocalCluster]:
    """A local cluster of the test module's own, with the CRD and the thesis profiles.

    For tests that freeze or stop a control-plane process: the session's cluster is
    shared by every other test, and a frozen API server would fail them. It has its
    own name, ports and state directory, and is purged when the module is done.
    """
    module = hashlib.sha256(request.module.__name__.encode()).hexdigest()[:6]
    cluster = LocalCluster(f"pytest-{os.getpid()}-{module}")
    try:
        cluster.up()
        install_knowledge_base(cluster)
        yield cluster
    finally:
        cluster.purge()


def scheduler_config(namespace: str, knowledge: str = "spec", **profile: Any) -> dict[str, Any]:
    return {
        "profiles": [{"schedulerName": "energy-scheduler", **profile}],
        # The profiles' spec figures, which the tests' expected placements are made of: the
        # session's cluster is shared, and an operator of another test may have learned
        # figures into the same profiles' status from the pods that ran there.
        # test_learned_knowledge asks for "learned".
        "knowledge": knowledge,
        # The lease lives in the test's namespace: tests never share a leader.
        "leaderElection": {
            "enabled": True,
            "namespace": namespace,
            "name": "energy-scheduler",
            "leaseDurationSeconds": 6,
            "renewDeadlineSeconds": 4,
            "retryPeriodSeconds": 1,
        },
        "metricsAddress": "",
        "clientConnection": {"qps": 50, "burst": 100},
    }


@pytest.fixture
def start_scheduler(
    local_cluster: LocalCluster, knowledge_base: None, tmp_path: Path, namespace: str
) -> Iterator[Callable[..., SchedulerProcess]]:
    started: list[SchedulerProcess] = []

    def start(
        name: str = "sched-a",
        wait: bool = True,
        metrics_port: int | None = None,
        leader_election: dict[str, Any] | None = None,
        knowledge: str = "spec",
        **profile: Any,
    ) -> SchedulerProcess:
        """``metrics_port``: serve /metrics there (tests that read the scheduler's counters);
        ``leader_election``: fields that replace the test defaults (e.g. the lease's times)."""
        config = scheduler_config(namespace, knowledge, **profile)
        if metrics_port is not None:
            config["metricsAddress"] = f"127.0.0.1:{metrics_port}"
        config["leaderElection"].update(leader_election or {})
        proc = SchedulerProcess(local_cluster.kubeconfig, config, tmp_path, name)
        started.append(proc)
        if wait:
            proc.wait_synced()
        return proc

    yield start
    for proc in started:
        proc.stop()
