"""Shared fixtures: real workspaces in temporary folders; torch kept to one thread on CI's 2 cores.

Workers that pages start on their own (sslapp.jobs.launcher.ensure_worker) skip the UMAP warm-up
and exit when idle; any still alive when the session ends are stopped, so CI leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("SSLAPP_WORKER_WARM_UP", "0")
os.environ.setdefault("SSLAPP_WORKER_IDLE_EXIT", "60")


@pytest.fixture
def ws(tmp_path):
    from sslapp.workspace import open_workspace

    return open_workspace(tmp_path / "ws")


def _stray_workers() -> list[int]:
    """Worker processes running on a workspace under the temporary folder (the tests' own)."""
    tmp = tempfile.gettempdir()
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        text = [a.decode(errors="replace") for a in args]
        if "sslapp" in text and "worker" in text and any(a.startswith(tmp) for a in text):
            pids.append(int(proc.name))
    return pids


def pytest_sessionfinish(session, exitstatus):
    if hasattr(session.config, "workerinput"):  # an xdist worker: the other may still be running tests
        return
    for pid in _stray_workers():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`-n 2 --dist loadgroup`): browser tests run one after another on one worker
    (each starts an app, a worker and chromium), and every other file stays on one worker so its
    module-scoped fixtures (a shared export, a shared workspace) are built once."""
    for item in items:
        path = Path(str(item.fspath))
        group = "browser" if path.parent.name == "browser" else path.stem
        item.add_marker(pytest.mark.xdist_group(group))
