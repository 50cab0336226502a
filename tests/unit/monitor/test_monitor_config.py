"""Config file and annotation override: parsing, precedence, credentials, reloading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched_monitor.config import (
    ConfigError,
    ConfigStore,
    CredentialRef,
    parse_config_text,
    parse_override,
    resolve_source,
)
from energysched_monitor.ports import NodeInfo

pytestmark = pytest.mark.unit

EXAMPLE = """
pollIntervalSeconds: 5
timeoutSeconds: 2
secretsDir: /etc/energysched-monitor/secrets
publish: {absoluteWatts: 3, relativeChange: 0.05, minIntervalSeconds: 10, heartbeatSeconds: 30}
nodes:
  tvpc:
    kind: shelly
    address: http://192.168.178.50
    credentials: {secretKey: tvpc}
    maxWatts: 400
  wyse: {kind: shelly, address: 192.168.178.51, component: pm1}
  gpu-box: {kind: rapl+nvml, offsetWatts: 20}
selectors:
  - matchLabels: {kubernetes.io/arch: arm}
    source: {kind: rapl}
  - matchLabels: {type: kwok}
    source: {kind: model}
"""


def test_example_parses() -> None:
    cfg = parse_config_text(EXAMPLE)
    assert cfg.poll_interval_seconds == 5 and cfg.timeout_seconds == 2
    assert cfg.publish.absolute_watts == 3 and cfg.publish.heartbeat_seconds == 30
    tvpc = cfg.nodes["tvpc"]
    assert tvpc.kind == "shelly" and tvpc.max_watts == 400
    assert tvpc.credentials == CredentialRef("admin", "tvpc", None)
    assert cfg.nodes["wyse"].component == "pm1"
    assert cfg.gap_seconds == 15


def test_defaults() -> None:
    cfg = parse_config_text("")
    assert cfg.poll_interval_seconds == 5 and cfg.publish.heartbeat_seconds == 30
    assert cfg.nodes == {} and cfg.selectors == ()


def test_precedence_annotation_then_name_then_selector() -> None:
    cfg = parse_config_text(EXAMPLE)
    ann = POWER_SOURCE_CONFIG_ANNOTATION
    by_name = NodeInfo("tvpc", labels={"kubernetes.io/arch": "arm"})
    assert resolve_source(cfg, by_name, ann)[1] == "config nodes.tvpc"
    by_label = NodeInfo("pi", labels={"kubernetes.io/arch": "arm"})
    spec, origin = resolve_source(cfg, by_label, ann)
    assert spec is not None and spec.kind == "rapl" and origin == "config selectors[0]"
    override = NodeInfo(
        "tvpc",
        annotations={ann: json.dumps({"kind": "shelly", "address": "http://10.0.0.9"})},
    )
    spec, origin = resolve_source(cfg, override, ann)
    assert spec is not None and spec.address == "http://10.0.0.9"
    assert origin.startswith("annotation")
    assert resolve_source(cfg, NodeInfo("nobody"), ann) == (None, "none")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nodes: {a: {kind: plug}}", "nodes.a.kind: expected one of"),
        ("nodes: {a: {kind: shelly}}", "nodes.a: a shelly source needs an address"),
        ("nodes: {a: {kind: shelly, adress: x}}", "nodes.a: unknown key(s) adress"),
        ("pollIntervalSeconds: fast", "pollIntervalSeconds: expected a number, got 'fast'"),
        ("pollIntervalSeconds: -1", "pollIntervalSeconds: must be a number >= 0.1"),
        ("publish: {minIntervalSeconds: 90, heartbeatSeconds: 30}", "publish: need 0 <"),
        ("nodes: [a, b]", "nodes: expected a map"),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {password: hunter2}}}",
            "passwords do not belong in the config",
        ),
        ("nodes: {a: {kind: shelly, address: x, credentials: {}}}", "exactly one of"),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {secretKey: ../etc/shadow}}}",
            "not a Secret key name",
        ),
        ("selectors: [{matchLabels: {}, source: {kind: rapl}}]", "non-empty map of labels"),
        ("nodes: {a: {kind: rapl, maxWatts: 0}}", "maxWatts must be above minWatts"),
        ("nodes: {a: {kind: nvml, gpus: [0, x]}}", "gpus: expected a list of GPU indices"),
        ("{{{", "not valid YAML/JSON"),
        ("typo: 1", "config: unknown key(s) typo"),
    ],
)
def test_errors_name_the_path_and_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "config.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("config.yaml: ")
    assert "hunter2" not in str(info.value)


def test_override_may_not_read_env_or_arbitrary_paths() -> None:
    with pytest.raises(ConfigError, match="env: not allowed in a node annotation"):
        parse_override('{"kind": "shelly", "address": "x", "credentials": {"env": "HOME"}}')
    with pytest.raises(ConfigError, match="powercapRoot: not allowed"):
        parse_override('{"kind": "rapl", "powercapRoot": "/etc"}')
    with pytest.raises(ConfigError, match="not JSON"):
        parse_override("kind: shelly")
    spec = parse_override('{"kind": "shelly", "address": "x", "credentials": {"secretKey": "k"}}')
    assert spec.credentials == CredentialRef("admin", "k", None)


def test_credentials_from_file_and_env(tmp_path: Path) -> None:
    (tmp_path / "tvpc").write_text("pa55\n")
    assert CredentialRef(secret_key="tvpc").resolve(str(tmp_path)).reveal() == "pa55"
    assert CredentialRef(env="PW").resolve("/nowhere", {"PW": "x"}).reveal() == "x"
    with pytest.raises(ConfigError, match="cannot read secret file"):
        CredentialRef(secret_key="missing").resolve(str(tmp_path))
    with pytest.raises(ConfigError, match="PW is not set"):
        CredentialRef(env="PW").resolve("/nowhere", {})
    (tmp_path / "empty").write_text("")
    with pytest.raises(ConfigError, match="empty"):
        CredentialRef(secret_key="empty").resolve(str(tmp_path))
    secret = CredentialRef(secret_key="tvpc").resolve(str(tmp_path))
    assert "pa55" not in repr(secret) and "pa55" not in str(secret) and "pa55" not in f"{secret}"


def test_describe_never_shows_secrets() -> None:
    spec = parse_config_text(EXAMPLE).nodes["tvpc"]
    assert spec.describe() == "shelly http://192.168.178.50 user=admin secretKey=tvpc"


def test_store_keeps_the_last_good_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("pollIntervalSeconds: 7")
    store = ConfigStore(str(path))
    assert store.refresh() == (True, None) and store.config.poll_interval_seconds == 7
    assert store.refresh() == (False, None)  # unchanged content: nothing to do
    path.write_text("pollIntervalSeconds: seven")
    changed, error = store.refresh()
    assert not changed and error is not None and "'seven'" in str(error)
    assert store.config.poll_interval_seconds == 7 and not store.valid
    assert store.refresh() == (False, None)  # the same bad content is reported once
    path.write_text("pollIntervalSeconds: 8")
    assert store.refresh() == (True, None) and store.config.poll_interval_seconds == 8
    path.unlink()
    changed, error = store.refresh()
    assert error is not None and store.config.poll_interval_seconds == 8


def test_store_without_file() -> None:
    store = ConfigStore(None)
    assert store.refresh() == (False, None) and store.config.nodes == {}
