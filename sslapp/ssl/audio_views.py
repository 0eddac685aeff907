"""Training views of sounds' log-mel pictures, for every SSL method that trains on them (BYOL-A's recipe,
Niizumi et al. 2021, plus views that change the voice and keep the word).

Each view of a uint8 (B, MELS, FRAMES) batch, in this order:
- mixing: another clip of the batch is added underneath, at 0-40% of the power (BYOL-A's mixup, in the
  power domain: log(exp(a) + r exp(b))), so a view keeps the foreground sound over a new background;
- a random crop in time and frequency, resized back (BYOL-A's random resize crop): a time stretch of
  0.8-1.25 (speed), a frequency stretch of 0.87-1.15 (vocal-tract length, VTLP-like) and a shift of up
  to +-3 mel bands (pitch), and a shift in time;
- gain: +-6 dB, and a random equaliser: a tilt of up to +-8 dB from the lowest band to the highest and a
  bump of up to +-6 dB somewhere (another microphone or room colours the same word);
- SpecAugment: two frequency masks of up to 8 bands and two time masks of up to 10 frames (of the cached
  64 x 64 picture, scaled to the view's size).
The result is a grey 3-channel picture at the method's size, ImageNet-normalised, as the encoders read.
Built from affine grids and elementwise ops, so views run on the batch's device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from sslapp.modalities.audio.frontend import DB_CEIL, DB_FLOOR, FRAMES, MELS
from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
from sslapp.ssl.methods.base import ViewSpec

DB_PER_UNIT = DB_CEIL - DB_FLOOR  # a row's [0, 1] spans this many dB
MIX_MAX = 0.4
SPEED = (0.8, 1.25)
VTLP = (0.87, 1.15)
PITCH_BANDS = 3.0
GAIN_DB = 6.0
TILT_DB, BUMP_DB = 8.0, 6.0
SILENCE = 6.0 / DB_PER_UNIT  # within 6 dB of the floor (-100 dB): digital silence, not sound
FREQ_MASKS, FREQ_MASK_MAX = 2, 8
TIME_MASKS, TIME_MASK_MAX = 2, 10


def to_unit(batch: Tensor) -> Tensor:
    """uint8 (B, M, T) or float (B, 3, M, T) / (B, M, T) in [0, 1] -> float (B, 1, M, T) in [0, 1]."""
    if batch.dtype == torch.uint8:
        if batch.ndim != 3:
            raise ValueError(f"uint8 sound batches must be (B, mels, frames), got {tuple(batch.shape)}")
        return batch.float().div_(255.0).unsqueeze(1)
    if batch.ndim == 4:
        return batch[:, :1].float()
    if batch.ndim == 3:
        return batch.float().unsqueeze(1)
    raise ValueError(f"expected a batch of log-mel pictures, got shape {tuple(batch.shape)}")


def _uniform(g: torch.Generator, n: int, lo: float, hi: float) -> Tensor:
    return torch.rand(n, generator=g) * (hi - lo) + lo


def _mix(x: Tensor, g: torch.Generator) -> Tensor:
    """Add another clip of the batch underneath each clip, at a random 0-MIX_MAX of its power."""
    b = x.shape[0]
    if b < 2:
        return x
    other = x[torch.randperm(b, generator=g).to(x.device)]
    ratio = _uniform(g, b, 0.0, MIX_MAX).to(x.device).view(b, 1, 1, 1)
    scale = DB_PER_UNIT / 10.0 * math.log(10.0)  # [0, 1] units -> natural log of power
    mixed = torch.logaddexp(x * scale, other * scale + torch.log(ratio.clamp_min(1e-6))) / scale
    return mixed.clamp(0.0, 1.0)


def _warp(x: Tensor, g: torch.Generator, size: int, scale: tuple[float, float]) -> Tensor:
    """Speed, VTLP-like frequency stretch, pitch shift and a time shift, by one affine grid per clip,
    sampled at `size` x `size`; `scale` narrows the time span seen (local views see less of the clip)."""
    b, _, mels, frames = x.shape
    span = _uniform(g, b, *scale).sqrt()  # the share of the time axis seen, as a crop's side
    speed = torch.exp(_uniform(g, b, math.log(SPEED[0]), math.log(SPEED[1])))
    time_scale = (span * speed).clamp(max=1.5)  # faster speech: more of the clip in the same frames
    time_shift = _uniform(g, b, -1.0, 1.0) * (1 - time_scale).abs()
    freq_scale = _uniform(g, b, *VTLP)
    freq_shift = _uniform(g, b, -1.0, 1.0) * (PITCH_BANDS * 2 / mels)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = time_scale, time_shift  # grid x: frames
    theta[:, 1, 1], theta[:, 1, 2] = freq_scale, freq_shift + (freq_scale - 1)  # grid y: bands, low end fixed
    grid = F.affine_grid(theta.to(x.device), [b, 1, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _masks(x: Tensor, g: torch.Generator) -> Tensor:
    """SpecAugment: zero (silence) FREQ_MASKS bands and TIME_MASKS frame spans of random width."""
    b, _, mels, frames = x.shape
    keep = torch.ones(b, 1, mels, frames)
    for axis, count, widest, length, full in ((2, FREQ_MASKS, FREQ_MASK_MAX, mels, MELS),
                                              (3, TIME_MASKS, TIME_MASK_MAX, frames, FRAMES)):
        widest = max(1, min(round(widest * length / full), length // 4))  # widths in the cached picture's units
        for _ in range(count):
            width = torch.randint(0, widest + 1, (b,), generator=g)
            start = (torch.rand(b, generator=g) * (length - width + 1)).long()
            pos = torch.arange(length).view(1, -1)
            hit = ((pos >= start.view(-1, 1)) & (pos < (start + width).view(-1, 1))).float()
            keep = keep * (1 - (hit.view(b, 1, length, 1) if axis == 2 else hit.view(b, 1, 1, length)))
    return x * keep.to(x.device)


def _colour(g: torch.Generator, b: int, bands: int) -> Tensor:
    """(B, 1, bands, 1) offsets in [0, 1] units: a gain, a tilt across the bands and a bump at a random band."""
    pos = torch.linspace(-1.0, 1.0, bands).view(1, bands)
    gain = _uniform(g, b, -GAIN_DB, GAIN_DB).view(b, 1)
    tilt = _uniform(g, b, -TILT_DB / 2, TILT_DB / 2).view(b, 1) * pos
    centre, width = _uniform(g, b, -1.0, 1.0).view(b, 1), _uniform(g, b, 0.1, 0.4).view(b, 1)
    bump = _uniform(g, b, -BUMP_DB, BUMP_DB).view(b, 1) * torch.exp(-((pos - centre) / width) ** 2)
    return ((gain + tilt + bump) / DB_PER_UNIT).view(b, 1, bands, 1)


def augment(x: Tensor, g: torch.Generator, size: int, scale: tuple[float, float]) -> Tensor:
    """One view of float (B, 1, M, T) pictures in [0, 1]: ImageNet-normalised float (B, 3, size, size)."""
    b = x.shape[0]
    view = _warp(_mix(x, g), g, size, scale)
    sound = view > SILENCE  # the padding (and what mixing lifted of it) stays silence
    view = torch.where(sound, (view + _colour(g, b, size).to(x.device)).clamp(0.0, 1.0), view)
    view = _masks(view, g).expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return ((view - mean) / std).contiguous()


def make_views(batch: Tensor, spec: ViewSpec, seed: int | None = None) -> list[Tensor]:
    """The views `spec` asks for (its counts, sizes and scales; colour, blur and flips mean nothing for a
    spectrogram) of a batch of log-mel pictures: globals first, then locals. Reproducible with `seed`."""
    x = to_unit(batch)
    if seed is None:
        seed = int(torch.randint(0, 2**62, (1,)).item())
    g = torch.Generator().manual_seed(seed)
    global_scale = (max(0.5, spec.global_scale[0]), 1.0)  # a word cut to a fifth is no longer the word
    with torch.autocast(x.device.type, enabled=False):
        views = [augment(x, g, spec.global_size, global_scale) for _ in range(spec.n_global)]
        views += [augment(x, g, spec.local_size, spec.local_scale) for _ in range(spec.n_local)]
    return views
