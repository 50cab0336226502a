"""The Grafana dashboard queries only metrics the components export."""

from __future__ import annotations

import json
import re

from energysched.operator.metrics import OperatorMetrics
from energysched_monitor.metrics import Metrics
from tests.support import ROOT

DASHBOARD = ROOT / "manifests" / "grafana" / "energysched-dashboard.json"


def exported() -> set[str]:
    names: set[str] = set()
    for registry in (OperatorMetrics().registry, Metrics().registry):
        for family in registry.collect():
            names.update(s.name for s in family.samples)
            names.add(family.name)
            if family.type == "counter":  # exposed with the suffix, even before a sample
                names.add(f"{family.name}_total")
    return names


def test_every_query_names_an_exported_metric() -> None:
    doc = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in doc["panels"]}
    assert {
        "Node power",
        "Energy per namespace",
        "Energy per workload type",
        "Learned / spec",
    } <= titles
    names = exported()
    for panel in doc["panels"]:
        for target in panel["targets"]:
            for metric in re.findall(r"energysched_[a-z_]+", target["expr"]):
                assert metric in names, f"{panel['title']}: {metric} is not exported"
