"""The Explore page's selection panel: beside the map the clicked item large, or the selection's count,
then the class picker and the label actions; below the map the selection's grid.

Both are one fragment (`selection_panel`), nested in the page's fragment of the controls and the map:
a leave-out in the grid (or Invert, Leave all out, Reset, a page of the grid, a class picked) reruns
only this panel, so the "N left out → labelling K" line and the "Label K selected" button follow
without the map's colours, hover texts and figure being built again. Measured in chromium on 300
images and 2 busy cores this saves little (~0.30 s a leave-out before, ~0.28 s after): most of the time
goes to redrawing the grid's 60 thumbnails and to Streamlit's round trip, not to the map.

The side column is created outside this fragment (by the page's fragment, which writes to it first),
and Streamlit lets a fragment write into such a container. A label action (Label, Remove labels, Undo)
changes the map's colours, so its callback reruns the enclosing fragment by its key (`st.rerun(es.BODY)`,
allowed in a widget callback since Streamlit 1.67), which draws the map and this panel again.
"""

from __future__ import annotations

import io

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from sslapp.maps.read import MapData
from sslapp.ui import class_picker
from sslapp.ui import explore_state as es
from sslapp.ui.common import annotator_name, count_of, item_words, thumb_path
from sslapp.ui.item_view import show_item, view
from sslapp.ui.selection_grid import kept_ids, left_out, selection_grid
from sslapp.ui.similar import more_like_this_button
from sslapp.words import count
from sslapp.workspace import Workspace

UNDO_KEY = "explore_my_actions"  # this tab's label action ids, oldest first
NEW_CLASS = class_picker.NEW_CLASS
PREVIEW_PX = 480
PREVIEW_TEXT_PX = 380  # a clicked text scrolls inside this height in the side panel
GRID_INFO_MAX = 2000  # above this many items the grid's tooltips name the file only (one store read less)
NO_CLASSIFIER = ("No model has checked the labels yet. Press **Check my labels** on the Train page (each label "
                 "predicted by models that never saw it) or train a classifier there first; this filter then "
                 "shows the labelled {plural} they point to another class.")


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


def _redraw_map() -> None:
    """After a label action: the map's colours changed, so the page's fragment (the map with this panel
    inside it) reruns instead of this panel alone."""
    st.rerun(es.BODY)


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
    _redraw_map()


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
    if n:
        _redraw_map()


def _undo(ws: Workspace) -> None:
    mine = st.session_state.get(UNDO_KEY, [])
    undone = None
    while mine and undone is None:  # an action undone elsewhere is skipped
        undone = ws.store.undo_label_action(mine.pop())
    st.session_state["explore_msg"] = ("Nothing of yours to undo on this page." if undone is None else
                                       f"Undid {undone['action']} of {count_of(undone['items'], item_words(ws))}.")
    if undone is not None:
        _redraw_map()


def _where(shown: str | int) -> tuple[str, str]:
    """How the panel names what the grid shows: (after a count, after "No images")."""
    if shown == es.ALL_ITEMS:
        return "in the workspace", "in the workspace"
    source = "map selection" if shown == es.MAP_SELECTION else f"cluster {shown}"
    return f"from the {source}", f"in the {source}"


def _side_panel(ws: Workspace, m: MapData, ids: list[int], shown: str | int, label_filter: str) -> None:
    """The clicked item or the selection's count, then the label actions (button callbacks, which run
    before the rerun, so the map and grid show their effect at once)."""
    noun, plural = item_words(ws)
    kept = kept_ids(es.GRID, ids)
    counted, within = _where(shown)
    if len(ids) == 1:
        _preview(ws, ids[0], m)
    elif ids:
        n_out = len(left_out(es.GRID, ids))
        st.markdown(f"**{len(ids):,}** {noun if len(ids) == 1 else plural} {counted}"
                    + (f" · filter: {label_filter}" if label_filter != "All" else "")
                    + (f" · {n_out} left out → labelling **{len(kept)}**" if n_out else ""))
    elif shown == es.MAP_SELECTION and not st.session_state.get(es.SELECTION):
        st.info(f"Click a point to see its {noun}. To see and label many, pick **Lasso** or **Box select** in "
                "the map's toolbar (top right) and draw around them, or pick a cluster under **Show**.")
    elif label_filter == es.DISAGREES and not es.can_disagree(ws):
        st.info(NO_CLASSIFIER.format(plural=plural))
    else:
        st.info(f"No {plural} {within} match the label filter '{label_filter}'.")
    choice = class_picker.class_picker(ws, "explore_class", owner=(len(ids), hash(tuple(ids))),
                                       default=lambda: es.disagreement_class(ws, ids) if label_filter == es.DISAGREES
                                       else class_picker.default_class(ws, ids))
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


def _grid(ws: Workspace, m: MapData, ids: list[int]) -> None:
    info = es.item_info(ws, m, ids, ws.store.classes()) if len(ids) <= GRID_INFO_MAX else {}
    tips = {}
    for i, d in info.items():
        tip = f"#{i} · {d['name']} · {d['cluster_name']}"
        if d["prediction"]:
            tip += f" · predicted {d['prediction'][0]} ({d['prediction'][1]:.0%})"
        tips[i] = tip
    selection_grid(ws, ids, es.GRID, tooltips=tips)


@st.fragment
def selection_panel(ws: Workspace, m: MapData, shown: str | int, label_filter: str, side: DeltaGenerator) -> None:
    """The side panel (into `side`, the column beside the map) and the grid (here, below the map).

    The items are read again on each run: a rerun of this fragment alone gets the arguments of the
    page's last run, and the store may have changed since (another tab labelled some)."""
    ids = es.target_ids(ws, m, shown, label_filter)
    with side:
        _side_panel(ws, m, ids, shown, label_filter)
    if len(ids) > 1:
        _grid(ws, m, ids)
