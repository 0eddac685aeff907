"""A grid of a selection's items that the user corrects before acting on it.

Every lasso or box selection on real data is mixed, so each item is a toggle: a click leaves
it out (it fades, grey, with a red frame) and a second click takes it back. Images and sounds are
tiles of their pictures (thumbnails, spectrograms); texts (any kind `sslapp.ui.item_view` lays out in rows) a compact list, one row per text
with its first ~200 characters, the whole row the toggle and more of the text in its tooltip. "Invert",
"Leave all out" (then click the few to keep) and "Reset" act on the whole selection. The caller
acts on the ids `selection_grid` returns, the kept ones.

State: `st.session_state[key]` is `{"ids": <signature of item_ids>, "out": set of left-out ids}`.
It belongs to one list of ids: a different list (a new selection, another filter) starts with
nothing left out. `kept_ids(key, item_ids)` reads it without drawing anything, e.g. in a button
callback that runs before the grid is drawn.

Stable keys for browser tests: each item's toggle is the button `{key}-t-{item_id}`; its cell
is the container `{key}-c-in-{item_id}` or `{key}-c-out-{item_id}`; the bulk buttons are
`{key}-invert`, `{key}-none`, `{key}-reset`. Keys should use letters, digits, `_` and `-` only.
"""

from __future__ import annotations

import streamlit as st

from sslapp.ui.common import file_name, item_words
from sslapp.ui.item_view import SNIPPET, TIP, clip, md_escape, show_item, texts, view
from sslapp.workspace import Workspace

CELL_PX = 92
PAGE_SIZE = 60
NO_LABEL = "—"


def _signature(item_ids: list[int]) -> int:
    return hash(tuple(int(i) for i in item_ids))


def left_out(key: str, item_ids: list[int]) -> set[int]:
    """The ids of `item_ids` that are left out (none if the state belongs to another list)."""
    state = st.session_state.get(key)
    if not isinstance(state, dict) or state.get("ids") != _signature(item_ids):
        return set()
    return set(state.get("out") or ()) & {int(i) for i in item_ids}


def kept_ids(key: str, item_ids: list[int]) -> list[int]:
    """`item_ids` without the left-out ones, in their order."""
    out = left_out(key, item_ids)
    return [int(i) for i in item_ids if int(i) not in out]


def set_left_out(key: str, item_ids: list[int], out) -> None:
    st.session_state[key] = {"ids": _signature(item_ids), "out": {int(i) for i in out} & {int(i) for i in item_ids}}


def toggle(key: str, item_ids: list[int], item_id: int) -> None:
    """Leave one item out, or take it back."""
    out = left_out(key, item_ids)
    out ^= {int(item_id)}
    set_left_out(key, item_ids, out)


def invert(key: str, item_ids: list[int]) -> None:
    set_left_out(key, item_ids, set(map(int, item_ids)) - left_out(key, item_ids))


def leave_all_out(key: str, item_ids: list[int]) -> None:
    set_left_out(key, item_ids, item_ids)


def reset(key: str, item_ids: list[int] | None = None) -> None:
    """Nothing left out (for any list when `item_ids` is None)."""
    if item_ids is None:
        st.session_state.pop(key, None)
    else:
        set_left_out(key, item_ids, ())


def summary(key: str, item_ids: list[int], action: str = "labelling") -> str:
    """'N selected, M left out → labelling K' in markdown."""
    n, m = len(item_ids), len(left_out(key, item_ids))
    return f"**{n}** selected, **{m}** left out → {action} **{n - m}**"


def _css(key: str, tiles: bool = True) -> str:
    return _tile_css(key) if tiles else _row_css(key)


def _row_css(key: str) -> str:
    """Rows of text: the whole row is the toggle, its label (the item's caption) at the bottom right."""
    cell, out, btn = f"st-key-{key}-c-", f"st-key-{key}-c-out-", f"st-key-{key}-t-"
    return f"""<style>
[class*="{cell}"] {{ position: relative; gap: 0; padding: 0.25rem 0.5rem 1.3rem 0.5rem;
  border-bottom: 1px solid rgba(128, 128, 128, 0.2); }}
[class*="{cell}"] [data-testid="stText"] {{ font-size: 0.9rem; line-height: 1.45; }}
[class*="{btn}"] {{ position: absolute !important; inset: 0; z-index: 2; width: 100% !important;
  height: 100% !important; }}
[class*="{btn}"] :is(div, span):has(button), [class*="{btn}"] button {{
  width: 100% !important; height: 100% !important; }}
[class*="{btn}"] button {{ background: transparent; border: 2px solid transparent; border-radius: 6px;
  padding: 0 6px; min-height: 0; display: flex; align-items: flex-end; justify-content: flex-end; }}
[class*="{btn}"] button:hover {{ border-color: #1f77b4; background: rgba(31, 119, 180, 0.06); }}
[class*="{btn}"] button div {{ width: 100%; display: flex; justify-content: flex-end; }}
[class*="{btn}"] button p {{ font-size: 0.72rem; line-height: 1.3rem; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; max-width: 16rem; text-align: right; }}
[class*="{out}"] [data-testid="stText"] {{ opacity: 0.35; text-decoration: line-through; }}
[class*="{out}"] button {{ border-color: #d62728; }}
[class*="{out}"] button p {{ color: #d62728; }}
</style>"""


def _tile_css(key: str) -> str:
    cell, out, btn = f"st-key-{key}-c-", f"st-key-{key}-c-out-", f"st-key-{key}-t-"
    return f"""<style>
[class*="{cell}"] {{ position: relative; gap: 0; padding-bottom: 1.35rem; }}
[class*="{cell}"] img {{ border-radius: 4px; }}
[class*="{btn}"] {{ position: absolute !important; inset: 0; z-index: 2; width: 100% !important;
  height: 100% !important; }}
[class*="{btn}"] :is(div, span):has(button), [class*="{btn}"] button {{
  width: 100% !important; height: 100% !important; }}
[class*="{btn}"] button {{ background: transparent; border: 2px solid transparent; border-radius: 6px;
  padding: 0 2px; min-height: 0; display: flex; align-items: flex-end; justify-content: center; }}
[class*="{btn}"] button:hover {{ border-color: #1f77b4; background: rgba(31, 119, 180, 0.06); }}
[class*="{btn}"] button p {{ font-size: 0.72rem; line-height: 1.3rem; white-space: nowrap; overflow: hidden;
  text-overflow: ellipsis; max-width: {CELL_PX - 8}px; }}
[class*="{out}"] img {{ opacity: 0.28; filter: grayscale(100%); }}
[class*="{out}"] button {{ border-color: #d62728; }}
[class*="{out}"] button p {{ color: #d62728; }}
</style>"""


def selection_grid(ws: Workspace, item_ids: list[int], key: str, captions: dict[int, str] | None = None,
                   tooltips: dict[int, str] | None = None, page_size: int = PAGE_SIZE) -> list[int]:
    """Draw the items of `item_ids` as toggles and return the ids the user keeps.

    captions: a short text under each thumbnail (default: its label, or "—"); keep it to a word,
    the cell is ~90 px wide and never wraps. tooltips: a longer text shown on hover (Markdown).
    """
    item_ids = [int(i) for i in item_ids]
    if not item_ids:
        return []
    state = st.session_state.get(key)
    if not isinstance(state, dict) or state.get("ids") != _signature(item_ids):
        set_left_out(key, item_ids, ())  # another list: start with nothing left out
    tiles = view(ws).tiles
    plural = item_words(ws)[1]
    st.html(_css(key, tiles))
    bar = st.container(horizontal=True, vertical_alignment="center", gap="small")
    bar.markdown(summary(key, item_ids))
    bar.button("Invert", key=f"{key}-invert", on_click=invert, args=(key, item_ids),
               help=f"Keep the left-out {plural} and leave the kept ones out")
    bar.button("Leave all out", key=f"{key}-none", on_click=leave_all_out, args=(key, item_ids),
               help=f"Then click the few {plural} to keep")
    bar.button("Reset", key=f"{key}-reset", on_click=reset, args=(key, item_ids), help="Keep them all")
    pages = max(1, -(-len(item_ids) // page_size))
    page = 1
    if pages > 1:
        page = min(int(bar.pagination(pages, key=f"{key}-page")), pages)
    chunk = item_ids[(page - 1) * page_size: page * page_size]
    items = {r["id"]: r for r in ws.store.items(ids=chunk)}
    words = {} if tiles else texts(ws, items.values(), TIP + 1)
    out = left_out(key, item_ids)
    layout = {"horizontal": True, "wrap": True, "gap": "small"} if tiles else {"gap": None}
    with st.container(key=f"{key}-cells", **layout):
        for item_id in chunk:
            item = items.get(item_id)
            if item is None:
                continue
            is_out = item_id in out
            caption = (captions or {}).get(item_id) or item.get("label") or NO_LABEL
            tip = (tooltips or {}).get(item_id) or f"#{item_id} · {md_escape(file_name(item['source']))}"
            if item_id in words:
                tip += "\n\n" + md_escape(clip(words[item_id], TIP))
            tip += " · click to take it back" if is_out else " · click to leave it out"
            with st.container(width=CELL_PX if tiles else "stretch", gap=None,
                              key=f"{key}-c-{'out' if is_out else 'in'}-{item_id}"):
                text = words.get(item_id)
                show_item(ws, item, text=None if text is None else clip(text, SNIPPET))
                st.button(("✕ " if is_out else "") + caption, key=f"{key}-t-{item_id}", help=tip,
                          on_click=toggle, args=(key, item_ids, item_id))
    return [i for i in item_ids if i not in out]
