"""The scheduler's config file: defaults, one ConfigError per invalid field, live reload."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from energysched import contract
from energysched.core.params import ScheduleParams
from energysched.scheduler.config import (
    ConfigError,
    ConfigSource,
    LeaderElectionConfig,
    ProfileConfig,
    SchedulerConfig,
    parse_config,
)


def test_an_empty_document_gives_the_defaults() -> None:
    docs: list[dict[str, Any] | None] = [None, {}]
    for doc in docs:
        cfg = parse_config(doc)
        assert cfg == SchedulerConfig()
    cfg = parse_config({})
    (profile,) = cfg.profiles
    assert profile == ProfileConfig()
    assert profile.scheduler_name == contract.SCHEDULER_NAME == "energy-scheduler"
    assert (profile.mode, profile.default_weight) == ("cluster-energy", 0.5)
    assert (profile.hybrid_buffer_watts, profile.staleness_seconds) == (5.0, 60.0)
    assert profile.stale_policy == "ignore"
    assert cfg.leader_election == LeaderElectionConfig()
    le = cfg.leader_election
    assert (le.enabled, le.namespace, le.name) == (True, "kube-system", "energy-scheduler")
    assert (le.lease_duration, le.renew_deadline, le.retry_period) == (15.0, 10.0, 2.0)
    assert (cfg.qps, cfg.burst, cfg.metrics_address) == (50.0, 100, "127.0.0.1:10261")


def test_a_full_document_is_read() -> None:
    cfg = parse_config(
        {
            "apiVersion": "energysched.thesis.io/v1",
            "kind": "SchedulerConfiguration",
            "profiles": [
                {"schedulerName": "energy-scheduler", "mode": "static-raw", "defaultWeight": 1},
                {
                    "schedulerName": "hybrid-scheduler",
                    "mode": "hybrid",
                    "defaultWeight": 0.25,
                    "hybrid": {"bufferWatts": 2.5, "stalenessSeconds": 30, "stalePolicy": "busy"},
                },
            ],
            "leaderElection": {
                "enabled": False,
                "namespace": "energy",
                "name": "lease",
                "leaseDurationSeconds": 30,
                "renewDeadlineSeconds": 20,
                "retryPeriodSeconds": 5,
            },
            "metricsAddress": "",
            "clientConnection": {"qps": 0, "burst": 7},
        }
    )
    assert [p.scheduler_name for p in cfg.profiles] == ["energy-scheduler", "hybrid-scheduler"]
    hybrid = cfg.profile_for("hybrid-scheduler")
    assert hybrid is not None
    assert (hybrid.mode, hybrid.default_weight, hybrid.stale_policy) == ("hybrid", 0.25, "busy")
    params = hybrid.params()
    assert params.mode == "hybrid" and params.hybrid_buffer_watts == 2.5
    assert params.staleness_window.total_seconds() == 30
    assert cfg.profile_for("default-scheduler") is None
    assert cfg.leader_election == LeaderElectionConfig(False, "energy", "lease", 30, 20, 5)
    assert (cfg.qps, cfg.burst, cfg.metrics_address) == (0.0, 7, "")


def _profile(**fields: Any) -> dict[str, Any]:
    return {"profiles": [fields]}


def _election(**fields: Any) -> dict[str, Any]:
    return {"leaderElection": fields}


@pytest.mark.parametrize(
    ("doc", "field", "value"),
    [
        (["a", "list"], "config", "['a', 'list']"),
        (
            {"profile": []},
            "profile: unknown field",
            "allowed: apiVersion, kind, profiles",
        ),  # a typo
        ({"profiles": []}, "profiles", "[]"),
        ({"profiles": {"mode": "hybrid"}}, "profiles", "'mode'"),
        ({"profiles": ["hybrid"]}, "profiles[0]", "'hybrid'"),
        (_profile(mode="bogus"), "profiles[0].mode", "'bogus'"),
        (_profile(mode=None), "profiles[0].mode", "None"),
        (_profile(schedulerName=""), "profiles[0].schedulerName", "''"),
        (_profile(schedulerName=7), "profiles[0].schedulerName", "7"),
        (_profile(defaultWeight=1.5), "profiles[0].defaultWeight", "1.5"),
        (_profile(defaultWeight=-0.1), "profiles[0].defaultWeight", "-0.1"),
        (_profile(defaultWeight="0.5"), "profiles[0].defaultWeight", "'0.5'"),
        (_profile(defaultWeight=True), "profiles[0].defaultWeight", "True"),
        (_profile(defaultWeight=float("nan")), "profiles[0].defaultWeight", "nan"),
        (_profile(weight=0.5), "profiles[0]", "weight"),
        (_profile(hybrid=[1]), "profiles[0].hybrid", "[1]"),
        (_profile(hybrid={"bufferWatts": -1}), "profiles[0].hybrid.bufferWatts", "-1"),
        (_profile(hybrid={"stalenessSeconds": 0}), "profiles[0].hybrid.stalenessSeconds", "0"),
        (_profile(hybrid={"stalePolicy": "drop"}), "profiles[0].hybrid.stalePolicy", "'drop'"),
        (_profile(hybrid={"buffer": 1}), "profiles[0].hybrid", "buffer"),
        (_profile(mode="cluster"), "profiles[0].mode", "'cluster'"),
        (
            _profile(clusterEnergy={"defaultWorkSeconds": 0}),
            "profiles[0].clusterEnergy.defaultWorkSeconds",
            "0",
        ),
        (_profile(clusterEnergy={"work": 1}), "profiles[0].clusterEnergy", "work"),
        (
            {"profiles": [{"schedulerName": "a"}, {"schedulerName": "a"}]},
            "profiles",
            "'a', 'a'",
        ),
        (_election(enabled="false"), "leaderElection.enabled", "'false'"),
        (_election(namespace=""), "leaderElection.namespace", "''"),
        (_election(namespace=None), "leaderElection.namespace", "None"),
        (_election(name=["x"]), "leaderElection.name", "['x']"),
        (_election(leaseDurationSeconds=1), "leaderElection.leaseDurationSeconds", "1"),
        (_election(renewDeadlineSeconds="10"), "leaderElection.renewDeadlineSeconds", "'10'"),
        (_election(retryPeriodSeconds=0), "leaderElection.retryPeriodSeconds", "0"),
        (_election(retryPeriodSeconds=12), "retryPeriodSeconds", "12"),  # not < renew 10
        (_election(leaseDurationSeconds=8), "leaseDurationSeconds", "8"),  # not > renew 10
        (_election(lease=15), "leaderElection", "lease"),
        ({"metricsAddress": "10261"}, "metricsAddress", "'10261'"),
        ({"metricsAddress": "host:http"}, "metricsAddress", "'host:http'"),
        ({"metricsAddress": "host:70000"}, "metricsAddress", "'host:70000'"),
        ({"metricsAddress": 10261}, "metricsAddress", "10261"),
        ({"clientConnection": {"qps": -1}}, "clientConnection.qps", "-1"),
        ({"clientConnection": {"burst": 0}}, "clientConnection.burst", "0"),
        ({"clientConnection": {"burst": 2.5}}, "clientConnection.burst", "2.5"),
        ({"clientConnection": {"timeout": 1}}, "clientConnection", "timeout"),
        ({"clientConnection": "fast"}, "clientConnection", "'fast'"),
        ({1: "numeric key"}, "config", "1"),
    ],
)
def test_each_invalid_field_is_named_with_its_value(doc: Any, field: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    message = str(info.value)
    assert field in message, message
    assert value in message, message


# -- ConfigSource --------------------------------------------------------------------------


def _write(path: Path, doc: Any) -> None:
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))


def test_without_a_file_the_defaults_apply_and_nothing_changes() -> None:
    source = ConfigSource(None)
    assert source.load_initial() == SchedulerConfig()
    assert source.poll() is None


def test_an_invalid_file_at_start_up_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    _write(path, _profile(mode="fast"))
    with pytest.raises(ConfigError) as info:
        ConfigSource(path).load_initial()
    assert str(path) in str(info.value) and "'fast'" in str(info.value)
    _write(path, "profiles: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ConfigSource(path).load_initial()


def test_poll_keeps_the_last_good_config_and_picks_up_a_valid_change(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.yaml"
    _write(path, _profile(mode="normalized", defaultWeight=1.0))
    source = ConfigSource(path)
    good = source.load_initial()
    assert good.profiles[0].default_weight == 1.0
    assert source.poll() is None  # unchanged

    _write(path, _profile(mode="hybird"))
    with pytest.raises(ConfigError) as info:
        source.poll()
    assert "'hybird'" in str(info.value) and "keeping the last good config" in str(info.value)
    assert source.current is good
    assert source.last_error is not None and "hybird" in source.last_error
    assert source.poll() is None  # the same bad content is reported once

    _write(path, "::: not yaml :::\n  - [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        source.poll()
    assert source.current is good

    path.unlink()  # a ConfigMap volume mid-swap: keep going
    assert source.poll() is None
    assert source.current is good and source.last_error is not None

    _write(path, _profile(mode="hybrid", defaultWeight=0.0))
    new = source.poll()
    assert new is not None and new is source.current
    assert (new.profiles[0].mode, new.profiles[0].default_weight) == ("hybrid", 0.0)
    assert source.last_error is None
    assert source.poll() is None


def test_poll_sees_a_symlink_swap_with_the_same_mtime(tmp_path: Path) -> None:
    """ConfigMap volumes swap a ..data symlink; the content decides, not the mtime."""
    v1, v2 = tmp_path / "v1", tmp_path / "v2"
    v1.mkdir()
    v2.mkdir()
    _write(v1 / "config.yaml", _profile(defaultWeight=0.1))
    _write(v2 / "config.yaml", _profile(defaultWeight=0.9))
    data = tmp_path / "..data"
    data.symlink_to(v1)
    path = tmp_path / "config.yaml"
    path.symlink_to(data / "config.yaml")
    source = ConfigSource(path)
    assert source.load_initial().profiles[0].default_weight == 0.1
    tmp_link = tmp_path / "..data_tmp"
    tmp_link.symlink_to(v2)
    tmp_link.replace(data)
    new = source.poll()
    assert new is not None and new.profiles[0].default_weight == 0.9


# -- malformed input: always a ConfigError naming the field and the value --------------


@pytest.mark.parametrize(
    ("doc", "field", "shown"),
    [
        ({"metricsAddress": "0.0.0.0:²"}, "metricsAddress", "²"),  # isdigit() says yes
        ({"metricsAddress": ":١٠٢٦١"}, "metricsAddress", "١٠٢٦١"),  # int() even parses it
        ({"metricsAddress": "0.0.0.0:65536"}, "metricsAddress", "65536"),
        ({"clientConnection": {"burst": 10**400}}, "clientConnection.burst", "1000000"),
        ({"clientConnection": {"qps": -(10**400)}}, "clientConnection.qps", "-1000000"),
        ({"clientConnection": {"qps": float("inf")}}, "clientConnection.qps", "inf"),
        ({"leaderElection": {"leaseDurationSeconds": 10**400}}, "leaseDurationSeconds", "1000"),
        ({"profiles": [{"mode": ["hybrid"]}]}, "profiles[0].mode", "['hybrid']"),
        ({"profiles": [{"mode": {"a": 1}}]}, "profiles[0].mode", "{'a': 1}"),
        ({"profiles": [{"hybrid": {"stalePolicy": [1]}}]}, "stalePolicy", "[1]"),
        ({"profiles": [{"schedulerName": 10**400}]}, "schedulerName", "1000"),
    ],
)
def test_malformed_values_are_config_errors_naming_field_and_value(
    doc: dict[str, Any], field: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(doc)
    assert field in str(info.value) and shown in str(info.value)
    assert len(str(info.value)) < 300  # a huge value is shown shortened


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("profiles: " + "[" * 5000 + "]" * 5000, "nested too deeply"),
        ("a: " + "{b: " * 3000 + "1" + "}" * 3000, "nested too deeply"),
        ("clientConnection: {burst: " + "9" * 5000 + "}", "4300"),
        ("profiles: [" + "[" * 50 + "]" * 50 + "]", "profiles[0]"),
        ("\tprofiles: x", "not valid YAML"),
    ],
)
def test_malformed_files_are_config_errors(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=why.replace("[", r"\[").replace("]", r"\]")):
        ConfigSource(path).load_initial()


async def test_the_reload_loop_survives_anything_and_applies_later_valid_edits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from energysched.scheduler.controller import EnergyScheduler
    from tests.unit.scheduler.fakes import FakeKube

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"profiles": [{"mode": "normalized"}]}))
    source = ConfigSource(path)
    source.load_initial()
    kube = FakeKube()
    sched = EnergyScheduler(kube, kube, source, "me", config_poll_seconds=0.01)
    loop = asyncio.create_task(sched._poll_config())

    async def settle() -> None:
        for _ in range(10):
            await asyncio.sleep(0.02)

    bad = [
        "metricsAddress: '0.0.0.0:²'",
        "clientConnection: {burst: " + "9" * 400 + "}",
        "profiles: " + "[" * 5000 + "]" * 5000,
        "clientConnection: {burst: " + "9" * 5000 + "}",
    ]
    for text in bad:
        path.write_text(text)
        await settle()
        assert not loop.done() and sched.cfg.profiles[0].mode == "normalized"
    # A bug in the reader itself (not a ConfigError) must not end hot reload either.
    real_poll = source.poll
    monkeypatch.setattr(source, "poll", lambda: 1 / 0)
    await settle()
    assert not loop.done()
    monkeypatch.setattr(source, "poll", real_poll)
    path.write_text(yaml.safe_dump({"profiles": [{"mode": "hybrid"}]}))
    await settle()
    assert sched.cfg.profiles[0].mode == "hybrid"
    assert sched.metrics.config_reloads.labels("invalid")._value.get() >= 5
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)


def test_cluster_energy_mode_and_its_default_work_are_read() -> None:
    cfg = parse_config(
        {"profiles": [{"mode": "cluster-energy", "clusterEnergy": {"defaultWorkSeconds": 30}}]}
    )
    params = cfg.profiles[0].params()
    assert params.mode == "cluster-energy" and params.default_work_seconds == 30.0


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "profiles": [{"mode": "fast", "defaultWeight": 2}],
                "clientConnection": {"burst": 0},
            }
        )
    )
    with pytest.raises(ConfigError) as info:
        ConfigSource(path).load_initial()
    assert [p.path for p in info.value.problems] == [
        "profiles[0].mode",
        "profiles[0].defaultWeight",
        "clientConnection.burst",
    ]
    assert str(info.value).startswith(f"{path}: profiles[0].mode: ")


def test_the_clock_skew_allowance_is_read_and_checked() -> None:
    cfg = parse_config({"profiles": [{"mode": "hybrid", "hybrid": {"clockSkewSeconds": 5}}]})
    assert cfg.profiles[0].params().clock_skew_allowance.total_seconds() == 5.0
    assert parse_config({}).profiles[0].params().clock_skew_allowance.total_seconds() == 30.0
    with pytest.raises(ConfigError, match=r"profiles\[0\]\.hybrid\.clockSkewSeconds.*-1"):
        parse_config({"profiles": [{"hybrid": {"clockSkewSeconds": -1}}]})


def test_one_default_mode_without_a_config_in_the_core_and_in_the_base_manifests() -> None:
    """cluster-energy everywhere a user does not choose (the thesis' modes lose energy on
    a cluster whose big node idles high: README "Scoring, in short")."""
    assert contract.DEFAULT_SCORING_MODE == "cluster-energy"
    assert ScheduleParams().mode == contract.DEFAULT_SCORING_MODE
    assert parse_config({}).profiles[0].mode == contract.DEFAULT_SCORING_MODE
    base = Path(__file__).resolve().parents[3] / "manifests/base/scheduler/config.yaml"
    shipped = parse_config(yaml.safe_load(yaml.safe_load(base.read_text())["data"]["config.yaml"]))
    assert [p.mode for p in shipped.profiles] == [contract.DEFAULT_SCORING_MODE]
