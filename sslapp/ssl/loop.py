"""The pretraining loop of one process: batches -> views on the device -> method loss -> optimizer step.

Batches come from `sslapp.ssl.data` as uint8 on the device, and the modality's views (`Modality.views`)
build every view there with batched torch ops (kornia is only the image views tests' reference).

Position is counted in samples within the epoch, so a resumed run (after pause, cancel or a
killed worker) replays the same permutation from the saved offset with the saved optimizer,
method (momentum teacher) and RNG state, and an out-of-memory retry with half the batch keeps
the learning-rate schedule. A minutes budget fixes the epoch count once, from the first epoch's whole
cost, so the card's "epoch N of M" stays put (GRACE lets those epochs finish). Under torchrun every
rank runs this loop: stop, pause, time budget, epoch-count and NaN decisions are agreed across ranks
(`ddp.agree_max`) so all take the same branch, and only rank 0 reports and writes files.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from sslapp.modalities import workspace_modality
from sslapp.ssl import ddp
from sslapp.ssl.build import build_training_method, wrap_ddp
from sslapp.ssl.checkpoint import CHECKPOINT_VERSION, publish_checkpoint, publish_encoder
from sslapp.ssl.data import epoch_permutation, fetch_batch, resident_on_device
from sslapp.ssl.plan import MIN_BATCH, PretrainConfig, PretrainError, lr_at
from sslapp.ssl.report import Reporter, Window

UNKNOWN_EPOCHS = 1_000_000
GRACE = 1.25  # once the epoch count is fixed, a minutes budget may run this much longer to finish it


class Loop:
    """One process's training run, new or resumed from a checkpoint, until its epochs or its time run out."""

    def __init__(self, ws, config: PretrainConfig, plan: dict[str, Any], device: torch.device, images,
                 rows: np.ndarray, item_ids: np.ndarray, rep: Reporter, dist_info: ddp.DistInfo,
                 checkpoint: dict[str, Any] | None):
        from sslapp.registry import Entry
        from sslapp.ssl.methods.base import build_optimizer

        self.make_views = Entry("views", "the modality's training views", workspace_modality(ws).views).load()
        self.ws, self.config, self.plan, self.device = ws, config, plan, device
        self.images, self.rows, self.item_ids = images, rows, item_ids
        self.rep, self.dist = rep, dist_info
        self.n = len(rows)
        self.cuda = device.type == "cuda"
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2 ** 32)
        self.method = build_training_method(config, plan, device, dist_info, fresh=checkpoint is None,
                                             images=images)
        self.spec = self.method.view_spec(plan["train_size"])
        self.batch = int(plan["batch_size"])
        self.optimizer = build_optimizer(self.method, self.batch, config.lr)
        self.clip_grad = float(self.method.optimizer_config().get("clip_grad") or 0.0)
        for group in self.optimizer.param_groups:
            group["base_lr"] = group["lr"]
        self.model = wrap_ddp(self.method, device, dist_info)
        self.resident = resident_on_device(images, device)
        # position
        self.epoch, self.offset, self.step = 0, 0, 0
        self.elapsed_s, self.train_s, self.images_seen = 0.0, 0.0, 0
        self.steady_s, self.steady_images = 0.0, 0  # steps after this process's first (warm-up)
        self.total_epochs = plan.get("epochs")
        self.epochs_fixed = plan.get("epochs") is not None  # a minutes budget fixes it after epoch 1
        self.epoch_cost_s: float | None = None  # one epoch's wall time, steps to checkpoint
        self.checkpoint_path: str | None = None
        self.encoder_path: str | None = None
        self.last_probe: dict[str, Any] | None = None
        self.last_epoch_loss: float | None = None
        if checkpoint is not None:
            self._restore(checkpoint)
        self.probe_sample = self._choose_probe_sample() if config.probe and dist_info.is_main else None

    # -- setup ---------------------------------------------------------------------------
    def _choose_probe_sample(self):
        """The images the end-of-epoch probe embeds, labelled ones first (rank 0 only)."""
        from sslapp.ssl.probe import choose_probe_sample

        position = {int(r): i for i, r in enumerate(self.rows.tolist())}
        labelled = {position[int(r["cache_index"])]: int(r["class_id"]) for r in self.ws.store.labels()
                    if int(r["cache_index"]) in position}
        return choose_probe_sample(np.arange(self.n), labelled,
                                   size=min(self.config.probe_size, self.n), seed=self.config.seed)

    # -- state ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        state = {
            "version": CHECKPOINT_VERSION,
            "config": self.config.to_params(),
            "plan": {**self.plan, "batch_size": self.batch},
            "epoch": self.epoch, "offset": self.offset, "step": self.step,
            "total_epochs": self.total_epochs, "epochs_fixed": self.epochs_fixed,
            "elapsed_s": self.elapsed_s, "train_s": self.train_s, "images_seen": self.images_seen,
            "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "rng_torch": torch.get_rng_state(),
        }
        if self.cuda:
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore(self, ck: dict[str, Any]) -> None:
        if ck.get("version") != CHECKPOINT_VERSION:
            raise PretrainError(f"checkpoint version {ck.get('version')} is not supported by this sslapp.")
        self.method.load_state_dict(ck["method"])
        self.optimizer.load_state_dict(ck["optimizer"])
        for group in self.optimizer.param_groups:
            group.setdefault("base_lr", group["lr"])
        self.epoch, self.offset, self.step = int(ck["epoch"]), int(ck["offset"]), int(ck["step"])
        self.total_epochs = ck.get("total_epochs")
        self.epochs_fixed = bool(ck.get("epochs_fixed", self.epochs_fixed or self.epoch >= 1))
        self.elapsed_s, self.train_s = float(ck["elapsed_s"]), float(ck["train_s"])
        self.images_seen = int(ck["images_seen"])
        torch.set_rng_state(ck["rng_torch"])
        if self.cuda and "rng_cuda" in ck:
            torch.cuda.set_rng_state(ck["rng_cuda"], self.device)
        self.rep.say(f"resumed from epoch {self.epoch}, step {self.step} (sample {self.offset} of the epoch)")

    def _write_checkpoint(self, tag: str) -> None:
        if self.dist.is_main:
            self.checkpoint_path = publish_checkpoint(self.ws, self.rep.run_id, self._state(), tag,
                                                      self.epoch, self.step, self.config.keep_checkpoints)

    def _write_encoder(self) -> None:
        if self.dist.is_main:
            self.encoder_path = publish_encoder(self.ws, self.rep.run_id, self.config.method, self.plan,
                                                self.method.encoder, self.epoch, self.step, self.last_probe)

    # -- data and probe --------------------------------------------------------------------
    def _permutation(self, epoch: int) -> torch.Tensor:
        return epoch_permutation(self.n, self.config.seed, epoch, self.dist)

    def _batch(self, idx: torch.Tensor) -> torch.Tensor:
        return fetch_batch(self.images, self.resident, idx, self.device)

    def _probe(self) -> None:
        if self.probe_sample is None:
            return
        from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
        from sslapp.ssl.probe import run_probe

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            result = run_probe(self.method.encoder, self.images, self.probe_sample, self.device, self.plan["train_size"],
                               torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.last_probe = {"std": result.std, "std_ratio": result.std_ratio, "collapsed": result.collapsed,
                           "knn_acc": result.knn_acc, "n_labelled": result.n_labelled}
        self.rep.metrics(result.metrics(), self.step, self.epoch)
        self.rep.say(f"epoch {self.epoch} " + result.message(workspace_modality(self.ws).plural), warn=result.collapsed)
        self.rep.progress(force=True, probe=self.last_probe)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train until the planned epochs, the time budget or max_steps end; the run's summary."""
        self._begin()
        while self.epoch < self.total_epochs:
            self._run_epoch()
            if self.stop_reason is not None:
                break
        if self.stop_reason is not None and self.offset:  # stopped mid-epoch: keep that work too
            self._probe()  # its encoder is kept only if this check says it is the best
            self.elapsed_s = time.monotonic() - self.run_start
            self._write_checkpoint("budget")
            self._write_encoder()
        return self._summary()

    def _begin(self) -> None:
        """Set the budget, clocks and loss windows of this attempt and say what is about to run."""
        minutes = self.plan.get("minutes")
        self.budget_s = float(minutes) * 60 if minutes else None
        self.warmup_epochs = float(self.method.optimizer_config().get("warmup_epochs", 0))
        if self.total_epochs is None:  # time budget only: a first guess, refined as steps are timed
            self.total_epochs = UNKNOWN_EPOCHS
        self.n_rank = self.n // self.dist.world_size
        self.last_ckpt = self.last_stop_check = self.last_report = time.monotonic()
        self.win, self.epoch_loss = Window(), Window()
        self.pending: list[tuple[int, torch.Tensor]] = []  # (step, loss) not yet checked for NaN
        self.sync_every = 10 if self.cuda else 1
        self.stop_reason: str | None = None
        self.steps_per_epoch = self.n_rank // self.batch
        self.rep.say(f"pretraining {self.config.method} on {self.n} {workspace_modality(self.ws).plural}: "
                     f"{self.plan['backbone']} at {self.plan['train_size']} px, batch {self.batch}, device {self.device}"
                     + (f", {self.dist.world_size} processes" if self.dist.enabled else "")
                     + (f", {self.budget_s / 60:g} min budget" if self.budget_s else f", {self.total_epochs} epochs"))
        self.run_start = time.monotonic() - self.elapsed_s
        self.steps_timed, self.time_timed = 0, 0.0

    def _run_epoch(self) -> None:
        """Train the steps left in this epoch, then close it unless the run was told to end first."""
        perm = self._permutation(self.epoch)
        self.steps_per_epoch = self.n_rank // self.batch
        epoch_start, first_step = time.monotonic(), self.offset // self.batch  # a resumed epoch starts part-way
        while self.offset + self.batch <= self.n_rank:
            self.stop_reason = self._check_stop()
            if self.stop_reason is not None:
                break
            if self._step(perm):
                self._report()
        self._consume(self.pending, self.win, self.epoch_loss)
        if self.stop_reason is None:
            steps_s = time.monotonic() - epoch_start
            self._end_epoch()
            whole = steps_s * self.steps_per_epoch / max(1, self.steps_per_epoch - first_step)
            self.epoch_cost_s = whole + (time.monotonic() - epoch_start - steps_s)  # + probe and files
            if self.budget_s is not None and not self.epochs_fixed:
                self._fix_epochs()
            self.stop_reason = "time budget reached" if self._seconds_left(time.monotonic()) <= 0 else None

    def _fix_epochs(self) -> None:
        """Set, once, how many epochs fit in the minutes budget from the cost of the epoch just ended."""
        remaining = self.budget_s - (time.monotonic() - self.run_start)
        fit = self.epoch + max(0, int(remaining // max(self.epoch_cost_s, 1e-3)))
        self.total_epochs, self.epochs_fixed = int(ddp.agree_max([float(fit)], self.device)[0]), True
        self.rep.say(f"epochs planned: {self.total_epochs} ({self.epoch_cost_s:.1f} s each, {self.budget_s / 60:g} min)")
        self.rep.progress(force=True, epoch=self.epoch, epochs=self.total_epochs, epochs_fixed=True)

    def _seconds_left(self, now: float) -> float:
        """Of the minutes budget (1e12 without one); once it fixed the epoch count, GRACE lets those finish."""
        grace = GRACE if self.epochs_fixed and self.plan.get("epochs") is None else 1.0
        return 1e12 if self.budget_s is None else self.budget_s * grace - (now - self.run_start)

    def _check_stop(self) -> str | None:
        """Why the run ends before the next step (time budget, max_steps), or None; agreed on every rank.

        Also writes the periodic mid-epoch checkpoint, and on a cancel or pause request writes a
        checkpoint and raises JobStopped.
        """
        from sslapp.jobs.context import JobStopped

        now = time.monotonic()
        flags = [0.0, 0.0, 0.0]  # stop request (1 cancel, 2 pause), budget spent, checkpoint due
        if now - self.last_stop_check > 0.5:
            flags[0] = {"cancel": 1.0, "pause": 2.0}.get(self.rep.stop_requested() or "", 0.0)
            self.last_stop_check = now
        flags[1] = float(self._seconds_left(now) <= 0)
        flags[2] = float(now - self.last_ckpt > self.config.checkpoint_every_s)
        if self.dist.enabled:
            flags = ddp.agree_max(flags, self.device)
        if flags[0] or flags[2]:
            self._consume(self.pending, self.win, self.epoch_loss)
            self.elapsed_s = time.monotonic() - self.run_start
            self._write_checkpoint("stop" if flags[0] else "mid")
            self.last_ckpt = time.monotonic()
            if flags[0]:
                how = "cancel" if flags[0] == 1.0 else "pause"
                self.rep.say(f"{how} requested: checkpoint saved at epoch {self.epoch}, step {self.step}")
                raise JobStopped(how)
        if flags[1]:
            return "time budget reached"
        if self.config.max_steps is not None and self.step >= self.config.max_steps:
            return f"max_steps {self.config.max_steps} reached"
        return None

    def _step(self, perm: torch.Tensor) -> bool:
        """One optimizer step on the next batch of `perm`; False if it ran out of memory (batch halved)."""
        self._set_lr((self.epoch + self.offset / self.n_rank) / self.total_epochs,
                     self.warmup_epochs / max(self.total_epochs, 1))
        t0 = time.perf_counter()
        idx = perm[self.offset:self.offset + self.batch]
        try:
            loss = self._train_step(idx)
        except torch.OutOfMemoryError:
            self._shrink_after_oom()
            self.steps_per_epoch = self.n_rank // self.batch
            return False
        self.pending.append((self.step, loss.detach()))
        if len(self.pending) >= self.sync_every:
            self._consume(self.pending, self.win, self.epoch_loss)
        dt = time.perf_counter() - t0
        self.offset += self.batch
        self.step += 1
        self.train_s += dt
        seen = self.batch * self.dist.world_size
        self.images_seen += seen
        self.win.images += seen
        self.win.seconds += dt
        if self.step > 1:
            self.steps_timed, self.time_timed = self.steps_timed + 1, self.time_timed + dt
            self.steady_images += seen
            self.steady_s += dt
        if self.total_epochs == UNKNOWN_EPOCHS and not self.epochs_fixed and self.steps_timed >= 3:
            per_epoch = self.time_timed / self.steps_timed * self.steps_per_epoch
            remaining = self.budget_s - (time.monotonic() - self.run_start)
            guess = self.epoch + max(1, int(remaining / per_epoch))
            self.total_epochs = int(ddp.agree_max([float(guess)], self.device)[0])
        return True

    def _report(self) -> None:
        """At most every two seconds: loss, speed and lr to the metrics, and progress with an ETA."""
        now = time.monotonic()
        win = self.win
        if not (win.count and now - self.last_report > 2.0):
            return
        ips = win.images / max(win.seconds, 1e-9)
        done = (self.epoch + self.offset / self.n_rank) / self.total_epochs
        if self.budget_s is not None:  # the epochs left at their measured cost, within the time left
            left = (self.total_epochs - self.epoch - self.offset / self.n_rank) * (self.epoch_cost_s or 1e12)
            eta = max(0.0, min(left, self._seconds_left(now)))
        else:
            eta = (1 - done) * self.total_epochs * self.n_rank * self.dist.world_size / max(ips, 1e-6)
        self.rep.metrics({"loss": win.mean, "images_per_s": ips,
                          "lr": self.optimizer.param_groups[0]["lr"]}, self.step, self.epoch)
        # the card shows the same average speed as the summary (steps after the warm-up), not this window's
        average = self.steady_images / self.steady_s if self.steady_s > 0 else ips
        self.rep.progress(epoch=self.epoch + 1, epochs=self._epochs_shown(), epochs_fixed=self.epochs_fixed,
                          step=self.offset // self.batch, steps=self.steps_per_epoch, global_step=self.step, loss=round(win.mean, 5),
                          images_per_s=round(average, 1), eta_s=round(eta, 1), batch_size=self.batch)
        win.reset()
        self.last_report = now

    def _end_epoch(self) -> None:
        """Close a finished epoch: loss, probe, checkpoint and encoder."""
        self.epoch += 1
        self.offset = 0
        self.last_epoch_loss = self.epoch_loss.mean if self.epoch_loss.count else None
        if self.last_epoch_loss is not None:
            self.rep.metrics({"epoch_loss": self.last_epoch_loss}, self.step, self.epoch)
        self.epoch_loss.reset()
        self._probe()
        self.elapsed_s = time.monotonic() - self.run_start
        self._write_checkpoint("epoch")
        self._write_encoder()
        self.last_ckpt = time.monotonic()
        self.rep.progress(force=True, epoch=self.epoch, epochs=self._epochs_shown(), epochs_fixed=self.epochs_fixed,
                          step=self.steps_per_epoch, steps=self.steps_per_epoch, global_step=self.step,
                          loss=self.last_epoch_loss)

    def _summary(self) -> dict[str, Any]:
        if self.steady_s > 0:
            ips = self.steady_images / self.steady_s
        else:
            ips = self.images_seen / self.train_s if self.train_s > 0 else 0.0
        return {"method": self.config.method, "backbone": self.plan["backbone"],
                "train_size": self.plan["train_size"], "batch_size": self.batch, "epochs": self.epoch,
                "epochs_planned": self._epochs_shown() if self.epochs_fixed else None,
                "steps": self.step, "images": self.n, "images_per_s": round(ips, 1), "device": str(self.device),
                "world_size": self.dist.world_size, "elapsed_s": round(time.monotonic() - self.run_start, 1),
                "loss": self.last_epoch_loss, "probe": self.last_probe,
                "checkpoint": str(self.ws.root / self.checkpoint_path) if self.checkpoint_path else None,
                "encoder": str(self.ws.root / self.encoder_path) if self.encoder_path else None,
                "run_id": self.rep.run_id, "stopped": self.stop_reason, "messages": self.rep.messages[-20:]}

    # -- one step --------------------------------------------------------------------------
    def _consume(self, pending: list[tuple[int, torch.Tensor]], *windows: Window) -> None:
        """Check the pending losses for NaN (one device sync) and add them to the running means."""
        if not pending:
            return
        values = torch.stack([v.float() for _, v in pending]).cpu()
        bad = (~torch.isfinite(values)).nonzero().flatten()
        flag = float(len(bad) > 0)
        if self.dist.enabled:
            flag = ddp.agree_max([flag], self.device)[0]
        if flag:
            where = pending[int(bad[0])][0] if len(bad) else pending[0][0]
            pending.clear()
            raise PretrainError(
                f"the loss became NaN/inf at step {where} (epoch {self.epoch + 1}); training stopped. "
                f"The last good checkpoint is kept ({self.checkpoint_path or 'none written yet'}). "
                "Lower the learning rate (--lr) or use another method or backbone, then start again.")
        for w in windows:
            w.total += float(values.sum())
            w.count += len(values)
        pending.clear()

    def _epochs_shown(self) -> int | None:
        return None if self.total_epochs >= UNKNOWN_EPOCHS else int(self.total_epochs)

    def _set_lr(self, progress: float, warmup: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(progress, warmup, group["base_lr"])

    def _train_step(self, idx: torch.Tensor) -> torch.Tensor:
        x = self._batch(idx)
        seed = (self.config.seed * 1_000_003 + self.step) % (2 ** 31)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            views = self.make_views(x, self.spec, seed=seed)
            if self.cuda:
                views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            loss = self.model(views, self.epoch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.method.on_after_backward(self.epoch)
        if self.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.method.parameters(), self.clip_grad)
        self.optimizer.step()
        total = int(self.total_epochs * (self.n // self.dist.world_size // self.batch))
        self.method.on_step_end(self.step, max(total, self.step + 1))
        return loss

    def _shrink_after_oom(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
        new = self.batch // 2
        if new < MIN_BATCH:
            raise PretrainError(f"out of GPU memory even with a batch of {self.batch}; use a smaller backbone "
                                "or train size, or --device cpu.")
        self.rep.say(f"CUDA out of memory at batch {self.batch}: retrying with batch {new}", warn=True)
        self.batch = self.plan["batch_size"] = new
