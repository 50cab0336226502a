"""The power manager's config file: defaults, strict validation, reload without restart."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched.contract import POWER_MANAGEMENT_LABEL
from energysched.power.consolidation import ConsolidationConfig
from energysched.power.policy import PolicyConfig
from energysched.powermanager.config import (
    ManagerConfig,
    PowerConfigError,
    config_file,
    parse_config,
)
from energysched.powermanager.manager import PowerManager
from energysched.powermanager.view import Selector
from tests.support import ROOT

from .test_manager import PROFILE, Clock, FakeKube, sync


def test_an_empty_document_gives_the_documented_defaults() -> None:
    docs: list[dict[str, Any] | None] = [None, {}]
    for doc in docs:
        assert parse_config(doc) == ManagerConfig()
    cfg = ManagerConfig()
    assert cfg.policy == PolicyConfig()
    assert (cfg.policy.hysteresis_seconds, cfg.policy.min_awake_nodes) == (120.0, 1)
    assert cfg.policy.min_free_fraction == 0.2
    assert (cfg.policy.wake_backoff_initial_seconds, cfg.policy.wake_backoff_max_seconds) == (
        30.0,
        1800.0,
    )
    assert (cfg.policy.wake_timeout_factor, cfg.policy.wake_timeout_margin_seconds) == (2.0, 30.0)
    assert (cfg.interval, cfg.command_timeout, cfg.drain_settle_seconds) == (10.0, 120.0, 5.0)
    assert cfg.agent_grace_seconds == 60.0
    assert cfg.keep_awake == Selector.parse("node-role.kubernetes.io/control-plane")
    assert cfg.consolidation == ConsolidationConfig(False, 600.0, 300.0)


def test_the_base_manifests_configmap_writes_out_the_defaults() -> None:
    """The ConfigMap an operator edits shows every key, with the values the code uses."""
    path = ROOT / "manifests" / "base" / "power-manager" / "config.yaml"
    (configmap,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
    doc = yaml.safe_load(configmap["data"]["config.yaml"])
    assert parse_config(doc) == ManagerConfig()
    written = {k for k in doc if k not in ("apiVersion", "kind")}
    assert written == {
        "intervalSeconds", "keepAwake", "hysteresisSeconds", "minAwakeNodes",
        "minFreeFraction", "wakeBackoffSeconds", "wakeBackoffMaxSeconds", "wakeTimeoutFactor",
        "wakeTimeoutMarginSeconds", "commandTimeoutSeconds", "agentGraceSeconds",
        "drainSettleSeconds", "consolidation",
    }  # fmt: skip


def test_a_full_document_is_read() -> None:
    cfg = parse_config(
        {
            "apiVersion": "energysched.thesis.io/v1",
            "kind": "PowerManagerConfiguration",
            "intervalSeconds": 2,
            "keepAwake": "role=db, gpu",
            "hysteresisSeconds": 0,
            "minAwakeNodes": 0,
            "minFreeFraction": 0.5,
            "wakeBackoffSeconds": 5,
            "wakeBackoffMaxSeconds": 60,
            "wakeTimeoutFactor": 1.5,
            "wakeTimeoutMarginSeconds": 10,
            "commandTimeoutSeconds": 30,
            "agentGraceSeconds": 20,
            "drainSettleSeconds": 1,
            "consolidation": {
                "enabled": True,
                "podRestartJoules": 50,
                "drainTimeoutSeconds": 60,
            },
        }
    )
    assert cfg.policy == PolicyConfig(0.0, 0, 0.5, 5.0, 60.0, 1.5, 10.0)
    assert cfg.keep_awake.terms == (("role", "db"), ("gpu", None))
    assert (cfg.interval, cfg.command_timeout) == (2.0, 30.0)
    assert (cfg.agent_grace_seconds, cfg.drain_settle_seconds) == (20.0, 1.0)
    assert cfg.consolidation == ConsolidationConfig(True, 50.0, 60.0)


@pytest.mark.parametrize(
    ("doc", "field", "shown"),
    [
        ({"minAwakeNods": 0}, "minAwakeNods", "unknown field"),  # a typo must not pass
        ({"consolidation": {"enable": True}}, "consolidation.enable", "unknown field"),
        ({"intervalSeconds": "10"}, "intervalSeconds", "'10'"),  # no coercion
        ({"minAwakeNodes": 1.5}, "minAwakeNodes", "1.5"),
        ({"minAwakeNodes": True}, "minAwakeNodes", "True"),
        ({"consolidation": {"enabled": "yes"}}, "consolidation.enabled", "'yes'"),
        (
            {"consolidation": {"podRestartJoules": -1}},
            "consolidation.podRestartJoules",
            "-1",
        ),
        (
            {"consolidation": {"drainTimeoutSeconds": math.nan}},
            "consolidation.drainTimeoutSeconds",
            "nan",
        ),
        ({"hysteresisSeconds": -1}, "hysteresisSeconds", "-1"),
        ({"minAwakeNodes": -1}, "minAwakeNodes", "-1"),
        ({"wakeBackoffSeconds": math.nan}, "wakeBackoffSeconds", "nan"),
        ({"drainSettleSeconds": math.inf}, "drainSettleSeconds", "inf"),
        ({"minFreeFraction": 1.2}, "minFreeFraction", "1.2"),
        ({"intervalSeconds": 0}, "intervalSeconds", "0"),  # a pass loop with no pause
        ({"commandTimeoutSeconds": 1e308}, "commandTimeoutSeconds", "1e+308"),
        ({"keepAwake": "=x"}, "keepAwake", "'=x'"),
        ({"keepAwake": 3}, "keepAwake", "3"),
        (["intervalSeconds", 1], "config", "['intervalSeconds', 1]"),
    ],
)
def test_invalid_values_name_the_field_and_the_value(doc: Any, field: str, shown: str) -> None:
    with pytest.raises(PowerConfigError) as info:
        parse_config(doc)
    message = str(info.value)
    assert field in message and shown in message, message


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PowerConfigError) as info:
        parse_config({"hysteresisSeconds": -5, "minFreeFraction": math.nan, "bogus": 1})
    paths = sorted(p.path for p in info.value.problems)
    assert paths == ["bogus", "hysteresisSeconds", "minFreeFraction"]


# -- the file, reloaded --------------------------------------------------------------------


def _write(path: Path, doc: Any) -> None:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))


def test_no_file_means_the_defaults_for_good() -> None:
    source = config_file(None)
    assert source.load_initial() == ManagerConfig()
    assert source.poll() is None


def test_an_invalid_file_at_start_up_names_the_file_field_and_value(tmp_path: Path) -> None:
    path = tmp_path / "power.yaml"
    _write(path, {"minAwakeNodes": -2})
    with pytest.raises(PowerConfigError) as info:
        config_file(path).load_initial()
    assert str(path) in str(info.value) and "minAwakeNodes" in str(info.value)
    assert "-2" in str(info.value)


def test_a_bad_edit_keeps_the_last_good_config_and_a_good_one_replaces_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "power.yaml"
    _write(path, {"minAwakeNodes": 2})
    source = config_file(path)
    good = source.load_initial()
    assert good.policy.min_awake_nodes == 2
    results: list[str] = []

    _write(path, {"minAwakeNodes": 0, "hysteresisSeconds": math.nan})
    assert source.reload(results.append) is None
    assert results == ["invalid"]
    assert source.current is good
    assert source.last_error is not None
    assert "hysteresisSeconds" in source.last_error and "nan" in source.last_error
    assert "keeping the last good config" in source.last_error
    assert source.reload(results.append) is None  # the same bad content is reported once
    assert results == ["invalid"]

    _write(path, "minAwakeNodes: [unclosed\n")
    assert source.reload(results.append) is None
    assert results == ["invalid", "invalid"] and source.current is good

    _write(path, {"minAwakeNodes": 0})
    new = source.reload(results.append)
    assert new is not None and new.policy.min_awake_nodes == 0 and source.current is new
    assert results[-1] == "applied" and source.last_error is None


class Recorder:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str, str, str]] = []

    def post(self, ref: Any, type_: str, reason: str, note: str) -> bool:
        self.posted.append((ref.kind, ref.namespace, ref.name, reason, note))
        return True


async def test_the_manager_applies_an_edit_on_its_next_pass_without_restart(
    tmp_path: Path,
) -> None:
    """With minAwakeNodes 1 the only managed, empty node stays awake (the reserve); the file
    says 0, the next pass puts it to sleep. A bad edit in between changes nothing."""
    path = tmp_path / "power.yaml"
    control = json.dumps({"method": "command", "sleep": ["true"], "wake": ["true"]})
    base = {"hysteresisSeconds": 0, "minFreeFraction": 0, "drainSettleSeconds": 0}
    _write(path, {**base, "minAwakeNodes": 1})
    source = config_file(path)
    source.load_initial()
    kube, clock = FakeKube(), Clock()
    manager = PowerManager(
        kube,  # type: ignore[arg-type]
        kube,  # type: ignore[arg-type]
        source,
        clock=clock,
        namespace="power",
        config_map="power-config",
    )
    events = Recorder()
    manager.events = events  # type: ignore[assignment]
    manager.profiles.store["box"] = PROFILE
    kube.add_node("n1", **{"energy.thesis.io/power-control": control})
    assert kube.nodes["n1"]["metadata"]["labels"][POWER_MANAGEMENT_LABEL] == "enabled"

    async def pass_() -> str:
        manager.reload_config()
        sync(kube, manager)
        await manager.reconcile()
        clock.now += 60
        return str(kube.nodes["n1"]["metadata"]["annotations"].get("energy.thesis.io/power-state"))

    assert await pass_() == "None"
    assert await pass_() == "None"  # past break-even, but min-awake-nodes keeps it
    skipped = manager.metrics.skipped.labels(reason="min-awake-nodes")._value.get()
    assert skipped >= 1

    _write(path, {**base, "minAwakeNodes": -1})
    assert await pass_() == "None"
    assert manager.config.policy.min_awake_nodes == 1
    assert manager.metrics.config_reloads.labels(result="invalid")._value.get() == 1
    ((kind, ns, name, reason, note),) = events.posted
    assert (kind, ns, name, reason) == ("ConfigMap", "power", "power-config", "ConfigRejected")
    assert "minAwakeNodes" in note and "-1" in note

    _write(path, {**base, "minAwakeNodes": 0})
    assert await pass_() == "asleep"
    assert manager.config.policy.min_awake_nodes == 0
    assert manager.metrics.config_reloads.labels(result="applied")._value.get() == 1


def test_a_reload_logs_what_changed_with_the_old_and_new_value() -> None:
    from energysched.powermanager.manager import _changes

    old = parse_config({})
    new = parse_config({"minAwakeNodes": 0, "keepAwake": "a=b", "consolidation": {"enabled": True}})
    assert _changes(old, new) == {
        "policy.min_awake_nodes": "1 -> 0",
        "keep_awake": "'node-role.kubernetes.io/control-plane' -> 'a=b'",
        "consolidation.enabled": "False -> True",
    }
    assert _changes(old, parse_config({})) == {}
