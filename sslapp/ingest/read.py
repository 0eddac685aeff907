"""The pages' torch-free read of what ingestion cached: the text of items, and their cache rows, for display.

A text item has no preview file (a table row has no file of its own); its text lives only in the cache
row ingestion wrote (`sslapp.modalities.text.arrays`), so the pages read it from there, by the item's
`cache_index`. A sound's picture (its uint8 log-mel spectrogram) is its cache row too (`item_rows`);
its preview file is the window to play. Images are drawn from their preview files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from sslapp.ingest.cache import CacheError, read_cache
from sslapp.modalities import workspace_modality
from sslapp.modalities.text.arrays import texts_of
from sslapp.workspace import Workspace

__all__ = ["CacheError", "item_rows", "item_texts"]

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


def item_rows(ws: Workspace, items: Iterable[Mapping[str, Any]]) -> dict[int, np.ndarray]:
    """{item id: its cache row (a copy)} for store rows with `id` and `cache_index`, read front to back
    (a sound's row is its log-mel picture, row[band, frame], lowest band first). Raises
    `sslapp.ingest.cache.CacheError` on a damaged cache."""
    rows = [(int(r["id"]), int(r["cache_index"])) for r in items if r.get("cache_index") is not None]
    if not rows:
        return {}
    cache = read_cache(ws)
    index = np.array([c for _, c in rows], np.int64)
    if index.max() >= len(cache):
        raise CacheError(f"the cache holds {len(cache)} rows, not row {int(index.max())}; it was damaged")
    order = np.argsort(index)
    data = np.empty((len(index), *cache.shape[1:]), cache.dtype)
    data[order] = cache[index[order]]
    return {item_id: row for (item_id, _), row in zip(rows, data, strict=True)}
