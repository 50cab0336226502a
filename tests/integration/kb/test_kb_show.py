"""``energysched kb show`` against the local cluster."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from energysched_lab.cluster.local import LocalCluster

THESIS_NODES = ("tvpc", "wyse", "rpi")


def _kb_show(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "energysched.cli", "kb", "show", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kb_show_lists_cluster_nodes_with_their_profiles(
    local_cluster: LocalCluster, knowledge_base: None
) -> None:
    kubeconfig = f"--kubeconfig={local_cluster.kubeconfig}"
    proc = _kb_show(kubeconfig, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["source"] == "cluster"
    assert set(THESIS_NODES) <= set(doc["nodes"])
    for node in THESIS_NODES:
        rows = [r for r in doc["rows"] if r["node"] == node]
        assert [r["workload"] for r in rows] == ["training", "inference", "sequential"]
        for row in rows:
            assert row["profile"] == node
            assert row["efficiency"] == row["performance"] / row["powerWatts"]
    text = _kb_show(kubeconfig)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split()[:2] == ["NODE", "WORKLOAD"]
    for node in THESIS_NODES:
        assert any(line.split()[0] == node and line.split()[-2] == node for line in lines)


def test_kb_show_offline_matches_files(tmp_path: Path) -> None:
    proc = _kb_show("--offline", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["nodes"] == sorted(THESIS_NODES) and doc["invalid"] == []
    assert {r["profile"] for r in doc["rows"]} == set(THESIS_NODES)
