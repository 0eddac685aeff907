"""The "finetune" job: labels in, a classifier, honest estimates and predictions for every item out.

params: {"mode": "auto"|"linear"|"full", "propagate": "auto"|true|false|"poisson"|"spreading"|"self-training",
"epochs": int (full mode), "seed": int}.

`auto` picks the linear probe unless a GPU is present and every labelled class has at least
FULL_MIN_PER_CLASS labels: with fewer, fine-tuning a whole encoder overfits what a probe on good
embeddings already gets, and on a CPU it costs minutes (k+1 trainings with cross-validation)
where the probe costs seconds.

Propagation ("auto") is decided with the linear probe in both modes (cheap), then used as is.
Trains on labels a person gave (sources 'user' and 'imported'); 'propagated' labels are not
treated as truth. Classes without labels are left out of the classifier (and reported).
Writes `checkpoints/classifier-<run>.safetensors` (artifact "classifier"), predictions with
confidence for every item, and the run summary (estimate, confusion matrix, per-class figures).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from sslapp.estimators.api import (
    cross_validate_probe,
    fit_with_pseudo_labels,
    join_pseudo_labels,
    resolve_propagation,
)
from sslapp.estimators.evaluate import check_labels, cross_validate
from sslapp.estimators.propagate import PseudoLabels, knn_graph, pseudo_labels
from sslapp.jobs.context import JobContext, Run
from sslapp.modalities import workspace_modality

MODES = ("auto", "linear", "full")
FULL_MIN_PER_CLASS = 20
FULL_CV_FOLDS = 3
TRUSTED_SOURCES = ("user", "imported")


class FinetuneError(ValueError):
    """Input the job cannot train on, with what to do about it."""


def resolve_mode(mode: str, per_class_min: int, cuda: bool) -> tuple[str, str]:
    if mode not in MODES:
        raise FinetuneError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode != "auto":
        return mode, "as asked"
    if not cuda:
        return "linear", "no GPU: the linear probe trains in seconds"
    if per_class_min < FULL_MIN_PER_CLASS:
        return "linear", f"fewer than {FULL_MIN_PER_CLASS} labels in some class: the probe overfits less"
    return "full", f"GPU and at least {FULL_MIN_PER_CLASS} labels per class"


def normalize_propagate(value: Any) -> bool | str:
    if isinstance(value, bool) or value is None:
        return bool(value)
    text = str(value).lower()
    return {"on": True, "true": True, "off": False, "false": False, "none": False}.get(text, text)


@dataclass
class _Labels:
    """The trusted labels as arrays over the cached items (classes 0..C-1 are the labelled ones)."""

    names: list[str]
    class_ids: list[int]
    item_ids: np.ndarray  # every item, in cache order
    rows: np.ndarray  # cache row of each item
    labeled_idx: np.ndarray  # positions in item_ids of the labelled items
    labels: np.ndarray  # class of each labelled item
    counts: dict[str, int]
    warnings: list[str]
    plural: str  # what the items are, in messages ("images", "texts")


@dataclass
class _Plan:
    """How this job trains: mode and propagation, and the embedding both are decided on."""

    mode: str
    mode_reason: str
    propagate: bool | str
    seed: int
    features: Any = None
    features_source: str = ""
    encoder_art: Any = None
    graph: Any = None
    method: str | None = None
    prop_reason: str = ""


@dataclass
class _Fitted:
    """What either mode hands to `_save`: the classifier, its probabilities for every item, the estimate."""

    model: Any
    proba: np.ndarray
    estimate: Any
    pseudo: PseudoLabels | None
    history: dict[str, Any]


def _check_params(params: dict[str, Any]) -> tuple[int, bool | str]:
    """(seed, propagate), refusing bad values before anything is read or recorded."""
    propagate = normalize_propagate(params.get("propagate", "auto"))
    if propagate not in (True, False, "auto", "spreading", "poisson", "self-training"):
        raise FinetuneError(f"propagate must be auto, on, off, poisson, spreading or self-training, not {propagate!r}")
    if params.get("mode", "auto") not in MODES:
        raise FinetuneError(f"mode must be one of {', '.join(MODES)}, not {params.get('mode')!r}")
    return int(params.get("seed", 0)), propagate


def _read_labels(store: Any, plural: str) -> _Labels:
    """The labels a person gave, on items still in the cache; at least two classes of them."""
    label_rows = store.labels(sources=TRUSTED_SOURCES)
    all_classes = store.classes()
    used = [c for c in all_classes if any(r["class_id"] == c["id"] for r in label_rows)]
    names = [c["name"] for c in used]
    class_ids = [c["id"] for c in used]
    pos_of = {cid: k for k, cid in enumerate(class_ids)}
    if len(used) < 2:
        raise FinetuneError(f"Label {plural} of at least 2 classes to train a classifier (now {len(used)} "
                            f"class{'es' if len(used) != 1 else ''} with labels).")
    pairs = store.item_ids_and_cache_index()
    item_ids = np.array([p[0] for p in pairs], np.int64)
    rows = np.array([p[1] for p in pairs], np.int64)
    row_of = {int(i): k for k, i in enumerate(item_ids)}
    label_rows = [r for r in label_rows if int(r["item_id"]) in row_of]
    labeled_idx = np.array([row_of[int(r["item_id"])] for r in label_rows], np.int64)
    labels = np.array([pos_of[r["class_id"]] for r in label_rows], np.int64)
    check = check_labels(labels, len(names), names)
    counts = {names[c]: n for c, n in check.counts.items()}
    empty = [c["name"] for c in all_classes if c["id"] not in pos_of]
    warnings = list(check.messages) + ([f"No labels yet for {', '.join(repr(n) for n in empty)}: "
                                        "left out of the classifier."] if empty else [])
    return _Labels(names, class_ids, item_ids, rows, labeled_idx, labels, counts, warnings, plural)


def _embed_and_propagate(ctx: JobContext, lab: _Labels, plan: _Plan) -> None:
    """Fill `plan` with the embedding the app uses, its kNN graph and the propagation method."""
    from sslapp.features.service import best_embedding

    plural = lab.plural
    embedding = best_embedding(ctx.workspace, progress=lambda **v: ctx.progress(force=True, **v),
                               check_stop=ctx.check_stop)
    if not np.array_equal(embedding.item_ids, lab.item_ids):
        raise FinetuneError(f"the {plural} changed while training started; train again")
    plan.encoder_art, plan.features, plan.features_source = embedding.artifact, embedding.features, embedding.name
    ctx.check_stop()
    ctx.progress(force=True, message=f"choosing how to use the unlabelled {plural}")
    features = plan.features
    plan.graph = knn_graph(features) if plan.propagate is not False and len(features) > len(lab.labels) else None
    plan.method, plan.prop_reason = resolve_propagation(plan.propagate, features, lab.labeled_idx, lab.labels,
                                                        len(lab.names), plan.seed, plan.graph)
    ctx.log.info("mode %s (%s); propagation %s (%s)", plan.mode, plan.mode_reason, plan.method, plan.prop_reason)


def _fold_progress(ctx: JobContext):
    return lambda i, k: ctx.progress(step=i, steps=k, message=f"cross-validation fold {i}/{k}")


def _fit_linear(ctx: JobContext, lab: _Labels, plan: _Plan, encoder: Any) -> _Fitted:
    """The probe put on the encoder as the classifier's head, then cross-validated."""
    import torch

    from sslapp.finetune.model import Classifier

    features, n = plan.features, len(lab.names)
    probe, pseudo = fit_with_pseudo_labels(features, lab.labeled_idx, lab.labels, n, plan.method, plan.seed,
                                           plan.graph)
    model = Classifier(encoder, lab.names, normalize=True)
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(probe.coef_).float())
        model.head.bias.copy_(torch.from_numpy(probe.intercept_).float())
    with torch.no_grad():  # the head on the stored features: what the exported model computes
        proba = model.on_features(torch.from_numpy(features).float()).numpy()
    # the classifier's confidence on every unlabelled item: the estimate weighs the held-out labels to it
    unlabelled = np.ones(len(features), bool)
    unlabelled[lab.labeled_idx] = False
    ctx.progress(force=True, message=f"cross-validating on the labelled {lab.plural}")
    estimate = cross_validate_probe(features, lab.labeled_idx, lab.labels, n, plan.method, plan.seed, plan.graph,
                                    class_names=lab.names, on_fold=_fold_progress(ctx), check_stop=ctx.check_stop,
                                    pool_confidence=proba[unlabelled].max(axis=1))
    return _Fitted(model, proba, estimate, pseudo, {})


def _fit_full(ctx: JobContext, lab: _Labels, plan: _Plan, encoder: Any, images: np.ndarray, run_id: int) -> _Fitted:
    """The whole encoder fine-tuned, cross-validated with fewer folds (each is a training)."""
    from sslapp.finetune.full import FullConfig, fine_tune, predict_images

    params, n = ctx.params, len(lab.names)
    config = FullConfig(epochs=int(params.get("epochs", FullConfig.epochs)))
    if "min_steps_per_epoch" in params:
        config.min_steps_per_epoch = int(params["min_steps_per_epoch"])

    def pseudo_for(positions: np.ndarray) -> PseudoLabels | None:
        return pseudo_labels(plan.method, plan.features, lab.labeled_idx[positions], lab.labels[positions], n,
                             seed=plan.seed, graph=plan.graph) if plan.method else None

    def train_on(positions: np.ndarray, pseudo: PseudoLabels | None, on_epoch=None):
        idx, y, w = join_pseudo_labels(lab.labeled_idx[positions], lab.labels[positions], pseudo)
        return fine_tune(encoder, images, lab.rows[idx], y, lab.names, sample_weight=w, config=config,
                         seed=plan.seed, on_epoch=on_epoch, check_stop=ctx.check_stop)

    def fit_predict(tr, te):
        # a fold derives its pseudo-labels from its own training labels only, so the
        # held-out labels never leak into the model that is tested on them
        model_k, _ = train_on(tr, pseudo_for(tr))
        return predict_images(model_k, images, lab.rows[lab.labeled_idx[te]])

    def on_epoch(rec):
        ctx.progress(epoch=rec["epoch"], epochs=rec["epochs"], loss=rec["train_loss"],
                     message=f"fine-tuning epoch {rec['epoch']}/{rec['epochs']}")
        ctx.workspace.store.log_metrics({k: v for k, v in rec.items() if k in ("train_loss", "val_loss", "val_accuracy")},
                                        run_id=run_id, job_id=ctx.job_id, epoch=rec["epoch"])

    everything = np.arange(len(lab.labels))
    pseudo = pseudo_for(everything)
    ctx.progress(force=True, message="cross-validating the fine-tune on the labelled images")
    estimate = cross_validate(lab.labels, fit_predict, n, class_names=lab.names, seed=plan.seed,
                              max_folds=FULL_CV_FOLDS, loo_up_to=0, on_fold=_fold_progress(ctx))
    model, history = train_on(everything, pseudo, on_epoch)
    ctx.progress(force=True, message=f"predicting {len(lab.rows)} images")
    proba = predict_images(model, images, lab.rows, check_stop=ctx.check_stop)
    return _Fitted(model, proba, estimate, pseudo, history)


def _save(ctx: JobContext, run: Run, lab: _Labels, plan: _Plan, fit: _Fitted, started: float) -> dict[str, Any]:
    """Classifier file and artifact, predictions, metrics and the run summary; returns the job result."""
    from sslapp.finetune.model import save_classifier

    ctx.check_stop()
    ws, store, names, mode = ctx.workspace, ctx.workspace.store, lab.names, plan.mode
    rel = f"checkpoints/classifier-{run.id}.safetensors"
    est = fit.estimate.to_dict()
    cv = {k: est[k] for k in ("mean", "std", "low", "high", "n_labels", "n_tested", "folds", "scheme", "text",
                              "measure", "pooled", "pooled_low", "pooled_high", "imbalance", "unbalanced")}
    save_classifier(fit.model.cpu(), ws.root / rel, {"sslapp_mode": mode, "sslapp_run": str(run.id)})
    pred, conf = fit.proba.argmax(axis=1), fit.proba.max(axis=1)
    store.save_predictions(run.id, [(int(i), lab.class_ids[int(c)], float(p))
                                    for i, c, p in zip(lab.item_ids, pred, conf, strict=True)])
    predicted_counts = {names[c]: int(n) for c, n in enumerate(np.bincount(pred, minlength=len(names)))}
    meta = {"classes": names, "class_ids": lab.class_ids, "mode": mode, "cv": cv, "label_counts": lab.counts,
            "encoder_artifact_id": plan.encoder_art["id"], "propagation": plan.method, "normalize": "l2"}
    art_id = store.add_artifact("classifier", rel, meta, run_id=run.id)
    run.summary = {
        "mode": mode, "mode_reason": plan.mode_reason, "classes": names, "class_ids": lab.class_ids,
        "label_counts": lab.counts, "estimate": est, "cv": cv, "warnings": lab.warnings,
        "propagation": {"asked": plan.propagate, "method": plan.method, "reason": plan.prop_reason,
                        "pseudo_labels": int(len(fit.pseudo)) if fit.pseudo is not None else 0},
        "features": plan.features_source, "encoder_artifact_id": plan.encoder_art["id"],
        "classifier": rel, "classifier_artifact_id": art_id, "predicted_counts": predicted_counts,
        "mean_confidence": float(conf.mean()) if len(conf) else None,
        "history": fit.history, "seconds": round(time.monotonic() - started, 2),
    }
    metrics = {"cv_accuracy": est["mean"], "cv_std": est["std"]} if est["mean"] is not None else {}
    metrics.update({"n_labels": float(len(lab.labels)), "mean_confidence": float(conf.mean())})
    store.log_metrics(metrics, run_id=run.id, job_id=ctx.job_id)
    return {"run": run.id, "mode": mode, "classes": names, "classifier": rel, "classifier_artifact_id": art_id,
            "estimate": {k: est[k] for k in ("mean", "std", "n_labels", "low", "high", "text", "measure", "pooled",
                                             "imbalance", "unbalanced")},
            "propagation": plan.method, "warnings": lab.warnings}


def _resolve_mode_for(modality: Any, asked: str, per_class_min: int, cuda: bool) -> tuple[str, str]:
    """`resolve_mode`, where a kind sslapp does not fine-tune whole (texts) trains only the probe on its vectors."""
    if modality.full_finetune or asked not in ("auto", "full"):
        return resolve_mode(asked, per_class_min, cuda)
    if asked == "full":
        raise FinetuneError(f"full fine-tuning is not built for {modality.plural} yet: their encoders "
                            f"({', '.join(modality.starting_encoders)}) are used frozen; use --mode linear (a "
                            "probe on their vectors, with the unlabelled items through propagation)")
    return "linear", f"{modality.plural}: a probe on the frozen encoder's vectors (full fine-tuning is not built)"


def _encoder_for(ws: Any, modality: Any, plan: _Plan) -> Any:
    """The module the classifier wraps: the encoder itself, or, for a kind sslapp does not fine-tune whole, a
    stand-in that keeps the file to the head (the vectors come from the features service; the export
    puts the head back on the encoder artifact it names)."""
    from sslapp.features.read import is_imported
    from sslapp.features.service import encoder_module
    from sslapp.finetune.model import FeaturesOnly

    if modality.full_finetune or is_imported(plan.encoder_art):
        return encoder_module(ws, plan.encoder_art)
    start = str((plan.encoder_art.get("meta") or {}).get("start") or plan.features_source)
    return FeaturesOnly(start, plan.features.shape[1], ws.cache_size, plan.encoder_art["id"])


def run_finetune_job(ctx: JobContext) -> dict[str, Any]:
    """Labels in, mode and propagation chosen, the linear or full fit, everything saved as one run."""
    import torch

    from sslapp.features.read import is_imported
    from sslapp.ingest.cache import read_cache

    ws, params = ctx.workspace, ctx.params
    started = time.monotonic()
    seed, propagate = _check_params(params)
    modality = workspace_modality(ws)
    lab = _read_labels(ws.store, modality.plural)
    mode, mode_reason = _resolve_mode_for(modality, params.get("mode", "auto"), min(lab.counts.values()),
                                          torch.cuda.is_available())
    plan = _Plan(mode, mode_reason, propagate, seed)
    with ctx.run("finetune", {**params, "mode": mode, "propagate": propagate}) as run:
        images = read_cache(ws)
        ctx.progress(force=True, message=f"{mode} mode: {len(lab.labels)} labels, {len(lab.names)} classes")
        _embed_and_propagate(ctx, lab, plan)
        if mode == "full" and is_imported(plan.encoder_art):  # no image encoder to fine-tune
            if params.get("mode", "auto") != "auto":
                raise FinetuneError("full fine-tuning trains an image encoder, and imported vectors have none; "
                                    "use --mode linear, or choose an image embedding (`sslapp embed WS --use auto`)")
            mode = plan.mode = "linear"
            plan.mode_reason = "imported vectors: only a probe on them can be trained"
        encoder = _encoder_for(ws, modality, plan)
        if mode == "linear":
            fit = _fit_linear(ctx, lab, plan, encoder)
        else:
            fit = _fit_full(ctx, lab, plan, encoder, images, run.id)
        result = _save(ctx, run, lab, plan, fit, started)
    ctx.progress(force=True, message=f"classifier ready: {result['estimate']['text']}")
    ctx.log.info("classifier %s ready: %s", result["classifier"], result["estimate"]["text"])
    return result
