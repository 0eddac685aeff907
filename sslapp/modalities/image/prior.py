"""Which starting encoder images get before labels can measure one against another, and why.

ImageNet on colour photos; pixels on grayscale, the only start whose typical picks beat random picks
on both mnist and pneumoniamnist. With the patch dictionary first, mnist gained (0.833 against 0.684
at 10 labels) but pneumoniamnist fell below random picks (0.648 against 0.722), and labels never moved
the choice to pixels there (docs/benchmarks.md, "Choosing the embedding").
"""

from __future__ import annotations

import numpy as np

COLOUR_ORDER = ("imagenet", "patches", "pixels")
GRAY_ORDER = ("pixels", "patches", "imagenet")


def is_grayscale(images: np.ndarray, sample: int = 256, seed: int = 0) -> bool:
    """Whether (almost) every pixel of a sample of uint8 (N, S, S, 3) images has R == G == B."""
    n = len(images)
    if n == 0:
        return False
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(n, sample), replace=False))
    x = np.asarray(images[rows]).astype(np.int16)
    if x.shape[-1] == 1:
        return True
    spread = np.abs(x[..., 0] - x[..., 1]) + np.abs(x[..., 1] - x[..., 2])
    return float((spread > 6).mean()) < 0.01


def prior_order(images: np.ndarray) -> tuple[str, ...]:
    """The image starts, most trusted first, for these cached images (samples a few rows)."""
    return GRAY_ORDER if is_grayscale(images) else COLOUR_ORDER
