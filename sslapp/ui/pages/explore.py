"""The Explore page: the map is the page.

Top to bottom: the map's status and its compute/refresh controls in one row; the view controls
(colour, what to show: the map selection, every item or a cluster; the label filter, close-up, clear)
in one row; the map (about three quarters of the width, 650 px tall, its axes spanning the points)
with a side panel beside it: the clicked item shown large (an image from its original file, a text
whole, a sound's spectrogram and its player), or the selection's count and the label actions; below
the map, the selection's items (thumbnails or spectrograms, or texts one to a row), each a toggle
that leaves it out of the label action (`sslapp.ui.selection_grid`). "Show: All images" with the
label filter on a class, or on "Model disagrees" (labels the last "Check my labels" or the newest
classifier points to another class), puts every such label in the grid, for a bulk review. Items are drawn by
`sslapp.ui.item_view`: the close-up (the images themselves at their map positions) is offered only
for kinds it can draw; a text's hover shows its start.

The view controls and the map live in one `st.fragment` (key `explore_body`), so a selection on the
map reruns only that part; the side panel and the grid are a fragment inside it
(`sslapp.ui.explore_panel`), so a leave-out reruns only them, and a label action reruns both. While an
embed job runs, its status line polls every second and reruns the page once a newer map is saved: the
quick first (pixel) map is drawn while the chosen embedding's map is still computed. The selection is
`st.session_state["explore_selection"]` (a list of item ids, see `sslapp.ui.explore_state`); the
widgets keep their values across page switches (`persist_state="session"`), and a new map clears the
selection. Stable keys for browser tests: chart `explore_map` (or `explore_closeup_map`), buttons
`explore_apply_label`, `explore_remove_labels`, `explore_undo`, `explore_clear`, `explore_embed`,
the preview `explore_preview`, the grid `explore_grid` (its keys: `sslapp.ui.selection_grid`).
The class picker `explore_class` opens, for each new selection, on the class most of its items are
labelled or predicted as, else on no class (`sslapp.ui.class_picker`); "Label N selected" waits for a class.
"""

from __future__ import annotations

import streamlit as st

from sslapp.maps.read import MapData, map_status
from sslapp.modalities import workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui import explore_state as es
from sslapp.ui.common import (
    count_of,
    embedding_line,
    item_words,
    job_status_line,
    require_workspace,
    thumb_path,
)
from sslapp.ui.explore_panel import selection_panel
from sslapp.ui.item_view import view
from sslapp.ui.map import COLOR_MODES, MAP_CONFIG, MAX_CLOSEUP, Coloring, closeup_figure, map_figure
from sslapp.words import count
from sslapp.workspace import Workspace

PERSIST = "session"  # widget values survive a switch to another page and back
# the first look (no encoder), in short and in full, and what replaces it, by how the items are previewed
FIRST_LOOK = {"thumbnail": ("pixels", "downsampled pixels", "ImageNet features or a patch dictionary learned from "
                                                            "your images, later your own pretraining"),
              "text": ("word counts", "word counts (TF-IDF)", "a sentence encoder or TF-IDF, whichever tells your "
                                                              "labels apart better"),
              "audio": ("MFCC statistics", "MFCC statistics", "MFCC statistics, ImageNet features of the log-mel "
                                                              "pictures or the patch dictionary, whichever measures "
                                                              "best on your labels")}
# less padding than Streamlit's default, so the map fits the first screen (this page only)
PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 2.5rem; padding-left: 1rem; padding-right: 1rem; }
[data-testid="stMainBlockContainer"] h1 { white-space: nowrap; font-size: 2.2rem; }
</style>"""


def _map_header(ws: Workspace) -> MapData | None:
    """One row: the title, the map's status (provisional, stale), the compute/refresh controls, or the
    running embed job."""
    store = ws.store
    running = store.jobs(kind="embed", statuses=ACTIVE_JOB_STATES, limit=1)
    artifact = store.latest_artifact("map")
    title_col, status_col, method_col, k_col, button_col = st.columns([1.25, 4.2, 1, 0.9, 1.45],
                                                                      vertical_alignment="bottom")
    title_col.title("Explore")
    with status_col:
        if running:
            _job_progress(ws, running[0]["id"], None if artifact is None else int(artifact["id"]))
        elif artifact is None:
            plural = item_words(ws)[1]
            if store.count_items() == 0:
                st.info(f"No {plural} yet. Add {plural} on the Data page first.")
                return None
            quick, _, best = _first_look(ws)
            st.info(f"There is no map yet. Compute one: a first look from {quick} comes in seconds, "
                    f"then the map of the best embedding the app has ({best}) replaces it.")
        else:
            _status_lines(ws, artifact)
    method = method_col.selectbox("Clusters", ["kmeans", "hdbscan"], key="explore_cluster_method",
                                  persist_state=PERSIST)
    k_col.number_input("k (0 = auto)", min_value=0, max_value=200, value=0, step=1, key="explore_k",
                       persist_state=PERSIST)
    label = "Compute map" if artifact is None else "Re-embed / refresh map"
    if button_col.button(label, key="explore_embed", disabled=bool(running), width="stretch"):
        from sslapp.jobs.launcher import ensure_worker

        k = st.session_state.get("explore_k") or None
        store.enqueue_job("embed", {"clusters": method, "k": k, "provisional": False})
        ensure_worker(ws)
        st.rerun()
    if artifact is None:
        return None
    m = es.cached_map(str(ws.root), int(artifact["id"]), ws)
    if m is None:
        st.error(f"The map file {artifact['path']} is missing from the workspace; re-embed to make a new map.")
    return m


def _status_lines(ws: Workspace, artifact: dict) -> None:
    """Compact: a badge for a provisional or stale map, the map's size and embedding (why: on hover)."""
    status = map_status(ws, artifact, item_words(ws))
    meta = artifact.get("meta") or {}
    if status.stale:
        st.markdown(":orange-badge[:material/warning: Stale map] " + "; ".join(status.stale_reasons)
                    + ". Re-embed to update it.")
    if status.provisional:
        st.markdown(f":orange-badge[Provisional map] a first look from {_first_look(ws)[1]}; refresh the map "
                    "to see the app's chosen embedding.")
    line = (f"{count_of(int(meta.get('n_items') or 0), item_words(ws))} · {count(int(meta.get('k') or 0), 'cluster')} "
            f"({meta.get('method')})")
    why = None
    if not status.provisional:
        embedding, _, why = embedding_line(ws, meta.get("encoder_artifact_id"), meta.get("embedding_name")).partition(" — ")
        line += " · " + embedding
    st.caption(line, help=why or None)


@st.fragment(run_every=1.0)
def _job_progress(ws: Workspace, job_id: int, drawn_id: int | None) -> None:
    """The running embed job's status line, polled every second; the page reruns when the job ends, and
    also once it saves a map other than `drawn_id` (the one the page drew), so the quick pixel map of a
    first upload shows within a second instead of when the chosen embedding's map is done."""
    job = ws.store.job(job_id)
    if job is None:
        return
    if job["status"] in ACTIVE_JOB_STATES:
        st.info("Computing the map… " + job_status_line(job))
        if es.newer_map(ws, drawn_id):
            st.rerun()  # draw it; this line goes on polling above it
        return
    if job["status"] == JobState.FAILED:
        st.error(f"The map job failed: {job['error']}")
    st.rerun()  # done: show the new map


def _first_look(ws: Workspace) -> tuple[str, str, str]:
    """(what the provisional map is drawn from, in short and in full; what the chosen embedding may be)."""
    quick = "the items themselves, without an encoder"
    return FIRST_LOOK.get(workspace_modality(ws).preview, (quick, quick, "the best encoder the app has"))


def _controls(ws: Workspace, m: MapData, classes: list[dict]) -> tuple[str, str | int, str]:
    """(colour mode, what the grid shows: `es.picked_source`, label filter)."""
    c1, c2, c3, c4, c5 = st.columns([1.2, 1.4, 1.2, 1.5, 1], vertical_alignment="bottom")
    mode = c1.selectbox("Colour by", list(COLOR_MODES), format_func=COLOR_MODES.get, key="explore_color",
                        persist_state=PERSIST)
    k = int(m.cluster.max()) + 1 if len(m.cluster) and (m.cluster >= 0).any() else 0
    sizes = [int((m.cluster == c).sum()) for c in range(k)]
    names = {es.MAP_SELECTION: "Map selection", es.ALL_ITEMS: f"All {item_words(ws)[1]}"}
    shown = c2.selectbox("Show", [es.MAP_SELECTION, es.ALL_ITEMS, *range(k)], key="explore_cluster",
                         persist_state=PERSIST,
                         format_func=lambda c: names.get(c) or f"{m.cluster_name(c)} ({sizes[c]})")
    label_filter = c3.selectbox("Labels", [*es.LABEL_FILTERS, *(c["name"] for c in classes)],
                                key="explore_label_filter", persist_state=PERSIST)
    if view(ws).closeup:  # the items themselves at their positions: only kinds that have pictures
        c4.toggle(f"Close-up with images (≤ {MAX_CLOSEUP})", key="explore_closeup", persist_state=PERSIST)
    c5.button("Clear selection", key="explore_clear", on_click=es.clear_selection, width="stretch")
    return mode, es.picked_source(shown), label_filter


def _map_chart(ws: Workspace, m: MapData, mode: str, shown: str | int, classes: list[dict]) -> None:
    selection = st.session_state.get(es.SELECTION) or []
    # the chart shows its own box/lasso selection; highlighting it too would change the figure,
    # which makes Streamlit remount the chart and lose the user's zoom
    from_chart = tuple(sorted(selection)) == st.session_state.get(es.FROM_CHART)
    coloring = es.coloring(ws, m, mode, classes)
    if mode in ("prediction", "confidence") and ws.store.latest_prediction_run_id() is None:
        st.caption("No predictions yet: train a classifier on the Train page to colour by them.")
    if mode == "suggested" and not (coloring.values >= 0).any():
        st.caption("No open suggestions yet: they appear after an active-learning round (`sslapp suggest`).")
    hover = es.hover_texts(ws, m, classes)
    closeup = st.session_state.get("explore_closeup") and view(ws).closeup
    rows = m.rows_of(es.target_ids(ws, m, shown, "All")) if closeup else None
    if rows is not None and 0 < len(rows) <= MAX_CLOSEUP:
        ids = m.item_ids[rows]
        paths = {r["id"]: str(thumb_path(ws, r)) for r in ws.store.items(ids=[int(i) for i in ids])}
        fig = closeup_figure(m.xy[rows], ids, [paths.get(int(i), "") for i in ids],
                             Coloring(coloring.values[rows], coloring.categories, coloring.title),
                             hover=None if hover is None else [hover[r] for r in rows])
        key = "explore_closeup_map"
    else:
        if rows is not None:
            st.caption(f"Select 1 to {MAX_CLOSEUP} points (or a small cluster) to see them as images.")
        fig = map_figure(m.xy, m.item_ids, coloring, selected=None if from_chart else m.rows_of(selection),
                         hover=hover)
        key = "explore_map"
    event = st.plotly_chart(fig, on_select="rerun", selection_mode=("box", "lasso", "points"), key=key,
                            width="stretch", config=MAP_CONFIG)
    es.selection_from_chart(event, key)


@st.fragment(key=es.BODY)
def _body(ws: Workspace, m: MapData) -> None:
    """The view controls and the map; the selection panel is a fragment inside this one, so a leave-out
    reruns the panel only, and a label action reruns this whole fragment (`sslapp.ui.explore_panel`)."""
    es.sync_from_charts()  # a new box/lasso decides the chart, the message and the grid of this run
    classes = ws.store.classes()
    mode, shown, label_filter = _controls(ws, m, classes)
    map_col, side_col = st.columns([4.5, 1], gap="small")  # the map: > 60% of a 1440 px wide window
    with map_col:
        _map_chart(ws, m, mode, shown, classes)
    selection_panel(ws, m, shown, label_filter, side_col)


def render() -> None:
    st.html(PAGE_CSS)
    ws = require_workspace()
    m = _map_header(ws)
    if m is None:
        return
    es.start_run(int(m.artifact["id"]))
    _body(ws, m)

