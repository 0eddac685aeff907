"""The one place that owns embeddings: which encoders a workspace has, their features (computed
once, cached per encoder, extended when images are added) and the one every consumer uses.

Every embedding is an encoder artifact, so the map, suggestions, the classifier, the export and
the benchmark all see the same features:
- the *starting* encoders the workspace's modality lists, made without a training loop right
  after ingest (`sslapp.features.starts`): for images ImageNet EfficientNet-Lite0 (frozen), the
  patch dictionary and pixel PCA fitted on the user's images; for texts all-MiniLM-L6-v2 (frozen)
  and TF-IDF + SVD fitted on the user's texts;
- every pretraining run's best encoder (`sslapp.features.read.probe_rank`);
- vectors the user computed elsewhere and imported (`sslapp.features.imported`), served from
  their stored file; a candidate only while they cover every image.
Which one is used is measured (`sslapp.features.choose`) and recorded in the setting
`features.choice`, which the pages read without importing torch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sslapp.features import imported
from sslapp.features.read import (
    CHOICE_SETTING,
    PINNED_SETTING,
    STARTS_SETTING,
    current_items,
    describe,
    encoders,
    is_imported,
)
from sslapp.features.starts import IMAGENET_BACKBONE, IMAGENET_SIZE, PATCH_SIZE, make_start, wanted_starts
from sslapp.modalities import workspace_modality
from sslapp.workspace import Workspace

__all__ = ["IMAGENET_BACKBONE", "IMAGENET_SIZE", "PATCH_SIZE", "STARTS_SETTING", "Embedding", "best_embedding",
           "current_embedding", "encoder_module", "ensure_starting_encoders", "features_for", "user_labels",
           "wanted_starts"]

Progress = Callable[..., None]


@dataclass
class Embedding:
    """Features of the workspace's items from one encoder artifact (rows follow `item_ids`)."""

    artifact: dict[str, Any]
    item_ids: np.ndarray
    features: np.ndarray
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"encoder:{self.artifact['id']}"

    @property
    def name(self) -> str:
        return describe(self.artifact)


def _cached(ws: Workspace, encoder_id: int) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    from sslapp.features.extract import load_npz

    for art in ws.store.artifacts("embeddings", limit=100_000):
        meta = art.get("meta") or {}
        if meta.get("encoder_artifact_id") == encoder_id and (ws.root / art["path"]).exists():
            try:
                return art, load_npz(ws.root / art["path"])
            except (OSError, ValueError, KeyError):
                continue
    return None


def _store_features(ws: Workspace, encoder: dict[str, Any], item_ids: np.ndarray, features: np.ndarray) -> None:
    """Cache an encoder's features as `embeddings/enc-<id>-<ms>.npz`, an 'embeddings' artifact."""
    from sslapp.features.extract import save_npz

    rel = f"embeddings/enc-{encoder['id']}-{int(time.time() * 1000)}.npz"
    save_npz(ws.root / rel, item_ids=np.asarray(item_ids, np.int64), features=np.asarray(features, np.float32))
    ws.store.add_artifact("embeddings", rel, {"source": "encoder", "encoder_artifact_id": int(encoder["id"]),
                                              "n_items": int(len(item_ids)), "dim": int(features.shape[1])},
                          run_id=encoder.get("run_id"))


def features_for(ws: Workspace, artifact: dict[str, Any], progress: Progress | None = None,
                 check_stop: Callable[[], None] | None = None, only: np.ndarray | None = None) -> Embedding:
    """The encoder's features of every current item (or of the item ids `only`, in that order): loaded
    when cached, else computed (only for the items the cache misses) and cached as an 'embeddings'
    artifact. Only computing imports torch."""
    item_ids, rows = current_items(ws)
    if only is not None:
        position = {int(i): k for k, i in enumerate(item_ids)}
        picked = np.array([position[int(i)] for i in only], np.int64)
        item_ids, rows = item_ids[picked], rows[picked]
    if is_imported(artifact):  # served from its own file; nothing computes it
        return Embedding(artifact, item_ids, imported.features_of(ws, artifact, item_ids))
    cached = _cached(ws, int(artifact["id"]))
    have_ids = np.zeros(0, np.int64)
    have = None
    if cached is not None:
        have_ids = np.asarray(cached[1]["item_ids"], np.int64)
        have = np.asarray(cached[1]["features"], np.float32)
    missing = ~np.isin(item_ids, have_ids)
    if missing.any():
        from sslapp.features.extract import encoder_features
        from sslapp.ingest.cache import read_cache
        from sslapp.models.encoder import load_encoder

        name = describe(artifact)
        modality = workspace_modality(ws)
        if progress:
            progress(message=f"embedding {int(missing.sum())} {modality.plural} with {name}")
        path = ws.root / artifact["path"]
        if not path.exists():
            raise FileNotFoundError(f"the encoder file {artifact['path']} is missing; pretrain again or remove it")
        model = load_encoder(path)
        new = encoder_features(model, read_cache(ws), rows[missing], check_stop=check_stop,
                               batch_size=getattr(model, "rows_per_call", 256),
                               to_input=modality.model_input,
                               progress=(lambda d, t: progress(step=d, steps=t)) if progress else None)
        all_ids = np.concatenate([have_ids, item_ids[missing]])
        all_feats = new if have is None or len(have) == 0 else np.concatenate([have, new])
        _store_features(ws, artifact, all_ids, all_feats)
        if cached is not None:
            (ws.root / cached[0]["path"]).unlink(missing_ok=True)
        have_ids, have = all_ids, all_feats
    if np.array_equal(have_ids, item_ids):  # the usual case: no copy of a large matrix
        return Embedding(artifact, item_ids, have)
    index = {int(i): k for k, i in enumerate(have_ids)}
    return Embedding(artifact, item_ids, have[[index[int(i)] for i in item_ids]])


def ensure_starting_encoders(ws: Workspace, progress: Progress | None = None,
                             check_stop: Callable[[], None] | None = None, seed: int = 0,
                             only: list[str] | None = None) -> list[dict[str, Any]]:
    """Make the starting encoders this workspace lacks (`sslapp.features.starts`; of them, those named in
    `only`); returns the new artifacts. Features a start computed while it was fitted are cached."""
    have = {(a.get("meta") or {}).get("start") for a in encoders(ws)}
    made = []
    for start in wanted_starts(ws):
        if start in have or (only is not None and start not in only):
            continue
        if check_stop:
            check_stop()
        art, feats = make_start(ws, start, progress, seed)
        if feats is not None:
            _store_features(ws, art, current_items(ws)[0], feats)
        made.append(art)
    return made


def user_labels(ws: Workspace, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """(rows into `item_ids`, class index, classes) of the labels a person gave (not propagated ones),
    oldest first: `sslapp.features.choose` scores embeddings on the first labels of each class."""
    classes = list(ws.store.classes())
    index = {int(c["id"]): k for k, c in enumerate(classes)}
    row_of = {int(i): k for k, i in enumerate(item_ids)}
    given = sorted(ws.store.labels(sources=("user", "imported")), key=lambda r: (r["updated_at"], r["item_id"]))
    rows = [(row_of[int(r["item_id"])], index[int(r["class_id"])]) for r in given  # oldest first
            if int(r["item_id"]) in row_of and int(r["class_id"]) in index]
    idx = np.array([r for r, _ in rows], np.int64)
    return idx, np.array([c for _, c in rows], np.int64), classes


def best_embedding(ws: Workspace, progress: Progress | None = None,
                   check_stop: Callable[[], None] | None = None) -> Embedding:
    """The embedding every consumer uses: the pinned encoder if the user chose one, else the measured
    best of the candidates (starting encoders made first when missing; imported vectors that miss
    images are left out, with a note). Records `features.choice`."""
    from sslapp.features.choose import choose, first_per_class, measurable, prior_index, scoring_rows
    from sslapp.ingest.cache import read_cache

    item_ids, _ = current_items(ws)
    idx, labels, _ = user_labels(ws, item_ids)
    idx, labels = first_per_class(idx, labels)
    modality = workspace_modality(ws)
    order = modality.start_order(read_cache(ws))  # images sample a few cache rows
    if measurable(labels) or ws.store.get_setting(PINNED_SETTING) is not None:
        ensure_starting_encoders(ws, progress=progress, check_stop=check_stop)
    else:  # nothing to measure yet: only the start the prior trusts most (the others wait for labels)
        wanted = wanted_starts(ws)
        ensure_starting_encoders(ws, progress=progress, check_stop=check_stop,
                                 only=[next((s for s in order if s in wanted), "")])
    arts, emb_notes, left_out = [], [], set()
    for art in encoders(ws):
        why = imported.unusable_reason(ws, art, item_ids)
        if why:
            emb_notes.append(why)
            left_out.add(art["id"])
        else:
            arts.append(art)
    if not arts:
        raise ValueError("no encoder is available: pretrain one (Pretrain page or `sslapp pretrain`), or reinstall "
                         "sslapp so its ImageNet weights are there")
    pinned = ws.store.get_setting(PINNED_SETTING)
    if pinned is not None:
        chosen = [a for a in arts if a["id"] == pinned]
        if chosen:
            emb = features_for(ws, chosen[0], progress, check_stop)
            emb.notes = emb_notes + ["chosen by you"]
            _record(ws, [chosen[0]], 0, "chosen by you", [None], 0)
            return emb
        emb_notes.append(f"the encoder you chose (artifact {pinned}) {'is left out' if pinned in left_out else 'is gone'}"
                         "; choosing by measurement again")
    starts = [(a.get("meta") or {}).get("start") for a in arts]
    prior = prior_index(starts, order)
    names = [describe(a) for a in arts]
    chosen = None
    if measurable(labels):  # every candidate is scored, on the labelled items and a sample of the rest
        rows, local = scoring_rows(len(item_ids), idx)
        scored = [features_for(ws, a, progress, check_stop, only=item_ids[rows]) for a in arts]
        choice = choose([e.features for e in scored], local, labels, prior, names, modality.plural)
        if len(rows) == len(item_ids):  # scored on every item, in order: the chosen features are at hand
            chosen = scored[choice.index]
    else:  # nothing to measure yet: only the prior's features are needed (the others wait for labels)
        choice = choose([np.zeros((len(item_ids), 0), np.float32)] * len(arts), idx, labels, prior, names,
                        modality.plural)
    if chosen is None:
        chosen = features_for(ws, arts[choice.index], progress, check_stop)
    chosen.notes = emb_notes + [choice.reason]
    _record(ws, arts, choice.index, choice.reason, choice.scores, choice.n_scored)
    return chosen


def current_embedding(ws: Workspace, progress: Progress | None = None,
                      check_stop: Callable[[], None] | None = None) -> Embedding:
    """The embedding last chosen (`features.choice`), read from its cache without scoring the candidates
    again: what quick readers (more like this, near-duplicates, label review) use. Falls back to
    `best_embedding` when nothing was chosen yet or the chosen encoder is gone."""
    choice = ws.store.get_setting(CHOICE_SETTING) or {}
    pinned = ws.store.get_setting(PINNED_SETTING)
    wanted = pinned if pinned is not None else choice.get("encoder_artifact_id")
    arts = [a for a in encoders(ws) if a["id"] == wanted] if wanted is not None else []
    if not arts or imported.unusable_reason(ws, arts[0], current_items(ws)[0]):
        return best_embedding(ws, progress=progress, check_stop=check_stop)
    emb = features_for(ws, arts[0], progress, check_stop)
    emb.notes = [choice.get("reason", "")] if choice.get("encoder_artifact_id") == wanted else ["chosen by you"]
    return emb


def _record(ws: Workspace, arts: list[dict[str, Any]], index: int, reason: str, scores: list[float | None],
            n_scored: int) -> None:
    ws.store.set_setting(CHOICE_SETTING, {
        "encoder_artifact_id": int(arts[index]["id"]), "name": describe(arts[index]), "reason": reason,
        "n_scored": n_scored, "at": time.time(),
        "candidates": [{"encoder_artifact_id": int(a["id"]), "name": describe(a),
                        "score": None if s is None else round(float(s), 4)} for a, s in zip(arts, scores, strict=True)]})


def encoder_module(ws: Workspace, artifact: dict[str, Any]):
    """The module that computes `artifact`'s features from images (`load_encoder`); for imported vectors,
    which nothing computes, a `VectorsOnly` stand-in that a classifier head can be trained and saved
    with (`sslapp.features.imported.export_problem` keeps such a classifier out of exports)."""
    if is_imported(artifact):
        return VectorsOnly(artifact, ws.cache_size)
    from sslapp.models.encoder import load_encoder

    return load_encoder(ws.root / artifact["path"])


class VectorsOnly:
    """Stands in for the encoder of imported vectors: their `dim` and a config (backbone 'imported'), so
    `Classifier(VectorsOnly(...), classes)` trains and saves a head; it refuses images."""

    def __init__(self, artifact: dict[str, Any], input_size: int):
        from sslapp.models.encoder import EncoderConfig

        meta = artifact.get("meta") or {}
        self.dim = int(meta["dim"])
        self.config = EncoderConfig("imported", int(input_size), int(input_size), method="imported",
                                    extra={"start": "imported", "encoder_artifact_id": int(artifact["id"])})
        self.name = describe(artifact)

    def __call__(self, x):
        raise ValueError(f"{self.name} cannot be computed from images; train on an image encoder "
                         "(`sslapp embed WS --use auto`) for a model that takes images")
