"""The "near_duplicates" job: groups of near-identical images, for the Data page.

params: {} (none). Reads the workspace's chosen embedding (`sslapp.curate.similar.load_index`:
features the cache lacks are computed first, which imports torch, so this runs in the worker),
groups the images with `sslapp.curate.duplicates.near_duplicate_groups` and stores the result in
the setting GROUPS_SETTING (`duplicates.groups`), which the Data page reads without importing torch:

    {"job", "at", "embedding", "n_items", "last_item", "seconds",
     "groups": [{"items": [ids], "paths": [sources]}, ...]}

Groups are largest first. `at` is when the search began, `n_items` how many images it looked at
and `last_item` the highest item id among them: an active image with a higher id was added since.
Groups the user dismissed with "Keep all" are kept by the page in KEPT_ALL_SETTING
(`duplicates.kept_all`, a list of sorted id lists); this job leaves that setting alone.
"""

from __future__ import annotations

import time
from typing import Any

from sslapp.curate.read import GROUPS_SETTING
from sslapp.jobs.context import JobContext
from sslapp.workspace import Workspace


def find_near_duplicates(ws: Workspace, progress=None, job_id: int | None = None) -> dict[str, Any]:
    """Group the workspace's near-identical items; stores and returns the result (see the module doc)."""
    from sslapp.curate.duplicates import near_duplicate_groups
    from sslapp.curate.similar import load_index
    from sslapp.features.read import current_items
    from sslapp.modalities import workspace_modality

    started, at = time.monotonic(), time.time()
    item_ids, _ = current_items(ws)  # raises "no images yet" with what to do
    index = load_index(ws, progress=progress)
    if progress:
        progress(message=f"comparing {len(item_ids):,} {workspace_modality(ws).plural}")
    groups = near_duplicate_groups(ws, index)
    result = {"job": job_id, "at": at, "embedding": index.name, "n_items": int(len(item_ids)),
              "last_item": int(item_ids.max()), "groups": groups, "seconds": round(time.monotonic() - started, 2)}
    ws.store.set_setting(GROUPS_SETTING, result)
    return result


def run_near_duplicates_job(ctx: JobContext) -> dict[str, Any]:
    result = find_near_duplicates(ctx.workspace, progress=lambda **v: ctx.progress(force=True, **v),
                                  job_id=ctx.job_id)
    n, extra = len(result["groups"]), sum(len(g["items"]) - 1 for g in result["groups"])
    ctx.progress(force=True, message=f"{n} group{'s' if n != 1 else ''} of near-duplicates")
    # the groups themselves live in the setting; the job row keeps a summary
    return {"groups": n, "extra_images": extra, "n_items": result["n_items"], "embedding": result["embedding"],
            "seconds": result["seconds"]}
