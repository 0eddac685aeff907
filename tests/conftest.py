"""Shared fixtures: real workspaces in temporary folders; torch kept to one thread on CI's 2 cores."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def ws(tmp_path):
    from sslapp.workspace import open_workspace

    return open_workspace(tmp_path / "ws")
