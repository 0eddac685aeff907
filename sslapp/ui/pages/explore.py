"""The Explore page: filters on the left, thumbnail grid in the centre, the map on the right.

The map, grid and bulk actions live in one `st.fragment`, so a box or lasso selection reruns only
that part. The selection is `st.session_state["explore_selection"]` (a list of item ids); the
chart writes it when its own selection changes, and tests or other widgets may set it directly.
Stable keys for browser tests: chart `explore_map` (or `explore_closeup_map`), buttons
`explore_apply_label`, `explore_remove_labels`, `explore_undo`, `explore_clear`, `explore_embed`.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from sslapp.embed.maps import MapData, load_map, map_status
from sslapp.jobs.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import embedding_line, job_status_line, require_workspace, thumb_path
from sslapp.ui.map import (
    COLOR_MODES,
    MAX_CLOSEUP,
    Coloring,
    categorical,
    closeup_figure,
    map_figure,
    selected_item_ids,
)
from sslapp.workspace import Workspace

SELECTION = "explore_selection"
PAGE_SIZE = 24
GRID_COLS = 6
NEW_CLASS = "+ New class…"
LABEL_FILTERS = ("All", "Unlabelled", "Labelled")


@st.cache_resource(show_spinner=False, max_entries=4)
def _cached_map(root: str, artifact_id: int, _ws: Workspace) -> MapData | None:
    """Maps are immutable files, so one load per artifact serves every rerun."""
    return load_map(_ws, _artifact(_ws, artifact_id))


def _artifact(ws: Workspace, artifact_id: int) -> dict | None:
    return next((a for a in ws.store.artifacts("map", limit=50) if a["id"] == artifact_id), None)


@st.cache_data(show_spinner=False, max_entries=4)
def _cached_predictions(root: str, run_id: int, _ws: Workspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item_ids, class_ids, confidences) of one prediction run (fixed once written)."""
    rows = _ws.store.predictions(run_id)
    return (np.array([r["item_id"] for r in rows], np.int64), np.array([r["class_id"] for r in rows], np.int64),
            np.array([r["confidence"] for r in rows], np.float32))


def _predictions(ws: Workspace):
    run_id = ws.store.latest_prediction_run_id()
    if run_id is None:
        return None
    return _cached_predictions(str(ws.root), int(run_id), ws)


def _coloring(ws: Workspace, m: MapData, mode: str, classes: list[dict]) -> Coloring:
    n = len(m.item_ids)
    class_pos = {c["id"]: i for i, c in enumerate(classes)}
    names = [c["name"] for c in classes]
    if mode == "cluster":
        k = int(m.cluster.max()) + 1 if n and (m.cluster >= 0).any() else 0
        return categorical(m.cluster, [f"cluster {i}" for i in range(k)], "cluster")
    if mode == "label":
        codes = np.full(n, -1, np.int32)
        labels = ws.store.labels()
        rows = m.rows_of([r["item_id"] for r in labels])
        pos = {int(i): p for i, p in zip(m.item_ids[rows], rows, strict=True)}
        for r in labels:
            if r["item_id"] in pos:
                codes[pos[r["item_id"]]] = class_pos.get(r["class_id"], -1)
        return categorical(codes, names, "label")
    if mode in ("prediction", "confidence"):
        pred = _predictions(ws)
        if mode == "prediction":
            codes = np.full(n, -1, np.int32)
            if pred is not None:
                rows = m.rows_of(pred[0])
                keep = np.isin(pred[0], m.item_ids)
                codes[rows] = [class_pos.get(int(c), -1) for c in pred[1][keep]]
            return categorical(codes, names, "predicted class")
        conf = np.zeros(n, np.float32)
        if pred is not None:
            conf[m.rows_of(pred[0])] = pred[2][np.isin(pred[0], m.item_ids)]
        return Coloring(conf, None, "confidence")
    codes = np.full(n, -1, np.int32)  # suggested next
    sugg = ws.store.open_suggestions()
    codes[m.rows_of([s["item_id"] for s in sugg])] = 0
    return categorical(codes, ["suggested next"], "suggested")


def _map_header(ws: Workspace) -> MapData | None:
    """Map status (provisional, stale), the compute/refresh buttons and the running embed job."""
    store = ws.store
    running = store.jobs(kind="embed", statuses=ACTIVE_JOB_STATES, limit=1)
    artifact = store.latest_artifact("map")
    cols = st.columns([4, 1])
    if running:
        _job_progress(ws, running[0]["id"])
    elif artifact is None:
        if store.count_items() == 0:
            st.info("No images yet. Add images on the Data page first.")
            return None
        cols[0].info("There is no map yet. Compute one: a first look from pixels comes in seconds, then the "
                     "map of the best embedding the app has (ImageNet features or a patch dictionary learned from "
                     "your images, later your own pretraining) replaces it.")
    else:
        status = map_status(ws, artifact)
        meta = artifact.get("meta") or {}
        if status.provisional:
            cols[0].warning("This map is **provisional**: a first look built from downsampled pixels. Refresh the "
                            "map to see the app's chosen embedding.")
        if status.stale:
            cols[0].warning("This map is **stale**: " + "; ".join(status.stale_reasons) + ". Re-embed to update it.")
        cols[0].caption(f"{meta.get('n_items')} images · {meta.get('k')} clusters ({meta.get('method')})")
        if not status.provisional:
            cols[0].markdown(embedding_line(ws, meta.get("encoder_artifact_id"), meta.get("embedding_name")))
    with cols[1]:
        method = st.selectbox("Clusters", ["kmeans", "hdbscan"], key="explore_cluster_method",
                              label_visibility="collapsed")
        label = "Compute map" if artifact is None else "Re-embed / refresh map"
        if st.button(label, key="explore_embed", disabled=bool(running), width="stretch"):
            from sslapp.jobs.launcher import ensure_worker

            k = st.session_state.get("explore_k") or None
            store.enqueue_job("embed", {"clusters": method, "k": k, "provisional": False})
            ensure_worker(ws)
            st.rerun()
        st.number_input("k (0 = auto)", min_value=0, max_value=200, value=0, step=1, key="explore_k")
    if artifact is None:
        return None
    m = _cached_map(str(ws.root), int(artifact["id"]), ws)
    if m is None:
        st.error(f"The map file {artifact['path']} is missing from the workspace; re-embed to make a new map.")
    return m


@st.fragment(run_every=1.0)
def _job_progress(ws: Workspace, job_id: int) -> None:
    job = ws.store.job(job_id)
    if job is None:
        return
    if job["status"] in ACTIVE_JOB_STATES:
        st.info("Computing the map… " + job_status_line(job))
        return
    if job["status"] == JobState.FAILED:
        st.error(f"The map job failed: {job['error']}")
    st.rerun()  # done: show the new map


def _selection_from_chart(event, key: str) -> None:
    """Copy a new, non-empty chart selection into the shared selection.

    Streamlit gives a chart a new identity whenever its figure changes (colours after labelling,
    for example), and the new chart reports an empty selection; so an empty event never clears the
    selection; the "Clear selection" button does.
    """
    ids = selected_item_ids(event)
    if not ids:
        return
    seen = st.session_state.setdefault("_explore_chart_seen", {})
    signature = tuple(sorted(ids))
    if seen.get(key) != signature:
        seen[key] = signature
        st.session_state[SELECTION] = ids
        st.session_state["_explore_from_chart"] = signature


def _clear_selection() -> None:
    st.session_state[SELECTION] = []
    st.session_state["_explore_chart_seen"] = {}
    st.session_state.pop("_explore_from_chart", None)


def _filters(ws: Workspace, m: MapData, classes: list[dict]) -> tuple[str, int | None, str]:
    st.subheader("Filters")
    mode = st.selectbox("Colour by", list(COLOR_MODES), format_func=COLOR_MODES.get, key="explore_color")
    k = int(m.cluster.max()) + 1 if len(m.cluster) and (m.cluster >= 0).any() else 0
    sizes = np.bincount(m.cluster[m.cluster >= 0], minlength=k) if k else np.zeros(0, int)
    options: list[int | None] = [None, *range(k)]
    cluster = st.selectbox("Cluster", options, key="explore_cluster",
                           format_func=lambda c: "Map selection" if c is None else f"cluster {c} ({sizes[c]})")
    label_filter = st.selectbox("Labels", [*LABEL_FILTERS, *(c["name"] for c in classes)], key="explore_label_filter")
    st.toggle(f"Close-up with images (≤ {MAX_CLOSEUP})", key="explore_closeup")
    return mode, cluster, label_filter


def _target_ids(ws: Workspace, m: MapData, cluster: int | None, label_filter: str) -> list[int]:
    if cluster is not None:
        ids = [int(i) for i in m.item_ids[m.cluster == cluster]]
    else:
        ids = [int(i) for i in st.session_state.get(SELECTION) or []]
    if label_filter == "All" or not ids:
        return ids
    items = ws.store.items(ids=ids)
    if label_filter == "Unlabelled":
        return [r["id"] for r in items if r["label"] is None]
    if label_filter == "Labelled":
        return [r["id"] for r in items if r["label"] is not None]
    return [r["id"] for r in items if r["label"] == label_filter]


def _fresh_targets(ws: Workspace, m: MapData) -> list[int]:
    """The items an action applies to, read when the click arrives rather than when the button was drawn.

    A click can interrupt the rerun that a new lasso started; the charts' widget state already holds
    that selection, so it is copied over first and the action hits what the user last selected.
    """
    for key in ("explore_map", "explore_closeup_map"):
        if key in st.session_state:
            _selection_from_chart(st.session_state[key], key)
    label_filter = st.session_state.get("explore_label_filter") or "All"
    return _target_ids(ws, m, st.session_state.get("explore_cluster"), label_filter)


def _apply_label(ws: Workspace, m: MapData) -> None:
    ids = _fresh_targets(ws, m)
    choice = st.session_state.get("explore_class")
    name = (st.session_state.get("explore_new_class") or "").strip() if choice == NEW_CLASS else (choice or "")
    if not name:
        st.session_state["explore_warn"] = "Type a name for the new class, or pick an existing class."
        return
    if not ids:
        st.session_state["explore_warn"] = "Nothing is selected: select points on the map or pick a cluster."
        return
    n = ws.store.set_labels(ids, ws.store.class_id(name, create=True), source="user", action="bulk-label")
    st.session_state["explore_msg"] = f"Labelled {n} image(s) as **{name}**. Undo is one click away."


def _remove_labels(ws: Workspace, m: MapData) -> None:
    ids = _fresh_targets(ws, m)
    n = ws.store.remove_labels(ids, action="bulk-unlabel")
    st.session_state["explore_msg"] = f"Removed {n} label(s)." if n else "None of the selected images had a label."


def _undo(ws: Workspace) -> None:
    undone = ws.store.undo_last_label_action()
    st.session_state["explore_msg"] = ("Nothing to undo." if undone is None else
                                       f"Undid {undone['action']} of {undone['items']} image(s).")


def _bulk_actions(ws: Workspace, m: MapData, ids: list[int], classes: list[dict]) -> None:
    """Actions run as button callbacks, before the rerun, so the map and grid show their effect at once."""
    names = [c["name"] for c in classes]
    c1, c2 = st.columns(2, vertical_alignment="bottom")
    choice = c1.selectbox("Class", [*names, NEW_CLASS], key="explore_class", index=0 if names else None,
                          placeholder="Pick a class")
    c2.text_input("New class name", key="explore_new_class", disabled=choice != NEW_CLASS, placeholder="e.g. cat")
    c3, c4, c5 = st.columns([1.4, 1.2, 0.8], vertical_alignment="bottom")
    c3.button(f"Label {len(ids)} selected", key="explore_apply_label", type="primary", disabled=not ids,
              on_click=_apply_label, args=(ws, m), width="stretch")
    c4.button("Remove labels", key="explore_remove_labels", disabled=not ids, on_click=_remove_labels,
              args=(ws, m), width="stretch")
    c5.button("Undo", key="explore_undo", on_click=_undo, args=(ws,), width="stretch")
    warn = st.session_state.pop("explore_warn", None)
    if warn:
        st.warning(warn)
    msg = st.session_state.pop("explore_msg", None)
    if msg:
        st.success(msg)


def _grid(ws: Workspace, ids: list[int]) -> None:
    pages = max(1, -(-len(ids) // PAGE_SIZE))
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key="explore_page"))
    page = min(page, pages)
    chunk = ids[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    items = ws.store.items(ids=chunk)
    pred = _predictions(ws)
    pred_by_id = {}
    if pred is not None and items:
        pos = np.isin(pred[0], chunk)
        class_names = {c["id"]: c["name"] for c in ws.store.classes()}
        pred_by_id = {int(i): (class_names.get(int(c), "?"), float(p))
                      for i, c, p in zip(pred[0][pos], pred[1][pos], pred[2][pos], strict=True)}
    cols = st.columns(GRID_COLS)
    for n, item in enumerate(items):
        with cols[n % GRID_COLS]:
            path = thumb_path(ws, item)
            if path.exists():
                st.image(str(path), width="stretch")
            else:
                st.caption("(no thumbnail)")
            caption = f"#{item['id']} · {item['label'] or 'unlabelled'}"
            if item["id"] in pred_by_id:
                name, p = pred_by_id[item["id"]]
                caption += f" · pred {name} {p:.0%}"
            st.caption(caption)


@st.fragment
def _body(ws: Workspace, m: MapData) -> None:
    classes = ws.store.classes()
    left, centre, right = st.columns([1.1, 3, 3], gap="medium")
    with left:
        mode, cluster, label_filter = _filters(ws, m, classes)
        st.button("Clear selection", key="explore_clear", on_click=_clear_selection)
    # the chart first, so a new box/lasso selection is known before the grid is drawn
    with right:
        selection = st.session_state.get(SELECTION) or []
        # the chart shows its own box/lasso selection; highlighting it too would change the figure,
        # which makes Streamlit remount the chart and lose the user's zoom
        from_chart = tuple(sorted(selection)) == st.session_state.get("_explore_from_chart")
        sel_rows = None if from_chart else m.rows_of(selection)
        coloring = _coloring(ws, m, mode, classes)
        if mode in ("prediction", "confidence") and ws.store.latest_prediction_run_id() is None:
            st.caption("No predictions yet: train a classifier on the Train page to colour by them.")
        if mode == "suggested" and not (coloring.values >= 0).any():
            st.caption("No open suggestions yet: they appear after an active-learning round (`sslapp suggest`).")
        closeup_rows = m.rows_of(_target_ids(ws, m, cluster, "All")) if st.session_state.get("explore_closeup") else None
        if closeup_rows is not None and 0 < len(closeup_rows) <= MAX_CLOSEUP:
            items = ws.store.items(ids=[int(i) for i in m.item_ids[closeup_rows]])
            paths = {r["id"]: str(thumb_path(ws, r)) for r in items}
            ids = m.item_ids[closeup_rows]
            fig = closeup_figure(m.xy[closeup_rows], ids, [paths.get(int(i), "") for i in ids],
                                 Coloring(coloring.values[closeup_rows], coloring.categories, coloring.title))
            event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso", "points"),
                                    key="explore_closeup_map", width="stretch")
            _selection_from_chart(event, "explore_closeup_map")
        else:
            if closeup_rows is not None:
                st.caption(f"Select 1 to {MAX_CLOSEUP} points (or a small cluster) to see them as images.")
            fig = map_figure(m.xy, m.item_ids, coloring, selected=sel_rows)
            event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso", "points"),
                                    key="explore_map", width="stretch",
                                    config={"displaylogo": False, "scrollZoom": True})
            _selection_from_chart(event, "explore_map")
    with centre:
        ids = _target_ids(ws, m, cluster, label_filter)
        source = f"cluster {cluster}" if cluster is not None else "map selection"
        if not ids:
            if cluster is None and not st.session_state.get(SELECTION):
                st.info("Select points on the map (box or lasso), or pick a cluster on the left, to see and "
                        "label them here.")
            else:
                st.info(f"No images in the {source} match the label filter '{label_filter}'.")
        else:
            st.markdown(f"**{len(ids)}** image(s) from the {source}"
                        + (f" · filter: {label_filter}" if label_filter != "All" else ""))
        _bulk_actions(ws, m, ids, classes)
        if ids:
            _grid(ws, ids)


def render() -> None:
    st.title("Explore")
    ws = require_workspace()
    st.session_state.setdefault(SELECTION, [])
    m = _map_header(ws)
    if m is None:
        return
    _body(ws, m)
