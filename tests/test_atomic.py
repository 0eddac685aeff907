"""sslapp.atomic: a failing write leaves the old file as it was and no temporary file behind."""

from __future__ import annotations

import os

import pytest

from sslapp.atomic import atomic_path, fsync_path, write_bytes_atomic


def _names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "model.bin"
    write_bytes_atomic(target, b"first")
    write_bytes_atomic(target, b"second")
    assert target.read_bytes() == b"second" and _names(tmp_path) == ["model.bin"]


def test_a_failing_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "labels.csv"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".")  # same folder: the rename is atomic
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("disk full halfway")
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["labels.csv"]


def test_a_write_that_never_created_the_temp_fails_clearly(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(FileNotFoundError), atomic_path(target):
        pass
    assert _names(tmp_path) == []


def test_full_disk_during_write_bytes(tmp_path, monkeypatch):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    real_fsync = os.fsync

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OSError, match="No space"):
        write_bytes_atomic(target, b"new")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == b"old" and _names(tmp_path) == ["a.bin"]
    fsync_path(tmp_path)  # folders can be synced too
