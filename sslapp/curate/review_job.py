"""The "review" job: likely label errors among the labels a person gave, most suspicious first.

params: {"seed": int}. Reads the workspace's current embedding (`sslapp.features.service.current_embedding`,
the one the map and the classifier use) and the labels of sources 'user' and 'imported', ranks them
with `sslapp.curate.label_issues.rank_label_issues`, and stores the result in the setting
REVIEW_SETTING (`review.label_issues`), which the Train page reads without importing torch:

    {"job", "at", "embedding", "embedding_reason", "route", "n_labels", "notes", "seconds",
     "rows": [{"item", "path", "label", "suggested", "score"}, ...]}

Rows are most suspicious first. `score` lies in [0, 1], higher = more likely wrong: one minus
cleanlab's label quality (self_confidence: one minus the out-of-fold probability of the given label).
`suggested` is the class the features point to (the label itself when they agree), `path` the
image's name as it was added. Labels a person confirmed on the Train page (setting KEPT_SETTING,
{item id: class name}) are left out while they keep that class; labels of a class with a single
label cannot be checked and are named in `notes` instead.
"""

from __future__ import annotations

import time
from typing import Any

from sslapp.curate.read import KEPT_SETTING, REVIEW_SETTING, label_problem
from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace


class ReviewError(ValueError):
    """Labels the review cannot work on, with what to do about it."""


def review_workspace(ws: Workspace, seed: int = 0, progress=None, check_stop=None, job_id: int | None = None
                     ) -> dict[str, Any]:
    """Rank the workspace's labels by how likely each is wrong; stores and returns the review."""
    import numpy as np

    from sslapp.curate.label_issues import choose_method, rank_label_issues
    from sslapp.features.service import current_embedding, user_labels

    problem = label_problem(ws)
    if problem:
        raise ReviewError(problem)
    started = time.monotonic()
    emb = current_embedding(ws, progress=progress, check_stop=check_stop)
    idx, labels, classes = user_labels(ws, emb.item_ids)
    problem = label_problem(ws)  # labels may have changed while the features were computed
    if problem or len(labels) == 0:
        raise ReviewError(problem or "no labels to review")
    if progress:
        progress(message=f"checking {len(labels)} labels")
    names = [c["name"] for c in classes]
    order, scores, suggested = rank_label_issues(emb.features[idx], labels, seed, n_classes=len(names))
    route = choose_method(labels)
    item_ids = emb.item_ids[idx]
    kept = {str(k): v for k, v in (ws.store.get_setting(KEPT_SETTING) or {}).items()}
    paths = {int(r["id"]): r["source"] for r in ws.store.items(ids=[int(i) for i in item_ids])}
    rows, confirmed = [], 0
    for r in order:
        if np.isnan(scores[r]):
            continue
        item, label = int(item_ids[r]), names[int(labels[r])]
        if kept.get(str(item)) == label:
            confirmed += 1
            continue
        rows.append({"item": item, "path": paths.get(item, ""), "label": label,
                     "suggested": names[int(suggested[r])], "score": round(float(scores[r]), 4)})
    counts = np.bincount(labels, minlength=len(names))
    notes = []
    single = [names[c] for c in range(len(names)) if counts[c] == 1]
    if single:
        notes.append("Not checked (only one label, nothing to compare it with): " + ", ".join(single) + ".")
    if confirmed:
        notes.append(f"{confirmed} label{'s' if confirmed != 1 else ''} you confirmed earlier left out.")
    review = {"job": job_id, "at": time.time(), "embedding": emb.name, "embedding_reason": " ".join(emb.notes),
              "route": route, "n_labels": int(len(labels)), "notes": notes, "rows": rows, "seconds": round(time.monotonic() - started, 2)}
    ws.store.set_setting(REVIEW_SETTING, review)
    return review


def run_review_job(ctx: JobContext) -> dict[str, Any]:
    result = review_workspace(ctx.workspace, seed=int(ctx.params.get("seed", 0)),
                              progress=lambda **v: ctx.progress(force=True, **v), check_stop=ctx.check_stop,
                              job_id=ctx.job_id)
    flagged = sum(1 for r in result["rows"] if r["suggested"] != r["label"])
    ctx.progress(force=True, message=f"{flagged} of {result['n_labels']} labels look wrong to the features")
    return result
