"""Simulated nodes of the local cluster, described in ``kb/nodes/`` (not in code).

Each file describes one node class of the original cluster (tvpc, wyse, rpi):
labels, capacity, allocatable. ``--nodes N`` adds N generated nodes cycling
through the classes, named ``<class>-<n>``, each with its own hostname label and
the class's instance-type label (a class of nodes shares one profile).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from energysched.contract import KWOK_NODE_ANNOTATION, NODE_CLASS_ANNOTATION
from energysched.kb.io import REPO_KB_DIR

#: The repository's kb/nodes beside the package (a checkout, an editable install).
_CHECKOUT_NODES_DIR = REPO_KB_DIR / "nodes"
#: From a wheel (``pip install .``) the package sits in site-packages with no kb/
#: beside it: the node classes are the user's data, read from ``kb/nodes`` of
#: the working directory (a relative path, resolved when used), with a clear
#: error when it is not there.
DEFAULT_NODES_DIR = _CHECKOUT_NODES_DIR if _CHECKOUT_NODES_DIR.is_dir() else Path("kb") / "nodes"
HOSTNAME_LABEL = "kubernetes.io/hostname"


class NodeClassError(ValueError):
    """A node class file is malformed; the message names the file and field."""


@dataclass(frozen=True)
class NodeClass:
    name: str
    labels: Mapping[str, str]
    capacity: Mapping[str, str]
    allocatable: Mapping[str, str]
    node_info: Mapping[str, str]

    def manifest(self, node_name: str) -> dict[str, Any]:
        """A Node object for KWOK to manage (status is accepted on create)."""
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node_name,
                "labels": {**self.labels, HOSTNAME_LABEL: node_name},
                "annotations": {
                    KWOK_NODE_ANNOTATION: "fake",
                    NODE_CLASS_ANNOTATION: self.name,
                },
            },
            "spec": {},
            "status": {
                "capacity": dict(self.capacity),
                "allocatable": dict(self.allocatable),
                "nodeInfo": {
                    "architecture": self.node_info.get("architecture", "amd64"),
                    "operatingSystem": self.node_info.get("operatingSystem", "linux"),
                    "osImage": self.node_info.get("osImage", ""),
                    "kubeletVersion": "kwok",
                    "kernelVersion": "kwok",
                    "containerRuntimeVersion": "kwok",
                    "kubeProxyVersion": "",
                    "bootID": "",
                    "machineID": "",
                    "systemUUID": "",
                },
            },
        }


def _str_map(doc: Mapping[str, Any], key: str, file: Path) -> dict[str, str]:
    value = doc.get(key, {})
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise NodeClassError(f"{file}: '{key}' must be a mapping of strings, got {value!r:.80}")
    return {k: str(v) for k, v in value.items()}


def load_node_classes(directory: Path = DEFAULT_NODES_DIR) -> list[NodeClass]:
    if not directory.is_dir():
        raise NodeClassError(
            f"node classes directory {str(directory.resolve())!r} does not exist: run from a"
            " checkout of the repository (it has kb/nodes) or give the directory explicitly"
        )
    classes = []
    for file in sorted(directory.glob("*.yaml")):
        try:
            doc = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            raise NodeClassError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(doc, Mapping) or not isinstance(doc.get("name"), str):
            raise NodeClassError(f"{file}: needs a mapping with a 'name'")
        classes.append(
            NodeClass(
                name=doc["name"],
                labels=_str_map(doc, "labels", file),
                capacity=_str_map(doc, "capacity", file),
                allocatable=_str_map(doc, "allocatable", file),
                node_info=_str_map(doc, "nodeInfo", file),
            )
        )
    if not classes:
        raise NodeClassError(f"no node classes (*.yaml) in {directory}")
    return classes


def node_manifests(classes: list[NodeClass], generated: int = 0) -> Iterator[dict[str, Any]]:
    """The original nodes (one per class, named after it), then ``generated`` more."""
    for cls in classes:
        yield cls.manifest(cls.name)
    width = max(4, len(str(generated)))
    for i in range(generated):
        cls = classes[i % len(classes)]
        yield cls.manifest(f"{cls.name}-{i:0{width}d}")
