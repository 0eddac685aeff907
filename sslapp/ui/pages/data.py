"""The Data page: add items (uploads, a zip, a folder, a server folder or the sample data) and
browse what the workspace holds.

The page only saves uploads under the workspace's tmp/ and enqueues an `ingest` job; the worker
decodes. An empty workspace takes every kind sslapp reads (images; texts as .txt files or tables;
sounds as WAV, FLAC, OGG or MP3); one that holds items takes its own kind. Tables get a text and a
label column picker (`sslapp.ui.table_columns`), passed to the job. A fragment polls the job and shows
its report (one reason per skipped file). Below, the near-duplicates section (`sslapp.ui.duplicates`),
then the items: thumbnails or spectrograms, or texts one to a row (`sslapp.ui.item_view`). Label files
go in and out in the expander of `sslapp.ui.label_files`. Words follow the workspace's kind ("sounds",
not "images").
"""

from __future__ import annotations

import math
import os
import re
import uuid
from pathlib import Path, PurePosixPath

import streamlit as st

from sslapp.jobs.launcher import ensure_worker
from sslapp.modalities import MODALITIES, Modality, get_modality, workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import STATUS_WORDS, item_words, require_workspace
from sslapp.ui.duplicates import near_duplicates
from sslapp.ui.item_view import show_item, texts, view
from sslapp.ui.label_files import label_files
from sslapp.ui.table_columns import columns_of, table_options
from sslapp.words import count
from sslapp.workspace import Workspace

MAX_FILES_PER_UPLOAD = 20_000
MAX_UPLOAD_TOTAL_MB = 4096
PAGE_SIZE = 48
GRID_COLUMNS = 8
ACTIVE = ACTIVE_JOB_STATES
_UNSAFE_CHARS = re.compile(r"[^\w.\- ]+")


def sample_data_dir() -> Path:
    """The bundled sample set (override with SSLAPP_SAMPLE_DATA)."""
    return Path(os.environ.get("SSLAPP_SAMPLE_DATA") or Path(__file__).resolve().parents[3] / "sample_data")


def safe_relative(name: str) -> PurePosixPath | None:
    """An uploaded file's name (which may hold its folder path) as a safe relative path, or None."""
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
    parts = [_UNSAFE_CHARS.sub("_", p)[:120] for p in parts]
    parts = [p for p in parts if p.strip(" .")]
    return PurePosixPath(*parts) if parts else None


def check_upload(files) -> str | None:
    """Why this upload is refused (count or total size), or None."""
    if len(files) > MAX_FILES_PER_UPLOAD:
        return (f"{len(files):,} files is more than {MAX_FILES_PER_UPLOAD:,} per upload. Upload a zip archive, "
                "split the upload, or use 'Server folder' / `sslapp ingest` for large sets.")
    total_mb = sum(getattr(f, "size", 0) for f in files) / 1e6
    if total_mb > MAX_UPLOAD_TOTAL_MB:
        return (f"{total_mb:,.0f} MB is more than {MAX_UPLOAD_TOTAL_MB:,} MB per upload. Split the upload, or use "
                "'Server folder' / `sslapp ingest` for large sets.")
    return None


def save_uploads(ws: Workspace, files) -> Path:
    """Write uploaded files under tmp/upload-<id>/, keeping their (sanitised) folder paths."""
    target = ws.tmp_dir / f"upload-{uuid.uuid4().hex[:12]}"
    target.mkdir(parents=True)
    used: set[str] = set()
    for index, f in enumerate(files):
        rel = safe_relative(f.name) or PurePosixPath(f"file-{index}")
        key = str(rel)
        if key in used:  # two uploads with one name: keep both
            rel = rel.with_name(f"{rel.stem}-{index}{rel.suffix}")
        used.add(str(rel))
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.getbuffer())
    return target


def start_ingest(ws: Workspace, paths: list[str], labels_from_dirs: bool, cleanup: bool,
                 base: str | None = None, options: dict[str, str] | None = None) -> int:
    """Enqueue the ingest job; `options`: {"text_column", "label_column"} for tables of texts."""
    job_id = ws.store.enqueue_job("ingest", {"paths": paths, "labels_from_dirs": labels_from_dirs,
                                             "cleanup": cleanup, "base": base, "map_after": True,
                                             **(options or {})})
    ensure_worker(ws)
    st.session_state["ingest_job"] = job_id
    return job_id


def _load_sample(ws: Workspace, with_labels: bool) -> None:
    folder = sample_data_dir()
    if not folder.is_dir():
        st.error(f"The sample data folder {folder} is missing; reinstall sslapp from a clone of the repository.")
        return
    start_ingest(ws, [str(folder)], labels_from_dirs=with_labels, cleanup=False, base=str(folder.parent))


def accepted(ws: Workspace) -> list[Modality]:
    """The kinds an upload may hold: the workspace's once it holds items, else every kind sslapp reads."""
    if ws.store.count_items():
        return [workspace_modality(ws)]
    return [get_modality(name) for name in MODALITIES]


def upload_types(kinds: list[Modality]) -> list[str]:
    """File suffixes (no dot) the uploader takes for these kinds."""
    return sorted({ext.lstrip(".") for kind in kinds for ext in kind.extensions})


def kinds_phrase(kinds: list[Modality], formats: bool = True) -> str:
    """'Images (PNG, JPEG, …)' or 'images, texts or sounds', from the registry's descriptions."""
    if not formats:
        names = [kind.plural for kind in kinds]
        return " or ".join(filter(None, [", ".join(names[:-1]), names[-1]]))
    parts = [f"{kind.plural} ({MODALITIES[kind.name].description.partition(': ')[2]})" for kind in kinds]
    return "; ".join(parts)[:1].upper() + "; ".join(parts)[1:]


def _job_words(ws: Workspace) -> tuple[str, str]:
    """What the items are called while a job runs: before the first items arrive their kind is not known."""
    return item_words(ws) if ws.store.count_items() else ("item", "items")


def _counts(ws: Workspace) -> dict[str, int]:
    info = ws.store.info()
    return {"items": info["items"], "labelled": info["labels"], "classes": len(info["labels_per_class"])}


def _report(report: dict | None, title: str = "Last ingest", plural: str = "images") -> None:
    if not report:
        return
    skipped = report.get("skipped", [])
    rate = "img" if plural == "images" else plural
    line = (f"**{title}:** added {report['added']} · {count(report['duplicates'], 'duplicate')} · {len(skipped)} skipped"
            + (f" · {count(report['labels'], 'imported label')}" if report.get("labels") else "")
            + (f" · {report['images_per_s']:.0f} {rate}/s" if report.get("added", 0) >= 500 else ""))
    st.markdown(line)
    if skipped:
        with st.expander(f"Skipped files ({len(skipped)}) and why", expanded=len(skipped) <= 20):
            st.dataframe([{"file": s["source"], "reason": s["reason"]} for s in skipped],
                         hide_index=True, width="stretch")
    notes = report.get("notes") or []
    if notes:
        with st.expander(f"Notes ({len(notes)})"):
            st.dataframe([{"file": n["source"], "note": n["note"]} for n in notes], hide_index=True,
                         width="stretch")


def _job_panel(ws: Workspace) -> None:
    """The running (or just finished) ingest job of this session, polled by a fragment."""
    job_id = st.session_state.get("ingest_job")
    active = ws.store.jobs(kind="ingest", statuses=ACTIVE, limit=5)
    if job_id is None and active:
        job_id = active[-1]["id"]
    if job_id is None:
        return
    job = ws.store.job(job_id)
    if job is None:
        return
    progress = job.get("progress") or {}
    plural = _job_words(ws)[1]
    if job["status"] in ACTIVE:
        st.info(f"Adding {plural} ({STATUS_WORDS.get(job['status'], job['status'])}): "
                + str(progress.get("message", "waiting for the worker")), icon=":material/hourglass_top:")
        return
    if st.session_state.get("ingest_seen") != job_id:  # just finished: refresh counts and the grid once
        st.session_state["ingest_seen"] = job_id
        st.rerun(scope="app")
    if job["status"] == JobState.DONE:
        report = job.get("result") or {}
        if report.get("added", 0) == 0 and report.get("duplicates", 0) == 0:
            st.warning(f"No usable {plural} were found; see the reasons below.")
        else:
            st.success(f"Adding {plural} finished.", icon=":material/check_circle:")
        _report(report, title="Just added", plural=plural)
    elif job["status"] == JobState.FAILED:
        st.error(f"Adding {plural} failed: {job.get('error')}. Nothing already in the workspace "
                 "changed; fix the cause and try again.")
    else:
        st.warning(f"Adding {plural} was {job['status']}; nothing was added.")


def _add_items(ws: Workspace) -> None:
    kinds = accepted(ws)
    labels = st.checkbox("Use folder names as labels (ImageFolder layout: one folder per class)", value=False,
                         key="labels_from_dirs", help="Labels brought in this way are marked 'imported'.")
    nonce = st.session_state.setdefault("upload_nonce", 0)
    files_tab, folder_tab, server_tab = st.tabs(["Upload files or a zip", "Upload a folder", "Server folder"])
    with files_tab:
        files = st.file_uploader(f"{kinds_phrase(kinds)} or zip archives", type=[*upload_types(kinds), "zip"],
                                 accept_multiple_files=True, key=f"files_{nonce}")
        _submit_upload(ws, files, labels, "add_files")
    with folder_tab:
        folder = st.file_uploader(f"A folder of {kinds_phrase(kinds, formats=False)} (read recursively)",
                                  type=upload_types(kinds), accept_multiple_files="directory", key=f"folder_{nonce}")
        _submit_upload(ws, folder, labels, "add_folder")
    with server_tab:
        path = st.text_input("Folder, zip or file on this machine", placeholder="/data/my-items", key="server_path")
        target = Path(path).expanduser() if path else None
        options = {}
        if target is not None and target.is_file():
            stat = target.stat()
            options = table_options(columns_of([(f"{target}:{stat.st_size}:{stat.st_mtime_ns}", target.name,
                                                 target.read_bytes)]), "server")
        if st.button("Add from this path", key="add_server", disabled=not path):
            if not target.exists():
                st.error(f"{target} does not exist on the machine running sslapp.")
            else:
                start_ingest(ws, [str(target)], labels_from_dirs=labels, cleanup=False,
                             base=str(target.parent) if target.is_dir() else None, options=options)
                st.rerun()


def _submit_upload(ws: Workspace, files, labels: bool, key: str) -> None:
    if not files:
        return
    problem = check_upload(files)
    if problem:
        st.error(problem)
        return
    options = table_options(columns_of([(f.file_id, f.name, f.getvalue) for f in files]), key)
    if st.button(f"Add {count(len(files), 'file')}", type="primary", key=key):
        target = save_uploads(ws, files)
        start_ingest(ws, [str(target)], labels_from_dirs=labels, cleanup=True, base=str(target), options=options)
        st.session_state["upload_nonce"] = st.session_state.get("upload_nonce", 0) + 1  # clears the uploader
        st.rerun()


def _caption(item: dict) -> str:
    caption = item["label"] or "—"
    return caption + " (imported)" if item.get("label_source") == "imported" else caption


def _grid(ws: Workspace, total: int) -> None:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    left, right = st.columns([3, 1])
    left.subheader(f"{item_words(ws)[1].capitalize()} ({total:,})")
    page = int(right.number_input(f"Page (of {pages})", min_value=1, max_value=pages, value=1, step=1,
                                  key="grid_page"))
    items = ws.store.items(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    if not view(ws).tiles:  # one row per item: its number, its start (more on hover) and its label
        words = texts(ws, items, 1001)
        for item in items:
            number, body, label = st.columns([1, 12, 2])
            number.caption(f"#{item['id']}")
            with body:
                show_item(ws, item, text=words.get(item["id"]))
            label.text(_caption(item))
        return
    for start in range(0, len(items), GRID_COLUMNS):
        cols = st.columns(GRID_COLUMNS)
        for col, item in zip(cols, items[start:start + GRID_COLUMNS], strict=False):
            with col:
                show_item(ws, item, width=96, caption=_caption(item))


def render() -> None:
    st.title("Data")
    ws = require_workspace()
    counts = _counts(ws)
    plural = item_words(ws)[1]
    a, b, c = st.columns(3)
    a.metric(plural.capitalize(), f"{counts['items']:,}")
    b.metric("Labelled", f"{counts['labelled']:,}")
    c.metric("Classes", f"{counts['classes']:,}")
    busy = bool(ws.store.jobs(kind="ingest", statuses=ACTIVE, limit=1))
    panel = st.fragment(run_every=1.0 if busy else None)(_job_panel)  # polls only while a job runs
    panel(ws)
    if counts["items"] == 0 and not busy:
        with st.container(border=True):
            st.subheader("This workspace is empty")
            st.write("Try sslapp right away with the bundled sample: 300 CIFAR-10 images in 10 classes "
                     f"(see sample_data/README.md for license and attribution). Or add your own "
                     f"{kinds_phrase(accepted(ws), formats=False)} below.")
            with_labels = st.checkbox(
                "Also import its class labels", key="sample_labels",
                help="Off: start unlabelled and label a handful yourself, as with your own images. "
                     "On: every image comes labelled from its folder name, to check what sslapp reaches.")
            if st.button("Load sample data", type="primary", icon=":material/download_for_offline:",
                         key="load_sample"):
                _load_sample(ws, with_labels)
                st.rerun()
    with st.expander(f"Add {kinds_phrase(accepted(ws), formats=False)}", expanded=counts["items"] == 0):
        _add_items(ws)
    if counts["items"]:
        label_files(ws)
    if not st.session_state.get("ingest_job"):
        _report(ws.store.last_ingest_report(), plural=plural)
    if counts["items"]:
        near_duplicates(ws)
        _grid(ws, counts["items"])
