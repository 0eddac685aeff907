"""Export round trip on a real tiny workspace: the app, TorchScript and ONNX give the same answers.

One full export (`--all`, made once: tests/conftest.py `export_built`) serves most tests; the default
export and the quantized ones are checked against it. ONNX export of a ResNet takes seconds.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import runpy
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _export_ws import CLASSES, app_probs, export_cli, total_bytes

from sslapp.export.labels import LABEL_FILES

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture
def built(export_built):
    """The workspace and its full export: every format, the encoder alone too, and the ImageFolder tree
    (made once for this file and test_export_options.py: tests/conftest.py)."""
    return export_built


def _app_probs(built) -> dict[str, np.ndarray]:
    return app_probs(built["ws"], built["model"])


def test_app_torchscript_onnx_agree(built):
    import torch

    from sslapp.export.predict import predict

    root, out = built["root"], built["out"]
    app = _app_probs(built)
    errors: list = []
    results = predict(out, [root / "images", root / "unlabelled"], top_k=3, errors=errors)
    assert errors == []
    assert len(results) == len(app) == 16
    ts = torch.jit.load(str(out / "classifier.torchscript.pt"))
    from sslapp.ingest.cache import read_cache

    ws = built["ws"]
    by_source = {it["source"]: it for it in ws.store.items()}
    cache = read_cache(ws)
    for r in results:
        expected = app[r["path"]]
        onnx_p = np.array([dict(r["top_k"])[c] for c in CLASSES])
        assert np.abs(onnx_p - expected).max() < 1e-4, r["path"]
        assert r["class"] == CLASSES[int(expected.argmax())]
        assert abs(r["confidence"] - expected.max()) < 1e-4
        row = torch.from_numpy(np.asarray(cache[[by_source[r["path"]]["cache_index"]]])).permute(0, 3, 1, 2)
        with torch.no_grad():
            ts_p = ts(row.float() / 255).numpy()[0]
        assert np.abs(ts_p - expected).max() < 1e-4
    # the stored app predictions name the same classes as the export
    stored = {p["item_id"]: p for p in ws.store.predictions()}
    for source, item in by_source.items():
        assert stored[item["id"]]["class_name"] == CLASSES[int(app[source].argmax())]
    # dynamic batch: one image at a time gives the same numbers as the batch
    one = predict(out, [results[0]["path"]], top_k=1)
    assert abs(one[0]["confidence"] - results[0]["confidence"]) < 1e-6 and len(one[0]["top_k"]) == 1


def test_predict_preprocessing_is_the_apps(built):
    """Same uint8 array as the cache row for the same file: PNG, big EXIF-rotated JPEG, RGBA, GIF."""
    from sslapp.export.predict import Predictor
    from sslapp.ingest.cache import read_cache

    ws, root = built["ws"], built["root"]
    cache = read_cache(ws)
    by_source = {it["source"]: it["cache_index"] for it in ws.store.items()}
    decoded = dict(Predictor(built["out"]).decoded([root / "images", root / "unlabelled"]))
    assert len(decoded) == 16
    for name, array in decoded.items():
        assert array.dtype == np.uint8 and array.shape == (24, 24, 3)
        assert np.array_equal(array, cache[by_source[name]]), name
    # the standalone snippet (onnxruntime + PIL + numpy) computes the same pixels
    snippet = runpy.run_path(str(built["out"] / "predict_onnx.py"), run_name="snippet")
    for name, array in decoded.items():
        x = snippet["load"](name)
        assert np.array_equal(np.rint(x * 255).astype(np.uint8).transpose(1, 2, 0), array), name


def test_snippet_runs_alone_and_matches_predict(built):
    from sslapp.export.predict import predict

    files = [str(p) for paths in built["images"].values() for p in paths][:6]
    proc = subprocess.run([sys.executable, str(built["out"] / "predict_onnx.py"), *files], env=ENV,
                          capture_output=True, text=True, timeout=120, cwd=built["root"])
    assert proc.returncode == 0, proc.stderr
    lines = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    expected = {r["path"]: r for r in predict(built["out"], files)}
    assert len(lines) == 6
    for path, cls, conf in lines:
        assert expected[path]["class"] == cls
        assert abs(expected[path]["confidence"] - float(conf)) < 1e-4


def test_predict_cli_imports_no_torch(built):
    """`sslapp predict` (the real CLI entry, all subcommands registered) never imports torch."""
    bad = built["root"] / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code = ("import sys, json; from sslapp.cli import main; "
            f"rc = main(['predict', {str(built['out'])!r}, {str(built['root'] / 'images')!r}, {str(bad)!r}, "
            "'--json', '--top-k', '2']); "
            "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert len(out) == 12 and all(set(r) == {"path", "class", "confidence", "top_k"} for r in out)
    assert all(len(r["top_k"]) == 2 and r["class"] in CLASSES for r in out)
    assert "broken.jpg" in proc.stderr and "skipped" in proc.stderr
    # nothing predictable: non-zero exit
    proc = subprocess.run([sys.executable, "-m", "sslapp", "predict", str(built["out"]), str(bad)], env=ENV,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "no image could be classified" in proc.stderr


def test_safetensors_reload_gives_same_outputs(built):
    import torch
    from safetensors import safe_open

    from sslapp.finetune.model import load_classifier
    from sslapp.models.encoder import load_encoder

    out, model = built["out"], built["model"]
    x = torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(1))
    clf = load_classifier(out / "classifier.safetensors")
    enc = load_encoder(out / "encoder.safetensors")
    assert clf.classes == CLASSES
    with torch.no_grad():
        assert torch.allclose(clf(x), model(x), atol=1e-6)
        assert torch.allclose(enc(x), model.encoder(x), atol=1e-5)
    for name in ("classifier.safetensors", "encoder.safetensors"):
        with safe_open(str(out / name), framework="pt") as f:
            assert "sslapp_encoder" in f.metadata()


def test_torchscript_loads_in_fresh_process(built, tmp_path):
    import torch

    x = torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(2))
    np.save(tmp_path / "x.npy", x.numpy())
    code = ("import sys, numpy as np, torch; "
            "m = torch.jit.load(sys.argv[1]); e = torch.jit.load(sys.argv[2]); x = torch.from_numpy(np.load(sys.argv[3])); "
            "np.save(sys.argv[4], m(x).detach().numpy()); np.save(sys.argv[5], e(x).detach().numpy())")
    out = built["out"]
    proc = subprocess.run([sys.executable, "-c", code, str(out / "classifier.torchscript.pt"),
                           str(out / "encoder.torchscript.pt"), str(tmp_path / "x.npy"), str(tmp_path / "p.npy"),
                           str(tmp_path / "f.npy")], env=ENV, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    with torch.no_grad():
        assert np.abs(np.load(tmp_path / "p.npy") - built["model"](x).numpy()).max() < 1e-5
        assert np.abs(np.load(tmp_path / "f.npy") - built["model"].encoder(x).numpy()).max() < 1e-4


def test_model_json_and_labels_complete(built):
    from sslapp import __version__
    from sslapp.export.manifest import read_manifest

    out = built["out"]
    m = read_manifest(out)
    assert m == {k: v for k, v in built["manifest"].items() if k not in ("path", "listing")}  # the CLI adds where it wrote and what is there
    assert m["classes"] == CLASSES and m["kind"] == "classifier" and m["sslapp_version"] == __version__
    assert m["input"]["size"] == 24 and m["input"]["shape"] == ["batch", 3, 24, 24]
    assert m["normalisation"]["mean"] == [0.485, 0.456, 0.406] and m["normalisation"]["resize_to"] == 32
    assert m["preprocessing"]["resample"] == "bicubic" and m["preprocessing"]["jpeg_draft_min_side"] == 48
    from sslapp.modalities.image import decode

    canonical = decode.describe(24)["steps"]  # stated by the module that does it, not restated
    assert m["preprocessing"]["steps"][:len(canonical)] == canonical
    assert m["labels"]["propagate_threshold"] == 0.9
    assert m["backbone"] == "resnet18-std" and m["ssl_method"] == "simclr"
    assert m["estimated_accuracy"]["mean"] == 0.8 and m["estimated_accuracy"]["std"] == 0.05
    assert m["training_data"]["items_in_workspace"] == 16 and m["training_data"]["n_labels"] == 12
    assert m["training_data"]["pretraining"] == {"method": "simclr", "epochs": 1}
    assert m["created_at"].startswith("20")
    expected_files = {"classifier.onnx", "classifier.torchscript.pt", "classifier.safetensors", "encoder.onnx",
                      "encoder.torchscript.pt", "encoder.safetensors", *LABEL_FILES,
                      "predict_onnx.py", "README.md"}
    assert set(m["files"]) == expected_files
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk - expected_files == {p for p in on_disk if p.startswith("imagefolder/")} | {"model.json"}
    check = m["verification"]  # every model file, safetensors included, on real cached images
    assert check["inputs"] == "workspace images" and check["note"] is None and check["n_inputs"] == 3
    assert set(check["max_abs_diff"]) == {f for f in expected_files if f.endswith((".onnx", ".pt", ".safetensors"))}
    assert m["formats"] == ["onnx", "torchscript", "safetensors"] and m["parts"] == ["classifier", "encoder"]
    assert m["left_out"]["files"] == [] and m["quantized"] is None and m["predict_model"] == "classifier.onnx"
    assert all(v < 1e-4 for v in check["max_abs_diff"].values())
    assert not [p for p in on_disk if p.endswith((".pkl", ".pth", ".pickle"))]
    # labels: user, imported and (confident only) propagated rows
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert rows == [{k: "" if v is None else str(v) for k, v in r.items()}
                    for r in json.loads((out / "labels.json").read_text())]
    sources = [r["source"] for r in rows]
    assert sources.count("user") == 1 and sources.count("imported") == 11 and sources.count("propagated") == 1
    prop = next(r for r in rows if r["source"] == "propagated")
    assert float(prop["confidence"]) >= 0.9 and "unlabelled" in prop["path"]
    user = next(r for r in rows if r["source"] == "user")
    assert user["class"] == "dog" and user["path"].endswith("cat0.png")
    # the same rows for Label Studio (the machine guess as a prediction) and COCO (with its score)
    tasks = json.loads((out / "labels.label-studio.json").read_text())
    assert [t["data"]["image"] for t in tasks] == [r["path"] for r in rows]
    guessed = [t for t in tasks if t["predictions"]]
    assert len(guessed) == 1 and not guessed[0]["annotations"] and guessed[0]["data"]["image"] == prop["path"]
    assert all(t["annotations"][0]["result"][0]["type"] == "choices" for t in tasks if not t["predictions"])
    coco = json.loads((out / "labels.coco.json").read_text())
    names = {c["id"]: c["name"] for c in coco["categories"]}
    assert sorted(names.values()) == CLASSES and len(coco["images"]) == len(coco["annotations"]) == len(rows)
    assert [a["score"] for a in coco["annotations"] if a["source"] == "propagated"] == [float(prop["confidence"])]
    # ImageFolder: the 12 human labels, by class, copied from the originals
    tree = {p.parent.name: [] for p in (out / "imagefolder").rglob("*.*")}
    for p in (out / "imagefolder").rglob("*.*"):
        tree[p.parent.name].append(p.name)
    assert sorted(tree) == CLASSES and sum(map(len, tree.values())) == 12 and len(tree["dog"]) == 5
    readme = (out / "README.md").read_text()
    assert "80.0% (95% interval 60-92%)" in readme and "±" not in readme and "predict_onnx.py" in readme and "ort.InferenceSession" in readme
    assert "3 cached workspace images" in readme and "confidence >= 0.9" in readme and "$" not in readme
    assert "It is class-balanced" in readme and "very unbalanced (the largest class has 4.0 times" in readme
    assert m["estimated_accuracy"]["measure"].startswith("class-balanced") and m["estimated_accuracy"]["unbalanced"]
    assert "Every model format was exported" in readme and "`--quantize fp16|int8` away" in readme


def test_default_export_is_what_runs_the_model(built, tmp_path):
    """No options: the ONNX classifier and its safetensors weights only, a third of the full export, and
    `predict` on it still gives the app's probabilities."""
    from sslapp.export.predict import predict

    m = export_cli([str(built["ws"].root), str(tmp_path / "out")])
    assert set(m["files"]) == {"classifier.onnx", "classifier.safetensors", *LABEL_FILES,
                               "predict_onnx.py", "README.md"}
    assert {p.name for p in (tmp_path / "out").iterdir()} == {*m["files"], "model.json"}
    assert m["formats"] == ["onnx", "safetensors"] and m["parts"] == ["classifier"] and m["quantized"] is None
    assert m["left_out"]["files"] == ["classifier.torchscript.pt", "encoder.onnx", "encoder.torchscript.pt",
                                      "encoder.safetensors"] and "--all" in m["left_out"]["how"]
    full = total_bytes(built["manifest"])
    assert total_bytes(m) < 0.4 * full  # 2 model files of 6
    assert set(m["verification"]["max_abs_diff"]) == {"classifier.onnx", "classifier.safetensors"}
    app = _app_probs(built)
    results = predict(tmp_path / "out", [built["root"] / "images", built["root"] / "unlabelled"], top_k=3)
    assert len(results) == 16
    for r in results:
        got = np.array([dict(r["top_k"])[c] for c in CLASSES])
        assert np.abs(got - app[r["path"]]).max() < 1e-4, r["path"]
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "Not in this export" in readme and "`encoder.onnx`" in readme and "--all" in readme
    assert "$" not in readme and "--model int8" not in readme and "--model fp16" not in readme


def test_existing_out_dir_needs_overwrite(built, tmp_path, capsys):
    from sslapp.cli import main

    ws_path = str(built["ws"].root)
    target = tmp_path / "exp"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["export", ws_path, str(target), "--formats", "safetensors"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # --overwrite never wipes a folder that is not an export
    assert main(["export", ws_path, str(target), "--formats", "safetensors", "--overwrite"]) == 2
    assert "not an sslapp export" in capsys.readouterr().err and (target / "keep.txt").exists()
    shutil.rmtree(target)
    assert main(["export", ws_path, str(target), "--formats", "safetensors", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["formats"] == ["safetensors"] and "classifier.onnx" not in first["files"]
    # the listing is what the folder holds (model.json too), as the text line says
    assert first["listing"]["files"] == sorted(p.name for p in target.iterdir()) and "model.json" in first["listing"]["files"]
    assert main(["export", ws_path, str(target), "--formats", "safetensors", "--overwrite", "--zip"]) == 0
    said = capsys.readouterr()
    assert f"{len(list(target.iterdir()))} files (" in said.out + said.err, said
    assert (target / "model.json").exists() and target.with_suffix(".zip").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # safetensors-only export cannot serve `predict`: clear message
    assert main(["predict", str(target), str(built["root"] / "images")]) == 2
    assert "without ONNX" in capsys.readouterr().err


def test_incomplete_or_foreign_export_is_refused(built, tmp_path, capsys):
    from sslapp.cli import main
    from sslapp.export.manifest import ExportError
    from sslapp.export.predict import predict

    copy = tmp_path / "copy"
    shutil.copytree(built["out"], copy, ignore=shutil.ignore_patterns("*.pt", "*.safetensors", "imagefolder"))
    images = [built["root"] / "images"]
    with pytest.raises(ExportError, match="missing: .*classifier.safetensors"):
        predict(copy, images)
    m = json.loads((copy / "model.json").read_text())
    m["files"] = {k: v for k, v in m["files"].items() if not k.endswith((".pt", ".safetensors"))}
    (copy / "model.json").write_text(json.dumps(m))
    assert len(predict(copy, images)) == 12  # ONNX alone is enough for predict
    with open(copy / "classifier.onnx", "r+b") as f:  # one flipped byte: same size, other content
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(ExportError, match="damaged"):
        predict(copy, images)
    with open(copy / "classifier.onnx", "r+b") as f:  # truncated by a half copy
        f.truncate(1000)
    with pytest.raises(ExportError, match="wrong size"):
        predict(copy, images)
    (copy / "model.json").write_text(json.dumps({**m, "format_version": 99, "sslapp_version": "9.0"}))
    with pytest.raises(ExportError, match="format v99"):
        predict(copy, images)
    (copy / "model.json").unlink()
    assert main(["predict", str(copy), str(images[0])]) == 2
    assert "no model.json" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "nothing"), str(images[0])]) == 2
    assert "not a folder" in capsys.readouterr().err


def _limit_file_size(limit: int):
    old_limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, as a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old_limit[1]))

    def restore():
        resource.setrlimit(resource.RLIMIT_FSIZE, old_limit)
        signal.signal(signal.SIGXFSZ, old_handler)
    return restore


def test_full_disk_leaves_no_complete_looking_export(built, tmp_path, capsys):
    from sslapp.cli import main
    from sslapp.export.export import export_workspace

    ws = built["ws"]
    target = tmp_path / "exp"
    previous = tmp_path / "previous"
    export_workspace(ws, previous, formats="safetensors")
    before = {p.name: p.read_bytes() for p in previous.iterdir() if p.suffix in (".json", ".csv")}
    restore = _limit_file_size(2 * 1024 * 1024)  # every model file is ~45 MB
    try:
        with pytest.raises(OSError):  # torch.jit.save to a path would abort the whole process here
            export_workspace(ws, target, formats="torchscript")
        rc_over = main(["export", str(ws.root), str(previous), "--overwrite"])
    finally:
        restore()
    err = capsys.readouterr().err
    assert rc_over == 1 and "File too large" in err and "Free some disk space" in err
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["previous"]  # no partial folders left
    # the earlier export is intact and still valid
    from sslapp.export.manifest import read_manifest

    assert read_manifest(previous)["formats"] == ["safetensors"]
    assert before == {p.name: p.read_bytes() for p in previous.iterdir() if p.suffix in (".json", ".csv")}


def test_unreadable_cache_check_says_it_used_noise(built, tmp_path, monkeypatch):
    """A damaged cache does not block an export, but the manifest, card and log say what was checked."""
    from sslapp.export.export import export_workspace
    from sslapp.ingest import cache

    def damaged(ws):
        raise cache.CacheError("the cache was damaged")

    monkeypatch.setattr(cache, "read_cache", damaged)
    said: list[str] = []
    m = export_workspace(built["ws"], tmp_path / "out", formats="safetensors", progress=said.append)
    check = m["verification"]
    assert check["inputs"] == "random noise" and "CacheError: the cache was damaged" in check["note"]
    assert set(check["max_abs_diff"]) == {"classifier.safetensors"}  # the encoder alone is opt-in
    assert any(s.startswith("warning:") and "random noise" in s for s in said)
    assert "random-noise inputs, not workspace images" in (tmp_path / "out" / "README.md").read_text()


def test_unfaithful_safetensors_fails_the_export(built, tmp_path, monkeypatch):
    """The safetensors file is loaded back and checked like the others: a wrong one stops the export."""
    import copy

    import torch

    from sslapp.export import export as export_mod
    from sslapp.export.export import export_workspace
    from sslapp.export.manifest import ExportError

    real = export_mod.write_safetensors

    def off_by_one(module, path):
        bad = copy.deepcopy(module)
        with torch.no_grad():
            next(bad.parameters()).add_(1.0)
        real(bad, path)

    monkeypatch.setattr(export_mod, "write_safetensors", off_by_one)
    with pytest.raises(ExportError, match="classifier.safetensors disagrees with the torch model"):
        export_workspace(built["ws"], tmp_path / "out", formats="safetensors")
    assert list(tmp_path.iterdir()) == []  # no partial folder left
