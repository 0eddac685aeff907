"""The "embed" job: embed every item, lay out the 2-D map, cluster it; all saved as versioned files.

params: {"clusters": "kmeans"|"hdbscan", "k": int|None, "provisional": bool}. The features come
from `sslapp.features.service` (cached per encoder); the map is `embeddings/map-<run>.npz`, an
artifact of the run. A run that starts with no map saves two: pixels first, then the chosen one.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sslapp.features.extract import save_npz
from sslapp.features.items import cluster_words
from sslapp.jobs.context import JobContext
from sslapp.maps.clusters import cluster
from sslapp.maps.umap_map import fit_map
from sslapp.modalities import workspace_modality
from sslapp.workspace import Workspace


def save_map(ws: Workspace, number: int | str, item_ids: np.ndarray, xy: np.ndarray, labels: np.ndarray,
             meta: dict[str, Any], run_id: int | None = None) -> int:
    rel = f"embeddings/map-{number}.npz"
    save_npz(ws.root / rel, item_ids=np.asarray(item_ids, np.int64), xy=xy.astype(np.float32),
             cluster=labels.astype(np.int32))
    return ws.store.add_artifact("map", rel, meta, run_id=run_id)


def _validate(params: dict[str, Any]) -> tuple[str, int | None, bool]:
    method = params.get("clusters") or "kmeans"
    if method not in ("kmeans", "hdbscan"):
        raise ValueError(f"clusters must be 'kmeans' or 'hdbscan', not {method!r}")
    k = params.get("k")
    if k is not None:
        k = int(k)
        if not 1 <= k <= 200:
            raise ValueError(f"k must be between 1 and 200, not {k}")
    return method, k, bool(params.get("provisional", False))


def _map_and_save(ctx: JobContext, item_ids: np.ndarray, features: np.ndarray, method: str, k: int | None,
                  meta: dict[str, Any], run_id: int, started: float) -> dict[str, Any]:
    """Lay out, cluster and save one map of `features`; returns its summary."""
    ws, n = ctx.workspace, len(item_ids)
    plural = workspace_modality(ws).plural
    t0 = time.monotonic()
    ctx.check_stop()
    ctx.progress(force=True, message=f"laying out the map of {n} {plural} ({meta['embedding_name']})")
    xy, layout = fit_map(features)
    ctx.check_stop()
    ctx.progress(force=True, message=f"clustering ({method})")
    clustering = cluster(features, xy, method=method, k=k)
    words = cluster_words(ws, item_ids, clustering.labels)  # texts: each cluster's distinctive words
    if words:
        meta = {**meta, "cluster_words": {str(c): w for c, w in words.items()}}
    meta = {**meta, "k": clustering.k, "method": clustering.method, "layout": layout, "n_items": n,
            "max_item_id": int(item_ids.max()),
            "k_scores": {str(key): round(v, 4) for key, v in clustering.scores.items()}}
    name = f"{run_id}-pixels" if meta["provisional"] else str(run_id)
    map_id = save_map(ws, name, item_ids, xy, clustering.labels, meta, run_id=run_id)
    ctx.progress(force=True, step=n, steps=n, message=f"map ready: {n} {plural}, {clustering.k} clusters")
    return {**meta, "map_artifact_id": map_id, "map_s": round(time.monotonic() - t0, 2),
            "seconds": round(time.monotonic() - started, 2)}


def run_embed_job(ctx: JobContext) -> dict[str, Any]:
    """A provisional pixel map first when there is no map yet (seconds), then the map of the
    embedding `sslapp.features.service.best_embedding` chooses, which replaces it when ready."""
    from sslapp.features.items import quick_features
    from sslapp.features.read import current_items
    from sslapp.features.service import best_embedding

    ws, store = ctx.workspace, ctx.workspace.store
    method, k, provisional = _validate(ctx.params)
    started = time.monotonic()
    item_ids, rows = current_items(ws)
    n = len(item_ids)
    with ctx.run("embed", dict(ctx.params)) as run:
        if provisional or store.latest_artifact("map") is None:
            ctx.progress(force=True, step=0, steps=n, message=f"a first map of {n} {workspace_modality(ws).plural}")
            features = quick_features(ws, rows)
            run.summary = _map_and_save(ctx, item_ids, features, method, k, {
                "provisional": True, "source": "provisional", "embedding_name": "pixels (first look)",
                "encoder_artifact_id": None}, run.id, started)
        if not provisional:
            emb = best_embedding(ws, progress=lambda **v: ctx.progress(force=True, **v), check_stop=ctx.check_stop)
            for note in emb.notes:
                ctx.log.info(note)
            run.summary = _map_and_save(ctx, emb.item_ids, emb.features, method, k, {
                "provisional": False, "source": "encoder", "encoder_artifact_id": int(emb.artifact["id"]),
                "embedding_name": emb.name, "embedding_reason": emb.notes[-1] if emb.notes else ""},
                run.id, started)
    summary = run.summary
    ctx.log.info("map %s ready in %.2fs: %s", summary["map_artifact_id"], summary["seconds"], summary)
    return summary
