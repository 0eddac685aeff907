"""The public pretraining entry point: check the config, plan the run, then hand it to the loop.

A run is split by job: `plan` (config, checks, auto choices, lr schedule), `data` (the uint8
cache rows and each epoch's order), `build` (method, backbone, DDP), `loop` (the training loop,
resume and stops), `checkpoint` (checkpoint and encoder files) and `report` (progress and
metrics). The names other code imports from here are re-exported below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sslapp.modalities import workspace_modality
from sslapp.ssl import ddp
from sslapp.ssl.checkpoint import (
    CHECKPOINT_VERSION,
    KEEP_CHECKPOINTS,
    load_checkpoint,
    save_checkpoint_atomic,
)
from sslapp.ssl.data import RESIDENT_RAM_BYTES, load_images
from sslapp.ssl.loop import UNKNOWN_EPOCHS, Loop
from sslapp.ssl.methods import method_class
from sslapp.ssl.plan import (
    MIN_BATCH,
    VIT_METHODS,
    PretrainConfig,
    PretrainError,
    auto_plan,
    check_config,
    lr_at,
    plan_batch,
    resolve_device,
    resolve_init,
)
from sslapp.ssl.report import Reporter
from sslapp.workspace import Workspace

__all__ = ["CHECKPOINT_VERSION", "KEEP_CHECKPOINTS", "MIN_BATCH", "RESIDENT_RAM_BYTES", "UNKNOWN_EPOCHS",
           "VIT_METHODS", "PretrainConfig", "PretrainError", "auto_plan", "load_checkpoint", "lr_at",
           "pretrain", "resolve_device", "resolve_init", "save_checkpoint_atomic"]


def pretrain(ws: Workspace, config: PretrainConfig | dict[str, Any], ctx=None, run_id: int | None = None,
             resume_from: str | Path | None = None) -> dict[str, Any]:
    """Pretrain an encoder on every image of `ws`; returns a JSON-able summary.

    `ctx` is a JobContext (progress, stop requests, log) or None. `run_id` is the run to record
    under (created here when None and this is rank 0). `resume_from` is a checkpoint path to
    continue from. Under torchrun every rank calls this; only rank 0 writes.
    """
    if isinstance(config, dict):
        config = PretrainConfig.from_params(config)
    dist_info = ddp.current()
    if dist_info.enabled:  # every rank trains rank 0's plan from rank 0's checkpoint
        params, resume_from = ddp.broadcast_object(
            (config.to_params(), str(resume_from) if resume_from else None))
        config = PretrainConfig.from_params(params)
    main = dist_info.is_main
    check_config(config)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    device = resolve_device(config.device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)

    checkpoint = load_checkpoint(resume_from) if resume_from else None
    if checkpoint is not None:  # a resumed run keeps the plan it started with
        saved = checkpoint["config"]
        config = PretrainConfig.from_params({**saved, "device": config.device,
                                             "compile": config.compile, "threads": config.threads})

    images, rows, item_ids = load_images(ws)
    n = len(rows)
    items = workspace_modality(ws).plural
    if config.backbone == "frames" and workspace_modality(ws).name != "audio":
        raise PretrainError(f"the frames backbone reads sounds' log-mel pictures, not {items}; pick another "
                            "backbone (--backbone auto).")
    if n == 0:
        raise PretrainError(f"the workspace has no {items}; add some on the Data page or with `sslapp ingest`.")
    refusal = method_class(config.method).data_refusal(images)  # e.g. colourisation of grey images
    if refusal:
        raise PretrainError(refusal)
    plan = auto_plan(config.method, config.backbone, ws.cache_size, n, device, config.train_size,
                     config.batch_size, config.epochs, config.minutes, config.init)
    if checkpoint is not None:
        plan = checkpoint["plan"]
    n_per_rank = n // dist_info.world_size
    batch = plan_batch(int(plan["batch_size"]), n_per_rank)
    if batch == 0:
        raise PretrainError(f"{n} {items} are too few to pretrain: one batch needs at least {MIN_BATCH} {items} "
                            f"per process ({MIN_BATCH * dist_info.world_size} here); add more {items}.")

    if main and run_id is None:
        run_id = ws.store.create_run("pretrain", {**config.to_params(), **plan},
                                     ctx.job_id if ctx is not None else None)
    rep = Reporter(ws, ctx, run_id, main)
    if batch != plan["batch_size"]:
        rep.say(f"only {n_per_rank} {items} per process: batch size shrunk from {plan['batch_size']} to {batch}")
    plan["batch_size"] = batch

    loop = Loop(ws, config, plan, device, images, rows, item_ids, rep, dist_info, checkpoint)
    if resume_from is not None:
        resumed = Path(resume_from).resolve()
        loop.checkpoint_path = (str(resumed.relative_to(ws.root)) if resumed.is_relative_to(ws.root)
                                else str(resumed))
    return loop.run()
