"""The Data page's near-duplicates section in Streamlit's AppTest: real photos (a slice of the bundled
sample_data/) in a real workspace, two planted copies (upscaled, cropped, JPEG re-encoded), the real
"near_duplicates" job run by a worker in this process, then "Keep one", "Bring them back" and "Keep all"."""

from __future__ import annotations

import io
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from sslapp.curate.duplicates_job import find_near_duplicates
from sslapp.curate.read import GROUPS_SETTING, KEPT_ALL_SETTING
from sslapp.ingest.ingest import ingest
from sslapp.jobs.launcher import pid_alive
from sslapp.jobs.worker import run_worker
from sslapp.workspace import open_workspace

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"
SCRIPT = "from sslapp.ui.pages import data\ndata.render()\n"


def copy_of(path: Path) -> bytes:
    """A copy as people make them: upscaled, cropped a little, then JPEG at quality 70 (as in
    tests/test_near_duplicates.py)."""
    big = Image.open(path).convert("RGB").resize((40, 40), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    big.crop((2, 1, 39, 38)).resize((32, 32), Image.Resampling.BICUBIC).save(buf, "JPEG", quality=70)
    return buf.getvalue()


@pytest.fixture
def page_ws(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(root))
    ws = open_workspace(root, cache_size=32)
    ws.store.set_setting("features.starts", ["pixels"])  # fast; the choice of embedding does not matter here
    yield ws
    worker = ws.store.get_setting("worker") or {}
    pid = worker.get("pid")
    if pid and pid != os.getpid() and pid_alive(pid):  # a worker the page started for this test
        os.kill(pid, signal.SIGTERM)


def _texts(at: AppTest) -> str:
    return "\n".join([e.value for e in (*at.success, *at.info, *at.warning, *at.error, *at.markdown, *at.caption)])


def _button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def _keys(at: AppTest, prefix: str) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith(prefix)]


def _run_worker_thread(ws) -> threading.Thread:
    """A worker in this process (a thread), so the page finds it alive and launches no other."""
    worker = threading.Thread(target=run_worker, args=(ws,), kwargs={"idle_exit_s": 5.0, "max_jobs": 1, "warm_up": False})
    worker.start()
    deadline = time.monotonic() + 10
    while not (ws.store.get_setting("worker") or {}).get("pid") and time.monotonic() < deadline:
        time.sleep(0.05)
    return worker


def test_find_keep_one_bring_back_and_keep_all(page_ws, tmp_path):
    ws = page_ws
    photos = tmp_path / "images" / "photos"
    originals = sorted(p for p in SAMPLE.rglob("*.png"))[::5]  # 60 real photos, 6 per class
    for p in originals:
        (photos / p.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(p, photos / p.parent.name / p.name)
    ingest(ws, [str(photos)], base=str(photos.parent), workers=1)
    assert ws.store.count_items() == len(originals) == 60

    at = AppTest.from_string(SCRIPT, default_timeout=30).run()
    assert not at.exception
    assert "Near-duplicates" in [h.value for h in at.subheader]
    assert "Not looked for yet" in _texts(at)

    # none among the originals: said plainly
    find_near_duplicates(ws)
    at.run()
    assert not at.exception
    assert "No near-duplicates found among 60 images." in [s.value for s in at.success]

    # two copies arrive: the old result is out of date, and says so
    a, b = originals[7], originals[31]
    copies = tmp_path / "images" / "copies"
    copies.mkdir()
    (copies / "a-copy.jpg").write_bytes(copy_of(a))
    (copies / "b-copy.jpg").write_bytes(copy_of(b))
    ingest(ws, [str(copies)], base=str(copies.parent), workers=1)
    at.run()
    assert "Images were added since this search; find again to include them." in [i.value for i in at.info]

    # "Find near-duplicates" asks the worker; the page shows what it found
    worker = _run_worker_thread(ws)
    _button(at, "dup_find").click()
    at.run()
    assert not at.exception
    jobs = ws.store.jobs(kind="near_duplicates")
    assert len(jobs) == 1
    worker.join(60)
    assert not worker.is_alive()
    job = ws.store.job(jobs[0]["id"])
    assert job["status"] == "done", job["error"]
    assert job["pid"] == os.getpid()  # run by the in-process worker, not a launched one
    assert job["result"]["groups"] == 2
    ids = {ws.store.item(i)["source"]: i for i in range(1, 63) if ws.store.item(i)}
    a_id, a_copy = ids[f"photos/{a.parent.name}/{a.name}"], ids["copies/a-copy.jpg"]
    b_id, b_copy = ids[f"photos/{b.parent.name}/{b.name}"], ids["copies/b-copy.jpg"]
    stored = ws.store.get_setting(GROUPS_SETTING)
    assert sorted(g["items"] for g in stored["groups"]) == sorted([[a_id, a_copy], [b_id, b_copy]])
    assert stored["n_items"] == 62 and set(stored) >= {"at", "groups", "n_items", "embedding"}
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "**2 groups to look at** (found among 62 images)" in text
    assert "Images were added since" not in text
    captions = [c.value for c in at.caption]
    assert "a-copy.jpg" in captions and a.name in captions  # file names only
    assert not any("photos/" in c or "copies/" in c for c in captions)  # never folder paths
    assert "job" not in text.lower()  # plain words, no job ids
    assert sorted(_keys(at, "dup_one_")) == sorted([f"dup_one_{a_id}", f"dup_one_{b_id}"])

    # "Keep one" keeps the original (added first) and skips the copy; the group is gone
    _button(at, f"dup_one_{a_id}").click()
    at.run()
    assert not at.exception
    assert ws.store.skipped_ids() == {a_copy}
    assert ws.store.count_items() == 62  # nothing deleted
    message = at.success[0].value
    assert message.startswith(f"Kept **{a.name}** and skipped **a-copy.jpg**.") and "bring them back" in message
    assert _keys(at, "dup_one_") == [f"dup_one_{b_id}"]
    # ... and can be brought back
    _button(at, "dup_back").click()
    at.run()
    assert not at.exception
    assert ws.store.skipped_ids() == set()
    assert sorted(_keys(at, "dup_one_")) == sorted([f"dup_one_{a_id}", f"dup_one_{b_id}"])
    _button(at, f"dup_one_{a_id}").click()
    at.run()
    assert ws.store.skipped_ids() == {a_copy}

    # "Keep all" dismisses the other group: nothing skipped, never shown again
    _button(at, f"dup_all_{b_id}").click()
    at.run()
    assert not at.exception
    assert ws.store.skipped_ids() == {a_copy}
    assert ws.store.get_setting(KEPT_ALL_SETTING) == [sorted([b_id, b_copy])]
    assert _keys(at, "dup_one_") == [] and _keys(at, "dup_all_") == []
    assert "This group will not be shown again." in at.success[0].value
    at.run()
    assert "All 2 groups of near-duplicates found among 62 images are dealt with." in [s.value for s in at.success]
