"""Build the product and workflow images for amd64, arm64 and arm/v7, here, without a registry.

1. **Base** per architecture: a Debian root file system made by ``mmdebstrap``
   from Debian's packages (suite pinned, the included packages pinned to exact
   versions, every installed package's version recorded beside the tarball),
   cached by the hash of its recipe, imported with ``docker import``.
   Python and numpy come from Debian, so arm/v7 needs no wheel PyPI lacks.
   Foreign architectures run their maintainer scripts under qemu-user through
   binfmt_misc (see :mod:`energysched_lab.images.qemu`).
2. **Python files** are staged on the host, never inside the image: the
   runtime dependencies of ``pyproject.toml`` as PyPI wheels for the target
   platform (``pip --platform``), the energysched wheel built from a copy of
   the product's folders (the lab is a distribution of its own), byte-compiled. So the
   Dockerfiles only COPY: no emulated RUN step, fast on every architecture.
3. ``docker build`` with the repository's Dockerfiles, ``docker save`` into
   ``<cache>/out/<image>-<tag>-<arch>.tar`` (docker archive; ``ctr -n k8s.io
   images import`` loads it), and on request ``docker push`` plus a manifest
   list to the user's registry.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energysched_lab.images import qemu
from energysched_lab.images.dockerd import Engine, EngineError, images_root

REPO = Path(__file__).resolve().parents[3]

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: Exact versions of what the base adds to Debian's minbase (bookworm main). A
#: Debian point release that replaces one makes the build fail with apt's message:
#: update the pin here (the recorded package lists show what changed).
BASE_PACKAGES = {
    "python3": "3.11.2-1+b1",
    "python3-numpy": "1:1.24.2-1+deb12u1",
    "python3-yaml": "6.0-3+b2",
    # numpy's BLAS: OpenBLAS like PyPI's numpy wheels, not the slow reference BLAS.
    "libopenblas0-pthread": "0.3.21+ds-4",
}
#: Debian provides these (numpy, pyyaml: no armv7 wheels on PyPI), or the image does
#: not need them: the official kubernetes client (126 MB installed) is imported by no
#: runtime module (energysched.kube is the project's own client; the operator has its
#: own kopf login).
NOT_FROM_PYPI = {"numpy", "pyyaml", "kubernetes"}
#: The image user (no root; numeric, so Kubernetes' runAsNonRoot can check it).
UID = 10001


class BuildError(RuntimeError):
    """A step failed; the message says which and why."""


@dataclass(frozen=True)
class Arch:
    name: str  # our name, in tags and file names
    debian: str  # dpkg architecture
    platform: str  # OCI platform
    pip_platforms: tuple[str, ...]  # wheel tags pip may pick for CPython 3.11 on Debian 12


ARCHES: dict[str, Arch] = {
    a.name: a
    for a in (
        Arch(
            "amd64",
            "amd64",
            "linux/amd64",
            ("manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"),
        ),
        Arch(
            "arm64",
            "arm64",
            "linux/arm64",
            ("manylinux_2_36_aarch64", "manylinux_2_28_aarch64", "manylinux2014_aarch64"),
        ),
        Arch(
            "armv7",
            "armhf",
            "linux/arm/v7",
            ("manylinux_2_36_armv7l", "manylinux_2_31_armv7l", "manylinux2014_armv7l"),
        ),
    )
}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    dockerfile: Path
    stage: Callable[[Arch, Path], None]  # fills the build context
    #: A base from elsewhere (must already be in the engine) instead of ours.
    external_base: str | None = None
    arches: tuple[str, ...] = ("amd64", "arm64", "armv7")


@dataclass
class Built:
    image: str
    arch: str
    ref: str
    archive: Path
    image_bytes: int
    archive_bytes: int
    seconds: float


def _log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


def _run(cmd: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(cmd), text=True, capture_output=True, check=False, **kw)
    if proc.returncode != 0:
        raise BuildError(
            f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc


# -- 1. base root file system ------------------------------------------------


def _base_recipe(arch: Arch) -> list[str]:
    include = ",".join(f"{p}={v}" for p, v in sorted(BASE_PACKAGES.items()))
    excludes = ["/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*"]
    return [
        "--variant=minbase",
        f"--arch={arch.debian}",
        "--mode=root",
        "--format=tar",
        "--aptopt=APT::Install-Recommends false",
        # merged /usr by mmdebstrap itself: no usrmerge package, which drags in perl (50 MB).
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        f"--include={include}",
        *[f"--dpkgopt=path-exclude={e}" for e in excludes],
        # Licences stay in the image.
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    ]


def base_key(arch: Arch) -> str:
    blob = json.dumps([SUITE, MIRROR, _base_recipe(arch), UID]).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def base_tarball(arch: Arch, root: Path) -> Path:
    """The cached base tarball for ``arch`` (built by mmdebstrap when missing)."""
    key = base_key(arch)
    out_dir = root / "base"
    tar = out_dir / f"{SUITE}-{arch.name}-{key}.tar"
    if tar.exists():
        return tar
    if shutil.which("mmdebstrap") is None:
        raise BuildError("mmdebstrap is missing: apt-get install mmdebstrap (.ci/run does this)")
    if arch.name != "amd64":
        qemu.ensure_binfmt(arch.debian)
    out_dir.mkdir(parents=True, exist_ok=True)
    debs = root / "debs" / arch.debian  # downloaded .debs, reused by the next cold build
    debs.mkdir(parents=True, exist_ok=True)
    packages = tar.with_suffix(".packages")
    passwd = f"energysched:x:{UID}:{UID}:energysched:/tmp:/usr/sbin/nologin"
    hooks = [
        f'--setup-hook=mkdir -p "$1"/var/cache/apt/archives/ && cp -a {debs}/. '
        '"$1"/var/cache/apt/archives/',
        f'--customize-hook=cp -a "$1"/var/cache/apt/archives/*.deb {debs}/ 2>/dev/null || true',
        # What is inside, version by version: recorded beside the tarball.
        '--customize-hook=dpkg-query --admindir="$1"/var/lib/dpkg -W '
        f"-f='${{Package}}\\t${{Version}}\\t${{Architecture}}\\n' > {packages}",
        f"--customize-hook=echo '{passwd}' >> \"$1\"/etc/passwd",
        f"--customize-hook=echo 'energysched:x:{UID}:' >> \"$1\"/etc/group",
        '--customize-hook=rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/* '
        '"$1"/var/log/*',
        # Data shared between stages (a volume on a cluster); owned by the image user.
        f'--customize-hook=mkdir -p "$1"/data && chown {UID}:{UID} "$1"/data',
    ]
    partial = tar.with_suffix(".partial")
    _log(f"mmdebstrap {SUITE} {arch.debian} (cold: a few minutes; foreign archs under qemu)")
    t0 = time.monotonic()
    _run(["mmdebstrap", *_base_recipe(arch), *hooks, SUITE, str(partial), MIRROR])
    partial.rename(tar)
    _log(f"base {arch.name}: {tar.stat().st_size / 1e6:.0f} MB in {time.monotonic() - t0:.0f} s")
    return tar


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def base_image_archive(arch: Arch, root: Path, ref: str) -> Path:
    """The base tarball as a one-layer docker archive that says its platform.

    ``docker import --platform`` of dockerd 20.10 records the host's architecture
    whatever it is told, and a build FROM such a base would label an armv7 image
    amd64; ``docker load`` of an archive with its own image config does not.
    """
    tar = base_tarball(arch, root)
    out = tar.with_suffix(".image.tar")
    if out.exists():
        return out
    diff_id = _sha256(tar)
    _, os_arch, *variant = arch.platform.split("/")
    config: dict[str, Any] = {
        "architecture": os_arch,
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created_by": f"mmdebstrap {' '.join(_base_recipe(arch))} {SUITE}"}],
    }
    if variant:
        config["variant"] = variant[0]
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    partial = out.with_suffix(".partial")
    with tarfile.open(partial, "w") as archive:
        for name, data in (
            (config_name, config_bytes),
            ("manifest.json", json.dumps(manifest).encode()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        archive.add(tar, arcname=f"{diff_id}/layer.tar")
    partial.rename(out)
    return out


def import_base(engine: Engine, arch: Arch, root: Path) -> str:
    ref = f"energysched-base:{SUITE}-{arch.name}-{base_key(arch)}"
    if engine.has_image(ref):
        return ref
    engine.docker("load", "--input", str(base_image_archive(arch, root, ref)), capture=True)
    return ref


# -- 2. python files -----------------------------------------------------------


def runtime_requirements() -> list[str]:
    """pyproject's pinned runtime dependencies that come from PyPI."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs: list[str] = project["dependencies"]
    return [r for r in reqs if _req_name(r) not in NOT_FROM_PYPI]


def _req_name(req: str) -> str:
    for sep in ("==", ">=", "<=", "~=", "[", ";", " "):
        req = req.split(sep, 1)[0]
    return req.strip().lower().replace("_", "-")


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def _platform_args(arch: Arch) -> list[str]:
    args = []
    for tag in arch.pip_platforms:
        args += ["--platform", tag]
    return [
        *args,
        "--python-version",
        "3.11",
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        "--abi",
        "abi3",
        "--abi",
        "none",
        "--only-binary=:all:",
    ]


def locked_requirements(root: Path) -> list[str]:
    """The runtime dependency closure, ``name==version``, resolved once (for amd64).

    Installed with ``--no-deps`` per architecture, so the packages Debian
    provides (pyyaml, numpy) are not fetched again as transitive dependencies.
    """
    reqs = runtime_requirements()
    key = hashlib.sha256(json.dumps(reqs).encode()).hexdigest()[:12]
    lock = root / "pip" / f"lock-{key}.txt"
    if lock.exists():
        return lock.read_text().split()
    lock.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        _pip(
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
            "--target",
            str(Path(tmp) / "t"),
            *_platform_args(ARCHES["amd64"]),
            *reqs,
        )
        installs = json.loads(report.read_text())["install"]
    pins = sorted(
        f"{i['metadata']['name']}=={i['metadata']['version']}"
        for i in installs
        if _req_name(i["metadata"]["name"]) not in NOT_FROM_PYPI
    )
    lock.write_text("\n".join(pins) + "\n")
    return pins


def product_wheel(root: Path) -> Path:
    """The energysched wheel, built from a copy of the product's folders only (the lab
    and the tests are not among them: they never reach an image)."""
    out = root / "wheels"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        ignore = shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", "*.pyc", ".mypy_cache", ".ruff_cache",
            ".pytest_cache", "results", "*.egg-info", "build",
        )  # fmt: skip
        src.mkdir()
        for item in (
            "pyproject.toml",
            "README.md",
            "energysched",
            "monitor",
            "bench",
            "mlworkflow",
        ):
            path = REPO / item
            if path.is_dir():
                shutil.copytree(path, src / item, ignore=ignore)
            else:
                shutil.copy2(path, src / item)
        for old in out.glob("energysched-*.whl"):
            old.unlink()
        _pip("wheel", "--quiet", "--no-deps", "--wheel-dir", str(out), str(src))
    wheels = list(out.glob("energysched-*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one energysched wheel in {out}, found {wheels}")
    return wheels[0]


ENTRY = """#!/usr/bin/python3
import sys

from energysched.cli import main

sys.exit(main())
"""


def _compile(site: Path) -> None:
    # Byte-compiled at build time: the root file system is read-only at run time,
    # and a Pi should not recompile on every start. The host's CPython 3.11 writes
    # the same bytecode format as Debian's 3.11; unchecked-hash ignores mtimes.
    compileall = [sys.executable, "-m", "compileall", "-q", "-j", "0"]
    _run([*compileall, "--invalidation-mode", "unchecked-hash", str(site)])


#: Inside the build context: the tree COPY puts at / (one COPY, one layer: with the vfs
#: driver every instruction copies the whole file system, so the Dockerfiles keep few).
SITE = Path("rootfs/usr/local/lib/python3.11/dist-packages")
BIN = Path("rootfs/usr/local/bin")


def stage_product(arch: Arch, ctx: Path) -> None:
    root = images_root()
    site = ctx / SITE
    wheelhouse = root / "pip" / "wheels" / arch.name
    wheelhouse.mkdir(parents=True, exist_ok=True)
    pins = locked_requirements(root)
    _pip(
        "download", "--quiet", "--no-deps", "--dest", str(wheelhouse), *_platform_args(arch), *pins
    )
    _pip(
        "install", "--quiet", "--no-deps", "--no-compile", "--no-index",
        "--find-links", str(wheelhouse), "--target", str(site), *_platform_args(arch), *pins,
    )  # fmt: skip
    wheel = product_wheel(root)
    _pip("install", "--quiet", "--no-deps", "--no-compile", "--target", str(site), str(wheel))
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's shebang
    (ctx / BIN).mkdir(parents=True)
    entry = ctx / BIN / "energysched"
    entry.write_text(ENTRY)
    entry.chmod(0o755)
    leaked = [p for p in ("energysched_lab", "tests") if (site / p).exists()]
    if leaked:
        raise BuildError(f"lab or test code in the product image: {leaked}")
    _compile(site)


#: The workflow image holds the stage code and the benchmark kernels, numpy only.
WORKFLOW_PACKAGES = (
    REPO / "mlworkflow" / "energysched_mlworkflow",
    REPO / "bench" / "energysched_bench",
)


def stage_workflow(arch: Arch, ctx: Path) -> None:
    site = ctx / SITE
    (ctx / BIN).mkdir(parents=True)
    # The bench Job (energysched bench run) calls `python`; Debian names it python3.
    (ctx / BIN / "python").symlink_to("/usr/bin/python3")
    for pkg in WORKFLOW_PACKAGES:
        shutil.copytree(pkg, site / pkg.name, ignore=shutil.ignore_patterns("__pycache__"))
    _compile(site)


IMAGES: dict[str, ImageSpec] = {
    "energysched": ImageSpec("energysched", REPO / "Dockerfile", stage_product),
    "energysched-mlworkflow": ImageSpec(
        "energysched-mlworkflow", REPO / "mlworkflow" / "Dockerfile", stage_workflow
    ),
    # Only on request, where its base is present (no registry is reachable here).
    "energysched-mlworkflow-gpu": ImageSpec(
        "energysched-mlworkflow-gpu",
        REPO / "mlworkflow" / "Dockerfile.gpu",
        stage_workflow,
        external_base="pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        arches=("amd64",),
    ),
}
DEFAULT_IMAGES = ("energysched", "energysched-mlworkflow")


# -- 3. build, save, push ------------------------------------------------------


def local_ref(image: str, tag: str, arch: Arch) -> str:
    """amd64 is ``image:tag`` (what pods on an amd64 node name); others get a suffix."""
    return f"{image}:{tag}" if arch.name == "amd64" else f"{image}:{tag}-{arch.name}"


def archive_path(root: Path, image: str, tag: str, arch: Arch) -> Path:
    return root / "out" / f"{image}-{tag}-{arch.name}.tar"


def build_one(engine: Engine, spec: ImageSpec, arch: Arch, tag: str, root: Path) -> Built:
    t0 = time.monotonic()
    if arch.name not in spec.arches:
        raise BuildError(f"{spec.name} is not built for {arch.name} (only {spec.arches})")
    if spec.external_base:
        base = spec.external_base
        if not engine.has_image(base):
            raise BuildError(
                f"{spec.name} needs the base image {base} in the engine: docker pull or "
                "docker load it first (no registry is reachable from this machine)"
            )
    else:
        base = import_base(engine, arch, root)
    ref = local_ref(spec.name, tag, arch)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        ctx = Path(tmp)
        spec.stage(arch, ctx)
        shutil.copy2(spec.dockerfile, ctx / "Dockerfile")
        engine.docker(
            "build", "--quiet", "--network", "none", "--platform", arch.platform,
            "--build-arg", f"BASE={base}", "--tag", ref, str(ctx),
            capture=True,
        )  # fmt: skip
    archive = archive_path(root, spec.name, tag, arch)
    archive.parent.mkdir(parents=True, exist_ok=True)
    image_id = engine.docker("image", "inspect", "--format", "{{.Id}}", ref, capture=True)
    stamp = archive.with_suffix(".id")
    # Saving a few hundred MB is the slow part of a warm build: only when the image changed.
    if not (archive.exists() and stamp.exists() and stamp.read_text() == image_id.stdout):
        partial = archive.with_suffix(".partial")
        engine.docker("save", "--output", str(partial), ref, capture=True)
        partial.chmod(0o644)  # docker writes 0600; a node's admin imports it as any user
        partial.rename(archive)
        stamp.write_text(image_id.stdout)
    size = engine.docker("image", "inspect", "--format", "{{.Size}}", ref, capture=True)
    built = Built(
        spec.name,
        arch.name,
        ref,
        archive,
        int(size.stdout.strip()),
        archive.stat().st_size,
        time.monotonic() - t0,
    )
    _log(
        f"{ref} ({arch.platform}): {built.image_bytes / 1e6:.0f} MB, "
        f"{archive} in {built.seconds:.0f} s"
    )
    return built


def _prune(engine: Engine) -> None:
    """Drop bases of older recipes and untagged images: vfs keeps every layer in full."""
    current = {f"energysched-base:{SUITE}-{a.name}-{base_key(a)}" for a in ARCHES.values()}
    listed = engine.docker(
        "image", "ls", "--format", "{{.Repository}}:{{.Tag}}", "energysched-base", capture=True
    )
    stale = [ref for ref in listed.stdout.split() if ref not in current]
    if stale:
        engine.docker("image", "rm", *stale, check=False, capture=True)
    engine.docker("image", "prune", "--force", capture=True)


def push(engine: Engine, built: list[Built], registry: str, tag: str) -> list[str]:
    """Push each architecture's image and a manifest list ``registry/image:tag``."""
    lists = []
    for image in sorted({b.image for b in built}):
        target = f"{registry.rstrip('/')}/{image}:{tag}"
        per_arch = []
        for b in (b for b in built if b.image == image):
            remote = f"{target}-{b.arch}"
            engine.docker("tag", b.ref, remote)
            engine.docker("push", remote)
            per_arch.append((remote, ARCHES[b.arch]))
        engine.docker("manifest", "rm", target, check=False, capture=True)
        engine.docker("manifest", "create", "--insecure", target, *[r for r, _ in per_arch])
        for remote, arch in per_arch:
            _, os_arch, *variant = arch.platform.split("/")  # linux/arm/v7
            annotate = ["manifest", "annotate", "--os", "linux", "--arch", os_arch]
            if variant:
                annotate += ["--variant", variant[0]]
            engine.docker(*annotate, target, remote)
        engine.docker("manifest", "push", "--insecure", "--purge", target)
        lists.append(target)
    return lists


def build_all(
    arches: Sequence[str],
    images: Sequence[str],
    tag: str,
    registry: str | None = None,
    root: Path | None = None,
    engine: Engine | None = None,
) -> list[Built]:
    """Build (cached), save and optionally push; in ``engine`` if one is running."""
    root = root or images_root()
    root.mkdir(parents=True, exist_ok=True)
    unknown = [a for a in arches if a not in ARCHES] + [i for i in images if i not in IMAGES]
    if unknown:
        raise BuildError(f"unknown architecture or image: {unknown}")
    if engine is None:
        with Engine(root) as own:
            return build_all(arches, images, tag, registry, root, own)
    built: list[Built] = []
    for arch_name in arches:  # amd64 first: the one a local node needs
        for image in images:
            built.append(build_one(engine, IMAGES[image], ARCHES[arch_name], tag, root))
    _prune(engine)
    manifest = root / "out" / f"images-{tag}.json"
    previous: dict[str, Any] = json.loads(manifest.read_text()) if manifest.exists() else {}
    for b in built:
        previous[f"{b.image}:{b.arch}"] = {
            "ref": b.ref,
            "archive": str(b.archive),
            "image_bytes": b.image_bytes,
            "archive_bytes": b.archive_bytes,
            "base_packages": None
            if IMAGES[b.image].external_base
            else str(base_tarball(ARCHES[b.arch], root).with_suffix(".packages")),
        }
    manifest.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    if registry:
        for target in push(engine, built, registry, tag):
            _log(f"pushed {target}")
    return built


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(
        prog="python -m energysched_lab.images",
        description="Build the product and workflow images here (no registry needed).",
    )
    p.add_argument("--arch", default="amd64,arm64,armv7", help="comma-separated: %(default)s")
    p.add_argument(
        "--image",
        default=",".join(DEFAULT_IMAGES),
        help=f"comma-separated: %(default)s; also {', '.join(set(IMAGES) - set(DEFAULT_IMAGES))}",
    )
    p.add_argument("--tag", default="dev")
    p.add_argument("--registry", help="the user's registry, e.g. registry.local:5000")
    p.add_argument(
        "--push", action="store_true", help="push REGISTRY/IMAGE:TAG (a multi-arch manifest list)"
    )
    args = p.parse_args(argv)
    if args.push and not args.registry:
        p.error("--push needs --registry (make images PUSH=1 REGISTRY=host:port)")
    t0 = time.monotonic()
    try:
        built = build_all(
            [a for a in args.arch.split(",") if a],
            [i for i in args.image.split(",") if i],
            args.tag,
            registry=args.registry if args.push else None,
        )
    except (BuildError, EngineError, qemu.QemuError) as exc:
        print(f"images: {exc}", file=sys.stderr)
        return 1
    for b in built:
        print(f"{b.ref}\t{b.arch}\t{b.image_bytes / 1e6:.0f} MB\t{b.archive}")
    _log(f"done in {time.monotonic() - t0:.0f} s")
    return 0
