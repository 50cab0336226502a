"""What the result document says about the machine (read from /proc/cpuinfo)."""

from __future__ import annotations

import os
import platform
import socket
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class CpuInfo:
    model: str
    avx: bool
    flags: frozenset[str]


def parse_cpuinfo(text: str) -> CpuInfo:
    """CPU model and flags from /proc/cpuinfo text (x86 and ARM layouts)."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        # The first occurrence describes CPU 0; identical cores repeat it.
        fields.setdefault(key, value.strip())
    model = (
        fields.get("model name")
        or fields.get("hardware")  # 32-bit ARM kernels: "BCM2835"
        or fields.get("processor")
        or fields.get("cpu model")
        or ""
    )
    if model.isdigit():  # "processor : 0" on x86 is an index, not a model
        model = ""
    if not model and "cpu part" in fields:
        model = f"ARM part {fields['cpu part']} (implementer {fields.get('cpu implementer', '?')})"
    flags = frozenset((fields.get("flags") or fields.get("features") or "").split())
    return CpuInfo(model=model, avx="avx" in flags, flags=flags)


def cpu_info(path: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo(model=platform.processor(), avx=False, flags=frozenset())
    info = parse_cpuinfo(text)
    if not info.model:
        return CpuInfo(platform.processor() or platform.machine(), info.avx, info.flags)
    return info


def node_name() -> str:
    """NODE_NAME (set from spec.nodeName in the bench Job), else the host name."""
    return os.environ.get("NODE_NAME") or socket.gethostname()


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1
