"""``energysched explain`` against the local cluster, and its bad-input messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from tests.support import pod_manifest


def _explain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energysched.cli", "explain", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_explain_lists_every_node_with_its_numbers(
    kube: KubeClient, namespace: str, kubeconfig: Path, knowledge_base: None
) -> None:
    pod = pod_manifest(
        "explained",
        schedulerName=contract.SCHEDULER_NAME,
        nodeSelector={"kubernetes.io/arch": "amd64"},
        metadata={
            "labels": {contract.WORKLOAD_TYPE_LABEL: "inference"},
            "annotations": {contract.PERFORMANCE_WEIGHT_ANNOTATION: "1"},
        },
    )
    await kube.create(api_path("v1", "pods", namespace), pod)
    out = _explain(f"{namespace}/explained", f"--kubeconfig={kubeconfig}")
    assert out.returncode == 0, out.stderr
    lines = {line.split()[0]: line for line in out.stdout.splitlines() if line.split()}
    assert "didn't match Pod's node affinity/selector" in lines["rpi"]
    assert "normP" in out.stdout and lines["tvpc"].split()[1] == "yes"
    assert "decision: Successfully assigned" in out.stdout and "to tvpc" in out.stdout


def test_explain_reports_a_malformed_kubeconfig_clearly(tmp_path: Path) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("apiVersion: v1\nclusters: [oops\n")
    out = _explain("default/x", f"--kubeconfig={bad}")
    assert out.returncode == 2
    assert "not valid YAML" in out.stderr and str(bad) in out.stderr
    assert "Traceback" not in out.stderr
