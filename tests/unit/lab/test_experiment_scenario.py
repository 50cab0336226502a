"""Scenario files: the shipped ones load; bad ones name file, field and value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from energysched_lab.experiment.jobs import instantiate
from energysched_lab.experiment.scenario import (
    DEFAULT_SCENARIO,
    SCENARIOS_DIR,
    ScenarioError,
    load_scenario,
)


def test_thesis_scenario_is_the_original_cluster_and_workflow() -> None:
    sc = load_scenario(DEFAULT_SCENARIO)
    assert sorted(c.name for c in sc.node_classes) == ["rpi", "tvpc", "wyse"]
    assert [s.name for s in sc.workload.stages] == ["preprocessing", "training", "inference"]
    assert [s.workload_type for s in sc.workload.stages] == ["sequential", "training", "inference"]
    jobs = instantiate(sc, 1)
    assert [j.after for j in jobs] == [None, "preprocessing", "training"]


def test_truth_differs_from_the_profiles_it_was_drawn_from() -> None:
    sc = load_scenario(DEFAULT_SCENARIO)
    compared = 0
    for cls, node in sc.truth.nodes.items():
        res = sc.knowledge_base.resolve({"kubernetes.io/hostname": cls})
        assert res is not None
        profile = res.profile
        assert node.idle_watts != profile.idle_power_watts
        for wt, fig in node.workloads.items():
            told = profile.workloads[wt]  # type: ignore[index]
            assert fig.performance != told.performance
            assert fig.power_watts != told.power_watts
            # ...but of the size the profiles admit ("a factor of about 2 either way")
            assert 0.4 < fig.performance / told.performance < 2.5
            compared += 1
    assert compared == 9


def test_every_shipped_scenario_loads() -> None:
    dirs = [d for d in SCENARIOS_DIR.iterdir() if (d / "workload.yaml").exists()]
    assert len(dirs) >= 2
    for d in dirs:
        sc = load_scenario(d)
        assert instantiate(sc, 1)


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "sc"
    shutil.copytree(DEFAULT_SCENARIO, dst)
    meta = yaml.safe_load((dst / "scenario.yaml").read_text())
    meta["nodes"] = str((DEFAULT_SCENARIO / meta["nodes"]).resolve())
    meta["profiles"] = str((DEFAULT_SCENARIO / meta["profiles"]).resolve())
    (dst / "scenario.yaml").write_text(yaml.safe_dump(meta))
    return dst


@pytest.mark.parametrize(
    ("file", "edit", "expected"),
    [
        (
            "truth.yaml",
            lambda d: d["nodes"]["wyse"]["workloads"]["training"].update(performance=-3),
            ["truth.yaml", "nodes.wyse.workloads.training.performance", "-3"],
        ),
        (
            "truth.yaml",
            lambda d: d["nodes"]["rpi"]["workloads"]["inference"].update(powerWatts=0.5),
            ["truth.yaml", "nodes.rpi.workloads.inference.powerWatts", "0.5"],
        ),
        (
            "truth.yaml",
            lambda d: d["nodes"].update(mainframe={"idlePowerWatts": 1, "workloads": {}}),
            ["truth.yaml", "nodes.mainframe", "'mainframe'"],
        ),
        (
            "workload.yaml",
            lambda d: d["workflow"][1].update(workloadType="gaming"),
            ["workload.yaml", "workflow[1].workloadType", "'gaming'"],
        ),
        (
            "workload.yaml",
            lambda d: d.update(count=0),
            ["workload.yaml", "count", "0"],
        ),
        (
            "workload.yaml",
            lambda d: d["workflow"][0].update(wrok=3),
            ["workload.yaml", "workflow[0]", "'wrok'"],
        ),
        (
            "scenario.yaml",
            lambda d: d.update(timeFactor="fast"),
            ["scenario.yaml", "timeFactor", "'fast'"],
        ),
    ],
)
def test_bad_file_names_file_field_and_value(
    tmp_path: Path, file: str, edit: object, expected: list[str]
) -> None:
    d = _copy(tmp_path)
    doc = yaml.safe_load((d / file).read_text())
    edit(doc)  # type: ignore[operator]
    (d / file).write_text(yaml.safe_dump(doc))
    with pytest.raises(ScenarioError) as err:
        load_scenario(d)
    for part in expected:
        assert part in str(err.value), (part, str(err.value))


def test_not_yaml_is_reported_with_its_file(tmp_path: Path) -> None:
    d = _copy(tmp_path)
    (d / "workload.yaml").write_text("kind: [unclosed\n")
    with pytest.raises(ScenarioError, match=r"workload.yaml: not valid YAML"):
        load_scenario(d)


def test_seeded_arrivals_repeat_and_differ_by_seed() -> None:
    sc = load_scenario(SCENARIOS_DIR / "concurrent")
    a, b, c = instantiate(sc, 1), instantiate(sc, 1), instantiate(sc, 2)
    assert a == b
    assert [j.arrival_s for j in a] != [j.arrival_s for j in c]
    assert len({j.workflow for j in a}) == sc.workload.count


def test_alibaba_shaped_job_list_maps_types_work_and_skips_pods_that_never_ran() -> None:
    sc = load_scenario(SCENARIOS_DIR / "trace-sample")
    jobs = sc.workload.jobs
    assert len(jobs) == 16  # the 17th row is Pending: no scheduled/deletion time
    ref = sc.truth.nodes["tvpc"].workloads
    first = jobs[0]  # sample-pod-0000: 1000 milli-CPU, no GPU, ran 1005 .. 1008
    assert first.workload_type == "sequential" and first.arrival_s == 0.0
    assert first.work == pytest.approx(3 * ref["sequential"].performance)
    assert {j.workload_type for j in jobs if j.num_gpu} == {"training"}
    assert {j.workload_type for j in jobs if j.cpu_milli > 1000 and not j.num_gpu} == {"inference"}


def test_job_list_with_a_missing_column_names_it(tmp_path: Path) -> None:
    d = tmp_path / "t"
    shutil.copytree(SCENARIOS_DIR / "trace-sample", d)
    meta = yaml.safe_load((d / "scenario.yaml").read_text())
    for key in ("nodes", "profiles"):
        meta[key] = str((SCENARIOS_DIR / "trace-sample" / meta[key]).resolve())
    (d / "scenario.yaml").write_text(yaml.safe_dump(meta))
    text = (d / "jobs.csv").read_text().replace("scheduled_time", "sched")
    (d / "jobs.csv").write_text(text)
    with pytest.raises(ScenarioError, match=r"jobs.csv: column 'scheduled_time' is missing"):
        load_scenario(d)
