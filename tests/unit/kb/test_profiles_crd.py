"""The CRD: names from the contract, a structural schema, and the same rules as validate.py.

No API server here: a tiny checker implements the OpenAPI keywords the CRD uses,
and examples are run through both it and parse_profile. The lead applies the
CRD in the integration tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched import contract
from energysched.kb.validate import ValidationFailure, parse_profile

Schema = dict[str, Any]


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    path = Path(__file__).resolve().parents[3] / "manifests/crd/energyprofiles.yaml"
    docs = list(yaml.safe_load_all(path.read_text()))
    assert len(docs) == 1
    doc: dict[str, Any] = docs[0]
    return doc


@pytest.fixture(scope="module")
def schema(crd: dict[str, Any]) -> Schema:
    (version,) = crd["spec"]["versions"]
    s: Schema = version["schema"]["openAPIV3Schema"]
    return s


def test_names_follow_the_contract(crd: dict[str, Any]) -> None:
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{contract.PROFILE_PLURAL}.{contract.GROUP}"
    assert spec["group"] == contract.GROUP
    assert spec["scope"] == "Cluster"
    names = spec["names"]
    assert names["kind"] == contract.PROFILE_KIND
    assert names["plural"] == contract.PROFILE_PLURAL
    assert names["singular"] == contract.PROFILE_SINGULAR
    assert names["shortNames"] == [contract.PROFILE_SHORT_NAME]
    (version,) = spec["versions"]
    assert version["name"] == contract.VERSION
    assert version["served"] is True and version["storage"] is True
    assert version["subresources"] == {"status": {}}


def _walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    yield path, node
    for key, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{key}")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}.*")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")


def test_structural_schema(schema: Schema) -> None:
    """The rules of apiextensions' structural schema check that this CRD could break."""
    allowed_types = {"object", "array", "string", "number", "integer", "boolean"}
    for path, node in _walk(schema):
        assert node.get("type") in allowed_types, f"{path or '<root>'}: no or bad type"
        assert not ("properties" in node and "additionalProperties" in node), (
            f"{path}: properties and additionalProperties are mutually exclusive"
        )
        if node["type"] == "array":
            assert "items" in node, f"{path}: array without items"
        if node.get("exclusiveMinimum"):
            assert "minimum" in node, f"{path}: exclusiveMinimum without minimum"
        if "x-kubernetes-list-map-keys" in node:
            assert node.get("x-kubernetes-list-type") == "map"
            for key in node["x-kubernetes-list-map-keys"]:
                assert key in node["items"]["required"], f"{path}: map key {key} not required"
        for forbidden in (
            "$ref",
            "patternProperties",
            "allOf",
            "oneOf",
            "anyOf",
            "not",
            "uniqueItems",
            "additionalItems",
            "definitions",
            "dependencies",
        ):
            assert forbidden not in node, f"{path}: {forbidden} is not allowed here"
        for pattern in (node.get("pattern"),):
            if pattern:
                re.compile(pattern)
    # metadata may only be typed at the root.
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_every_field_is_described(schema: Schema) -> None:
    for path, node in _walk(schema):
        if path.startswith((".spec", ".status")) and not path.endswith("*"):
            assert node.get("description"), f"{path} has no description (kubectl explain)"


def test_printer_columns(crd: dict[str, Any], schema: Schema) -> None:
    (version,) = crd["spec"]["versions"]
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert list(columns) == [
        "Nodes",
        "Idle W",
        "Sleep W",
        "Wake s",
        "Best eff.",
        "Valid",
        "Learned",
        "Train perf",
        "Learned train perf",
        "Infer perf",
        "Learned infer perf",
        "Seq perf",
        "Learned seq perf",
        "Age",
    ]
    assert columns["Nodes"]["jsonPath"] == ".status.matchedNodeCount"
    assert columns["Idle W"]["jsonPath"] == ".spec.idlePowerWatts"
    assert columns["Best eff."]["jsonPath"] == ".status.bestEfficiency"
    assert columns["Sleep W"]["jsonPath"] == ".spec.powerStates.sleepWatts"
    assert columns["Wake s"]["jsonPath"] == ".spec.powerStates.wakeSeconds"
    assert columns["Valid"]["jsonPath"] == '.status.conditions[?(@.type=="Valid")].status'
    assert columns["Age"] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
    }
    learned = [n for n in columns if n.startswith("Learned ")]
    for name in ("Nodes", "Idle W", "Sleep W", "Wake s", "Best eff.", "Learned", *learned):
        node = schema
        for part in columns[name]["jsonPath"].strip(".").split("."):
            node = node["properties"][part]
        kind = {"integer": "integer", "number": "number"}[node["type"]]
        assert columns[name]["type"] == kind


def test_status_conditions_have_the_metav1_shape(schema: Schema) -> None:
    status = schema["properties"]["status"]["properties"]
    assert set(status) >= {
        "conditions",
        "matchedNodes",
        "matchedNodeCount",
        "bestEfficiency",
        "observedGeneration",
    }
    item = status["conditions"]["items"]
    assert set(item["required"]) == {"type", "status", "lastTransitionTime", "reason", "message"}
    assert set(item["properties"]) == set(item["required"]) | {"observedGeneration"}
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert status["matchedNodes"]["items"]["type"] == "string"


# --- a tiny checker of the OpenAPI keywords used by the CRD ------------------------------


def check(schema: Schema, value: object, path: str = "") -> list[str]:
    """Errors of ``value`` against ``schema``; unknown fields are pruned, as by the API server."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}.{key}: required")
        if len(value) < schema.get("minProperties", 0):
            errors.append(f"{path}: fewer than {schema['minProperties']} properties")
        for key, child in value.items():
            if key in schema.get("properties", {}):
                errors += check(schema["properties"][key], child, f"{path}.{key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += check(schema["additionalProperties"], child, f"{path}.{key}")
        return errors
    if kind == "array":
        if not isinstance(value, list):
            return [f"{path}: not an array"]
        for i, item in enumerate(value):
            errors += check(schema["items"], item, f"{path}[{i}]")
        return errors
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"{path}: not a number"]
        if kind == "integer" and not isinstance(value, int):
            return [f"{path}: not an integer"]
        if "minimum" in schema:
            low = schema["minimum"]
            if value < low or (schema.get("exclusiveMinimum") and value == low):
                errors.append(f"{path}: below minimum")
    elif kind == "string":
        if not isinstance(value, str):
            return [f"{path}: not a string"]
        if len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: too long")
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: too short")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: does not match pattern")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: not in enum")
    return errors


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    def apply(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        obj[last] = value

    return apply


def _del(path: str) -> Mutation:
    def apply(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for key in parents:
            obj = obj[key]
        del obj[last]

    return apply


_STATES: dict[str, Any] = {
    "sleepWatts": 1.5,
    "sleepKind": "suspend",
    "suspendSeconds": 5,
    "wakeSeconds": 8,
    "wakeJoules": 80,
}


def _states(value: object, key: str = "sleepWatts") -> dict[str, Any]:
    """spec.powerStates with ``key`` set to ``value`` (left out when value is None or -1 for
    suspendSeconds)."""
    states = dict(_STATES)
    if value is None or (key == "suspendSeconds" and value == -1):
        del states[key]
    else:
        states[key] = value
    return states


# Examples whose rule the schema can express: both must agree.
EXPRESSIBLE: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda obj: None, True),
    ("no maxPowerWatts", _del("spec.maxPowerWatts"), True),
    ("integer figures", _set("spec.workloads.training.performance", 3), True),
    ("idle zero", _set("spec.idlePowerWatts", 0), True),
    ("empty label value", _set("spec.nodeSelector", {"role": ""}), True),
    ("no nodeSelector", _del("spec.nodeSelector"), False),
    ("empty nodeSelector", _set("spec.nodeSelector", {}), False),
    ("numeric label value", _set("spec.nodeSelector", {"rack": 5}), False),
    ("label value pattern", _set("spec.nodeSelector", {"rack": "a b"}), False),
    ("label value length", _set("spec.nodeSelector", {"rack": "a" * 64}), False),
    ("no idle", _del("spec.idlePowerWatts"), False),
    ("negative idle", _set("spec.idlePowerWatts", -0.5), False),
    ("idle string", _set("spec.idlePowerWatts", "6"), False),
    ("idle boolean", _set("spec.idlePowerWatts", True), False),
    ("max zero", _set("spec.maxPowerWatts", 0), False),
    ("no workloads", _del("spec.workloads"), False),
    ("empty workloads", _set("spec.workloads", {}), False),
    ("workload not an object", _set("spec.workloads.training", 5), False),
    ("no performance", _del("spec.workloads.training.performance"), False),
    ("performance zero", _set("spec.workloads.training.performance", 0), False),
    ("no powerWatts", _del("spec.workloads.inference.powerWatts"), False),
    ("powerWatts zero", _set("spec.workloads.inference.powerWatts", 0), False),
    ("bad source", _set("spec.workloads.inference.source", "guess"), False),
    ("unit not a string", _set("spec.workloads.inference.unit", 1), False),
    ("long unit", _set("spec.workloads.inference.unit", "u" * 129), False),
    ("provenance not a string", _set("spec.provenance", 1), False),
    ("no spec", _del("spec"), False),
    ("power states", _set("spec.powerStates", dict(_STATES)), True),
    (
        "power states without suspendSeconds",
        _set("spec.powerStates", _states(-1, "suspendSeconds")),
        True,
    ),
    ("negative sleepWatts", _set("spec.powerStates", _states(-1.0)), False),
    ("sleepWatts string", _set("spec.powerStates", _states("3")), False),
    ("bad sleepKind", _set("spec.powerStates", _states("hibernate", "sleepKind")), False),
    ("wakeSeconds zero", _set("spec.powerStates", _states(0, "wakeSeconds")), False),
    ("negative wakeJoules", _set("spec.powerStates", _states(-5, "wakeJoules")), False),
    ("no wakeJoules", _set("spec.powerStates", _states(None, "wakeJoules")), False),
]

# Rules only validate.py enforces (the schema cannot express them, or prunes instead).
SEMANTIC_ONLY: list[tuple[str, Mutation]] = [
    ("power below idle", _set("spec.workloads.training.powerWatts", 6.0)),
    ("max below power", _set("spec.maxPowerWatts", 10)),
    ("bad label key", _set("spec.nodeSelector", {"Bad Key": "x"})),
    (
        "unknown workload type (pruned by the API server)",
        _set("spec.workloads.gaming", {"performance": 1, "powerWatts": 7}),
    ),
    ("sleepWatts not below idle", _set("spec.powerStates", _states(50.0))),
]


@pytest.mark.parametrize(
    ("mutate", "valid"), [(m, v) for _, m, v in EXPRESSIBLE], ids=[n for n, _, _ in EXPRESSIBLE]
)
def test_schema_and_validate_agree(
    schema: Schema, good_profile: Callable[[], dict[str, Any]], mutate: Mutation, valid: bool
) -> None:
    obj = good_profile()
    mutate(obj)
    schema_errors = check(schema, obj)
    parsed = parse_profile(obj)
    assert (not schema_errors) is valid, schema_errors
    assert (not isinstance(parsed, ValidationFailure)) is valid, parsed


@pytest.mark.parametrize("mutate", [m for _, m in SEMANTIC_ONLY], ids=[n for n, _ in SEMANTIC_ONLY])
def test_semantic_rules_are_beyond_the_schema(
    schema: Schema, good_profile: Callable[[], dict[str, Any]], mutate: Mutation
) -> None:
    obj = good_profile()
    mutate(obj)
    assert check(schema, obj) == []
    assert isinstance(parse_profile(obj), ValidationFailure)


def test_kb_profiles_pass_the_schema(schema: Schema, repo: Path) -> None:
    for path in sorted((repo / "kb/profiles").glob("*.yaml")):
        assert check(schema, yaml.safe_load(path.read_text())) == [], path
