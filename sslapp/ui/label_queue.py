"""The Label page's queue: one ordered list that both serves the next image and shows what comes after.

Order: images this tab just took back with Undo, then the open active-learning suggestions (newest
batch, in rank order), then picks of our own (one per map cluster in turn, or an even spread when
there is no map). The picks' order is a fixed order over all images filtered to the unlabelled ones,
so labelling the first leaves the rest in place: "Up next" is the order they will be served in.

When fewer than `REFILL_BELOW` suggestions are open, `refill` asks the worker for the next batch
(one "suggest" job, never a second while one is queued or running), so labelling goes on as a
continuous active-learning loop. No streamlit here: the page draws, this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from sslapp.store.states import ACTIVE_JOB_STATES, JobState
from sslapp.ui.common import item_words
from sslapp.words import count
from sslapp.workspace import Workspace

if TYPE_CHECKING:
    from sslapp.maps.read import MapData

UPCOMING = 12
REFILL_BELOW = 5  # ask for the next batch when fewer open suggestions are left
DEFAULT_BUDGET = 20


class Entry(NamedTuple):
    item_id: int
    reason: str
    kind: str  # "again" (undone here), "suggestion" or "pick"


@dataclass
class Queue:
    entries: list[Entry]
    open_suggestions: int  # open items of the newest suggestion batch
    unlabelled: int  # items neither labelled nor skipped


def _scramble(ids: np.ndarray, seed: int) -> np.ndarray:
    """A fixed pseudo-random key per item id (splitmix64): an order that does not move when the set does."""
    x = ids.astype(np.uint64) + np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) % 2**64)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


_ORDERS: dict[tuple[str, int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _turn_order(ws: Workspace, m: MapData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(item ids, clusters) of a map in the picks' order: every map image gets a rank inside its cluster, and
    rank-major order takes one per cluster in turn (a cluster whose first images are labelled already gives
    its turn to the others). Kept per map file and seed (a map file never changes): at 100,000 items the
    sort took 25 ms of every Label page run."""
    path = ws.root / str(m.artifact.get("path"))
    try:
        changed = path.stat().st_mtime_ns
    except OSError:  # removed meanwhile: the order below is still the map's, computed now
        changed = -1
    key_ = (str(path), changed, int(m.artifact["id"]), int(seed))
    if key_ not in _ORDERS:
        key = _scramble(m.item_ids, seed)
        by_cluster = np.lexsort((key, m.cluster))
        grouped = m.cluster[by_cluster]
        starts = np.r_[0, np.flatnonzero(np.diff(grouped)) + 1]
        rank = np.empty(len(m.item_ids), np.int64)
        rank[by_cluster] = np.arange(len(grouped)) - np.repeat(starts, np.diff(np.r_[starts, len(grouped)]))
        order = np.lexsort((m.cluster, rank))
        if len(_ORDERS) >= 4:
            _ORDERS.pop(next(iter(_ORDERS)))
        _ORDERS[key_] = (m.item_ids[order], m.cluster[order])
    return _ORDERS[key_]


def picks(ws: Workspace, todo: np.ndarray, limit: int, skip: set[int], seed: int = 0) -> list[Entry]:
    """Our own picks among `todo` (unlabelled ids), up to `limit`, leaving out `skip`."""
    from sslapp.maps.read import load_map

    if limit <= 0 or len(todo) == 0:
        return []
    m = load_map(ws)
    out: list[Entry] = []
    on_map = np.zeros(0, np.int64)
    if m is not None and len(m.item_ids):
        on_map = m.item_ids
        ids, clusters = _turn_order(ws, m, seed)
        for row in np.flatnonzero(np.isin(ids, todo, assume_unique=True)):
            item, c = int(ids[row]), int(clusters[row])
            if item in skip:
                continue
            name = "noise" if c < 0 else f"cluster {c}"
            out.append(Entry(item, f"{name}: one per cluster in turn, so every group gets labels", "pick"))
            if len(out) >= limit:
                return out
        reason = f"new {item_words(ws)[0]}, not on the map yet"
    else:
        reason = f"an even spread over your {item_words(ws)[1]} (compute a map on Explore for cluster-balanced picks)"
    rest = np.setdiff1d(todo, on_map)
    for item in rest[np.argsort(_scramble(rest, seed), kind="stable")]:
        if int(item) not in skip:
            out.append(Entry(int(item), reason, "pick"))
            if len(out) >= limit:
                break
    return out


def build_queue(ws: Workspace, limit: int = UPCOMING + 1, first: list[int] | tuple[int, ...] = (),
                seed: int = 0, keep: int | None = None) -> Queue:
    """The next `limit` images to label, in the order they will be served; `first` (e.g. images this tab
    took back with Undo) go ahead of the rest while they are still unlabelled, and `keep` (the image
    the user is working on, e.g. in More like this) ahead of everything: new suggestions arriving
    meanwhile must not swap it for another."""
    store = ws.store
    todo = np.array(store.unlabeled_ids(), np.int64)
    open_ids = set(todo.tolist())
    entries: list[Entry] = []
    seen: set[int] = set()
    for item in first:
        if item in open_ids and item not in seen:
            entries.append(Entry(int(item), "you took it back with Undo", "again"))
            seen.add(item)
    sugg = store.open_suggestions()
    for s in sugg:
        item = int(s["item_id"])
        if item not in seen and item in open_ids:
            entries.append(Entry(item, f"{s['strategy']}: {s['reason']}", "suggestion"))
            seen.add(item)
    entries = entries[:limit]
    entries += picks(ws, todo, limit - len(entries), seen, seed)
    if keep is not None and keep in open_ids:
        kept = next((e for e in entries if e.item_id == keep), None) or Entry(int(keep), "you are working on it", "pick")
        entries = [kept, *[e for e in entries if e.item_id != keep]][:limit]
    return Queue(entries, len(sugg), len(todo))


def refill(ws: Workspace, queue: Queue, below: int = REFILL_BELOW) -> int | None:
    """Enqueue the next suggestion batch when the open suggestions run short; returns the new job id.

    Only once the user has asked for suggestions at least once (the loop starts with them), never
    while a suggest job is queued or running (the newest suggest job is checked again and the new one
    enqueued in one write transaction, so two tabs cannot both add one), not after a failed one (its error is shown instead), and only when
    something was labelled or skipped since the last job was asked for (else it would answer the same).
    Returns None when nothing was enqueued. The caller starts a worker.
    """
    if queue.open_suggestions >= below or queue.unlabelled <= queue.open_suggestions:
        return None
    store = ws.store
    last = store.jobs(kind="suggest", limit=1)
    if not last or last[0]["status"] != JobState.DONE:  # none asked for yet, one on its way, or a failure
        return None
    params = last[0]["params"] or {}
    asked_at = params.get("unlabelled")
    if asked_at is not None and queue.unlabelled >= int(asked_at):
        return None
    with store.transaction():  # check and enqueue under the write lock: another tab may be doing the same
        if store.jobs(kind="suggest", limit=1)[0]["id"] != last[0]["id"]:  # another tab was first
            return None
        return store.enqueue_job("suggest", {"budget": int(params.get("budget", DEFAULT_BUDGET)),
                                             "strategy": params.get("strategy") or "auto", "auto": True,
                                             "unlabelled": queue.unlabelled})


def waiting_job(ws: Workspace) -> dict | None:
    """The suggest job queued or running now, if any."""
    jobs = ws.store.jobs(kind="suggest", statuses=ACTIVE_JOB_STATES, limit=1)
    return jobs[0] if jobs else None


def queue_note(queue: Queue, job: dict | None, budget: int | None = None, plural: str = "images") -> str | None:
    """One plain sentence on where the items come from now, or None when suggestions lead."""
    more = f"the next {budget}" if budget else "the next batch"
    if queue.open_suggestions == 0:
        if job is not None:
            return (f"Out of suggestions: the worker is choosing {more}. "
                    "Meanwhile you get our own picks, one per map cluster in turn.")
        return (f"No active-learning suggestions yet: showing our own picks of unlabelled {plural} (one per map "
                "cluster in turn once there is a map). Ask for suggestions below.")
    if job is not None and queue.open_suggestions < REFILL_BELOW:
        return (f"{count(queue.open_suggestions, 'suggestion')} left; the worker is choosing {more} "
                "Our own picks follow them until it is ready.")
    return None
