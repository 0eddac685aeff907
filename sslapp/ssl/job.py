"""The `pretrain` worker job: a run record, resume from the run's last checkpoint, the result."""

from __future__ import annotations

from typing import Any

from sslapp.jobs.context import JobContext
from sslapp.ssl.checkpoint import prune_run_encoders


def run_pretrain_job(ctx: JobContext) -> dict[str, Any]:
    """Pretrain with `ctx.params` (see `PretrainConfig`); a resumed job continues its own run.

    The run is marked done, failed, cancelled or paused with the job, and its summary holds the
    result, so the Pretrain page lists past runs without reading job rows.
    """
    from sslapp.modalities import method_refusal, pretrain_refusal, workspace_modality
    from sslapp.ssl.train import PretrainConfig, PretrainError, pretrain

    ws = ctx.workspace
    modality = workspace_modality(ws)
    refusal = pretrain_refusal(modality)
    if refusal:  # before a run is recorded: nothing is stored
        raise PretrainError(refusal.replace(" WS", f" {ws.root}"))
    store = ws.store
    config = PretrainConfig.from_params({"method": modality.ssl_methods[0], **ctx.params})
    refusal = method_refusal(modality, config.method)
    if refusal:
        raise PretrainError(refusal)
    if modality.name == "text":  # what the run trains and from what, as the pages name it
        from sslapp.ssl.methods import method_class

        trains = method_class(config.method)
        config.backbone, config.init = trains.backbone, trains.init
    run = store.run_for_job(ctx.job_id) if ctx.resuming else None
    resume_from = None
    if run is not None:
        ck = store.latest_checkpoint(run_id=run["id"])
        if ck is not None and (ws.root / ck["path"]).exists():
            resume_from = ws.root / ck["path"]
            ctx.log.info("resuming run %s from %s", run["id"], ck["path"])
        else:
            ctx.log.info("run %s has no checkpoint yet; starting it over", run["id"])
    with ctx.run("pretrain", config.to_params(), run_id=run["id"] if run is not None else None) as record:
        if modality.name == "text":
            from sslapp.ssl.text.loop import pretrain_texts

            result = pretrain_texts(ws, config, ctx=ctx, run_id=record.id, resume_from=resume_from)
        else:
            result = pretrain(ws, config, ctx=ctx, run_id=record.id, resume_from=resume_from)
        record.summary = {k: v for k, v in result.items() if k != "messages"}
    verdict = _verdict(ctx, record.id)
    if verdict is not None:
        store.update_run(record.id, summary={"embedding": verdict})
        result["embedding"], result["embedding_verdict"] = verdict, verdict["text"]
    prune_run_encoders(ws, record.id)  # the choice may have left an earlier encoder of this run
    return result


def _verdict(ctx: JobContext, run_id: int) -> dict[str, Any] | None:
    """Which embedding the app uses now that the run is done, and why (`features.choice` keeps it for
    the pages): a pretraining run never replaces a better embedding the workspace already has
    (`sslapp.features.choose`). None when the comparison itself failed (the run still succeeded)."""
    from sslapp.features.service import best_embedding

    try:
        emb = best_embedding(ctx.workspace, check_stop=ctx.check_stop)
    except Exception as exc:  # the run itself succeeded; the comparison is a bonus
        ctx.log.warning("could not compare the new encoder with the others: %s", exc)
        return None
    reason = emb.notes[-1] if emb.notes else ""
    this_run = emb.artifact.get("run_id") == run_id
    pinned = reason == "chosen by you"
    if this_run:
        text = f"The app now uses this encoder ({emb.name}): {reason}."
    elif pinned:
        text = f"The app keeps using {emb.name}, not this encoder: it is the encoder you chose."
    else:
        text = f"The app keeps using {emb.name}, not this encoder: {reason}."
    ctx.log.info(text)
    return {"encoder_artifact_id": int(emb.artifact["id"]), "name": emb.name, "reason": reason,
            "this_run": this_run, "pinned": pinned, "text": text}
