"""manifests/ as shipped: no address or secret anywhere, hardened pods, least-privilege RBAC.

Pure file checks; tests/integration/deploy applies every overlay to a real API server
(`--dry-run=server`) and runs the local one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

MANIFESTS = Path(__file__).resolve().parents[3] / "manifests"
IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])([0-9a-fA-F]{1,4}(?::[0-9a-fA-F]{0,4}){2,7})(?![\w:])")
#: A secret-looking value: a PEM block, or a password/token key with a value other than the
#: documented placeholder.
PEM = re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----")
SECRET_KEY = re.compile(r"^\s*(password|passwd|token|apiKey)\s*:\s*(\S+)", re.I | re.M)


def yaml_files() -> list[Path]:
    return sorted(MANIFESTS.rglob("*.yaml"))


def objects(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in yaml_files():
        for obj in objects(path):
            if obj.get("kind") in {"Deployment", "DaemonSet", "StatefulSet", "Job"}:
                yield (
                    f"{path.relative_to(MANIFESTS)}:{obj['metadata']['name']}",
                    obj["spec"]["template"]["spec"],
                )


def test_there_are_manifests() -> None:
    assert len(yaml_files()) > 10
    # scheduler, operator, monitor, model monitor, prometheus monitor, power manager, power agent
    assert len(list(pod_templates())) == 7


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_no_ip_address(path: Path) -> None:
    """Addresses belong to the user's ConfigMap; 0.0.0.0 (listen everywhere) is no address."""
    text = path.read_text()
    found = []
    for match in IPV4.finditer(text):
        try:
            ip = ipaddress.ip_address(match.group(1))
        except ValueError:
            continue
        if not ip.is_unspecified:
            found.append(str(ip))
    for match in IPV6.finditer(text):
        try:
            found.append(str(ipaddress.ip_address(match.group(1))))
        except ValueError:
            continue
    assert not found, f"{path}: IP address(es) {found}"


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_no_secret(path: Path) -> None:
    text = path.read_text()
    assert not PEM.search(text), f"{path}: a PEM block"
    for obj in objects(path):
        if obj.get("kind") == "Secret":
            # Only the documented example, never applied, with placeholder values.
            assert path.name == "secret.example.yaml", f"{path}: a Secret object"
            assert set(obj["stringData"].values()) == {"change-me"}
    for key, value in SECRET_KEY.findall(text):
        assert value.strip("\"'") in {"change-me", "{}"}, f"{path}: {key}: {value}"


def test_example_secret_is_not_applied() -> None:
    for path in MANIFESTS.rglob("kustomization.yaml"):
        listed = yaml.safe_load(path.read_text()).get("resources", [])
        assert not [r for r in listed if "secret" in r], path


@pytest.mark.parametrize(
    "name,pod", list(pod_templates()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_pods_are_hardened(name: str, pod: dict[str, Any]) -> None:
    pod_sc = pod.get("securityContext", {})
    assert pod_sc.get("runAsNonRoot") is True, name
    assert pod_sc.get("seccompProfile") == {"type": "RuntimeDefault"}, name
    assert pod.get("serviceAccountName"), name
    assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, name
        assert sc["readOnlyRootFilesystem"] is True, name
        assert sc["capabilities"] == {"drop": ["ALL"]}, name
        assert not sc.get("privileged"), name
        assert c["resources"]["requests"], name
        assert c.get("livenessProbe") and c.get("readinessProbe"), name
    host_paths = [v["hostPath"] for v in pod.get("volumes", []) if "hostPath" in v]
    if "power-agent" in name:
        # The node agent's one privilege: logind's D-Bus socket, as a socket (not a directory).
        assert host_paths == [{"path": "/run/dbus/system_bus_socket", "type": "Socket"}], name
    else:
        assert not host_paths, name


def rules_of(path: str) -> list[tuple[str, str, tuple[str, ...], tuple[str, ...]]]:
    out = []
    for obj in objects(MANIFESTS / path):
        if obj["kind"] in {"ClusterRole", "Role"}:
            for rule in obj["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        out.append(
                            (
                                group,
                                resource,
                                tuple(rule["verbs"]),
                                tuple(rule.get("resourceNames", ())),
                            )
                        )
    return out


def test_scheduler_rbac_is_what_it_calls() -> None:
    assert rules_of("base/scheduler/rbac.yaml") == [
        ("", "pods", ("list", "watch"), ()),
        ("", "nodes", ("list", "watch"), ()),
        ("", "nodes", ("patch",), ()),
        ("", "pods/binding", ("create",), ()),
        ("", "pods/status", ("patch",), ()),
        ("events.k8s.io", "events", ("create",), ()),
        ("energy.thesis.io", "energyprofiles", ("list", "watch"), ()),
        ("coordination.k8s.io", "leases", ("create",), ()),
        ("coordination.k8s.io", "leases", ("get", "update"), ("energy-scheduler",)),
    ]


def test_no_wildcards_anywhere() -> None:
    for path in yaml_files():
        for obj in objects(path):
            for rule in obj.get("rules", []) if obj.get("kind") in {"Role", "ClusterRole"} else []:
                for key in ("apiGroups", "resources", "verbs"):
                    assert "*" not in rule[key], f"{path}: {key} wildcard"


def test_every_base_object_is_in_the_base_kustomization() -> None:
    kust = yaml.safe_load((MANIFESTS / "base" / "kustomization.yaml").read_text())
    listed = {MANIFESTS / "base" / r for r in kust["resources"] if r.endswith(".yaml")}
    on_disk = set((MANIFESTS / "base").rglob("*.yaml")) - {MANIFESTS / "base/kustomization.yaml"}
    assert listed == on_disk
