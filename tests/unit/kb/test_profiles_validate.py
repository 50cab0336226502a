"""validate.parse_profile: every rule, and messages that name the field and the value."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from energysched.kb.profiles import ProfileSpec
from energysched.kb.validate import (
    ValidationFailure,
    best_efficiency,
    label_key_problem,
    label_value_problem,
    parse_profile,
    unit_conflicts,
)

Obj = dict[str, Any]


def _set(obj: Obj, path: str, value: object) -> None:
    *parents, last = path.split(".")
    for key in parents:
        obj = obj[key]
    obj[last] = value


def _delete(obj: Obj, path: str) -> None:
    *parents, last = path.split(".")
    for key in parents:
        obj = obj[key]
    del obj[last]


def test_good_profile_parses(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    obj["metadata"].update(resourceVersion="42", generation=3)
    spec = parse_profile(obj)
    assert isinstance(spec, ProfileSpec), spec
    assert spec.name == "wyse"
    assert dict(spec.node_selector) == {"kubernetes.io/hostname": "wyse"}
    assert spec.idle_power_watts == 6.5
    assert spec.max_power_watts == 25.0
    assert spec.resource_version == "42" and spec.generation == 3
    training = spec.workloads["training"]
    assert (training.performance, training.power_watts) == (120.0, 13.2)
    assert (training.unit, training.source, training.provenance) == (
        "steps/s",
        "estimated",
        "a guess",
    )
    assert spec.workloads["sequential"].source is None
    assert spec.provenance == "test"
    assert best_efficiency(spec) == pytest.approx(900.0 / 11.0)


def test_minimal_profile_parses(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    del obj["spec"]["maxPowerWatts"], obj["spec"]["provenance"]
    obj["spec"]["workloads"] = {"inference": {"performance": 1, "powerWatts": 7}}
    obj["spec"]["idlePowerWatts"] = 0
    assert isinstance(parse_profile(obj), ProfileSpec)


# (what to change, value or DELETE, expected path, fragments the message must contain)
DELETE = object()
CASES: list[tuple[str, object, str, tuple[str, ...]]] = [
    # schema-level rules
    ("spec.nodeSelector", DELETE, "spec.nodeSelector", ("required",)),
    ("spec.nodeSelector", {}, "spec.nodeSelector", ("at least one label", "got {}")),
    ("spec.nodeSelector", "wyse", "spec.nodeSelector", ("must be an object", "got 'wyse'")),
    ("spec.idlePowerWatts", DELETE, "spec.idlePowerWatts", ("required",)),
    ("spec.idlePowerWatts", -1, "spec.idlePowerWatts", ("greater than or equal to 0", "got -1")),
    ("spec.idlePowerWatts", "6.5", "spec.idlePowerWatts", ("valid number", "got '6.5'")),
    ("spec.idlePowerWatts", True, "spec.idlePowerWatts", ("valid number", "got True")),
    ("spec.maxPowerWatts", 0, "spec.maxPowerWatts", ("greater than or equal to 0.001", "got 0")),
    ("spec.workloads", DELETE, "spec.workloads", ("field required",)),
    (
        "spec.workloads",
        {},
        "spec.workloads",
        ("at least one of training, inference, sequential", "got {}"),
    ),
    (
        "spec.workloads.gaming",
        {"performance": 1, "powerWatts": 9},
        "spec.workloads.gaming",
        ("unknown field", "training, inference, sequential"),
    ),
    (
        "spec.workloads.training.performance",
        DELETE,
        "spec.workloads.training.performance",
        ("required",),
    ),
    (
        "spec.workloads.training.performance",
        0,
        "spec.workloads.training.performance",
        ("greater than 0", "got 0"),
    ),
    (
        "spec.workloads.training.performance",
        -3.5,
        "spec.workloads.training.performance",
        ("greater than 0", "got -3.5"),
    ),
    (
        "spec.workloads.training.powerWatts",
        DELETE,
        "spec.workloads.training.powerWatts",
        ("required",),
    ),
    (
        "spec.workloads.training.powerWatts",
        0,
        "spec.workloads.training.powerWatts",
        ("greater than or equal to 0.001", "got 0"),
    ),
    (
        "spec.workloads.training.source",
        "guessed",
        "spec.workloads.training.source",
        ("'measured' or 'estimated'", "got 'guessed'"),
    ),
    ("spec.workloads.training.unit", 5, "spec.workloads.training.unit", ("valid string", "got 5")),
    (
        "spec.workloads.training.unit",
        "x" * 200,
        "spec.workloads.training.unit",
        ("at most 128 characters", "got 'xxxx"),
    ),
    (
        "spec.workloads.training.powerWats",
        13,
        "spec.workloads.training.powerWats",
        ("unknown field", "powerWatts"),
    ),
    ("spec.idlePowerWats", 1, "spec.idlePowerWats", ("unknown field", "idlePowerWatts")),
    ("spec.provenance", ["a"], "spec.provenance", ("valid string", "got ['a']")),
    ("metadata.name", "Wyse_5070", "metadata.name", ("DNS subdomain", "got 'Wyse_5070'")),
    ("kind", "EnergyProfil", "kind", ("must be EnergyProfile", "got 'EnergyProfil'")),
    (
        "apiVersion",
        "energy.thesis.io/v1",
        "apiVersion",
        ("must be energy.thesis.io/v1alpha1", "got 'energy.thesis.io/v1'"),
    ),
    # maximums (as in the CRD): every derived figure stays finite
    (
        "spec.workloads.training.performance",
        1e308,
        "spec.workloads.training.performance",
        ("less than or equal to 1000000000000000", "got 1e+308"),
    ),
    (
        "spec.workloads.training.powerWatts",
        1e308,
        "spec.workloads.training.powerWatts",
        ("less than or equal to 1000000", "got 1e+308"),
    ),
    (
        "spec.workloads.training.powerWatts",
        5e-324,
        "spec.workloads.training.powerWatts",
        ("greater than or equal to 0.001", "got 5e-324"),
    ),
    (
        "spec.idlePowerWatts",
        2e6,
        "spec.idlePowerWatts",
        ("less than or equal to 1000000", "got 2000000.0"),
    ),
    (
        "spec.maxPowerWatts",
        2e6,
        "spec.maxPowerWatts",
        ("less than or equal to 1000000", "got 2000000.0"),
    ),
    # integers beyond float range (over 309 digits): a failure, not OverflowError
    (
        "spec.idlePowerWatts",
        10**400,
        "spec.idlePowerWatts",
        ("valid number", "got 1000000000"),
    ),
    (
        "spec.workloads.training.performance",
        -(10**5000),
        "spec.workloads.training.performance",
        ("valid number", "got <an integer of 16610 bits>"),
    ),
    # semantic rules the schema cannot express
    (
        "spec.workloads.training.performance",
        5e-324,
        "spec.workloads.training",
        ("performance / powerWatts", "finite number > 0", "got 0.0"),
    ),
    (
        "spec.workloads.training.powerWatts",
        5.0,
        "spec.workloads.training.powerWatts",
        ("must not be below spec.idlePowerWatts 6.5", "includes idle power", "got 5"),
    ),
    (
        "spec.maxPowerWatts",
        12,
        "spec.workloads.training.powerWatts",
        ("must not be above spec.maxPowerWatts 12", "got 13.2"),
    ),
    (
        "spec.maxPowerWatts",
        5,
        "spec.maxPowerWatts",
        ("must not be below spec.idlePowerWatts 6.5", "got 5"),
    ),
    ("spec.idlePowerWatts", math.nan, "spec.idlePowerWatts", ("finite number", "got nan")),
    (
        "spec.workloads.inference.performance",
        math.inf,
        "spec.workloads.inference.performance",
        ("finite number", "got inf"),
    ),
    (
        "spec.workloads.sequential.powerWatts",
        -math.inf,
        "spec.workloads.sequential.powerWatts",
        ("finite number", "got -inf"),
    ),
]


def _short(value: object) -> str:
    if isinstance(value, int) and abs(value) > 10**30:
        return f"<{value.bit_length()}-bit int>"
    return f"{value!r:.20}"


@pytest.mark.parametrize(
    ("path", "value", "where", "fragments"), CASES, ids=[f"{c[0]}={_short(c[1])}" for c in CASES]
)
def test_rule(
    good_profile: Callable[[], Obj],
    path: str,
    value: object,
    where: str,
    fragments: tuple[str, ...],
) -> None:
    obj = good_profile()
    if value is DELETE:
        _delete(obj, path)
    else:
        _set(obj, path, value)
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure), f"{path}={value!r} was accepted"
    matching = [e for e in result.errors if e.path == where]
    assert matching, f"no error at {where}: {result}"
    text = str(matching[0])
    assert text.startswith(f"{where}: ")
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"


def test_example_message_of_the_brief(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    obj["spec"]["workloads"]["training"]["powerWatts"] = 5.0
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure)
    assert str(result.errors[0]) == (
        "spec.workloads.training.powerWatts: must not be below spec.idlePowerWatts 6.5 "
        "(power while working includes idle power), got 5"
    )
    assert "EnergyProfile 'wyse' is invalid" in str(result)


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ({"kubernetes.io/hostname": "bad value!"}, "ending alphanumeric, got 'bad value!'"),
        ({"kubernetes.io/hostname": "-wyse"}, "not a valid label value"),
        ({"kubernetes.io/hostname": "w" * 64}, "64 characters long"),
        ({"kubernetes.io/hostname": 5070}, "a label value must be a string (quote numbers"),
        ({"kubernetes.io/hostname": True}, "must be a string (quote numbers and booleans"),
        ({"Kubernetes.IO/hostname": "wyse"}, "prefix 'Kubernetes.IO' is not a DNS subdomain"),
        ({"/hostname": "wyse"}, "empty prefix"),
        ({"example.com/": "wyse"}, "name part ''"),
        ({"a b": "wyse"}, "name part 'a b'"),
    ],
)
def test_node_selector_labels(
    good_profile: Callable[[], Obj], selector: dict[str, object], fragment: str
) -> None:
    obj = good_profile()
    obj["spec"]["nodeSelector"] = selector
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure)
    key = next(iter(selector))
    assert result.errors[0].path == f"spec.nodeSelector[{key!r}]"
    assert fragment in str(result.errors[0])


def test_all_errors_are_reported_not_just_the_first(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    obj["spec"]["idlePowerWatts"] = -1
    obj["spec"]["workloads"]["training"]["performance"] = 0
    obj["spec"]["workloads"]["inference"]["source"] = "rumour"
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure)
    assert {e.path for e in result.errors} == {
        "spec.idlePowerWatts",
        "spec.workloads.training.performance",
        "spec.workloads.inference.source",
    }
    assert result.message.count("\n") == 2


def test_every_error_of_a_very_bad_profile(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    del obj["apiVersion"]
    obj["metadata"]["name"] = "Wyse"
    obj["spec"]["nodeSelector"]["rack"] = 5
    obj["spec"]["idlePowerWatts"] = "6.5"
    obj["spec"]["workloads"]["training"] = {"performance": math.nan, "powerWats": 13}
    obj["spec"]["workloads"]["sequential"]["source"] = None
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure)
    assert result.name == "Wyse"
    assert [str(e) for e in result.errors] == [
        "apiVersion: field required",
        "metadata.name: is not a DNS subdomain; allowed: lowercase alphanumerics, '-' and '.', "
        "at most 253 characters, got 'Wyse'",
        "spec.nodeSelector.rack: a label value must be a string "
        "(quote numbers and booleans in YAML), got 5",
        "spec.idlePowerWatts: input should be a valid number, got '6.5'",
        "spec.workloads.training.performance: input should be a finite number, got nan",
        "spec.workloads.training.powerWatts: field required",
        "spec.workloads.training.powerWats: unknown field; "
        "allowed: performance, powerWatts, unit, source, provenance",
        "spec.workloads.sequential.source: must not be null; leave the field out instead, got None",
    ]


def test_metadata_and_status_are_the_api_servers(good_profile: Callable[[], Obj]) -> None:
    """What the API server sends is accepted as it is; only metadata.name is read strictly."""
    obj = good_profile()
    obj["metadata"].update(
        uid="0b6c",
        resourceVersion="7",
        generation=2,
        creationTimestamp="2026-11-30T10:00:00Z",
        labels={"app": "x"},
        managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
    )
    obj["status"] = {"conditions": [{"type": "Valid", "status": "True"}], "matchedNodeCount": 1}
    spec = parse_profile(MappingProxyType(obj))  # a Mapping that is not a dict
    assert isinstance(spec, ProfileSpec), spec
    assert (spec.resource_version, spec.generation) == ("7", 2)
    obj["metadata"].update(resourceVersion=7, generation="2")  # not the API server's types
    spec = parse_profile(obj)
    assert isinstance(spec, ProfileSpec), spec
    assert (spec.resource_version, spec.generation) == ("", 0)


@pytest.mark.parametrize("metadata", [None, {}, {"name": ""}, {"name": 5}])
def test_metadata_name_is_required(good_profile: Callable[[], Obj], metadata: object) -> None:
    obj = good_profile()
    obj["metadata"] = metadata
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure) and result.name == ""
    assert [e.path for e in result.errors] == ["metadata" if metadata is None else "metadata.name"]


@pytest.mark.parametrize(
    "path", ["spec.maxPowerWatts", "spec.workloads.inference", "spec.workloads.training.source"]
)
def test_optional_fields_are_left_out_not_null(good_profile: Callable[[], Obj], path: str) -> None:
    obj = good_profile()
    _set(obj, path, None)
    result = parse_profile(obj)
    assert isinstance(result, ValidationFailure)
    assert [str(e) for e in result.errors] == [
        f"{path}: must not be null; leave the field out instead, got None"
    ]


def test_the_workload_types_are_the_contracts() -> None:
    from energysched.contract import WORKLOAD_TYPES
    from energysched.kb.validate import Workloads

    assert tuple(f.alias for f in Workloads.model_fields.values()) == WORKLOAD_TYPES


@pytest.mark.parametrize("obj", [None, [], "EnergyProfile", {"spec": {}}])
def test_garbage_never_raises(obj: Any) -> None:
    assert isinstance(parse_profile(obj), ValidationFailure)


def test_empty_label_value_is_allowed(good_profile: Callable[[], Obj]) -> None:
    obj = good_profile()
    obj["spec"]["nodeSelector"] = {"node-role.kubernetes.io/worker": ""}
    assert isinstance(parse_profile(obj), ProfileSpec)


def test_label_helpers() -> None:
    assert label_value_problem("wyse") is None
    assert label_value_problem("") is None
    assert label_value_problem("a.b_c-d") is None
    assert label_key_problem("kubernetes.io/hostname") is None
    assert label_key_problem("hostname") is None
    assert label_key_problem("feature.node.kubernetes.io/cpu-cpuid.AVX") is None


def test_unit_conflicts(good_profile: Callable[[], Obj]) -> None:
    a = parse_profile(good_profile())
    other = good_profile()
    other["metadata"]["name"] = "rpi"
    other["spec"]["workloads"]["training"]["unit"] = "samples/s"
    b = parse_profile(other)
    assert isinstance(a, ProfileSpec) and isinstance(b, ProfileSpec)
    assert unit_conflicts([a, a]) == []
    (message,) = unit_conflicts([a, b])
    assert "workloads.training.unit" in message and "'samples/s' in rpi" in message


def test_derived_figures_of_every_valid_profile_are_finite(good_profile: Callable[[], Obj]) -> None:
    """The extremes the limits allow still give a finite, positive efficiency."""
    for performance, power in ((1e15, 1e-3), (1e-300, 1e6), (1e15, 1e6), (1e-300, 1e-3)):
        obj = good_profile()
        del obj["spec"]["maxPowerWatts"]
        obj["spec"]["idlePowerWatts"] = 0
        obj["spec"]["workloads"] = {"training": {"performance": performance, "powerWatts": power}}
        spec = parse_profile(obj)
        assert isinstance(spec, ProfileSpec), spec
        eff = spec.workloads["training"].efficiency
        assert math.isfinite(eff) and eff > 0
        assert math.isfinite(100 * spec.workloads["training"].performance)


def test_crd_maximums_are_the_validators() -> None:
    from pathlib import Path

    import yaml

    from energysched.kb import validate

    crd = yaml.safe_load(
        (Path(__file__).parents[3] / "manifests/crd/energyprofiles.yaml").read_text()
    )
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    figures = spec["properties"]["workloads"]["properties"]["training"]["properties"]
    assert figures["performance"]["maximum"] == validate.MAX_PERFORMANCE
    assert figures["powerWatts"]["maximum"] == validate.MAX_WATTS
    assert figures["powerWatts"]["minimum"] == validate.MIN_WATTS
    assert spec["properties"]["idlePowerWatts"]["maximum"] == validate.MAX_WATTS
    assert spec["properties"]["maxPowerWatts"]["maximum"] == validate.MAX_WATTS
    assert spec["properties"]["maxPowerWatts"]["minimum"] == validate.MIN_WATTS
