"""Word pieces for MiniLM and the user's own transformer models, without torch: the tokenizer as sslapp
configures it, and the tokenise-sort-pad loop the app's encoders, `sslapp predict` on an exported model and
the embedding benchmark share.

Texts are sorted by length and each batch is padded only to its longest, so a short text never waits
on a long one's padding; mean pooling reads the attention mask, so padding never changes a vector.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

MAX_BATCH = 64
TOKEN_BUDGET = 8192  # word pieces (padding included) per forward pass


def load_tokenizer(path: str | Path, max_tokens: int):
    """The `tokenizers` tokenizer in `path` (a tokenizer.json), cut at `max_tokens` word pieces and not
    padded: the file may say otherwise (all-MiniLM-L6-v2's says 128 and pads to 128), `padded_batches` pads."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.enable_truncation(max_tokens)
    tokenizer.no_padding()
    return tokenizer


def padded_batches(tokenizer, texts: list[str], token_budget: int, sort: bool = True, pad_id: int = 0
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows of `texts`, int64 token ids (B, width), int64 attention mask) per forward pass: the texts
    tokenised at once, sorted by length, each batch padded with `pad_id` only to its longest (see `batches`)."""
    encodings = tokenizer.encode_batch([t.strip() for t in texts])
    lengths = np.array([len(e.ids) for e in encodings], np.int64)
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(texts))
    for group in batches(lengths[order], token_budget):
        rows = order[group]
        yield rows, *pad_ids([encodings[i].ids for i in rows], pad_id)


def pad_ids(pieces: list[list[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """int64 (token ids padded with `pad_id` to the longest, attention mask: 1 on the word pieces) of a batch.
    The pad id matters beyond the mask for RoBERTa-style models, whose position ids skip it."""
    lengths = np.array([len(p) for p in pieces], np.int64)
    ids = np.full((len(pieces), int(lengths.max(initial=0))), pad_id, np.int64)
    for r, p in enumerate(pieces):
        ids[r, :len(p)] = p
    return ids, (np.arange(ids.shape[1])[None] < lengths[:, None]).astype(np.int64)


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
