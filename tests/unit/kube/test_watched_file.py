"""WatchedFile: a ConfigMap-style symlink swap is seen; an invalid version keeps the last good."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from energysched.kube.files import WatchedFile


def parse(data: bytes) -> int:
    return int(data.decode())  # ValueError for anything else


def swap(directory: Path, content: str, n: int) -> None:
    """What the kubelet does: a new timestamped dir, then ..data re-pointed atomically."""
    target = directory / f"..v{n}"
    target.mkdir()
    (target / "c").write_text(content)
    tmp = directory / "..data_tmp"
    tmp.symlink_to(target.name)
    os.replace(tmp, directory / "..data")


def test_symlink_swaps_invalid_versions_and_unreadable_files(tmp_path: Path) -> None:
    swap(tmp_path, "1", 1)
    (tmp_path / "c").symlink_to("..data/c")
    watched = WatchedFile(tmp_path / "c", parse)
    assert watched.load() == 1
    assert watched.poll() is None  # unchanged
    swap(tmp_path, "2", 2)
    assert watched.poll() == 2
    swap(tmp_path, "x", 3)
    with pytest.raises(ValueError):
        watched.poll()
    assert watched.value == 2  # the last good value stays
    assert watched.poll() is None  # the same invalid content is reported once
    os.remove(tmp_path / "..data")
    assert watched.poll() is None and watched.unreadable is not None
    swap(tmp_path, "3", 4)
    assert watched.poll() == 3 and watched.unreadable is None
