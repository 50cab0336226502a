"""The shipped manifests agree with the code: config parses, RBAC is least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from energysched.contract import GROUP, PROFILE_PLURAL
from energysched_monitor.config import DEFAULT_SECRETS_DIR, parse_config_text

ROOT = Path(__file__).resolve().parents[3] / "manifests"
MANIFESTS = ROOT / "base" / "monitor"


def docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((MANIFESTS / name).read_text()) if d]


def rules(name: str) -> list[tuple[str, str, tuple[str, ...]]]:
    role = next(d for d in docs(name) if d["kind"] == "ClusterRole")
    return [
        (group, resource, tuple(rule["verbs"]))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    ]


def test_shipped_config_parses() -> None:
    cm = docs("../../overlays/thesis/monitor-config.yaml")[0]
    config = parse_config_text(cm["data"]["config.yaml"], "monitor-config.yaml")
    assert set(config.nodes) == {"tvpc", "wyse", "rpi"}
    assert config.secrets_dir == DEFAULT_SECRETS_DIR
    local = docs("../../overlays/local/monitor-config.yaml")[0]
    parse_config_text(local["data"]["config.yaml"], "local monitor-config.yaml")


def test_daemonset_rbac_is_get_and_patch_on_nodes_only() -> None:
    assert rules("rbac.yaml") == [("", "nodes", ("get", "patch"))]


def test_model_rbac() -> None:
    assert rules("../../components/monitor-model/rbac.yaml") == [
        ("", "nodes", ("get", "list", "watch", "patch")),
        ("", "pods", ("list", "watch")),
        (GROUP, PROFILE_PLURAL, ("get", "list", "watch")),
    ]


def test_daemonset_wiring() -> None:
    ds = docs("daemonset.yaml")[0]
    pod = ds["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["serviceAccountName"] == "energysched-monitor"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["plugs"] == DEFAULT_SECRETS_DIR
    config_arg = next(a for a in container["args"] if a.startswith("--config="))
    assert config_arg.removeprefix("--config=").startswith(mounts["config"] + "/")
    assert "--metrics-port=9101" in container["args"]
    assert container["ports"][0]["containerPort"] == 9101
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_prometheus_mode_rbac_and_wiring() -> None:
    component = "../../components/monitor-prometheus"
    assert rules(f"{component}/rbac.yaml") == rules("../../components/monitor-model/rbac.yaml")
    deployment = docs(f"{component}/deployment.yaml")[0]
    assert deployment["spec"]["replicas"] == 1  # one writer per node
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "energysched-monitor-prometheus"
    container = pod["containers"][0]
    assert "--prometheus" in container["args"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["secrets"] == DEFAULT_SECRETS_DIR
    config_arg = next(a for a in container["args"] if a.startswith("--config="))
    assert config_arg.removeprefix("--config=").startswith(mounts["config"] + "/")
