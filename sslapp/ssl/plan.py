"""The plan of a pretraining run: config and its checks, device, backbone, size, batch, length, lr."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from sslapp.models.backbones import BACKBONES, PRETRAINED, RESNETS, VIT_SPECS, is_backbone_name
from sslapp.models.registry import INITS, init_problem
from sslapp.ssl.methods import METHODS

MIN_BATCH = 4
# methods that only work on a ViT, as their registry entries say
VIT_METHODS = tuple(name for name, entry in METHODS.items() if entry.defaults.get("vit_only"))
FRAME_METHODS = tuple(name for name, entry in METHODS.items() if entry.defaults.get("frames_only"))


class PretrainError(RuntimeError):
    """A pretraining run that cannot go on, with a message saying what to do."""


@dataclass
class PretrainConfig:
    method: str = "simclr"
    backbone: str = "auto"
    init: str = "auto"  # "auto", "scratch", "imagenet" or a weights file (sslapp.models.weights)
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
    keep_checkpoints: int = 1  # the newest is all a resume needs; tests keep more to resume mid-run
    threads: int | None = None
    max_steps: int | None = None  # stop after this many optimizer steps (benchmarks, smoke tests)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> PretrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in params.items() if k in known and v is not None})

    def to_params(self) -> dict[str, Any]:
        return asdict(self)


def check_config(config: PretrainConfig) -> None:
    """Refuse a config that cannot run, before any image is read, with a message saying what to change."""
    pictures = [name for name, entry in METHODS.items() if entry.defaults.get("modality", "image") != "text"]
    if config.method not in pictures:  # images and sounds' log-mel pictures train in this loop
        what = "unknown method" if config.method not in METHODS else "a method for texts, not images:"
        raise PretrainError(f"{what} {config.method!r}; choose one of: {', '.join(pictures)}.")
    if config.backbone != "auto" and not is_backbone_name(config.backbone):
        raise PretrainError(f"unknown backbone {config.backbone!r}; choose one of: auto, {', '.join(BACKBONES)}.")
    init_error = _init_problem(config.backbone, config.init)
    if init_error:
        raise PretrainError(init_error)
    if config.epochs is not None and config.epochs < 1:
        raise PretrainError(f"--epochs must be at least 1 (got {config.epochs}).")
    if config.minutes is not None and config.minutes <= 0:
        raise PretrainError(f"--minutes must be positive (got {config.minutes}).")


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
    if backbone == "auto" and method in FRAME_METHODS:
        backbone, train_size = "frames", train_size or cache_size  # every frame: these objectives work in time
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
    """What is wrong with starting `backbone` from `init`, or None (names from sslapp.models.registry)."""
    if init in INITS:
        return init_problem(backbone, init)
    if not Path(init).expanduser().is_file():
        return (f"--init {init!r} is neither one of {', '.join(INITS)} nor an existing weights file "
                "(.pt, .pth or .safetensors)")
    return None


def resolve_init(backbone: str, init: str) -> str:
    """"auto" -> ImageNet weights where they ship for this backbone, else scratch."""
    from sslapp.models.weights import default_init

    return default_init(backbone) if init == "auto" else init


def plan_batch(requested: int, n_per_rank: int) -> int:
    """The requested batch, or the largest power of two that fits the images of one process (0: too few)."""
    if n_per_rank >= requested:
        return requested
    shrunk = 2 ** int(math.floor(math.log2(max(n_per_rank, 1))))
    if shrunk < MIN_BATCH:
        return 0
    return shrunk


def lr_at(progress: float, warmup: float, base: float) -> float:
    """Linear warm-up over `warmup` (fraction of the run), then cosine decay to zero."""
    if warmup > 0 and progress < warmup:
        return base * progress / warmup
    t = (progress - warmup) / max(1e-8, 1 - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, t))))
