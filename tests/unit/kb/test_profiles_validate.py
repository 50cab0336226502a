"""validate.parse_profile: every rule, and messages that name the field and the value."""

from __future__ import annotations

import math
from collections.abc import Callable
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

pytestmark = pytest.mark.unit

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
    ("spec.nodeSelector", {}, "spec.nodeSelector", ("empty", "at least one")),
    ("spec.nodeSelector", "wyse", "spec.nodeSelector", ("'wyse'", "string", "object")),
    ("spec.idlePowerWatts", DELETE, "spec.idlePowerWatts", ("required",)),
    ("spec.idlePowerWatts", -1, "spec.idlePowerWatts", ("-1", ">= 0")),
    ("spec.idlePowerWatts", "6.5", "spec.idlePowerWatts", ("'6.5'", "string", "number")),
    ("spec.idlePowerWatts", True, "spec.idlePowerWatts", ("True", "boolean", "number")),
    ("spec.maxPowerWatts", 0, "spec.maxPowerWatts", ("0", ">= 0.001")),
    ("spec.workloads", DELETE, "spec.workloads", ("required", "training")),
    ("spec.workloads", {}, "spec.workloads", ("empty", "training, inference, sequential")),
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
    ("spec.workloads.training.performance", 0, "spec.workloads.training.performance", ("0", "> 0")),
    (
        "spec.workloads.training.performance",
        -3.5,
        "spec.workloads.training.performance",
        ("-3.5", "> 0"),
    ),
    (
        "spec.workloads.training.powerWatts",
        DELETE,
        "spec.workloads.training.powerWatts",
        ("required",),
    ),
    ("spec.workloads.training.powerWatts", 0, "spec.workloads.training.powerWatts", (">= 0.001",)),
    (
        "spec.workloads.training.source",
        "guessed",
        "spec.workloads.training.source",
        ("'guessed'", "measured, estimated"),
    ),
    ("spec.workloads.training.unit", 5, "spec.workloads.training.unit", ("5", "string")),
    ("spec.workloads.training.unit", "x" * 200, "spec.workloads.training.unit", ("200", "128")),
    (
        "spec.workloads.training.powerWats",
        13,
        "spec.workloads.training.powerWats",
        ("unknown field", "powerWatts"),
    ),
    ("spec.idlePowerWats", 1, "spec.idlePowerWats", ("unknown field", "idlePowerWatts")),
    ("spec.provenance", ["a"], "spec.provenance", ("array", "string")),
    ("metadata.name", "Wyse_5070", "metadata.name", ("'Wyse_5070'", "DNS subdomain")),
    ("kind", "EnergyProfil", "kind", ("'EnergyProfil'", "EnergyProfile")),
    ("apiVersion", "energy.thesis.io/v1", "apiVersion", ("v1alpha1",)),
    # maximums (as in the CRD): every derived figure stays finite
    (
        "spec.workloads.training.performance",
        1e308,
        "spec.workloads.training.performance",
        ("1e+308", "<= 1e+15"),
    ),
    (
        "spec.workloads.training.powerWatts",
        1e308,
        "spec.workloads.training.powerWatts",
        ("<= 1e+06",),
    ),
    (
        "spec.workloads.training.powerWatts",
        5e-324,
        "spec.workloads.training.powerWatts",
        (">= 0.001",),
    ),
    ("spec.idlePowerWatts", 2e6, "spec.idlePowerWatts", ("2000000.0", "<= 1e+06")),
    ("spec.maxPowerWatts", 2e6, "spec.maxPowerWatts", ("<= 1e+06",)),
    # integers beyond float range (over 309 digits): a failure, not OverflowError
    ("spec.idlePowerWatts", 10**400, "spec.idlePowerWatts", ("integer of", "<= 1e+06")),
    (
        "spec.workloads.training.performance",
        -(10**5000),
        "spec.workloads.training.performance",
        ("integer of", "> 0"),
    ),
    # semantic rules the schema cannot express
    (
        "spec.workloads.training.performance",
        5e-324,
        "spec.workloads.training",
        ("performance / powerWatts = 0.0", "finite number > 0"),
    ),
    (
        "spec.workloads.training.powerWatts",
        5.0,
        "spec.workloads.training.powerWatts",
        ("5.0 is below spec.idlePowerWatts 6.5", "includes idle power"),
    ),
    (
        "spec.maxPowerWatts",
        12,
        "spec.workloads.training.powerWatts",
        ("13.2 is above spec.maxPowerWatts 12", "maxPowerWatts"),
    ),
    ("spec.maxPowerWatts", 5, "spec.maxPowerWatts", ("5 is below spec.idlePowerWatts 6.5",)),
    ("spec.idlePowerWatts", math.nan, "spec.idlePowerWatts", ("nan", "finite")),
    (
        "spec.workloads.inference.performance",
        math.inf,
        "spec.workloads.inference.performance",
        ("inf", "finite"),
    ),
    (
        "spec.workloads.sequential.powerWatts",
        -math.inf,
        "spec.workloads.sequential.powerWatts",
        ("-inf", "finite"),
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
        "spec.workloads.training.powerWatts: 5.0 is below spec.idlePowerWatts 6.5; "
        "power while working includes idle power"
    )
    assert "EnergyProfile 'wyse' is invalid" in str(result)


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ({"kubernetes.io/hostname": "bad value!"}, "'bad value!' is not a valid label value"),
        ({"kubernetes.io/hostname": "-wyse"}, "not a valid label value"),
        ({"kubernetes.io/hostname": "w" * 64}, "64 characters long"),
        ({"kubernetes.io/hostname": 5070}, "5070 is a number; a label value must be a string"),
        ({"kubernetes.io/hostname": True}, "True is a boolean"),
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
