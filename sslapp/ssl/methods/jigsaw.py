"""Jigsaw puzzles (Noroozi & Favaro, 2016, "Unsupervised Learning of Visual Representations by Solving
Jigsaw Puzzles"): each image is cut into a 3x3 grid of tiles, the tiles are shuffled by one of P fixed
permutations, the shared backbone embeds every tile on its own, and a small head on the 9 concatenated
tile features names the permutation. The backbone alone is kept and is applied to whole images.

Shortcuts the paper closes, kept here: a random gap between tiles (each tile is a random crop of its
cell, so edges do not line up), per-tile normalisation of each channel's mean and spread (low-level
statistics and chromatic aberration do not give the position away), colour jitter and random grayscale
on the view. The permutations are chosen once, greedily from all 9! for the largest Hamming distance
to those already chosen (the paper's Algorithm 1 maximises the average distance; the minimum first,
then the average, also guarantees that no two are near-identical); 100 give the paper's average
distance (8.08) and a minimum of 6.

Tiles are a third of the training size (10 px at 32 px): they are resized to at least `min_tile` px
(and to a multiple of a ViT's patch), so a backbone's deeper layers still see more than one pixel.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslapp.models.backbones import Backbone
from sslapp.ssl.methods.base import SSLMethod, ViewSpec, float32, is_vit

GRID = 3
N_TILES = GRID * GRID
MIN_IMAGE = 4 * GRID  # cells of 4 px: 3 px tiles after the gap, the least that holds a pattern
PERMUTATION_SEED = 0  # fixed: the head's class k means the same permutation in every run


@lru_cache(maxsize=4)
def permutation_set(n: int, seed: int = PERMUTATION_SEED) -> np.ndarray:
    """`n` permutations of the 9 tiles (int64 (n, 9)), each the farthest of all 9! in Hamming distance
    from those chosen before it (largest minimum distance, ties to the largest total), from a seeded start."""
    if not 1 < n <= 1000:
        raise ValueError(f"permutations must be between 2 and 1000, got {n}")
    every = np.fromiter(itertools.chain.from_iterable(itertools.permutations(range(N_TILES))), dtype=np.int8,
                        count=N_TILES * 362_880).reshape(-1, N_TILES)
    columns = np.ascontiguousarray(every.T)  # (9, 9!): which tile each permutation puts at each position
    nearest = np.full(len(every), N_TILES, np.int32)  # Hamming distance to the nearest chosen one
    total = np.zeros(len(every), np.int32)  # summed Hamming distance to the chosen ones
    pick = int(np.random.default_rng(seed).integers(len(every)))
    chosen = []
    for _ in range(n):
        chosen.append(pick)
        same = np.zeros(len(every), np.int8)
        for position, tile in enumerate(every[pick]):
            same += columns[position] == tile
        distance = N_TILES - same.astype(np.int32)
        np.minimum(nearest, distance, out=nearest)
        total += distance
        pick = int(np.argmax(nearest * (N_TILES * n + 1) + total))  # chosen ones have nearest == 0
    return every[chosen].astype(np.int64)


def cut_tiles(x: Tensor, gap: int, offsets: Tensor | None = None) -> Tensor:
    """(B, C, S, S) -> (B, 9, C, t, t) tiles, row-major: the central 3x3 cells of S // 3 px, each cropped
    to t = cell - gap px at `offsets` (B, 9, 2) in [0, gap] within its cell (random when None)."""
    b, c, s, _ = x.shape
    cell = s // GRID
    side = cell - gap
    if side < 1:
        raise ValueError(f"a {s} px image has cells of {cell} px, too small for a gap of {gap} px")
    if offsets is None:
        offsets = torch.randint(0, gap + 1, (b, N_TILES, 2), device=x.device)
    start = (s - GRID * cell) // 2
    line = torch.arange(GRID, device=x.device)
    top = start + cell * line.repeat_interleave(GRID) + offsets[..., 0]  # (B, 9): tile i is in row i // 3
    left = start + cell * line.repeat(GRID) + offsets[..., 1]  # and in column i % 3
    step = torch.arange(side, device=x.device)
    rows = (top[..., None] + step)[..., :, None]  # (B, 9, t, 1)
    cols = (left[..., None] + step)[..., None, :]  # (B, 9, 1, t)
    batch = torch.arange(b, device=x.device).view(b, 1, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 1, 4, 2, 3)  # (B, 9, C, t, t)


def shuffle_tiles(tiles: Tensor, perms: Tensor) -> Tensor:
    """Position i of image b gets tile ``perms[b, i]``: (B, 9, ...) tiles, (B, 9) permutations."""
    index = perms.view(*perms.shape, *([1] * (tiles.ndim - 2))).expand_as(tiles)
    return tiles.gather(1, index)


def unshuffle_tiles(tiles: Tensor, perms: Tensor) -> Tensor:
    """The inverse of `shuffle_tiles`: the tiles back in their original positions."""
    return shuffle_tiles(tiles, torch.argsort(perms, dim=1))


def normalise_tiles(tiles: Tensor, eps: float = 1e-5) -> Tensor:
    """Each tile's channels to zero mean and unit spread (the paper normalises every tile on its own)."""
    mean = tiles.mean(dim=(-2, -1), keepdim=True)
    std = tiles.std(dim=(-2, -1), keepdim=True)
    return (tiles - mean) / (std + eps)


class Jigsaw(SSLMethod):
    name = "jigsaw"
    defaults: dict[str, Any] = {"permutations": 100, "gap": 0.15, "min_tile": 16, "tile_dim": 128,
                                "hidden_dim": 512}

    def __init__(self, backbone: Backbone, **hparams: Any):
        super().__init__(backbone, **hparams)
        hp = self.hparams
        if backbone.image_size < MIN_IMAGE:
            raise ValueError(f"cutting images into 3x3 tiles needs a training size of at least "
                             f"{MIN_IMAGE} px, not {backbone.image_size} px; use a larger --train-size")
        if not 0 <= hp["gap"] < 1:
            raise ValueError(f"gap is a share of a tile's cell, between 0 and 1; got {hp['gap']}")
        self.register_buffer("perms", torch.from_numpy(permutation_set(int(hp["permutations"]))))
        cell = backbone.image_size // GRID
        self.gap = min(cell - 3, max(1, round(cell * hp["gap"]))) if hp["gap"] > 0 else 0
        multiple = backbone.module.patch_size if is_vit(backbone) else 1
        side = max(cell - self.gap, int(hp["min_tile"]))
        self.tile_size = -(-side // multiple) * multiple  # what the backbone sees per tile
        self.tile_head = nn.Sequential(nn.Linear(backbone.dim, hp["tile_dim"]), nn.ReLU(inplace=True))
        self.classifier = nn.Sequential(
            nn.Linear(N_TILES * hp["tile_dim"], hp["hidden_dim"]), nn.BatchNorm1d(hp["hidden_dim"]),
            nn.ReLU(inplace=True), nn.Linear(hp["hidden_dim"], len(self.perms)))

    def view_spec(self, train_size: int) -> ViewSpec:
        # One view; the crop, flip and colour jitter are shared by its tiles, so the puzzle is unchanged.
        return ViewSpec(n_global=1, global_size=train_size, global_scale=(0.5, 1.0), blur=(0.0,),
                        solarize=(0.0,))

    def puzzles(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 3, S, S) views -> (9B, 3, tile, tile) shuffled, normalised tiles (image-major) and the
        index of each image's permutation."""
        labels = torch.randint(0, len(self.perms), (x.shape[0],), device=x.device)
        tiles = shuffle_tiles(normalise_tiles(cut_tiles(x, self.gap)), self.perms[labels])
        tiles = tiles.flatten(0, 1)
        if tiles.shape[-1] != self.tile_size:
            tiles = F.interpolate(tiles, size=(self.tile_size, self.tile_size), mode="bilinear",
                                  align_corners=False)
        return tiles, labels

    def loss(self, views: list[Tensor], epoch: int) -> Tensor:
        tiles, labels = self.puzzles(views[0])
        features = self.tile_head(self.backbone(tiles)).view(len(labels), -1)  # 9 tiles in position order
        logits = self.classifier(features).float()
        with float32(logits):
            return F.cross_entropy(logits, labels)

    def optimizer_config(self) -> dict[str, Any]:
        cfg = super().optimizer_config()
        return cfg if cfg["name"] == "adamw" else {**cfg, "lr": 0.1}
