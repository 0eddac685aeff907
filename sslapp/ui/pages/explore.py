"""The Explore page: the map is the page.

Top to bottom: the map's status and its compute/refresh controls in one row; the view controls
(colour, cluster, label filter, close-up, clear) in one row; the map (about three quarters of the
width, 680 px tall) with a side panel beside it: the clicked item shown large (`_preview`: an image
from its original file, a text whole, a sound's spectrogram and its player), or the selection's count
and the label actions; below the map, the selection's items (thumbnails or spectrograms, or texts one
to a row), each a toggle that leaves it out of the label action (`sslapp.ui.selection_grid`).
Items are drawn by `sslapp.ui.item_view`: the close-up (the images themselves at their map positions)
is offered only for kinds it can draw; a text's hover shows its start.

The view controls, the map, the side panel and the grid live in one `st.fragment`, so a selection
or a click on a thumbnail reruns only that part. The selection is `st.session_state
["explore_selection"]` (a list of item ids, see `sslapp.ui.explore_state`); the widgets keep their
values across page switches (`persist_state="session"`), and a new map clears the selection.
Stable keys for browser tests: chart `explore_map` (or `explore_closeup_map`), buttons
`explore_apply_label`, `explore_remove_labels`, `explore_undo`, `explore_clear`, `explore_embed`,
the preview `explore_preview`, the grid `explore_grid` (its keys: `sslapp.ui.selection_grid`).
The class picker `explore_class` opens, for each new selection, on the class most of its items are
labelled or predicted as, else on no class (`sslapp.ui.class_picker`); "Label N selected" waits for a class.
"""

from __future__ import annotations

import io

import streamlit as st

from sslapp.maps.read import MapData, map_status
from sslapp.modalities import workspace_modality
from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui import class_picker
from sslapp.ui import explore_state as es
from sslapp.ui.common import (
    annotator_name,
    count_of,
    embedding_line,
    item_words,
    job_status_line,
    require_workspace,
    thumb_path,
)
from sslapp.ui.item_view import show_item, view
from sslapp.ui.map import COLOR_MODES, MAP_CONFIG, MAX_CLOSEUP, Coloring, closeup_figure, map_figure
from sslapp.ui.selection_grid import kept_ids, left_out, selection_grid
from sslapp.ui.similar import more_like_this_button
from sslapp.words import count
from sslapp.workspace import Workspace

UNDO_KEY = "explore_my_actions"  # this tab's label action ids, oldest first

NEW_CLASS = class_picker.NEW_CLASS
LABEL_FILTERS = ("All", "Unlabelled", "Labelled")
PERSIST = "session"  # widget values survive a switch to another page and back
PREVIEW_PX = 480
PREVIEW_TEXT_PX = 380  # a clicked text scrolls inside this height in the side panel
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
            _job_progress(ws, running[0]["id"])
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


def _first_look(ws: Workspace) -> tuple[str, str, str]:
    """(what the provisional map is drawn from, in short and in full; what the chosen embedding may be)."""
    quick = "the items themselves, without an encoder"
    return FIRST_LOOK.get(workspace_modality(ws).preview, (quick, quick, "the best encoder the app has"))


def _controls(ws: Workspace, m: MapData, classes: list[dict]) -> tuple[str, int | None, str]:
    c1, c2, c3, c4, c5 = st.columns([1.2, 1.4, 1.2, 1.5, 1], vertical_alignment="bottom")
    mode = c1.selectbox("Colour by", list(COLOR_MODES), format_func=COLOR_MODES.get, key="explore_color",
                        persist_state=PERSIST)
    k = int(m.cluster.max()) + 1 if len(m.cluster) and (m.cluster >= 0).any() else 0
    sizes = [int((m.cluster == c).sum()) for c in range(k)]
    shown = c2.selectbox("Show", [es.MAP_SELECTION, *range(k)], key="explore_cluster", persist_state=PERSIST,
                         format_func=lambda c: "Map selection" if c == es.MAP_SELECTION else f"{m.cluster_name(c)} ({sizes[c]})")
    cluster = es.picked_cluster(shown)
    label_filter = c3.selectbox("Labels", [*LABEL_FILTERS, *(c["name"] for c in classes)],
                                key="explore_label_filter", persist_state=PERSIST)
    if view(ws).closeup:  # the items themselves at their positions: only kinds that have pictures
        c4.toggle(f"Close-up with images (≤ {MAX_CLOSEUP})", key="explore_closeup", persist_state=PERSIST)
    c5.button("Clear selection", key="explore_clear", on_click=es.clear_selection, width="stretch")
    return mode, cluster, label_filter


def _map_chart(ws: Workspace, m: MapData, mode: str, cluster: int | None, classes: list[dict]) -> None:
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
    rows = m.rows_of(es.target_ids(ws, m, cluster, "All")) if closeup else None
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


@st.cache_data(show_spinner=False, max_entries=16)
def _large_image(path: str) -> bytes | None:
    """The original file, at most PREVIEW_PX on its longest side, as PNG bytes (None if unreadable)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img.seek(0)
            im = ImageOps.exif_transpose(img).convert("RGB")
    except (OSError, ValueError):
        return None
    im.thumbnail((PREVIEW_PX, PREVIEW_PX))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _preview(ws: Workspace, item_id: int, m: MapData | None = None) -> None:
    """The clicked item, large (an image from its original file; a text whole, scrolling; a sound's
    spectrogram and its player), with its file name (base name only), label, cluster and prediction.

    Drawn in the side panel when the selection is a single item; the label actions follow it.
    "More like this" opens its nearest neighbours (`sslapp.ui.similar`).
    """
    info = es.item_info(ws, m, [item_id], ws.store.classes()).get(item_id)
    with st.container(key="explore_preview"):
        if info is None:
            st.caption(f"{item_words(ws)[0].capitalize()} #{item_id} is no longer in the workspace.")
            return
        item = ws.store.item(item_id)
        if not view(ws).tiles:
            with st.container(height=PREVIEW_TEXT_PX, border=False):
                show_item(ws, item, chars=None)
        elif view(ws).from_original:
            data = _large_image(str(ws.root / item["original"])) if item.get("original") else None
            if data is None and thumb_path(ws, item).exists():
                data = thumb_path(ws, item).read_bytes()
            if data is not None:
                st.image(data, width="stretch")
        else:
            show_item(ws, item, chars=None, large=True)
        st.markdown(f"**{info['name']}** · #{item_id}")
        pred = info["prediction"]
        st.markdown(f"Label: **{info['label'] or '—'}**  \nCluster: **{info['cluster_name']}**  \n"
                    f"Prediction: **{f'{pred[0]} ({pred[1]:.0%})' if pred else '—'}**")
        more_like_this_button(ws, item_id, key="explore_similar", width="stretch")


def _apply_label(ws: Workspace, m: MapData) -> None:
    ids = es.fresh_targets(ws, m)
    name = class_picker.chosen_name(st.session_state.get("explore_class"), st.session_state.get("explore_new_class"))
    if not name:
        st.session_state["explore_warn"] = "Type a name for the new class, or pick an existing class."
        return
    if not ids:
        st.session_state["explore_warn"] = "Nothing is selected: select points on the map or pick a cluster."
        return
    n = ws.store.set_labels(ids, ws.store.class_id(name, create=True, implicit=True), source="user", action="bulk-label",
                            annotator=annotator_name())
    _remember_action(ws)
    st.session_state["explore_msg"] = f"Labelled {count_of(n, item_words(ws))} as **{name}**. Undo is one click away."


def _remember_action(ws: Workspace) -> None:
    """Undo on this page reverts this tab's own actions, newest first, never another tab's."""
    action_id = ws.store.last_action_id()
    if action_id is not None:
        st.session_state.setdefault(UNDO_KEY, []).append(action_id)


def _remove_labels(ws: Workspace, m: MapData) -> None:
    ids = es.fresh_targets(ws, m)
    n = ws.store.remove_labels(ids, action="bulk-unlabel")
    _remember_action(ws)
    st.session_state["explore_msg"] = (f"Removed {count(n, 'label')}." if n else
                                       f"None of the selected {item_words(ws)[1]} had a label.")


def _undo(ws: Workspace) -> None:
    mine = st.session_state.get(UNDO_KEY, [])
    undone = None
    while mine and undone is None:  # an action undone elsewhere is skipped
        undone = ws.store.undo_label_action(mine.pop())
    st.session_state["explore_msg"] = ("Nothing of yours to undo on this page." if undone is None else
                                       f"Undid {undone['action']} of {count_of(undone['items'], item_words(ws))}.")


def _side_panel(ws: Workspace, m: MapData, ids: list[int], cluster: int | None, label_filter: str,
                classes: list[dict]) -> None:
    """The clicked item or the selection's count, then the label actions (button callbacks, which run
    before the rerun, so the map and grid show their effect at once)."""
    source = f"cluster {cluster}" if cluster is not None else "map selection"
    noun, plural = item_words(ws)
    kept = kept_ids(es.GRID, ids)
    if len(ids) == 1:
        _preview(ws, ids[0], m)
    elif ids:
        n_out = len(left_out(es.GRID, ids))
        st.markdown(f"**{len(ids):,}** {noun if len(ids) == 1 else plural} from the {source}"
                    + (f" · filter: {label_filter}" if label_filter != "All" else "")
                    + (f" · {n_out} left out → labelling **{len(kept)}**" if n_out else ""))
    elif cluster is None and not st.session_state.get(es.SELECTION):
        st.info(f"Click a point to see its {noun}. To see and label many, pick **Lasso** or **Box select** in "
                "the map's toolbar (top right) and draw around them, or pick a cluster under **Show**.")
    else:
        st.info(f"No {plural} in the {source} match the label filter '{label_filter}'.")
    choice = class_picker.class_picker(ws, "explore_class", owner=(len(ids), hash(tuple(ids))),
                                       default=lambda: class_picker.default_class(ws, ids))
    st.text_input("New class name", key="explore_new_class", disabled=choice != NEW_CLASS, placeholder="e.g. cat")
    st.button(f"Label {len(kept)} selected", key="explore_apply_label", type="primary", disabled=not (kept and choice),
              on_click=_apply_label, args=(ws, m), width="stretch")
    c1, c2 = st.columns([1.6, 1])
    c1.button("Remove labels", key="explore_remove_labels", disabled=not kept, on_click=_remove_labels,
              args=(ws, m), width="stretch")
    c2.button("Undo", key="explore_undo", on_click=_undo, args=(ws,), width="stretch")
    warn = st.session_state.pop("explore_warn", None)
    if warn:
        st.warning(warn)
    msg = st.session_state.pop("explore_msg", None)
    if msg:
        st.success(msg)


def _grid(ws: Workspace, m: MapData, ids: list[int], classes: list[dict]) -> None:
    info = es.item_info(ws, m, ids[:2000], classes) if len(ids) <= 2000 else {}
    tips = {}
    for i, d in info.items():
        tip = f"#{i} · {d['name']} · {d['cluster_name']}"
        if d["prediction"]:
            tip += f" · predicted {d['prediction'][0]} ({d['prediction'][1]:.0%})"
        tips[i] = tip
    selection_grid(ws, ids, es.GRID, tooltips=tips)


@st.fragment
def _body(ws: Workspace, m: MapData) -> None:
    es.sync_from_charts()  # a new box/lasso decides the chart, the message and the grid of this run
    classes = ws.store.classes()
    mode, cluster, label_filter = _controls(ws, m, classes)
    map_col, side_col = st.columns([4.5, 1], gap="small")  # the map: > 60% of a 1440 px wide window
    with map_col:
        _map_chart(ws, m, mode, cluster, classes)
    ids = es.target_ids(ws, m, cluster, label_filter)
    with side_col:
        _side_panel(ws, m, ids, cluster, label_filter, classes)
    if len(ids) > 1:
        _grid(ws, m, ids, classes)


def render() -> None:
    st.html(PAGE_CSS)
    ws = require_workspace()
    m = _map_header(ws)
    if m is None:
        return
    es.start_run(int(m.artifact["id"]))
    _body(ws, m)

