"""How the pages show a sound: its picture (the log-mel spectrogram cached for it), its clip (the preview
WAV ingestion wrote) and the Label page's replay key.

The picture is the item's uint8 cache row (`sslapp.ingest.read.item_rows`), flipped so high frequencies
are on top, coloured through a small lookup table (no matplotlib at page draw) and scaled up with
nearest-neighbour pixels: a few KB of PNG, made once per item and kept by `st.cache_data`. The clip is
the window itself, 16 kHz 16-bit, at `sslapp.ui.common.thumb_path` (the modality's preview suffix).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st

from sslapp.ingest.read import CacheError, item_rows
from sslapp.ui.common import thumb_path
from sslapp.workspace import Workspace

SCALE = 4  # screen pixels per cache pixel: 64 bands x 64 frames -> 256 px square
PLAYER_KEY = "label_sound"  # the container of the Label page's current sound, found by REPLAY_JS
REPLAY_KEY = "Space"  # R and C are Streamlit's own keys and the class keys take every other letter
# Anchors of a magma-like colour scale, dark (quiet) to pale yellow (loud), spread over 256 levels.
_ANCHORS = np.array([(0, 0, 4), (28, 16, 68), (79, 18, 123), (129, 37, 129), (181, 54, 122), (229, 80, 100),
                     (251, 135, 97), (254, 194, 135), (252, 253, 191)], np.float64)
COLOURS = np.stack([np.interp(np.linspace(0, 1, 256), np.linspace(0, 1, len(_ANCHORS)), _ANCHORS[:, c])
                    for c in range(3)], axis=1).round().astype(np.uint8)  # (256, 3): one colour per level

# Runs in the page (not in an iframe), installed once per browser tab: Space plays the current sound
# again from its start, unless a box, button or the player itself has the keyboard (they use Space).
# It finds the player by its container's key, so on another page (or a workspace of images) it does nothing.
REPLAY_JS = """<script>/* sslapp replay key */
(() => {
  if (window.sslappReplayKey) return;
  window.sslappReplayKey = true;
  window.addEventListener("keydown", (e) => {
    if (e.key !== " " || e.repeat || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const audio = document.querySelector('[class*="st-key-PLAYER"] audio');
    if (!audio) return;
    const t = e.target;
    if (t && t !== document.body && t.closest && t.closest("input, textarea, select, button, a, audio, "
        + "[contenteditable], [role=button], [role=combobox], [role=slider], [role=tab], [role=checkbox]")) return;
    e.preventDefault();
    audio.currentTime = 0;
    audio.play().catch(() => {});
  }, true);
})();
</script>""".replace("PLAYER", PLAYER_KEY)


def spectrogram_png(row: np.ndarray, scale: int = SCALE) -> bytes:
    """A uint8 (bands, frames) log-mel row, lowest band first -> PNG bytes, high bands on top, coloured."""
    from PIL import Image

    picture = COLOURS[np.asarray(row, np.uint8)[::-1]]
    height, width = picture.shape[:2]
    image = Image.fromarray(picture).resize((width * scale, height * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


@st.cache_data(show_spinner=False, max_entries=4096)
def _picture(_ws: Workspace, root: str, cache_index: int, sha256: str) -> bytes:
    """The PNG of one cached row; keyed by the workspace and the row's content (rows never change once
    committed). A damaged cache raises, and what raises is not cached."""
    rows = item_rows(_ws, [{"id": 0, "cache_index": cache_index}])
    return spectrogram_png(rows[0])


def sound_picture(ws: Workspace, item: Mapping[str, Any]) -> bytes | None:
    """The item's spectrogram as PNG bytes, or None when its cache row cannot be read."""
    if item.get("cache_index") is None:
        return None
    try:
        return _picture(ws, str(ws.root), int(item["cache_index"]), str(item.get("sha256") or ""))
    except (CacheError, OSError, ValueError):
        return None


def sound_clip(ws: Workspace, item: Mapping[str, Any]) -> bytes | None:
    """The item's window as WAV bytes (what the player plays), or None when its preview file is missing."""
    try:
        return thumb_path(ws, dict(item)).read_bytes()
    except (OSError, KeyError, TypeError):
        return None


def replay_key() -> None:
    """Install Space as the key that replays the Label page's current sound (see REPLAY_JS)."""
    st.html(REPLAY_JS, unsafe_allow_javascript=True)
