"""AppTest of the Export page on a real workspace, with a real worker (a thread) running the export job."""

from __future__ import annotations

import time

from _export_ws import CLASSES, add_classifier
from in_process_worker import start_worker_thread
from streamlit.testing.v1 import AppTest

from sslapp.jobs.launcher import worker_alive

SCRIPT = "from sslapp.ui.pages import export\nexport.render()\n"


def _texts(at: AppTest) -> str:
    parts = [e.value for kind in ("warning", "info", "success", "error", "caption", "markdown")
             for e in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def test_export_page(export_base, tmp_path, monkeypatch):
    ws, _ = export_base.copy(tmp_path, with_classifier=False)
    monkeypatch.setenv("SSLAPP_WORKSPACE", str(ws.root))
    at = AppTest.from_string(SCRIPT, default_timeout=60).run()
    assert not at.exception
    # no classifier: the encoder alone is offered, with a clear reason
    assert "no fine-tuned classifier" in _texts(at)
    assert at.button[0].label == "Export the encoder only"

    add_classifier(ws)
    at.run()
    assert not at.exception
    assert at.metric[0].value == "3" and at.metric[1].value == "80%" and at.metric[2].value == "60-92%"
    assert all(c in _texts(at) for c in CLASSES)
    # a real worker in this process (a thread, which has torch loaded already), for one job; the
    # page's ensure_worker finds it alive and launches no other
    worker = start_worker_thread(ws, idle_exit_s=60.0, max_jobs=1)
    assert worker_alive(ws)
    # the default is what runs the model; TorchScript, the encoder alone and a quantized copy are opt-in
    assert at.multiselect(key="export_formats").value == ["onnx", "safetensors"]
    assert at.checkbox(key="export_encoder_files").value is False and at.radio(key="export_quantize").value is None
    at.multiselect(key="export_formats").set_value(["onnx"])
    at.checkbox(key="export_imagefolder").check()
    at.radio(key="export_quantize").set_value("fp16")
    at.button[0].click().run()
    jobs = ws.store.jobs(kind="export")
    assert len(jobs) == 1 and jobs[0]["params"] == {"formats": ["onnx"], "imagefolder": True, "encoder_only": False,
                                                    "encoder_files": False, "quantize": "fp16"}
    try:
        deadline = time.monotonic() + 240
        while ws.store.job_status(jobs[0]["id"]) not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(1)
            at.run()
        job = ws.store.job(jobs[0]["id"])
        assert job["status"] == "done", job["error"]
        at.run()
        assert not at.exception
        assert "Export ready" in _texts(at)
        labels = [b.proto.label for b in at.get("download_button")]
        assert labels[0].startswith("Download everything (zip") and "classifier.onnx" in labels
        assert {"labels.csv", "labels.label-studio.json", "labels.coco.json"} <= set(labels)
        assert "classifier.fp16.onnx" in labels
        assert "picks the same class as the full model" in _texts(at) and "MB" in _texts(at)
        out = ws.root / job["result"]["path"]
        assert (out / "classifier.onnx").is_file() and (out / "imagefolder").is_dir()
        # the count the page gives is what the folder holds (model.json included; the tree as a folder)
        top = sorted(p.name for p in out.iterdir() if p.is_file())
        tree = sum(1 for p in (out / "imagefolder").rglob("*") if p.is_file())
        assert job["result"]["files"] == top and "model.json" in top and job["result"]["folders"] == {"imagefolder": tree}
        assert job["result"]["bytes"] == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        assert f"{len(top)} files, " in _texts(at) and f"`imagefolder/` with {tree} files" in _texts(at)
        assert not (out / "classifier.safetensors").exists() and not (out / "encoder.onnx").exists()
        assert (ws.root / job["result"]["zip"]).is_file()
        assert ws.store.latest_artifact("export")["path"] == job["result"]["path"]
    finally:
        worker.join(60)
    assert not worker.is_alive()
