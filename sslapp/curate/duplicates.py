"""Near-duplicate images: copies that were resized, recompressed or slightly cropped (no torch).

Ingest already drops byte-identical files (same sha256); these are the copies it cannot see.
The embedding proposes, the pixels decide. Candidates are each image's K nearest neighbours in the
chosen embedding (`sslapp.curate.similar`); a candidate pair is a near-duplicate when its 8x8 grey
thumbnails correlate (thumb distance = 1 - Pearson r) and its dHashes (horizontal and vertical,
128 bits) nearly agree: within NEAREST_THUMB / NEAREST_BITS when one image is the other's nearest
neighbour, within the stricter ANY_THUMB / ANY_BITS for any of the K (so a group of many copies
is not split into nearest-neighbour pairs), or when both are flat and about as bright (blank
frames, with no gradients to hash). Groups are the connected components of those pairs.

Measured on cifar10 with planted copies (benchmarks/bench_curate.py near-duplicates --diagnose;
copies upscaled 32->40 px, cropped up to 2 px per side, resized back, JPEG quality 70):
- No embedding distance threshold: distances are not comparable across the encoders the app may
  choose. Copies lay 0.002-0.06 apart with pixel PCA, 0.06-0.39 with ImageNet features and
  0.08-0.32 with the patch dictionary, while unrelated nearest neighbours came as close as 0.03,
  0.19 and 0.36. But every copy was its original's nearest neighbour (or the reverse) in all three.
- No 64-bit dHash alone: copies differed by up to 21 bits, unrelated neighbours by as few as 11.
  Scenes of one kind (grey sky over a dark sea) correlate as well as copies, so both pixel tests
  are required, and the looser pair only for nearest neighbours: on 5,000 images with 150 copies
  the box rule alone at any rank also accepted 6 unrelated pairs; these rules none.
- Found, with each of the three embeddings: 30/30, 29/30, 59/60 and 30/30 (images not used for
  tuning) planted copies among 1,000-2,000 images, 29/30 with 3 px crops, and 148/150 among 5,000
  (pixel PCA). Every other group was one of cifar10's own near-duplicates (the same photo
  recoloured or re-cropped, checked by eye), which is what this is for.

The fingerprints (hashes and thumbnails) are the modality's (`Modality.fingerprints`; images:
`sslapp.modalities.image.fingerprint`), read through `sslapp.features.items`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sslapp.curate.similar import Index, nearest
from sslapp.vectors import l2_normalize
from sslapp.workspace import Workspace

K = 20  # neighbours per image that may be its copies
NEAREST_THUMB, NEAREST_BITS = 0.12, 30  # 95% of copies were under 0.09 and 24 bits
ANY_THUMB, ANY_BITS = 0.08, 20  # unrelated pairs came as close as 0.05 (at 30 bits) and 22 bits (at 0.11)
FLAT_STD = 2.0  # grey levels: a thumbnail this even has no gradients worth hashing
FLAT_MEAN = 4.0  # two flat images this close in brightness are copies
CHUNK = 4096
EXACT_MAX = 20_000  # beyond this many images the candidates come from NN-descent (`neighbours_of_all`)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits (of 128) that differ between fingerprint hashes of shape (..., 2)."""
    return np.bitwise_count(np.bitwise_xor(np.asarray(a, np.uint64), np.asarray(b, np.uint64))).sum(-1).astype(np.int64)


def duplicate_pairs(vectors: np.ndarray, hashes: np.ndarray, thumbs: np.ndarray, k: int = K,
                    exact_max: int = EXACT_MAX) -> np.ndarray:
    """Row pairs (P, 2), i < j, that are near-duplicates; `vectors` L2-normalised, `hashes` and
    `thumbs` the fingerprints (`Modality.fingerprints`) of the same rows."""
    n = len(vectors)
    if n < 2:
        return np.zeros((0, 2), np.int64)
    centred = l2_normalize(thumbs - thumbs.mean(1, keepdims=True), dtype=np.float32)  # flat rows stay 0
    std, mean = thumbs.std(1), thumbs.mean(1)
    found = []
    approximate = neighbours_of_all(vectors, k) if n > exact_max else None
    for start in range(0, n, CHUNK):
        rows = approximate[start:start + CHUNK] if approximate is not None else \
            nearest(vectors, np.arange(start, min(n, start + CHUNK)), k)[0]
        i = np.repeat(np.arange(start, start + len(rows)), rows.shape[1])
        j = rows.ravel()
        first = np.tile(np.arange(rows.shape[1]) == 0, len(rows))  # j is i's nearest neighbour
        thumb = 1.0 - np.einsum("pd,pd->p", centred[i], centred[j])
        bits = hamming(hashes[i], hashes[j])
        ok = (((thumb <= NEAREST_THUMB) & (bits <= NEAREST_BITS) & first) | ((thumb <= ANY_THUMB) & (bits <= ANY_BITS))
              | ((std[i] < FLAT_STD) & (std[j] < FLAT_STD) & (np.abs(mean[i] - mean[j]) <= FLAT_MEAN)))
        found.append(np.stack([np.minimum(i[ok], j[ok]), np.maximum(i[ok], j[ok])], axis=1))
    pairs = np.concatenate(found)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2).astype(np.int64)


def group_rows(n: int, pairs: np.ndarray) -> list[np.ndarray]:
    """Connected components of the pairs with two rows or more, largest first (then by first row)."""
    if len(pairs) == 0:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    groups = [np.flatnonzero(labels == c) for c in np.flatnonzero(sizes >= 2)]
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


# -- the workspace wrapper -----------------------------------------------------------------------
def neighbours_of_all(vectors: np.ndarray, k: int) -> np.ndarray:
    """(N, k) rows nearest each row, nearest first, itself left out, by NN-descent on a sampled PCA
    (`sslapp.estimators.neighbours`): the exact search grows with N^2 (0.4 s at 5,000 images, minutes at
    100,000), while copies lie so close that an approximate search finds them as well."""
    from sslapp.estimators.neighbours import approximate_knn, sampled_pca

    k = min(k, len(vectors) - 1)
    found, _ = approximate_knn(sampled_pca(vectors), k + 1)
    not_self = found != np.arange(len(found))[:, None]
    not_self[not_self.all(axis=1), -1] = False  # itself not among them: drop the farthest instead
    return found[not_self].reshape(len(found), k)


def near_duplicate_groups(ws: Workspace, index: Index | None = None) -> list[dict[str, Any]]:
    """Groups of near-identical images, largest first: [{"items": [ids], "paths": [sources]}, ...],
    ids ascending within a group.

    `index` defaults to `sslapp.curate.similar.load_index(ws)` (may compute features, imports
    torch); pages pass `cached_features(ws)`. Images the index does not hold yet are left out.
    Every image's neighbours are searched exactly up to EXACT_MAX images (the time grows with n^2: 0.4 s
    at 5,000 images and 4 s at 20,000 on 2 cores), by NN-descent beyond; run it in a job, not a page.
    """
    from sslapp.features.items import fingerprints
    from sslapp.features.read import current_items

    item_ids, cache_rows = current_items(ws)  # raises with a clear message when there are no images
    if index is None:
        from sslapp.curate.similar import load_index

        index = load_index(ws)
    rows = index.rows_of(item_ids)
    held = rows >= 0
    item_ids, cache_rows, rows = item_ids[held], cache_rows[held], rows[held]
    every = len(rows) == len(index.vectors) and np.array_equal(rows, np.arange(len(rows)))
    vectors = index.vectors if every else np.asarray(index.vectors[rows], np.float32)  # no copy of them all
    hashes, thumbs = fingerprints(ws, cache_rows)
    groups = group_rows(len(item_ids), duplicate_pairs(vectors, hashes, thumbs))
    sources = {r["id"]: r["source"] for r in ws.store.items(ids=[int(item_ids[r]) for g in groups for r in g])}
    out = []
    for g in groups:
        ids = sorted(int(item_ids[r]) for r in g)
        out.append({"items": ids, "paths": [sources.get(i) for i in ids]})
    return out
