"""One way to draw an item, whatever its kind: every page and widget that shows an item calls `show_item`.

How an item is drawn follows the workspace modality's `preview` field, looked up in `VIEWS` (so pages
never ask which kind they hold): a thumbnail for images; for texts the text itself, plain (`st.text`:
never read as Markdown or HTML), cut to a snippet in lists with more of it in the tooltip (escaped, as
tooltips are Markdown), whole and large where one item is the page's subject; for sounds their
spectrogram as a picture (`sslapp.ui.sound_view`: high frequencies on top), with a player of the clip
where one item is the page's subject (or where a caller asks for one), playing at once on the Label page.
`view(ws)` also says how lists lay items out: fixed-size tiles (thumbnails, spectrograms) or full-width
rows (texts), whether the map can draw them at their positions, whether a large preview is the original
file itself, what a tile is called in instructions, and whether the items play.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import streamlit as st

from sslapp.ingest.read import CacheError, item_texts
from sslapp.modalities import workspace_modality
from sslapp.ui.common import thumb_image
from sslapp.ui.sound_view import sound_clip, sound_picture
from sslapp.workspace import Workspace

SNIPPET = 200  # characters of a text in a list
HOVER = 120  # characters of a text in the map's hover
TIP = 1000  # characters of a text in a tooltip
LARGE_CSS = """<style>
[class*="st-key-{key}"] [data-testid="stText"] {{ font-size: 1.2rem; line-height: 1.65; font-family: inherit;
  white-space: pre-wrap; overflow-wrap: anywhere; }}
</style>"""
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character: Markdown may read any of them
# what bare links start with (GFM links "http://x", "www.x" and "a@b.c" even when escaped): a zero-width space
# inside each keeps them text
_AUTOLINK = re.compile(r"(?<=:\\/)(?=\\/)|(?<=www)(?=\\\.)|(?<=\\@)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class View:
    """How one kind of preview is drawn and laid out."""

    # (ws, item, width, chars, large, text, caption, player, autoplay) -> whether it drew a preview
    draw: Callable[..., bool]
    tiles: bool  # lists lay items out as fixed-size tiles (pictures) rather than full-width rows
    closeup: bool  # the map can draw the items themselves at their positions (a close-up)
    from_original: bool = False  # a page's large preview is the original file, scaled (sharper than a thumbnail)
    tile_word: str | None = None  # what one drawn item is called in instructions ("thumbnail"); None: its noun
    plays: bool = False  # items are sounds: the Label page plays its item at once and a key replays it


def md_escape(text: str) -> str:
    """`text` for a place that reads Markdown (a tooltip, a button's label): one line, every ASCII
    punctuation character backslash-escaped and bare links broken by a zero-width space, so no user text
    becomes a link, HTML, emphasis or maths."""
    return _AUTOLINK.sub("\u200b", _PUNCT.sub(r"\\\1", _SPACE.sub(" ", str(text)).strip()))


def clip(text: str, chars: int) -> str:
    """The first `chars` characters of `text`, cut after a word where one ends near there, with an ellipsis."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= chars:
        return text
    cut = text[:chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > chars * 0.7 else cut).rstrip(" ,;:.") + "…"


def texts(ws: Workspace, items: Iterable[Mapping[str, Any]], chars: int | None = None) -> dict[int, str]:
    """{item id: its text} for text items (empty for other kinds, or when the cache cannot be read)."""
    try:
        return item_texts(ws, items, chars)
    except (CacheError, OSError):
        return {}


def _thumbnail(ws: Workspace, item: Mapping[str, Any], width: int | str, chars: int | None, large: bool,
               text: str | None, caption: str | None, player: bool | None, autoplay: bool) -> bool:
    if thumb_image(ws, dict(item), width=width, caption=caption):
        return True
    st.caption(f"#{item['id']}: no thumbnail" + (f" · {caption}" if caption else ""))
    return False


def _text(ws: Workspace, item: Mapping[str, Any], width: int | str, chars: int | None, large: bool,
          text: str | None, caption: str | None, player: bool | None, autoplay: bool) -> bool:
    if text is None:
        text = texts(ws, [item], None if chars is None else max(chars, TIP) + 1).get(int(item["id"]))
    if text is None:
        st.caption(f"#{item['id']}: its text cannot be read from the cache" + (f" · {caption}" if caption else ""))
        return False
    shown = text if chars is None else clip(text, chars)
    if large:
        key = f"item_text_{item['id']}"
        st.html(LARGE_CSS.format(key=key))
        with st.container(key=key):
            st.text(shown, width="stretch")
    else:
        st.text(shown, width="stretch", help=md_escape(clip(text, TIP)) if shown != text else None)
    if caption:
        st.caption(md_escape(caption))
    return True


def _audio(ws: Workspace, item: Mapping[str, Any], width: int | str, chars: int | None, large: bool,
           text: str | None, caption: str | None, player: bool | None, autoplay: bool) -> bool:
    picture = sound_picture(ws, item)
    wants_player = large if player is None else player
    clip_bytes = sound_clip(ws, item) if wants_player else None
    if picture is not None:
        st.image(picture, width=width, caption=caption)
    else:
        st.caption(f"#{item['id']}: its spectrogram cannot be read from the cache" + (f" · {caption}" if caption else ""))
    if clip_bytes is not None:
        st.audio(clip_bytes, format="audio/wav", autoplay=autoplay)
    elif wants_player:
        st.caption(f"#{item['id']}: its clip is missing from the workspace's previews")
    return picture is not None or clip_bytes is not None


def _unknown(ws: Workspace, item: Mapping[str, Any], width: int | str, chars: int | None, large: bool,
             text: str | None, caption: str | None, player: bool | None, autoplay: bool) -> bool:
    st.caption(f"#{item['id']}: no preview for {workspace_modality(ws).plural} yet" + (f" · {caption}" if caption else ""))
    return False


UNKNOWN = View(_unknown, tiles=False, closeup=False)  # a kind with no way to draw it yet
VIEWS: dict[str, View] = {
    "thumbnail": View(_thumbnail, tiles=True, closeup=True, from_original=True, tile_word="thumbnail"),
    "text": View(_text, tiles=False, closeup=False),
    # a spectrogram is a picture, so lists lay sounds out as tiles; the map draws points, not pictures
    "audio": View(_audio, tiles=True, closeup=False, tile_word="spectrogram", plays=True),
}


def view(ws: Workspace) -> View:
    """How this workspace's items are drawn (an unknown preview draws as a row without a preview)."""
    return VIEWS.get(workspace_modality(ws).preview, UNKNOWN)


def show_item(ws: Workspace, item: Mapping[str, Any], *, width: int | str = "stretch", chars: int | None = SNIPPET,
              large: bool = False, text: str | None = None, caption: str | None = None, player: bool | None = None,
              autoplay: bool = False) -> bool:
    """Draw one item (a store row) as its kind is previewed, or a line saying why it has no preview;
    whether the preview was drawn. width: a thumbnail's or spectrogram's; chars: a text's snippet length
    (None: the whole text), large: the page's subject (a text in a bigger font, a sound with its player);
    text: the item's text when the caller read it already (`texts`, one read for a whole list); caption: a
    line under it (plain text); player: a sound's player under its picture (None: where `large`); autoplay:
    the player starts at once (the Label page's item)."""
    return view(ws).draw(ws, item, width, chars, large, text, caption, player, autoplay)
