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
from typing import Any

import numpy as np

from sslapp.finetune.api import PSEUDO_WEIGHT, _fit, resolve_propagation
from sslapp.finetune.evaluate import check_labels, cross_validate
from sslapp.finetune.propagate import knn_graph, pseudo_labels
from sslapp.jobs.context import JobContext

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


def run_finetune_job(ctx: JobContext) -> dict[str, Any]:
    import torch

    from sslapp.finetune.model import Classifier, save_classifier
    from sslapp.ingest.cache import read_cache
    from sslapp.ssl.encoder import load_encoder

    ws, store, params = ctx.workspace, ctx.workspace.store, ctx.params
    started = time.monotonic()
    seed = int(params.get("seed", 0))
    propagate = normalize_propagate(params.get("propagate", "auto"))
    if propagate not in (True, False, "auto", "spreading", "poisson", "self-training"):
        raise FinetuneError(f"propagate must be auto, on, off, poisson, spreading or self-training, not {propagate!r}")
    if params.get("mode", "auto") not in MODES:
        raise FinetuneError(f"mode must be one of {', '.join(MODES)}, not {params.get('mode')!r}")

    # -- the labels -----------------------------------------------------------------------
    label_rows = store.labels(sources=TRUSTED_SOURCES)
    all_classes = store.classes()
    used = [c for c in all_classes if any(r["class_id"] == c["id"] for r in label_rows)]
    names = [c["name"] for c in used]
    class_ids = [c["id"] for c in used]
    pos_of = {cid: k for k, cid in enumerate(class_ids)}
    if len(used) < 2:
        raise FinetuneError(f"Label images of at least 2 classes to train a classifier (now {len(used)} "
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

    mode, mode_reason = resolve_mode(params.get("mode", "auto"), min(counts.values()), torch.cuda.is_available())
    run_id = store.create_run("finetune", {**params, "mode": mode, "propagate": propagate}, job_id=ctx.job_id)
    try:
        images = read_cache(ws)
        ctx.progress(force=True, message=f"{mode} mode: {len(labels)} labels, {len(names)} classes")
        from sslapp.features.service import best_embedding

        embedding = best_embedding(ws, progress=lambda **v: ctx.progress(force=True, **v), check_stop=ctx.check_stop)
        encoder_art = embedding.artifact
        if not np.array_equal(embedding.item_ids, item_ids):
            raise FinetuneError("the images changed while training started; train again")
        features, features_source = embedding.features, embedding.name
        ctx.check_stop()
        ctx.progress(force=True, message="choosing how to use the unlabelled images")
        graph = knn_graph(features) if propagate is not False and len(features) > len(labels) else None
        method, prop_reason = resolve_propagation(propagate, features, labeled_idx, labels, len(names), seed, graph)
        ctx.log.info("mode %s (%s); propagation %s (%s)", mode, mode_reason, method, prop_reason)

        encoder = load_encoder(ws.root / encoder_art["path"])
        if mode == "linear":
            def fit_predict(tr, te):
                ctx.check_stop()
                probe, _ = _fit(features, labeled_idx[tr], labels[tr], len(names), method, seed, graph)
                return probe.predict_proba(features[labeled_idx[te]])

            ctx.progress(force=True, message="cross-validating on the labelled images")
            estimate = cross_validate(labels, fit_predict, len(names), class_names=names, seed=seed,
                                      on_fold=lambda i, k: ctx.progress(step=i, steps=k,
                                                                        message=f"cross-validation fold {i}/{k}"))
            probe, pseudo = _fit(features, labeled_idx, labels, len(names), method, seed, graph)
            model = Classifier(encoder, names, normalize=True)
            with torch.no_grad():
                model.head.weight.copy_(torch.from_numpy(probe.coef_).float())
                model.head.bias.copy_(torch.from_numpy(probe.intercept_).float())
            with torch.no_grad():  # the head on the stored features: what the exported model computes
                f = torch.nn.functional.normalize(torch.from_numpy(features).float(), dim=1)
                proba = torch.softmax(model.head(f), dim=1).numpy()
            history: dict[str, Any] = {}
        else:
            from sslapp.finetune.full import FullConfig, fine_tune, predict_images

            config = FullConfig(epochs=int(params.get("epochs", FullConfig.epochs)))
            if "min_steps_per_epoch" in params:
                config.min_steps_per_epoch = int(params["min_steps_per_epoch"])
            pseudo = pseudo_labels(method, features, labeled_idx, labels, len(names), seed=seed,
                                   graph=graph) if method else None

            def train_on(positions: np.ndarray, on_epoch=None):
                idx, y, w = labeled_idx[positions], labels[positions], np.ones(len(positions))
                if pseudo is not None and len(pseudo):
                    idx = np.concatenate([idx, pseudo.index])
                    y = np.concatenate([y, pseudo.labels])
                    w = np.concatenate([w, PSEUDO_WEIGHT * pseudo.confidence])
                return fine_tune(encoder, images, rows[idx], y, names, sample_weight=w, config=config, seed=seed,
                                 on_epoch=on_epoch, check_stop=ctx.check_stop)

            def fit_predict(tr, te):
                # a fold derives its pseudo-labels from its own training labels only, so the
                # held-out labels never leak into the model that is tested on them
                nonlocal pseudo
                saved = pseudo
                pseudo = pseudo_labels(method, features, labeled_idx[tr], labels[tr], len(names),
                                       seed=seed, graph=graph) if method else None
                try:
                    model_k, _ = train_on(tr)
                finally:
                    pseudo = saved
                return predict_images(model_k, images, rows[labeled_idx[te]])

            ctx.progress(force=True, message="cross-validating the fine-tune on the labelled images")
            estimate = cross_validate(labels, fit_predict, len(names), class_names=names, seed=seed,
                                      max_folds=FULL_CV_FOLDS, loo_up_to=0,
                                      on_fold=lambda i, k: ctx.progress(step=i, steps=k,
                                                                        message=f"cross-validation fold {i}/{k}"))

            def on_epoch(rec):
                ctx.progress(epoch=rec["epoch"], epochs=rec["epochs"], loss=rec["train_loss"],
                             message=f"fine-tuning epoch {rec['epoch']}/{rec['epochs']}")
                store.log_metrics({k: v for k, v in rec.items() if k in ("train_loss", "val_loss", "val_accuracy")},
                                  run_id=run_id, job_id=ctx.job_id, epoch=rec["epoch"])

            model, history = train_on(np.arange(len(labels)), on_epoch)
            ctx.progress(force=True, message=f"predicting {len(rows)} images")
            proba = predict_images(model, images, rows, check_stop=ctx.check_stop)

        # -- save: classifier, predictions, summary ---------------------------------------
        ctx.check_stop()
        rel = f"checkpoints/classifier-{run_id}.safetensors"
        est = estimate.to_dict()
        cv = {"mean": est["mean"], "std": est["std"], "low": est["low"], "high": est["high"],
              "n_labels": est["n_labels"], "n_tested": est["n_tested"], "folds": est["folds"],
              "scheme": est["scheme"], "text": est["text"]}
        save_classifier(model.cpu(), ws.root / rel, {"sslapp_mode": mode, "sslapp_run": str(run_id)})
        pred = proba.argmax(axis=1)
        conf = proba.max(axis=1)
        store.save_predictions(run_id, [(int(i), class_ids[int(c)], float(p))
                                        for i, c, p in zip(item_ids, pred, conf, strict=True)])
        predicted_counts = {names[c]: int(n) for c, n in enumerate(np.bincount(pred, minlength=len(names)))}
        meta = {"classes": names, "class_ids": class_ids, "mode": mode, "cv": cv, "label_counts": counts,
                "encoder_artifact_id": encoder_art["id"], "propagation": method, "normalize": "l2"}
        art_id = store.add_artifact("classifier", rel, meta, run_id=run_id)
        summary = {
            "mode": mode, "mode_reason": mode_reason, "classes": names, "class_ids": class_ids,
            "label_counts": counts, "estimate": est, "cv": cv, "warnings": warnings,
            "propagation": {"asked": propagate, "method": method, "reason": prop_reason,
                            "pseudo_labels": int(len(pseudo)) if pseudo is not None else 0},
            "features": features_source, "encoder_artifact_id": encoder_art["id"],
            "classifier": rel, "classifier_artifact_id": art_id, "predicted_counts": predicted_counts,
            "mean_confidence": float(conf.mean()) if len(conf) else None,
            "history": history, "seconds": round(time.monotonic() - started, 2),
        }
        metrics = {"cv_accuracy": est["mean"], "cv_std": est["std"]} if est["mean"] is not None else {}
        metrics.update({"n_labels": float(len(labels)), "mean_confidence": float(conf.mean())})
        store.log_metrics(metrics, run_id=run_id, job_id=ctx.job_id)
        store.update_run(run_id, status="done", summary=summary)
        ctx.progress(force=True, message=f"classifier ready: {est['text']}")
        ctx.log.info("classifier %s ready: %s", rel, est["text"])
        return {"run": run_id, "mode": mode, "classes": names, "classifier": rel, "classifier_artifact_id": art_id,
                "estimate": {"mean": est["mean"], "std": est["std"], "n_labels": est["n_labels"],
                             "low": est["low"], "high": est["high"], "text": est["text"]},
                "propagation": method, "warnings": warnings}
    except BaseException:
        store.update_run(run_id, status="failed")
        raise
