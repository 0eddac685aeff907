"""Ingestion end to end on real files: the bad-input corpus, tricky formats, dedupe, labels,
all-or-nothing commits, the cache, zip limits, the CLI and the ingest job."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslapp.ingest.cache import cache_path, read_cache
from sslapp.ingest.ingest import ingest
from sslapp.ingest.sources import ZipLimits, iter_sources
from sslapp.modalities.image.decode import BadImage, decode_file, decode_image
from sslapp.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("make_bad", ROOT / "tests" / "data" / "make_bad.py")
make_bad = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_bad)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("bad")
    return out, make_bad.build(out)


def _png(path: Path, color, size=(24, 24)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def _noise_png(path: Path, seed: int, size=(20, 20)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)
    return path


def test_bad_corpus_every_outcome(ws, corpus):
    out, expected = corpus
    report = ingest(ws, [out], base=out, workers=1)
    skipped = {e["source"]: e["reason"] for e in report["skipped"]}
    for name, outcome in expected.items():
        if outcome == "added":
            assert ws.store.find_items_by_source(name), f"{name} should be added; skipped: {skipped.get(name)}"
        elif outcome == "duplicate":
            assert name not in skipped and not ws.store.find_items_by_source(name)
        else:
            assert name in skipped, f"{name} should be skipped as {outcome}"
            assert skipped[name].startswith(outcome + ":"), (name, skipped[name])
            assert len(skipped[name]) > len(outcome) + 10  # a reason a person can act on
    assert set(skipped) <= set(expected), f"unexpected skips: {set(skipped) - set(expected)}"
    assert report["added"] == sum(v == "added" for v in expected.values())
    assert report["duplicates"] == sum(v == "duplicate" for v in expected.values())
    assert any("UTF-8" in n["note"] for n in report["notes"])
    assert ws.store.last_ingest_report()["added"] == report["added"]
    cache = read_cache(ws)
    assert cache.shape == (report["added"], ws.cache_size, ws.cache_size, 3)
    for item in ws.store.items():  # every thumbnail and original is there
        sha = item["sha256"]
        assert (ws.thumbs_dir / sha[:2] / f"{sha}.jpg").exists()
        assert (ws.root / item["original"]).exists()
        with Image.open(ws.thumbs_dir / sha[:2] / f"{sha}.jpg") as thumb:
            assert max(thumb.size) <= 96


def _row_of(ws, name):
    (item_id,) = ws.store.find_items_by_source(name)
    return read_cache(ws)[ws.store.item(item_id)["cache_index"]].astype(int), ws.store.item(item_id)


def test_tricky_images_decode_correctly(ws, corpus):
    out, _ = corpus
    ingest(ws, [out], base=out, workers=1)
    red, blue = np.array(make_bad.RED), np.array(make_bad.BLUE)
    rows, item = _row_of(ws, "exif-rotated.jpg")  # must come out the right way up
    assert np.abs(rows[: ws.cache_size // 3].mean((0, 1)) - red).max() < 30
    assert np.abs(rows[-ws.cache_size // 3:].mean((0, 1)) - blue).max() < 30
    assert (item["width"], item["height"]) == (48, 48)
    rows, _ = _row_of(ws, "cmyk.jpg")
    assert rows.mean((0, 1))[0] > 200 and rows.mean((0, 1))[1:].max() < 60  # CMYK (0,255,255,0) is red
    rows, _ = _row_of(ws, "gray-16bit.png")  # 0..65535 ramp scaled to 0..255, not clipped to white
    assert rows.min() < 20 and rows.max() > 235 and 100 < rows.mean() < 160
    rows, _ = _row_of(ws, "transparent.png")  # left half opaque green, right half transparent -> white
    assert rows[:, :10].mean((0, 1))[1] > 150 and rows[:, :10].mean((0, 1))[0] < 60
    assert rows[:, -10:].min() > 240
    rows, _ = _row_of(ws, "animated.gif")  # first frame is red
    assert np.abs(rows.mean((0, 1)) - red).max() < 30
    rows, item = _row_of(ws, "large-6000x4000.png")
    assert (item["width"], item["height"]) == (6000, 4000)
    assert np.abs(rows.mean((0, 1)) - np.array(make_bad.GREEN)).max() < 3


def test_decode_is_canonical_and_matches_cache(ws, tmp_path):
    src = _noise_png(tmp_path / "in" / "a.png", 1, size=(40, 30))
    ingest(ws, [src], workers=1)
    expected = decode_file(src, ws.cache_size)
    assert expected.dtype == np.uint8 and expected.shape == (64, 64, 3)
    assert np.array_equal(read_cache(ws)[0], expected)
    manual = Image.open(src).convert("RGB").crop((0, 5, 30, 35)).resize((64, 64), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(manual), expected)
    with pytest.raises(BadImage) as err:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\0" * 10, 32)
    assert err.value.kind == "corrupt"


def test_dedupe_within_batch_and_across_ingests_with_imported_labels(ws, tmp_path):
    data = tmp_path / "data"
    _noise_png(data / "cat" / "1.png", 1)
    _noise_png(data / "cat" / "2.png", 2)
    _noise_png(data / "dog" / "3.png", 3)
    _noise_png(data / "dog" / "same-as-1.png", 1)  # same bytes as cat/1.png
    _noise_png(data / "loose.png", 4)  # no class folder: no label
    report = ingest(ws, [data], labels_from_dirs=True, workers=1)
    assert (report["added"], report["duplicates"], report["skipped"]) == (4, 1, [])
    assert ws.store.label_counts() == {"cat": 2, "dog": 1}
    assert {lab["source"] for lab in ws.store.labels()} == {"imported"}
    again = ingest(ws, [data], labels_from_dirs=True, workers=1)
    assert (again["added"], again["duplicates"]) == (0, 5)
    assert ws.store.count_items() == 4
    undone = ws.store.undo_last_label_action()  # imported labels are undoable like any other
    assert undone is not None and ws.store.count_items() == 4


def test_failed_ingest_changes_nothing_and_the_next_one_recovers(ws, tmp_path):
    first = [_noise_png(tmp_path / "a" / f"{i}.png", i) for i in range(5)]
    ingest(ws, first, workers=1)
    before_items = ws.store.items()
    before_cache = np.array(read_cache(ws))
    second = [_noise_png(tmp_path / "b" / f"{i}.png", 100 + i) for i in range(7)]
    calls = []

    def stop_after_the_cache_was_written():
        calls.append(1)
        if len(calls) == 2:  # called before each chunk and once more just before the commit
            raise RuntimeError("simulated crash before the commit")

    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(ws, second, workers=1, should_stop=stop_after_the_cache_was_written)
    assert ws.store.items() == before_items
    assert cache_path(ws).stat().st_size > before_cache.nbytes  # the orphan tail exists on disk...
    assert np.array_equal(read_cache(ws), before_cache)  # ...but is invisible
    report = ingest(ws, second, workers=1)
    assert report["added"] == 7
    assert cache_path(ws).stat().st_size == 12 * 64 * 64 * 3  # the tail was truncated, not kept
    cache = read_cache(ws)
    assert np.array_equal(cache[:5], before_cache)
    for path in second:
        (item_id,) = ws.store.find_items_by_source(str(path))
        assert np.array_equal(cache[ws.store.item(item_id)["cache_index"]], decode_file(path, 64))


def test_zip_limits_member_count_and_total_size(tmp_path):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(5):
            zf.writestr(f"x/{i}.png", b"\0" * 1000)
    (entry,) = list(iter_sources([archive], limits=ZipLimits(max_members=4)))
    assert entry.error.startswith("zip-bomb:") and "members" in entry.error
    (entry,) = list(iter_sources([archive], limits=ZipLimits(max_total_bytes=4000)))
    assert entry.error.startswith("zip-bomb:") and "uncompressed" in entry.error
    items = list(iter_sources([archive]))
    assert len(items) == 5 and all(i.data is not None and i.label == "x" for i in items)


def test_workspace_cache_size_and_pool_path(tmp_path, monkeypatch):
    import sslapp.ingest.ingest as ingest_module

    monkeypatch.setattr(ingest_module, "POOL_MIN", 16)  # use the process pool on this small batch
    ws = open_workspace(tmp_path / "w32", cache_size=32)
    files = [_noise_png(tmp_path / "p" / f"{i}.png", i) for i in range(40)]
    report = ingest(ws, files, workers=2)
    assert report["added"] == 40
    assert cache_path(ws).name == "images-32.u8"
    assert read_cache(ws).shape == (40, 32, 32, 3)
    assert np.array_equal(read_cache(ws)[0], decode_file(files[0], 32))


def _cli(*args, cwd=None):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "sslapp", *args], capture_output=True, text=True, env=env,
                          cwd=cwd or ROOT, timeout=120)


def test_cli_reports_each_bad_file_and_exit_codes(tmp_path, corpus):
    out, expected = corpus
    wsdir = tmp_path / "cli-ws"
    run = _cli("ingest", str(wsdir), str(out), "--labels-from-dirs")
    assert run.returncode == 0, run.stderr
    bad = [k for k, v in expected.items() if v not in ("added", "duplicate")]
    lines = [line for line in run.stderr.splitlines() if line.startswith("skipped ")]
    assert len(lines) == len(bad)
    assert "added" in run.stdout
    again = _cli("ingest", str(wsdir), str(out / "good.png"), "--json")  # only a duplicate: still success
    assert again.returncode == 0 and json.loads(again.stdout)["duplicates"] == 1
    nothing = _cli("ingest", str(wsdir), str(out / "empty.jpg"), str(out / "text-with-image-name.png"),
                   "--json")
    assert nothing.returncode != 0
    report = json.loads(nothing.stdout)
    assert report["added"] == 0 and [e["reason"].split(":")[0] for e in report["skipped"]] == ["empty", "not-image"]


def test_ingest_job_cleans_up_only_inside_tmp(ws, tmp_path):
    from sslapp.cli.common import run_job_in_foreground

    upload = ws.tmp_dir / "upload-1"
    _noise_png(upload / "cat" / "a.png", 1)
    _noise_png(upload / "cat" / "b.png", 2)
    outside = _noise_png(tmp_path / "mine" / "c.png", 3)
    job = run_job_in_foreground(ws, "ingest", {"paths": [str(upload), str(outside)], "labels_from_dirs": True,
                                               "cleanup": True, "base": str(upload)})
    assert job["status"] == "done", job["error"]
    assert job["result"]["added"] == 3
    assert not upload.exists() and outside.exists()
    assert ws.store.find_items_by_source("cat/a.png")
    assert ws.store.label_counts() == {"cat": 2}


@pytest.mark.parametrize("how, uploads_kept", [("cancel", False), ("pause", True)])
def test_stopped_ingest_job_commits_nothing(ws, how, uploads_kept):
    from sslapp.jobs.worker import execute_job

    upload = ws.tmp_dir / "upload-2"
    _noise_png(upload / "a.png", 1)
    job_id = ws.store.enqueue_job("ingest", {"paths": [str(upload)], "cleanup": True, "base": str(upload)})
    job = ws.store.claim_job(job_id, os.getpid())
    assert ws.store.request_job_stop(job_id, how)  # the user pressed cancel/pause as it started
    final = execute_job(ws, job)
    assert final["status"] == {"cancel": "cancelled", "pause": "paused"}[how]
    assert ws.store.count_items() == 0 and ws.store.last_ingest_report() is None
    assert upload.exists() == uploads_kept
    if how == "pause":  # resuming runs it again from the kept upload
        assert ws.store.resume_job(job_id)
        assert execute_job(ws, ws.store.claim_job(job_id, os.getpid()))["status"] == "done"
        assert ws.store.count_items() == 1 and not upload.exists()


def _listing_as(uid: int | None, folder: Path) -> list[dict]:
    """iter_sources over `folder` in a child process, demoted to `uid` (root reads everything)."""
    code = ("import json, sys\nfrom sslapp.ingest.sources import iter_sources\n"
            "print(json.dumps([{'name': i.name, 'error': i.error} for i in iter_sources([sys.argv[1]])]))")
    run = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, cwd=ROOT,
                         user=uid, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_permission_denied_files_and_folders_are_reported(tmp_path):
    import tempfile

    uid = None
    if os.geteuid() == 0:  # root reads chmod-000 files, so look as an unprivileged user
        uid = 65534
    folder = Path(tempfile.mkdtemp(prefix="sslapp-perm-"))
    try:
        os.chmod(folder, 0o755)
        _noise_png(folder / "ok.png", 1)
        locked = _noise_png(folder / "locked.png", 2)
        hidden = folder / "zz-locked-folder"
        _noise_png(hidden / "inside.png", 3)
        for p in (folder / "ok.png", locked):
            os.chmod(p, 0o644)
        os.chmod(locked, 0)
        os.chmod(hidden, 0)
        try:
            items = {Path(i["name"]).name: i["error"] for i in _listing_as(uid, folder)}
        except PermissionError:
            pytest.skip("running as root, and an unprivileged user cannot run this Python (it lives in a "
                        "root-only folder), so permission errors cannot be produced here")
        assert items["ok.png"] is None
        assert items["locked.png"].startswith("unreadable:") and "permission" in items["locked.png"].lower()
        assert items["zz-locked-folder"].startswith("unreadable: cannot list this folder")
    finally:
        os.chmod(hidden, 0o755)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def _ingest_in_process(ws_path: str, folder: str) -> None:
    report = ingest(open_workspace(ws_path), [folder], workers=1)
    assert report["added"] == 20


def test_two_processes_ingest_at_once_without_mixing_rows(ws, tmp_path):
    import multiprocessing as mp

    folders = []
    for k in range(2):
        for i in range(20):
            _noise_png(tmp_path / f"src{k}" / f"{i}.png", 1000 * (k + 1) + i)
        folders.append(str(tmp_path / f"src{k}"))
    ctx = mp.get_context("fork")  # the store opens a fresh connection in each child (pid check)
    procs = [ctx.Process(target=_ingest_in_process, args=(str(ws.root), f)) for f in folders]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    cache = read_cache(ws)
    assert cache.shape[0] == ws.store.count_items() == 40
    assert sorted(i["cache_index"] for i in ws.store.items()) == list(range(40))
    for item in ws.store.items():  # every row holds the pixels of its own file
        assert np.array_equal(cache[item["cache_index"]], decode_file(item["source"], ws.cache_size))


def test_queue_map_never_queues_a_second_map(tmp_path):
    from sslapp.jobs.launcher import queue_map
    from sslapp.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws")
    first = queue_map(ws)
    assert isinstance(first, int)
    assert queue_map(ws) is None  # one is already waiting
    ws.store.claim_job(first, 1)
    assert queue_map(ws) is None  # one is being drawn
