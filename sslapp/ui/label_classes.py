"""The Label page's classes: their keyboard keys, and the panel that creates, renames, merges and deletes them.

The panel sits under the labelling buttons on every state of the page (no items yet, an item to label,
nothing left), open while there are no classes, so a class missing halfway through is one click away.

Keys: 1-9 for the first nine classes, 0 for the tenth, then letters along the keyboard rows, leaving
out S (skip), U (undo; Shift+U redoes), M (more like this) and A (accept the model's guess) of this page
and C and R, which Streamlit keeps for itself.
A class button wraps its text onto more lines rather than cutting it ("3 · autom..." in a narrow column),
shows a very long name up to a word near BUTTON_CHARS, and its tooltip always holds the whole name.
"""

from __future__ import annotations

import re

import streamlit as st

from sslapp.ui.item_view import clip, md_escape
from sslapp.ui.label_history import record
from sslapp.words import count
from sslapp.workspace import Workspace

PAGE_KEYS = {"s", "u", "m", "a"}  # skip, undo (and Shift+U redo), more like this, accept the model's guess
CLASS_KEYS = [k for k in "1234567890qwertyuiopasdfghjklzxcvbnm" if k not in PAGE_KEYS | {"c", "r"}]
NEW_CLASSES = "label_new_class_name"
BUTTON_CHARS = 40  # a longer class name is cut after a word on its button (the tooltip has it whole)


def class_key(index: int) -> str | None:
    """The key that labels with the class at `index` (creation order), or None past the last key."""
    return CLASS_KEYS[index] if index < len(CLASS_KEYS) else None


def button_label(index: int, name: str) -> str:
    """The class button's text: its key, then its name as plain text (cut after a word past BUTTON_CHARS)."""
    key = class_key(index)
    shown = md_escape(clip(name, BUTTON_CHARS))
    return f"{key.upper()} · {shown}" if key else shown


def button_help(index: int, name: str) -> str:
    """The class button's tooltip: the whole name, and its key."""
    key = class_key(index)
    return f"Label as **{md_escape(name)}**" + (f" (key {key.upper()})" if key else "")


def parse_names(text: str) -> list[str]:
    """Class names from text: comma-separated, one per line, or both; blanks and repeats dropped."""
    return list(dict.fromkeys(n.strip() for n in re.split(r"[,\n]", text or "") if n.strip()))


def _add_classes(ws: Workspace) -> None:
    """Form callback: create every typed class (the form clears itself for the next ones)."""
    names = parse_names(st.session_state.get(NEW_CLASSES, ""))
    if not names:
        st.session_state["label_class_warn"] = "Type one or more class names first (e.g. cat, dog, bird)."
        return
    result = ws.store.add_classes(names)
    parts = []
    if result["created"]:
        parts.append(f"Added {count(len(result['created']), 'class')}: {', '.join(result['created'])}.")
    if result["existing"]:
        parts.append(f"Already there: {', '.join(result['existing'])}.")
    st.session_state["label_class_note"] = " ".join(parts)


def _remember(ws: Workspace) -> None:
    """Put the label action just written (a merge, a class deletion) on this tab's undo stack."""
    action_id = ws.store.last_action_id()
    if action_id is not None:
        record("label", action_id, None)


def classes_panel(ws: Workspace, classes: list[dict]) -> None:
    store = ws.store
    by_name = {c["name"]: c for c in classes}
    with st.expander("Classes: create, rename, merge, delete", expanded=not classes):
        with st.form("label_new_classes", clear_on_submit=True, border=False):
            st.text_area("New classes", key=NEW_CLASSES, height=68, placeholder="cat, dog, bird  (or one per line)",
                         help="Comma-separated or one per line; Ctrl+Enter adds them.")
            st.form_submit_button("Add classes", key="label_add_class", on_click=_add_classes, args=(ws,), wrap=True)
        for kind, key in (("warning", "label_class_warn"), ("success", "label_class_note")):
            text = st.session_state.pop(key, None)
            if text:
                getattr(st, kind)(text)
        if not classes:
            return
        st.markdown(" · ".join(f"`{class_key(i).upper()}` **{md_escape(c['name'])}** ({c['n_labels']})" if class_key(i)
                               else f"**{md_escape(c['name'])}** ({c['n_labels']})" for i, c in enumerate(classes)))
        names = list(by_name)
        r1, r2, r3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        old = r1.selectbox("Rename", names, key="label_rename_from")
        new = r2.text_input("to", key="label_rename_to")
        if r3.button("Rename", key="label_rename", wrap=True):
            try:
                store.rename_class(by_name[old]["id"], new)
                st.rerun()
            except ValueError as exc:
                st.warning(str(exc))
        m1, m2, m3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        # no class picked for the user: a merge moves every label of one class (issue 22)
        src = m1.selectbox("Merge", names, key="label_merge_from", index=None, placeholder="Pick a class")
        dst = m2.selectbox("into", names, key="label_merge_into", index=None, placeholder="Pick a class")
        if m3.button("Merge", key="label_merge", disabled=not (src and dst), wrap=True):
            if src == dst:
                st.warning("Pick two different classes to merge.")
            else:
                moved = store.merge_classes(by_name[src]["id"], by_name[dst]["id"])
                _remember(ws)
                st.session_state["label_msg"] = f"Merged {src} into {dst} ({count(moved, 'label')} moved; Undo restores them)"
                st.rerun()
        _delete_row(ws, classes, by_name, names)


def _delete_row(ws: Workspace, classes: list[dict], by_name: dict[str, dict], names: list[str]) -> None:
    store = ws.store
    d1, d2 = st.columns([4, 1], vertical_alignment="bottom")
    victim = d1.selectbox("Delete", names, key="label_delete_name", index=None, placeholder="Pick a class")
    pending = st.session_state.get("label_confirm_delete")
    if d2.button("Delete", key="label_delete", disabled=victim is None, wrap=True):
        if by_name[victim]["n_labels"] == 0:
            store.delete_class(by_name[victim]["id"])
            st.rerun()
        st.session_state["label_confirm_delete"] = pending = by_name[victim]["id"]
    if pending is None:
        return
    target = next((c for c in classes if c["id"] == pending), None)
    if target is None:
        st.session_state.pop("label_confirm_delete", None)
        return
    st.warning(f"Delete **{target['name']}** and remove its {count(target['n_labels'], 'label')}? "
               "The label history keeps them, and Undo brings them back.")
    y, n = st.columns(2)
    if y.button(f"Yes, delete {md_escape(target['name'])}", key="label_delete_confirm", type="primary", wrap=True):
        store.delete_class(pending)
        _remember(ws)
        st.session_state.pop("label_confirm_delete", None)
        st.rerun()
    if n.button("Cancel", key="label_delete_cancel", wrap=True):
        st.session_state.pop("label_confirm_delete", None)
        st.rerun()
