"""io: loading directories and multi-document files (bad documents reported, good kept)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched.kb.io import dump_profile, dump_yaml, load_objects, load_profiles
from energysched.kb.profiles import ProfileSpec
from energysched.kb.validate import parse_profile

Factory = Callable[[], dict[str, Any]]


def _named(good_profile: Factory, name: str) -> dict[str, Any]:
    obj = good_profile()
    obj["metadata"]["name"] = name
    obj["spec"]["nodeSelector"] = {"kubernetes.io/hostname": name}
    return obj


def test_multi_document_file_keeps_good_and_reports_bad(
    tmp_path: Path, good_profile: Factory
) -> None:
    bad = _named(good_profile, "bad")
    bad["spec"]["workloads"]["training"]["powerWatts"] = 1.0
    path = tmp_path / "kb.yaml"
    path.write_text(
        dump_yaml([_named(good_profile, "a"), bad])
        + "---\n"  # an empty document is skipped
        + "---\n"
        + yaml.safe_dump(_named(good_profile, "c"))
        + "---\n- just\n- a list\n"
    )
    result = load_profiles(path)
    assert [p.name for p in result.profiles] == ["a", "c"]
    assert not result.ok
    origins = [f.origin for f in result.failures]
    assert origins == [f"{path}#2", f"{path}#5"]
    assert "spec.workloads.training.powerWatts: must not be below" in str(result.failures[0])
    assert str(result.failures[0]).endswith(", got 1")
    assert "is a list, not an object" in str(result.failures[1])
    assert result.origins["c"] == f"{path}#4"
    kb = result.knowledge_base()
    assert set(kb.profiles) == {"a", "c"}


def test_directory_recursive_sorted_and_yaml_errors(tmp_path: Path, good_profile: Factory) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(_named(good_profile, "b")))
    (tmp_path / "sub" / "a.yml").write_text(yaml.safe_dump(_named(good_profile, "a")))
    (tmp_path / "notes.txt").write_text("not yaml: [")
    broken = tmp_path / "c.yaml"
    broken.write_text(yaml.safe_dump(_named(good_profile, "c")) + "---\nspec: [unclosed\n")
    result = load_profiles(tmp_path)
    assert sorted(p.name for p in result.profiles) == ["a", "b", "c"]
    (failure,) = result.failures
    assert failure.origin == f"{broken}#2"
    assert "not valid YAML" in str(failure)


def test_duplicate_names_first_wins(tmp_path: Path, good_profile: Factory) -> None:
    (tmp_path / "1.yaml").write_text(yaml.safe_dump(_named(good_profile, "x")))
    second = _named(good_profile, "x")
    second["spec"]["idlePowerWatts"] = 1
    (tmp_path / "2.yaml").write_text(yaml.safe_dump(second))
    result = load_profiles(tmp_path)
    (profile,) = result.profiles
    assert profile.idle_power_watts == 6.5
    (failure,) = result.failures
    assert "already defined in" in str(failure) and "1.yaml#1" in str(failure)


def test_kubectl_list_output(tmp_path: Path, good_profile: Factory) -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [_named(good_profile, "a"), _named(good_profile, "b")],
    }
    path = tmp_path / "list.yaml"
    path.write_text(yaml.safe_dump(listing))
    result = load_profiles(path)
    assert [p.name for p in result.profiles] == ["a", "b"]
    assert result.origins["b"] == f"{path}#1.items[1]"


def test_missing_path_is_reported(tmp_path: Path) -> None:
    result = load_profiles(tmp_path / "nope")
    assert "does not exist" in str(result.failures[0])


def test_dump_round_trips(good_profile: Factory) -> None:
    spec = parse_profile(good_profile())
    assert isinstance(spec, ProfileSpec)
    manifest = dump_profile(spec, labels={"app.kubernetes.io/part-of": "energysched"})
    again = parse_profile(yaml.safe_load(dump_yaml([manifest])))
    assert again == spec
    assert manifest["spec"]["workloads"]["sequential"] == {"performance": 40, "powerWatts": 9.5}
    assert list(manifest["spec"]) == [
        "nodeSelector",
        "idlePowerWatts",
        "maxPowerWatts",
        "workloads",
        "provenance",
    ]


def test_load_objects_from_a_cluster_list(good_profile: Factory) -> None:
    obj = _named(good_profile, "a")
    obj["metadata"]["resourceVersion"] = "77"
    result = load_objects([("cluster", obj)])
    assert result.profiles[0].resource_version == "77"


@pytest.mark.parametrize(
    ("text", "why"),
    [("a: " + "9" * 5000, "not usable YAML: Exceeds the limit"), ("a: " + "[" * 5000, "nested")],
)
def test_unusable_yaml_is_a_failure_not_a_crash(
    tmp_path: Path, good_profile: Factory, text: str, why: str
) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_named(good_profile, "a")) + "---\n" + text + "\n")
    result = load_profiles(path)
    assert [p.name for p in result.profiles] == ["a"]  # what came before is kept
    (failure,) = result.failures
    assert failure.origin == f"{path}#2" and why in str(failure)
