"""Foreign architectures (arm64, arm/v7) on an amd64 machine: Debian's qemu-user-static.

The kernel runs a foreign ELF through qemu when binfmt_misc has a handler for
it. Machines without systemd (containers, CI VMs) often have binfmt_misc
compiled in but not mounted; as root we mount it and register Debian's
handlers (``/usr/lib/binfmt.d/qemu-*.conf``, flag F: the interpreter is opened
at registration, so it also works inside containers and chroots). Where that
is not allowed, :func:`explicit_qemu_args` runs one foreign program by naming
the static qemu binary as the container's entry point instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

BINFMT = Path("/proc/sys/fs/binfmt_misc")
#: dpkg architecture -> qemu's name for it.
QEMU_NAME = {"arm64": "aarch64", "armhf": "arm"}


class QemuError(RuntimeError):
    """Foreign binaries cannot run here; the message says what is missing."""


def static_binary(debian_arch: str) -> Path:
    name = QEMU_NAME[debian_arch]
    path = shutil.which(f"qemu-{name}-static")
    if path is None:
        raise QemuError(f"qemu-{name}-static is missing: apt-get install qemu-user-static")
    return Path(path)


def binfmt_ready(debian_arch: str) -> bool:
    return (BINFMT / f"qemu-{QEMU_NAME[debian_arch]}").exists()


def ensure_binfmt(debian_arch: str) -> None:
    """Mount binfmt_misc if needed and register the qemu handler for ``debian_arch``."""
    if binfmt_ready(debian_arch):
        return
    static_binary(debian_arch)
    name = QEMU_NAME[debian_arch]
    conf = Path(f"/usr/lib/binfmt.d/qemu-{name}.conf")
    if not conf.exists():
        raise QemuError(f"{conf} is missing: apt-get install qemu-user-static")
    if not (BINFMT / "register").exists():
        if os.geteuid() != 0:
            raise QemuError("binfmt_misc is not mounted and mounting it needs root")
        proc = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise QemuError(f"cannot mount binfmt_misc: {proc.stderr.strip()}")
    try:
        (BINFMT / "register").write_text(conf.read_text().strip() + "\n")
    except OSError as exc:
        if not binfmt_ready(debian_arch):  # another process may have registered it meanwhile
            raise QemuError(f"cannot register qemu-{name} with binfmt_misc: {exc}") from exc


def explicit_qemu_args(debian_arch: str) -> list[str]:
    """``docker run`` options that run the container's program under qemu without binfmt.

    Only the first process is emulated (a child it executes would need binfmt);
    the workflow's stages start none.
    """
    qemu = static_binary(debian_arch)
    return ["--volume", f"{qemu}:/qemu:ro", "--entrypoint", "/qemu"]
