"""Generate the bad-input corpus (and valid-but-tricky images) with the outcome each must have.

    python tests/data/make_bad.py [OUT]     (default: tests/data/bad)

`build(out)` writes the files and returns EXPECTED: source name (relative to `out`, zip members
as "archive.zip:member") -> "added", "duplicate", or the reason class that must start the
skipped reason ("corrupt", "not-image", "empty", "bomb", "too-small", "unsafe-path", "zip-bomb",
"unreadable", "wrong-kind"). Everything is generated from code (seeded), so no binary blobs live in git.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE, GREEN = (230, 20, 20), (20, 20, 230), (20, 200, 20)
NON_UTF8_NAME = b"caf\xe9-latin1.png"  # 'café' in Latin-1: not valid UTF-8


def _noise(seed: int, w: int = 40, h: int = 40) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _chunk(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)


def png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG whose header declares width x height pixels (10 gigapixels by default)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def upright_two_tone(w: int = 48, h: int = 48) -> Image.Image:
    """Top half red, bottom half blue: what the EXIF-rotated JPEG must decode to."""
    img = Image.new("RGB", (w, h), BLUE)
    img.paste(RED, (0, 0, w, h // 2))
    return img


def exif_rotated_jpeg() -> bytes:
    """Pixels stored rotated 90 degrees with EXIF orientation 6, so a viewer shows `upright_two_tone`."""
    stored = upright_two_tone().transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    return _bytes(stored, "JPEG", quality=95, exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in (RED, BLUE, GREEN)]
    return _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def zip_bomb_member_bytes() -> int:
    return 16 * 1024 * 1024


def _zip_bomb(path: Path) -> None:
    """One 16 MiB member of zeros (compresses about 1000:1; the ratio guard must refuse it)."""
    size = zip_bomb_member_bytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        info = zipfile.ZipInfo("bomb.bmp")
        info.compress_type = zipfile.ZIP_DEFLATED
        with zf.open(info, "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(size // len(block)):
                member.write(block)


def build(out: str | os.PathLike) -> dict[str, str]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}

    def put(name: str, data: bytes, outcome: str) -> Path:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        expected[name] = outcome
        return path

    good_png = _bytes(_noise(1), "PNG")
    put("good.png", good_png, "added")
    put("zz-duplicate-of-good.png", good_png, "duplicate")  # sorts after good.png
    good_jpg = _bytes(_noise(2, 64, 48), "JPEG", quality=90)
    # -- bad inputs --------------------------------------------------------------
    put("truncated.png", good_png[: len(good_png) // 2], "corrupt")
    put("truncated.jpg", good_jpg[: len(good_jpg) // 2], "corrupt")
    noise = bytes(np.random.default_rng(3).integers(0, 256, 3000, dtype=np.uint8))
    put("garbage-body.jpg", good_jpg[: len(good_jpg) // 3] + noise + b"\xff\xd9", "corrupt")
    put("bad-header-crc.png", good_png[:30] + bytes([good_png[30] ^ 0xFF]) + good_png[31:], "corrupt")
    put("text-with-image-name.png", b"this is a text file, not an image\n" * 20, "not-image")
    put("notes.txt", b"plain text, not an image\n", "wrong-kind")  # a text: skipped among images
    put("empty.jpg", b"", "empty")
    put("decompression-bomb.png", png_bomb(), "bomb")
    put("tiny-4x4.png", _bytes(_noise(4, 4, 4), "PNG"), "too-small")
    with zipfile.ZipFile(out / "unsafe-paths.zip", "w") as zf:
        zf.writestr(zipfile.ZipInfo("../escape.png"), _bytes(_noise(5), "PNG"))
        zf.writestr(zipfile.ZipInfo("/abs/escape.png"), _bytes(_noise(6), "PNG"))
        zf.writestr(zipfile.ZipInfo("inside/fine.png"), _bytes(_noise(7), "PNG"))
    expected["unsafe-paths.zip:../escape.png"] = "unsafe-path"
    expected["unsafe-paths.zip:/abs/escape.png"] = "unsafe-path"
    expected["unsafe-paths.zip:inside/fine.png"] = "added"
    _zip_bomb(out / "zip-bomb.zip")
    expected["zip-bomb.zip:bomb.bmp"] = "zip-bomb"
    os.symlink(out / "no-such-target.png", out / "dangling-link.png")
    expected["dangling-link.png"] = "unreadable"
    os.mkfifo(out / "named-pipe.png")
    expected["named-pipe.png"] = "unreadable"
    locked = put("no-permission.png", _bytes(_noise(8), "PNG"), "added")
    os.chmod(locked, 0)
    # root reads any file: then the image is simply added; anyone else gets a reason
    expected["no-permission.png"] = "added" if os.geteuid() == 0 else "unreadable"
    raw_name = os.fsencode(out) + b"/" + NON_UTF8_NAME
    with open(raw_name, "wb") as f:
        f.write(_bytes(_noise(9), "PNG"))
    expected[NON_UTF8_NAME.decode("utf-8", errors="replace")] = "added"
    # -- valid but tricky --------------------------------------------------------
    put("cmyk.jpg", _bytes(Image.new("CMYK", (40, 40), (0, 255, 255, 0)), "JPEG", quality=95), "added")
    ramp = (np.linspace(0, 65535, 40 * 40).reshape(40, 40)).astype(np.uint16)
    put("gray-16bit.png", _bytes(Image.fromarray(ramp), "PNG"), "added")
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    rgba.paste((20, 200, 20, 255), (0, 0, 20, 40))
    put("transparent.png", _bytes(rgba, "PNG"), "added")
    put("palette.gif", _bytes(_noise(10).convert("P"), "GIF"), "added")
    put("exif-rotated.jpg", exif_rotated_jpeg(), "added")
    put("animated.gif", animated_gif(), "added")
    put("large-6000x4000.png", _bytes(Image.new("RGB", (6000, 4000), GREEN), "PNG", compress_level=1), "added")
    put("wide-2000x12.png", _bytes(_noise(11, 2000, 12), "PNG"), "added")
    put("photo.webp", _bytes(_noise(12), "WEBP", quality=90), "added")
    put("bitmap.bmp", _bytes(_noise(13), "BMP"), "added")
    put("scan.tiff", _bytes(_noise(14), "TIFF"), "added")
    put("class-a/in-a-folder.jpg", good_jpg, "added")
    return expected


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "bad"
    table = build(target)
    width = max(len(k) for k in table)
    for name, outcome in sorted(table.items()):
        print(f"{name:<{width}}  {outcome}")
