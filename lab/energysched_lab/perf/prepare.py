"""What a run needs besides the cluster: EnergyProfiles for the node classes, the
machine's description, the pure-core timing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from energysched import contract
from energysched.kb.io import dump_profile, load_profiles
from energysched.kube.client import JSON, ApiError, KubeClient, api_path
from energysched.kube.config import ClusterAccess
from energysched_lab.cluster import nodes as node_classes
from energysched_lab.cluster import versions
from energysched_lab.perf.common import ROOT, say
from energysched_lab.perf.watch import loadavg

CRD_PATH = ROOT / "manifests" / "crd" / "energyprofiles.yaml"
PROFILES_DIR = ROOT / "kb" / "profiles"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
CRD_API = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PROFILES_PATH = api_path(contract.API_VERSION, contract.PROFILE_PLURAL)


def class_profiles() -> list[JSON]:
    """kb/profiles, each re-targeted at its node class (instance-type label of kb/nodes)."""
    result = load_profiles(PROFILES_DIR)
    if result.failures:
        raise RuntimeError("kb/profiles: " + "; ".join(str(f) for f in result.failures))
    classes = {c.name: c for c in node_classes.load_node_classes()}
    out = []
    for spec in result.profiles:
        cls = classes.get(spec.name)
        if cls is None or INSTANCE_TYPE_LABEL not in cls.labels:
            raise RuntimeError(f"profile {spec.name!r}: no node class with {INSTANCE_TYPE_LABEL}")
        selector = {INSTANCE_TYPE_LABEL: cls.labels[INSTANCE_TYPE_LABEL]}
        out.append(dump_profile(dataclasses.replace(spec, node_selector=selector)))
    return out


async def install_profiles(access: ClusterAccess) -> int:
    crd = yaml.safe_load(CRD_PATH.read_text())
    async with KubeClient(access, qps=0) as kube:
        await kube.create(CRD_API, crd)
        name = crd["metadata"]["name"]
        deadline = time.monotonic() + 60
        while True:
            obj = await kube.get(f"{CRD_API}/{name}")
            conds = (obj.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("EnergyProfile CRD not Established after 60 s")
            await asyncio.sleep(0.5)
        profiles = class_profiles()
        for manifest in profiles:
            for attempt in range(40):  # discovery of a fresh CRD can lag a moment
                try:
                    await kube.create(PROFILES_PATH, manifest)
                    break
                except ApiError as exc:
                    if exc.status != 404 or attempt == 39:
                        raise
                    await asyncio.sleep(0.5)
    return len(profiles)


def core_bench() -> dict[str, Any]:
    cmd = [sys.executable, "-m", "energysched_lab.microbench"]
    say("pure-core timing: " + " ".join(["python", *cmd[1:]]))
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    return {
        "command": "python -m energysched_lab.microbench",
        "output": proc.stdout.strip(),
        "returncode": proc.returncode,
        "loadavg": loadavg(),
    }


def machine_info() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from importlib.metadata import version

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / (1 << 30), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "energysched": version("energysched"),
        "kubernetes": versions.KUBERNETES_VERSION,
        "kwok": versions.KWOK_VERSION,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    proc = subprocess.run([git, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    return proc.stdout.strip()


async def wait_for_readings(access: ClusterAccess, timeout: float) -> dict[str, Any]:
    """Wait until every node carries a live power reading (the monitor's annotation)."""
    t0 = time.monotonic()
    async with KubeClient(access, qps=0, timeout=120) as kube:
        while True:
            listing = await kube.list_all(api_path("v1", "nodes"))
            items = listing.get("items") or []
            with_reading = sum(
                1
                for n in items
                if contract.CURRENT_WATTS_ANNOTATION
                in ((n.get("metadata") or {}).get("annotations") or {})
            )
            done = with_reading >= len(items) > 0
            if done or time.monotonic() - t0 > timeout:
                return {
                    "nodes": len(items),
                    "nodes_with_reading": with_reading,
                    "all_nodes_read": done,
                    "seconds_to_all_readings": time.monotonic() - t0 if done else None,
                }
            await asyncio.sleep(5.0)
