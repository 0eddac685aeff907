"""The "suggest" job: pick the next images to label and store them, with reasons, as a suggestion batch.

params: {"budget": int (default 20), "strategy": one of STRATEGIES (default "auto"), "seed": int}.
Features come from the newest "embeddings" artifact (the embed job). When there is none, or it
misses images and was itself provisional, a provisional pixel embedding is computed here so the
user still gets suggestions; an embedding older than the current model is used with a note.
Uncertainty comes from the app's own probe refitted on the current labels, so it never lags
behind the labels the way stored predictions can.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace

DEFAULT_BUDGET = 20
MAX_BUDGET = 10_000


@dataclass
class Features:
    """Item ids and their feature rows, with where they came from and what the user should know."""

    item_ids: np.ndarray
    features: np.ndarray
    source: str
    notes: list[str] = field(default_factory=list)


def _provisional(ws: Workspace, pairs: list[tuple[int, int]]) -> np.ndarray:
    from sslapp.embed.embed import provisional_features
    from sslapp.ingest.cache import read_cache

    rows = np.array([p[1] for p in pairs], np.int64)
    return provisional_features(read_cache(ws), rows)


def load_features(ws: Workspace) -> Features:
    """The newest embeddings covering the workspace's items, or a provisional embedding with a note."""
    from sslapp.embed.embed import choose_model, load_npz

    store = ws.store
    pairs = store.item_ids_and_cache_index()
    if not pairs:
        raise ValueError("the workspace has no images yet; add images on the Data page or with `sslapp ingest`")
    all_ids = np.array([p[0] for p in pairs], np.int64)
    art = store.latest_artifact("embeddings")
    data = None
    if art is not None:
        path = ws.root / art["path"]
        if path.exists():
            data = load_npz(path)
    if data is None:
        why = "no embeddings yet" if art is None else f"the embeddings file {art['path']} is missing"
        return Features(all_ids, _provisional(ws, pairs), "provisional",
                        [f"{why}: used a provisional pixel embedding. Pretrain and run Embed (Explore page, "
                         "or `sslapp embed`) for better suggestions."])
    meta = art.get("meta") or {}
    source = str(meta.get("source", "unknown"))
    ids, feats = np.asarray(data["item_ids"], np.int64), np.asarray(data["features"], np.float32)
    notes = []
    current = choose_model(ws)
    if source != "provisional" and current.artifact_id != meta.get("encoder_artifact_id"):
        notes.append(f"the embeddings come from an older model ({source} {meta.get('encoder_artifact_id')}, "
                     f"newest is {current.source} {current.artifact_id}); run Embed again for suggestions "
                     "that use the newest model.")
    elif source == "provisional" and current.source != "provisional":
        notes.append("the embeddings are provisional although a trained model exists; run Embed again for "
                     "better suggestions.")
    missing = np.setdiff1d(all_ids, ids)
    if len(missing):
        if source == "provisional":
            return Features(all_ids, _provisional(ws, pairs), "provisional",
                            notes + [f"{len(missing)} images were added after the last embedding; recomputed the "
                                     "provisional embedding for all images."])
        notes.append(f"{len(missing)} images were added after the last embedding and cannot be suggested until "
                     "you run Embed again.")
    keep = np.isin(ids, all_ids)  # drop items removed since
    return Features(ids[keep], feats[keep], source, notes)


def suggest_for_workspace(ws: Workspace, budget: int = DEFAULT_BUDGET, strategy: str = "auto", seed: int = 0,
                          progress=None) -> dict[str, Any]:
    """Compute and store one suggestion batch; returns the job result (batch, suggestions, notes)."""
    from sslapp.select import STRATEGIES, select

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    budget = int(budget)
    if not 1 <= budget <= MAX_BUDGET:
        raise ValueError(f"budget must be between 1 and {MAX_BUDGET} (got {budget})")
    store = ws.store
    started = time.monotonic()
    if progress:
        progress(message="loading embeddings")
    feats = load_features(ws)
    row_of = {int(i): r for r, i in enumerate(feats.item_ids)}
    classes = list(store.classes())
    class_index = {int(c["id"]): k for k, c in enumerate(classes)}
    truth = [r for r in store.labels(sources=("user", "imported")) if int(r["item_id"]) in row_of]
    labeled_idx = np.array([row_of[int(r["item_id"])] for r in truth], np.int64)
    labels = np.array([class_index[int(r["class_id"])] for r in truth], np.int64)
    # Propagated labels are guesses, not labels, but the Label page hides those items too; skip them.
    blocked = {int(r["item_id"]) for r in store.labels(sources=("propagated",))} | store.skipped_ids()
    exclude = [row_of[i] for i in blocked if i in row_of]
    if progress:
        progress(message=f"choosing {budget} images ({strategy})")
    selection = select(strategy, feats.features, labeled_idx, labels, budget, exclude=exclude,
                       class_names=[c["name"] for c in classes], n_classes=len(classes) or None, seed=seed)
    rows = [(int(feats.item_ids[s.index]), selection.strategy, s.reason) for s in selection.suggestions]
    batch = store.save_suggestions(rows) if rows else None
    notes = feats.notes + selection.notes
    return {"batch": batch, "count": len(rows), "strategy": strategy, "used": selection.strategy,
            "embedding": feats.source, "labels": int(len(labels)), "notes": notes,
            "suggestions": [{"item_id": i, "strategy": s, "reason": r} for i, s, r in rows],
            "seconds": round(time.monotonic() - started, 2)}


def run_suggest_job(ctx: JobContext) -> dict[str, Any]:
    params = ctx.params
    result = suggest_for_workspace(ctx.workspace, budget=params.get("budget", DEFAULT_BUDGET),
                                   strategy=params.get("strategy") or "auto", seed=int(params.get("seed", 0)),
                                   progress=lambda **v: ctx.progress(force=True, **v))
    for note in result["notes"]:
        ctx.log.warning(note)
    ctx.progress(force=True, message=f"{result['count']} suggestions ready")
    return result
