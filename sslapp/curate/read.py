"""The torch-free side of curation that pages and the CLI use: the settings the review and
near-duplicate jobs write, whether labels can be reviewed yet, and keeping one image of a group.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sslapp.curate.label_issues import FLAG_ODDS, too_few_labels
from sslapp.workspace import Workspace

__all__ = ["FLAG_ODDS", "GROUPS_SETTING", "KEPT_ALL_SETTING", "KEPT_SETTING", "REVIEW_SETTING", "TRUSTED_SOURCES",
           "flagged", "keep_one", "label_problem", "odds_text"]

REVIEW_SETTING = "review.label_issues"
KEPT_SETTING = "review.kept"
TRUSTED_SOURCES = ("user", "imported")
GROUPS_SETTING = "duplicates.groups"
KEPT_ALL_SETTING = "duplicates.kept_all"


def label_problem(ws: Workspace) -> str | None:
    """Why this workspace's labels cannot be reviewed yet, or None (cheap: counts only)."""
    return too_few_labels(dict(Counter(r["class_name"] for r in ws.store.labels(sources=TRUSTED_SOURCES))))


def flagged(row: dict[str, Any]) -> bool:
    """Whether a review row is shown as a possible error: it cleared the margin (rows stored before
    the margin existed: the features favoured another class)."""
    return bool(row.get("flagged", row["suggested"] != row["label"]))


def odds_text(row: dict[str, Any]) -> str:
    """How strongly a review row's images favour the suggested class, in words."""
    odds = row.get("odds")
    if not odds or odds < 1.05:
        return f"The images most like it favour {row['suggested']} over {row['label']}."
    times = f"{odds:.0f}" if odds >= 10 else f"{odds:.1f}".rstrip("0").rstrip(".")
    return f"By the images most like it, {row['suggested']} is {times} times as likely as {row['label']}."


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
