"""The images, built here and run here: amd64 natively, arm64 and arm/v7 under qemu-user.

Every container runs as the images are meant to run: their non-root user, a
read-only root file system, no capabilities, no network (``--network host``
only where ``explain`` must reach the local cluster's API server). The build
is the one ``make images`` does (cached in ~/.cache/energysched/images), so a
warm run costs the containers only. Nothing here skips: a machine without the
engine, mmdebstrap or qemu fails with the install command.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched_lab.cluster.local import LocalCluster
from energysched_lab.images import build, qemu
from energysched_lab.images.dockerd import Engine, docker_run_args
from energysched_mlworkflow.stages import parse_result
from tests.support import pod_manifest

ARCHES = list(build.ARCHES)
TAG = "dev"  # the tag make images builds: a test after make images finds it warm
#: What the tests run, under emulation too: small, but enough to learn. 30 steps reach
#: 94.4 % on the 359 held-out digits (amd64 and armv7 alike); an armv7 training step
#: takes about 5 s under qemu on the 2-core development machine.
WORK = {"preprocessing": 0.2, "training": 30, "inference": 1000}
MIN_ACCURACY = 0.90


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    with Engine() as running:
        yield running


@pytest.fixture(scope="session")
def built(engine: Engine) -> dict[tuple[str, str], build.Built]:
    for arch in ARCHES:
        if arch != "amd64":
            qemu.ensure_binfmt(build.ARCHES[arch].debian)
    done = build.build_all(ARCHES, list(build.DEFAULT_IMAGES), TAG, engine=engine)
    return {(b.image, b.arch): b for b in done}


def _run(
    engine: Engine, b: build.Built, *args: str, volumes: list[tuple[Path, str]] | None = None,
    extra: list[str] | None = None, network: str = "none",
) -> subprocess.CompletedProcess[str]:  # fmt: skip
    run = docker_run_args(
        b.ref, platform=build.ARCHES[b.arch].platform, volumes=volumes or [], network=network
    )
    run[1:1] = extra or []
    return engine.docker(*run, *args, check=False, capture=True, timeout=1800)


@pytest.mark.parametrize("arch", ARCHES)
def test_product_image_help_runs_non_root(
    engine: Engine, built: dict[tuple[str, str], build.Built], arch: str
) -> None:
    b = built[("energysched", arch)]
    proc = _run(engine, b, "--help")
    assert proc.returncode == 0, proc.stderr
    for command in ("scheduler", "explain", "operator", "monitor", "kb"):
        assert command in proc.stdout
    listed = re.findall(r"^    (\w+)", proc.stdout, flags=re.MULTILINE)
    assert "scheduler" in listed
    assert not {"cluster", "experiment"} & set(listed)  # lab commands
    inspect = engine.docker("image", "inspect", b.ref, capture=True)
    config = json.loads(inspect.stdout)[0]
    assert config["Config"]["User"] == "10001:10001"
    _, os_arch, *variant = build.ARCHES[arch].platform.split("/")
    assert (config["Os"], config["Architecture"]) == ("linux", os_arch)
    assert config.get("Variant", "") == "".join(variant)
    who = _run(engine, b, "-c", "import os; print(os.getuid())", extra=["--entrypoint", "python3"])
    assert who.stdout.strip() == "10001", who.stderr


def test_product_image_has_no_lab_or_test_code(
    engine: Engine, built: dict[tuple[str, str], build.Built]
) -> None:
    b = built[("energysched", "amd64")]
    script = (
        "import pathlib, importlib.util\n"
        "root = pathlib.Path('/usr/local/lib/python3.11/dist-packages')\n"
        "print('\\n'.join(str(p.relative_to(root)) for p in root.rglob('*.py')))\n"
        "print('LAB', importlib.util.find_spec('energysched_lab'))\n"
    )
    proc = _run(engine, b, "-c", script, extra=["--entrypoint", "python3"])
    assert proc.returncode == 0, proc.stderr
    files = proc.stdout.splitlines()
    assert "energysched/scheduler/controller.py" in files  # the listing is real
    assert "energysched_monitor/cli.py" in files
    assert not [f for f in files if f.startswith(("energysched_lab/", "tests/"))]
    assert "LAB None" in files
    # The wheel itself, as built for the image.
    wheel = build.product_wheel(build.images_root())
    names = zipfile.ZipFile(wheel).namelist()
    assert "energysched/cli.py" in names
    assert not [n for n in names if n.startswith(("energysched_lab/", "tests/"))]


def test_product_image_explains_a_pod_on_the_local_cluster(
    engine: Engine,
    built: dict[tuple[str, str], build.Built],
    local_cluster: LocalCluster,
    knowledge_base: None,  # the CRD and kb/profiles: explain reads the EnergyProfiles
    tmp_path: Path,
) -> None:
    # The kubeconfig and its keys are root's (0600); the image's user gets a copy.
    conf = yaml.safe_load(local_cluster.kubeconfig.read_text())
    share = tmp_path / "share"
    share.mkdir()
    for cluster in conf["clusters"]:
        ca = Path(cluster["cluster"]["certificate-authority"])
        shutil.copy(ca, share / "ca.crt")
        cluster["cluster"]["certificate-authority"] = "/share/ca.crt"
    for user in conf["users"]:
        for key, name in (("client-certificate", "client.crt"), ("client-key", "client.key")):
            shutil.copy(user["user"][key], share / name)
            user["user"][key] = f"/share/{name}"
    (share / "kubeconfig").write_text(yaml.safe_dump(conf))
    pod = pod_manifest("explain-me", schedulerName="energy-scheduler")
    pod["metadata"]["labels"] = {"energy.thesis.io/workload-type": "training"}
    (share / "pod.yaml").write_text(yaml.safe_dump(pod))
    for f in share.iterdir():
        f.chmod(0o644)
    share.chmod(0o755)
    b = built[("energysched", "amd64")]
    proc = _run(
        engine, b, "explain", "-f", "/share/pod.yaml", "--kubeconfig", "/share/kubeconfig",
        volumes=[(share, "/share")], network="host",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    # The per-node table of the local cluster's (KWOK) nodes and the decision.
    assert "workload training" in proc.stdout, proc.stdout
    assert "NODE" in proc.stdout and "\ndecision: " in proc.stdout, proc.stdout
    assert sum(line.split()[1:2] == ["yes"] for line in proc.stdout.splitlines()) >= 1


def test_archives_load_with_ctr_import(
    engine: Engine, built: dict[tuple[str, str], build.Built]
) -> None:
    """What a node's admin does: ``ctr -n k8s.io images import`` (here into our containerd)."""
    ctr = ["ctr", "--address", str(engine.run_dir / "containerd.sock"), "-n", "archive-test"]
    try:
        for image in build.DEFAULT_IMAGES:
            b = built[(image, "amd64")]
            proc = subprocess.run(
                [*ctr, "images", "import", str(b.archive)], capture_output=True, text=True
            )
            assert proc.returncode == 0, proc.stderr
            assert f"docker.io/library/{b.ref}" in proc.stdout
    finally:
        listed = subprocess.run([*ctr, "images", "ls", "-q"], capture_output=True, text=True)
        if listed.stdout.split():
            subprocess.run([*ctr, "images", "rm", *listed.stdout.split()], capture_output=True)


@pytest.fixture(scope="session")
def workflow_results(
    engine: Engine,
    built: dict[tuple[str, str], build.Built],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Each architecture's workflow: three containers sharing one data directory."""
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for arch in ARCHES:
        data = tmp_path_factory.mktemp(f"data-{arch}")
        data.chmod(0o777)  # the image's user writes here, as on a shared volume
        b = built[("energysched-mlworkflow", arch)]
        results[arch] = {}
        for stage, work in WORK.items():
            proc = _run(engine, b, stage, "--work", str(work), volumes=[(data, "/data")])
            assert proc.returncode == 0, f"{arch} {stage}: {proc.stderr}"
            (result,) = parse_result(proc.stdout)
            results[arch][stage] = result
        assert {p.name for p in data.iterdir()} >= {"dataset.npz", "model.npz", "inference.json"}
    # Kept for the record (the README's figures): accuracy and rates per architecture.
    record = build.images_root() / "out" / "workflow-test-results.json"
    record.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def test_workflow_image_runs_the_benchmark_kernels(
    engine: Engine, built: dict[tuple[str, str], build.Built]
) -> None:
    """The KB's bench Job uses this image with its own command (`python -m energysched_bench`)."""
    b = built[("energysched-mlworkflow", "amd64")]
    proc = _run(engine, b, "-m", "energysched_bench", "--help", extra=["--entrypoint", "python"])
    assert proc.returncode == 0, proc.stderr
    assert "energysched_bench" in proc.stdout


@pytest.mark.parametrize("arch", ARCHES)
def test_workflow_learns_in_the_image(
    workflow_results: dict[str, dict[str, dict[str, Any]]], arch: str
) -> None:
    r = workflow_results[arch]
    assert r["preprocessing"]["workload_type"] == "sequential"
    assert r["preprocessing"]["extra"]["kept"] == 1797
    assert r["training"]["work"] == WORK["training"]
    assert r["inference"]["work"] == WORK["inference"]
    assert r["inference"]["accuracy"] >= MIN_ACCURACY
    rates = ", ".join(f"{s} {v['rate']} {v['rate_unit']}" for s, v in r.items())
    print(f"{arch}: accuracy {r['inference']['accuracy']:.4f}; {rates}")


def test_every_architecture_reaches_the_same_accuracy(
    workflow_results: dict[str, dict[str, dict[str, Any]]],
) -> None:
    accuracies = {a: r["inference"]["accuracy"] for a, r in workflow_results.items()}
    # Same data, seeds and model; float32 sums in another order may flip a sample or two.
    assert max(accuracies.values()) - min(accuracies.values()) <= 2 / 359, accuracies
