"""One real node beside the KWOK nodes: kubelet + containerd + runc + CNI, on this machine.

``energysched cluster up --real-node`` adds a node that really runs containers, so that the
manifests can be proven as pods (service-account tokens, in-cluster config, probes, a read-only
root file system). Opt-in: it needs root, Debian's ``containerd``, ``runc`` and
``containernetworking-plugins``, and it makes the cluster behave like a real one (the
ServiceAccount admission plugin is on), which the simulation does not need.

Isolation, so that several clusters (a test session and a developer's cluster) can each have one
on the same machine without touching each other or anything else:

- **Network.** The node lives in a network namespace of its own (``es-<id>``), joined to the host
  by one veth pair ``10.213.N.1`` (host) / ``10.213.N.2`` (node). containerd, kubelet and
  kube-proxy run inside it (``nsenter --net``: only the network namespace, the mount namespace is
  shared so that kubelet's volume mounts are visible to containerd). The pods' bridge ``cni0``
  and their subnet ``10.214.N.0/24`` are inside it; kube-proxy's iptables rules are inside it.
  The API server listens on ``10.213.N.1`` (not 0.0.0.0), so pods reach it through the
  ``kubernetes`` Service exactly as on k3s, and it reaches the kubelet at the node's
  InternalIP ``10.213.N.2`` (``kubectl logs``). The node's namespace routes only the veth's
  /30 and the Service range; the host does not forward (``ip_forward`` is left as it is, 0 here),
  so no pod packet can leave the machine.
- **Cgroups.** kubelet's ``cgroupRoot`` is ``/energysched-<id>`` in every mounted v1 hierarchy,
  so two kubelets never garbage-collect each other's pods.
- **Files.** containerd has its own root, state and socket; kubelet its own root directory and
  pod-log directory; CNI its own IPAM directory; all under the cluster's state directory
  (sockets under ``/run/energysched/<id>``: a Unix socket path is limited to 107 bytes).

Teardown is by PID like the rest: kubelet and kube-proxy, then every process in the node's
cgroups and every shim of *this* containerd (matched by its socket on the command line), then
containerd; then the mounts under the node's directories, the cgroups and the namespace.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import io
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from energysched_lab.cluster import build, versions
from energysched_lab.cluster.pki import LocalPKI
from energysched_lab.cluster.processes import ManagedProcess

PAUSE_DIR = Path(__file__).with_name("pause")
NODE_COMMANDS = ("kubelet", "kube-proxy")
TOOL_BINARIES = ("pause", "tool")
#: The processes of the node in the cluster's state (teardown stops them in its own order).
NODE_PROCESSES = ("containerd", "kubelet", "kube-proxy")
#: The sandbox image every pod's namespaces are held by; built here, never pulled.
PAUSE_IMAGE = "energysched.local/pause:1"
#: A tiny test image (pause/tool/main.go): `/tool print hi`, `/tool api /api` (as its SA).
TOOL_IMAGE = "energysched.local/tool:1"
NODE_NAME = "realnode"
#: Label on the real node (KWOK nodes lack it): the local overlay pins components with it.
REAL_NODE_LABEL = "node.energysched.local/real"
HOST_NET = ipaddress.ip_network("10.213.0.0/16")  # one /30 per cluster: 10.213.N.0/30
POD_NET = ipaddress.ip_network("10.214.0.0/16")  # one /24 per cluster: 10.214.N.0/24
SERVICE_CIDR = "10.0.0.0/24"  # the API server's --service-cluster-ip-range
CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CGROUP_V1 = Path("/sys/fs/cgroup")
SOCKET_ROOT = Path("/run/energysched")


class RealNodeError(RuntimeError):
    """The real node cannot be built or started here; the message says what is missing."""


# -- build (own cache: the control plane's key and binaries stay untouched) ------------------


def _key(files: Iterable[Path], extra: str) -> str:
    h = hashlib.sha256()
    for path in files:
        h.update(path.read_bytes())
    h.update(f"{extra} {build._go_version()}".encode())
    return h.hexdigest()[:16]


def node_bin_dir() -> Path:
    """kubelet and kube-proxy: keyed on the control plane's pinned module, like its build."""
    key = _key((build.GOMOD_DIR / n for n in ("go.mod", "go.sum")), versions.KUBERNETES_VERSION)
    return build.cache_root() / "node" / key / "bin"


def tools_bin_dir() -> Path:
    """pause and tool: keyed on their own sources (editing them never relinks kubelet)."""
    sources = sorted(p for p in PAUSE_DIR.rglob("*") if p.suffix in {".go", ".mod"})
    return build.cache_root() / "node-tools" / _key(sources, "tools") / "bin"


@dataclass(frozen=True)
class NodeBinaries:
    kube: Path  # kubelet, kube-proxy
    tools: Path  # pause, tool


def ensure_node_binaries(*, verbose: bool = True) -> NodeBinaries:
    """kubelet and kube-proxy from the control plane's pinned module; pause and tool.

    The module is copied into the node cache before building: with ``-mod=mod`` Go may add
    go.sum lines for kubelet's extra packages, and those must not touch the repository's
    go.sum (that would change the control plane's cache key and rebuild it).
    """
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    kube_dir = node_bin_dir()
    with _locked_build(kube_dir, NODE_COMMANDS, verbose) as (missing, tmp, log):
        if missing:
            mod = kube_dir.parent / "mod"
            mod.mkdir(exist_ok=True)
            for name in ("go.mod", "go.sum"):
                shutil.copyfile(build.GOMOD_DIR / name, mod / name)
            pkgs = [f"k8s.io/kubernetes/cmd/{b}" for b in missing]
            cmd = [build._go(), "build", "-trimpath", "-ldflags", build._ldflags(), "-o"]
            build._run([*cmd, str(tmp) + "/", *pkgs], mod, env, log)
    tools_dir = tools_bin_dir()
    with _locked_build(tools_dir, TOOL_BINARIES, verbose) as (missing, tmp, log):
        for name in missing:
            pkg = "." if name == "pause" else f"./{name}"
            cmd = [build._go(), "build", "-trimpath", "-ldflags", "-s -w", "-o", str(tmp / name)]
            build._run([*cmd, pkg], PAUSE_DIR, {**env, "GOFLAGS": "-buildvcs=false"}, log)
    return NodeBinaries(kube_dir, tools_dir)


@contextlib.contextmanager
def _locked_build(
    target: Path, names: tuple[str, ...], verbose: bool
) -> Iterator[tuple[list[str], Path, Path]]:
    """Yield what is missing and a temporary directory; move the results in atomically."""
    if all((target / b).exists() for b in names):
        yield [], target, target
        return
    target.mkdir(parents=True, exist_ok=True)
    with (target.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test sessions start together
        missing = [b for b in names if not (target / b).exists()]
        tmp = target.parent / "bin.tmp"
        tmp.mkdir(exist_ok=True)
        log = target.parent / "build.log"
        start = time.monotonic()
        if verbose and missing:
            print(f"building {', '.join(missing)} into {target} (log: {log})", file=sys.stderr)
        yield missing, tmp, log
        for b in missing:
            (tmp / b).replace(target / b)  # a half-built binary is never used
        if verbose and missing:
            print(f"built in {time.monotonic() - start:.0f} s", file=sys.stderr)


# -- images ------------------------------------------------------------------------------------


def image_archive(ref: str, files: dict[str, tuple[bytes, int]], entrypoint: list[str]) -> bytes:
    """A one-layer image FROM scratch as a docker-archive tarball (what ``ctr import`` reads).

    Deterministic: the same files give the same digest, so re-importing is a no-op.
    """

    def tar_of(entries: Iterable[tuple[str, bytes, int]]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, data, mode in entries:
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), mode, 0
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layer = tar_of((name.lstrip("/"), data, mode) for name, (data, mode) in sorted(files.items()))
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": entrypoint, "User": "65532:65532"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": "energysched_lab.cluster.realnode.image_archive"}],
        },
        sort_keys=True,
    ).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps(
        [{"Config": config_name, "RepoTags": [ref], "Layers": ["layer.tar"]}]
    ).encode()
    return tar_of(
        [
            (config_name, config, 0o644),
            ("layer.tar", layer, 0o644),
            ("manifest.json", manifest, 0o644),
        ]
    )


# -- addressing and configuration (pure) -------------------------------------------------------


@dataclass(frozen=True)
class NodeNet:
    """The node's addresses; ``index`` picks one free /30 and /24 per cluster on the machine."""

    index: int
    ident: str  # short id for names limited to 15 bytes (interfaces) or 107 (sockets)

    @property
    def host_ip(self) -> str:
        return str(HOST_NET.network_address + self.index * 256 + 1)

    @property
    def node_ip(self) -> str:
        return str(HOST_NET.network_address + self.index * 256 + 2)

    @property
    def pod_subnet(self) -> str:
        return str(ipaddress.ip_network(f"{POD_NET.network_address + self.index * 256}/24"))

    @property
    def netns(self) -> str:
        return f"es-{self.ident}"

    @property
    def host_veth(self) -> str:
        return f"es{self.ident}h"

    @property
    def node_veth(self) -> str:
        return f"es{self.ident}n"

    @property
    def cgroup_root(self) -> str:
        return f"/energysched-{self.ident}"

    @property
    def socket_dir(self) -> Path:
        return SOCKET_ROOT / self.ident


def choose_index(used_ips: Iterable[str]) -> int:
    used = set(used_ips)
    for index in range(1, 255):
        if NodeNet(index, "x").host_ip not in used:
            return index
    raise RealNodeError("no free 10.213.N.0/30 for the real node's link (all 254 in use)")


def containerd_config(node_dir: Path, net: NodeNet) -> str:
    d, s = node_dir / "containerd", net.socket_dir
    # CRI of its own: native snapshotter (no overlayfs assumptions), cgroupfs (no systemd here),
    # restrict_oom_score_adj because the VM lacks CAP_SYS_RESOURCE (runc cannot lower a
    # container's oom_score_adj below its parent's: every sandbox failed without it), and the
    # pods' netns mounts under our own state directory so that teardown finds them.
    return f"""version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
]

[grpc]
  address = "{s}/containerd.sock"

[ttrpc]
  address = "{s}/containerd.sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_BIN_DIR}"
    conf_dir = "{node_dir}/cni/net.d"
    max_conf_num = 1
"""


def cni_config(node_dir: Path, net: NodeNet) -> dict[str, Any]:
    return {
        "cniVersion": "1.0.0",
        "name": f"energysched-{net.ident}",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",  # inside the node's namespace: no clash between clusters
                "isGateway": True,
                "ipMasq": False,  # the host routes the pod /24 to the node; nothing leaves
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": net.pod_subnet}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(node_dir / "cni" / "ipam"),
                },
            }
        ],
    }


def kubelet_config(node_dir: Path, net: NodeNet, ca: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": net.node_ip,
        "healthzBindAddress": "127.0.0.1",  # the node namespace's own loopback
        "readOnlyPort": 0,
        # Only clients with a certificate of the cluster's CA (the API server) may talk to it.
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "containerRuntimeEndpoint": f"unix://{net.socket_dir}/containerd.sock",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": net.cgroup_root,
        "failCgroupV1": False,  # this machine mounts cgroups v1
        "failSwapOn": False,
        "podLogsDir": str(node_dir / "pod-logs"),
        "clusterDomain": "cluster.local",
        "maxPods": 40,
        "serializeImagePulls": False,
        # A shared development disk: only evict when it is really full.
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 99,
        "imageGCLowThresholdPercent": 98,
        "syncFrequency": "10s",  # ConfigMap/Secret edits reach pods within seconds
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(node_dir: Path, net: NodeNet, kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",  # its rules live in the node's network namespace only
        "hostnameOverride": NODE_NAME,
        "bindAddress": net.node_ip,
        "clusterCIDR": net.pod_subnet,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        # 0: leave the conntrack sysctls (nf_conntrack_max is machine-wide) as they are.
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


# -- host plumbing -----------------------------------------------------------------------------


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RealNodeError(f"{' '.join(cmd)} failed: {proc.stderr.strip() or proc.stdout}")
    return proc


def check_prerequisites() -> None:
    """Fail before anything starts, naming what is missing and how to get it."""
    problems = []
    if os.geteuid() != 0:
        problems.append("it must run as root (network namespace, cgroups, mounts)")
    for tool, pkg in (
        ("containerd", "containerd"),
        ("containerd-shim-runc-v2", "containerd"),
        ("ctr", "containerd"),
        ("runc", "runc"),
        ("ip", "iproute2"),
        ("nsenter", "util-linux"),
        ("iptables", "iptables"),
    ):
        if not shutil.which(tool):
            problems.append(f"'{tool}' not found (apt-get install {pkg})")
    for plugin in ("bridge", "host-local", "loopback"):
        if not (CNI_BIN_DIR / plugin).exists():
            problems.append(
                f"CNI plugin {CNI_BIN_DIR / plugin} missing "
                "(apt-get install containernetworking-plugins)"
            )
    if not (CGROUP_V1 / "memory").is_dir() and not (CGROUP_V1 / "cgroup.controllers").exists():
        problems.append(f"no cgroup hierarchy under {CGROUP_V1}")
    if problems:
        raise RealNodeError("the real node cannot run here: " + "; ".join(problems))


def _cgroup_hierarchies() -> list[Path]:
    if (CGROUP_V1 / "cgroup.controllers").exists():
        return [CGROUP_V1]  # v2: one unified hierarchy
    return sorted(
        p
        for p in CGROUP_V1.iterdir()
        if p.is_dir() and not p.is_symlink() and (p / "tasks").exists()
    )


def _used_host_ips() -> list[str]:
    out = _sh("ip", "-o", "-4", "addr", "show").stdout
    return [line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3]


@dataclass
class NodeState:
    """What teardown needs; saved in the cluster's state.json."""

    index: int
    ident: str
    node_dir: str
    created: bool = False

    @property
    def net(self) -> NodeNet:
        return NodeNet(self.index, self.ident)


def prepare_network(cluster_dir: Path) -> NodeState:
    """Namespace + veth + routes; called before the API server starts (it binds host_ip)."""
    ident = hashlib.sha256(str(cluster_dir.resolve()).encode()).hexdigest()[:8]
    lock_path = SOCKET_ROOT / "alloc.lock"
    SOCKET_ROOT.mkdir(parents=True, exist_ok=True)
    with lock_path.open("w") as lock:  # two clusters starting together pick different /30s
        fcntl.flock(lock, fcntl.LOCK_EX)
        if Path(f"/run/netns/es-{ident}").exists():  # left over from a crashed run of this dir
            teardown_network(NodeState(0, ident, str(cluster_dir / "node"), True))
        net = NodeNet(choose_index(_used_host_ips()), ident)
        state = NodeState(net.index, ident, str(cluster_dir / "node"))
        _sh("ip", "netns", "add", net.netns)
        state.created = True
        try:
            _sh("ip", "link", "add", net.host_veth, "type", "veth", "peer", "name", net.node_veth)
            _sh("ip", "link", "set", net.node_veth, "netns", net.netns)
            _sh("ip", "addr", "add", f"{net.host_ip}/30", "dev", net.host_veth)
            _sh("ip", "link", "set", net.host_veth, "up")
            inside = ("ip", "netns", "exec", net.netns)
            _sh(*inside, "ip", "link", "set", "lo", "up")
            _sh(*inside, "ip", "addr", "add", f"{net.node_ip}/30", "dev", net.node_veth)
            _sh(*inside, "ip", "link", "set", net.node_veth, "up")
            # Only the Service range leaves the node's namespace (to be DNAT-ed by kube-proxy
            # to the API server): no default route, so nothing else has anywhere to go.
            _sh(*inside, "ip", "route", "add", SERVICE_CIDR, "via", net.host_ip)
            _sh(*inside, "sysctl", "-qw", "net.ipv4.ip_forward=1")  # this namespace only
            # The host reaches pods (API server -> pod IP); this route dies with the veth.
            _sh("ip", "route", "add", net.pod_subnet, "via", net.node_ip, "dev", net.host_veth)
        except BaseException:
            teardown_network(state)
            raise
    return state


def teardown_network(state: NodeState) -> None:
    net = state.net
    _sh("ip", "link", "del", net.host_veth, check=False)  # takes its peer with it
    _sh("ip", "netns", "del", net.netns, check=False)


def _mounts_under(prefixes: Iterable[Path]) -> list[str]:
    roots = [str(p) for p in prefixes]
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].encode().decode("unicode_escape")
        if any(mount_point == r or mount_point.startswith(r + "/") for r in roots):
            found.append(mount_point)
    return sorted(set(found), key=len, reverse=True)


def _pids_in_cgroups(root: str) -> set[int]:
    pids: set[int] = set()
    for hierarchy in _cgroup_hierarchies():
        base = hierarchy / root.lstrip("/")
        if base.is_dir():
            for procs in base.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
    return pids


def _shim_pids(socket_dir: Path) -> set[int]:
    """Shims started by *this* containerd: their command line names its socket."""
    needle = f"{socket_dir}/containerd.sock".encode()
    found = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if "containerd-shim" in exe and needle in cmdline:
            found.add(int(proc.name))
    return found


def _kill(pids: Iterable[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def teardown(state: NodeState, processes: list[ManagedProcess]) -> None:
    """Stop the node by PID and remove what it left: mounts, cgroups, namespace, sockets."""
    net = state.net
    by_name = {p.name: p for p in processes}
    for name in ("kube-proxy", "kubelet"):
        if name in by_name:
            by_name[name].stop()
    # Containers outlive containerd (their shims keep them): kill them, by PID, first.
    victims = _pids_in_cgroups(net.cgroup_root) | _shim_pids(net.socket_dir)
    if "containerd" in by_name:
        by_name["containerd"].stop()
    for _ in range(3):
        _kill(victims)
        time.sleep(0.3)
        victims = _pids_in_cgroups(net.cgroup_root) | _shim_pids(net.socket_dir)
        if not victims:
            break
    for mount_point in _mounts_under([Path(state.node_dir), net.socket_dir]):
        _sh("umount", "--lazy", mount_point, check=False)
    for hierarchy in _cgroup_hierarchies():
        base = hierarchy / net.cgroup_root.lstrip("/")
        if base.is_dir():
            # Deepest first; a cgroup directory holding only its control files can be removed.
            for d in sorted(
                (p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
            ):
                with contextlib.suppress(OSError):
                    d.rmdir()
            with contextlib.suppress(OSError):
                base.rmdir()
    teardown_network(state)
    shutil.rmtree(net.socket_dir, ignore_errors=True)


# -- start -------------------------------------------------------------------------------------

#: Machine-wide sysctls kubelet sets at start-up (with protectKernelDefaults=false; with true
#: it refuses to start unless they already hold these values), and the values it sets.
KUBELET_SYSCTLS = {
    "vm/overcommit_memory": "1",
    "vm/panic_on_oom": "0",
    "kernel/panic": "10",
    "kernel/panic_on_oops": "1",
    "kernel/keys/root_maxkeys": "1000000",
    "kernel/keys/root_maxbytes": "25000000",
}


@contextlib.contextmanager
def machine_sysctls_kept(
    timeout: float = 60, proc_sys: Path = Path("/proc/sys"), lock_dir: Path = SOCKET_ROOT
) -> Iterator[None]:
    """Put back the machine-wide sysctls kubelet rewrote once it has rewritten them.

    kubelet sets them once, when its container manager starts, and does not look again: a
    development machine shared with others keeps its own kernel.panic_on_oops and friends.
    One node starts at a time (a lock), so a second one never records the first's values.
    """
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / "sysctl.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        saved = {k: (proc_sys / k).read_text().strip() for k in KUBELET_SYSCTLS}
        try:
            yield
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:  # kubelet writes them during its start-up
                now = {k: (proc_sys / k).read_text().strip() for k in KUBELET_SYSCTLS}
                if now == KUBELET_SYSCTLS:
                    break
                time.sleep(0.5)
        finally:
            for key, value in saved.items():
                if (proc_sys / key).read_text().strip() != value:
                    (proc_sys / key).write_text(value)


def _start_in_netns(
    name: str, netns: str, binary: Path, args: list[str], log_dir: Path
) -> ManagedProcess:
    """Start ``binary`` inside the node's network namespace only (nsenter execs: same PID)."""
    log = log_dir / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{netns}", "--", str(binary), *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    return ManagedProcess(name, proc.pid, str(binary), str(log))


def _prepare_cgroups(root: str) -> None:
    """kubelet insists that its cgroupRoot exists; a v1 cpuset needs cpus/mems before use."""
    for hierarchy in _cgroup_hierarchies():
        base = hierarchy / root.lstrip("/")
        base.mkdir(exist_ok=True)
        if hierarchy.name == "cpuset":
            for knob in ("cpuset.cpus", "cpuset.mems"):
                if not (base / knob).read_text().strip():
                    (base / knob).write_text((hierarchy / knob).read_text())


def _wait(check: Callable[[], bool], what: str, proc: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    time.sleep(0.2)
    while time.monotonic() < deadline:
        if check():
            return
        if not proc.alive() and not Path(f"/proc/{proc.pid}").exists():
            tail = "\n".join(Path(proc.log).read_text(errors="replace").splitlines()[-25:])
            raise RealNodeError(f"{what} exited during start-up; last lines of {proc.log}:\n{tail}")
        time.sleep(0.3)
    raise RealNodeError(f"{what} not ready after {timeout:.0f} s; see {proc.log}")


def import_image(net: NodeNet, archive: Path) -> str:
    """``ctr -n k8s.io images import`` into the node's containerd (native snapshotter).

    A gzip-compressed archive (``docker save | gzip``) is unpacked to a temporary file first:
    containerd 1.6's importer reads a plain tar.
    """
    with archive.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        tmp_dir = build.cache_root() / "tmp"  # on disk, not /run (a tmpfs): images are big
        tmp_dir.mkdir(parents=True, exist_ok=True)
        plain = tmp_dir / f"import-{net.ident}-{os.getpid()}.tar"
        try:
            with gzip.open(archive, "rb") as src, plain.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            return import_image(net, plain)
        finally:
            plain.unlink(missing_ok=True)
    proc = _sh(
        "ctr",
        "--address",
        f"{net.socket_dir}/containerd.sock",
        "-n",
        "k8s.io",
        "images",
        "import",
        "--snapshotter",
        "native",
        str(archive),
    )
    return proc.stdout.strip()


def start_node(
    state: NodeState,
    *,
    pki: LocalPKI,
    server: str,
    write_kubeconfig: Callable[..., Path],
    launch: Callable[[ManagedProcess], None],
    log_dir: Path,
    node_bins: NodeBinaries,
    say: Callable[[str], None],
) -> None:
    """containerd, the pause and tool images, kubelet, kube-proxy; returns when all run."""
    net = state.net
    node_dir = Path(state.node_dir)
    for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "images"):
        (node_dir / sub).mkdir(parents=True, exist_ok=True)
    net.socket_dir.mkdir(parents=True, exist_ok=True)
    _prepare_cgroups(net.cgroup_root)

    cfg = node_dir / "containerd.toml"
    cfg.write_text(containerd_config(node_dir, net))
    (node_dir / "cni" / "net.d" / "10-energysched.conflist").write_text(
        json.dumps(cni_config(node_dir, net), indent=2)
    )
    containerd = _start_in_netns(
        "containerd",
        net.netns,
        Path(shutil.which("containerd") or "containerd"),
        ["--config", str(cfg), "--log-level", "warn"],
        log_dir,
    )
    launch(containerd)
    sock = net.socket_dir / "containerd.sock"
    _wait(sock.exists, "containerd", containerd, 30)

    for ref, name in ((PAUSE_IMAGE, "pause"), (TOOL_IMAGE, "tool")):
        binary = (node_bins.tools / name).read_bytes()
        archive = node_dir / "images" / f"{name}.tar"
        archive.write_bytes(image_archive(ref, {f"/{name}": (binary, 0o755)}, [f"/{name}"]))
        import_image(net, archive)

    ca = pki.ca.cert
    kubelet_cert = pki.client("kubelet", f"system:node:{NODE_NAME}", "system:nodes")
    kubelet_kc = write_kubeconfig(
        node_dir / "kubelet.kubeconfig", server, ca, kubelet_cert, f"system:node:{NODE_NAME}"
    )
    kcfg = node_dir / "kubelet.yaml"
    kcfg.write_text(yaml.safe_dump(kubelet_config(node_dir, net, ca)))
    kubelet = _start_in_netns(
        "kubelet",
        net.netns,
        node_bins.kube / "kubelet",
        [
            f"--config={kcfg}",
            f"--kubeconfig={kubelet_kc}",
            f"--root-dir={node_dir / 'kubelet'}",
            f"--cert-dir={node_dir / 'kubelet' / 'pki'}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={net.node_ip}",
            f"--node-labels={REAL_NODE_LABEL}=true",
            # cAdvisor's own containerd client (container stats) dials this, not the CRI one.
            f"--containerd={net.socket_dir}/containerd.sock",
            "--v=1",
        ],
        log_dir,
    )
    launch(kubelet)

    proxy_kc = write_kubeconfig(
        node_dir / "kube-proxy.kubeconfig",
        server,
        ca,
        pki.client("kube-proxy", "system:kube-proxy"),
        "system:kube-proxy",
    )
    pcfg = node_dir / "kube-proxy.yaml"
    pcfg.write_text(yaml.safe_dump(kube_proxy_config(node_dir, net, proxy_kc)))
    proxy = _start_in_netns(
        "kube-proxy",
        net.netns,
        node_bins.kube / "kube-proxy",
        [f"--config={pcfg}", "--v=1"],
        log_dir,
    )
    launch(proxy)
    say(f"real node {NODE_NAME!r}: containerd, kubelet, kube-proxy started in netns {net.netns}")


def state_dict(state: NodeState) -> dict[str, Any]:
    return asdict(state)
