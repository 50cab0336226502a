"""A private container engine for building and running the images here.

Debian's ``docker.io`` (dockerd 20.10) on its own ``containerd``, both started
by us and stopped by PID. Nothing is shared with a containerd or dockerd that
may already run on the machine (e.g. a kubelet's): own root and state
directories, own sockets, no iptables, no bridge (containers run with
``--network none``), the ``vfs`` storage driver (works on any file system,
needs no overlay support in the kernel; it copies every layer, so the images
keep few layers).

Why docker rather than buildah/podman: the Dockerfiles stay the ordinary
``docker build`` files a user runs elsewhere, ``docker save`` writes archives
that ``ctr -n k8s.io images import`` loads, and ``docker push``/``manifest``
reach a user's registry without extra tools.

One engine at a time uses the cache directory (a file lock); a second caller
waits for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from energysched_lab.cache import cache_root
from energysched_lab.cluster import processes

#: Short, so that socket paths stay below the 108-byte limit of AF_UNIX; one per
#: cache directory, so two caches (e.g. a cold-build measurement) run side by side.
EXEC_ROOT = Path("/run/energysched-images")


class EngineError(RuntimeError):
    """The engine cannot start or a docker command failed; the message says why."""


def images_root() -> Path:
    """Where base file systems, the engine's data and the image archives live."""
    return cache_root() / "images"


def missing_tools() -> list[str]:
    """Programs the engine needs that are not installed (``.ci/run`` installs them)."""
    needed = ["dockerd", "containerd", "runc", "docker"]
    return [t for t in needed if shutil.which(t, path=_path()) is None]


def _path() -> str:
    # Debian's client first: it matches dockerd's API version; a newer docker CLI
    # elsewhere on PATH may want buildx, which is not installed.
    return "/usr/bin:/usr/sbin:" + os.environ.get("PATH", "")


def _containerd_config(root: Path, run: Path) -> str:
    return f"""version = 2
root = "{root / "containerd"}"
state = "{run / "containerd-state"}"
# No CRI: this containerd only serves our dockerd, not a kubelet.
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{run / "containerd.sock"}"
[ttrpc]
  address = "{run / "containerd.sock.ttrpc"}"
[debug]
  address = ""
[metrics]
  address = ""
"""


class Engine:
    """``with Engine() as engine: engine.docker("build", ...)``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or images_root()
        tag = hashlib.sha256(str(self.root.resolve()).encode()).hexdigest()[:8]
        self.run_dir = EXEC_ROOT.with_name(f"{EXEC_ROOT.name}-{tag}")
        self.socket = self.run_dir / "docker.sock"
        self._procs: list[processes.ManagedProcess] = []
        self._lock: int | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> Engine:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        missing = missing_tools()
        if missing:
            raise EngineError(
                f"missing {', '.join(missing)}: apt-get install docker.io "
                "(brings containerd and runc); .ci/run does this"
            )
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.root / "engine.lock", os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # waits for another build or test run
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # Left over from a run that was killed: stale sockets make dockerd refuse.
        for stale in ("docker.sock", "containerd.sock", "containerd.sock.ttrpc", "docker.pid"):
            (self.run_dir / stale).unlink(missing_ok=True)
        config = self.run_dir / "containerd.toml"
        config.write_text(_containerd_config(self.root, self.run_dir))
        containerd = shutil.which("containerd", path=_path())
        dockerd = shutil.which("dockerd", path=_path())
        assert containerd and dockerd  # checked by missing_tools()
        self._procs.append(
            processes.start("containerd", Path(containerd), ["--config", str(config)], logs)
        )
        self._wait_socket(self.run_dir / "containerd.sock", timeout, "containerd")
        args = [
            f"--data-root={self.root / 'docker'}",
            f"--exec-root={self.run_dir / 'docker-exec'}",
            f"--pidfile={self.run_dir / 'docker.pid'}",
            f"--host=unix://{self.socket}",
            f"--containerd={self.run_dir / 'containerd.sock'}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            "--userland-proxy=false",
        ]
        self._procs.append(processes.start("dockerd", Path(dockerd), args, logs))
        self._wait_socket(self.socket, timeout, "dockerd")
        deadline = time.monotonic() + timeout
        while self.docker("version", check=False, capture=True).returncode != 0:
            if time.monotonic() > deadline:
                raise EngineError(f"dockerd does not answer; see {logs / 'dockerd.log'}")
            time.sleep(0.5)

    def _wait_socket(self, path: Path, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            dead = [p for p in self._procs if not p.alive()]
            if dead:
                raise EngineError(f"{dead[0].name} exited; see {dead[0].log}")
            if time.monotonic() > deadline:
                raise EngineError(f"{name} did not create {path} in {timeout:.0f} s")
            time.sleep(0.2)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            proc.stop(timeout=30.0)
        self._procs.clear()
        # dockerd leaves its host network namespace bind-mounted under its exec root
        # (as /var/run/docker/netns/default): nothing stays mounted once it has stopped.
        for mount in _mounts_under(self.run_dir):
            subprocess.run(["umount", mount], check=False, capture_output=True)
        if self._lock is not None:
            os.close(self._lock)  # releases the flock
            self._lock = None

    # -- commands ----------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = _path()
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        env["DOCKER_BUILDKIT"] = "0"  # the classic builder: no buildx plugin in Debian 12
        env["DOCKER_CLI_EXPERIMENTAL"] = "enabled"  # `docker manifest` for multi-arch push
        env["DOCKER_CONFIG"] = str(self.root / "docker-config")
        # A registry's login stays the user's: use theirs when they have one.
        user_config = Path.home() / ".docker"
        if (user_config / "config.json").exists():
            env["DOCKER_CONFIG"] = str(user_config)
        return env

    def docker(
        self,
        *args: str,
        check: bool = True,
        capture: bool = False,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        cmd = ["docker", *args]
        proc = subprocess.run(
            cmd,
            env=self.env(),
            text=True,
            capture_output=capture,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            detail = (proc.stderr or "").strip()[-2000:] if capture else "(output above)"
            raise EngineError(f"{' '.join(cmd)} failed ({proc.returncode}): {detail}")
        return proc

    def has_image(self, ref: str) -> bool:
        return self.docker("image", "inspect", ref, check=False, capture=True).returncode == 0


def _mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` (deepest first), from /proc/self/mounts."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    prefix = f"{root}/"
    points = [line.split()[1] for line in lines if len(line.split()) > 1]
    return sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True)


@contextlib.contextmanager
def running_engine(root: Path | None = None) -> Iterator[Engine]:
    with Engine(root) as engine:
        yield engine


def docker_run_args(
    image: str,
    *,
    platform: str,
    volumes: Sequence[tuple[Path, str]] = (),
    network: str = "none",
) -> list[str]:
    """``docker run`` as the images are meant to run: non-root, read-only root, no network.

    ``network="host"`` only to reach a local API server on loopback (no bridge exists).
    """
    args = [
        "run",
        "--rm",
        "--pull",  # never a registry: an image that is not here is an error, not a download
        "never",
        "--platform",
        platform,
        "--network",
        network,
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
    ]
    for host, inside in volumes:
        args += ["--volume", f"{host}:{inside}"]
    return [*args, image]
