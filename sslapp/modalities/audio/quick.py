"""Sounds' cheap features, from the uint8 log-mel cache rows with numpy: MFCC statistics (the first map and
the label-efficiency benchmark's baseline) and near-duplicate fingerprints.

MFCC statistics are the classic fixed description of a clip: 20 MFCCs (a DCT of the log-mel bands) and
their deltas per frame, then their mean and standard deviation over the frames that hold sound (within
ACTIVE_DB of the loudest frame, so a short clip's padding does not count), 80 numbers a clip.
"""

from __future__ import annotations

import numpy as np

from sslapp.modalities.audio.frontend import FRAMES, MELS, row_db
from sslapp.modalities.base import gather_rows

N_MFCC = 20
MFCC_DIMS = 4 * N_MFCC  # mean and std of the MFCCs and of their deltas
ACTIVE_DB = 50.0  # frames quieter than the loudest by more than this are silence (padding, pauses)
CHUNK = 4096


def dct_matrix(n_out: int = N_MFCC, n_in: int = MELS) -> np.ndarray:
    """(n_out, n_in) orthonormal DCT-II: MFCCs = this @ log-mel bands."""
    k, n = np.arange(n_out)[:, None], np.arange(n_in)[None]
    m = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * np.sqrt(2.0 / n_in)
    m[0] /= np.sqrt(2.0)
    return m.astype(np.float32)


_DCT = dct_matrix()


def active_frames(db: np.ndarray) -> np.ndarray:
    """(B, MELS, FRAMES) dB -> (B, FRAMES) bool: the frames within ACTIVE_DB of each clip's loudest."""
    energy = db.max(axis=1)
    return energy >= energy.max(axis=1, keepdims=True) - ACTIVE_DB


def mfcc_stats(rows: np.ndarray) -> np.ndarray:
    """uint8 rows (B, MELS, FRAMES) -> (B, MFCC_DIMS) float32 MFCC statistics over the active frames."""
    db = row_db(rows)
    mfcc = np.einsum("km,bmt->bkt", _DCT, db)  # (B, N_MFCC, FRAMES)
    delta = np.gradient(mfcc, axis=2) if FRAMES > 1 else np.zeros_like(mfcc)
    weight = active_frames(db).astype(np.float32)[:, None]  # (B, 1, FRAMES)
    count = weight.sum(axis=2)

    def stats(x: np.ndarray) -> list[np.ndarray]:
        mean = (x * weight).sum(axis=2) / count
        std = np.sqrt(np.maximum(((x - mean[..., None]) ** 2 * weight).sum(axis=2) / count, 0.0))
        return [mean, std]

    return np.concatenate([*stats(mfcc), *stats(delta)], axis=1).astype(np.float32)


def mfcc_features(cache: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """MFCC statistics of the cache rows `cache[rows]`, standardised per column: (N, MFCC_DIMS) float32."""
    n = len(cache) if rows is None else len(rows)
    out = np.zeros((n, MFCC_DIMS), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        out[start:stop] = mfcc_stats(gather_rows(cache, rows, start, stop))
    return (out - out.mean(0)) / (out.std(0) + 1e-6) if n > 1 else out


def mfcc_baseline(cache: np.ndarray, rows: np.ndarray, seed: int = 0) -> np.ndarray:
    """The label-efficiency benchmark's sound baseline ("mfcc-stats")."""
    return mfcc_features(cache, rows)


def quick_features(cache: np.ndarray, rows: np.ndarray | None, dim: int, seed: int) -> np.ndarray:
    """The first map's embedding: MFCC statistics, cut or zero-padded to `dim` columns."""
    feats = mfcc_features(cache, rows)
    out = np.zeros((len(feats), dim), np.float32)
    out[:, :min(dim, MFCC_DIMS)] = feats[:, :dim]
    return out


def fingerprints(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Near-duplicate fingerprints of log-mel rows: the image ones, on the spectrogram as a grey picture
    (a re-encoded, resampled or slightly louder copy draws nearly the same picture)."""
    from sslapp.modalities.image.fingerprint import fingerprints as picture_fingerprints

    grey = np.asarray(rows, np.uint8)
    return picture_fingerprints(np.repeat(grey[..., None], 3, axis=-1))
