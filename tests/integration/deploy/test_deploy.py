"""`make deploy OVERLAY=manifests/overlays/local` on the real-node cluster, then the product
as it runs in a cluster: pods on the real node under their own service accounts, binds by the
in-cluster scheduler, leader handover, the monitor's watts, RBAC both ways, every overlay
accepted by the API server."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import json
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched import contract
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched_lab.cluster import realnode
from energysched_lab.experiment.realcluster import Workload, run_real
from energysched_lab.experiment.runner import ENERGY, KUBE, plan
from energysched_lab.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from energysched_mlworkflow.pipeline import data_volume
from tests.integration.deploy.conftest import NAMESPACE
from tests.support import ROOT, Kubectl, eventually_sync

COMPONENTS = {
    # app.kubernetes.io/name -> its ServiceAccount
    "energy-scheduler": "energy-scheduler",
    "energysched-operator": "energysched-operator",
    "energysched-monitor": "energysched-monitor",
    "energysched-monitor-model": "energysched-monitor-model",
    "energysched-power-manager": "energysched-power-manager",
}
SA = "system:serviceaccount:energysched:"


def get(rk: Kubectl, *args: str) -> Any:
    return json.loads(rk(*args, "-o", "json"))


def wait_for(what: str, check: Any, timeout: float = 90, interval: float = 0.5) -> Any:
    """``check()`` until truthy (kubectl probes: synchronous)."""
    return eventually_sync(check, timeout=timeout, what=what, interval=interval)


def test_make_deploy_names_the_context_and_waits(deployed: str, real_cluster: Any) -> None:
    assert "-> context 'energysched-local'" in deployed
    assert "every component of energysched is ready" in deployed
    # The namespace warns about pods below the "restricted" Pod Security Standard: none is.
    assert "would violate PodSecurity" not in deployed, deployed


def test_components_run_on_the_real_node_under_their_own_accounts(
    deployed: str, rk: Kubectl
) -> None:
    pods = get(rk, "-n", NAMESPACE, "get", "pods")["items"]
    seen: dict[str, int] = {}
    for pod in pods:
        name = pod["metadata"]["labels"]["app.kubernetes.io/name"]
        assert pod["spec"]["nodeName"] == realnode.NODE_NAME, pod["metadata"]["name"]
        assert pod["spec"]["serviceAccountName"] == COMPONENTS[name]
        ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"]
        assert ready == "True", (pod["metadata"]["name"], pod["status"])
        # The token the admission plugin projected: the pod really talks as its account.
        assert any(v["name"].startswith("kube-api-access-") for v in pod["spec"]["volumes"])
        seen[name] = seen.get(name, 0) + 1
    assert seen == {
        "energy-scheduler": 2,
        "energysched-operator": 1,
        "energysched-monitor": 1,  # the DaemonSet: on the real node only
        "energysched-monitor-model": 1,
        "energysched-power-manager": 2,  # leader-elected; does nothing without opted-in nodes
    }


def test_every_overlay_passes_server_side_dry_run(deployed: str, rk: Kubectl) -> None:
    overlays = (
        "base",
        "overlays/local",
        "overlays/thesis",
        "overlays/thesis-rapl",
        "overlays/thesis-sleep",
    )
    for overlay in overlays:
        out = rk("apply", "--dry-run=server", "-k", str(ROOT / "manifests" / overlay))
        assert "(server dry run)" in out, overlay


# -- RBAC both ways -----------------------------------------------------------------------


MUST = {
    "energy-scheduler": [
        "list pods",
        "watch pods",
        "list nodes",
        "watch nodes",
        "create pods --subresource=binding",
        "patch pods --subresource=status",
        "create events.events.k8s.io",
        "list energyprofiles.energy.thesis.io",
        "watch energyprofiles.energy.thesis.io",
        "create leases.coordination.k8s.io -n energysched",
        "update leases.coordination.k8s.io/energy-scheduler -n energysched",
        "patch nodes",  # the wake request on a sleeping node
    ],
    "energysched-operator": [
        "watch energyprofiles.energy.thesis.io",
        "patch energyprofiles.energy.thesis.io --subresource=status",
        "list nodes",
        "create events.events.k8s.io -n default",
        # learning from finished pods: read them, annotate each with its energy, one Event
        "watch pods",
        "patch pods",
        "create events.events.k8s.io -n team-a",
    ],
    "energysched-power-manager": [
        "watch nodes",
        "patch nodes",
        "patch nodes --subresource=status",
        "watch pods",
        "get secrets -n energysched",
        "create leases.coordination.k8s.io -n energysched",
        "update leases.coordination.k8s.io/energysched-power-manager -n energysched",
        "create events.events.k8s.io -n default",  # about Nodes
        "create events.events.k8s.io -n energysched",  # ConfigRejected on its ConfigMap
        "create pods --subresource=eviction",  # consolidation, through the Eviction API
        "watch poddisruptionbudgets.policy",
    ],
    "energysched-monitor": ["get nodes", "patch nodes"],
    "energysched-monitor-model": [
        "list pods",
        "patch nodes",
        "list energyprofiles.energy.thesis.io",
    ],
}
MUST_NOT = {
    "energy-scheduler": [
        "delete pods",
        "update pods",
        "create pods",
        "update nodes",
        "patch nodes --subresource=status",
        "get secrets",
        "list configmaps",
        "update energyprofiles.energy.thesis.io",
        "update leases.coordination.k8s.io/kube-scheduler -n energysched",
        "create leases.coordination.k8s.io -n kube-system",
        "create pods --subresource=eviction",
    ],
    "energysched-operator": [
        "patch energyprofiles.energy.thesis.io",
        "delete energyprofiles.energy.thesis.io",
        "patch nodes",
        "delete pods",
        "update pods",
        "get secrets",
        "list customresourcedefinitions.apiextensions.k8s.io",
    ],
    "energysched-monitor": [
        "list nodes",
        "watch nodes",
        "update nodes",
        "delete nodes",
        "list pods",
        "get secrets",
        "patch nodes --subresource=status",
    ],
    "energysched-monitor-model": ["get pods", "delete pods", "update nodes", "get secrets"],
    "energysched-power-manager": [
        "delete pods",
        "update pods",
        "create pods",
        "update poddisruptionbudgets.policy",
        "update nodes",
        "delete nodes",
        "get secrets -n default",
        "update leases.coordination.k8s.io/energy-scheduler -n energysched",
        "get configmaps -n energysched",  # its config is a mounted file
        "create events.events.k8s.io -n kube-system",
    ],
}


def can_i(rk: Kubectl, account: str, spec: str) -> bool:
    words = spec.split()
    out = rk("auth", "can-i", *words, f"--as={SA}{account}", check=False)
    return out.strip().splitlines()[0] == "yes"


@pytest.mark.parametrize("account", sorted(MUST))
def test_rbac_allows_exactly_what_each_component_does(
    deployed: str, rk: Kubectl, account: str
) -> None:
    assert [s for s in MUST[account] if not can_i(rk, account, s)] == []
    assert [s for s in MUST_NOT[account] if can_i(rk, account, s)] == []


# -- the in-cluster scheduler ---------------------------------------------------------------


@pytest.fixture
def ns(rk: Kubectl) -> Iterator[str]:
    name = f"dp-{uuid.uuid4().hex[:8]}"
    rk("create", "namespace", name)
    wait_for(
        "default ServiceAccount", lambda: "default" in rk("-n", name, "get", "sa", "-o", "name")
    )
    yield name
    rk("delete", "namespace", name, "--wait=false")


REAL_PROFILE = {
    "apiVersion": f"{contract.GROUP}/{contract.VERSION}",
    "kind": contract.PROFILE_KIND,
    "metadata": {"name": "realnode"},
    "spec": {
        "nodeSelector": {"kubernetes.io/hostname": realnode.NODE_NAME},
        "idlePowerWatts": 20.0,
        "workloads": {
            "training": {"performance": 50.0, "powerWatts": 40.0},
            "inference": {"performance": 500.0, "powerWatts": 35.0},
            "sequential": {"performance": 20.0, "powerWatts": 30.0},
        },
    },
}


def energy_pod(
    name: str, ns: str, node_selector: dict[str, str], **container: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": ns,
            "labels": {contract.WORKLOAD_TYPE_LABEL: "inference"},
        },
        "spec": {
            "schedulerName": contract.SCHEDULER_NAME,
            "nodeSelector": node_selector,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "main",
                    "image": realnode.TOOL_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": ["print", "placed by the energy scheduler"],
                    "resources": {"requests": {"cpu": "50m", "memory": "32Mi"}},
                    **container,
                }
            ],
        },
    }


def scheduled_events(rk: Kubectl, ns: str) -> dict[str, int]:
    events = get(rk, "-n", ns, "get", "events.events.k8s.io")["items"]
    counts: dict[str, int] = {}
    for ev in events:
        if ev.get("reason") == "Scheduled" and ev.get("reportingController", "").startswith(
            "energy"
        ):
            pod = ev["regarding"]["name"]
            counts[pod] = counts.get(pod, 0) + 1
    return counts


def test_in_cluster_scheduler_binds_to_kwok_and_to_the_real_node(
    deployed: str, rk: Kubectl, ns: str
) -> None:
    rk("apply", "-f", "-", input=json.dumps(REAL_PROFILE))
    pods = [
        energy_pod("on-real", ns, {realnode.REAL_NODE_LABEL: "true"}),
        energy_pod("on-kwok-a", ns, {"kubernetes.io/hostname": "wyse"}),
        energy_pod("on-kwok-b", ns, {"kubernetes.io/hostname": "tvpc"}),
        energy_pod("anywhere", ns, {}),
    ]
    for pod in pods:
        rk("apply", "-f", "-", input=json.dumps(pod))

    def bound() -> dict[str, str] | None:
        items = get(rk, "-n", ns, "get", "pods")["items"]
        nodes = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in items}
        return nodes if all(nodes.values()) and len(nodes) == len(pods) else None

    nodes = wait_for("all pods bound", bound, timeout=120)
    assert nodes["on-real"] == realnode.NODE_NAME
    assert nodes["on-kwok-a"] == "wyse" and nodes["on-kwok-b"] == "tvpc"
    # The real node's pod really ran, and its output is readable.
    wait_for(
        "the real node's pod to finish",
        lambda: get(rk, "-n", ns, "get", "pod", "on-real")["status"].get("phase") == "Succeeded",
    )
    assert rk("-n", ns, "logs", "on-real").strip() == "placed by the energy scheduler"
    counts = wait_for(
        "Scheduled events", lambda: (c := scheduled_events(rk, ns)) and len(c) == 4 and c
    )
    assert counts == {p["metadata"]["name"]: 1 for p in pods}


def lease(rk: Kubectl) -> dict[str, Any]:
    return get(rk, "-n", NAMESPACE, "get", "lease", "energy-scheduler")["spec"]


def test_leader_handover_within_the_lease_and_no_double_bind(
    deployed: str, rk: Kubectl, ns: str
) -> None:
    spec = lease(rk)
    holder, duration = spec["holderIdentity"], spec["leaseDurationSeconds"]
    replicas = {
        p["metadata"]["name"]
        for p in get(
            rk, "-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/name=energy-scheduler"
        )["items"]
    }
    assert holder in replicas, (holder, replicas)
    # Pods keep arriving while the leader goes away.
    for i in range(4):
        rk(
            "apply",
            "-f",
            "-",
            input=json.dumps(energy_pod(f"before-{i}", ns, {"kubernetes.io/hostname": "wyse"})),
        )
    # Wall clock: compared with the lease's acquireTime, which the standby writes from the
    # same machine's clock. The kubectl calls after the delete (pods, polling) are not timed.
    deleted_at = time.time()
    rk("-n", NAMESPACE, "delete", "pod", holder, "--wait=false")
    for i in range(6):
        rk(
            "apply",
            "-f",
            "-",
            input=json.dumps(energy_pod(f"during-{i}", ns, {"kubernetes.io/hostname": "rpi"})),
        )
    # The standby usually wins; the Deployment's replacement for the deleted pod may win the
    # race instead when it starts within a retry period. Either is a handover; the old
    # holder leading again, or nobody, is not.
    acquired = eventually_sync(
        lambda: lease(rk),
        until=lambda spec: spec.get("holderIdentity") not in (None, "", holder),
        timeout=duration + 30,
        what="another replica to lead",
        interval=0.5,
    )
    took = dt.datetime.fromisoformat(acquired["acquireTime"]).timestamp() - deleted_at
    print(f"leader handover took {took:.1f} s (lease {duration} s)")
    assert 0 < took <= duration + 5, f"handover took {took:.1f} s, lease is {duration} s"

    def all_bound() -> bool:
        items = get(rk, "-n", ns, "get", "pods")["items"]
        return len(items) == 10 and all(p["spec"].get("nodeName") for p in items)

    wait_for("every pod bound", all_bound, timeout=120)
    counts = wait_for(
        "Scheduled events", lambda: (c := scheduled_events(rk, ns)) and len(c) == 10 and c
    )
    assert set(counts.values()) == {1}, counts  # one bind per pod, none twice


# -- the monitor ------------------------------------------------------------------------------


class _Forward(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def forwarder(bind: str, target: tuple[str, int]) -> _Forward:
    """The fake plug listens on loopback only; this carries the pod's connections to it."""

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            with socket.create_connection(target, timeout=10) as upstream:

                def pump(src: socket.socket, dst: socket.socket) -> None:
                    with contextlib.suppress(OSError):
                        while data := src.recv(65536):
                            dst.sendall(data)
                    with contextlib.suppress(OSError):
                        dst.shutdown(socket.SHUT_WR)

                t = threading.Thread(target=pump, args=(upstream, self.request), daemon=True)
                t.start()
                pump(self.request, upstream)
                t.join(10)

    server = _Forward((bind, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextlib.contextmanager
def plug_for_pods(
    node_net: realnode.NodeNet, gen: int, password_file: Path | None = None
) -> Iterator[str]:
    """A fake Shelly plug (42.5 W) on loopback, reachable from the pods at the host's
    address on the node's network; yields its URL as a pod sees it. With
    ``password_file`` the plug asks for that password (Gen1: HTTP Basic auth)."""
    auth = ["--password-file", str(password_file)] if password_file else []
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "energysched_lab.fake_shelly"),
            *("--gen", str(gen), "--power", "42.5", *auth),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads(proc.stdout.readline())["url"]
        port = int(url.rsplit(":", 1)[1])
        server = forwarder(node_net.host_ip, ("127.0.0.1", port))
        try:
            yield f"http://{node_net.host_ip}:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def fake_plug(node_net: realnode.NodeNet) -> Iterator[str]:
    with plug_for_pods(node_net, 2) as url:
        yield url


@contextlib.contextmanager
def node_reads_plug(rk: Kubectl, url: str) -> Iterator[None]:
    """The real node's monitor pointed at the plug (the node annotation), and waited for
    until it publishes the plug's 42.5 W on the node; the annotation is removed after."""
    config = json.dumps({"kind": "shelly", "address": url, "maxWatts": 200})
    node = realnode.NODE_NAME
    rk(
        "annotate",
        "--overwrite",
        "node",
        node,
        f"{contract.POWER_SOURCE_CONFIG_ANNOTATION}={config}",
    )
    try:

        def plug_watts() -> bool:
            ann = get(rk, "get", "node", node)["metadata"].get("annotations", {})
            value = ann.get(contract.CURRENT_WATTS_ANNOTATION)
            return value is not None and abs(float(value) - 42.5) < 0.01

        # Up to the monitor's read backoff (at most 60 s): until the annotation named a plug,
        # the node had no source and its reads were failing.
        wait_for("the plug's 42.5 W on the node", plug_watts, timeout=150)
        yield
    finally:
        rk("annotate", "node", node, f"{contract.POWER_SOURCE_CONFIG_ANNOTATION}-")


def test_monitor_pod_publishes_the_plugs_watts_onto_its_node(
    deployed: str, rk: Kubectl, fake_plug: str
) -> None:
    with node_reads_plug(rk, fake_plug):  # fails when the watts never arrive
        pass


# -- the ML workflow, run by the experiment runner -------------------------------------------


def test_experiment_runner_records_the_workflow_run_on_the_real_node(
    workflow_image: Path,
    deployed: str,
    rk: Kubectl,
    real_cluster: Any,
    fake_plug: str,
    tmp_path: Path,
) -> None:
    """`energysched experiment --cluster current` against this cluster: the workflow image's
    stages run as Jobs on the real node, placed by kube-scheduler and by the in-cluster
    energysched; the runner records their durations, what each stage reports of itself in
    its log (its own time, its accuracy), and joules from the watts the monitor pod
    publishes (read from a fake plug)."""
    rk("apply", "-f", "-", input=json.dumps(REAL_PROFILE))
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the stages run as uid 10001; one directory per workflow is made in it
    node = realnode.NODE_NAME
    with node_reads_plug(rk, fake_plug):
        out = tmp_path / "results"
        runs = asyncio.run(
            run_real(
                str(real_cluster.kubeconfig),
                load_scenario(DEFAULT_SCENARIO),
                plan([KUBE, ENERGY], ["normalized"], [0.5], [1]),
                out=out,
                batch="realnode",
                workload=Workload(
                    image="energysched-mlworkflow:dev",
                    pull_policy="Never",
                    data=data_volume(host_path=str(data)),
                    node_selector={realnode.REAL_NODE_LABEL: "true"},
                    work_scale=0.1,  # a tenth of the thesis workflow: seconds, not minutes
                ),
                max_wall_s=600,
            )
        )
    assert [r["status"] for r in runs] == ["complete", "complete"], runs
    with (out / "thesis_results.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    print([(r["scheduler"], r["stage"], r["stage_seconds"], r["duration_s"]) for r in rows])
    assert sorted((r["scheduler"], r["stage"]) for r in rows) == sorted(
        (s, st) for s in (KUBE, ENERGY) for st in ("preprocessing", "training", "inference")
    )
    for r in rows:
        assert r["status"] == "succeeded" and r["node"] == node and r["reason"] == "", r
        # The container's timestamps have whole seconds; the stage's own time is exact and
        # lies inside them (up to the truncation of each timestamp).
        duration, own = float(r["duration_s"]), float(r["stage_seconds"])
        assert 0 < own <= duration + 2.0, r
        # Measured through the monitor pod: the plug's constant 42.5 W over the container.
        assert float(r["joules"]) == pytest.approx(42.5 * duration, rel=1e-6), r
        if r["stage"] == "preprocessing":
            assert r["accuracy"] == ""
        else:  # training: on the training images; inference: on the test set
            assert 0.5 < float(r["accuracy"]) <= 1.0, r  # far above chance (0.1)


# -- the knowledge base, filled by a benchmark Job on the real node ---------------------------


def test_bench_run_turns_a_job_on_the_real_node_into_a_measured_profile(
    workflow_image: Path,
    deployed: str,
    real_cluster: Any,
    node_net: realnode.NodeNet,
    tmp_path: Path,
) -> None:
    """`energysched bench run`: the benchmark kernels (in the workflow image) run as a Job
    on the real node, read a Gen1 plug with a password over the pod network (the password
    from a Secret mounted into the Job), and the result in the pod's log becomes an
    EnergyProfile with measured performance and measured wall power."""
    out = tmp_path / "profiles"
    password = tmp_path / "plug-password"
    password.write_text(f"pw-{uuid.uuid4().hex[:12]}\n")
    rk = Kubectl(real_cluster.kubeconfig)
    secret = f"bench-plug-{uuid.uuid4().hex[:6]}"
    rk("-n", NAMESPACE, "create", "secret", "generic", secret, f"--from-file=password={password}")
    with plug_for_pods(node_net, 1, password) as plug:
        short = ["--repeats", "1", "--seconds", "0.3", "--warmup", "0.1", "--idle-seconds", "1"]
        args = [*short, "--no-gpu", "--power", "shelly", "--shelly-url", plug]
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("energysched")),
                "bench",
                "run",
                "--kubeconfig",
                str(real_cluster.kubeconfig),
                "--image",
                "energysched-mlworkflow:dev",
                "--namespace",
                NAMESPACE,
                "--timeout",
                "300",
                "--out",
                str(out),
                "--shelly-password-secret",
                secret,
                *(f"--bench-arg={a}" for a in args),
            ],
            capture_output=True,
            text=True,
            timeout=400,
        )
    rk("-n", NAMESPACE, "delete", "secret", secret)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (manifest,) = [yaml.safe_load(p.read_text()) for p in sorted(out.glob("*.yaml"))]
    spec = manifest["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": realnode.NODE_NAME}
    assert set(spec["workloads"]) == set(contract.WORKLOAD_TYPES)
    for figures in spec["workloads"].values():
        assert figures["source"] == "measured" and figures["performance"] > 0
        assert figures["powerWatts"] == pytest.approx(42.5)  # the plug, at the wall
    assert not isinstance(parse_profile(manifest), ValidationFailure)
