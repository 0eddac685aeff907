"""Issue 21's journey on sounds, in a real browser on real WAV files: 18 clips of three kinds of call
(tests/sound_clips.py: whistles, chirps and knocks, at 16 and 8 kHz), the way a user walks it.

Data (upload the WAV files; the first maps are queued by themselves; the clips are listed as spectrograms)
-> Label (three classes; the clip that comes up plays by itself, Space plays it again; 9 clips labelled
with the keys while the worker makes the maps) -> Train (a probe; an honest estimate) -> Explore (the map of
the 18 clips) -> Export (ONNX) -> `sslapp predict` on the same WAV files in a new process, whose class and
confidence for every clip match the app's own stored predictions to 1e-4. The kinds are never uploaded: the
test keeps them on its side (the file names say them, the app does not read names). Every page on the way
speaks of sounds, never images. Cheap on purpose (the suite runs on 2 cores against a 5-minute limit): the
xdist worker's shared server, no pretraining, no sleeps, and the labelling overlaps the worker's maps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from streamlit_driver import (
    ROOT,
    body_text,
    click_button,
    nav,
    open_page,
    press_until_said,
    screenshot,
    shown_item,
    wait_for_text,
    wait_ready,
)

from sslapp.maps.read import load_map
from sslapp.ui.label_classes import CLASS_KEYS
from sslapp.workspace import open_workspace

sys.path.insert(0, str(ROOT / "tests"))
from sound_clips import KINDS, write_clips  # noqa: E402
from test_faults import wait_for  # noqa: E402

N_LABELS = 9
SLOW_S = 240  # the longest wait for a worker job (the three starts' features and map, the export) on 2 busy cores


def check_page(page, errors) -> str:
    """The page speaks of sounds, not images, and shows no exception; returns its text."""
    main = page.locator('[data-testid="stMain"]')
    text = body_text(page)
    assert main.locator('[data-testid="stException"]').count() == 0, text[:3000]
    icons = set(main.locator('[data-testid="stIconMaterial"]').all_inner_texts())  # ligatures, e.g. image_search
    words = [line for line in text.splitlines() if line.strip() not in icons]
    # the ImageNet start is named for what it is: a network trained on ImageNet, run on the log-mel pictures
    wrong = [line for line in words if "image" in line.lower() and "imagenet" not in line.lower()]
    assert not wrong, wrong
    assert not errors, errors
    return text


def label_shown_with_its_key(page, ws, truth, names) -> int:
    """Press the key of the shown clip's kind; returns the item once the page confirms its label."""
    item = shown_item(page)
    kind = truth[ws.store.item(item)["source"]]
    press_until_said(page, CLASS_KEYS[names.index(kind)], item, kind)
    assert ws.store.item(item)["label"] == kind
    return item


@pytest.mark.slow
@pytest.mark.timeout(3 * SLOW_S)
def test_the_sound_journey_on_real_wav_files(app, page, tmp_path):
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    clips = write_clips(tmp_path / "calls", per_kind=6, subfolders=False)
    truth = {p.name: p.name.split("_")[0] for p in clips}
    names = list(KINDS)

    # -- Data: upload the WAV files; the first maps are queued; the clips are listed as spectrograms -----
    open_page(page, app, "data")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(
        files=[{"name": p.name, "mimeType": "audio/wav", "buffer": p.read_bytes()} for p in clips])
    click_button(page, f"Add {len(clips)} files")
    wait_for_text(page, "Adding sounds finished", timeout=SLOW_S)
    wait_for_text(page, f"Sounds ({len(clips)})")
    wait_ready(page)
    ws = open_workspace(app.workspace)
    assert {it["source"] for it in ws.store.items()} == set(truth) and not ws.store.labels()
    assert ws.store.jobs(kind="embed"), "the first map was not queued after the sounds arrived"
    assert page.locator('[data-testid="stMain"] [data-testid="stImage"]').count() >= 6  # spectrogram tiles
    assert f"added {len(clips)}" in check_page(page, errors)
    screenshot(page, "sound-data")

    # -- Label: three classes; the clip plays as it comes up, Space plays it again; 9 clips with the keys --
    nav(page, "Label")
    box = page.locator(".st-key-label_new_class_name textarea")
    box.wait_for(state="visible")
    box.fill(", ".join(names))
    page.locator(".st-key-label_add_class button").click()
    wait_for(lambda: len(ws.store.classes()) == len(names), timeout=60, what="the classes")
    wait_for_text(page, f"{len(names)} · {names[-1]}")
    wait_ready(page)
    player = page.locator(".st-key-label_sound audio").first
    player.wait_for(state="attached")
    page.wait_for_function("a => a.autoplay", arg=player.element_handle(), timeout=20_000)  # plays as it comes up
    assert "Space replays the clip" in check_page(page, errors)
    page.locator('[data-testid="stMain"] h1, [data-testid="stMain"] h2').first.click()  # the page has the keyboard
    player.evaluate("a => { a.pause(); a.currentTime = 0; a.muted = true; }")
    page.keyboard.press("Space")
    page.wait_for_function("a => !a.paused || a.currentTime > 0", arg=player.element_handle(), timeout=10_000)
    assert shown_item(page) is not None  # Space replayed the clip and labelled nothing
    keyed = [label_shown_with_its_key(page, ws, truth, names) for _ in range(N_LABELS)]
    labels = {r["item_id"]: r["class_name"] for r in ws.store.labels(sources=("user",))}
    assert labels == {i: truth[ws.store.item(i)["source"]] for i in keyed}
    assert len(set(labels.values())) >= 2, labels
    screenshot(page, "sound-label")

    # -- Train: a probe on the clips' vectors, with an honest estimate ---------------------------------
    nav(page, "Train")
    check_page(page, errors)
    page.locator(".st-key-train button").click()
    wait_for(lambda: ws.store.latest_artifact("classifier"), timeout=SLOW_S, what="the classifier")
    wait_for_text(page, "Estimated accuracy", timeout=SLOW_S)
    wait_ready(page)
    assert "95% interval" in check_page(page, errors)

    # -- Explore: the map of the 18 clips ------------------------------------------------------------
    nav(page, "Explore")
    page.wait_for_function("() => { const g = document.querySelector('.st-key-explore_map .js-plotly-plot');"
                           " return g && g._fullData && g._fullData.reduce((n, t) => n + (t.x ? t.x.length : 0), 0)"
                           f" === {len(clips)}; }}", timeout=SLOW_S * 1000)
    wait_ready(page)
    check_page(page, errors)
    assert len(load_map(ws).item_ids) == len(clips)

    # -- Export: ONNX with the classifier; then sslapp predict on the WAV files, in a new process ------
    nav(page, "Export")
    page.locator('[data-testid="stMain"] [data-testid="stForm"] [data-testid="stFormSubmitButton"] button').click()
    wait_for_text(page, "Export ready in", timeout=SLOW_S)
    wait_ready(page)
    check_page(page, errors)
    job = ws.store.jobs(kind="export", limit=1)[0]
    assert job["status"] == "done", job["error"]
    export_dir = ws.root / job["result"]["path"]
    manifest = json.loads((export_dir / "model.json").read_text(encoding="utf-8"))
    assert manifest["modality"] == "audio"
    out = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(export_dir), "calls", "--json"],
                         cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=SLOW_S)
    assert out.returncode == 0, out.stderr
    predicted = {os.path.basename(p["path"]): p for p in json.loads(out.stdout)}
    assert set(predicted) == set(truth)
    stored = {p["item_id"]: p for p in ws.store.predictions()}
    for item in ws.store.items():
        mine, app_said = predicted[item["source"]], stored[item["id"]]
        assert mine["class"] == app_said["class_name"], (item["source"], mine, app_said)
        assert abs(mine["confidence"] - app_said["confidence"]) < 1e-4, (item["source"], mine, app_said)
    right = sum(p["class"] == truth[name] for name, p in predicted.items())
    assert right >= 12, f"{right} of {len(truth)} clips right"  # 9 labels, calls over two octaves: chance is 6
