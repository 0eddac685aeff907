"""Canonical preprocessing: bytes -> uint8 (S, S, 3). PIL and numpy only, no torch.

Training, embedding, the app's predictions and ``sslapp predict`` all call this, so a
model sees exactly the pixels it was trained on. Steps: open (only the formats we
support, never plugins such as EPS that shell out), first frame, EXIF-transpose, RGB
(alpha over white; CMYK, 16-bit and palette images converted), centre-crop to a square,
BICUBIC resize to S.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from sslapp.modalities.base import BadItem

FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")  # MPO opens through JPEG
MAX_PIXELS = 64_000_000  # width x height above this is treated as a decompression bomb
MIN_SIDE = 8
THUMB_SIDE = 96
# The parameters of the canonical preprocessing. The code below uses these, and `describe`
# states them for the export manifest, so the description cannot drift from what is done.
DRAFT_FACTOR = 2  # JPEGs whose shorter side is >= DRAFT_FACTOR * size decode in draft (DCT-scaled) mode
RESAMPLE = Image.Resampling.BICUBIC
BACKGROUND = (255, 255, 255, 255)  # transparent pixels are composited over white
SIXTEEN_BIT_DIVISOR = 257.0  # 16-bit range to 8-bit
PREPROCESSING: dict[str, Any] = {
    "formats": list(FORMATS), "first_frame": True, "exif_transpose": True, "jpeg_draft_factor": DRAFT_FACTOR,
    "alpha": "composite over white", "sixteen_bit_divisor": SIXTEEN_BIT_DIVISOR, "crop": "centre square",
    "resample": RESAMPLE.name.lower(), "dtype": "uint8",
}

# Checked on the declared size before decoding; Pillow's own MAX_IMAGE_PIXELS guard stays as a backstop.


class BadImage(BadItem):
    """An input that is not a usable image; `kind` is a short class, str() the reason for a person."""


@dataclass
class Prepared:
    """One decoded image: the cache row, its size after EXIF rotation, and a JPEG thumbnail."""

    array: np.ndarray  # uint8 (S, S, 3)
    width: int
    height: int
    format: str
    thumb_jpeg: bytes | None


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def open_image(data: bytes) -> Image.Image:
    """Open and fully decode the first frame; raise BadImage with the reason on any problem."""
    if not data:
        raise BadImage("empty", "the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        if _looks_like_image(data):
            raise BadImage("corrupt", "the image header is damaged (starts like an image but cannot be "
                                      "read); the file is corrupt") from None
        raise BadImage("not-image", "not a supported image (use PNG, JPEG, WebP, BMP, TIFF or GIF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadImage("bomb", f"declared size is above the {MAX_PIXELS:,}-pixel limit "
                               "(possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage("corrupt", f"cannot read the image header ({exc}); the file is corrupt") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        raise BadImage("bomb", f"{w}x{h} is above the {MAX_PIXELS:,}-pixel limit (possible decompression bomb); "
                               "shrink the image first")
    if min(w, h) < MIN_SIDE:
        raise BadImage("too-small", f"{w}x{h} is smaller than {MIN_SIDE} px on a side")
    return img


def _load(img: Image.Image, draft_to: int | None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode the first frame; returns the image and its full size after EXIF rotation."""
    full = img.size
    try:
        if getattr(img, "n_frames", 1) > 1:
            img.seek(0)
        if draft_to and img.format in ("JPEG", "MPO") and min(img.size) >= DRAFT_FACTOR * draft_to:
            img.draft("RGB", (draft_to, draft_to))  # DCT-domain downscale: big photos decode fast
        img.load()
        loaded = img.size
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise BadImage("corrupt", f"cannot decode the image data ({exc}); the file is truncated or corrupt") from None
    try:
        ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to rotate
    except Exception:  # a broken EXIF block must not lose a good image; keep it unrotated
        pass
    if img.size != loaded:  # rotated by 90 or 270 degrees
        full = (full[1], full[0])
    return img, full


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB 8-bit: alpha composited over white, 16-bit/float scaled, palette/CMYK/LAB converted."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img).astype(np.float64)
        if mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        elif mode != "F" and arr.size and arr.max() > 255:
            arr = arr / SIXTEEN_BIT_DIVISOR
        arr = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    elif mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, BACKGROUND)
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def center_square(img: Image.Image) -> Image.Image:
    w, h = img.size
    if w == h:
        return img
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def prepare(data: bytes, size: int, thumb_side: int | None = THUMB_SIDE) -> Prepared:
    """Decode once into the cache row and (optionally) a thumbnail (longest side at most `thumb_side`)."""
    img = open_image(data)
    fmt = img.format or ""
    img, (width, height) = _load(img, size)
    img = to_rgb(img)
    thumb = None
    if thumb_side:
        t = img
        if max(img.size) > thumb_side:  # small images are stored as they are (no copy, no upscaling)
            t = img.copy()
            t.thumbnail((thumb_side, thumb_side), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        t.save(buf, "JPEG", quality=85)
        thumb = buf.getvalue()
    square = center_square(img)
    if square.size != (size, size):
        square = square.resize((size, size), RESAMPLE)
    arr = np.asarray(square, dtype=np.uint8)
    return Prepared(array=arr, width=width, height=height, format=fmt, thumb_jpeg=thumb)


def decode_image(data: bytes, size: int) -> np.ndarray:
    """The canonical preprocessing: image bytes -> uint8 array (size, size, 3). Raises BadImage."""
    return prepare(data, size, thumb_side=None).array


def decode_file(path, size: int) -> np.ndarray:
    """`decode_image` of a file on disk."""
    with open(path, "rb") as f:
        return decode_image(f.read(), size)


def describe(size: int) -> dict[str, Any]:
    """The canonical preprocessing at `size` px, as fields and as numbered-step text (for model.json)."""
    names = [f if f != "WEBP" else "WebP" for f in FORMATS]
    steps = [
        f"Decode the file with Pillow ({', '.join(names[:-1])} or {names[-1]}) and take its first frame.",
        f"A JPEG whose shorter side is at least {DRAFT_FACTOR * size} px is decoded in Pillow's draft mode "
        f"(img.draft('RGB', ({size}, {size}))), as sslapp does.",
        "Apply the EXIF orientation (PIL.ImageOps.exif_transpose).",
        "Convert to 8-bit RGB; transparent pixels are composited over white; 16-bit images are scaled by "
        f"1/{SIXTEEN_BIT_DIVISOR:g}.",
        "Crop the centred square whose side is min(width, height).",
        f"Resize to {size} x {size} px with {RESAMPLE.name.lower()} resampling (PIL.Image.Resampling."
        f"{RESAMPLE.name}) -> uint8 array.",
    ]
    return {**PREPROCESSING, "size": size, "jpeg_draft_min_side": DRAFT_FACTOR * size, "steps": steps}
