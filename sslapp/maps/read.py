"""Reading the newest map back, and telling whether it is provisional or stale."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sslapp.features.extract import load_npz
from sslapp.words import count
from sslapp.workspace import Workspace


@dataclass
class MapData:
    artifact: dict[str, Any]
    item_ids: np.ndarray  # (N,) int64, ascending
    xy: np.ndarray  # (N, 2) float32
    cluster: np.ndarray  # (N,) int32, -1 = noise

    @property
    def meta(self) -> dict[str, Any]:
        return self.artifact.get("meta") or {}

    def cluster_name(self, c: int | None) -> str:
        """How pages name a cluster: "cluster 3", with its distinctive words where the map has them
        ("cluster 3 · card, arrived, new": texts); "noise" for -1, "off the map" for None."""
        if c is None:
            return "off the map"
        if c < 0:
            return "noise"
        words = (self.meta.get("cluster_words") or {}).get(str(int(c)))
        return f"cluster {int(c)} · {', '.join(words)}" if words else f"cluster {int(c)}"

    def rows_of(self, item_ids) -> np.ndarray:
        """Row positions of the given item ids (ids not on the map are dropped)."""
        ids = np.asarray(list(item_ids), np.int64)
        if len(self.item_ids) == 0 or len(ids) == 0:
            return np.zeros(0, np.int64)
        pos = np.clip(np.searchsorted(self.item_ids, ids), 0, len(self.item_ids) - 1)
        return pos[self.item_ids[pos] == ids]


@dataclass
class MapStatus:
    provisional: bool
    stale_reasons: list[str] = field(default_factory=list)

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


def load_map(ws: Workspace, artifact: dict[str, Any] | None = None) -> MapData | None:
    """The newest map (or `artifact`), or None when there is none or its file is gone."""
    artifact = artifact or ws.store.latest_artifact("map")
    if artifact is None:
        return None
    path = ws.root / artifact["path"]
    if not path.exists():
        return None
    data = load_npz(path)
    order = np.argsort(data["item_ids"], kind="stable")
    return MapData(artifact, data["item_ids"][order].astype(np.int64), data["xy"][order].astype(np.float32),
                   data["cluster"][order].astype(np.int32))


def map_status(ws: Workspace, artifact: dict[str, Any], words: tuple[str, str] = ("item", "items")) -> MapStatus:
    """Provisional and stale reasons: items added or removed since, another embedding chosen since,
    or an encoder (a finished pretraining) that no choice has measured yet. words: what one item and
    many are called in the reasons (the page passes "image", "images")."""
    from sslapp.features.read import CHOICE_SETTING

    meta = artifact.get("meta") or {}
    reasons = []
    n_now = ws.store.count_items()
    if n_now != meta.get("n_items"):
        diff = n_now - int(meta.get("n_items") or 0)
        reasons.append(f"{count(abs(diff), *words)} {'added' if diff > 0 else 'removed'} since this map was made")
    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    chosen = choice.get("encoder_artifact_id")
    if not meta.get("provisional") and chosen is not None and chosen != meta.get("encoder_artifact_id"):
        reasons.append(f"the app now uses another embedding ({choice.get('name')})")
    newest = ws.store.latest_artifact("encoder")
    measured = {c.get("encoder_artifact_id") for c in choice.get("candidates", [])}
    if newest is not None and measured and max(measured) < newest["id"] and \
            newest["id"] != meta.get("encoder_artifact_id"):
        reasons.append("a newer encoder is ready to be compared")
    return MapStatus(bool(meta.get("provisional")), reasons)
