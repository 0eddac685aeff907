"""Curation speed and quality: "more like this" latency and near-duplicate recall.

    .venv/bin/python benchmarks/bench_curate.py similar-latency [--n 100000] [--dim 256] [--queries 200]
        [--real-n 2000] [--embedding patches]
    .venv/bin/python benchmarks/bench_curate.py near-duplicates [--n 1000] [--copies 30] [--embedding app]

similar-latency: N random vectors -> the index (L2-normalised float32 .npy, memory-mapped, as
`sslapp.curate.similar` caches it): build time, then p50/p95 of one query (k=20) with our exact
search beside scikit-learn's brute-force cosine NearestNeighbors on the same matrix. Then a sanity
check on a real embedding (cifar10 images, the patch dictionary or --embedding): our neighbours equal
scikit-learn's, and how often a neighbour has the query's class.

near-duplicates: N cifar10 images as PNG files plus COPIES planted copies of distinct ones, each
upscaled 32->40 px, cropped by up to --crop px per side, resized back to 32 and saved as JPEG at
quality 70; all ingested as files into a fresh workspace, then `near_duplicate_groups`. Reports
recall of the planted pairs and the groups that are not exactly a planted pair: cifar10 has
near-duplicates of its own (a few per thousand images, the same photo recoloured), so such a group
is false only if its images look different (--sheet saves them side by side for a look).
--diagnose prints the embedding distance, thumbnail distance and hash bits of the planted pairs
beside those of every other candidate pair (how the thresholds in
`sslapp.curate.duplicates` were picked).
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STARTS = {"app": ["imagenet", "patches", "pixels"], "imagenet": ["imagenet"], "patches": ["patches"],
          "pixels": ["pixels"]}


def load_cifar(n: int, offset: int = 0) -> np.ndarray:
    from benchmarks.data import datasets_root, load_dataset

    data = load_dataset("cifar10", limit=offset + n)
    if data is None:
        sys.exit(f"cifar10 is not in {datasets_root()}; this benchmark needs real images")
    return data[0][offset:]


def percentiles(values, qs=(50, 95)) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(values, q)), 3) for q in qs}


# -- similar-latency -----------------------------------------------------------------------------
def similar_latency(args) -> dict:
    from sklearn.neighbors import NearestNeighbors

    from sslapp.curate.similar import nearest
    from sslapp.vectors import l2_normalize

    rng = np.random.default_rng(args.seed)
    raw = rng.standard_normal((args.n, args.dim)).astype(np.float32)
    queries = rng.integers(0, args.n, args.queries)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"index-enc-1-{args.n}.npy"
        start = time.perf_counter()
        np.save(path, l2_normalize(raw, dtype=np.float32))
        vectors = np.load(path, mmap_mode="r")
        build_s = time.perf_counter() - start
        ours = []
        for q in queries:
            t = time.perf_counter()
            nearest(vectors, int(q), args.k)
            ours.append((time.perf_counter() - t) * 1e3)
        ref = NearestNeighbors(n_neighbors=args.k + 1, metric="cosine", algorithm="brute").fit(raw)
        theirs = []
        for q in queries[: max(10, args.queries // 10)]:
            t = time.perf_counter()
            ref.kneighbors(raw[q:q + 1])
            theirs.append((time.perf_counter() - t) * 1e3)
        del vectors
    out = {"n": args.n, "dim": args.dim, "k": args.k, "index_build_s": round(build_s, 3),
           "query_ms": percentiles(ours), "sklearn_brute_cosine_query_ms": percentiles(theirs)}
    out["real_embedding"] = real_sanity(args)
    return out


def real_sanity(args) -> dict:
    """Our neighbours against scikit-learn's on a real embedding, and how often they share a class."""
    from sklearn.neighbors import NearestNeighbors

    from benchmarks.data import datasets_root, load_dataset
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.curate.similar import load_index, nearest
    from sslapp.features.read import current_items

    images, labels, _ = load_dataset("cifar10", limit=args.real_n) or (None, None, None)
    if images is None:
        return {"skipped": f"cifar10 is not in {datasets_root()}"}
    with tempfile.TemporaryDirectory() as tmp:
        ws = workspace_from_arrays(Path(tmp) / "ws", images)
        ws.store.set_setting("features.starts", STARTS[args.embedding])
        start = time.perf_counter()
        index = load_index(ws)
        embed_s = time.perf_counter() - start
        rows = index.rows_of(current_items(ws)[0])  # items in id order: image i is the i-th item
        vectors = np.asarray(index.vectors[rows])
        ours, _ = nearest(vectors, np.arange(len(vectors)), args.k)
        _, theirs = NearestNeighbors(n_neighbors=args.k + 1, metric="cosine", algorithm="brute").fit(
            vectors).kneighbors(vectors)
        theirs = np.array([[j for j in row if j != i][: args.k] for i, row in enumerate(theirs)])
        same = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ours, theirs, strict=True)]))
        return {"n": len(images), "embedding": index.name, "dim": int(vectors.shape[1]),
                "embed_s": round(embed_s, 1), "neighbour_sets_equal_to_sklearn": round(same, 4),
                "neighbour_same_class": round(float((labels[ours] == labels[:, None]).mean()), 3),
                "chance_same_class": round(float(np.sum((np.bincount(labels) / len(labels)) ** 2)), 3)}


# -- near-duplicates -----------------------------------------------------------------------------
def make_copy(image: np.ndarray, rng: np.random.Generator, crop: int) -> bytes:
    """Upscale 32->40, crop up to `crop` px per side, back to the original size, JPEG quality 70."""
    from PIL import Image

    h, w = image.shape[:2]
    big = Image.fromarray(image).resize((40, 40), Image.Resampling.BICUBIC)
    left, top, right, bottom = (int(c) for c in rng.integers(0, crop + 1, 4))
    small = big.crop((left, top, 40 - right, 40 - bottom)).resize((w, h), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    small.save(buf, "JPEG", quality=70)
    return buf.getvalue()


def plant(folder: Path, images: np.ndarray, copies: int, crop: int, seed: int) -> list[tuple[str, str]]:
    """Write the images as PNGs and `copies` altered copies as JPEGs; returns the planted pairs."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "orig").mkdir(parents=True)
    (folder / "copy").mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(folder / "orig" / f"{i:05d}.png")
    pairs = []
    for i in rng.choice(len(images), copies, replace=False):
        (folder / "copy" / f"{i:05d}.jpg").write_bytes(make_copy(images[i], rng, crop))
        pairs.append((f"orig/{i:05d}.png", f"copy/{i:05d}.jpg"))
    return pairs


def score(groups: list[dict], pairs: list[tuple[str, str]]) -> dict:
    family = {}
    for k, (a, b) in enumerate(pairs):
        family[a] = family[b] = k
    group_of = {p: g for g, grp in enumerate(groups) for p in grp["paths"]}
    found = sum(1 for a, b in pairs if a in group_of and group_of[a] == group_of.get(b))
    other = [g["paths"] for g in groups if len({family.get(p, ("x", p)) for p in g["paths"]}) > 1]
    return {"planted_pairs": len(pairs), "found_pairs": found, "recall": round(found / max(1, len(pairs)), 3),
            "groups": len(groups), "unplanted_groups": len(other), "unplanted_group_paths": other[:20]}


def diagnose(ws, index, pairs: list[tuple[str, str]], verbose: bool = False) -> dict:
    """The measures `near_duplicate_groups` thresholds, for the planted pairs beside every other
    candidate pair (each image's K nearest neighbours): embedding distance, thumbnail distance
    (1 - correlation of 8x8 grey thumbnails) and dHash bits (of 128)."""
    from sslapp.curate.duplicates import K, hamming
    from sslapp.curate.similar import nearest
    from sslapp.features.read import current_items
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities.image.fingerprint import fingerprints
    from sslapp.vectors import l2_normalize

    item_ids, cache_rows = current_items(ws)
    vectors = np.asarray(index.vectors[index.rows_of(item_ids)])
    hashes, thumbs = fingerprints(np.asarray(read_cache(ws))[cache_rows])
    centred = l2_normalize(thumbs - thumbs.mean(1, keepdims=True), dtype=np.float32)
    row_of = {r["source"]: k for k, r in enumerate(ws.store.items())}  # items() is ordered by id, as current_items
    planted = {(min(row_of[p], row_of[q]), max(row_of[p], row_of[q])) for p, q in pairs}
    rows, dists = nearest(vectors, np.arange(len(vectors)), K)
    cand = {(min(a, int(b)), max(a, int(b))): float(d) for a in range(len(vectors))
            for b, d in zip(rows[a], dists[a], strict=True)}
    missing = planted - set(cand)
    for a, b in missing:
        cand[(a, b)] = float(1 - vectors[a] @ vectors[b])
    keys = np.array(sorted(cand))
    i, j = keys[:, 0], keys[:, 1]
    is_planted = np.array([(a, b) in planted for a, b in keys])
    measures = {"embedding_distance": np.array([cand[(a, b)] for a, b in keys]),
                "thumb_distance": 1 - np.einsum("pd,pd->p", centred[i], centred[j]),
                "hamming": hamming(hashes[i], hashes[j]).astype(float)}
    out: dict = {"planted_outside_knn": len(missing), "other_candidate_pairs": int((~is_planted).sum())}
    for name, v in measures.items():
        out[name] = {"planted": percentiles(v[is_planted], (50, 95, 100)),
                     "others": percentiles(v[~is_planted], (0, 0.1, 1, 50))}
    nn1 = dists[:, 0]
    out["nn1_distance_all"] = percentiles(nn1, (0, 1, 50))
    if verbose:
        out["planted"] = [{"pair": [ws.store.item(int(item_ids[a]))["source"], ws.store.item(int(item_ids[b]))["source"]],
                           **{n: round(float(v[k]), 4) for n, v in measures.items()}}
                          for k, (a, b) in enumerate(keys) if is_planted[k]]
    return out


def near_duplicates(args) -> dict:
    from sslapp.curate.duplicates import near_duplicate_groups
    from sslapp.curate.similar import load_index
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    images = load_cifar(args.n, args.offset)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        pairs = plant(folder, images, args.copies, args.crop, args.seed)
        ws = open_workspace(Path(tmp) / "ws", cache_size=args.cache_size)
        ingest(ws, [str(folder)], base=str(folder))
        ws.store.set_setting("features.starts", STARTS[args.embedding])
        start = time.perf_counter()
        index = load_index(ws)
        embed_s = time.perf_counter() - start
        start = time.perf_counter()
        groups = near_duplicate_groups(ws, index)
        out = {"n": args.n, "copies": args.copies, "crop_px": args.crop, "cache_size": args.cache_size,
               "embedding": index.name, "embed_s": round(embed_s, 1),
               "near_duplicates_s": round(time.perf_counter() - start, 3), **score(groups, pairs)}
        if args.diagnose:
            out["diagnose"] = diagnose(ws, index, pairs, args.verbose)
        if args.sheet:
            contact_sheet(ws, groups, pairs, Path(args.sheet))
        return out


def contact_sheet(ws, groups: list[dict], pairs: list[tuple[str, str]], path: Path) -> None:
    """The groups that are not a planted pair, one row each (cifar10's own near-duplicates, or mistakes)."""
    from PIL import Image

    from sslapp.ingest.cache import read_cache

    planted = {frozenset(p) for p in pairs}
    others = [g for g in groups if frozenset(g["paths"]) not in planted]
    if not others:
        return
    cache, size = read_cache(ws), ws.cache_size
    width = max(len(g["items"]) for g in others)
    sheet = np.full((len(others) * size, width * size, 3), 255, np.uint8)
    for r, g in enumerate(others):
        for c, item in enumerate(g["items"]):
            sheet[r * size:(r + 1) * size, c * size:(c + 1) * size] = cache[ws.store.item(item)["cache_index"]]
    Image.fromarray(sheet).save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("similar-latency")
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=256)
    p.add_argument("--k", type=int, default=20)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--real-n", type=int, default=2000, help="cifar10 images for the real-embedding check")
    p.add_argument("--embedding", default="patches", choices=sorted(STARTS),
                   help="the real-embedding check's embedding (app: what the app chooses)")
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("near-duplicates")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--copies", type=int, default=30)
    p.add_argument("--crop", type=int, default=2, help="px of the 40 px upscale cropped at most per side")
    p.add_argument("--offset", type=int, default=0, help="first cifar10 image to use")
    p.add_argument("--cache-size", type=int, default=64, help="the workspace's image size (the app's default)")
    p.add_argument("--embedding", default="app", choices=sorted(STARTS),
                   help="app: what the app chooses among its starting encoders; else only that one")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--diagnose", action="store_true")
    p.add_argument("--verbose", action="store_true", help="with --diagnose: every planted pair")
    p.add_argument("--sheet", metavar="PNG", help="save the groups that are not planted pairs, for a look")
    args = ap.parse_args()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), file=sys.stderr)
    result = similar_latency(args) if args.bench == "similar-latency" else near_duplicates(args)
    print(json.dumps({"bench": args.bench, **result}, indent=1))


if __name__ == "__main__":
    main()
