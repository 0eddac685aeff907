"""The Export page: what would be exported, the export button (a worker job), and the downloads."""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from sslapp.export.labels import LABEL_FILES, workspace_label_text
from sslapp.export.manifest import DEFAULT_FORMATS, FORMATS, MODEL_FILES, QUANTIZE
from sslapp.jobs.launcher import ensure_worker
from sslapp.modalities import Modality, export_refusal, workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import job_status_line, label_counts, labels_changed, require_workspace
from sslapp.words import count
from sslapp.workspace import Workspace

ACTIVE = ACTIVE_JOB_STATES
FORMAT_NAMES = {"onnx": "ONNX (onnxruntime, any language)", "torchscript": "TorchScript (PyTorch, no sslapp)",
                "safetensors": "safetensors weights (sslapp's model classes)"}
QUANTIZE_NAMES = {None: "no", "fp16": "fp16 (half the size, near-identical)",
                  "int8": "int8 (a quarter of the size; check its agreement)"}
# what `sslapp predict` makes of a file that holds many items, by modality (see `Modality.one_item_per_file`)
PARTS = {"text": "; a table's rows come out as FILE:ROW",
         "audio": "; a longer recording comes out one 1-second window at a time"}


def _labels(n: int | None) -> str:
    """'1 label', '12 labels', or '? labels' where the count was not kept."""
    return "? labels" if n is None else count(int(n), "label")


def _model_status(ws: Workspace, modality: Modality) -> tuple[dict | None, dict | None]:
    """The latest classifier's figures, or what to do first; (classifier, encoder) artifacts, the encoder
    only where this kind of item exports one alone."""
    clf, enc = ws.store.latest_artifact("classifier"), ws.store.latest_artifact("encoder")
    if "encoder" not in modality.export_extras:
        enc = None
    if clf:
        meta = clf.get("meta") or {}
        cv = meta.get("cv") or {}
        classes = meta.get("classes") or []
        cols = st.columns(3)
        cols[0].metric("Classes", len(classes))
        if cv.get("mean") is not None:
            cols[1].metric("Estimated accuracy", f"{100 * cv['mean']:.0f}%",
                           help=("class-balanced (the mean of the per-class accuracies), " if
                                 str(cv.get("measure", "")).startswith("class-balanced") else "")
                           + f"cross-validated on {_labels(cv.get('n_labels'))}; not a test accuracy")
            if cv.get("low") is not None:
                cols[2].metric("95% interval", f"{100 * cv['low']:.0f}-{100 * cv['high']:.0f}%",
                               help="the same interval the Train page and the model card show")
        else:
            cols[1].metric("Estimated accuracy", "n/a", help="too few labels for an estimate")
        st.caption(f"Latest classifier ({meta.get('mode', 'trained')}, "
                   f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(clf['created_at']))}): "
                   + ", ".join(f"{c} ({_labels((meta.get('label_counts') or {}).get(c))})" for c in classes))
        if labels_changed(meta.get("label_counts") or {}, label_counts(ws)):
            st.warning("Labels changed since this classifier was trained: an export now holds the classifier as it "
                       "was trained, without them. Train again on the Train page to include them.",
                       icon=":material/history:")
    elif enc:
        st.warning("There is no fine-tuned classifier yet, so there is nothing to predict classes with. "
                   f"Label some {modality.plural} and train one on the Train page, or export the pretrained "
                   "encoder alone (a feature extractor for embeddings) now.")
    elif "encoder" in modality.export_extras:  # an encoder alone is something to export
        st.info("Nothing to export yet: pretrain an encoder on the Pretrain page, then label and train a "
                "classifier on the Train page.")
    else:
        st.info(f"Nothing to export yet: label some {modality.plural} and train a classifier on the Train page.")
    return clf, enc


def _downloads(ws: Workspace, result: dict, modality: Modality) -> None:
    root = ws.root / result["path"]
    if not (root / "model.json").is_file():
        st.warning(f"The export folder `{root}` is gone; export again.")
        return
    st.success(f"Export ready in `{root}`.")
    zip_path = ws.root / result["zip"] if result.get("zip") else None
    if zip_path is not None and zip_path.is_file():
        st.download_button(f"Download everything (zip, {zip_path.stat().st_size / 1e6:.1f} MB)",
                           data=lambda: zip_path.read_bytes(), file_name=zip_path.name, mime="application/zip",
                           type="primary", icon=":material/download:", on_click="ignore", key="dl_zip")
    part = "classifier" if result.get("kind") == "classifier" else "encoder"
    quantized = result.get("quantized")
    singles = [(MODEL_FILES[(part, "onnx")], "application/octet-stream")] + \
        ([(quantized["file"], "application/octet-stream")] if quantized else []) + \
        [("model.json", "application/json"), ("README.md", "text/markdown")]
    cols = st.columns(len(singles))
    for col, (name, mime) in zip(cols, singles, strict=True):
        path = root / name
        if path.is_file():
            col.download_button(name, data=lambda p=path: p.read_bytes(), file_name=name, mime=mime,
                                on_click="ignore", key=f"dl_{name}")
    labels = [name for name in LABEL_FILES if (root / name).is_file()]
    if labels:
        st.caption("The labels, with who gave each (machine guesses marked `propagated`), for other tools:")
        for col, name in zip(st.columns(len(labels)), labels, strict=True):
            col.download_button(name, data=lambda p=root / name: p.read_bytes(), file_name=name,
                                mime="text/csv" if name.endswith(".csv") else "application/json",
                                on_click="ignore", key=f"dl_{name}")
    if result.get("bytes"):
        folders = "".join(f" · `{name}/` with {count(n, 'file')}" for name, n in (result.get("folders") or {}).items())
        st.caption(f"{count(len(result.get('files') or []), 'file')}, {result['bytes'] / 1e6:.1f} MB in all: "
                   + ", ".join(result.get("files") or []) + folders)
    if quantized:
        line = (f"`{quantized['file']}` ({quantized['bytes'] / 1e6:.1f} MB) picks the same class as the full "
                f"model for {100 * quantized['top1_agreement']:.1f}% of {quantized['n_images']} workspace "
                f"{modality.plural} (largest probability difference {quantized['max_abs_prob_diff']:.3f}).")
        (st.caption if quantized["top1_agreement"] >= 0.99 else st.warning)(
            line + ("" if quantized["top1_agreement"] >= 0.99 else " Prefer the full model (or fp16) where the "
                    "answers matter."))
    rows = "" if modality.one_item_per_file else PARTS.get(modality.name, "; a file's items come out as FILE:PART")
    models = " (add `--model int8` or `--model fp16` for a quantized copy)" if "quantize" in modality.export_extras else ""
    st.caption(f"Classify new {modality.plural}: `sslapp predict {root} FILES_OR_FOLDERS...` (what `sslapp ingest` "
               f"reads{rows}){models}, or run `predict_onnx.py` from the zip without sslapp (its first lines say "
               "what it needs).")


def _status(ws: Workspace, modality: Modality) -> None:
    jobs = ws.store.jobs(kind="export", limit=1)
    if not jobs:
        return
    job = jobs[0]
    if job["status"] in ACTIVE:
        st.info(job_status_line(job))
        if st.session_state.get("export_seen_active") != job["id"]:
            st.session_state["export_seen_active"] = job["id"]
    elif job["status"] == JobState.DONE and job.get("result"):
        _downloads(ws, job["result"], modality)
    elif job["status"] == JobState.FAILED:
        st.error(f"The export failed: {job.get('error')}")
    else:
        st.info(job_status_line(job))
    if job["status"] not in ACTIVE and st.session_state.get("export_seen_active") == job["id"]:
        st.session_state["export_seen_active"] = None
        st.rerun()  # the whole page, so the polling stops


def _refused(ws: Workspace, refusal: str) -> None:
    """A kind of item whose models cannot be exported yet (texts): say so, and offer the labels instead
    of an Export button whose job would fail."""
    st.warning(refusal.replace(" WS ", f" {ws.root} "))
    if any(ws.store.label_counts().values()):
        st.download_button("Download the labels (labels.csv)", data=lambda: workspace_label_text(ws, "csv"),
                           file_name="labels.csv", mime="text/csv", on_click="ignore", key="export_refused_labels",
                           icon=":material/download:")


def render() -> None:
    st.title("Export")
    ws = require_workspace()
    modality = workspace_modality(ws)
    refusal = export_refusal(modality)
    if refusal:
        _refused(ws, refusal)
        return
    clf, enc = _model_status(ws, modality)
    if clf is None and enc is None:
        return
    latest = ws.store.jobs(kind="export", limit=1)
    busy = bool(latest) and latest[0]["status"] in ACTIVE
    with st.form("export_form", border=False):
        offered = [f for f in FORMATS if f in modality.export_formats]
        formats = st.multiselect("Model formats", offered, default=[f for f in DEFAULT_FORMATS if f in offered],
                                 format_func=lambda f: FORMAT_NAMES[f], key="export_formats",
                                 help="ONNX and safetensors by default: what runs the model, in any language or "
                                      "in PyTorch. TorchScript is one more copy of the same weights.")
        encoder_files, quantize, imagefolder = False, None, False
        if clf and "encoder" in modality.export_extras:
            encoder_files = st.checkbox("Also the encoder alone (a feature extractor) in each format",
                                        key="export_encoder_files",
                                        help="The classifier files hold the encoder already; each extra copy "
                                             "adds about the model's size.")
        if clf and "quantize" in modality.export_extras:
            quantize = st.radio("Also a quantized ONNX classifier (smaller, for deployment)", [None, *QUANTIZE],
                                format_func=QUANTIZE_NAMES.get, horizontal=True, key="export_quantize",
                                help=f"Its agreement with the full model is measured on your {modality.plural} and shown "
                                     "here, in model.json and in the model card.")
        if "imagefolder" in modality.export_extras:
            imagefolder = st.checkbox("Also include the labelled images as an ImageFolder tree "
                                      "(imagefolder/<class>/)", key="export_imagefolder")
        label = "Export" if clf else "Export the encoder only"
        submitted = st.form_submit_button(label, type="primary", disabled=busy, icon=":material/ios_share:")
    if submitted:
        if not formats:
            st.error("Pick at least one model format.")
        else:
            ws.store.enqueue_job("export", {"formats": formats, "imagefolder": imagefolder,
                                            "encoder_only": clf is None, "encoder_files": encoder_files,
                                            "quantize": quantize})
            ensure_worker(ws)
            busy = True
    st.fragment(_status, run_every=1.0 if busy else None)(ws, modality)
    exports = ws.store.artifacts("export", limit=5)
    if exports:
        with st.expander("Earlier exports"):
            for a in exports:
                path = Path(a["path"])
                st.write(f"`{path if path.is_absolute() else ws.root / path}` · "
                         f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(a['created_at']))} · "
                         f"{(a.get('meta') or {}).get('kind', '?')}")
