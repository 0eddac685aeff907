"""The Data page in Streamlit's AppTest: sample data through a real job and worker, the report,
the grid, and the upload helpers (AppTest cannot upload files, so those are tested directly)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from in_process_worker import start_worker_thread
from PIL import Image
from streamlit.testing.v1 import AppTest

from sslapp.ingest.ingest import ingest
from sslapp.jobs.launcher import pid_alive
from sslapp.ui.pages import data as data_page
from sslapp.workspace import open_workspace

SCRIPT = "from sslapp.ui.pages import data\ndata.render()\n"


@pytest.fixture
def page_ws(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(root))
    ws = open_workspace(root)
    yield ws
    worker = ws.store.get_setting("worker") or {}
    pid = worker.get("pid")
    if pid and pid != os.getpid() and pid_alive(pid):  # a worker the page started for this test
        os.kill(pid, signal.SIGTERM)


def _app() -> AppTest:
    at = AppTest.from_string(SCRIPT, default_timeout=30)
    return at.run()


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_empty_workspace_offers_sample_data_and_it_arrives(page_ws):
    at = _app()
    assert not at.exception
    assert _metric(at, "Images") == "0"
    # a worker in this process (a thread), so the page finds it alive and launches no other
    worker = start_worker_thread(page_ws, idle_exit_s=5.0)
    assert at.checkbox(key="sample_labels").value is False  # by default the user labels a handful
    at.checkbox(key="sample_labels").check()
    button = next(b for b in at.button if b.label == "Load sample data")
    button.click()
    at.run()
    assert not at.exception
    jobs = page_ws.store.jobs(kind="ingest")
    assert len(jobs) == 1 and jobs[0]["params"]["labels_from_dirs"] is True
    worker.join(60)
    assert not worker.is_alive()
    job = page_ws.store.job(jobs[0]["id"])
    assert job["status"] == "done", job["error"]
    assert job["pid"] == os.getpid()  # run by the in-process worker, not a launched one
    expected = len(list(data_page.sample_data_dir().rglob("*.png")))
    assert job["result"]["added"] == expected >= 100
    maps = page_ws.store.jobs(kind="embed")  # the first map is queued right after the images arrive
    assert [m["id"] for m in maps] == [job["result"]["map_job"]] and maps[0]["status"] == "queued"
    at.run()
    assert not at.exception
    assert _metric(at, "Images") == f"{expected:,}"
    assert _metric(at, "Classes") == "10"
    assert not [b for b in at.button if b.label == "Load sample data"]  # only offered when empty
    assert any("Just added" in m.value and "added" in m.value for m in at.markdown)
    assert not any("Job " in m.value or "job " in m.value for m in at.markdown)  # words, not job ids
    assert len(at.get("image")) == data_page.PAGE_SIZE  # a full first page of thumbnails


def test_report_and_grid_render_with_reasons(page_ws, tmp_path):
    folder = tmp_path / "in"
    for i in range(60):
        (folder / ("cat" if i % 2 else "dog")).mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(
            folder / ("cat" if i % 2 else "dog") / f"{i}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    ingest(page_ws, [folder], labels_from_dirs=True, workers=1)
    at = _app()
    assert not at.exception
    assert _metric(at, "Images") == "60" and _metric(at, "Labelled") == "60"
    assert any("added 60" in m.value and "1 skipped" in m.value for m in at.markdown)
    table = at.dataframe[0].value
    assert "not-image" in str(table.iloc[0]["reason"])
    captions = " ".join(c.value for c in at.caption)
    assert "no thumbnail" not in captions
    assert len(at.get("image")) == data_page.PAGE_SIZE
    number = at.number_input(key="grid_page")
    assert number.max == 2  # 60 images, 48 per page
    number.set_value(2).run()
    assert not at.exception
    assert len(at.get("image")) == 60 - data_page.PAGE_SIZE


def test_upload_helpers_keep_paths_safe_and_enforce_limits(page_ws):
    assert str(data_page.safe_relative("../../etc/passwd")) == "etc/passwd"
    assert str(data_page.safe_relative("/abs/cat/1.png")) == "abs/cat/1.png"
    assert str(data_page.safe_relative("my pics/cat/a b.png")) == "my pics/cat/a b.png"
    assert data_page.safe_relative("..") is None

    class Fake:
        def __init__(self, name, data):
            self.name, self.size, self._data = name, len(data), data

        def getbuffer(self):
            return memoryview(self._data)

    many = [Fake(f"{i}.png", b"") for i in range(data_page.MAX_FILES_PER_UPLOAD + 1)]
    assert "per upload" in data_page.check_upload(many)
    assert data_page.check_upload(many[:10]) is None
    saved = data_page.save_uploads(page_ws, [Fake("../x/a.png", b"1"), Fake("x/a.png", b"2")])
    assert saved.parent == page_ws.tmp_dir
    assert sorted(p.read_bytes() for p in saved.rglob("*.png")) == [b"1", b"2"]
    assert all(p.resolve().is_relative_to(saved.resolve()) for p in saved.rglob("*"))
