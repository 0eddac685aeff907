"""The pretraining loop: uint8 cache -> device -> batched views -> method loss, with checkpoints.

The hot loop never touches PIL or DataLoader workers: an epoch is a seeded permutation of the
cache rows; a batch is one fancy-index into the (RAM- or GPU-resident) uint8 array, moved to the
device in one copy, and `sslapp.ssl.augment.make_views` builds every view there with batched torch
ops (kornia is only the tests' reference).

Position is counted in samples within the epoch, so a resumed run (after pause, cancel or a
killed worker) replays the same permutation from the saved offset with the saved optimizer,
method (momentum teacher) and RNG state, and an out-of-memory retry with half the batch keeps
the learning-rate schedule. Checkpoints are written to a temp file and renamed, hold only state
dicts and plain numbers (``torch.load(weights_only=True)``), and the encoder is also saved as
safetensors at every epoch end for the Explore and Train pages.
"""

from __future__ import annotations

import errno
import io
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslapp.ssl import ddp
from sslapp.ssl.backbones import BACKBONES, PRETRAINED, RESNETS, VIT_SPECS, build_backbone, is_backbone_name
from sslapp.workspace import Workspace

CHECKPOINT_VERSION = 1
MIN_BATCH = 4
KEEP_CHECKPOINTS = 2
RESIDENT_RAM_BYTES = 4 * 1024 ** 3  # copy the cache rows into RAM below this size
VIT_METHODS = ("mae",)  # methods that only work on a ViT
UNKNOWN_EPOCHS = 1_000_000


@dataclass
class _Window:
    """A running mean of losses and an images-per-second window."""

    total: float = 0.0
    count: int = 0
    images: int = 0
    seconds: float = 0.0

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    def reset(self) -> None:
        self.total, self.count, self.images, self.seconds = 0.0, 0, 0, 0.0


class PretrainError(RuntimeError):
    """A pretraining run that cannot go on, with a message saying what to do."""


@dataclass
class PretrainConfig:
    method: str = "simclr"
    backbone: str = "auto"
    init: str = "auto"  # "auto", "scratch", "imagenet" or a weights file (sslapp.ssl.weights)
    epochs: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    train_size: int | None = None
    device: str = "auto"
    seed: int = 0
    compile: bool = False
    lr: float | None = None
    hparams: dict[str, Any] = field(default_factory=dict)
    probe: bool = True
    probe_size: int = 1000
    checkpoint_every_s: float = 600.0  # mid-epoch checkpoints for long epochs
    threads: int | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (benchmarks, smoke tests)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PretrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in params.items() if k in known and v is not None})

    def to_params(self) -> dict[str, Any]:
        return asdict(self)


# -- choosing the device, backbone, size, batch and length ---------------------------------
def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PretrainError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto.")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise PretrainError(f"unknown device {name!r}; use auto, cpu or cuda.")
    return torch.device(name)


def auto_plan(method: str, backbone: str, cache_size: int, n_images: int, device: torch.device,
              train_size: int | None = None, batch_size: int | None = None, epochs: int | None = None,
              minutes: float | None = None, init: str = "auto") -> dict[str, Any]:
    """Fill in what the user left to `auto`; the CPU choices come from docs/benchmarks.md.

    On a CPU the standard-stem ResNet-18 at 32 px runs ~10x faster than the small-stem one (its
    stem downsamples 4x at once), so in ten minutes it sees ~20x more images; measured kNN on
    cifar10 favours it at equal time. On a GPU compute is cheap: the small-stem ResNet-18 (CIFAR
    style) at the cache size up to 64 px, ResNet-50 above.
    """
    cuda = device.type == "cuda"
    vit = method in VIT_METHODS
    if backbone == "auto" and init == "imagenet":
        backbone = next(iter(PRETRAINED))
    if backbone == "auto":
        if vit:
            backbone = "vit-small" if cuda else "vit-tiny"
        elif cuda:
            backbone = "resnet18" if cache_size <= 64 else "resnet50"
        else:
            backbone = "resnet18-std"
    if train_size is None and backbone in PRETRAINED:
        train_size = 128  # where its ImageNet features are measured best per second (features.service)
    if train_size is None:
        if cuda:
            train_size = min(cache_size, 64 if backbone in RESNETS[:1] else 224)
        else:
            train_size = min(cache_size, 32)
        if backbone in VIT_SPECS:
            train_size = max(16, train_size // 8 * 8)
    if batch_size is None:
        batch_size = 256 if cuda or backbone.endswith("-std") else 64 if backbone in PRETRAINED else 128
    if epochs is None and minutes is None:
        if cuda:
            epochs = int(min(200, max(20, round(2_000_000 / max(n_images, 1)))))
        else:
            minutes = 10.0  # a CPU user gets useful features in minutes, not hours
    return {"backbone": backbone, "train_size": int(train_size), "batch_size": int(batch_size),
            "epochs": epochs, "minutes": minutes, "init": resolve_init(backbone, init)}


def _init_problem(backbone: str, init: str) -> str | None:
    """What is wrong with starting `backbone` from `init`, or None (names from sslapp.catalogue)."""
    from sslapp.catalogue import INITS, init_problem

    if init in INITS:
        return init_problem(backbone, init)
    if not Path(init).expanduser().is_file():
        return (f"--init {init!r} is neither one of {', '.join(INITS)} nor an existing weights file "
                "(.pt, .pth or .safetensors)")
    return None


def resolve_init(backbone: str, init: str) -> str:
    """"auto" -> ImageNet weights where they ship for this backbone, else scratch."""
    from sslapp.ssl.weights import default_init

    return default_init(backbone) if init == "auto" else init


def lr_at(progress: float, warmup: float, base: float) -> float:
    """Linear warm-up over `warmup` (fraction of the run), then cosine decay to zero."""
    if warmup > 0 and progress < warmup:
        return base * progress / warmup
    t = (progress - warmup) / max(1e-8, 1 - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, t))))


# -- checkpoint files ----------------------------------------------------------------------
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


# -- the loop ------------------------------------------------------------------------------
class _Reporter:
    """Progress to the job (when there is one), the job log and the metrics table; rank 0 only."""

    def __init__(self, ws: Workspace, ctx, run_id: int | None, main: bool):
        self.ws, self.ctx, self.run_id, self.main = ws, ctx, run_id, main
        self.messages: list[str] = []

    def progress(self, force: bool = False, **values: Any) -> None:
        if self.main and self.ctx is not None:
            self.ctx.progress(force=force, **values)

    def say(self, message: str, warn: bool = False) -> None:
        if not self.main:
            return
        self.messages.append(message)
        if self.ctx is not None:
            (self.ctx.log.warning if warn else self.ctx.log.info)(message)
            self.ctx.progress(force=True, message=message)

    def metrics(self, values: dict[str, float], step: int, epoch: int) -> None:
        if self.main and self.run_id is not None:
            self.ws.store.log_metrics(values, run_id=self.run_id,
                                      job_id=self.ctx.job_id if self.ctx is not None else None,
                                      step=step, epoch=epoch)

    def stop_requested(self) -> str | None:
        return self.ctx.stop_requested() if (self.main and self.ctx is not None) else None


def _load_images(ws: Workspace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(uint8 images to train on, their cache rows, their item ids) for every active item."""
    from sslapp.ingest.cache import read_cache

    pairs = ws.store.item_ids_and_cache_index()
    ids = np.array([p[0] for p in pairs], dtype=np.int64)
    rows = np.array([p[1] for p in pairs], dtype=np.int64)
    cache = read_cache(ws)
    if len(rows) and rows.max() >= len(cache):
        raise PretrainError("the image cache is shorter than the item list; re-ingest into a new workspace.")
    if len(rows) * int(np.prod(cache.shape[1:])) <= RESIDENT_RAM_BYTES:
        images = np.ascontiguousarray(cache[rows]) if len(rows) else np.asarray(cache[:0])
    else:  # too big for RAM: stay on the memmap and read each batch's rows from it
        images = _RowView(cache, rows)
    return images, rows, ids


class _RowView:
    """The subset `rows` of a memmap, indexed like an array (batches read sorted rows)."""

    def __init__(self, cache: np.ndarray, rows: np.ndarray):
        self.cache, self.rows = cache, rows
        self.shape = (len(rows), *cache.shape[1:])

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, idx):
        return self.cache[self.rows[idx]]


def _plan_batch(requested: int, n_per_rank: int) -> int:
    if n_per_rank >= requested:
        return requested
    shrunk = 2 ** int(math.floor(math.log2(max(n_per_rank, 1))))
    if shrunk < MIN_BATCH:
        return 0
    return shrunk


def pretrain(ws: Workspace, config: PretrainConfig | dict[str, Any], ctx=None, run_id: int | None = None,
             resume_from: str | Path | None = None) -> dict[str, Any]:
    """Pretrain an encoder on every image of `ws`; returns a JSON-able summary.

    `ctx` is a JobContext (progress, stop requests, log) or None. `run_id` is the run to record
    under (created here when None and this is rank 0). `resume_from` is a checkpoint path to
    continue from. Under torchrun every rank calls this; only rank 0 writes.
    """
    if isinstance(config, dict):
        config = PretrainConfig.from_params(config)
    from sslapp.ssl.methods import METHODS

    dist_info = ddp.current()
    if dist_info.enabled:  # every rank trains rank 0's plan from rank 0's checkpoint
        params, resume_from = ddp.broadcast_object(
            (config.to_params(), str(resume_from) if resume_from else None))
        config = PretrainConfig.from_params(params)
    main = dist_info.is_main
    if config.method not in METHODS:
        raise PretrainError(f"unknown method {config.method!r}; choose one of: {', '.join(METHODS)}.")
    if config.backbone != "auto" and not is_backbone_name(config.backbone):
        raise PretrainError(f"unknown backbone {config.backbone!r}; choose one of: auto, {', '.join(BACKBONES)}.")
    init_error = _init_problem(config.backbone, config.init)
    if init_error:
        raise PretrainError(init_error)
    if config.epochs is not None and config.epochs < 1:
        raise PretrainError(f"--epochs must be at least 1 (got {config.epochs}).")
    if config.minutes is not None and config.minutes <= 0:
        raise PretrainError(f"--minutes must be positive (got {config.minutes}).")
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

    images, rows, item_ids = _load_images(ws)
    n = len(rows)
    if n == 0:
        raise PretrainError("the workspace has no images; add some on the Data page or with `sslapp ingest`.")
    plan = auto_plan(config.method, config.backbone, ws.cache_size, n, device, config.train_size,
                     config.batch_size, config.epochs, config.minutes, config.init)
    reporter_ctx = ctx
    if checkpoint is not None:
        plan = checkpoint["plan"]
    n_per_rank = n // dist_info.world_size
    batch = _plan_batch(int(plan["batch_size"]), n_per_rank)
    if batch == 0:
        raise PretrainError(f"{n} images are too few to pretrain: one batch needs at least {MIN_BATCH} images "
                            f"per process ({MIN_BATCH * dist_info.world_size} here); add more images.")

    if main and run_id is None:
        run_id = ws.store.create_run("pretrain", {**config.to_params(), **plan},
                                     ctx.job_id if ctx is not None else None)
    rep = _Reporter(ws, reporter_ctx, run_id, main)
    if batch != plan["batch_size"]:
        rep.say(f"only {n_per_rank} images per process: batch size shrunk from {plan['batch_size']} to {batch}")
    plan["batch_size"] = batch

    loop = _Loop(ws, config, plan, device, images, rows, item_ids, rep, dist_info, checkpoint)
    if resume_from is not None:
        resumed = Path(resume_from).resolve()
        loop.checkpoint_path = (str(resumed.relative_to(ws.root)) if resumed.is_relative_to(ws.root)
                                else str(resumed))
    return loop.run()


class _Loop:
    def __init__(self, ws, config: PretrainConfig, plan, device, images, rows, item_ids, rep: _Reporter,
                 dist_info: ddp.DistInfo, checkpoint):
        from sslapp.ssl.augment import make_views
        from sslapp.ssl.methods import build_method
        from sslapp.ssl.methods.base import build_optimizer

        self.make_views = make_views
        self.ws, self.config, self.plan, self.device = ws, config, plan, device
        self.images, self.rows, self.item_ids = images, rows, item_ids
        self.rep, self.dist = rep, dist_info
        self.n = len(rows)
        self.cuda = device.type == "cuda"
        torch.manual_seed(config.seed)
        np.random.seed(config.seed % 2 ** 32)
        try:
            backbone = build_backbone(plan["backbone"], plan["train_size"])
            if checkpoint is None:  # a resumed run restores its own weights
                from sslapp.ssl.weights import init_backbone

                init_backbone(backbone, plan.get("init", "scratch"))
        except ValueError as exc:  # includes WeightsError
            raise PretrainError(str(exc)) from exc
        try:
            self.method = build_method(config.method, backbone, **config.hparams)
        except (ValueError, TypeError) as exc:
            raise PretrainError(f"{config.method}: {exc}") from exc
        self.method.to(device)
        if self.cuda:
            self.method.to(memory_format=torch.channels_last)
        if dist_info.enabled and self.cuda:
            self.method = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.method)
        if config.compile:
            self.method.encoder.compile()
        self.spec = self.method.view_spec(plan["train_size"])
        self.batch = int(plan["batch_size"])
        self.optimizer = build_optimizer(self.method, self.batch, config.lr)
        self.clip_grad = float(self.method.optimizer_config().get("clip_grad") or 0.0)
        for group in self.optimizer.param_groups:
            group["base_lr"] = group["lr"]
        self.model = self.method
        if dist_info.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.model = DistributedDataParallel(
                self.method, device_ids=[device.index] if self.cuda else None,
                find_unused_parameters=bool(getattr(self.method, "ddp_find_unused_parameters", False)))
        self.resident = None
        if self.cuda and isinstance(images, np.ndarray):
            free, _ = torch.cuda.mem_get_info(device)
            if images.nbytes < 0.2 * free:  # the whole cache on the GPU: batches never cross PCIe
                self.resident = torch.from_numpy(images).to(device)
        # position
        self.epoch, self.offset, self.step = 0, 0, 0
        self.elapsed_s, self.train_s, self.images_seen = 0.0, 0.0, 0
        self.steady_s, self.steady_images = 0.0, 0  # steps after this process's first (warm-up)
        self.total_epochs = plan.get("epochs")
        self.checkpoint_path: str | None = None
        self.encoder_path: str | None = None
        self.last_probe: dict[str, Any] | None = None
        self.last_epoch_loss: float | None = None
        if checkpoint is not None:
            self._restore(checkpoint)
        self.probe_sample = None
        if config.probe and dist_info.is_main:
            from sslapp.ssl.probe import choose_probe_sample

            position = {int(r): i for i, r in enumerate(rows.tolist())}
            labelled = {position[int(r["cache_index"])]: int(r["class_id"]) for r in ws.store.labels()
                        if int(r["cache_index"]) in position}
            self.probe_sample = choose_probe_sample(np.arange(self.n), labelled,
                                                    size=min(config.probe_size, self.n), seed=config.seed)

    # -- state ---------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        state = {
            "version": CHECKPOINT_VERSION,
            "config": self.config.to_params(),
            "plan": {**self.plan, "batch_size": self.batch},
            "epoch": self.epoch, "offset": self.offset, "step": self.step,
            "total_epochs": self.total_epochs,
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
        self.elapsed_s, self.train_s = float(ck["elapsed_s"]), float(ck["train_s"])
        self.images_seen = int(ck["images_seen"])
        torch.set_rng_state(ck["rng_torch"])
        if self.cuda and "rng_cuda" in ck:
            torch.cuda.set_rng_state(ck["rng_cuda"], self.device)
        self.rep.say(f"resumed from epoch {self.epoch}, step {self.step} (sample {self.offset} of the epoch)")

    def _write_checkpoint(self, tag: str) -> None:
        if not self.dist.is_main:
            return
        run_dir = self.ws.checkpoints_dir / f"run-{self.rep.run_id}"
        path = run_dir / f"{tag}-e{self.epoch:04d}-s{self.step:07d}.pt"
        save_checkpoint_atomic(self._state(), path)
        for stale in run_dir.glob("*.pt.tmp"):  # half-writes of a killed earlier attempt (one writer: rank 0)
            stale.unlink(missing_ok=True)
        rel = str(path.relative_to(self.ws.root))
        if self.rep.run_id is not None:
            self.ws.store.add_checkpoint(self.rep.run_id, self.epoch, self.step, rel)
            for old in self.ws.store.checkpoints(self.rep.run_id)[:-KEEP_CHECKPOINTS]:
                if old["path"] != rel:
                    (self.ws.root / old["path"]).unlink(missing_ok=True)
                self.ws.store.delete_checkpoint(old["id"])
        self.checkpoint_path = rel

    def _write_encoder(self) -> None:
        if not self.dist.is_main:
            return
        from sslapp.ssl.encoder import Encoder, EncoderConfig, save_encoder

        enc = Encoder(EncoderConfig(backbone=self.plan["backbone"], input_size=self.ws.cache_size,
                                    train_size=self.plan["train_size"], method=self.config.method,
                                    extra={"epoch": self.epoch, "run_id": self.rep.run_id,
                                           "init": self.plan.get("init", "scratch")}))
        source = self.method.encoder
        source = getattr(source, "_orig_mod", source)
        enc.backbone.load_state_dict({k: v.detach().float().cpu() for k, v in source.state_dict().items()})
        run_dir = self.ws.checkpoints_dir / f"run-{self.rep.run_id}"
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / f"encoder-e{self.epoch:04d}.safetensors"
        try:
            save_encoder(enc, path)
        except OSError as exc:
            raise PretrainError(f"could not write the encoder {path.name}: {exc.strerror or exc}. "
                                "The previous encoder and checkpoint are kept; free some space and resume.") from exc
        rel = str(path.relative_to(self.ws.root))
        if self.encoder_path and self.encoder_path != rel:
            (self.ws.root / self.encoder_path).unlink(missing_ok=True)
        self.encoder_path = rel
        if self.rep.run_id is not None:
            self.ws.store.add_artifact("encoder", rel, {"method": self.config.method, **self.plan,
                                                         "epoch": self.epoch, "step": self.step},
                                       self.rep.run_id)

    # -- data ------------------------------------------------------------------------------
    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        perm = torch.randperm(self.n, generator=g)
        if self.dist.enabled:  # each rank its own shard, equal length
            per = self.n // self.dist.world_size
            perm = perm[self.dist.rank * per:(self.dist.rank + 1) * per]
        return perm

    def _batch(self, idx: torch.Tensor) -> torch.Tensor:
        if self.resident is not None:
            return self.resident[idx.to(self.device, non_blocking=True)]
        rows = np.sort(idx.numpy())
        x = torch.from_numpy(np.ascontiguousarray(self.images[rows]))
        if self.cuda:
            return x.pin_memory().to(self.device, non_blocking=True)
        return x

    # -- probe -----------------------------------------------------------------------------
    def _probe(self) -> None:
        if self.probe_sample is None:
            return
        from sslapp.ssl.encoder import IMAGENET_MEAN, IMAGENET_STD
        from sslapp.ssl.probe import run_probe

        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            result = run_probe(self.method.encoder, self.images, self.probe_sample, self.device, self.plan["train_size"],
                               torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                               torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))
        self.last_probe = {"std": result.std, "std_ratio": result.std_ratio, "collapsed": result.collapsed,
                           "knn_acc": result.knn_acc, "n_labelled": result.n_labelled}
        self.rep.metrics(result.metrics(), self.step, self.epoch)
        self.rep.say(f"epoch {self.epoch} " + result.message(), warn=result.collapsed)
        self.rep.progress(force=True, probe=self.last_probe)

    # -- main loop -----------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        from sslapp.jobs.context import JobStopped

        cfg, rep = self.config, self.rep
        minutes = self.plan.get("minutes")
        budget_s = float(minutes) * 60 if minutes else None
        fixed_epochs = self.plan.get("epochs")
        warmup_epochs = float(self.method.optimizer_config().get("warmup_epochs", 0))
        if self.total_epochs is None:  # time budget only: a first guess, refined as steps are timed
            self.total_epochs = UNKNOWN_EPOCHS
        n_rank = self.n // self.dist.world_size
        last_ckpt = last_stop_check = last_report = time.monotonic()
        win = _Window()
        epoch_loss = _Window()
        pending: list[tuple[int, torch.Tensor]] = []
        sync_every = 10 if self.cuda else 1
        stop_reason: str | None = None
        rep.say(f"pretraining {cfg.method} on {self.n} images: {self.plan['backbone']} at "
                f"{self.plan['train_size']} px, batch {self.batch}, device {self.device}"
                + (f", {self.dist.world_size} processes" if self.dist.enabled else "")
                + (f", {budget_s / 60:g} min budget" if budget_s else f", {self.total_epochs} epochs"))
        run_start = time.monotonic() - self.elapsed_s
        steps_timed, time_timed = 0, 0.0

        while self.epoch < self.total_epochs:
            perm = self._permutation(self.epoch)
            steps_per_epoch = n_rank // self.batch
            epoch_start = time.monotonic()
            while self.offset + self.batch <= n_rank:
                # -- stop, pause, time budget, periodic checkpoint: agreed on every rank --------
                now = time.monotonic()
                flags = [0.0, 0.0, 0.0]
                if now - last_stop_check > 0.5:
                    flags[0] = {"cancel": 1.0, "pause": 2.0}.get(rep.stop_requested() or "", 0.0)
                    last_stop_check = now
                flags[1] = float(budget_s is not None and now - run_start >= budget_s)
                flags[2] = float(now - last_ckpt > cfg.checkpoint_every_s)
                if self.dist.enabled:
                    flags = ddp.agree_max(flags, self.device)
                if flags[0] or flags[2]:
                    self._consume(pending, win, epoch_loss)
                    self.elapsed_s = time.monotonic() - run_start
                    self._write_checkpoint("stop" if flags[0] else "mid")
                    last_ckpt = time.monotonic()
                    if flags[0]:
                        how = "cancel" if flags[0] == 1.0 else "pause"
                        rep.say(f"{how} requested: checkpoint saved at epoch {self.epoch}, step {self.step}")
                        raise JobStopped(how)
                if flags[1]:
                    stop_reason = "time budget reached"
                    break
                if cfg.max_steps is not None and self.step >= cfg.max_steps:
                    stop_reason = f"max_steps {cfg.max_steps} reached"
                    break
                # -- one step -----------------------------------------------------------------
                self._set_lr((self.epoch + self.offset / n_rank) / self.total_epochs,
                             warmup_epochs / max(self.total_epochs, 1))
                t0 = time.perf_counter()
                idx = perm[self.offset:self.offset + self.batch]
                try:
                    loss = self._train_step(idx)
                except torch.OutOfMemoryError:
                    self._shrink_after_oom()
                    steps_per_epoch = n_rank // self.batch
                    continue
                pending.append((self.step, loss.detach()))
                if len(pending) >= sync_every:
                    self._consume(pending, win, epoch_loss)
                dt = time.perf_counter() - t0
                self.offset += self.batch
                self.step += 1
                self.train_s += dt
                seen = self.batch * self.dist.world_size
                self.images_seen += seen
                win.images += seen
                win.seconds += dt
                if self.step > 1:
                    steps_timed, time_timed = steps_timed + 1, time_timed + dt
                    self.steady_images += seen
                    self.steady_s += dt
                if self.total_epochs == UNKNOWN_EPOCHS and fixed_epochs is None and steps_timed >= 3:
                    per_epoch = time_timed / steps_timed * steps_per_epoch
                    remaining = budget_s - (time.monotonic() - run_start)
                    guess = self.epoch + max(1, int(remaining / per_epoch))
                    self.total_epochs = int(ddp.agree_max([float(guess)], self.device)[0])
                # -- report -------------------------------------------------------------------
                now = time.monotonic()
                if win.count and now - last_report > 2.0:
                    ips = win.images / max(win.seconds, 1e-9)
                    done = (self.epoch + self.offset / n_rank) / self.total_epochs
                    if budget_s is not None:
                        eta = max(0.0, budget_s - (now - run_start))
                    else:
                        eta = (1 - done) * self.total_epochs * n_rank * self.dist.world_size / max(ips, 1e-6)
                    rep.metrics({"loss": win.mean, "images_per_s": ips,
                                 "lr": self.optimizer.param_groups[0]["lr"]}, self.step, self.epoch)
                    rep.progress(epoch=self.epoch + 1, epochs=self._epochs_shown(), step=self.offset // self.batch,
                                 steps=steps_per_epoch, global_step=self.step, loss=round(win.mean, 5),
                                 images_per_s=round(ips, 1), eta_s=round(eta, 1), batch_size=self.batch)
                    win.reset()
                    last_report = now
            # -- end of an epoch (or of the budget) -----------------------------------------
            self._consume(pending, win, epoch_loss)
            if stop_reason is not None:
                break
            epoch_time = time.monotonic() - epoch_start
            self.epoch += 1
            self.offset = 0
            self.last_epoch_loss = epoch_loss.mean if epoch_loss.count else None
            if self.last_epoch_loss is not None:
                rep.metrics({"epoch_loss": self.last_epoch_loss}, self.step, self.epoch)
            epoch_loss.reset()
            self._probe()
            self.elapsed_s = time.monotonic() - run_start
            if budget_s is not None and fixed_epochs is None:  # how many epochs fit in the rest
                remaining = budget_s - self.elapsed_s
                guess = self.epoch + max(0, int(remaining // max(epoch_time, 1e-3)))
                self.total_epochs = int(ddp.agree_max([float(guess)], self.device)[0])
            self._write_checkpoint("epoch")
            self._write_encoder()
            last_ckpt = time.monotonic()
            rep.progress(force=True, epoch=self.epoch, epochs=self._epochs_shown(), step=steps_per_epoch,
                         steps=steps_per_epoch, global_step=self.step, loss=self.last_epoch_loss)
            if budget_s is not None and self.elapsed_s >= budget_s:
                stop_reason = "time budget reached"
                break
        if stop_reason is not None and self.offset:  # stopped mid-epoch: keep that work too
            self.elapsed_s = time.monotonic() - run_start
            self._write_checkpoint("budget")
            self._write_encoder()
        if self.steady_s > 0:
            ips = self.steady_images / self.steady_s
        else:
            ips = self.images_seen / self.train_s if self.train_s > 0 else 0.0
        return {"method": cfg.method, "backbone": self.plan["backbone"], "train_size": self.plan["train_size"],
                "batch_size": self.batch, "epochs": self.epoch, "steps": self.step,
                "images": self.n, "images_per_s": round(ips, 1), "device": str(self.device),
                "world_size": self.dist.world_size, "elapsed_s": round(time.monotonic() - run_start, 1),
                "loss": self.last_epoch_loss, "probe": self.last_probe,
                "checkpoint": str(self.ws.root / self.checkpoint_path) if self.checkpoint_path else None,
                "encoder": str(self.ws.root / self.encoder_path) if self.encoder_path else None,
                "run_id": self.rep.run_id, "stopped": stop_reason, "messages": self.rep.messages[-20:]}

    def _consume(self, pending: list[tuple[int, torch.Tensor]], *windows: _Window) -> None:
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
        self.batch = new
        self.plan["batch_size"] = new
