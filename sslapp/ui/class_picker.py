"""The class picker of every action that labels many images at once, with a default that is never a trap.

A picker that opened on the first class ("flower") turned one click into 21 cars labelled flower. So
it opens on the class the images themselves point to: the label a person gave, else the classifier's
prediction (the finetune job's, read from the store), held by more than half of them: for one image
(More like this, a clicked point) that is its own label, else its prediction. When nothing points to
a class the picker is empty and the action's button stays disabled until the user chooses.

The default is applied once per "owner" (the image whose More like this is open, the Explore
selection): the user's own choice then stays until the images change.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import streamlit as st

from sslapp.workspace import Workspace

NEW_CLASS = "+ New class…"


def default_class(ws: Workspace, item_ids: Sequence[int]) -> str | None:
    """The label, else the predicted class, that more than half of `item_ids` have; None if no class does."""
    ids = [int(i) for i in item_ids]
    if not ids:
        return None
    predicted = ws.store.predicted_classes(ids)
    return majority([r["label"] or predicted.get(int(r["id"])) for r in ws.store.items(ids=ids)], len(ids))


def majority(names: Sequence[str | None], n: int) -> str | None:
    """The class name held by more than half of `n` items (`names`: one per item, None for none)."""
    votes = Counter(name for name in names if name is not None)
    if not votes:
        return None
    name, held = votes.most_common(1)[0]
    return name if 2 * held > n else None


def class_picker(ws: Workspace, key: str, owner: object, default: Callable[[], str | None], container=None,
                 label: str = "Class") -> str | None:
    """Draw the picker and return its choice (a class name, NEW_CLASS, or None when none is chosen).

    `default` is called only when `owner` changes (a new image or selection), so its store reads cost
    nothing on the reruns in between."""
    names = [c["name"] for c in ws.store.classes()]
    seen = f"_{key}_owner"
    if st.session_state.get(seen) != owner:
        st.session_state[seen] = owner
        picked = default()
        st.session_state[key] = picked if picked in names else None
    elif st.session_state.get(key) not in (*names, NEW_CLASS):
        st.session_state[key] = None  # renamed or deleted meanwhile: choose again
    return (container or st).selectbox(label, [*names, NEW_CLASS], index=None, key=key, placeholder="Pick a class")


def forget(key: str) -> None:
    """The next picker drawn under `key` takes its default again (More like this opened anew)."""
    st.session_state.pop(f"_{key}_owner", None)


def chosen_name(choice: str | None, new_name: str | None) -> str:
    """The class to label with: the picked one, or the typed name of a new one ('' when neither)."""
    return (new_name or "").strip() if choice == NEW_CLASS else (choice or "")
