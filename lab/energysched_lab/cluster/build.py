"""Build the control plane's binaries from their published Go modules, cached.

k8s.io/kubernetes refers to its staging modules as v0.0.0 with replace directives,
so ``go install k8s.io/kubernetes/cmd/...@v1.x`` does not work. ``gomod/`` is a
module of our own that requires k8s.io/kubernetes and pins every staging module
to the matching v0.N.M (as kubernetes-sigs/scheduler-plugins does); etcd's server
is built from the same module graph through a three-line main. KWOK has no
replace directives and is built with ``go install``.

Binaries go to a cache outside the repository, keyed on a hash of the pinned
inputs, so they are rebuilt only when a pinned version changes.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from energysched_lab.cache import cache_root as cache_root  # re-exported: build.cache_root()
from energysched_lab.cluster import versions

GOMOD_DIR = Path(__file__).parent / "gomod"
KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")
BINARIES = ("etcd", *KUBE_COMMANDS, "kwok")


class BuildError(RuntimeError):
    """A Go build failed; the message carries the tail of its output."""


def _go() -> str:
    go = shutil.which("go") or (
        "/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None
    )
    if not go:
        raise BuildError("the Go toolchain is needed to build the control plane: 'go' not on PATH")
    return go


def _go_version() -> str:
    out = subprocess.run([_go(), "env", "GOVERSION"], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def build_key() -> str:
    """Hash of everything that determines the binaries."""
    h = hashlib.sha256()
    for name in ("go.mod", "go.sum", "tools.go", "cmd/etcd/main.go"):
        h.update((GOMOD_DIR / name).read_bytes())
    h.update(f"{versions.KUBERNETES_VERSION} {versions.KWOK_VERSION} {_go_version()}".encode())
    return h.hexdigest()[:16]


def bin_dir() -> Path:
    return cache_root() / "controlplane" / build_key() / "bin"


def _ldflags() -> str:
    v = versions.KUBERNETES_VERSION
    major, minor = v.removeprefix("v").split(".")[:2]
    flags = ["-s", "-w"]
    # Without these the binaries report v0.0.0, and version-skew checks misfire.
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={v}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], log: Path) -> None:
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise BuildError(f"{' '.join(cmd[:3])} failed (exit {proc.returncode}); log {log}:\n{tail}")


def ensure_binaries(*, verbose: bool = True) -> Path:
    """Return the directory holding all binaries, building what is missing."""
    target = bin_dir()
    if all((target / b).exists() for b in BINARIES):
        return target
    target.mkdir(parents=True, exist_ok=True)
    # One build at a time per cache (parallel test sessions start together).
    with (target.parent / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_missing(target, verbose)


def _build_missing(target: Path, verbose: bool) -> Path:
    missing = [b for b in BINARIES if not (target / b).exists()]
    if not missing:
        return target
    log = target.parent / "build.log"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
    start = time.monotonic()
    if verbose:
        print(
            f"building {', '.join(missing)} into {target} (log: {log}); "
            "a cold build takes tens of minutes on 2 cores",
            file=sys.stderr,
        )
    tmp = target.parent / "bin.tmp"
    tmp.mkdir(exist_ok=True)
    kube = [b for b in missing if b in KUBE_COMMANDS or b == "etcd"]
    if kube:
        pkgs = [f"k8s.io/kubernetes/cmd/{b}" for b in kube if b != "etcd"]
        if "etcd" in kube:
            pkgs.append("./cmd/etcd")
        _run(
            [_go(), "build", "-trimpath", "-ldflags", _ldflags(), "-o", str(tmp) + "/", *pkgs],
            GOMOD_DIR,
            env,
            log,
        )
    if "kwok" in missing:
        _run(
            [
                _go(),
                "install",
                "-trimpath",
                "-ldflags",
                "-s -w",
                f"{versions.KWOK_MODULE}/cmd/kwok@{versions.KWOK_VERSION}",
            ],
            GOMOD_DIR,
            {**env, "GOBIN": str(tmp), "GOFLAGS": "-buildvcs=false"},
            log,
        )
    for b in missing:
        (tmp / b).replace(target / b)  # atomic: a half-built binary is never used
    tmp.rmdir()
    if verbose:
        print(f"built in {time.monotonic() - start:.0f} s", file=sys.stderr)
    return target


def regenerate_gomod() -> None:
    """Rewrite gomod/go.mod from kubernetes' own go.mod of the pinned version.

    Every ``k8s.io/<staging> => ./staging/...`` replace of upstream becomes a
    replace to the published ``v0.N.M`` of that module; ``go mod tidy`` then
    resolves the rest with kubernetes' own pins.
    """
    info = subprocess.run(
        [_go(), "mod", "download", "-json", f"k8s.io/kubernetes@{versions.KUBERNETES_VERSION}"],
        capture_output=True,
        text=True,
        check=True,
    )
    upstream = Path(json.loads(info.stdout)["GoMod"]).read_text()
    staging = sorted(set(re.findall(r"^\s+(k8s\.io/[\w.-]+) => \./staging/", upstream, re.M)))
    lines = [
        "module energysched.local/controlplane",
        "",
        "go 1.25.0",
        "",
        f"require k8s.io/kubernetes {versions.KUBERNETES_VERSION}",
        "",
        "replace (",
        *(f"\t{m} => {m} {versions.STAGING_VERSION}" for m in staging),
        ")",
        "",
    ]
    (GOMOD_DIR / "go.mod").write_text("\n".join(lines))
    subprocess.run([_go(), "mod", "tidy"], cwd=GOMOD_DIR, check=True)
