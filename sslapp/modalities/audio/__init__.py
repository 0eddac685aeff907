"""Sounds: WAV, FLAC, OGG and MP3 recordings, cut into 1.024 s windows (`decode`), cached as uint8 log-mel
pictures (`frontend`: 64 mel bands by 64 frames of 16 ms), fed to the encoders as a grey 3-channel picture,
previewed as a player (each window's 16 kHz WAV) and a spectrogram, with the MFCC start (statistics and
contour) as the first map and MFCC statistics as the baseline (`quick`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from sslapp.modalities.audio import frontend as fe
from sslapp.modalities.audio.decode import EXTENSIONS, MAX_SECONDS, decode_items
from sslapp.modalities.audio.quick import fingerprints, mfcc_baseline, quick_features
from sslapp.modalities.base import Modality

STEPS = [
    "Read the file with soundfile (libsndfile: WAV, FLAC, OGG, MP3) as float32 and average the channels "
    "to mono.",
    f"Cut it into windows of {fe.WINDOW_SECONDS} s from its start: the first always, each later one only "
    f"when at least half a window is left (`window_starts`); resample each window to {fe.RATE} Hz by FFT "
    f"(`resample`) and zero-pad it to {fe.WINDOW} samples.",
    f"Log-mel spectrogram (`log_mel`): periodic Hann frames of {fe.N_FFT} samples every {fe.HOP}, "
    f"{fe.FRAMES} frames, power through {fe.MELS} Slaney mel triangles from {fe.F_MIN:g} to {fe.F_MAX:g} Hz, "
    "10*log10.",
    f"Clip to [{fe.DB_FLOOR:g}, {fe.DB_CEIL:g}] dB, scale to 0-255 and round to uint8 (`to_row`): a "
    f"({fe.MELS}, {fe.FRAMES}) row, lowest band first.",
    "Divide by 255 and repeat the row as 3 channels: float32 (batch, 3, 64, 64) in [0, 1], the model's input.",
]


def cache_row(size: int) -> tuple[tuple[int, ...], str]:
    """One window's log-mel picture a row, whatever the workspace's cache size."""
    return (fe.MELS, fe.FRAMES), "uint8"


def model_input(rows: np.ndarray) -> np.ndarray:
    """uint8 (B, MELS, FRAMES) -> float32 (B, 3, MELS, FRAMES) in [0, 1]: the picture as a grey image."""
    arr = np.asarray(rows)
    if arr.dtype != np.uint8 or arr.ndim != 3:
        raise ValueError(f"expected uint8 log-mel rows (B, {fe.MELS}, {fe.FRAMES}), got {arr.dtype} {arr.shape}")
    grey = arr.astype(np.float32)[:, None] / 255.0
    return np.ascontiguousarray(np.repeat(grey, 3, axis=1))


def preprocessing(size: int) -> dict[str, Any]:
    """model.json's account of file -> log-mel row -> model input: fields and numbered steps."""
    return {"rate": fe.RATE, "window_seconds": fe.WINDOW_SECONDS, "window_samples": fe.WINDOW, "n_fft": fe.N_FFT,
            "hop": fe.HOP, "frames": fe.FRAMES, "mels": fe.MELS, "f_min": fe.F_MIN, "f_max": fe.F_MAX,
            "mel_scale": "slaney", "db_range": [fe.DB_FLOOR, fe.DB_CEIL], "dtype": "uint8", "scale": 1 / 255,
            "max_seconds": MAX_SECONDS, "steps": list(STEPS)}


def input_spec(size: int) -> dict[str, Any]:
    return {"kind": "audio", "shape": ["batch", 3, fe.MELS, fe.FRAMES], "dtype": "float32", "range": [0.0, 1.0],
            "layout": "NCHW: channels (the same picture 3 times), mel bands (lowest first), frames"}


AUDIO = Modality(
    name="audio", noun="sound", plural="sounds", extensions=EXTENSIONS, decode=decode_items, cache_row=cache_row,
    model_input=model_input, preprocessing=preprocessing, input_spec=input_spec,
    quick_features=quick_features, fingerprints=fingerprints,
    starting_encoders=("mfcc", "imagenet", "patches"),  # also the prior: MFCC statistics first
    ssl_methods=("simclr", "byol-a", "cpc", "wav2vec", "byol", "mocov3", "swav", "dino", "mae"),
    views="sslapp.ssl.audio_views:make_views",
    preview="audio", preview_ext=".wav", original_exts=EXTENSIONS, one_item_per_file=False,
    full_finetune=False,  # the image fine-tune's views (flips, colour) are wrong for a spectrogram: a probe
    export_formats=("onnx", "torchscript", "safetensors"), export_extras=frozenset({"encoder", "quantize"}),
    baseline=("mfcc-stats", mfcc_baseline), fixed_cache_size=fe.MELS,
)
