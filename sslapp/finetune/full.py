"""Full fine-tuning: the pretrained encoder and a linear head trained end to end on the labels.

Recipe (chosen for few labels):
- the head starts from the linear probe (LP-FT, Kumar et al. 2022), so fine-tuning begins
  where the probe ended instead of wrecking the pretrained features with a random head;
- the encoder learns 10x slower than the head (AdamW), BatchNorm statistics stay frozen
  (batches of a few labelled images would make them noise);
- batched augmentation on the training device from the uint8 cache (random resized crop with
  scale 0.5-1, horizontal flip, mild brightness/contrast/saturation), using the SSL
  pipeline's crop kernels;
- class-weighted cross-entropy (balanced) times per-sample weights (pseudo-labels count less);
- early stopping on the validation loss of a stratified held-out split, best weights restored;
  with too few labels for a split (fewer than 3 in most classes), a fixed short schedule of
  at most TINY_EPOCHS epochs, as there is nothing to stop on;
- bf16 autocast on CUDA.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sslapp.estimators.linear import LinearProbe
from sslapp.finetune.model import Classifier
from sslapp.models.encoder import Encoder
from sslapp.ssl.augment import crop_boxes, resized_crop, to_float_images

TINY_EPOCHS = 10


@dataclass
class FullConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3  # head; the encoder gets lr * encoder_lr_scale
    encoder_lr_scale: float = 0.1
    weight_decay: float = 1e-4
    patience: int = 5
    val_fraction: float = 0.2
    min_steps_per_epoch: int = 4
    crop_scale: tuple[float, float] = (0.5, 1.0)
    jitter_strength: float = 0.5
    eval_batch_size: int = 256


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def balanced_class_weights(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """n / (n_present * count) per class, as sklearn's 'balanced'; 0 for classes without labels."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(n_classes)
    w[present] = len(labels) / (present.sum() * counts[present])
    return w


def holdout_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, val) positions; classes with < 2 labels stay in train. Empty val if too few."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        pos = rng.permutation(np.flatnonzero(labels == c))
        n_val = int(round(fraction * len(pos))) if len(pos) >= 2 else 0
        n_val = min(max(n_val, 1 if len(pos) >= 3 else 0), len(pos) - 1)
        val.append(pos[:n_val])
        train.append(pos[n_val:])
    val_arr = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    if len(np.unique(labels[val_arr])) < 2:  # a split that tests one class cannot steer anything
        return np.arange(len(labels)), np.zeros(0, np.int64)
    return np.sort(np.concatenate(train)), val_arr


def augment_batch(images: torch.Tensor, g: torch.Generator, config: FullConfig) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> augmented floats (B, 3, S, S) in [0, 1] at the same size."""
    x = to_float_images(images)
    n, _, h, w = x.shape
    boxes = crop_boxes(g, n, h, w, config.crop_scale)
    flip = torch.rand(n, generator=g) < 0.5
    x = resized_crop(x, boxes, flip, h).clamp_(0, 1)
    if config.jitter_strength > 0:
        x = mild_jitter(x, g, config.jitter_strength)
    return x


def mild_jitter(x: torch.Tensor, g: torch.Generator, strength: float, p: float = 0.5) -> torch.Tensor:
    """Brightness, contrast and saturation factors in 1 +- 0.4*strength on a random p of the images.
    No hue shift or grayscale: with labels, colour may be what tells the classes apart."""
    n = x.shape[0]
    apply = (torch.rand(n, generator=g) < p).float()

    def factor() -> torch.Tensor:
        f = 1 + (torch.rand(n, generator=g) * 2 - 1) * 0.4 * strength
        return (1 + apply * (f - 1)).to(x.device).view(n, 1, 1, 1)

    luma = x.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1)
    x = x * factor()
    mean = (x * luma).sum(1, keepdim=True).mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * factor() + mean
    gray = (x * luma).sum(1, keepdim=True)
    return ((x - gray) * factor() + gray).clamp_(0, 1)


def _freeze_batchnorm(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _gather(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    order = np.argsort(rows)
    out = np.empty((len(rows), *images.shape[1:]), dtype=np.uint8)
    out[order] = np.asarray(images[rows[order]])
    return out


@torch.inference_mode()
def predict_images(model: Classifier, images: np.ndarray, rows: np.ndarray, device: torch.device | None = None,
                   batch_size: int = 256, check_stop: Callable[[], None] | None = None,
                   progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Probabilities (len(rows), C) for cache rows, as the exported model computes them (float32)."""
    device = device or default_device()
    model = model.to(device).eval()
    out = np.zeros((len(rows), len(model.classes)), np.float32)
    for start in range(0, len(rows), batch_size):
        if check_stop:
            check_stop()
        batch = torch.from_numpy(_gather(images, rows[start:start + batch_size])).to(device)
        out[start:start + len(batch)] = model(to_float_images(batch)).float().cpu().numpy()
        if progress:
            progress(min(start + batch_size, len(rows)), len(rows))
    return out


def _features(encoder: Encoder, images: np.ndarray, rows: np.ndarray, device: torch.device) -> np.ndarray:
    encoder = encoder.to(device).eval()
    feats = []
    with torch.inference_mode():
        for start in range(0, len(rows), 256):
            batch = torch.from_numpy(_gather(images, rows[start:start + 256])).to(device)
            feats.append(encoder(to_float_images(batch)).float().cpu().numpy())
    return np.concatenate(feats) if feats else np.zeros((0, encoder.dim), np.float32)


def fine_tune(encoder: Encoder, images: np.ndarray, rows: np.ndarray, labels: np.ndarray, classes: list[str], *,
              sample_weight: np.ndarray | None = None, config: FullConfig | None = None,
              device: torch.device | str | None = None, seed: int = 0,
              on_epoch: Callable[[dict[str, Any]], None] | None = None,
              check_stop: Callable[[], None] | None = None) -> tuple[Classifier, dict[str, Any]]:
    """Fine-tune a copy of `encoder` with a head on cache `rows` labelled `labels` (0..C-1).

    `sample_weight` down-weights pseudo-labelled rows (1.0 for a person's labels). Rows with
    weight < 1 never enter the validation split. Returns the classifier (best epoch) and a history.
    """
    config = config or FullConfig()
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(seed)
    rows = np.asarray(rows, np.int64)
    labels = np.asarray(labels, np.int64)
    n_classes = len(classes)
    weights = np.ones(len(rows)) if sample_weight is None else np.asarray(sample_weight, np.float64)
    real = np.flatnonzero(weights >= 1.0)
    tr_real, val_real = holdout_split(labels[real], config.val_fraction, seed)
    val = real[val_real]
    train = np.setdiff1d(np.arange(len(rows)), val)

    model = Classifier(copy.deepcopy(encoder), classes, normalize=True).to(device)
    # LP-FT: the head starts from a linear probe on the (frozen) features of the training rows.
    feats = _features(model.encoder, images, rows[train], device)
    probe = LinearProbe(n_classes, seed=seed).fit(feats, labels[train], sample_weight=weights[train])
    with torch.no_grad():
        model.head.weight.copy_(torch.from_numpy(probe.coef_).float())
        model.head.bias.copy_(torch.from_numpy(np.maximum(probe.intercept_, -30.0)).float())

    cw = torch.tensor(balanced_class_weights(labels[train], n_classes), dtype=torch.float32, device=device)
    opt = torch.optim.AdamW([
        {"params": model.encoder.parameters(), "lr": config.lr * config.encoder_lr_scale},
        {"params": model.head.parameters(), "lr": config.lr},
    ], weight_decay=config.weight_decay)
    steps_per_epoch = max(config.min_steps_per_epoch, math.ceil(len(train) / config.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(
        opt, T_max=(config.epochs if len(val) else min(config.epochs, TINY_EPOCHS)) * steps_per_epoch)
    use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    g = torch.Generator().manual_seed(seed)
    val_images = torch.from_numpy(_gather(images, rows[val])).to(device) if len(val) else None
    val_labels = torch.from_numpy(labels[val]).to(device) if len(val) else None

    epochs = config.epochs if len(val) else min(config.epochs, TINY_EPOCHS)
    history: dict[str, Any] = {"epochs": [], "val_size": int(len(val)), "train_size": int(len(train)),
                               "early_stopping": bool(len(val)), "device": str(device), "bf16": use_bf16}
    best_state, best_loss, best_epoch, bad = None, math.inf, 0, 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        _freeze_batchnorm(model)
        total, count = 0.0, 0
        for _ in range(steps_per_epoch):
            if check_stop:
                check_stop()
            pick = train[torch.randint(len(train), (min(config.batch_size, len(train)),), generator=g).numpy()]
            x = augment_batch(torch.from_numpy(_gather(images, rows[pick])).to(device), g, config)
            y = torch.from_numpy(labels[pick]).to(device)
            w = torch.from_numpy(weights[pick]).float().to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model.logits(x)
            loss = (F.cross_entropy(logits.float(), y, weight=cw, reduction="none") * w).sum() / (cw[y] * w).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total, count = total + float(loss.detach()) * len(pick), count + len(pick)
        record = {"epoch": epoch, "epochs": epochs, "train_loss": total / max(count, 1),
                  "seconds": time.perf_counter() - t0}
        if val_images is not None:
            model.eval()
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                logits = model.logits(to_float_images(val_images)).float()
            record["val_loss"] = float(F.cross_entropy(logits, val_labels, weight=cw))
            record["val_accuracy"] = float((logits.argmax(1) == val_labels).float().mean())
            if record["val_loss"] < best_loss - 1e-4:
                best_loss, best_epoch, bad = record["val_loss"], epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                bad += 1
        history["epochs"].append(record)
        if on_epoch:
            on_epoch(record)
        if val_images is not None and bad >= config.patience:
            history["stopped_early"] = epoch
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    history["best_epoch"] = best_epoch or len(history["epochs"])
    return model.eval(), history
