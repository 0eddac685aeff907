"""The small interface every SSL method implements, and the optimiser built from its config.

A training loop drives any method the same way::

    method = build_method("simclr", build_backbone("resnet18", 32))       # heads built inside
    optimizer = build_optimizer(method, batch_size=256)                    # lr scaled from 256
    spec = method.view_spec(train_size=32)
    for step, batch in enumerate(batches):                                 # uint8 (B, S, S, 3)
        views = make_views(batch.to(device), spec, seed=seed * 1_000_003 + step)
        loss = method(views, epoch)       # == method.loss(...); call the module so DDP syncs grads
        loss.backward()
        method.on_after_backward(epoch)   # e.g. DINO last-layer / SwAV prototype freezing
        optimizer.step(); optimizer.zero_grad(set_to_none=True)
        method.on_step_end(step, total_steps)   # momentum (EMA) teacher updates
    save(method.encoder)                  # the online backbone, same keys as Backbone.module

`optimizer_config()` gives the optimiser for a batch of 256 images:
``{"name": "sgd"|"adamw"|"adam"|"lars", "lr": float, "weight_decay": float, "warmup_epochs": int}``
plus optional ``"momentum"`` (sgd/lars), ``"betas"`` (adamw) and ``"clip_grad"`` (a max grad norm
the loop should apply, e.g. DINO on a ViT). `build_optimizer` scales lr linearly with the batch
(or takes `lr` as given), leaves biases and norm weights without weight decay, and only takes
trainable parameters (momentum copies are frozen).

Every hyperparameter a method accepts is in its `defaults` (``build_method(name, bb, **hparams)``
rejects others); the values used are in ``method.hparams``. Losses gather across ranks under DDP
(``gather_distributed=True`` by default; a no-op on a single process), every trainable parameter
receives a gradient each step (no ``find_unused_parameters``), and losses are computed in float32
even under bf16 autocast. A method that cannot learn from some images says so before the run trains
(`data_refusal`: colourisation refuses grey images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sslapp.models.backbones import Backbone, ViT


@dataclass(frozen=True)
class ViewSpec:
    """How `sslapp.ssl.augment.make_views` builds the views of one batch for a method.

    Views come back as ``n_global`` crops of ``global_size`` px followed by ``n_local`` crops of
    ``local_size`` px. `blur` and `solarize` hold one probability per global view (the last value is
    reused for further globals); local crops use `local_blur` and never solarize.
    """

    n_global: int = 2
    global_size: int = 32
    global_scale: tuple[float, float] = (0.2, 1.0)
    n_local: int = 0
    local_size: int = 0
    local_scale: tuple[float, float] = (0.05, 0.2)
    color: bool = True  # colour jitter (0.4, 0.4, 0.2, 0.1, p=0.8) + grayscale (p=0.2); off for MAE
    color_strength: float = 1.0
    flip: bool = True
    blur: tuple[float, ...] = (0.0, 0.0)
    local_blur: float = 0.0
    solarize: tuple[float, ...] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if self.n_global < 1:
            raise ValueError("a ViewSpec needs at least one global view")
        if self.n_local and self.local_size < 1:
            raise ValueError("local views need a local_size")


def local_crop_size(train_size: int, multiple: int = 1) -> int:
    """Local crop side for multi-crop: 3/7 of the global size (96/224 in SwAV and DINO), at least 8 px."""
    size = max(8, round(train_size * 3 / 7))
    return max(multiple, size // multiple * multiple)


BLUR_MIN_SIZE = 64


def blur_probs(train_size: int, *probs: float) -> tuple[float, ...]:
    """The ImageNet recipes' blur probabilities, or none below 64 px: a Gaussian blur of sigma up to
    2 px erases most of a 32 px image, and CIFAR recipes (e.g. solo-learn's) leave it out."""
    return probs if train_size >= BLUR_MIN_SIZE else tuple(0.0 for _ in probs)


def float32(x: Tensor) -> torch.autocast:
    """Turns autocast off on `x`'s device: losses with small temperatures, softmaxes and Sinkhorn
    iterations are computed in float32 even inside a bf16 training step."""
    return torch.autocast(x.device.type, enabled=False)


def is_vit(backbone: Backbone) -> bool:
    return isinstance(backbone.module, ViT)


class SSLMethod(nn.Module):
    """Base class: an online backbone plus the heads and loss of one self-supervised method.

    Subclasses set `name` and `defaults` (every accepted hyperparameter with its default value),
    build their heads in ``__init__`` and implement `loss`. Unknown hyperparameters are rejected
    so a typo in the CLI fails loudly instead of being ignored.
    """

    name: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__()
        unknown = sorted(set(hparams) - set(self.defaults))
        if unknown:
            raise ValueError(f"unknown hyperparameter(s) for {self.name}: {', '.join(unknown)}; "
                             f"accepted: {', '.join(sorted(self.defaults)) or 'none'}")
        self.hparams: dict[str, Any] = {**self.defaults, **hparams}
        self.backbone_info = backbone
        self.backbone = backbone.module

    @property
    def encoder(self) -> nn.Module:
        """The online backbone to save; its state dict matches `Backbone.module`."""
        return self.backbone

    @classmethod
    def data_refusal(cls, images: Any) -> str | None:
        """Why this method cannot learn from these uint8 (N, S, S, 3) training images (say what to do
        instead), or None; asked once before a run trains, e.g. colourisation on grey images."""
        return None

    def view_spec(self, train_size: int) -> ViewSpec:
        return ViewSpec(global_size=train_size)

    def forward(self, views: list[Tensor], epoch: int = 0) -> Tensor:
        return self.loss(views, epoch)

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        """Scalar loss of one batch; `views` are normalised float (B, 3, s, s) from `make_views`."""
        raise NotImplementedError

    def on_after_backward(self, epoch: int) -> None:
        """Called after ``backward()`` and before the optimiser step."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Called after each optimiser step; `step` counts from 0 over the whole run."""

    def optimizer_config(self) -> dict[str, Any]:
        if is_vit(self.backbone_info):
            return {"name": "adamw", "lr": 5e-4, "weight_decay": 0.05, "warmup_epochs": 1}
        return {"name": "sgd", "lr": 0.06, "momentum": 0.9, "weight_decay": 5e-4, "warmup_epochs": 0}


def build_optimizer(method: SSLMethod, batch_size: int, lr: float | None = None) -> torch.optim.Optimizer:
    """The method's optimiser with lr scaled linearly from a batch of 256 (or `lr` as given)."""
    from lightly.utils.lars import LARS

    cfg = method.optimizer_config()
    lr = cfg["lr"] * batch_size / 256 if lr is None else lr
    decay, no_decay = [], []
    for name, param in method.named_parameters():
        if not param.requires_grad:
            continue
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    groups = [{"params": decay, "weight_decay": cfg["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if cfg["name"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.get("momentum", 0.9))
    if cfg["name"] == "lars":
        return LARS(groups, lr=lr, momentum=cfg.get("momentum", 0.9))
    if cfg["name"] == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=tuple(cfg.get("betas", (0.9, 0.999))))
    if cfg["name"] == "adam":
        return torch.optim.Adam(groups, lr=lr)
    raise ValueError(f"unknown optimizer {cfg['name']!r} in {method.name}.optimizer_config()")
