"""The pages' torch-free read of what ingestion cached: the text of items, for display.

A text item has no preview file (a table row has no file of its own); its text lives only in the cache
row ingestion wrote (`sslapp.modalities.text.arrays`), so the pages read it from there, by the item's
`cache_index`. Other kinds are drawn from their preview files and have no text here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from sslapp.ingest.cache import CacheError, read_cache
from sslapp.modalities import workspace_modality
from sslapp.modalities.text.arrays import texts_of
from sslapp.workspace import Workspace

__all__ = ["CacheError", "item_texts"]

MAX_UTF8 = 4  # bytes of one character at most: `chars` characters lie in the first 4 * chars bytes


def item_texts(ws: Workspace, items: Iterable[Mapping[str, Any]], chars: int | None = None) -> dict[int, str]:
    """{item id: its text as cached (whitespace-normalised)} for store rows with `id` and `cache_index`;
    with `chars`, only the first `chars` characters (and only their bytes are read). Empty when the
    workspace's items are not texts. Raises `sslapp.ingest.cache.CacheError` on a damaged cache."""
    if workspace_modality(ws).preview != "text":
        return {}
    rows = [(int(r["id"]), int(r["cache_index"])) for r in items if r.get("cache_index") is not None]
    if not rows:
        return {}
    cache = read_cache(ws)
    index = np.array([c for _, c in rows], np.int64)
    order = np.argsort(index)  # read the file front to back
    width = cache.shape[1] if chars is None else min(cache.shape[1], MAX_UTF8 * int(chars))
    data = np.empty((len(index), width), np.uint8)
    data[order] = cache[index[order], :width]
    texts = texts_of(data)
    if chars is not None:  # a cut inside a character reads as U+FFFD at the end: drop it
        texts = [t.rstrip("\ufffd")[:chars] for t in texts]
    return {item_id: text for (item_id, _), text in zip(rows, texts, strict=True)}
