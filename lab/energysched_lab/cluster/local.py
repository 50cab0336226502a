"""``energysched cluster up | down | status | kubeconfig``: the local control plane.

Real components, started in order on loopback with TLS, each waited for until
healthy: etcd → kube-apiserver → kube-controller-manager, kube-scheduler (the
baseline) and KWOK → the simulated nodes from ``kb/nodes``. State (PIDs, ports,
certificates, kubeconfigs, logs, etcd data) lives in one directory per cluster
name outside the repository; ``down`` stops every recorded PID and leaves
nothing running.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from energysched.kube.client import KubeClient, api_path
from energysched.kube.config import load_kubeconfig
from energysched_lab.cluster import build, nodes, realnode
from energysched_lab.cluster.pki import LocalPKI, Pair
from energysched_lab.cluster.processes import ManagedProcess, free_port, start

KWOK_CONFIG = Path(__file__).with_name("kwok.yaml")
#: Above KWOK's lease renewal interval (nodeLeaseDurationSeconds/4 in kwok.yaml).
NODE_MONITOR_GRACE_PERIOD = "900s"


class ClusterError(RuntimeError):
    """The local cluster could not be started, or is in an unexpected state."""


def state_root() -> Path:
    env = os.environ.get("ENERGYSCHED_STATE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "energysched" / "clusters"


@dataclass
class ClusterState:
    name: str
    ports: dict[str, int] = field(default_factory=dict)
    processes: list[ManagedProcess] = field(default_factory=list)
    started_at: float = 0.0
    #: Set when the cluster has a real node (see realnode.py): what teardown needs.
    real_node: dict[str, Any] | None = None

    def running(self) -> list[ManagedProcess]:
        return [p for p in self.processes if p.alive()]


def _kubeconfig(path: Path, server: str, ca: Path, client: Pair, user: str) -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "energysched-local",
                "cluster": {"server": server, "certificate-authority": str(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate": str(client.cert), "client-key": str(client.key)},
            }
        ],
        "contexts": [
            {"name": "energysched-local", "context": {"cluster": "energysched-local", "user": user}}
        ],
        "current-context": "energysched-local",
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def _wait_http(
    url: str, what: str, proc: ManagedProcess, ctx: ssl.SSLContext | None, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            tail = "\n".join(Path(proc.log).read_text(errors="replace").splitlines()[-20:])
            raise ClusterError(f"{what} exited during start-up; last lines of {proc.log}:\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.25)
    raise ClusterError(
        f"{what} not healthy at {url} after {timeout:.0f} s ({last}); see {proc.log}"
    )


def _tail(proc: ManagedProcess, lines: int = 25) -> str:
    return "\n".join(Path(proc.log).read_text(errors="replace").splitlines()[-lines:])


class LocalCluster:
    def __init__(self, name: str = "default", root: Path | None = None) -> None:
        self.name = name
        self.dir = (root or state_root()) / name
        self.state_file = self.dir / "state.json"
        self.log_dir = self.dir / "logs"

    # -- state ---------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "admin.kubeconfig"

    def load_state(self) -> ClusterState | None:
        try:
            raw = json.loads(self.state_file.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return ClusterState(
            name=raw["name"],
            ports=raw["ports"],
            processes=[ManagedProcess(**p) for p in raw["processes"]],
            started_at=raw["started_at"],
            real_node=raw.get("real_node"),
        )

    def _save(self, state: ClusterState) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(state), indent=2))
        tmp.replace(self.state_file)

    def is_running(self) -> bool:
        state = self.load_state()
        return bool(state and state.running())

    # -- up ------------------------------------------------------------------------

    def up(
        self,
        *,
        generated_nodes: int = 0,
        scheduler_qps: float = 50,
        scheduler_burst: int = 100,
        nodes_dir: Path = nodes.DEFAULT_NODES_DIR,
        real_node: bool = False,
        log: Callable[[str], None] | None = None,
        start_scheduler: bool = True,
    ) -> ClusterState:
        say = log or (lambda msg: print(msg, file=sys.stderr))
        existing = self.load_state()
        if existing and existing.running():
            raise ClusterError(
                f"cluster {self.name!r} is already running (pids "
                f"{', '.join(str(p.pid) for p in existing.running())}); "
                f"'energysched cluster down' first, or use it: KUBECONFIG={self.kubeconfig}"
            )
        classes = nodes.load_node_classes(nodes_dir)  # fail before starting anything
        t0 = time.monotonic()
        if real_node:
            realnode.check_prerequisites()
        bins = build.ensure_binaries()
        node_bins = realnode.ensure_node_binaries() if real_node else None
        say(f"binaries ready in {time.monotonic() - t0:.1f} s ({bins})")
        if existing and existing.real_node:  # a crashed run: remove its mounts and namespace
            realnode.teardown(realnode.NodeState(**existing.real_node), existing.processes)
        # A fresh data directory per start: a test run must not inherit objects.
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.log_dir.mkdir(parents=True)
        state = ClusterState(name=self.name, started_at=time.time())
        try:
            node: realnode.NodeState | None = None
            if real_node:
                node = realnode.prepare_network(self.dir)
                state.real_node = realnode.state_dict(node)
                self._save(state)
            self._start_all(state, bins, scheduler_qps, scheduler_burst, say, node, start_scheduler)
            n = asyncio.run(self._create_nodes(classes, generated_nodes, say))
            if node is not None and node_bins is not None:
                self._start_real_node(state, node, node_bins, say)
                n += 1
            say(
                f"cluster {self.name!r} up with {n} Ready nodes in {time.monotonic() - t0:.1f} s; "
                f"KUBECONFIG={self.kubeconfig}"
            )
        except BaseException:
            self._stop(state)
            raise
        return state

    def _start_all(
        self,
        state: ClusterState,
        bins: Path,
        qps: float,
        burst: int,
        say: Callable[[str], None],
        node: realnode.NodeState | None = None,
        start_scheduler: bool = True,
    ) -> None:
        pki = LocalPKI(self.dir / "pki")
        p = state.ports
        for key in (
            "etcd_client",
            "etcd_peer",
            "apiserver",
            "controller_manager",
            "scheduler",
            "kwok",
        ):
            p[key] = free_port()
        # With a real node the API server listens on the host end of the node's veth (not on
        # every interface): pods reach it there through the `kubernetes` Service.
        bind_ip = node.net.host_ip if node else "127.0.0.1"
        server = f"https://{bind_ip}:{p['apiserver']}"
        ca_ctx = ssl.create_default_context(cafile=str(pki.ca.cert))
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # component self-signed serving certs, loopback only

        def launch(name: str, args: list[str]) -> ManagedProcess:
            proc = start(name, bins / name.split(":")[0], args, self.log_dir)
            state.processes.append(proc)
            self._save(state)
            return proc

        etcd_url = f"http://127.0.0.1:{p['etcd_client']}"
        peer_url = f"http://127.0.0.1:{p['etcd_peer']}"
        etcd = launch(
            "etcd",
            [
                "--name=local",
                f"--data-dir={self.dir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=local={peer_url}",
                # Throw-away test data: skipping fsync keeps a 2-core machine responsive.
                "--unsafe-no-fsync",
                "--quota-backend-bytes=8589934592",
                "--auto-compaction-mode=periodic",
                "--auto-compaction-retention=5m",
                "--log-level=warn",
            ],
        )
        _wait_http(f"{etcd_url}/health", "etcd", etcd, None, 30)

        serving = pki.serving(
            "apiserver",
            [
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "localhost",
            ],
            sorted({"127.0.0.1", "10.0.0.1", bind_ip}),
        )
        sa = pki.service_account_keys()
        admin = pki.client("admin", "energysched-admin", "system:masters")
        if node is None:
            authz = [
                "--authorization-mode=RBAC",
                # Pods on KWOK nodes never mount tokens, and a test's fresh namespace
                # must accept pods before its default ServiceAccount exists.
                "--disable-admission-plugins=ServiceAccount",
            ]
        else:
            kubelet_client = pki.client(
                "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters"
            )
            authz = [
                # A real kubelet: the Node authorizer scopes it to its own pods' objects, and
                # pods get their service-account tokens as on any real cluster.
                "--authorization-mode=Node,RBAC",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                # `kubectl logs`: dial the node's InternalIP, not its name (no DNS here).
                "--kubelet-preferred-address-types=InternalIP,Hostname",
            ]
        apiserver = launch(
            "kube-apiserver",
            [
                f"--etcd-servers={etcd_url}",
                f"--bind-address={bind_ip}",
                f"--advertise-address={bind_ip}",
                f"--secure-port={p['apiserver']}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={pki.ca.cert}",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={realnode.SERVICE_CIDR}",
                *authz,
                "--allow-privileged=true",
                "--profiling=false",
                "--v=1",
            ],
        )
        _wait_http(f"{server}/readyz", "kube-apiserver", apiserver, ca_ctx, 90)
        _kubeconfig(self.kubeconfig, server, pki.ca.cert, admin, "energysched-admin")

        kcm_cfg = _kubeconfig(
            self.dir / "controller-manager.kubeconfig",
            server,
            pki.ca.cert,
            pki.client("controller-manager", "system:kube-controller-manager"),
            "system:kube-controller-manager",
        )
        kcm = launch(
            "kube-controller-manager",
            [
                f"--kubeconfig={kcm_cfg}",
                f"--authentication-kubeconfig={kcm_cfg}",
                f"--authorization-kubeconfig={kcm_cfg}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p['controller_manager']}",
                "--leader-elect=false",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={pki.ca.cert}",
                "--use-service-account-credentials=true",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
                f"--node-monitor-grace-period={NODE_MONITOR_GRACE_PERIOD}",
                "--v=1",
            ],
        )
        _kubeconfig(  # kube-scheduler's, read by _launch_kube_scheduler
            self.dir / "scheduler.kubeconfig",
            server,
            pki.ca.cert,
            pki.client("scheduler", "system:kube-scheduler"),
            "system:kube-scheduler",
        )
        scheduler = (
            self._launch_kube_scheduler(state, bins, qps, burst) if start_scheduler else None
        )
        kwok = launch(
            "kwok",
            [
                f"--kubeconfig={self.kubeconfig}",
                f"--config={KWOK_CONFIG}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                f"--server-address=127.0.0.1:{p['kwok']}",
                "--node-ip=10.0.1.1",
                "--cidr=10.0.2.0/24",
                "--node-lease-duration-seconds=600",
            ],
        )
        _wait_http(
            f"https://127.0.0.1:{p['controller_manager']}/healthz",
            "kube-controller-manager",
            kcm,
            insecure,
            60,
        )
        if scheduler is not None:
            self._wait_kube_scheduler(state, scheduler)
        _wait_http(f"http://127.0.0.1:{p['kwok']}/healthz", "kwok", kwok, None, 60)
        say(f"control plane healthy: apiserver {server}")

    # -- the baseline scheduler, started and stopped on its own (benchmarks) -----------

    def _launch_kube_scheduler(
        self, state: ClusterState, bins: Path, qps: float, burst: int
    ) -> ManagedProcess:
        sched_cfg = self.dir / "scheduler.kubeconfig"
        sched_conf = self.dir / "kube-scheduler.yaml"
        sched_conf.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    # The same client limits energysched gets in a comparison (fairness).
                    "clientConnection": {"kubeconfig": str(sched_cfg), "qps": qps, "burst": burst},
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        proc = start(
            "kube-scheduler",
            bins / "kube-scheduler",
            [
                f"--config={sched_conf}",
                f"--authentication-kubeconfig={sched_cfg}",
                f"--authorization-kubeconfig={sched_cfg}",
                "--bind-address=127.0.0.1",
                f"--secure-port={state.ports['scheduler']}",
                "--v=1",
            ],
            self.log_dir,
        )
        state.processes.append(proc)
        self._save(state)
        return proc

    def _wait_kube_scheduler(self, state: ClusterState, proc: ManagedProcess) -> None:
        insecure = ssl.create_default_context()
        insecure.check_hostname = False
        insecure.verify_mode = ssl.CERT_NONE  # its self-signed serving cert, loopback only
        url = f"https://127.0.0.1:{state.ports['scheduler']}/healthz"
        _wait_http(url, "kube-scheduler", proc, insecure, 60)

    def start_kube_scheduler(
        self, qps: float, burst: int, *, wait_healthy: bool = True
    ) -> ManagedProcess:
        """(Re)start the baseline kube-scheduler with these client limits.

        A benchmark starts it after its pods are created (a backlog), or again with
        other limits; any kube-scheduler of this cluster still running is stopped first.
        """
        state = self.load_state()
        if state is None or not state.running():
            raise ClusterError(f"cluster {self.name!r} is not running")
        self.stop_kube_scheduler()
        state = self.load_state()
        assert state is not None
        proc = self._launch_kube_scheduler(state, build.ensure_binaries(), qps, burst)
        if wait_healthy:
            self._wait_kube_scheduler(state, proc)
        return proc

    def stop_kube_scheduler(self) -> list[str]:
        """Stop this cluster's kube-scheduler (by its recorded PID); the rest keeps running."""
        state = self.load_state()
        if state is None:
            return []
        stopped = []
        for proc in [p for p in state.processes if p.name == "kube-scheduler"]:
            if proc.alive():
                proc.stop()
                stopped.append(f"{proc.name} (pid {proc.pid})")
            state.processes.remove(proc)
        self._save(state)
        return stopped

    async def _create_nodes(
        self, classes: list[nodes.NodeClass], generated: int, say: Callable[[str], None]
    ) -> int:
        manifests = list(nodes.node_manifests(classes, generated))
        async with KubeClient(load_kubeconfig(self.kubeconfig), qps=0, timeout=60) as kube:
            sem = asyncio.Semaphore(32)

            async def create(obj: dict[str, Any]) -> None:
                async with sem:
                    await kube.create(api_path("v1", "nodes"), obj)

            t0 = time.monotonic()
            await asyncio.gather(*(create(m) for m in manifests))
            say(
                f"created {len(manifests)} nodes in {time.monotonic() - t0:.1f} s, "
                "waiting for Ready"
            )
            want = {m["metadata"]["name"] for m in manifests}
            deadline = time.monotonic() + max(120.0, len(manifests) * 0.1)
            while True:
                listing = await kube.list_all(api_path("v1", "nodes"))
                ready = {
                    n["metadata"]["name"]
                    for n in listing["items"]
                    if any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (n.get("status") or {}).get("conditions") or []
                    )
                }
                if want <= ready:
                    return len(want)
                if time.monotonic() > deadline:
                    raise ClusterError(
                        f"{len(want - ready)} of {len(want)} nodes not Ready in time"
                    )
                await asyncio.sleep(1.0)

    # -- one component (fault injection in tests) -----------------------------------

    def _component(self, name: str) -> tuple[ClusterState, int]:
        state = self.load_state()
        if state is None:
            raise ClusterError(f"cluster {self.name!r} has no state")
        for i, proc in enumerate(state.processes):
            if proc.name == name:
                return state, i
        raise ClusterError(f"cluster {self.name!r} has no component {name!r}")

    def stop_component(self, name: str) -> None:
        """Stop one component by its recorded PID (e.g. the API server, to test outages)."""
        state, i = self._component(name)
        state.processes[i].stop()

    def start_component(self, name: str, timeout: float = 90) -> ManagedProcess:
        """Start a stopped component again with its recorded arguments; wait until healthy."""
        state, i = self._component(name)
        old = state.processes[i]
        if old.alive():
            return old
        if not old.args:
            raise ClusterError(
                f"{name}: its start arguments were not recorded; restart the cluster"
            )
        proc = start(name, Path(old.binary), old.args, self.log_dir)
        state.processes[i] = proc
        self._save(state)
        if name == "kube-apiserver":
            ctx = ssl.create_default_context(cafile=str(LocalPKI(self.dir / "pki").ca.cert))
            url = f"https://127.0.0.1:{state.ports['apiserver']}/readyz"
            _wait_http(url, name, proc, ctx, timeout)
        return proc

    def _start_real_node(
        self,
        state: ClusterState,
        node: realnode.NodeState,
        node_bins: realnode.NodeBinaries,
        say: Callable[[str], None],
    ) -> None:
        t0 = time.monotonic()

        def launch(proc: ManagedProcess) -> None:
            state.processes.append(proc)
            self._save(state)

        with realnode.machine_sysctls_kept():
            realnode.start_node(
                node,
                pki=LocalPKI(self.dir / "pki"),
                server=f"https://{node.net.host_ip}:{state.ports['apiserver']}",
                write_kubeconfig=_kubeconfig,
                launch=launch,
                log_dir=self.log_dir,
                node_bins=node_bins,
                say=say,
            )
            kubelet = next(p for p in state.processes if p.name == "kubelet")
            asyncio.run(self._wait_node_ready(realnode.NODE_NAME, kubelet, 120))
        say(f"real node {realnode.NODE_NAME!r} Ready in {time.monotonic() - t0:.1f} s")

    async def _wait_node_ready(self, name: str, proc: ManagedProcess, timeout: float) -> None:
        async with KubeClient(load_kubeconfig(self.kubeconfig), qps=0, timeout=30) as kube:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not proc.alive():
                    raise ClusterError(
                        f"{proc.name} exited; last lines of {proc.log}:\n{_tail(proc)}"
                    )
                listing = await kube.list_all(api_path("v1", "nodes"))
                for n in listing["items"]:
                    if n["metadata"]["name"] == name and any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (n.get("status") or {}).get("conditions") or []
                    ):
                        return
                await asyncio.sleep(1.0)
        raise ClusterError(f"node {name!r} not Ready after {timeout:.0f} s; see {proc.log}")

    def import_image(self, archive: Path) -> str:
        """Import an image archive into the real node's containerd (no registry needed)."""
        state = self.load_state()
        if state is None or not state.running():
            raise ClusterError(f"cluster {self.name!r} is not running")
        if not state.real_node:
            raise ClusterError(f"cluster {self.name!r} has no real node (cluster up --real-node)")
        if not archive.is_file():
            raise ClusterError(f"no image archive at {archive}")
        return realnode.import_image(realnode.NodeState(**state.real_node).net, archive)

    # -- down / status -------------------------------------------------------------

    def _stop(self, state: ClusterState) -> list[str]:
        stopped = []
        if state.real_node:
            # The node first (its containers, mounts, cgroups and namespace), while the
            # API server still runs; then the control plane.
            node_procs = [p for p in state.processes if p.name in realnode.NODE_PROCESSES]
            stopped += [f"{p.name} (pid {p.pid})" for p in node_procs if p.alive()]
            realnode.teardown(realnode.NodeState(**state.real_node), node_procs)
        for proc in reversed(state.processes):
            if proc.alive():
                proc.stop()
                stopped.append(f"{proc.name} (pid {proc.pid})")
        return stopped

    def down(self) -> list[str]:
        """Stop every process of this cluster by PID; return what was stopped."""
        state = self.load_state()
        if state is None:
            return []
        stopped = self._stop(state)
        left = state.running()
        if left:
            raise ClusterError(f"still running after stop: {[p.pid for p in left]}")
        return stopped

    def purge(self) -> None:
        """Stop the cluster and delete its state (etcd data, certificates, logs)."""
        self.down()
        shutil.rmtree(self.dir, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        state = self.load_state()
        if state is None:
            return {"name": self.name, "running": False, "components": []}
        host = realnode.NodeState(**state.real_node).net.host_ip if state.real_node else "127.0.0.1"
        return {
            "name": self.name,
            "running": bool(state.running()),
            "kubeconfig": str(self.kubeconfig),
            "server": f"https://{host}:{state.ports.get('apiserver')}",
            "real_node": realnode.NODE_NAME if state.real_node else None,
            "components": [
                {"name": p.name, "pid": p.pid, "alive": p.alive(), "log": p.log}
                for p in state.processes
            ],
        }
