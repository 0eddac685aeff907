"""Sound classifier export: a real sound workspace (labelled WAV calls of three kinds, tests/sound_clips.py,
and a 5 s recording cut into windows), MFCC statistics as its only start (cheap), its classifier trained
with `sslapp finetune`, exported with `sslapp export`. Then `sslapp predict` (no torch) and the export's own
predict_onnx.py (numpy, soundfile and onnxruntime, the app's front end copied in) on the same files must
give the app's probabilities within 1e-4, one result per window of the long recording, named as the
workspace names its sources; a file that is not a sound is reported and the others still classified.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sound_clips import KINDS, clip, write_clips

from sslapp.cli import main
from sslapp.export.labels import LABEL_FILES
from sslapp.modalities.audio.quick import MFCC_DIMS
from sslapp.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
CLASSES = sorted(KINDS)
K = str(len(CLASSES))  # --top-k: every class's probability
LONG_RATE = 22050  # resampled to 16 kHz, window by window
LONG_STARTS = ["0.000s", "1.024s", "2.048s", "3.072s", "4.096s"]  # 5 s: the last 0.9 s is a window of its own


def _cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    return code, out.getvalue()


def _long_recording(path: Path) -> Path:
    """5 s at 22.05 kHz, stereo: a whistle, silence, a knock and a chirp."""
    import soundfile as sf

    parts = [clip("whistle", 20, LONG_RATE), np.zeros(LONG_RATE // 2, np.float32), clip("knock", 21, LONG_RATE),
             clip("chirp", 22, LONG_RATE)]
    wave = np.concatenate(parts)
    wave = np.pad(wave, (0, 5 * LONG_RATE - len(wave)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.stack([wave, 0.5 * wave], axis=1), LONG_RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def sound_export(tmp_path_factory) -> dict:
    """The trained sound workspace and its default export (ONNX and safetensors)."""
    from sslapp.features.read import STARTS_SETTING

    root = tmp_path_factory.mktemp("sound-export")
    write_clips(root / "clips", per_kind=4)
    long = _long_recording(root / "recordings" / "long.wav")
    ws = open_workspace(root / "ws", create=True)
    ws.store.set_setting(STARTS_SETTING, ["mfcc"])  # the cheap start: no ImageNet network, no patch dictionary
    assert _cli("ingest", str(ws.root), str(root / "clips"), "--labels-from-dirs", "--workers", "1")[0] == 0
    assert _cli("ingest", str(ws.root), str(root / "recordings"), "--workers", "1")[0] == 0
    code, out = _cli("finetune", str(ws.root), "--json")
    assert code == 0 and json.loads(out)["classes"] == CLASSES, out
    code, out = _cli("export", str(ws.root), str(root / "out"), "--json")
    assert code == 0, out
    bad = root / "recordings" / "notes.wav"  # after ingest: a text file that claims to be a sound
    bad.write_text("not a sound, only words", encoding="utf-8")
    return {"root": root, "ws": ws, "out": root / "out", "manifest": json.loads(out), "long": long, "bad": bad}


def _app(ws) -> dict[str, np.ndarray]:
    """The app's probabilities for every item, by source: the encoder the classifier was trained on, run on the
    cached log-mel rows as the features service runs it (`model_input`), then the classifier's head."""
    import torch

    from sslapp.finetune.model import load_classifier
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities.audio import AUDIO
    from sslapp.models.encoder import load_encoder

    clf = ws.store.latest_artifact("classifier")
    enc = next(a for a in ws.store.artifacts("encoder") if a["id"] == clf["meta"]["encoder_artifact_id"])
    model, encoder = load_classifier(ws.root / clf["path"]), load_encoder(ws.root / enc["path"])
    items = ws.store.items()
    rows = np.asarray(read_cache(ws)[[it["cache_index"] for it in items]])
    with torch.no_grad():
        probs = model.on_features(encoder.eval()(torch.from_numpy(AUDIO.model_input(rows)))).numpy()
    return {it["source"]: p for it, p in zip(items, probs, strict=True)}


def _probs(result: dict) -> np.ndarray:
    return np.array([dict(result["top_k"])[c] for c in CLASSES])


def test_sound_export_model_json_and_card(sound_export):
    from sslapp.modalities.audio import AUDIO

    m, out = sound_export["manifest"], sound_export["out"]
    assert set(m["files"]) == {"classifier.onnx", "classifier.safetensors", "predict_onnx.py", "README.md",
                               *LABEL_FILES}
    assert m["modality"] == "audio" and m["kind"] == "classifier" and m["classes"] == CLASSES
    assert m["backbone"] == "mfcc" and m["feature_dim"] == MFCC_DIMS
    # the input is the modality's, and its size (what an image model's reader feeds) agrees with it
    assert m["input"] == {"name": "image", **AUDIO.input_spec(64), "size": 64}
    steps = AUDIO.preprocessing(64).pop("steps")
    assert m["preprocessing"]["steps"][:len(steps)] == steps and m["preprocessing"]["rate"] == 16000
    v = m["verification"]
    assert v["inputs"] == "workspace sounds" and v["n_inputs"] == 3 and v["note"] is None
    assert set(v["max_abs_diff"]) == {"classifier.onnx", "classifier.safetensors"}
    assert max(v["max_abs_diff"].values()) <= 1e-4
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "A sound classifier for 3 classes" in readme and "sslapp predict . call.wav recordings/ --json" in readme
    assert "pip install onnxruntime soundfile numpy" in readme and "python predict_onnx.py call.wav" in readme
    assert "3 cached workspace sounds" in readme and "`FILE:START`" in readme and "1.024 s windows" in readme
    assert "$" not in readme and "photo" not in readme and "RGB" not in readme
    # the script carries the app's front end: one definition, copied in, and nothing of sslapp imported
    script = (out / "predict_onnx.py").read_text(encoding="utf-8")
    from sslapp.modalities.audio import frontend

    assert "def window_rows(" in script and "import sslapp" not in script and "from sslapp" not in script
    assert Path(frontend.__file__).read_text(encoding="utf-8").split('"""\n\nfrom __future__ import annotations\n')[1] \
        .strip() in script


def test_sslapp_predict_on_sound_files_matches_the_app(sound_export):
    """The real CLI in a new process (no torch imported): every window of every workspace sound gives the
    app's probabilities and the finetune job's stored prediction; the long recording gives one result per
    window, named FILE:START as its items' sources; the text file named .wav is reported."""
    root, out, ws = sound_export["root"], sound_export["out"], sound_export["ws"]
    code = ("import sys; from sslapp.cli import main; "
            f"rc = main(['predict', {str(out)!r}, {str(root / 'clips')!r}, {str(root / 'recordings')!r}, '--json', "
            f"'--top-k', {K!r}]); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    assert all(set(r) == {"path", "class", "confidence", "top_k"} for r in results)  # the images' shape
    long = str(sound_export["long"])
    assert [r["path"] for r in results if r["path"].startswith(long)] == [f"{long}:{s}" for s in LONG_STARTS]
    assert f"skipped {sound_export['bad']}: not-audio" in proc.stderr
    assert "17 sounds classified, 1 skipped" in proc.stderr  # 12 clips and 5 windows
    app = _app(ws)
    assert sorted(r["path"] for r in results) == sorted(app)  # each one an item of the workspace, by its source
    assert np.abs(np.stack([_probs(r) for r in results]) - np.stack([app[r["path"]] for r in results])).max() < 1e-4
    stored = {p["item_id"]: p for p in ws.store.predictions()}
    ids = {it["source"]: it["id"] for it in ws.store.items()}
    for r in results:
        assert r["class"] == stored[ids[r["path"]]]["class_name"], r["path"]
        assert abs(r["confidence"] - stored[ids[r["path"]]]["confidence"]) < 1e-4
    clips = [r for r in results if "/clips/" in r["path"]]
    assert np.mean([r["class"] == Path(r["path"]).parent.name for r in clips]) >= 0.75  # it learned something


def test_predict_onnx_py_needs_no_sslapp_and_matches_predict(sound_export):
    """The export's own script with onnxruntime, soundfile and numpy only gives `sslapp predict`'s
    probabilities, on WAV (8 and 16 kHz, stereo 22.05 kHz), FLAC and OGG files."""
    import soundfile as sf

    from sslapp.export.predict import predict

    root, out = sound_export["root"], sound_export["out"]
    new = root / "new"
    new.mkdir(exist_ok=True)
    sf.write(new / "chirp.flac", clip("chirp", 30), 16000)
    sf.write(new / "knock.ogg", clip("knock", 31, 44100), 44100, format="OGG", subtype="VORBIS")
    files = [str(p) for p in (*sorted((root / "clips" / "whistle").iterdir())[:2], sound_export["long"],
                              new / "chirp.flac", new / "knock.ogg", sound_export["bad"])]
    runner = ("import runpy, sys\n"
              f"sys.argv = [{str(out / 'predict_onnx.py')!r}, '--json', *{files!r}]\n"
              "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\n"
              "except SystemExit as stop:\n    code = stop.code\n"
              "used = sorted(m for m in sys.modules if m.split('.')[0] in ('sslapp', 'torch', 'PIL'))\n"
              "assert not used, used\nsys.exit(code)\n")
    proc = subprocess.run([sys.executable, "-c", runner], env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout)
    errors: list[dict[str, str]] = []
    expected = predict(out, files, top_k=len(CLASSES), errors=errors)
    assert [r["path"] for r in got] == [r["path"] for r in expected]
    assert [r["path"] for r in got][2:7] == [f"{sound_export['long']}:{s}" for s in LONG_STARTS]
    probs = np.array([[r["probabilities"][c] for c in CLASSES] for r in got])
    assert np.abs(probs - np.stack([_probs(r) for r in expected])).max() < 1e-4
    assert [r["class"] for r in got] == [r["class"] for r in expected]
    assert f"skipped {sound_export['bad']}: not-audio" in proc.stderr
    assert [e["path"] for e in errors] == [str(sound_export["bad"])] and errors[0]["reason"].startswith("not-audio")


def test_every_format_quantized_and_refusals(sound_export, capsys):
    """`--all --quantize fp16`: TorchScript and the encoder alone too, each checked on cached sounds; the
    fp16 copy runs through `sslapp predict --model fp16`; class folders are not offered for sounds."""
    from sslapp.export.manifest import ExportError
    from sslapp.export.predict import Predictor, predict

    root, ws = sound_export["root"], sound_export["ws"]
    code, printed = _cli("export", str(ws.root), str(root / "every"), "--all", "--quantize", "fp16", "--json")
    assert code == 0, printed
    m = json.loads(printed)
    assert {"classifier.torchscript.pt", "encoder.onnx", "encoder.safetensors", "classifier.fp16.onnx"} <= set(m["files"])
    assert max(m["verification"]["max_abs_diff"].values()) <= 1e-4 and m["verification"]["inputs"] == "workspace sounds"
    q = m["quantized"]
    assert q["inputs"] == "workspace sounds" and q["n_images"] == 17 and q["top1_agreement"] >= 0.9
    readme = (root / "every" / "README.md").read_text(encoding="utf-8")
    assert "sslapp predict . call.wav --model fp16" in readme and "cached workspace sounds" in readme
    full = predict(root / "every", [sound_export["long"]], top_k=len(CLASSES))
    half = predict(root / "every", [sound_export["long"]], top_k=len(CLASSES), model="fp16")
    assert len(half) == 5 and np.abs(np.stack([_probs(r) for r in half]) - np.stack([_probs(r) for r in full])).max() < 0.01

    capsys.readouterr()
    assert main(["export", str(ws.root), str(root / "refused"), "--imagefolder"]) == 2
    err = capsys.readouterr().err
    assert "a sound classifier export does not offer --imagefolder" in err and not (root / "refused").exists()
    with pytest.raises(ExportError, match="classifies sounds, not images"):
        Predictor(sound_export["out"])  # the image reader on a sound export
    code, _ = _cli("predict", str(sound_export["out"]), str(sound_export["long"]), "--text-column", "text")
    assert code == 2  # a table option on a sound export


def test_export_and_predict_refuse_inputs_that_do_not_fit(sound_export, tmp_path):
    """An export whose model.json describes another front end is refused by `sslapp predict` (its own
    predict_onnx.py still works), and an encoder whose picture side is not the log-mel picture's is refused
    at export."""
    import shutil

    from sslapp.export.manifest import ExportError
    from sslapp.export.model_json import model_input
    from sslapp.export.predict import open_predictor
    from sslapp.modalities.audio import AUDIO

    other = tmp_path / "other"
    shutil.copytree(sound_export["out"], other)
    manifest = json.loads((other / "model.json").read_text(encoding="utf-8"))
    manifest["preprocessing"]["hop"] = 128
    (other / "model.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ExportError, match=r"sound front end differs from this sslapp's \(hop\)"):
        open_predictor(other)
    assert model_input(AUDIO, 64)["size"] == 64
    with pytest.raises(ExportError, match="takes 32 x 32 px pictures, but a sound is fed to the model as 64 x 64"):
        model_input(AUDIO, 32)
