"""Labels in and out on the Data page: the current labels as CSV, JSON, Label Studio or COCO files, and a
label file from another tool imported all or nothing, each label kept with who gave it.

The files are made from the store when a button is pressed (no job: reading labels is quick); an
upload is saved under the workspace's tmp/ only while `sslapp.export.label_import` reads it.
"""

from __future__ import annotations

import re
import shutil
import uuid

import streamlit as st

from sslapp.export.label_formats import LabelFileError
from sslapp.export.label_import import LabelImportError, import_label_file
from sslapp.export.labels import workspace_label_text
from sslapp.ui.common import annotator_name, count_of, item_words
from sslapp.workspace import Workspace

DOWNLOADS = [  # (format, button, file name, mime type)
    ("csv", "CSV", "labels.csv", "text/csv"),
    ("json", "JSON", "labels.json", "application/json"),
    ("label-studio", "Label Studio", "labels.label-studio.json", "application/json"),
    ("coco", "COCO", "labels.coco.json", "application/json"),
]
_UNSAFE = re.compile(r"[^\w.\-]+")


def label_files(ws: Workspace) -> None:
    """The expander: download the labels in each format, or import a label file."""
    n_labels = sum(c["n_labels"] for c in ws.store.classes())
    with st.expander("Labels in and out (CSV, JSON, Label Studio, COCO)"):
        if n_labels:
            st.caption(f"Download the {n_labels:,} label{'' if n_labels == 1 else 's'}, each with who gave it:")
            for col, (fmt, title, file_name, mime) in zip(st.columns(len(DOWNLOADS)), DOWNLOADS, strict=True):
                col.download_button(title, data=lambda f=fmt: workspace_label_text(ws, f), file_name=file_name,
                                    mime=mime, on_click="ignore", key=f"labels_download_{fmt}",
                                    icon=":material/download:")
        _import(ws)


def _import(ws: Workspace) -> None:
    nonce = st.session_state.setdefault("labels_upload_nonce", 0)
    uploaded = st.file_uploader(
        "Import labels from a file", type=["csv", "json"], key=f"labels_upload_{nonce}",
        help="A CSV of item (path or id) and class, sslapp's labels.json, a Label Studio export (the latest "
             f"annotation of each task) or a COCO-style file. {item_words(ws)[1].capitalize()} are matched by "
             "their path as added (or its end). A file with any bad entry is refused whole: nothing changes.")
    allow_new = st.checkbox("Create the classes the file names that do not exist yet", value=True,
                            key="labels_upload_new_classes")
    if uploaded is None or not st.button("Import these labels", key="labels_upload_go", type="primary"):
        _last_result()
        return
    folder = ws.tmp_dir / f"labels-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    path = folder / (_UNSAFE.sub("_", uploaded.name.replace("\\", "/").rsplit("/", 1)[-1]) or "labels.csv")
    try:
        path.write_bytes(uploaded.getbuffer())
        done = import_label_file(ws, path, allow_new=allow_new, annotator=annotator_name())
    except (LabelFileError, LabelImportError) as exc:
        st.session_state["labels_upload_result"] = ("error", str(exc))
    else:
        classes = len(done.classes)
        note = f"Labelled {count_of(done.labelled, item_words(ws))} in {classes} " \
               f"class{'' if classes == 1 else 'es'} from {uploaded.name}."
        if done.propagated:
            note += f" Left out {done.propagated:,} machine guess{'' if done.propagated == 1 else 'es'}."
        if done.unlabelled:
            note += f" Left out {done.unlabelled:,} task{'' if done.unlabelled == 1 else 's'} without an annotation."
        st.session_state["labels_upload_result"] = ("success", note)
        st.session_state["labels_upload_nonce"] = nonce + 1  # clears the uploader
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    st.rerun()


def _last_result() -> None:
    """What the last import did (kept across the rerun that clears the uploader)."""
    result = st.session_state.get("labels_upload_result")
    if not result:
        return
    kind, message = result
    if kind == "success":
        st.success(message)
        return
    head, _, rest = message.partition("\n")
    st.error(head + ("\n\n" + "\n".join(f"- {line.strip()}" for line in rest.splitlines()) if rest else ""))
