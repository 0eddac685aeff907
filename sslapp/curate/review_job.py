"""The "review" job: likely label errors among the labels a person gave, most suspicious first.

params: {"seed": int}. Reads the workspace's current embedding (`sslapp.features.service.current_embedding`,
the one the map and the classifier use) and the labels of sources 'user' and 'imported', ranks them
with `sslapp.curate.label_issues.review_labels` (the other items' features carry the labels along
the data), and stores the result in the setting REVIEW_SETTING (`review.label_issues`), which the
Train page reads without importing torch:

    {"job", "at", "embedding", "embedding_reason", "route", "n_labels", "n_flagged", "notes", "seconds",
     "rows": [{"item", "path", "label", "suggested", "score", "odds", "flagged"}, ...]}

Rows are most suspicious first. `score` lies in [0, 1], higher = more likely wrong: one minus the
calibrated out-of-fold probability of the given label. `suggested` is the class the features favour
(the label itself when they agree), `odds` how many times as likely it is as the label, `flagged`
whether that clears the margin (`label_issues.FLAG_ODDS`): only flagged rows are shown as possible
errors. `path` is the item's name as it was added. Labels a person confirmed on the Train page
(setting KEPT_SETTING, {item id: class name}) are left out while they keep that class; a class with
too few labels to check is named in `notes` ("Too few labels in X to check it") instead of guessed.
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

    from sslapp.curate.label_issues import review_labels, unchecked_classes
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
    others = np.setdiff1d(np.arange(len(emb.item_ids)), idx)
    found = review_labels(emb.features[idx], labels, seed, n_classes=len(names), unlabelled=emb.features[others])
    scores = found.scores
    item_ids = emb.item_ids[idx]
    kept = {str(k): v for k, v in (ws.store.get_setting(KEPT_SETTING) or {}).items()}
    paths = {int(r["id"]): r["source"] for r in ws.store.items(ids=[int(i) for i in item_ids])}
    rows, confirmed = [], 0
    for r in found.order:
        if np.isnan(scores[r]):
            continue
        item, label = int(item_ids[r]), names[int(labels[r])]
        if kept.get(str(item)) == label:
            confirmed += 1
            continue
        rows.append({"item": item, "path": paths.get(item, ""), "label": label,
                     "suggested": names[int(found.suggested[r])], "score": round(float(scores[r]), 4),
                     "odds": round(float(found.odds[r]), 2), "flagged": bool(found.flagged[r])})
    counts = np.bincount(labels, minlength=len(names))
    notes = unchecked_classes({names[c]: int(counts[c]) for c in range(len(names))})
    if confirmed:
        notes.append(f"{confirmed} label{'s' if confirmed != 1 else ''} you confirmed earlier left out.")
    review = {"job": job_id, "at": time.time(), "embedding": emb.name, "embedding_reason": " ".join(emb.notes),
              "route": found.route, "n_labels": int(len(labels)), "n_flagged": sum(r["flagged"] for r in rows),
              "notes": notes, "rows": rows, "seconds": round(time.monotonic() - started, 2)}
    ws.store.set_setting(REVIEW_SETTING, review)
    return review


def run_review_job(ctx: JobContext) -> dict[str, Any]:
    result = review_workspace(ctx.workspace, seed=int(ctx.params.get("seed", 0)),
                              progress=lambda **v: ctx.progress(force=True, **v), check_stop=ctx.check_stop,
                              job_id=ctx.job_id)
    n = result["n_flagged"]
    ctx.progress(force=True, message=f"{n} of {result['n_labels']} labels may be wrong")
    return result
