"""Batched view generation on the training device: no per-image PIL in the hot loop.

`make_views(batch, spec, seed)` turns one cache batch (uint8 (B, S, S, 3) straight from the memmap,
or floats (B, 3, S, S) in [0, 1]) into the normalised views a method's `ViewSpec` asks for: random
resized crop + horizontal flip (one `grid_sample` per view), colour jitter (0.4, 0.4, 0.2, 0.1,
p=0.8, random order per image) and grayscale (p=0.2) folded into one affine colour map per image,
Gaussian blur (sigma 0.1-2, separable) and solarize with per-view probabilities, then ImageNet
normalisation.

Why not kornia's random augmentation modules: on a CPU their per-call parameter sampling and
dispatch cost about 3x the CPU time of the same maths written as whole-batch tensor ops here
(`benchmarks/bench_augment.py`); kornia's filter is the reference the blur is tested against.
Parameters are drawn from a private CPU `torch.Generator`, so the views depend only on
(batch, spec, seed), the random parameters are the same on CPU and GPU, and the global RNG is never
touched: a resumed run sees the views an uninterrupted one would have seen.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
from sslapp.ssl.methods.base import ViewSpec

LUMA = (0.299, 0.587, 0.114)
# RGB <-> YIQ: a hue shift is a rotation of the (I, Q) chroma plane, a linear map per image.
_RGB2YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ2RGB = torch.linalg.inv(_RGB2YIQ)


def blur_kernel_size(size: int) -> int:
    """Odd kernel of about 10% of the crop side, as in SimCLR."""
    return max(3, int(0.1 * size) // 2 * 2 + 1)


def as_rgb_rows(batch: Tensor) -> Tensor:
    """uint8 grey rows (B, H, W), sounds' log-mel pictures, -> (B, H, W, 3), the picture in every channel as
    their modality feeds it to an encoder (an expanded view, no copy); (B, S, S, 3) images unchanged."""
    return batch.unsqueeze(-1).expand(-1, -1, -1, 3) if batch.ndim == 3 else batch


def to_float_images(batch: Tensor) -> Tensor:
    """uint8 (B, S, S, 3) or float (B, 3, S, S) in [0, 1] -> contiguous float (B, 3, S, S) in [0, 1]."""
    if batch.ndim != 4:
        raise ValueError(f"expected a batch of images with 4 dimensions, got shape {tuple(batch.shape)}")
    if batch.dtype == torch.uint8:
        if batch.shape[-1] != 3:
            raise ValueError(f"uint8 batches must be (B, S, S, 3), got {tuple(batch.shape)}")
        return batch.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
    if not batch.is_floating_point() or batch.shape[1] != 3:
        raise ValueError(f"float batches must be (B, 3, S, S) in [0, 1], got {batch.dtype} {tuple(batch.shape)}")
    return batch.float().contiguous()


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def crop_boxes(g: torch.Generator, n: int, height: int, width: int, scale: tuple[float, float],
               ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> Tensor:
    """torchvision's RandomResizedCrop box sampling, vectorised: (n, 4) float [top, left, h, w]."""
    area = height * width
    target = area * (torch.rand(n, attempts, generator=g) * (scale[1] - scale[0]) + scale[0])
    log_r = torch.rand(n, attempts, generator=g) * (math.log(ratio[1]) - math.log(ratio[0])) + math.log(ratio[0])
    r = torch.exp(log_r)
    w = torch.sqrt(target * r).round()
    h = torch.sqrt(target / r).round()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1))
    idx = first.clamp(min=0).unsqueeze(1)
    h = torch.where(first >= 0, h.gather(1, idx).squeeze(1), torch.tensor(float(height)))
    w = torch.where(first >= 0, w.gather(1, idx).squeeze(1), torch.tensor(float(width)))
    top = torch.floor(torch.rand(n, generator=g) * (height - h + 1))
    left = torch.floor(torch.rand(n, generator=g) * (width - w + 1))
    return torch.stack([top, left, h, w], dim=1)


def resized_crop(images: Tensor, boxes: Tensor, flip: Tensor, size: int) -> Tensor:
    """Crop each image to its box, mirror where `flip`, and resample to size x size (bilinear)."""
    _, _, height, width = images.shape
    top, left, h, w = boxes.to(images.device).unbind(1)
    sx = w / width * torch.where(flip.to(images.device), -1.0, 1.0)
    cx = (2 * left + w) / width - 1
    cy = (2 * top + h) / height - 1
    zero = torch.zeros_like(sx)
    theta = torch.stack([torch.stack([sx, zero, cx], 1), torch.stack([zero, h / height, cy], 1)], 1)
    grid = F.affine_grid(theta, [images.shape[0], 3, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _luma_matrix(device: torch.device) -> Tensor:
    """3x3 map from RGB to its luma in every channel."""
    return torch.tensor(LUMA, device=device).expand(3, 3).contiguous()


def color_transform(mean_rgb: Tensor, g: torch.Generator, strength: float = 1.0, jitter_p: float = 0.8,
                    gray_p: float = 0.2) -> tuple[Tensor, Tensor]:
    """Per-image affine colour map (A (n, 3, 3), t (n, 3)) for SimCLR's jitter + random grayscale.

    Brightness (0.4), contrast (0.4), saturation (0.2) and hue (0.1) are all affine in RGB (contrast
    blends towards the mean luma, hue rotates the YIQ chroma plane), so the whole chain, applied to
    `jitter_p` of the images in a random order per image as torchvision does, folds into one map
    that the caller applies in a single pass. Unlike torchvision there is one clamp at the end,
    not one per step. `mean_rgb` (n, 3) is each image's mean colour, which contrast needs.
    """
    n, device = mean_rgb.shape[0], mean_rgb.device
    apply = torch.rand(n, generator=g) < jitter_p
    b, c, s, h = 0.4 * strength, 0.4 * strength, 0.2 * strength, 0.1 * strength

    def factor(lo: float, hi: float, neutral: float) -> Tensor:
        f = torch.rand(n, generator=g) * (hi - lo) + lo
        return torch.where(apply, f, torch.tensor(neutral)).to(device).view(n, 1, 1)

    brightness, contrast = factor(max(0.0, 1 - b), 1 + b, 1.0), factor(max(0.0, 1 - c), 1 + c, 1.0)
    saturation, angle = factor(max(0.0, 1 - s), 1 + s, 1.0), factor(-h, h, 0.0).view(n) * 2 * math.pi
    order = torch.argsort(torch.rand(n, 4, generator=g), dim=1).to(device)
    gray_on = (torch.rand(n, generator=g) < gray_p).to(device).view(n, 1, 1)

    eye = torch.eye(3, device=device).expand(n, 3, 3)
    luma = _luma_matrix(device)
    sat = saturation * eye + (1 - saturation) * luma
    rot = torch.zeros(n, 3, 3, device=device)
    rot[:, 0, 0] = 1
    rot[:, 1, 1], rot[:, 1, 2] = torch.cos(angle), -torch.sin(angle)
    rot[:, 2, 1], rot[:, 2, 2] = torch.sin(angle), torch.cos(angle)
    hue = _YIQ2RGB.to(device) @ rot @ _RGB2YIQ.to(device)
    lin = {0: brightness * eye, 2: sat, 3: hue}

    A, t = eye.clone(), torch.zeros(n, 3, 1, device=device)
    mu = mean_rgb.view(n, 3, 1)
    for slot in range(4):
        op = order[:, slot].view(n, 1, 1)
        new_A, new_t = A.clone(), t.clone()
        for k, m in lin.items():
            new_A = torch.where(op == k, m @ A, new_A)
            new_t = torch.where(op == k, m @ t, new_t)
        gray_mean = (luma[:1] @ (A @ mu + t))  # (n, 1, 1): mean luma of the current image
        new_A = torch.where(op == 1, contrast * A, new_A)
        new_t = torch.where(op == 1, contrast * t + (1 - contrast) * gray_mean, new_t)
        A, t = new_A, new_t
    A = torch.where(gray_on, luma @ A, A)
    t = torch.where(gray_on, luma @ t, t)
    return A, t.view(n, 3)


def apply_color(x: Tensor, A: Tensor, t: Tensor) -> Tensor:
    n, _, height, width = x.shape
    out = torch.baddbmm(t.unsqueeze(2), A, x.reshape(n, 3, height * width))
    return out.view(n, 3, height, width).clamp_(0, 1)


def gaussian_blur(x: Tensor, sigma: Tensor, kernel_size: int) -> Tensor:
    """Separable Gaussian blur with one sigma per image (reflect padding), as weighted shifted sums:
    for the small kernels used here this is several times faster on a CPU than a grouped conv."""
    n, _, height, width = x.shape
    half = kernel_size // 2
    offsets = torch.arange(kernel_size, device=x.device, dtype=x.dtype) - half
    kernel = torch.exp(-offsets.view(1, -1) ** 2 / (2 * sigma.to(x.device, x.dtype).view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).view(n, 1, 1, 1, kernel_size)
    y = F.pad(x, (half, half, 0, 0), mode="reflect")
    x = sum(kernel[..., j] * y[..., j:j + width] for j in range(kernel_size))
    y = F.pad(x, (0, 0, half, half), mode="reflect")
    return sum(kernel[..., j] * y[..., j:j + height, :] for j in range(kernel_size))


def random_blur(x: Tensor, g: torch.Generator, p: float) -> Tensor:
    """Gaussian blur with sigma ~ U(0.1, 2.0) on a random p of the images (only those are filtered)."""
    n = x.shape[0]
    sigma = torch.rand(n, generator=g) * 1.9 + 0.1
    chosen = (torch.rand(n, generator=g) < p).nonzero().squeeze(1)
    if chosen.numel() == 0:
        return x
    idx = chosen.to(x.device)
    x[idx] = gaussian_blur(x[idx], sigma[chosen], blur_kernel_size(x.shape[-1]))
    return x


def random_solarize(x: Tensor, g: torch.Generator, p: float) -> Tensor:
    """Invert pixels at or above 0.5 in a random p of the images."""
    chosen = (torch.rand(x.shape[0], generator=g) < p).nonzero().squeeze(1)
    if chosen.numel():
        idx = chosen.to(x.device)
        sub = x[idx]
        x[idx] = torch.where(sub >= 0.5, 1 - sub, sub)
    return x


def augment(images: Tensor, g: torch.Generator, size: int, scale: tuple[float, float], spec: ViewSpec,
            blur_p: float, solarize_p: float) -> Tensor:
    """One view of every image in `images` (float [0, 1]), normalised."""
    n, _, height, width = images.shape
    boxes = crop_boxes(g, n, height, width, scale)
    flip = torch.rand(n, generator=g) < (0.5 if spec.flip else 0.0)
    x = resized_crop(images, boxes, flip, size).clamp_(0, 1)
    if spec.color:
        A, t = color_transform(x.mean(dim=(2, 3)), g, spec.color_strength)
        x = apply_color(x, A, t)
    if blur_p > 0:
        x = random_blur(x, g, blur_p)
    if solarize_p > 0:
        x = random_solarize(x, g, solarize_p)
    mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std)


@torch.no_grad()
def make_views(batch: Tensor, spec: ViewSpec, seed: int | None = None) -> list[Tensor]:
    """The views `spec` describes for `batch`, on the batch's device: globals first, then locals.

    Each view is an independently augmented float (B, 3, size, size) tensor, normalised with the
    ImageNet mean and std. With `seed` the result is reproducible; without it, it draws a seed from
    the global RNG (so `torch.manual_seed` still makes a whole run reproducible).
    """
    images = to_float_images(batch)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    g = torch.Generator().manual_seed(seed)

    # Views are built in float32 even inside a training step's bf16 autocast region.
    with torch.autocast(images.device.type, enabled=False):
        return _views(images, g, spec)


def _prob(probs: tuple[float, ...], i: int) -> float:
    """The probability for global view i: the last value repeats for further views."""
    return probs[min(i, len(probs) - 1)] if probs else 0.0


def _views(images: Tensor, g: torch.Generator, spec: ViewSpec) -> list[Tensor]:
    views = [augment(images, g, spec.global_size, spec.global_scale, spec, _prob(spec.blur, i),
                     _prob(spec.solarize, i)) for i in range(spec.n_global)]
    views += [augment(images, g, spec.local_size, spec.local_scale, spec, spec.local_blur, 0.0)
              for _ in range(spec.n_local)]
    return views
