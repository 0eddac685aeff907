"""The torch-free side of curation that pages and the CLI use: the settings the review and
near-duplicate jobs write, whether labels can be reviewed yet, and keeping one image of a group.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sslapp.curate.label_issues import too_few_labels
from sslapp.workspace import Workspace

REVIEW_SETTING = "review.label_issues"
KEPT_SETTING = "review.kept"
TRUSTED_SOURCES = ("user", "imported")
GROUPS_SETTING = "duplicates.groups"
KEPT_ALL_SETTING = "duplicates.kept_all"


def label_problem(ws: Workspace) -> str | None:
    """Why this workspace's labels cannot be reviewed yet, or None (cheap: counts only)."""
    return too_few_labels(dict(Counter(r["class_name"] for r in ws.store.labels(sources=TRUSTED_SOURCES))))


def keep_one(ws: Workspace, item_ids) -> dict[str, Any]:
    """Keep one image of a near-duplicate group and skip the rest: {"kept": id, "skipped": [ids]}.

    The kept one is the lowest id among those a person labelled, else the lowest id. The others are
    marked skipped (`store.skip_items`): they leave the labelling queue and the suggestions, nothing
    is deleted and labels are untouched; labelling one later or `store.unskip_items` brings it back.
    """
    ids = sorted({int(i) for i in item_ids})
    if not ids:
        raise ValueError("keep_one needs the item ids of a group")
    labelled = {int(r["item_id"]) for r in ws.store.labels(sources=TRUSTED_SOURCES) if int(r["item_id"]) in ids}
    kept = min(labelled) if labelled else ids[0]
    skipped = [i for i in ids if i != kept]
    if skipped:
        ws.store.skip_items(skipped)
    return {"kept": kept, "skipped": skipped}
