"""The training loop of a text pretraining run: the image loop's promises on a `TextSSLMethod`.

Epochs of shuffled texts in steps of the method's batch; a minutes budget fixes the epoch count after the
first epoch (capped where more passes buy nothing, `max_epochs`); progress with the same fields as an
image run (`images_per_s` counts texts); a pause or cancel writes a checkpoint first, and a resumed run
continues from it; each epoch ends with the health check (feature spread, nearest-neighbour accuracy on
the user's labels) and the encoder file, and the run keeps its best encoder (`prune_run_encoders`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslapp.ssl.checkpoint import publish_checkpoint, record_encoder
from sslapp.ssl.plan import PretrainConfig, PretrainError
from sslapp.ssl.report import Reporter
from sslapp.ssl.text.base import TextSSLMethod
from sslapp.workspace import Workspace

CHECKPOINT_VERSION = 1
DEFAULT_MINUTES = 10.0  # as for images on a CPU: useful vectors in minutes


def load_texts(ws: Workspace) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(item ids, cache rows, texts) of every current item."""
    from sslapp.features.read import current_items
    from sslapp.ingest.cache import read_cache
    from sslapp.modalities.text.arrays import texts_of

    item_ids, rows = current_items(ws)
    cache = read_cache(ws)
    texts: list[str] = []
    for start in range(0, len(rows), 4096):
        part = rows[start:start + 4096]
        order = np.argsort(part)
        got = texts_of(np.asarray(cache[part[order]]))
        texts += [got[k] for k in np.argsort(order)]
    return item_ids, rows, texts


def pretrain_texts(ws: Workspace, config: PretrainConfig, ctx=None, run_id: int | None = None,
                   resume_from: str | Path | None = None) -> dict[str, Any]:
    """Train `config.method` (a text method of `sslapp.ssl.methods.METHODS`) on the workspace's texts."""
    from sslapp.ssl.checkpoint import load_checkpoint
    from sslapp.ssl.methods import METHODS

    checkpoint = load_checkpoint(resume_from) if resume_from else None
    if checkpoint is not None:
        if checkpoint.get("version") != CHECKPOINT_VERSION or checkpoint.get("kind") != "text":
            raise PretrainError(f"{resume_from} is not a text pretraining checkpoint of this sslapp; start a new run.")
        # the run's own plan and seed; this attempt's threads and step limit
        config = PretrainConfig.from_params({**checkpoint["config"], "threads": config.threads,
                                             "max_steps": config.max_steps})
    if config.threads:
        torch.set_num_threads(int(config.threads))
    item_ids, rows, texts = load_texts(ws)
    if len(texts) < 2:
        raise PretrainError("pretraining needs at least 2 texts; add more on the Data page or with `sslapp ingest`.")
    try:
        method: TextSSLMethod = METHODS.load(config.method)(texts, seed=config.seed, threads=config.threads,
                                                            **config.hparams)
    except (ValueError, TypeError) as exc:  # includes ModelFilesError
        raise PretrainError(f"{config.method}: {exc}") from exc
    if config.batch_size:
        method.hparams["batch_size"] = int(config.batch_size)
    if config.lr is not None and "lr" in method.hparams:
        method.hparams["lr"] = float(config.lr)
    if checkpoint is not None:
        plan = dict(checkpoint["plan"])
    else:
        minutes = config.minutes if config.minutes or config.epochs else DEFAULT_MINUTES
        plan = {"backbone": method.backbone, "init": method.init, "batch_size": min(method.batch_size, len(texts)),
                "epochs": config.epochs, "minutes": minutes, "train_size": None, "modality": "text"}
    if run_id is None:  # run outside a job (the benchmark): recorded here, as image runs are
        run_id = ws.store.create_run("pretrain", {**config.to_params(), **plan}, ctx.job_id if ctx is not None else None)
    rep = Reporter(ws, ctx, run_id, True)
    loop = TextLoop(ws, config, plan, method, texts, rows, rep)
    if checkpoint is not None:
        loop.restore(checkpoint)
    return loop.run()


class TextLoop:
    """One attempt at a run: position, clocks and the files it writes (see the module docstring)."""

    def __init__(self, ws: Workspace, config: PretrainConfig, plan: dict[str, Any], method: TextSSLMethod,
                 texts: list[str], rows: np.ndarray, rep: Reporter):
        self.ws, self.config, self.plan, self.method, self.texts, self.rep = ws, config, plan, method, texts, rep
        self.n, self.batch = len(texts), int(plan["batch_size"])
        self.steps_per_epoch = max(1, self.n // self.batch)
        cap = method.max_epochs()
        self.cap = int(cap) if cap else None
        self.total_epochs = int(plan["epochs"]) if plan.get("epochs") else None  # asked for: no cap
        self.epochs_fixed = self.total_epochs is not None
        self.epoch = self.offset = self.step_count = 0
        self.elapsed_s = self.train_s = 0.0
        self.texts_seen = 0
        self.checkpoint_path: str | None = None
        self.encoder_path: str | None = None
        self.last_probe: dict[str, Any] | None = None
        self.probe_metrics: dict[str, float] = {}  # the last check's figures, logged with the epoch's loss
        self.last_epoch_loss: float | None = None
        self.probe_rows, self.probe_labels = self._probe_sample(rows) if config.probe else (None, None)

    def _probe_sample(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from sslapp.ssl.probe import choose_probe_sample

        position = {int(r): i for i, r in enumerate(rows.tolist())}
        labelled = {position[int(r["cache_index"])]: int(r["class_id"]) for r in self.ws.store.labels()
                    if int(r["cache_index"]) in position}
        sample = choose_probe_sample(np.arange(self.n), labelled, size=min(self.config.probe_size, self.n),
                                     seed=self.config.seed)
        return sample.rows, sample.labels

    # -- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"version": CHECKPOINT_VERSION, "kind": "text", "config": self.config.to_params(), "plan": self.plan,
                "epoch": self.epoch, "offset": self.offset, "step": self.step_count,
                "total_epochs": self.total_epochs, "epochs_fixed": self.epochs_fixed, "elapsed_s": self.elapsed_s,
                "train_s": self.train_s, "texts_seen": self.texts_seen, "method": self.method.state_dict(),
                "rng_torch": torch.get_rng_state()}

    def restore(self, ck: dict[str, Any]) -> None:
        try:
            self.method.load_state_dict(ck["method"])
        except ValueError as exc:
            raise PretrainError(str(exc)) from exc
        self.epoch, self.offset, self.step_count = int(ck["epoch"]), int(ck["offset"]), int(ck["step"])
        self.total_epochs, self.epochs_fixed = ck.get("total_epochs"), bool(ck.get("epochs_fixed"))
        self.elapsed_s, self.train_s, self.texts_seen = float(ck["elapsed_s"]), float(ck["train_s"]), int(ck["texts_seen"])
        torch.set_rng_state(ck["rng_torch"])
        self.rep.say(f"resumed from epoch {self.epoch}, step {self.step_count} (text {self.offset} of the epoch)")

    def _write_checkpoint(self, tag: str) -> None:
        self.elapsed_s = time.monotonic() - self.run_start
        self.checkpoint_path = publish_checkpoint(self.ws, self.rep.run_id, self.state(), tag, self.epoch,
                                                  self.step_count, self.config.keep_checkpoints)
        self.last_ckpt = time.monotonic()

    def _close(self, tag: str) -> None:
        """The health check, checkpoint and encoder file of the weights now; the encoder is made once for both
        (Word2Vec fits its SIF component, MLM builds a MiniLM around its network)."""
        encoder = self.method.encoder(self.epoch)
        self._probe(encoder)
        self._write_checkpoint(tag)
        self.encoder_path = publish_text_encoder(self.ws, self.rep.run_id, self.config.method, self.plan, encoder,
                                                 self.epoch, self.step_count, self.last_probe)

    # -- the loop ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        minutes = self.plan.get("minutes")
        self.budget_s = float(minutes) * 60 if minutes and not self.plan.get("epochs") else None
        self.run_start = time.monotonic() - self.elapsed_s
        self.last_ckpt = self.last_report = time.monotonic()
        self.last_check = 0.0  # the first step asks whether a stop was requested
        self.stop_reason: str | None = None
        length = f"{self.total_epochs} epochs" if self.epochs_fixed else f"a {self.budget_s / 60:g} min budget"
        self.rep.say(f"pretraining {self.config.method} on {self.n} texts: {self.plan['backbone']}, "
                     f"batch {self.batch}, {length}"
                     + (f" (at most {self.cap} epochs)" if self.cap and not self.epochs_fixed else ""))
        while self.total_epochs is None or self.epoch < self.total_epochs:
            self._run_epoch()
            if self.stop_reason is not None:
                break
        if self.stop_reason is not None and self.offset:  # stopped mid-epoch: keep that work too
            self._close("budget")
        return self._summary()

    def _planned(self) -> int:
        """Epochs the schedules assume: the fixed count, else the cap (or this epoch) until it is fixed."""
        return int(self.total_epochs or self.cap or self.epoch + 1)

    def _run_epoch(self) -> None:
        perm = np.random.default_rng(self.config.seed * 1_000_003 + self.epoch).permutation(self.n)
        losses: list[float] = []
        epoch_start = time.monotonic()
        while self.offset + self.batch <= self.n:
            self.stop_reason = self._check_stop()
            if self.stop_reason is not None:
                break
            rows = perm[self.offset:self.offset + self.batch]
            total = self._planned() * self.steps_per_epoch
            done = self.epoch * self.steps_per_epoch + self.offset // self.batch
            t0 = time.perf_counter()
            loss = self.method.step(rows, done / total, (done + 1) / total)
            self.train_s += time.perf_counter() - t0
            if not np.isfinite(loss):
                raise PretrainError(f"the loss became NaN/inf at step {self.step_count} (epoch {self.epoch + 1}); "
                                    "training stopped. Lower the learning rate (--lr) or use another method.")
            losses.append(loss)
            self.offset += self.batch
            self.step_count += 1
            self.texts_seen += len(rows)
            self._report(losses)
        if self.stop_reason is None:
            self.last_epoch_loss = round(float(np.mean(losses)), 5) if losses else None
            self.epoch, self.offset = self.epoch + 1, 0
            self._close("epoch")
            self.rep.metrics({"loss": self.last_epoch_loss or 0.0, **self.probe_metrics}, self.step_count, self.epoch)
            if not self.epochs_fixed:
                self._fix_epochs(time.monotonic() - epoch_start)
            self.rep.progress(force=True, epoch=self.epoch, epochs=self._planned(), epochs_fixed=self.epochs_fixed,
                              step=self.steps_per_epoch, steps=self.steps_per_epoch, global_step=self.step_count,
                              loss=self.last_epoch_loss)
            if self.budget_s is not None and time.monotonic() - self.run_start > self.budget_s * 1.1:
                self.stop_reason = "time budget reached"

    def _fix_epochs(self, epoch_cost: float) -> None:
        remaining = (self.budget_s or 0.0) - (time.monotonic() - self.run_start)
        fit = self.epoch + max(0, int(remaining // max(epoch_cost, 1e-3)))
        self.total_epochs = max(self.epoch, min(fit, self.cap) if self.cap else fit)
        self.epochs_fixed = True
        self.rep.say(f"epochs planned: {self.total_epochs} ({epoch_cost:.1f} s each"
                     + (f", at most {self.cap} for {self.n} texts" if self.cap and fit > self.cap else "") + ")")

    def _check_stop(self) -> str | None:
        """Why the run ends before the next step (budget, max_steps), or None; a pause or cancel request
        writes a checkpoint and raises JobStopped."""
        from sslapp.jobs.context import JobStopped

        now = time.monotonic()
        if now - self.last_check > 0.5:
            self.last_check = now
            how = self.rep.stop_requested()
            if how:
                self._write_checkpoint("stop")
                self.rep.say(f"{how} requested: checkpoint saved at epoch {self.epoch}, step {self.step_count}")
                raise JobStopped(how)
        if now - self.last_ckpt > self.config.checkpoint_every_s:
            self._write_checkpoint("mid")
        if self.budget_s is not None and not self.epochs_fixed and now - self.run_start > self.budget_s:
            return "time budget reached"
        if self.config.max_steps is not None and self.step_count >= self.config.max_steps:
            return f"max_steps {self.config.max_steps} reached"
        return None

    def _report(self, losses: list[float]) -> None:
        now = time.monotonic()
        if now - self.last_report < 1.0:
            return
        self.last_report = now
        rate = self.texts_seen / max(self.train_s, 1e-9)
        left = (self._planned() - self.epoch) * self.n - self.offset
        self.rep.progress(epoch=self.epoch + 1, epochs=self._planned(), epochs_fixed=self.epochs_fixed,
                          step=self.offset // self.batch, steps=self.steps_per_epoch, global_step=self.step_count,
                          loss=round(float(np.mean(losses[-20:])), 5), images_per_s=round(rate, 1),
                          texts_per_s=round(rate, 1), eta_s=round(left / max(rate, 1e-9), 1), batch_size=self.batch)

    # -- health check --------------------------------------------------------------------------
    def _probe(self, encoder) -> None:
        if self.probe_rows is None:
            return
        from sslapp.ssl.probe import probe_features

        result = probe_features(torch.from_numpy(encoder.embed([self.texts[i] for i in self.probe_rows])),
                                self.probe_labels)
        self.last_probe, self.probe_metrics = result.summary(), result.metrics()
        self.rep.say(result.message("texts"), warn=result.collapsed)
        self.rep.progress(force=True, probe=self.last_probe)

    def _summary(self) -> dict[str, Any]:
        rate = self.texts_seen / self.train_s if self.train_s > 0 else 0.0
        return {"method": self.config.method, "backbone": self.plan["backbone"], "train_size": None,
                "batch_size": self.batch, "epochs": self.epoch, "epochs_planned": self.total_epochs,
                "steps": self.step_count, "images": self.n, "texts": self.n, "images_per_s": round(rate, 1),
                "texts_per_s": round(rate, 1), "device": "cpu", "world_size": 1,
                "elapsed_s": round(time.monotonic() - self.run_start, 1), "loss": self.last_epoch_loss,
                "probe": self.last_probe,
                "checkpoint": str(self.ws.root / self.checkpoint_path) if self.checkpoint_path else None,
                "encoder": str(self.ws.root / self.encoder_path) if self.encoder_path else None,
                "run_id": self.rep.run_id, "stopped": self.stop_reason, "messages": self.rep.messages[-20:]}


def publish_text_encoder(ws: Workspace, run_id: int | None, method: str, plan: dict[str, Any], encoder,
                         epoch: int, step: int, probe: dict[str, Any] | None) -> str:
    """Save a text run's encoder (`sslapp.models.text` file), record it with its health check and keep the
    run's best (`prune_run_encoders`); the workspace path of the encoder the run keeps."""
    from sslapp.models.text import save_text_encoder

    run_dir = ws.checkpoints_dir / f"run-{run_id}"
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f"encoder-e{epoch:04d}-s{step:07d}.safetensors"
    try:
        save_text_encoder(encoder, path)
    except OSError as exc:
        raise PretrainError(f"could not write the encoder {path.name}: {exc.strerror or exc}. "
                            "The previous encoder and checkpoint are kept; free some space and resume.") from exc
    return record_encoder(ws, run_id, path, {"method": method, **plan, "dim": int(encoder.dim), "epoch": epoch,
                                             "step": step, "probe": probe})
