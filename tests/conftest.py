"""Shared fixtures: real workspaces in temporary folders; torch kept to one thread on CI's 2 cores.

Workers that pages start on their own (sslapp.jobs.launcher.ensure_worker) skip the UMAP warm-up
and exit when idle; any still alive when the session ends are stopped, so CI leaves nothing behind.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# numba's parallel loops (UMAP, pynndescent) start a thread per core and ignore OMP_NUM_THREADS: beside
# the other pytest worker those threads only wait on each other
os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("SSLAPP_WORKER_WARM_UP", "0")
os.environ.setdefault("SSLAPP_WORKER_IDLE_EXIT", "60")


def _scan_streamlit_components_once() -> None:
    """Each new Streamlit AppTest scans the metadata of every installed package for v2 components
    (0.8 s each on CI's cores, about 60 AppTests in the suite). The installed packages do not change
    during a test session, so the page tests share one scan; the app itself still scans at start."""
    import functools

    from streamlit.components.v2 import manifest_scanner

    original = manifest_scanner.scan_component_manifests
    scan = functools.lru_cache(maxsize=1)(lambda: tuple(original()))
    manifest_scanner.scan_component_manifests = functools.wraps(original)(lambda max_workers=None: list(scan()))


_scan_streamlit_components_once()


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest runs a page as a new `__main__` module and leaves it in sys.modules; a later test
    in the same worker that starts a process with multiprocessing's spawn would then re-run that page's
    script in the child. Each test gets back the `__main__` it started with."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture
def ws(tmp_path):
    from sslapp.workspace import open_workspace

    return open_workspace(tmp_path / "ws")


@pytest.fixture(scope="session")
def export_base(tmp_path_factory):
    """The export tests' workspace without a classifier (tests/_export_ws.py), built once."""
    from _export_ws import Base

    return Base.build(tmp_path_factory.mktemp("export-base"))


@pytest.fixture(scope="session")
def export_built(export_base, tmp_path_factory):
    """The export tests' workspace with its classifier and its full export (every format, the encoder
    alone too, and the ImageFolder tree), for the tests that only read them. Images are under `root`."""
    from _export_ws import export_cli

    out = tmp_path_factory.mktemp("export-built")
    ws, model = export_base.copy(out)
    manifest = export_cli([str(ws.root), str(out / "out"), "--all", "--imagefolder"])
    return {"root": export_base.root, "ws": ws, "model": model, "images": export_base.images, "out": out / "out",
            "manifest": manifest}


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


# With pytest-xdist (`-n 2 --dist loadgroup`, scheduled in this order: --no-loadscope-reorder in
# pyproject), each file is one group that stays on one worker, so its module- and session-scoped
# fixtures are built once; files that share a fixture share a group. The slowest groups go first
# (measured on 2 cores), so the journey runs beside everything else and the last groups to start
# are short ones that keep both workers busy to the end.
SHARED_GROUPS = {"test_export_options": "test_export", "test_export_page": "test_export"}
# the two browser journeys mostly wait on their app's worker: the other xdist worker spends the image journey
# on CPU-bound files (the exports, every benchmark script), and the text journey starts once it is about done
SLOWEST_FIRST = ["test_journey", "test_export", "test_benchmarks_smoke", "test_text_export", "test_embed", "test_pretrain",
                 "test_journey_texts", "test_faults", "test_text_pretrain", "test_suggest_cli",
                 "test_label_page", "test_bench_label_efficiency", "test_server_restart", "test_ssl_losses",
                 "test_explore_map", "test_features", "test_explore_page", "test_ddp", "test_select", "test_large_sets"]


def _group(item) -> str:
    stem = Path(str(item.fspath)).stem
    return SHARED_GROUPS.get(stem, stem)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into each test's group
def pytest_collection_modifyitems(config, items):
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_group(item)))
    rank = {group: i for i, group in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(_group(item), len(rank)))  # stable: the rest keep their order
