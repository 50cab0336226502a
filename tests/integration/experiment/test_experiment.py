"""The experiment end to end on the local cluster: real schedulers, simulated truth."""

from __future__ import annotations

import asyncio
import csv
import itertools
import shutil
from pathlib import Path

import pytest
import yaml

from energysched import contract
from energysched.kube.client import KubeClient, api_path
from energysched_lab.experiment import report, results
from energysched_lab.experiment.accounting import integrate_rows, read_trace
from energysched_lab.experiment.runner import ENERGY, KUBE, install_profiles, plan, run_batch
from energysched_lab.experiment.scenario import DEFAULT_SCENARIO, load_scenario
from tests.support import wait_for

FACTOR = 0.002  # a 1,000 s simulated workflow in 2 s


async def test_thesis_workflow_both_schedulers_judged_by_the_truth(
    kubeconfig: Path, knowledge_base: None, tmp_path: Path, kube: KubeClient
) -> None:
    scenario = load_scenario(DEFAULT_SCENARIO)
    specs = plan([KUBE, ENERGY], ["normalized"], [0.0], [1])
    rows = await run_batch(
        kubeconfig, scenario, specs, out=tmp_path, batch="t1", time_factor=FACTOR
    )
    assert [r["status"] for r in rows] == ["complete", "complete"]
    es = next(r for r in rows if r["scheduler"] == ENERGY)
    # w = 0 by the profiles: sequential and inference on wyse, training on the GPU (tvpc)
    assert es["placement"] == "preprocessing=wyse training=tvpc inference=wyse"
    for r in rows:
        # Nothing beats the exact optimum computed from the same truth.
        assert r["energy_ratio"] >= 1 - 1e-9
        assert r["makespan_ratio"] >= 1 - 1e-9
        traces = {
            n: read_trace(tmp_path / f"metrics_{r['run_id']}_{n}.txt")
            for n in ("rpi", "tvpc", "wyse")
        }
        total = sum(integrate_rows(t, 0.0, r["makespan_s"]) for t in traces.values())
        assert r["cluster_joules"] == pytest.approx(total, rel=1e-6)
        idle = sum(n.idle_watts for n in scenario.truth.nodes.values())
        assert r["cluster_joules"] > idle * r["makespan_s"]  # idle included, and more
    with (tmp_path / "thesis_results.csv").open() as fh:
        stages = list(csv.DictReader(fh))
    assert len(stages) == 6
    for s in stages:
        trace = read_trace(tmp_path / f"metrics_{s['run_id']}_{s['node']}.txt")
        assert float(s["joules"]) == pytest.approx(
            integrate_rows(trace, float(s["start_s"]), float(s["end_s"])), rel=1e-6
        )
        assert s["status"] == "succeeded" and "truth.yaml" in s["source"]
    # Stages follow each other without gaps in simulated time (scheduling takes none).
    es_stages = [s for s in stages if s["scheduler"] == ENERGY]
    for a, b in itertools.pairwise(es_stages):
        assert float(b["start_s"]) == pytest.approx(float(a["end_s"]))
    # The simulated readings are gone after the batch.
    node = await kube.get(api_path("v1", "nodes", name="wyse"))
    assert contract.CURRENT_WATTS_ANNOTATION not in (node["metadata"].get("annotations") or {})


async def test_a_scheduler_told_wrong_profiles_loses_and_the_report_says_so(
    kubeconfig: Path, knowledge_base: None, tmp_path: Path, kube: KubeClient
) -> None:
    # The profiles claim the Pi is by far the most efficient node for everything;
    # the truth (the thesis truth) says it is slow. energysched believes its profiles.
    sc_dir = tmp_path / "liar"
    shutil.copytree(DEFAULT_SCENARIO, sc_dir)
    thesis = load_scenario(DEFAULT_SCENARIO)
    meta = yaml.safe_load((sc_dir / "scenario.yaml").read_text())
    meta["nodes"] = str(thesis.nodes_dir)
    meta["profiles"] = "profiles"
    (sc_dir / "scenario.yaml").write_text(yaml.safe_dump(meta))
    (sc_dir / "profiles").mkdir()
    for f in sorted(thesis.profiles_dir.glob("*.yaml")):
        doc = yaml.safe_load(f.read_text())
        if doc["metadata"]["name"] == "rpi":
            for fig in doc["spec"]["workloads"].values():
                fig["performance"] *= 1000
        (sc_dir / "profiles" / f.name).write_text(yaml.safe_dump(doc))
    liar = load_scenario(sc_dir)
    out = tmp_path / "out"
    try:
        rows = await run_batch(
            kubeconfig,
            liar,
            plan([KUBE, ENERGY], ["normalized"], [0.0], [1]),
            out=out,
            batch="t2",
            time_factor=FACTOR,
        )
    finally:
        await install_profiles(kube, thesis)  # the session's other tests use kb/profiles
    ks = next(r for r in rows if r["scheduler"] == KUBE)
    es = next(r for r in rows if r["scheduler"] == ENERGY)
    assert es["placement"] == "preprocessing=rpi training=rpi inference=rpi"
    assert es["cluster_joules"] > 2 * ks["cluster_joules"]
    text, _ = report.write_section(
        out, "t2", liar.name, results.read_runs(out / "runs.csv"), "test", plots=False
    )
    assert "**loses**" in text and "more cluster energy than kube-scheduler" in text


async def test_interrupted_run_leaves_partial_rows_and_no_jobs(
    kubeconfig: Path, knowledge_base: None, tmp_path: Path, kube: KubeClient
) -> None:
    # static-raw sends inference to the Pi: ~1,300 simulated s, 13 s wall at 0.01.
    scenario = load_scenario(DEFAULT_SCENARIO)
    batch = asyncio.create_task(
        run_batch(
            kubeconfig,
            scenario,
            plan([ENERGY], ["static-raw"], [0.0], [1]),
            out=tmp_path,
            batch="t3",
            time_factor=0.01,
        )
    )

    async def inference_on_the_pi() -> str | None:
        for ns in (await kube.list_all(api_path("v1", "namespaces")))["items"]:
            name = str(ns["metadata"]["name"])
            if name.startswith("exp-t3-"):
                pods = (await kube.get(api_path("v1", "pods", name)))["items"]
                if any(p["spec"].get("nodeName") == "rpi" for p in pods):
                    return name
        return None

    ns = await wait_for(inference_on_the_pi, 120, "the inference stage to run on the Pi")
    batch.cancel()
    with pytest.raises(asyncio.CancelledError):
        await batch
    with (tmp_path / "thesis_results.csv").open() as fh:
        rows = {r["stage"]: r for r in csv.DictReader(fh)}
    assert rows["preprocessing"]["status"] == "succeeded"
    assert rows["inference"]["status"] == "interrupted"
    assert float(rows["inference"]["end_s"]) > float(rows["inference"]["start_s"])
    (run,) = results.read_runs(tmp_path / "runs.csv")
    assert run["status"] == "interrupted" and run["energy_ratio"] == ""
    jobs = await kube.get(api_path("batch/v1", "jobs", ns))
    assert jobs["items"] == []
