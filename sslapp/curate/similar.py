"""More like this: the images nearest to one image in the workspace's chosen embedding (no torch).

Search is exact: cosine distance (1 - dot product of L2-normalised float32 rows) to every image,
in chunks (one numpy matmul, then `argpartition`). At 100k images x 256 dims one query takes
2.7 ms (p50; p95 4.7 ms) on 2 cores from a memory-mapped index built in 0.08 s
(benchmarks/bench_curate.py similar-latency), so an approximate index (pynndescent) would buy
nothing but a build step and missed neighbours.

The index is the chosen embedding's cached features (`embeddings/enc-<id>-*.npz`, written by
`sslapp.features.service`), L2-normalised to float32 once and saved beside them as
`embeddings/index-enc-<encoder_id>-<n>.npy`, rows in the npz's order, then memory-mapped, so a
page or a command does not renormalise (or hold a second copy) each time. An encoder's npz only
grows (new images are appended), so (encoder, n) names its rows; an index older than its npz is
rebuilt, and a new one replaces the encoder's older index files.

`cached_features` reads only what is cached, so the Streamlit process can call it; `load_index`
(CLI, jobs) first has the features service compute what is missing, which imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.workspace import Workspace

CHUNK_BYTES = 64 << 20  # similarity rows held at once: queries per chunk = CHUNK_BYTES / (4 * n)


class ItemError(ValueError):
    """An image the user named is not in the workspace (or has no features yet)."""


@dataclass
class Index:
    """The chosen embedding as a search index: `vectors[r]` is image `item_ids[r]`, L2-normalised."""

    encoder_id: int
    name: str
    item_ids: np.ndarray  # (n,) int64
    vectors: np.ndarray  # (n, d) float32, unit rows (zero rows stay zero); often a read-only memmap
    _order: np.ndarray | None = field(default=None, repr=False)

    def rows_of(self, item_ids) -> np.ndarray:
        """Index rows of the given item ids, -1 for ids the index does not hold."""
        if self._order is None:
            self._order = np.argsort(self.item_ids, kind="stable")
        ids = np.atleast_1d(np.asarray(item_ids, np.int64))
        if len(self.item_ids) == 0:
            return np.full(len(ids), -1, np.int64)
        pos = np.clip(np.searchsorted(self.item_ids, ids, sorter=self._order), 0, len(self.item_ids) - 1)
        rows = self._order[pos]
        return np.where(self.item_ids[rows] == ids, rows, -1).astype(np.int64)


def nearest(features: np.ndarray, query_rows, k: int, chunk_bytes: int = CHUNK_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """The k rows nearest each query row, nearest first (ties by row), the query itself left out.

    `features` must be L2-normalised rows (an `Index.vectors`); distance is 1 - cosine, in [0, 2].
    Returns (rows int64, distances float32) of shape (len(query_rows), k'), k' = min(k, n - 1); a
    scalar query gives 1-D arrays.
    """
    single = np.ndim(query_rows) == 0
    queries = np.atleast_1d(np.asarray(query_rows, np.int64))
    n = len(features)
    if queries.size and (queries.min() < 0 or queries.max() >= n):
        raise IndexError(f"query rows must be in [0, {n}); got {queries.min()}..{queries.max()}")
    k = max(0, min(int(k), n - 1))
    rows = np.zeros((len(queries), k), np.int64)
    dists = np.zeros((len(queries), k), np.float32)
    if k:
        step = max(1, chunk_bytes // (4 * n))
        for start in range(0, len(queries), step):
            q = queries[start:start + step]
            sims = np.asarray(features[q], np.float32) @ np.asarray(features, np.float32).T  # (len(q), n)
            sims[np.arange(len(q)), q] = -np.inf  # never the query itself
            top = np.argpartition(sims, n - k, axis=1)[:, n - k:]  # the k largest, unordered
            top_sims = np.take_along_axis(sims, top, 1)
            order = np.lexsort((top, -top_sims), axis=-1)
            rows[start:start + len(q)] = np.take_along_axis(top, order, 1)
            dists[start:start + len(q)] = 1.0 - np.take_along_axis(top_sims, order, 1)
        np.clip(dists, 0.0, 2.0, out=dists)
    return (rows[0], dists[0]) if single else (rows, dists)


# -- the index of a workspace --------------------------------------------------------------------
def chosen_encoder_id(ws: Workspace) -> int | None:
    """The encoder the embedding service last chose (or the one the user pinned), from settings."""
    from sslapp.features.read import CHOICE_SETTING, PINNED_SETTING

    pinned = ws.store.get_setting(PINNED_SETTING)
    if pinned is not None:
        return int(pinned)
    wanted = (ws.store.get_setting(CHOICE_SETTING) or {}).get("encoder_artifact_id")
    return None if wanted is None else int(wanted)


def _features_artifact(ws: Workspace, encoder_id: int) -> dict[str, Any] | None:
    """The newest 'embeddings' artifact of that encoder whose file exists (as the service reads it)."""
    for art in ws.store.artifacts("embeddings", limit=100_000):  # newest first
        if (art.get("meta") or {}).get("encoder_artifact_id") == encoder_id and (ws.root / art["path"]).exists():
            return art
    return None


def _open_index(path: Path, n: int, npz: Path) -> np.ndarray | None:
    try:
        if not path.exists() or path.stat().st_mtime < npz.stat().st_mtime:
            return None
        vectors = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return None
    return vectors if vectors.ndim == 2 and len(vectors) == n and vectors.dtype == np.float32 else None


def _save_index(path: Path, vectors: np.ndarray) -> None:
    """Write atomically, then drop the encoder's older index files; a read-only workspace just skips it."""
    from sslapp.atomic import atomic_path

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors, allow_pickle=False)
        prefix = path.name.rsplit("-", 1)[0] + "-"
        for old in path.parent.glob(f"{prefix}*.npy"):
            if old != path and old.name[len(prefix):-4].isdigit():
                old.unlink(missing_ok=True)
    except OSError:
        pass


def cached_features(ws: Workspace, encoder_id: int | None = None) -> Index | None:
    """The chosen embedding's index from its cached features only (torch-free, for the pages).

    None when nothing was chosen yet or its features are not cached (the worker's embed job makes
    them). Images added since the features were cached are not in it: compare `len(index.item_ids)`
    with `ws.store.count_items()`.
    """
    from sslapp.features.read import describe
    from sslapp.vectors import l2_normalize

    encoder_id = chosen_encoder_id(ws) if encoder_id is None else int(encoder_id)
    if encoder_id is None:
        return None
    art = _features_artifact(ws, encoder_id)
    if art is None:
        return None
    npz = ws.root / art["path"]
    try:
        with np.load(npz, allow_pickle=False) as data:
            item_ids = np.asarray(data["item_ids"], np.int64)
            path = ws.root / "embeddings" / f"index-enc-{encoder_id}-{len(item_ids)}.npy"
            vectors = _open_index(path, len(item_ids), npz)
            if vectors is None:
                vectors = l2_normalize(data["features"], dtype=np.float32)
                _save_index(path, vectors)
    except (OSError, ValueError, KeyError):  # a damaged or half-deleted cache: as if not cached
        return None
    encoder = [a for a in ws.store.artifacts("encoder", limit=100_000) if a["id"] == encoder_id]
    name = describe(encoder[0]) if encoder else f"encoder {encoder_id}"
    return Index(encoder_id, name, item_ids, vectors)


def load_index(ws: Workspace, progress=None) -> Index:
    """The index of every current image: from the cache when it holds them all, else the features
    service computes what is missing first (imports torch; for the CLI and jobs, not the pages)."""
    from sslapp.features.read import current_items
    from sslapp.features.service import current_embedding
    from sslapp.vectors import l2_normalize

    index = cached_features(ws)
    if index is not None and (index.rows_of(current_items(ws)[0]) >= 0).all():
        return index
    emb = current_embedding(ws, progress=progress)
    index = cached_features(ws, int(emb.artifact["id"]))
    if index is None or (index.rows_of(emb.item_ids) < 0).any():  # cache not writable: normalise in memory
        index = Index(int(emb.artifact["id"]), emb.name, np.asarray(emb.item_ids, np.int64),
                      l2_normalize(emb.features, dtype=np.float32))
    return index


# -- the workspace wrapper -----------------------------------------------------------------------
def resolve_item(ws: Workspace, item: int | str) -> int:
    """An item id from an id or a source path as ingested ('cats/1.png'); a longer path that ends
    with a stored source ('photos/cats/1.png') is accepted too; a text from a row of a table is FILE:ROW."""
    from sslapp.modalities import workspace_modality

    store = ws.store
    modality = workspace_modality(ws)
    noun, plural = modality.noun, modality.plural
    text = str(item).strip()
    if isinstance(item, int | np.integer) or text.isdigit():
        if store.item(int(text)) is not None:
            return int(text)
        if not isinstance(item, str):
            raise ItemError(f"no {noun} with id {text} in {ws.root}; give an id it has or a source path")
    parts = text.replace("\\", "/").split("/")
    for start in range(len(parts)):
        found = store.find_items_by_source("/".join(parts[start:]))
        if len(found) > 1:
            raise ItemError(f"{text!r} is the source of {len(found)} {plural} (ids {', '.join(map(str, found[:10]))}); "
                            "give the item id instead")
        if found:
            return int(found[0])
    raise ItemError(f"no {noun} with id or source path {text!r} in {ws.root}; give an item id or the path as it "
                    "was ingested (relative to the folder you ingested, e.g. 'cats/1.png'; a row of a table is "
                    "FILE:ROW, e.g. 'tickets.csv:12')")


def similar_items(ws: Workspace, item: int | str, k: int = 20, index: Index | None = None) -> list[dict[str, Any]]:
    """The k images nearest to ITEM (an id or source path), nearest first, without ITEM itself:
    [{"item": id, "path": source, "distance": cosine distance}, ...].

    `index` defaults to `load_index(ws)` (may compute features); pages pass `cached_features(ws)`.
    """
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1 (got {k})")
    if ws.store.count_items() == 0:
        raise ItemError(f"{ws.root} has no items yet; add some on the Data page or with `sslapp ingest`")
    item_id = resolve_item(ws, item)
    if index is None:
        index = load_index(ws)
    row = int(index.rows_of(item_id)[0])
    if row < 0:
        raise ItemError(f"item {item_id} has no features in the {index.name} embedding yet (it was added "
                        f"since); run `sslapp embed {ws.root}` or wait for the map to update, then try again")
    want = k + 8  # a few spare: index rows of images no longer active are dropped below
    while True:
        rows, dists = nearest(index.vectors, row, want)
        ids = [int(i) for i in index.item_ids[rows]]
        sources = {r["id"]: r["source"] for r in ws.store.items(ids=ids)}  # active images only
        out = [{"item": i, "path": sources[i], "distance": round(float(d), 6)}
               for i, d in zip(ids, dists, strict=True) if i in sources]
        if len(out) >= k or len(rows) < want:
            return out[:k]
        want *= 4
