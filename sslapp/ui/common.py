"""Widgets and state shared by the pages: the open workspace, job status, thumbnails, what items are called."""

from __future__ import annotations

import os
import re
from pathlib import Path

import streamlit as st

from sslapp.modalities import preview_file, workspace_modality
from sslapp.words import count
from sslapp.workspace import Workspace, WorkspaceError, child_workspace, open_workspace

WORKSPACES_HOME = Path(os.environ.get("SSLAPP_HOME", "workspaces"))
DEFAULT_WORKSPACE = "default"


@st.cache_resource(show_spinner=False)
def _open_cached(path: str) -> Workspace:
    return open_workspace(path, create=True)


def current_workspace() -> Workspace | None:
    """The workspace this browser session works in: SSLAPP_WORKSPACE, the URL, the sidebar, or `default`."""
    path = os.environ.get("SSLAPP_WORKSPACE") or st.session_state.get("workspace_path")
    if path is None and "ws" in st.query_params:
        try:
            path = str(child_workspace(WORKSPACES_HOME, st.query_params["ws"]))
        except WorkspaceError as exc:  # a bad link: say so, and open the default instead
            st.sidebar.warning(f"The link's workspace cannot be opened: {exc} The default one is open instead.")
            path = None
    if path is None:  # first visit: a default workspace, so the sample data is one click away
        path = str(child_workspace(WORKSPACES_HOME, DEFAULT_WORKSPACE))
    st.session_state["workspace_path"] = path
    if not os.environ.get("SSLAPP_WORKSPACE") and st.query_params.get("ws") != Path(path).name:
        # the address names the workspace on every page (moving between pages drops it): a reload or a
        # copied link opens this workspace again, not the default one
        st.query_params["ws"] = Path(path).name
    return _open_cached(path)


def workspace_picker() -> None:
    """Sidebar: open an existing workspace or create a new one under SSLAPP_HOME."""
    if os.environ.get("SSLAPP_WORKSPACE"):
        st.sidebar.caption(f"Workspace: `{os.environ['SSLAPP_WORKSPACE']}`")
        return
    WORKSPACES_HOME.mkdir(parents=True, exist_ok=True)
    current_workspace()  # opens (or creates) the default on a first visit, so the picker shows it
    existing = workspace_names()
    current = st.session_state.get("workspace_path")
    current_name = Path(current).name if current else None
    switched_to = st.session_state.pop("ws_switched_to", None)
    if switched_to in existing:  # a workspace was just created: show it as the open one
        st.session_state["ws_select"] = switched_to
    with st.sidebar:
        st.subheader("Workspace")
        if existing:
            index = existing.index(current_name) if current_name in existing else None
            choice = st.selectbox("Open", existing, index=index, placeholder="Pick a workspace",
                                  key="ws_select")
            if choice and choice != current_name:
                switch_workspace(choice)
        with st.form("new_ws", clear_on_submit=True, border=False):
            name = st.text_input("New workspace", placeholder="my-project", key="ws_new_name")
            if st.form_submit_button("Create") and name:
                switch_workspace(name)


def workspace_names() -> list[str]:
    """The workspaces under WORKSPACES_HOME (folders, or links to folders, holding a database), by name."""
    if not WORKSPACES_HOME.is_dir():
        return []
    return sorted(p.name for p in WORKSPACES_HOME.iterdir() if (p / "sslapp.db").exists())


def switch_workspace(name: str, where=None) -> None:
    """Open (or create) workspace `name` for this session and rerun; a problem is said in `where`."""
    where = where or st.sidebar
    try:
        path = child_workspace(WORKSPACES_HOME, name)
        open_workspace(path, create=True)
    except Exception as exc:  # a bad name, an unreadable folder or database: say so, keep the current one
        where.error(str(exc) if isinstance(exc, WorkspaceError) else f"Workspace {name!r} cannot be opened: {exc}")
        return
    st.session_state["workspace_path"] = str(path)
    st.session_state["ws_switched_to"] = name
    st.query_params["ws"] = name
    st.rerun()


DEFAULT_ANNOTATOR = "you"


def annotator_field() -> None:
    """Sidebar: the name kept with every label this browser session gives (and in the label files)."""
    st.sidebar.text_input("Your name", value=DEFAULT_ANNOTATOR, key="annotator", max_chars=80,
                          help="Kept with each label you give here, and in the label files (CSV, JSON, "
                               "Label Studio, COCO), so labels from several people stay told apart.")


def annotator_name() -> str:
    """Who labels in this session: the sidebar's name, or "you"."""
    return str(st.session_state.get("annotator") or "").strip() or DEFAULT_ANNOTATOR


def require_workspace() -> Workspace:
    """The open workspace, or a prompt to pick one (stops the page)."""
    ws = current_workspace()
    if ws is None:
        st.info("Create or open a workspace in the sidebar to begin.")
        st.stop()
    return ws


def file_name(source: str | None) -> str:
    """The file's own name, without folders or archive (a folder name may be the answer)."""
    return re.split(r"[/\\]|\.zip:", str(source or ""))[-1] or "(unnamed)"


def thumb_path(ws: Workspace, item: dict) -> Path:
    """Preview file of an item, where ingestion wrote it (`sslapp.modalities.preview_file`)."""
    return Path(preview_file(ws.thumbs_dir, item["sha256"], workspace_modality(ws).preview_ext))


def item_words(ws: Workspace) -> tuple[str, str]:
    """What one item and many are called in this workspace: ("image", "images"), ("text", "texts")."""
    modality = workspace_modality(ws)
    return modality.noun, modality.plural


def count_of(n: int, words: tuple[str, str]) -> str:
    """'1 text', '2,000 texts'."""
    return count(n, words[0], words[1])


JOB_WORDS = {"ingest": "Adding {items}", "embed": "Drawing the map", "pretrain": "Pretraining",
             "finetune": "Training the classifier", "suggest": "Choosing {items} to label",
             "export": "Exporting", "review": "Checking your labels", "near_duplicates": "Finding near-duplicates",
             "add_model": "Adding your model"}
STATUS_WORDS = {"queued": "waiting for the worker", "running": "running", "pausing": "pausing",
                "cancelling": "stopping", "paused": "paused", "cancelled": "cancelled", "done": "done",
                "failed": "failed", "interrupted": "interrupted"}


def thumb_image(ws: Workspace, item: dict, width: int | str = "stretch", caption: str | None = None) -> bool:
    """Draw the item's thumbnail where it has one; whether it did (the caller captions either way)."""
    path = thumb_path(ws, item)
    if not path.exists():
        return False
    st.image(str(path), width=width, caption=caption)
    return True


def job_status_line(job: dict, items: str = "images") -> str:
    """What a job is doing, in words (no job ids); `items`: what the workspace's items are called."""
    p = job.get("progress") or {}
    kind = JOB_WORDS.get(job["kind"], job["kind"]).replace("{items}", items)
    parts = [f"{kind} · **{STATUS_WORDS.get(job['status'], job['status'])}**"]
    if "epoch" in p:
        parts.append(f"epoch {p['epoch']}" + (f"/{p['epochs']}" if p.get("epochs") else ""))
    if p.get("message"):
        parts.append(str(p["message"]))
    return " · ".join(parts)


def embedding_line(ws: Workspace, encoder_id: int | None = None, name: str | None = None) -> str:
    """Which embedding is in use and why, in words (from the worker's last measured choice)."""
    from sslapp.features.read import CHOICE_SETTING

    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    if not choice and name is None:
        return "**Embedding:** not chosen yet (the worker chooses it when it makes the map or suggestions)."
    used = name or choice.get("name")
    line = f"**Embedding:** {used}"
    if choice and (encoder_id is None or choice.get("encoder_artifact_id") == encoder_id):
        line += f" — {choice.get('reason', '')}"
    elif choice:
        line += f" (the app has since chosen {choice.get('name')}; refresh to use it)"
    return line


def label_counts(ws: Workspace) -> dict[str, int]:
    """Labels a classifier trains on (a person's, not propagated guesses), per class name (0 for a class without any)."""
    from sslapp.curate.read import TRUSTED_SOURCES

    counts = {c["name"]: 0 for c in ws.store.classes()}
    for row in ws.store.labels(sources=TRUSTED_SOURCES):
        counts[row["class_name"]] = counts.get(row["class_name"], 0) + 1
    return counts


def labels_changed(trained: dict[str, int], current: dict[str, int]) -> bool:
    """Whether the labels per class differ from those a classifier was trained on (its `label_counts`)."""
    return bool(trained) and {k: v for k, v in current.items() if v > 0} != trained
