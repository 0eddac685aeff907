"""The "suggest" job: pick the next images to label and store them, with reasons, as a suggestion batch.

params: {"budget": int (default 20), "strategy": one of STRATEGIES (default "auto"), "seed": int}.
Features are the workspace's chosen embedding (`sslapp.features.service.best_embedding`), the
same the map and the classifier use; the worker computes what is missing.
Uncertainty comes from the app's own probe refitted on the current labels, so it never lags
behind the labels the way stored predictions can.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace

DEFAULT_BUDGET = 20
MAX_BUDGET = 10_000


def load_features(ws: Workspace, progress=None, check_stop=None):
    """The workspace's chosen embedding (`sslapp.features.service`): one source for every consumer."""
    from sslapp.features.service import best_embedding

    return best_embedding(ws, progress=progress, check_stop=check_stop)


def map_clusters(ws: Workspace) -> dict[int, str]:
    """item id -> " (map cluster 3)" (texts: " (map cluster 3 · card, arrived, new)") from the newest map,
    so a reason names the clusters the Explore page shows; empty when there is no map."""
    from sslapp.maps.read import load_map

    try:
        m = load_map(ws)
    except (OSError, ValueError, KeyError):
        return {}
    if m is None:
        return {}
    return {int(i): f" (map {m.cluster_name(int(c))})" for i, c in zip(m.item_ids, m.cluster, strict=True) if c >= 0}


def suggest_for_workspace(ws: Workspace, budget: int = DEFAULT_BUDGET, strategy: str = "auto", seed: int = 0,
                          progress=None) -> dict[str, Any]:
    """Compute and store one suggestion batch; returns the job result (batch, suggestions, notes)."""
    from sslapp.modalities import workspace_modality
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
    feats = load_features(ws, progress=progress)
    row_of = {int(i): r for r, i in enumerate(feats.item_ids)}
    classes = list(store.classes())
    class_index = {int(c["id"]): k for k, c in enumerate(classes)}
    truth = [r for r in store.labels(sources=("user", "imported")) if int(r["item_id"]) in row_of]
    labeled_idx = np.array([row_of[int(r["item_id"])] for r in truth], np.int64)
    labels = np.array([class_index[int(r["class_id"])] for r in truth], np.int64)
    # Propagated labels are guesses, not labels, but the Label page hides those items too; skip them.
    blocked = {int(r["item_id"]) for r in store.labels(sources=("propagated",))} | store.skipped_ids()
    exclude = [row_of[i] for i in blocked if i in row_of]
    modality = workspace_modality(ws)
    if progress:
        progress(message=f"choosing {budget} {modality.plural} ({strategy})")
    selection = select(strategy, feats.features, labeled_idx, labels, budget, exclude=exclude,
                       class_names=[c["name"] for c in classes], n_classes=len(classes) or None, seed=seed,
                       nouns=(modality.noun, modality.plural))
    on_map = map_clusters(ws)
    rows = [(int(feats.item_ids[s.index]), selection.strategy, s.reason + on_map.get(int(feats.item_ids[s.index]), ""))
            for s in selection.suggestions]
    batch = store.save_suggestions(rows) if rows else None
    notes = feats.notes + selection.notes
    return {"batch": batch, "count": len(rows), "strategy": strategy, "used": selection.strategy,
            "embedding": feats.name, "encoder_artifact_id": int(feats.artifact["id"]), "labels": int(len(labels)), "notes": notes,
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
