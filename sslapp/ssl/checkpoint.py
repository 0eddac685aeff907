"""The files a pretraining run leaves: checkpoints (written atomically, read without unpickling) and its encoder.

Checkpoints are written to `<name>.tmp`, fsynced and renamed, so a crash or a full disk never
leaves half a checkpoint; they hold only state dicts and plain numbers, so they load with
``torch.load(weights_only=True)``. A run keeps its newest checkpoint only (KEEP_CHECKPOINTS, the
config's `keep_checkpoints`): it is complete before the older one goes, and resuming needs no more.
The encoder is saved as safetensors at every epoch end, and the run keeps the best of them by the
epoch's health check (`sslapp.features.read.probe_rank`) plus any the user pinned, a classifier was
trained on or the app uses now (`prune_run_encoders`); a 3-minute CPU run left 234 MB before (two
88 MB checkpoints and an encoder), about half that now.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import torch

from sslapp.features.read import CHOICE_SETTING, PINNED_SETTING, run_encoder
from sslapp.ssl.plan import PretrainError
from sslapp.workspace import Workspace

CHECKPOINT_VERSION = 1
KEEP_CHECKPOINTS = 1


def save_checkpoint_atomic(state: dict[str, Any], path: Path) -> None:
    """Write to `<path>.tmp` then rename, so a crash or a full disk never leaves half a checkpoint.

    The checkpoint is serialised in memory first so a failing write surfaces as a plain OSError
    (ENOSPC, EFBIG) instead of an error from inside torch's zip writer.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        full = exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
        what = "the disk is full" if full else f"the file could not be written ({exc.strerror or exc})"
        raise PretrainError(f"could not write checkpoint {path.name}: {what}. The previous checkpoint is "
                            "kept; free some space (or pick another workspace disk) and resume the job.") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint as plain state dicts and numbers (weights_only: nothing is unpickled)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise PretrainError(f"checkpoint {path} is missing; start a new pretraining run.") from exc
    except Exception as exc:  # truncated or foreign file
        raise PretrainError(f"checkpoint {path} cannot be read ({exc.__class__.__name__}: {exc}); "
                            "start a new pretraining run.") from exc


def publish_checkpoint(ws: Workspace, run_id: int | None, state: dict[str, Any], tag: str,
                       epoch: int, step: int, keep: int = KEEP_CHECKPOINTS) -> str:
    """Write `state` as the run's newest checkpoint, record it and prune all but the newest `keep`;
    its workspace path.

    Only rank 0 calls this (one writer), so any `*.pt.tmp` left in the run's folder is a half-write
    of a killed earlier attempt and is removed.
    """
    run_dir = ws.checkpoints_dir / f"run-{run_id}"
    path = run_dir / f"{tag}-e{epoch:04d}-s{step:07d}.pt"
    save_checkpoint_atomic(state, path)
    for stale in run_dir.glob("*.pt.tmp"):
        stale.unlink(missing_ok=True)
    rel = str(path.relative_to(ws.root))
    if run_id is not None:
        ws.store.add_checkpoint(run_id, epoch, step, rel)
        for old in ws.store.checkpoints(run_id)[:-max(1, int(keep))]:
            if old["path"] != rel:
                (ws.root / old["path"]).unlink(missing_ok=True)
            ws.store.delete_checkpoint(old["id"])
    return rel


def publish_encoder(ws: Workspace, run_id: int | None, method: str, plan: dict[str, Any],
                    encoder: torch.nn.Module, epoch: int, step: int, probe: dict[str, Any] | None) -> str:
    """Save the backbone as one of the run's encoders, with the health check it just passed (`probe`),
    record it and prune the run's others (`prune_run_encoders`); the workspace path of the encoder the
    run keeps as its best."""
    from sslapp.models.encoder import Encoder, EncoderConfig, save_encoder

    enc = Encoder(EncoderConfig(backbone=plan["backbone"], input_size=ws.cache_size,
                                train_size=plan["train_size"], method=method,
                                extra={"epoch": epoch, "run_id": run_id, "init": plan.get("init", "scratch")}))
    source = getattr(encoder, "_orig_mod", encoder)  # unwrap torch.compile
    enc.backbone.load_state_dict({k: v.detach().float().cpu() for k, v in source.state_dict().items()})
    run_dir = ws.checkpoints_dir / f"run-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"encoder-e{epoch:04d}-s{step:07d}.safetensors"  # a stop mid-epoch has its own name
    try:
        save_encoder(enc, path)
    except OSError as exc:
        raise PretrainError(f"could not write the encoder {path.name}: {exc.strerror or exc}. "
                            "The previous encoder and checkpoint are kept; free some space and resume.") from exc
    return record_encoder(ws, run_id, path, {"method": method, **plan, "epoch": epoch, "step": step, "probe": probe})


def record_encoder(ws: Workspace, run_id: int | None, path: Path, meta: dict[str, Any]) -> str:
    """Record a run's new encoder file with its `meta` and prune the run's others (`prune_run_encoders`); the
    workspace path of the encoder the run keeps as its best (`path` itself outside a run)."""
    rel = str(path.relative_to(ws.root))
    if run_id is None:
        return rel
    ws.store.add_artifact("encoder", rel, meta, run_id)
    prune_run_encoders(ws, run_id)
    kept = run_encoder(ws, run_id)
    return kept["path"] if kept is not None else rel


def protected_encoders(ws: Workspace) -> set[int]:
    """Encoder artifact ids that must stay: the one the user pinned, the one the app uses now
    (`features.choice`) and every one a classifier was trained on (export rebuilds from it)."""
    in_use = (ws.store.get_setting(CHOICE_SETTING) or {}).get("encoder_artifact_id")
    keep = {ws.store.get_setting(PINNED_SETTING), in_use}
    keep |= {(a.get("meta") or {}).get("encoder_artifact_id") for a in ws.store.artifacts("classifier", limit=100_000)}
    return {int(i) for i in keep if i is not None}


def prune_run_encoders(ws: Workspace, run_id: int) -> list[str]:
    """Delete a run's encoders but its best (`run_encoder`) and the protected ones: the row first, then
    the file and the features cached for it, so no row ever names a missing file; then any encoder file
    of the run that no row names (a kill between the two). Returns the removed workspace paths."""
    best = run_encoder(ws, run_id)
    keep = protected_encoders(ws) | ({int(best["id"])} if best is not None else set())
    removed = []
    for art in ws.store.run_artifacts(run_id, "encoder"):
        if int(art["id"]) in keep:
            continue
        caches = [e for e in ws.store.artifacts("embeddings", limit=100_000)
                  if (e.get("meta") or {}).get("encoder_artifact_id") == art["id"]]
        ws.store.delete_artifact(int(art["id"]))
        for cache in caches:
            ws.store.delete_artifact(int(cache["id"]))
            (ws.root / cache["path"]).unlink(missing_ok=True)
        (ws.root / art["path"]).unlink(missing_ok=True)
        removed.append(art["path"])
    named = {a["path"] for a in ws.store.run_artifacts(run_id, "encoder")}
    for orphan in (ws.checkpoints_dir / f"run-{run_id}").glob("encoder-*.safetensors"):
        rel = str(orphan.relative_to(ws.root))
        if rel not in named:
            orphan.unlink(missing_ok=True)
            removed.append(rel)
    return removed
