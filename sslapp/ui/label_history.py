"""The Label page's undo, redo and history: this tab's own steps, and the workspace's newest label actions.

U undoes this tab's newest step (a label, a skip, a merge, a class deletion), never another tab's, and
Shift+U redoes the step it undid last; a new step leaves nothing to redo, as in any editor. Labels and
whether each action is undone live in the store's label history (SQLite), so the history drawn under the
buttons (the workspace's newest label actions: item, class, when, who) reads the same after a reload or
in another tab, and each of its rows can be undone or redone from there (newer work is never
overwritten: the store keeps a label changed since). A skip is no label: only this tab's steps hold it.
"""

from __future__ import annotations

import time

import streamlit as st

from sslapp.ui.common import count_of, item_words
from sslapp.ui.item_view import md_escape
from sslapp.words import count
from sslapp.workspace import Workspace

UNDO = "label_undo_actions"  # this tab's steps, newest last: (kind, label action id, item id)
REDO = "label_redo_actions"  # the steps this tab undid, the last one undone last
AGAIN = "label_again"  # items this tab took back with Undo, served first (newest first)
MSG = "label_msg"
HISTORY = 5  # label actions shown
# how the history names an action other than a plain label (the store's action names)
ACTIONS = {"relabel": "relabelled", "similar-label": "more like this", "bulk-label": "on the map",
           "import": "imported", "unlabel": "label removed", "bulk-unlabel": "labels removed"}

Step = tuple[str, int | None, int | None]


def record(kind: str, action_id: int | None, item_id: int | None) -> None:
    """A new step of this tab ("label" with its action id, or "skip"): undoable, and nothing left to redo."""
    st.session_state.setdefault(UNDO, []).append((kind, action_id, item_id))
    st.session_state[REDO] = []


def mine() -> set[int]:
    """The items this tab labelled or skipped itself (a second press on one of them is no news)."""
    return {item for _, _, item in st.session_state.get(UNDO, []) if item is not None}


def _say(text: str) -> None:
    st.session_state[MSG] = text


def _take_back(item_id: int | None) -> None:
    if item_id is not None:
        again = [i for i in st.session_state.get(AGAIN, []) if i != item_id]
        st.session_state[AGAIN] = [item_id, *again][:50]


def _words(ws: Workspace, done: dict, verb: str) -> str:
    """What an undo or redo did, in words: how many items, and what it kept or removed."""
    msg = f"{verb} {done['action']} of {count_of(done['items'], item_words(ws))}"
    if done["kept"]:
        msg += f"; {done['kept']} changed since elsewhere and kept their newer label"
    if done["removed_classes"]:
        msg += f"; removed the now empty class {', '.join(done['removed_classes'])}"
    return msg


def _pop(stack_key: str, action_id: int) -> Step | None:
    """Take this tab's step of label action `action_id` off a stack, if it is there."""
    stack = st.session_state.get(stack_key, [])
    for i in range(len(stack) - 1, -1, -1):
        if stack[i][0] == "label" and stack[i][1] == action_id:
            return stack.pop(i)
    return None


def undo(ws: Workspace) -> None:
    """Undo this tab's newest step (never another tab's); it can then be redone."""
    stack = st.session_state.setdefault(UNDO, [])
    if not stack:
        _say("Nothing to undo in this tab.")
        return
    step = stack.pop()
    kind, action_id, item_id = step
    if kind == "skip":
        ws.store.unskip_items([item_id])
        st.session_state.setdefault(REDO, []).append(step)
        _take_back(item_id)
        _say(f"Undid the skip of #{item_id}")
        return
    undone = ws.store.undo_label_action(action_id) if action_id is not None else None
    if undone is None:
        _say("That action was undone elsewhere already.")
        return
    st.session_state.setdefault(REDO, []).append(step)
    if undone["items"]:
        _take_back(item_id)
    _say(_words(ws, undone, "Undid"))


def redo(ws: Workspace) -> None:
    """Redo the step this tab undid last: the same label (or skip) again, unless it changed since."""
    stack = st.session_state.setdefault(REDO, [])
    if not stack:
        _say("Nothing to redo in this tab.")
        return
    step = stack.pop()
    kind, action_id, item_id = step
    if kind == "skip":
        item = ws.store.item(item_id)
        if item is None or item["label"] is not None:
            _say(f"#{item_id} was labelled in the meantime; it stays labelled.")
            return
        ws.store.skip_items([item_id])
        st.session_state.setdefault(UNDO, []).append(step)
        _say(f"Redid the skip of #{item_id}")
        return
    redone = ws.store.redo_label_action(action_id) if action_id is not None else None
    if redone is None:
        _say("That action was redone elsewhere already.")
        return
    st.session_state.setdefault(UNDO, []).append(step)
    _say(_words(ws, redone, "Redid"))


def undo_action(ws: Workspace, action_id: int) -> None:
    """A history row's Undo: that label action, whichever tab made it."""
    undone = ws.store.undo_label_action(action_id)
    if undone is None:
        _say("That action was undone already.")
        return
    step = _pop(UNDO, action_id)
    if step is not None:  # this tab's own: Shift+U redoes it
        st.session_state.setdefault(REDO, []).append(step)
        if undone["items"]:
            _take_back(step[2])
    _say(_words(ws, undone, "Undid"))


def redo_action(ws: Workspace, action_id: int) -> None:
    """A history row's Redo: that undone label action again."""
    redone = ws.store.redo_label_action(action_id)
    if redone is None:
        _say("That action was redone already.")
        return
    step = _pop(REDO, action_id)
    if step is not None:  # this tab's own: U undoes it again
        st.session_state.setdefault(UNDO, []).append(step)
    _say(_words(ws, redone, "Redid"))


def _when(at: float) -> str:
    """A clock time today, else the day too."""
    local = time.localtime(at)
    return time.strftime("%H:%M:%S" if local[:3] == time.localtime()[:3] else "%d %b %H:%M", local)


def describe(action: dict, words: tuple[str, str]) -> str:
    """One history row in words: which items, which class (its name now), and how, e.g. '#12 → cat'."""
    n, old, new = action["n_items"], action["old_class"], action["new_class"]
    what = f"#{action['item_id']}" if n == 1 else count_of(n, words)
    how = ACTIONS.get(action["action"])
    if action["action"] == "merge":
        return f"merged {md_escape(old or '?')} into {md_escape(new or '?')} ({count(n, 'label')})"
    if action["action"] == "delete-class":
        return f"deleted class {md_escape(old or '?')} ({count(n, 'label')})"
    if new is None:
        return f"{what}: {md_escape(old or '?')} {how or 'label removed'}"
    if action["n_classes"] > 1:
        return f"{what} → {action['n_classes']} classes" + (f" ({how})" if how else "")
    return f"{what} → {md_escape(new)}" + (f" ({how})" if how else "")


def history_panel(ws: Workspace) -> None:
    """The workspace's newest label actions from the store, each with its own Undo or Redo."""
    actions = ws.store.label_actions(HISTORY)
    if not actions:
        return
    words = item_words(ws)
    st.caption("History, newest first (every tab's labels; each button acts on its row)")
    for a in actions:
        line = f"{_when(a['created_at'])} · {describe(a, words)}"
        text, button = st.columns([4, 1], vertical_alignment="center")
        text.caption(f"~~{line}~~ undone" if a["undone"] else line,
                     help=f"by {md_escape(a['annotator'])}" if a["annotator"] else None)
        undone = bool(a["undone"])
        button.button("Redo" if undone else "Undo", key=f"label_history_{a['action_id']}", width="stretch",
                      wrap=True, on_click=redo_action if undone else undo_action, args=(ws, a["action_id"]),
                      help="Apply this action again" if undone else "Take this action back (newer labels are kept)")
