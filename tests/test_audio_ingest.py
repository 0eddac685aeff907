"""Sounds behind the item contract (issue 21): WAV, FLAC, OGG and MP3 into real workspaces, mono at 16 kHz;
a long recording becoming windows that know their file and start; each bad file (a text file named .wav, a
truncated WAV, a zero-length file, an empty one) reported with its reason and nothing stored lost; the
numpy front end (resampling, log-mel) and the MFCC statistics, in numpy and as the torch encoder."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import soundfile as sf
from sound_clips import clip, write_clips

from sslapp.ingest.cache import read_cache
from sslapp.ingest.ingest import ingest
from sslapp.modalities import MODALITY_SETTING, ModalityError, get_modality, preview_file
from sslapp.modalities.audio import frontend as fe
from sslapp.modalities.audio.quick import dct_matrix, mfcc_contour, mfcc_stats

AUDIO = get_modality("audio")


def _labels(ws) -> dict[str, str]:
    return {r["item_source"]: r["class_name"] for r in ws.store.labels()}


def _sine(seconds: float, rate: int, hz: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.5 * np.sin(2 * np.pi * hz * t).astype(np.float32)
    return np.stack([wave, 0.5 * wave], 1) if channels == 2 else wave


def test_a_folder_of_wav_flac_ogg_mp3_and_a_zip_with_labels_from_folders(ws, tmp_path):
    folder = tmp_path / "calls"
    write_clips(folder, per_kind=2)  # 16 kHz and 8 kHz WAVs in whistle/, chirp/, knock/
    sf.write(folder / "whistle" / "w.flac", clip("whistle", 7), 16000)
    sf.write(folder / "chirp" / "c.ogg", clip("chirp", 7, 22050), 22050)
    sf.write(folder / "knock" / "k.mp3", clip("knock", 7, 44100), 44100, format="MP3")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as zf:
        zf.write(folder / "chirp" / "chirp_0.wav", "chirp/copy.wav")  # a copy: merged as a duplicate
    report = ingest(ws, [folder, tmp_path / "more.zip"], labels_from_dirs=True, base=str(tmp_path))
    assert ws.store.get_setting(MODALITY_SETTING) == "audio"
    assert report["added"] == 9 and report["duplicates"] == 1 and report["skipped"] == []
    assert ws.cache_size == fe.MELS  # a sound workspace's cache is its log-mel picture, whatever was asked
    cache = read_cache(ws)
    assert cache.shape == (9, fe.MELS, fe.FRAMES) and cache.dtype == np.uint8
    labels = _labels(ws)
    assert labels["calls/whistle/w.flac"] == "whistle" and labels["calls/knock/k.mp3"] == "knock"
    assert labels["calls/chirp/c.ogg"] == "chirp" and len(labels) == 9
    for item in ws.store.items():  # each has its playable preview: the window at 16 kHz, mono
        wave, rate = sf.read(preview_file(ws.thumbs_dir, item["sha256"], ".wav"))
        assert rate == fe.RATE and wave.ndim == 1 and 0.3 < len(wave) / rate <= fe.WINDOW_SECONDS
    # resampled rows agree with what the front end makes of the same sound at 16 kHz
    row = {i["source"]: cache[i["cache_index"]] for i in ws.store.items()}["calls/chirp/chirp_1.wav"]  # 8 kHz
    direct = fe.to_row(fe.log_mel(clip("chirp", 1, 16000)))
    assert np.abs(row.astype(int) - direct.astype(int))[:40].mean() < 6  # below 4 kHz the two carry the same sound


def test_a_long_stereo_recording_becomes_windows_that_know_their_file_and_start(ws, tmp_path):
    long = tmp_path / "field.wav"
    hiss = 0.05 * np.random.default_rng(0).standard_normal(600 * 16000).astype(np.float32)
    sf.write(long, _sine(600.0, 16000) + hiss, 16000, subtype="PCM_16")  # a 10-minute file (no two windows alike)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, _sine(2.5, 44100, 880.0, channels=2), 44100, subtype="PCM_16")  # 44.1 kHz, 2 channels
    report = ingest(ws, [long, stereo], base=str(tmp_path))
    assert report["added"] == 586 + 2 and report["skipped"] == []
    notes = {n["source"]: n["note"] for n in report["notes"]}
    assert "600.0 s long: cut into 586 windows of 1.024 s" in notes["field.wav"]
    assert "2.5 s long: cut into 2 windows" in notes["stereo.wav"] and "0.45 s, under half a window" in notes["stereo.wav"]
    sources = {i["source"] for i in ws.store.items()}
    assert {"field.wav:0.000s", "field.wav:1.024s", "field.wav:599.040s", "stereo.wav:1.024s"} <= sources
    stereo_item = next(i for i in ws.store.items() if i["source"] == "stereo.wav:0.000s")
    assert (ws.root / stereo_item["original"]).read_bytes() == stereo.read_bytes()  # the file kept whole
    wave, rate = sf.read(preview_file(ws.thumbs_dir, stereo_item["sha256"], ".wav"))
    assert rate == 16000 and wave.ndim == 1 and len(wave) == fe.WINDOW  # mono, resampled, one window
    peak = np.argmax(np.abs(np.fft.rfft(wave)))
    assert abs(peak * rate / len(wave) - 880.0) < 2  # the tone is where it was


def test_each_bad_sound_file_is_reported_and_nothing_stored_is_lost(ws, tmp_path):
    good = write_clips(tmp_path / "good", per_kind=1, subfolders=False)
    assert ingest(ws, good)["added"] == 3
    before = (ws.store.count_items(), np.array(read_cache(ws)))
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "notes.wav").write_text("these are my notes, not a recording")
    (bad / "empty.wav").write_bytes(b"")
    sf.write(bad / "full.wav", clip("whistle", 3), 16000, subtype="PCM_16")
    data = (bad / "full.wav").read_bytes()
    (bad / "zero.wav").write_bytes(data[:44])  # a header and no samples
    (bad / "cut.wav").write_bytes(data[:44 + 2 * 3000])  # the header promises more than is there
    (bad / "full.wav").unlink()
    report = ingest(ws, [bad], base=str(tmp_path))
    reasons = {s["source"]: s["reason"] for s in report["skipped"]}
    assert reasons["bad/notes.wav"].startswith("not-audio: not a sound file") and "WAV, FLAC, OGG and MP3" in \
        reasons["bad/notes.wav"]
    assert reasons["bad/empty.wav"] == "empty: the file is empty (0 bytes)"
    assert reasons["bad/zero.wav"] == "zero-length: the file holds no sound (0 samples)"
    assert report["added"] == 1  # the truncated file keeps what is there, and the report says so
    [note] = [n["note"] for n in report["notes"] if n["source"] == "bad/cut.wav"]
    assert note.startswith("truncated: the header promises") and "0.19 s" in note
    assert ws.store.count_items() == before[0] + 1
    assert np.array_equal(read_cache(ws)[:before[0]], before[1])


def test_a_sound_workspace_refuses_images_and_an_image_workspace_refuses_sounds(tmp_path):
    from PIL import Image

    from sslapp.workspace import open_workspace

    sounds = open_workspace(tmp_path / "sounds")
    ingest(sounds, write_clips(tmp_path / "clips", per_kind=1, subfolders=False))
    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    with pytest.raises(ModalityError, match="holds sounds"):
        ingest(sounds, [tmp_path / "photo.png"], modality="image")
    images = open_workspace(tmp_path / "images")
    ingest(images, [tmp_path / "photo.png"])
    with pytest.raises(ModalityError):
        ingest(images, [tmp_path / "clips"])
    assert images.store.count_items() == 1 and sounds.store.count_items() == 3


def test_resampling_keeps_a_tone_and_windows_follow_the_half_window_rule():
    wave = _sine(1.0, 44100, 1000.0)
    out = fe.resample(wave, 44100)
    assert len(out) == 16000
    freq = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(freq - 1000.0) < 2 and abs(np.abs(out).max() - 0.5) < 0.02
    assert fe.window_starts(0.3) == [0.0]
    assert fe.window_starts(1.5) == [0.0]  # 0.476 s left: under half a window
    assert len(fe.window_starts(1.6)) == 2 and len(fe.window_starts(10.0)) == 10
    db = fe.log_mel(_sine(1.0, 16000, 1000.0))
    assert db.shape == (fe.MELS, fe.FRAMES)
    band = np.argmax(db[:, 10])  # the 1 kHz tone lights its own mel band, at about -9 dB (0.5 amplitude)
    centres = fe._mel_to_hz(np.linspace(fe._hz_to_mel(fe.F_MIN), fe._hz_to_mel(fe.F_MAX), fe.MELS + 2))[1:-1]
    assert abs(centres[band] - 1000.0) < 80 and -14 < db[band, 10] < -6
    assert (fe.to_row(fe.log_mel(np.zeros(100, np.float32))) == 0).all()  # silence is the floor


def test_the_mfcc_encoder_matches_the_numpy_statistics_and_contour():
    import torch

    from sslapp.models.mfcc import MFCCStats
    from sslapp.models.normalise import imagenet_normalise

    rows = np.stack([fe.to_row(fe.log_mel(clip(k, i))) for k in ("whistle", "knock") for i in range(3)])
    module = MFCCStats().eval()
    with torch.inference_mode():
        ours = module(imagenet_normalise(torch.from_numpy(AUDIO.model_input(rows)))).numpy()
    np.testing.assert_allclose(ours, np.concatenate([mfcc_stats(rows), mfcc_contour(rows)], 1), rtol=1e-4, atol=1e-3)
    contour = mfcc_contour(rows).reshape(len(rows), 20, 10)
    active = np.flatnonzero(fe.row_db(rows[0]).max(0) >= fe.row_db(rows[0]).max() - 50)
    c0 = dct_matrix()[0] @ fe.row_db(rows[0])  # the first MFCC, frame by frame
    assert abs(contour[0, 0, 0] - c0[active[0]]) < 1e-3 and abs(contour[0, 0, -1] - c0[active[-1]]) < 1e-3


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 64100])
def test_windows_read_a_block_at_a_time_are_those_of_the_whole_recording(rate):
    """Ingest reads a recording a block at a time; predict_onnx.py cuts the whole signal (`window_rows`):
    the windows must be the same, sample for sample, at any rate (64.1 kHz: blocks end where a window's
    gap begins)."""
    import io

    wave = (0.3 * np.random.default_rng(rate).standard_normal(int(5.3 * rate))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype="FLOAT")
    items = AUDIO.decode(buf.getvalue(), 64, {"ext": ".wav"})
    whole = fe.window_rows(sf.read(io.BytesIO(buf.getvalue()), dtype="float32")[0], rate)
    assert [d.part for d in items] == [f"{start:.3f}s" for start, _, _ in whole] and len(items) == 5
    assert all(np.array_equal(d.row, row) for d, (_, _, row) in zip(items, whole, strict=True))
    assert items[0].info["seconds"] == pytest.approx(5.3, abs=1e-3)


def test_a_sound_workspace_keeps_its_cache_size_and_refuses_a_full_fine_tune(ws, tmp_path):
    from sslapp.workspace import open_workspace

    ingest(ws, write_clips(tmp_path / "clips", per_kind=1, subfolders=False))
    again = open_workspace(ws.root, cache_size=32)  # e.g. the benchmark's default: means nothing to sounds
    assert again.cache_size == fe.MELS and read_cache(again).shape[1:] == (fe.MELS, fe.FRAMES)
    assert not AUDIO.full_finetune  # the image fine-tune's flips and colours are wrong for spectrograms
