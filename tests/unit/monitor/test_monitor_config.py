"""Config file and annotation override: parsing, precedence, credentials, reloading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from energysched.contract import POWER_SOURCE_CONFIG_ANNOTATION
from energysched.strict import DocumentError
from energysched_monitor.config import (
    ConfigError,
    ConfigStore,
    CredentialRef,
    MonitorConfig,
    parse_config_text,
    parse_override,
    resolve_source,
)
from energysched_monitor.interfaces import NodeInfo
from energysched_monitor.shelly import ShellyFields

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
    assert cfg.nodes["wyse"].settings_as(ShellyFields).component == "pm1"
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
        (
            "nodes: {a: {kind: plug}}",
            "nodes.a.kind: input should be 'shelly', 'rapl', 'nvml', 'rapl+nvml', 'model', "
            "'redfish' or 'prometheus', got 'plug'",
        ),
        ("nodes: {a: {kind: shelly}}", "nodes.a: a shelly source needs an address"),
        (  # a key under its alias (schema_ in the model) is refused as well
            "nodes: {a: {kind: shelly, address: x, schema: power}}",
            "nodes.a: schema: only for kind redfish, got kind 'shelly'",
        ),
        (
            "nodes: {a: {kind: shelly, adress: x}}",
            "nodes.a.adress: unknown field; allowed: kind, address, component,",
        ),
        (
            "pollIntervalSeconds: fast",
            "pollIntervalSeconds: input should be a valid number, got 'fast'",
        ),
        (
            "pollIntervalSeconds: -1",
            "pollIntervalSeconds: input should be greater than or equal to 0.1, got -1",
        ),
        (
            "publish: {minIntervalSeconds: 90, heartbeatSeconds: 30}",
            "publish: need 0 < min_interval_seconds <= heartbeat_seconds, "
            "got minIntervalSeconds 90.0, heartbeatSeconds 30.0",
        ),
        ("nodes: [a, b]", "nodes: must be an object, got ['a', 'b']"),
        ("nodes: {1: {kind: rapl}}", "nodes: key 1 is not a string"),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {password: hunter2}}}",
            "nodes.a.credentials: passwords do not belong in the config; use secretKey or env",
        ),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {password: null, env: PW}}}",
            "nodes.a.credentials: passwords do not belong in the config",
        ),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: hunter2}}",
            "nodes.a.credentials: must be an object with secretKey or env (the value is not shown)",
        ),
        (
            "nodes: {a: [{kind: shelly, credentials: {password: hunter2}}]}",
            "nodes.a: must be an object, got a value with a password in it (not shown)",
        ),
        (
            "nodes:\n  a: {credentials: {password: hunter2}\n",
            "not valid YAML (not shown: the text has a password in it)",
        ),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {}}}",
            "nodes.a.credentials: give exactly one of secretKey or env",
        ),
        (
            "nodes: {a: {kind: shelly, address: x, credentials: {secretKey: ../etc/shadow}}}",
            "nodes.a.credentials.secretKey: not a Secret key name "
            "(letters, digits, '-', '_', '.'), got '../etc/shadow'",
        ),
        (
            "selectors: [{matchLabels: {}, source: {kind: rapl}}]",
            "selectors[0].matchLabels: dictionary should have at least 1 item",
        ),
        (
            "selectors: [{matchLabels: {tier: 1}, source: {kind: rapl}}]",
            "selectors[0].matchLabels.tier: input should be a valid string, got 1",
        ),
        (
            "nodes: {a: {kind: rapl, maxWatts: 0}}",
            "nodes.a: maxWatts must be above minWatts, got maxWatts 0.0 and minWatts 0.0",
        ),
        (
            "pollIntervalSeconds: 10\nmaxBackoffSeconds: 5",
            "maxBackoffSeconds: must be >= pollIntervalSeconds (10.0), got 5.0",
        ),
        (
            "nodes: {a: {kind: nvml, gpus: [0, x]}}",
            "nodes.a.gpus[1]: input should be a valid integer, got 'x'",
        ),
        ("nodes: {a: {kind: nvml, gpus: [-1]}}", "nodes.a.gpus[0]: input should be greater"),
        ("{{{", "not valid YAML: while parsing a flow node"),
        ("typo: 1", "config.yaml: typo: unknown field; allowed: pollIntervalSeconds,"),
    ],
)
def test_errors_name_the_path_and_the_value(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "config.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("config.yaml: ")
    assert "hunter2" not in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    text = """
pollIntervalSeconds: true
timeoutSeconds: '1'
publish: {burst: 0, pasword: hunter2}
nodes: {a: {kind: rapl, minWatts: -1}}
selectors: [{source: {kind: x}}]
"""
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, "config.yaml")
    assert isinstance(info.value, DocumentError)  # the strict reader's error, every problem
    assert [str(p).split(", got")[0].split("; allowed")[0] for p in info.value.problems] == [
        "pollIntervalSeconds: input should be a valid number",
        "timeoutSeconds: input should be a valid number",
        "publish.burst: input should be greater than or equal to 1",
        "publish.pasword: unknown field",
        "nodes.a.minWatts: input should be greater than or equal to 0",
        "selectors[0].matchLabels: field required",
        "selectors[0].source.kind: input should be 'shelly', 'rapl', 'nvml', 'rapl+nvml', "
        "'model', 'redfish' or 'prometheus'",
    ]
    assert str(info.value).startswith("config.yaml: pollIntervalSeconds: ")
    assert str(info.value).count("; ") >= 6 and "hunter2" not in str(info.value)


def test_null_means_the_default() -> None:
    cfg = parse_config_text("nodes:\nselectors:\npublish:\ntimeoutSeconds:\n")
    assert cfg == parse_config_text("") == parse_config_text("publish: {}") == MonitorConfig()
    assert cfg.timeout_seconds == 3 and cfg.max_backoff_seconds == 60
    fast = parse_config_text("pollIntervalSeconds: 0.5\npublish: {burst: 2.5}")
    assert fast.timeout_seconds == 0.5 and fast.max_backoff_seconds == 60
    assert fast.write_burst == 2 and isinstance(fast.poll_interval_seconds, float)
    slow = parse_config_text("pollIntervalSeconds: 90")
    assert slow.timeout_seconds == 3 and slow.max_backoff_seconds == 90


def test_override_may_not_read_env_or_arbitrary_paths() -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(
            '{"kind": "shelly", "address": "x", "credentials": {"env": "HOME"},'
            ' "powercapRoot": "/etc"}'
        )
    assert [str(p) for p in info.value.problems] == [
        "annotation.credentials.env: not allowed in a node annotation; use secretKey",
        "annotation.powercapRoot: not allowed in a node annotation",
    ]
    with pytest.raises(ConfigError, match="not JSON"):
        parse_override("kind: shelly")
    spec = parse_override('{"kind": "shelly", "address": "x", "credentials": {"secretKey": "k"}}')
    assert spec.credentials == CredentialRef("admin", "k", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"kind": "shelly", "address": "x", "credentials": {"password": "hunter2"}}',
            "annotation.credentials: passwords do not belong in the config",
        ),
        (
            '{"kind": "shelly", "address": "x", "credentials": "hunter2"}',
            "annotation.credentials: must be an object with secretKey or env",
        ),
        ('[{"password": "hunter2"}]', "annotation: must be an object, got a value with a password"),
        (
            '{"kind": "shelly", "credentials": {"password": "hunter2"}',
            "annotation: not JSON (Expecting ',' delimiter) (not shown: the text has a password",
        ),
    ],
)
def test_annotation_errors_never_show_a_password(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_override(text)
    assert str(info.value).startswith(message) and "hunter2" not in str(info.value)


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
    assert not changed and error is not None and store.config.poll_interval_seconds == 8
    assert str(error) == f"cannot read {path}: No such file or directory" and not store.valid
    assert store.refresh()[1] is not None  # unreadable: said on every refresh
    path.write_text("pollIntervalSeconds: 8")
    assert store.refresh() == (False, None) and store.valid  # back, and the same content


def test_store_stays_invalid_while_a_bad_file_is_unreadable_and_back(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"pollIntervalSeconds: 7\nnodes: {\xff: {kind: rapl}}")
    store = ConfigStore(str(path))
    changed, error = store.refresh()  # not UTF-8: an error, not a node name with U+FFFD
    assert not changed and error is not None and str(error).startswith(f"{path}: not valid YAML")
    path.unlink()
    assert store.refresh()[1] is not None and not store.valid
    path.write_bytes(b"pollIntervalSeconds: 7\nnodes: {\xff: {kind: rapl}}")
    assert store.refresh() == (False, None) and not store.valid  # reported once; still bad
    assert store.config == MonitorConfig()


def test_store_without_file() -> None:
    store = ConfigStore(None)
    assert store.refresh() == (False, None) and store.config.nodes == {}
