"""The "embed" job: embed every item, lay out the 2-D map, cluster it; all saved as versioned files.

params: {"clusters": "kmeans"|"hdbscan", "k": int|None, "provisional": bool}. Files are
`embeddings/emb-<run>.npz` and `embeddings/map-<run>.npz`, each registered as an artifact of the run.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sslapp.embed.clusters import cluster
from sslapp.embed.embed import (
    choose_model,
    default_device,
    encoder_features,
    load_model,
    provisional_features,
    save_embeddings,
    save_npz,
)
from sslapp.embed.umap_map import fit_map
from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace


def save_map(ws: Workspace, number: int, item_ids: np.ndarray, xy: np.ndarray, labels: np.ndarray,
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


def run_embed_job(ctx: JobContext) -> dict[str, Any]:
    from sslapp.ingest.cache import read_cache

    ws, store = ctx.workspace, ctx.workspace.store
    method, k, provisional = _validate(ctx.params)
    started = time.monotonic()
    pairs = store.item_ids_and_cache_index()
    if not pairs:
        raise ValueError("the workspace has no images yet; add images on the Data page or with `sslapp ingest`")
    item_ids = np.array([p[0] for p in pairs], np.int64)
    rows = np.array([p[1] for p in pairs], np.int64)
    n = len(item_ids)
    choice = choose_model(ws, provisional=provisional)
    run_id = store.create_run("embed", {**ctx.params, "source": choice.source,
                                        "encoder_artifact_id": choice.artifact_id}, job_id=ctx.job_id)
    try:
        images = read_cache(ws)
        ctx.log.info("embedding %d items with %s (artifact %s)", n, choice.source, choice.artifact_id)

        def report(done: int, total: int) -> None:
            ctx.progress(step=done, steps=total, message=f"embedding {done}/{total} ({choice.source})")

        ctx.progress(force=True, step=0, steps=n, message=f"embedding {n} images ({choice.source})")
        if choice.source == "provisional":
            features = provisional_features(images, rows, progress=report)
        else:
            device = default_device()
            model = load_model(ws, choice, device=device)
            features = encoder_features(model, images, rows, device=device, progress=report,
                                        check_stop=ctx.check_stop)
        t_embed = time.monotonic() - started
        emb_id = save_embeddings(ws, run_id, item_ids, features, choice, run_id=run_id)
        ctx.check_stop()
        ctx.progress(force=True, message=f"laying out the map of {n} images")
        xy, layout = fit_map(features)
        t_map = time.monotonic() - started - t_embed
        ctx.check_stop()
        ctx.progress(force=True, message=f"clustering ({method})")
        clustering = cluster(features, xy, method=method, k=k)
        meta = {"embeddings_artifact_id": emb_id, "k": clustering.k, "method": clustering.method,
                "layout": layout, "provisional": choice.source == "provisional", "source": choice.source,
                "encoder_artifact_id": choice.artifact_id, "n_items": n, "max_item_id": int(item_ids.max()),
                "silhouette": {str(key): round(v, 4) for key, v in clustering.scores.items()}}
        map_id = save_map(ws, run_id, item_ids, xy, clustering.labels, meta, run_id=run_id)
        seconds = round(time.monotonic() - started, 2)
        summary = {**meta, "map_artifact_id": map_id, "seconds": seconds, "embed_s": round(t_embed, 2),
                   "map_s": round(t_map, 2)}
        store.update_run(run_id, status="done", summary=summary)
        ctx.progress(force=True, step=n, steps=n, message=f"map ready: {n} images, {clustering.k} clusters")
        ctx.log.info("map %s ready in %.2fs: %s", map_id, seconds, summary)
        return summary
    except BaseException:
        store.update_run(run_id, status="failed")
        raise
