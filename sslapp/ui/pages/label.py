"""The Label page: one image at a time from a queue, one click or one key per label.

Keys (Streamlit's native button shortcuts, no extra component): 1-9 label the current image with
the first nine classes, S skips it, U undoes the last action. The queue is the open active-learning
suggestions, or, until there are any, unlabelled images taken round-robin over the map's clusters
(random order when there is no map). Every label is written to the database at once and the
queue is read back from it on each run, so a refresh loses nothing and two tabs never overwrite
each other's work (they only may show the same next image).
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from sslapp.embed.maps import load_map
from sslapp.jobs.launcher import ensure_worker
from sslapp.jobs.states import JobState
from sslapp.select import STRATEGIES
from sslapp.ui.common import job_status_line, require_workspace, thumb_path
from sslapp.workspace import Workspace

UPCOMING = 12
UNDO = "label_undo_stack"  # this tab's own actions: ("label", None) or ("skip", item_id)


def build_queue(ws: Workspace, limit: int = UPCOMING + 1, seed: int = 0) -> list[tuple[int, str]]:
    """(item id, why it is next) for the next `limit` images to label."""
    sugg = ws.store.open_suggestions()
    if sugg:
        return [(int(s["item_id"]), f"{s['strategy']}: {s['reason']}") for s in sugg[:limit]]
    todo = np.array(ws.store.unlabeled_ids(), np.int64)
    if len(todo) == 0:
        return []
    rng = np.random.default_rng(seed)
    m = load_map(ws)
    if m is not None and len(m.item_ids):
        rows = m.rows_of(todo)
        on_map = m.item_ids[rows]
        clusters = m.cluster[rows]
        per_cluster = []
        for c in np.unique(clusters):
            members = on_map[clusters == c]
            per_cluster.append((int(c), members[np.random.default_rng(seed + int(c) + 1).permutation(len(members))]))
        out: list[tuple[int, str]] = []
        depth = 0
        while len(out) < limit and any(depth < len(mem) for _, mem in per_cluster):
            for c, mem in per_cluster:
                if depth < len(mem) and len(out) < limit:
                    name = "noise" if c < 0 else f"cluster {c}"
                    out.append((int(mem[depth]), f"{name}: one per cluster in turn, so every group gets labels"))
            depth += 1
        if len(out) < limit:  # images added since the map was made
            missing = np.setdiff1d(todo, on_map)
            out += [(int(i), "new image, not on the map yet") for i in rng.permutation(missing)[:limit - len(out)]]
        return out
    return [(int(i), "random unlabelled image (compute a map for cluster-balanced picks)")
            for i in rng.permutation(todo)[:limit]]


def progress_line(classes: list[dict]) -> str:
    total = sum(c["n_labels"] for c in classes)
    few = sum(1 for c in classes if c["n_labels"] < 2)
    return f"{total} labelled · {len(classes)} classes · {few} with fewer than 2 labels"


def _target(ws: Workspace, item_id: int) -> int | None:
    """The image a key press means: the one drawn, unless this tab just handled it.

    Two quick presses can reach the server before the page is redrawn; the second then still
    carries the first image's id, and the user meant the next image in the queue.
    """
    stack = st.session_state.get(UNDO) or []
    if stack and stack[-1][1] == item_id:
        queue = build_queue(ws, limit=1)
        return queue[0][0] if queue else None
    return item_id


def _label(ws: Workspace, item_id: int, class_id: int, name: str) -> None:
    item_id = _target(ws, item_id)
    if item_id is None:
        return
    current = ws.store.item(item_id)
    if current is not None and current["label"] is not None:
        # another tab (or the Explore page) labelled it since this page was drawn: keep that label
        st.session_state["label_msg"] = (f"#{item_id} was labelled '{current['label']}' elsewhere in the "
                                         "meantime; kept that label. Here is the next image.")
        return
    ws.store.set_labels([item_id], class_id, source="user", action="label")
    st.session_state.setdefault(UNDO, []).append(("label", item_id))
    st.session_state["label_msg"] = f"#{item_id} → {name}"


def _skip(ws: Workspace, item_id: int) -> None:
    item_id = _target(ws, item_id)
    if item_id is None:
        return
    ws.store.skip_items([item_id])
    st.session_state.setdefault(UNDO, []).append(("skip", item_id))
    st.session_state["label_msg"] = f"#{item_id} skipped"


def _undo(ws: Workspace) -> None:
    stack = st.session_state.setdefault(UNDO, [])
    kind, item_id = stack.pop() if stack else ("label", None)
    if kind == "skip":
        ws.store.unskip_items([item_id])
        st.session_state["label_msg"] = f"Undid the skip of #{item_id}"
        return
    undone = ws.store.undo_last_label_action()
    st.session_state["label_msg"] = ("Nothing to undo." if undone is None
                                     else f"Undid {undone['action']} of {undone['items']} image(s)")


def _current(ws: Workspace, queue: list[tuple[int, str]], classes: list[dict]) -> None:
    item_id, reason = queue[0]
    item = ws.store.item(item_id)
    left, right = st.columns([1, 2], gap="large")
    with left:
        path = thumb_path(ws, item) if item else None
        if path is not None and path.exists():
            st.image(str(path), width=260)
        st.caption(f"#{item_id} · {item['source'] if item else ''}")
        st.caption(f"Why this one: {reason}")
    with right:
        if not classes:
            st.info("Create your first classes below (for example 'cat' and 'dog'), then label with 1-9.")
        cols = st.columns(3)
        for i, c in enumerate(classes):
            shortcut = str(i + 1) if i < 9 else None
            cols[i % 3].button(f"{i + 1} · {c['name']}" if shortcut else c["name"], key=f"label_class_{c['id']}",
                               shortcut=shortcut, width="stretch", on_click=_label,
                               args=(ws, item_id, c["id"], c["name"]))
        a, b = st.columns(2)
        a.button("Skip (S)", key="label_skip", shortcut="s", on_click=_skip, args=(ws, item_id),
                 width="stretch")
        b.button("Undo (U)", key="label_undo", shortcut="u", on_click=_undo, args=(ws,), width="stretch")
        msg = st.session_state.pop("label_msg", None)
        if msg:
            st.caption(f"Last: {msg}")


def _upcoming(ws: Workspace, queue: list[tuple[int, str]]) -> None:
    if len(queue) < 2:
        return
    st.markdown("**Up next**")
    items = {r["id"]: r for r in ws.store.items(ids=[i for i, _ in queue[1:]])}
    cols = st.columns(6)
    for n, (item_id, reason) in enumerate(queue[1:]):
        item = items.get(item_id)
        if item is None:
            continue
        with cols[n % 6]:
            path = thumb_path(ws, item)
            if path.exists():
                st.image(str(path), width="stretch")
            st.caption(f"#{item_id}", help=reason)


def _add_class(ws: Workspace, existing: set[str]) -> None:
    """Button callback: create the typed class and clear the box for the next one."""
    name = st.session_state.get("label_new_class_name", "").strip()
    if not name:
        st.session_state["label_class_warn"] = "Type a class name first."
    elif name in existing:
        st.session_state["label_class_warn"] = f"A class named '{name}' already exists."
    else:
        ws.store.class_id(name, create=True)
        st.session_state["label_new_class_name"] = ""


def _classes_panel(ws: Workspace, classes: list[dict]) -> None:
    store = ws.store
    by_name = {c["name"]: c for c in classes}
    with st.expander("Classes: create, rename, merge, delete", expanded=not classes):
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        c1.text_input("New class", key="label_new_class_name", placeholder="e.g. cat")
        c2.button("Add class", key="label_add_class", on_click=_add_class, args=(ws, set(by_name)))
        warn = st.session_state.pop("label_class_warn", None)
        if warn:
            st.warning(warn)
        if not classes:
            return
        st.markdown(" · ".join(f"**{c['name']}** ({c['n_labels']})" for c in classes))
        names = list(by_name)
        r1, r2, r3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        old = r1.selectbox("Rename", names, key="label_rename_from")
        new = r2.text_input("to", key="label_rename_to")
        if r3.button("Rename", key="label_rename"):
            try:
                store.rename_class(by_name[old]["id"], new)
                st.rerun()
            except ValueError as exc:
                st.warning(str(exc))
        m1, m2, m3 = st.columns([2, 2, 1], vertical_alignment="bottom")
        src = m1.selectbox("Merge", names, key="label_merge_from")
        dst = m2.selectbox("into", names, key="label_merge_into", index=min(1, len(names) - 1))
        if m3.button("Merge", key="label_merge"):
            if src == dst:
                st.warning("Pick two different classes to merge.")
            else:
                moved = store.merge_classes(by_name[src]["id"], by_name[dst]["id"])
                st.session_state["label_msg"] = f"Merged {src} into {dst} ({moved} labels moved; Undo restores them)"
                st.rerun()
        d1, d2 = st.columns([4, 1], vertical_alignment="bottom")
        victim = d1.selectbox("Delete", names, key="label_delete_name")
        pending = st.session_state.get("label_confirm_delete")
        if d2.button("Delete", key="label_delete"):
            if by_name[victim]["n_labels"] == 0:
                store.delete_class(by_name[victim]["id"])
                st.rerun()
            st.session_state["label_confirm_delete"] = pending = by_name[victim]["id"]
        if pending is not None:
            target = next((c for c in classes if c["id"] == pending), None)
            if target is None:
                st.session_state.pop("label_confirm_delete", None)
                return
            st.warning(f"Delete **{target['name']}** and remove its {target['n_labels']} label(s)? "
                       "The label history keeps them, and Undo brings them back.")
            y, n = st.columns(2)
            if y.button(f"Yes, delete {target['name']}", key="label_delete_confirm", type="primary"):
                store.delete_class(pending)
                st.session_state.pop("label_confirm_delete", None)
                st.rerun()
            if n.button("Cancel", key="label_delete_cancel"):
                st.session_state.pop("label_confirm_delete", None)
                st.rerun()


def _suggest_panel(ws: Workspace) -> None:
    """Ask the worker for the next images to label (active learning), and say how it went."""
    with st.expander("Suggest the next images (active learning)", expanded=not ws.store.open_suggestions()):
        c1, c2, c3 = st.columns([1, 2, 1], vertical_alignment="bottom")
        budget = c1.number_input("How many", min_value=1, max_value=1000, value=20, key="label_suggest_budget")
        strategy = c2.selectbox("Strategy", sorted(STRATEGIES, key=lambda s: s != "auto"), key="label_suggest_strategy",
                                help="auto: typical, covering picks while labels are few; then uncertain "
                                     "and diverse ones.")
        if c3.button("Suggest", key="label_suggest", type="primary"):
            ws.store.enqueue_job("suggest", {"budget": int(budget), "strategy": strategy})
            ensure_worker(ws)
        busy = bool(ws.store.jobs(kind="suggest", statuses=(JobState.QUEUED, JobState.RUNNING), limit=1))
        st.fragment(run_every=1.0 if busy else None)(_suggest_status)(ws)  # polls only while a job runs


def _suggest_status(ws: Workspace) -> None:
    jobs = ws.store.jobs(kind="suggest", limit=1)
    if not jobs:
        return
    job = jobs[0]
    if job["status"] in (JobState.QUEUED, JobState.RUNNING):
        st.caption(job_status_line(job))
        st.session_state["label_suggest_waiting"] = job["id"]
    elif job["status"] == JobState.FAILED:
        st.error(f"Suggestions failed: {job['error']}")
    elif job["status"] == JobState.DONE:
        for note in (job.get("result") or {}).get("notes", []):
            st.info(note)
        if st.session_state.pop("label_suggest_waiting", None) == job["id"]:
            st.rerun()  # the queue above is now the new suggestions


def render() -> None:
    st.title("Label")
    ws = require_workspace()
    classes = ws.store.classes()
    st.markdown(progress_line(classes))
    if ws.store.count_items() == 0:
        st.info("No images yet. Add images on the Data page first.")
        return
    queue = build_queue(ws)
    if not queue:
        st.success("Every image is labelled or skipped. Train a classifier on the Train page, or ask for "
                   "new suggestions.")
        if st.button("Undo (U)", key="label_undo", shortcut="u"):
            _undo(ws)
            st.rerun()
    else:
        if not ws.store.open_suggestions():
            st.caption("No active-learning suggestions yet: showing unlabelled images balanced over clusters.")
        _current(ws, queue, classes)
        _upcoming(ws, queue)
    _suggest_panel(ws)
    _classes_panel(ws, classes)
