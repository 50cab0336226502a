"""``energysched bench run``: real kernels here through the collection and conversion path;
the Job path on the local cluster (KWOK nodes run no container, and the CLI says so)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched import contract
from energysched.kb.io import dump_profile, load_profiles
from energysched.kb.validate import ValidationFailure, parse_profile
from energysched.kube.client import ApiError, KubeClient, api_path
from energysched_bench.result import extract_result
from energysched_lab.cluster.local import LocalCluster
from tests.support import ROOT

TINY = ["--size", "tiny", "--repeats", "2", "--seconds", "0.05", "--warmup", "0.01"]


def _bench_here(node: str, out: Path) -> dict[str, Any]:
    """Run the real kernels on this machine (tiny sizes, no power source)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "energysched_bench",
            "--json",
            *TINY,
            "--node",
            node,
            "--no-gpu",
            "--power",
            "none",
            "--idle-seconds",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out.write_text(proc.stdout)  # the marked block, as a pod log holds it
    return extract_result(proc.stdout)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energysched.cli", "bench", "run", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    where = tmp_path_factory.mktemp("bench-results")
    docs = {node: _bench_here(node, where / f"{node}.log") for node in ("wyse", "rpi")}
    return where, docs


def test_local_results_become_valid_estimated_profiles(
    results: tuple[Path, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    where, docs = results
    out = tmp_path / "profiles"
    proc = _cli(
        "--local-results",
        str(where),
        "--power-from",
        str(ROOT / "kb" / "profiles"),
        "--allow-nonstandard",
        "--out",
        str(out),
        "--json",
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {p["node"] for p in summary["profiles"]} == {"wyse", "rpi"}
    kb = load_profiles(ROOT / "kb" / "profiles").knowledge_base()
    for node, doc in docs.items():
        manifest = yaml.safe_load((out / f"{node}.yaml").read_text())
        parsed = parse_profile(manifest)
        assert not isinstance(parsed, ValidationFailure), parsed
        assert dict(parsed.node_selector) == {"kubernetes.io/hostname": node}
        measured = {k["workload"]: k["median"] for k in doc["kernels"] if k["device"] == "cpu"}
        for wtype, figures in parsed.workloads.items():
            assert figures.performance == pytest.approx(measured[wtype])
            # No power source here: power comes from kb/profiles and says so.
            assert figures.source == "estimated"
            assert figures.power_watts == kb.profiles[node].workloads[wtype].power_watts
            assert "NOT measured" in figures.provenance


def test_nonstandard_sizes_or_missing_power_are_refused(
    results: tuple[Path, dict[str, dict[str, Any]]], tmp_path: Path
) -> None:
    where, _ = results
    proc = _cli(
        "--local-results",
        str(where),
        "--power-from",
        str(ROOT / "kb" / "profiles"),
        "--out",
        str(tmp_path / "a"),
    )
    assert proc.returncode == 1 and "non-standard sizes" in proc.stderr
    proc = _cli("--local-results", str(where), "--allow-nonstandard", "--out", str(tmp_path / "b"))
    assert proc.returncode == 1 and "refusing to invent" in proc.stderr
    assert not list((tmp_path / "b").glob("*.yaml"))


async def test_local_results_applied_to_the_cluster(
    kube: KubeClient, local_cluster: LocalCluster, knowledge_base: None, tmp_path: Path
) -> None:
    node = f"benchtest-{uuid.uuid4().hex[:6]}"
    _bench_here(node, tmp_path / f"{node}.log")
    # A --power-from profile for this (made-up) node, so power can be filled in.
    wyse = load_profiles(ROOT / "kb" / "profiles" / "wyse.yaml").profiles[0]
    power = tmp_path / "power"
    power.mkdir()
    fake = dump_profile(wyse)
    fake["metadata"]["name"] = node
    fake["spec"]["nodeSelector"] = {"kubernetes.io/hostname": node}
    (power / "p.yaml").write_text(yaml.safe_dump(fake))
    path = api_path(contract.API_VERSION, contract.PROFILE_PLURAL, name=node)
    try:
        proc = _cli(
            "--kubeconfig",
            str(local_cluster.kubeconfig),
            "--local-results",
            str(tmp_path / f"{node}.log"),
            "--power-from",
            str(power),
            "--allow-nonstandard",
            "--out",
            str(tmp_path / "out"),
            "--apply",
        )
        assert proc.returncode == 0, proc.stderr
        applied = await kube.get(path)
        assert applied["spec"]["nodeSelector"] == {"kubernetes.io/hostname": node}
        assert applied["spec"]["workloads"]["training"]["source"] == "estimated"
    finally:
        try:
            await kube.delete(path)
        except ApiError as exc:
            if not exc.not_found:
                raise


def test_job_path_skips_simulated_nodes_and_says_why(
    local_cluster: LocalCluster, namespace: str
) -> None:
    proc = _cli(
        "--kubeconfig",
        str(local_cluster.kubeconfig),
        "--image",
        "bench:test",
        "--namespace",
        namespace,
    )
    assert proc.returncode == 1
    assert "simulated (KWOK)" in proc.stderr and "--local-results" in proc.stderr


async def test_job_path_on_a_simulated_node_times_out_honestly(
    kube: KubeClient, local_cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    proc = _cli(
        "--kubeconfig",
        str(local_cluster.kubeconfig),
        "--image",
        "bench:test",
        "--namespace",
        namespace,
        "--node",
        "wyse",
        "--include-simulated",
        "--timeout",
        "6",
        "--keep-jobs",
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 1
    assert "timed out" in proc.stderr and "runs no container" in proc.stderr
    jobs = (await kube.get(api_path("batch/v1", "jobs", namespace)))["items"]
    (job,) = jobs
    template = job["spec"]["template"]["spec"]
    assert template["nodeSelector"] == {"kubernetes.io/hostname": "wyse"}
    assert template["containers"][0]["image"] == "bench:test"


async def test_the_plug_password_reaches_the_job_as_a_mounted_secret_only(
    kube: KubeClient, local_cluster: LocalCluster, namespace: str, tmp_path: Path
) -> None:
    """A missing Secret is refused before any Job; with it, the Job mounts it and the
    password appears nowhere in the Job (the real node's run: tests/integration/deploy)."""
    common = [
        "--kubeconfig", str(local_cluster.kubeconfig), "--image", "bench:test",
        "--namespace", namespace, "--node", "wyse", "--include-simulated",
        "--out", str(tmp_path), "--bench-arg=--power", "--bench-arg=shelly",
        "--bench-arg=--shelly-url=http://plug.invalid",
    ]  # fmt: skip
    proc = _cli(*common, "--shelly-password-secret", "plug-auth")
    assert proc.returncode == 1 and f"secret {namespace}/plug-auth does not exist" in proc.stderr
    assert not (await kube.get(api_path("batch/v1", "jobs", namespace)))["items"]

    password = "s3cret-" + uuid.uuid4().hex[:8]
    await kube.create(
        api_path("v1", "secrets", namespace),
        {"metadata": {"name": "plug-auth"}, "stringData": {"wyse": password}},
    )
    proc = _cli(*common, "--shelly-password-secret", "plug-auth/password")
    assert proc.returncode == 1 and "has no key 'password' (has: wyse)" in proc.stderr

    proc = _cli(
        *common, "--shelly-password-secret", "plug-auth/wyse", "--timeout", "6", "--keep-jobs"
    )
    assert proc.returncode == 1 and "timed out" in proc.stderr  # KWOK runs no container
    (job,) = (await kube.get(api_path("batch/v1", "jobs", namespace)))["items"]
    assert password not in json.dumps(job)
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["secret"]["secretName"] == "plug-auth"
    assert "--shelly-password-file" in pod["containers"][0]["command"]
    assert password not in proc.stdout + proc.stderr
