"""More like this: a dialog with an item's nearest neighbours, to correct and label in one go.

Any page opens it with `more_like_this_button(ws, item_id, key)`. The neighbours come from the
chosen embedding's cached features (`sslapp.curate.similar.cached_features`, numpy only: the page
does no embedding); when they are not cached yet, the dialog says so and offers to draw the map,
which computes them. The grid is `sslapp.ui.selection_grid`, so neighbours that are not alike can be
left out before the bulk label, and the item itself can be labelled with them (an image as a
thumbnail, a text as its start, a sound as its spectrogram: `sslapp.ui.item_view`). The class picker
opens on the item's own label, else the classifier's prediction for it, else on no class
(`sslapp.ui.class_picker`): the bulk label is never one unread click away from a wrong class.
"""

from __future__ import annotations

import streamlit as st

from sslapp.ui import class_picker
from sslapp.ui.common import annotator_name, count_of, file_name, item_words
from sslapp.ui.item_view import md_escape, show_item, view
from sslapp.ui.selection_grid import kept_ids, selection_grid
from sslapp.workspace import Workspace

SIZES = (20, 50, 100)
NEW_CLASS = class_picker.NEW_CLASS
CLASS_KEY = "similar_class"
GRID_KEY = "similar_grid"
UNDO_KEY = "similar_my_actions"
OPEN_KEY = "similar_open"  # the button whose dialog is open: it stays open through reruns the user did not ask for


def _close() -> None:
    st.session_state.pop(OPEN_KEY, None)


def _neighbours(ws: Workspace, item_id: int, k: int) -> tuple[list[dict], str | None]:
    """(rows nearest first, a message when there are none to show)."""
    from sslapp.curate.similar import ItemError, cached_features, similar_items

    index = cached_features(ws)
    if index is None:
        return [], "The features for this are not ready yet: they are computed with the map."
    try:
        return similar_items(ws, item_id, k=k, index=index), None
    except ItemError as exc:
        return [], str(exc)


def _label(ws: Workspace, ids: list[int], name: str) -> None:
    n = ws.store.set_labels(ids, ws.store.class_id(name, create=True, implicit=True), source="user",
                            action="similar-label", annotator=annotator_name())
    action_id = ws.store.last_action_id()
    if action_id is not None:
        st.session_state.setdefault(UNDO_KEY, []).append(action_id)
    st.session_state["similar_msg"] = f"Labelled {count_of(n, item_words(ws))} as **{md_escape(name)}**."


def _undo(ws: Workspace) -> None:
    mine = st.session_state.get(UNDO_KEY, [])
    undone = None
    while mine and undone is None:
        undone = ws.store.undo_label_action(mine.pop())
    st.session_state["similar_msg"] = "Nothing to undo here." if undone is None else (
        f"Undid the label of {count_of(undone['items'], item_words(ws))}.")


@st.dialog("More like this", width="large", on_dismiss=_close)
def _dialog(ws: Workspace, item_id: int) -> None:
    item = ws.store.item(item_id)
    noun, plural = item_words(ws)
    if item is None:
        st.error(f"This {noun} is no longer in the workspace.")
        return
    top = st.columns([1, 4] if view(ws).tiles else [3, 2], vertical_alignment="center")
    with top[0]:
        show_item(ws, item, width=96)
    name = file_name(item["source"])
    top[1].markdown(f"{plural.capitalize()} most like **{md_escape(name)}**"
                    + (f" (labelled **{md_escape(item['label'])}**)" if item.get("label") else "")
                    + f", nearest first. Click a {view(ws).tile_word or noun} to leave it out.")
    k = top[1].segmented_control("How many", SIZES, default=SIZES[0], key="similar_k") or SIZES[0]
    rows, problem = _neighbours(ws, item_id, int(k))
    if problem:
        st.info(problem)
        if st.button("Draw the map now", key="similar_embed"):
            from sslapp.jobs.launcher import ensure_worker, queue_map

            queue_map(ws)
            ensure_worker(ws)
            st.session_state["similar_msg"] = "The map is being drawn; open More like this again when it is ready."
        return
    ids = [r["item"] for r in rows]
    labels = {r["id"]: r.get("label") for r in ws.store.items(ids=ids)}
    include_self = st.checkbox(f"Label {name} too", value=not item.get("label"), key="similar_self")
    c1, c2, c3, c4 = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    choice = class_picker.class_picker(ws, CLASS_KEY, owner=item_id, container=c1,
                                       default=lambda: class_picker.default_class(ws, [item_id]))
    new_name = c2.text_input("New class name", key="similar_new_class") if choice == NEW_CLASS else ""
    kept = kept_ids(GRID_KEY, ids) + ([item_id] if include_self else [])
    target = class_picker.chosen_name(choice, new_name)
    if c3.button(f"Label {count_of(len(kept), (noun, plural))}", type="primary", key="similar_apply",
                 disabled=not (kept and target), width="stretch"):
        _label(ws, kept, target)
        _close()
        st.rerun()  # closes the dialog; the page behind it shows the new labels
    if c4.button("Undo", key="similar_undo", width="stretch", help="Undo the last label given here"):
        _undo(ws)
        _close()
        st.rerun()
    selection_grid(ws, ids, key=GRID_KEY, captions={i: labels.get(i) or "—" for i in ids},
                   tooltips={r["item"]: f"distance {r['distance']:.3f}" for r in rows})


def more_like_this_button(ws: Workspace, item_id: int, key: str, **button_args) -> None:
    """A button that opens the dialog for `item_id` (two clicks from any item to a bulk label)."""
    if st.session_state.get("similar_msg"):
        st.toast(st.session_state.pop("similar_msg"))
    if st.button("More like this", key=key, icon=":material/image_search:", **button_args):
        st.session_state.pop(GRID_KEY, None)
        class_picker.forget(CLASS_KEY)  # its default follows the image as it is now
        st.session_state[OPEN_KEY] = key
    if st.session_state.get(OPEN_KEY) == key:  # a finished background job reruns the page: keep it open
        _dialog(ws, int(item_id))
