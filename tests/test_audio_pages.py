"""The pages on a sound workspace, in Streamlit's AppTest: real WAV clips through the real ingest, then
the Label page (the spectrogram, a player that plays at once, Space to replay), the Explore map's
preview (spectrogram and player) and its selection (spectrograms, no players), and the Data page
(sounds in their words, the uploader taking sound files). One workspace for the module: seconds, no torch."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sound_clips import KINDS, write_clips
from streamlit.testing.v1 import AppTest

from sslapp.ingest.cache import read_cache
from sslapp.ingest.ingest import ingest
from sslapp.ingest.read import item_rows
from sslapp.ui.sound_view import COLOURS, spectrogram_png
from sslapp.workspace import open_workspace

PER_KIND = 3
SOUND_TYPES = {".wav", ".flac", ".ogg", ".oga", ".mp3"}


@pytest.fixture(scope="module")
def sound_root(tmp_path_factory):
    """9 short clips, 3 of each kind, ingested with their folders as labels, then 7 of them unlabelled
    again so the Label page has a queue; and a provisional map (MFCC statistics, no torch)."""
    from sslapp.cli.common import run_job_in_foreground

    base = tmp_path_factory.mktemp("sounds")
    write_clips(base / "clips", per_kind=PER_KIND)
    ws = open_workspace(base / "ws", create=True)
    report = ingest(ws, [base / "clips"], labels_from_dirs=True, workers=1)
    assert report["added"] == PER_KIND * len(KINDS) and not report["skipped"], report
    ws.store.remove_labels([r["id"] for r in ws.store.items()][2:])
    assert run_job_in_foreground(ws, "embed", {"provisional": True})["status"] == "done"
    return ws.root


@pytest.fixture
def sound_ws(sound_root, monkeypatch):
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(sound_root))
    return open_workspace(sound_root)


def run(at: AppTest) -> AppTest:
    at.run(timeout=60)
    assert not at.exception, [e.message for e in at.exception]
    return at


def _players(at: AppTest) -> list:
    return at.get("audio")


def test_a_spectrogram_is_the_cached_row_with_high_bands_on_top(sound_ws):
    items = sound_ws.store.items()
    rows = item_rows(sound_ws, items)
    cache = read_cache(sound_ws)
    assert all(np.array_equal(rows[r["id"]], cache[r["cache_index"]]) for r in items)
    row = np.zeros((64, 64), np.uint8)
    row[-1] = 255  # the highest band loud, the rest silent
    picture = np.asarray(Image.open(io.BytesIO(spectrogram_png(row, scale=2))))
    assert picture.shape == (128, 128, 3)
    assert (picture[:2] == COLOURS[255]).all() and (picture[2:] == COLOURS[0]).all()


def test_label_page_shows_the_spectrogram_plays_the_clip_and_offers_a_replay_key(sound_ws):
    ws = sound_ws
    at = run(AppTest.from_string("from sslapp.ui.pages import label\nlabel.render()\n"))
    players = _players(at)
    assert len(players) == 1 and players[0].proto.autoplay  # the current sound only, playing at once
    first_url = players[0].proto.url
    assert len(at.image) == len(ws.store.unlabeled_ids())  # its spectrogram, and each one up next
    assert any(c.value == "Space replays the clip" for c in at.caption)
    assert any("st-key-label_sound" in str(c.proto) or "label_sound" in str(c.proto)
               for c in at.get("flex_container"))
    assert any("sslapp replay key" in h.proto.body for h in at.get("html"))
    current = int(next(c.value for c in at.caption if c.value.startswith("#") and " · " in c.value)[1:].split(" ")[0])
    assert ws.store.item(current)["label"] is None
    button = at.button(key=f"label_{current}_class_{ws.store.class_id('chirp')}")
    assert button.label.endswith("chirp")
    button.click()
    run(at)
    assert ws.store.item(current)["label"] == "chirp"
    assert _players(at)[0].proto.url != first_url  # the next sound, playing at once too
    ws.store.remove_labels([current])


def test_explore_previews_a_clicked_sound_with_its_player(sound_ws):
    ws = sound_ws
    at = run(AppTest.from_string("from sslapp.ui.pages import explore\nexplore.render()\n"))
    assert any("first look from MFCC statistics" in m.value for m in at.markdown)
    assert not [t for t in at.toggle if t.key == "explore_closeup"]  # the map draws points, not pictures
    ids = [r["id"] for r in ws.store.items()]
    at.session_state["explore_selection"] = [ids[0]]
    run(at)
    assert len(at.image) == 1 and len(_players(at)) == 1 and not _players(at)[0].proto.autoplay
    assert at.button(key="explore_apply_label").label == "Label 1 selected"
    at.session_state["explore_selection"] = ids[:4]
    run(at)
    assert len(at.image) == 4 and not _players(at)  # the selection's spectrograms, as toggles
    assert at.button(key=f"explore_grid-t-{ids[1]}")


def test_data_page_speaks_of_sounds_and_takes_sound_files(sound_ws, tmp_path, monkeypatch):
    at = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    total = PER_KIND * len(KINDS)
    assert next(m.value for m in at.metric if m.label == "Sounds") == str(total)
    assert any(s.value == f"Sounds ({total})" for s in at.subheader)
    assert len(at.image) == total and not _players(at)  # a page of spectrograms, no players
    words = " ".join(c.value for c in (*at.caption, *at.markdown))
    assert "exact copies are already dropped when sounds are added" in words and "images" not in words
    uploader = next(u for u in at.get("file_uploader") if "or zip archives" in u.proto.label)
    assert uploader.proto.label.startswith("Sounds (") and SOUND_TYPES <= set(uploader.proto.type)
    assert ".png" not in uploader.proto.type and ".csv" not in uploader.proto.type

    monkeypatch.setenv("SSLAPP_WORKSPACE", str(tmp_path / "empty"))
    at = run(AppTest.from_string("from sslapp.ui.pages import data\ndata.render()\n"))
    uploader = next(u for u in at.get("file_uploader") if "or zip archives" in u.proto.label)
    assert SOUND_TYPES | {".png", ".csv", ".zip"} <= set(uploader.proto.type)
    assert any(e.proto.label == "Add images, texts or sounds" for e in at.expander)
