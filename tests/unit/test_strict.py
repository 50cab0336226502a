"""The one strict reader: paths as written, no coercion, every problem, safe rendering."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import Field, model_validator

from energysched.strict import DocumentError, StrictModel, load_json, load_yaml, validate


class Inner(StrictModel):
    buffer_watts: Annotated[float, Field(ge=0, le=1e6)] = 5.0
    enabled: bool = True


class Item(StrictModel):
    name: Annotated[str, Field(min_length=1)] = "a"
    mode: Literal["raw", "normalized"] = "normalized"
    inner: Inner | None = None


class Doc(StrictModel):
    items: Annotated[list[Item], Field(min_length=1)] = [Item()]
    by_node: dict[str, Inner] = {}

    @model_validator(mode="after")
    def _unique(self) -> Doc:
        if len({i.name for i in self.items}) != len(self.items):
            raise ValueError("names must be unique")
        return self


def problems(doc: object) -> list[str]:
    with pytest.raises(DocumentError) as err:
        validate(Doc, doc, where="f.yaml")
    assert str(err.value).startswith("f.yaml: ")
    return [str(p) for p in err.value.problems]


def test_camel_case_keys_and_defaults() -> None:
    got = validate(Doc, {"items": [{"name": "x", "inner": {"bufferWatts": 1}}], "byNode": {}})
    assert got.items[0].inner is not None and got.items[0].inner.buffer_watts == 1.0
    assert validate(Doc, {}) == Doc()


def test_every_problem_with_its_path_and_value() -> None:
    assert problems({"items": [{"mode": "fast", "inner": {"bufferWatts": -1}}]}) == [
        "items[0].mode: input should be 'raw' or 'normalized', got 'fast'",
        "items[0].inner.bufferWatts: input should be greater than or equal to 0, got -1",
    ]


@pytest.mark.parametrize(
    ("inner", "why"),
    [
        ({"bufferWatts": "0.5"}, "valid number, got '0.5'"),
        ({"bufferWatts": True}, "valid number, got True"),
        ({"bufferWatts": float("nan")}, "finite number, got nan"),
        ({"bufferWatts": float("inf")}, "finite number, got inf"),
        ({"bufferWatts": 10**500}, "valid number, got 1000"),
        ({"enabled": "false"}, "valid boolean, got 'false'"),
        ({"enabled": 0}, "valid boolean, got 0"),
    ],
)
def test_no_coercion(inner: dict[str, object], why: str) -> None:
    (problem,) = problems({"items": [{"inner": inner}]})
    assert why in problem


def test_unknown_field_lists_the_allowed_ones_and_never_shows_its_value() -> None:
    (problem,) = problems({"byNode": {"n1": {"pasword": "hunter2"}}})
    assert problem == "byNode.n1.pasword: unknown field; allowed: bufferWatts, enabled"
    assert "hunter2" not in problem


def test_keys_that_are_not_plain_names_are_quoted_in_the_path() -> None:
    (problem,) = problems({"byNode": {"wyse.lan": {"bufferWatts": -1}}})
    assert problem.startswith("byNode['wyse.lan'].bufferWatts: ")
    (problem,) = problems({"byNode": {"0": {"enabled": 1}}})
    assert problem.startswith("byNode['0'].enabled: ")


def test_validator_message_and_non_string_keys() -> None:
    assert problems({"items": [{}, {}]}) == ["names must be unique"]
    assert problems({"items": [{3: 4}]}) == ["items[0]: key 3 is not a string"]
    assert problems({"byNode": {7: {}}}) == ["byNode: key 7 is not a string"]


def test_long_values_are_shortened() -> None:
    (problem,) = problems({"items": [{"mode": "x" * 10_000}]})
    assert len(problem) < 250


@pytest.mark.parametrize(
    "value", [-(10**5000), [10**5000], {"a": 10**5000}], ids=["alone", "in-list", "in-dict"]
)
def test_integers_repr_refuses_are_shown_not_raised(value: object) -> None:
    (problem,) = problems({"items": [{"inner": {"bufferWatts": value}}]})
    assert "an integer of 16610 bits" in problem


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{a: [", "not valid YAML"),
        ("x: " + "[" * 5000, "nested too deeply"),
        ("x: " + "9" * 5000, "not usable YAML"),
    ],
)
def test_unreadable_yaml_is_a_problem_not_a_crash(text: str, why: str) -> None:
    with pytest.raises(DocumentError, match=why):
        load_yaml(text, "f.yaml")


@pytest.mark.parametrize("text", ["{", "[" * 100_000, "9" * 5000])
def test_unreadable_json_is_a_problem_not_a_crash(text: str) -> None:
    with pytest.raises(DocumentError, match=r"not .*JSON"):
        load_json(text, "annotation")
