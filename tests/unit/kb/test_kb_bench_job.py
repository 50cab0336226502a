"""Finding the result document in pod logs, and the per-node Job manifest."""

from __future__ import annotations

import json

import pytest

from energysched.kbtools.bench_job import (
    BENCH_NODE_LABEL,
    COMMAND,
    PASSWORD_FILE,
    SECRET_GROUP,
    build_bench_job,
    job_name,
)
from energysched_bench.result import (
    BEGIN_MARKER,
    END_MARKER,
    SCHEMA,
    ResultNotFound,
    extract_result,
    extract_results,
    format_result,
)

DOC = {"schema": SCHEMA, "node": "wyse", "kernels": [{"name": "training-cpu", "median": 1.5}]}


def test_round_trip() -> None:
    assert extract_result(format_result(DOC)) == DOC


def test_noise_prefixes_and_restarts() -> None:
    second = {**DOC, "node": "wyse-2"}
    log = "\n".join(
        [
            "Collecting numpy... {not json",
            "training (cpu): MLP 256-512-512-10",
            "2026-11-23T16:00:00.123456789Z " + BEGIN_MARKER,
            "2026-11-23T16:00:00.2Z RuntimeWarning: overflow {in exp}",
            "2026-11-23T16:00:00.3Z " + json.dumps(DOC),
            "2026-11-23T16:00:00.4Z " + END_MARKER,
            "stray stderr line",
            BEGIN_MARKER,
            json.dumps(second, indent=None),
            '{"unrelated": true}',
            END_MARKER,
            "bye",
        ]
    )
    docs = extract_results(log)
    assert [d["node"] for d in docs] == ["wyse", "wyse-2"]
    assert extract_result(log)["node"] == "wyse-2"


@pytest.mark.parametrize(
    ("log", "reason"),
    [
        ("just output\n", "no begin marker"),
        (f"{BEGIN_MARKER}\n{json.dumps(DOC)[:20]}\n", "cut short"),
        (f"{BEGIN_MARKER}\n{json.dumps(DOC)[:-5]}\n{END_MARKER}\n", "cut short"),
        (f"{BEGIN_MARKER}\n{json.dumps({'schema': 'other'})}\n{END_MARKER}\n", "cut short"),
    ],
)
def test_missing_or_damaged(log: str, reason: str) -> None:
    with pytest.raises(ResultNotFound, match=reason):
        extract_result(log)


def test_job_manifest() -> None:
    job = build_bench_job(
        "tvpc",
        "registry.local/energysched-bench:v1",
        run_id="20261123-1600",
        args=["--power", "shelly", "--shelly-url", "http://10.0.0.5"],
        gpu=True,
        runtime_class="nvidia",
    )
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    meta = job["metadata"]
    assert meta["name"] == "energysched-bench-tvpc-20261123-1600"
    assert meta["namespace"] == "energysched"
    assert meta["labels"][BENCH_NODE_LABEL] == "tvpc"
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == meta["labels"]
    assert pod["nodeSelector"] == {"kubernetes.io/hostname": "tvpc"}
    assert pod["restartPolicy"] == "Never"
    assert pod["tolerations"] == [{"operator": "Exists"}]
    assert pod["runtimeClassName"] == "nvidia"
    (container,) = pod["containers"]
    assert container["command"] == [
        *COMMAND,
        "--power",
        "shelly",
        "--shelly-url",
        "http://10.0.0.5",
    ]
    assert container["command"][:4] == ["python", "-m", "energysched_bench", "--json"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"


def test_job_defaults_and_long_names() -> None:
    job = build_bench_job(
        "Very_Long.Node-Name" * 5,
        "img",
        run_id="run",
        tolerate_all_taints=False,
        ttl_seconds_after_finished=None,
    )
    name = job["metadata"]["name"]
    assert len(name) <= 63 and name.endswith("-run") and name == name.lower()
    pod = job["spec"]["template"]["spec"]
    assert "tolerations" not in pod and "runtimeClassName" not in pod
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]
    assert job_name("rpi", "x") == "energysched-bench-rpi-x"


def test_the_plug_password_is_a_mounted_secret_not_an_argument() -> None:
    job = build_bench_job(
        "tvpc",
        "bench:1",
        run_id="r1",
        args=["--power", "shelly", "--shelly-url", "http://plug"],
        password_secret=("plug-auth", "tvpc-password"),
    )
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][-2:] == ["--shelly-password-file", PASSWORD_FILE]
    assert "--shelly-password" not in container["command"]  # only the file's path goes in
    (volume,) = pod["volumes"]
    assert volume["secret"]["secretName"] == "plug-auth"
    assert volume["secret"]["items"] == [{"key": "tvpc-password", "path": "password"}]
    assert volume["secret"]["defaultMode"] == 0o440
    # Not world-readable: the container's user reads it through the pod's fsGroup.
    assert pod["securityContext"]["fsGroup"] == SECRET_GROUP
    (mount,) = container["volumeMounts"]
    assert (mount["name"], mount["readOnly"]) == (volume["name"], True)
    assert f"{mount['mountPath']}/password" == PASSWORD_FILE
    assert not any("valueFrom" in e and "secretKeyRef" in e["valueFrom"] for e in container["env"])


def test_without_a_secret_no_volume_and_no_password_argument() -> None:
    pod = build_bench_job("tvpc", "bench:1", run_id="r1")["spec"]["template"]["spec"]
    assert "volumes" not in pod and "volumeMounts" not in pod["containers"][0]
    assert "securityContext" not in pod
    assert not any("password" in a for a in pod["containers"][0]["command"])
