"""The real node's pure parts: addresses, configs, the FROM-scratch image archive."""

from __future__ import annotations

import io
import json
import tarfile
import tomllib
from pathlib import Path

import pytest

from energysched_lab.cluster import realnode
from energysched_lab.cluster.realnode import NodeNet, choose_index, image_archive


def test_addresses_per_index() -> None:
    net = NodeNet(7, "abcd1234")
    assert (net.host_ip, net.node_ip, net.pod_subnet) == (
        "10.213.7.1",
        "10.213.7.2",
        "10.214.7.0/24",
    )
    # Linux interface names are at most 15 bytes.
    assert len(net.host_veth) <= 15 and len(net.node_veth) <= 15
    assert net.host_veth != net.node_veth


def test_choose_index_skips_used_links() -> None:
    assert choose_index([]) == 1
    assert choose_index(["127.0.0.1", "10.213.1.1", "10.213.2.1"]) == 3
    with pytest.raises(realnode.RealNodeError, match="no free"):
        choose_index([f"10.213.{i}.1" for i in range(1, 255)])


def test_containerd_config(tmp_path: Path) -> None:
    net = NodeNet(3, "abcd1234")
    cfg = tomllib.loads(realnode.containerd_config(tmp_path, net))
    cri = cfg["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # no CAP_SYS_RESOURCE in the VM
    assert cri["sandbox_image"] == realnode.PAUSE_IMAGE
    assert cri["containerd"]["snapshotter"] == "native"
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is False
    assert cfg["grpc"]["address"].startswith(str(net.socket_dir))
    assert len(cfg["grpc"]["address"]) < 108  # sun_path
    assert cfg["root"].startswith(str(tmp_path)) and cfg["state"].startswith(str(tmp_path))


def test_cni_keeps_pods_in_their_subnet(tmp_path: Path) -> None:
    cfg = realnode.cni_config(tmp_path, NodeNet(3, "abcd1234"))
    bridge = cfg["plugins"][0]
    assert bridge["type"] == "bridge" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.214.3.0/24"}]]
    assert bridge["ipam"]["dataDir"].startswith(str(tmp_path))


def test_kubelet_config(tmp_path: Path) -> None:
    cfg = realnode.kubelet_config(tmp_path, NodeNet(3, "abcd1234"), tmp_path / "ca.crt")
    assert cfg["cgroupDriver"] == "cgroupfs" and cfg["failCgroupV1"] is False
    assert cfg["failSwapOn"] is False
    assert cfg["cgroupRoot"] == "/energysched-abcd1234"
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["address"] == "10.213.3.2"


def test_image_archive_is_a_deterministic_docker_archive() -> None:
    files = {"/pause": (b"\x7fELF...", 0o755)}
    one = image_archive("energysched.local/x:1", files, ["/pause"])
    assert one == image_archive("energysched.local/x:1", files, ["/pause"])
    with tarfile.open(fileobj=io.BytesIO(one)) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (entry,) = manifest
        assert entry["RepoTags"] == ["energysched.local/x:1"]
        config = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        assert config["config"]["Entrypoint"] == ["/pause"]
        assert config["config"]["User"] == "65532:65532"  # runs as non-root
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        (member,) = inner.getmembers()
        assert member.name == "pause" and member.mode == 0o755


def _fake_proc_sys(root: Path, values: dict[str, str]) -> None:
    for key, value in values.items():
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_text(value + "\n")


def test_machine_sysctls_are_put_back_after_kubelet_rewrote_them(tmp_path: Path) -> None:
    original = {k: "7" for k in realnode.KUBELET_SYSCTLS}
    _fake_proc_sys(tmp_path, original)
    with realnode.machine_sysctls_kept(timeout=5, proc_sys=tmp_path, lock_dir=tmp_path):
        _fake_proc_sys(tmp_path, realnode.KUBELET_SYSCTLS)  # what kubelet does at start-up
    assert {k: (tmp_path / k).read_text().strip() for k in original} == original


def test_machine_sysctls_are_put_back_when_start_up_fails(tmp_path: Path) -> None:
    original = {k: "7" for k in realnode.KUBELET_SYSCTLS}
    _fake_proc_sys(tmp_path, original)
    with (
        pytest.raises(RuntimeError),
        realnode.machine_sysctls_kept(timeout=5, proc_sys=tmp_path, lock_dir=tmp_path),
    ):
        (tmp_path / "kernel/panic").write_text("10")
        raise RuntimeError("kubelet did not come up")
    assert (tmp_path / "kernel/panic").read_text().strip() == "7"
