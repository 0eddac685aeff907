"""Texts' cheap first-look embedding: TF-IDF of words and word pairs, reduced by truncated SVD (LSA).

It exists so a user sees a map of their texts seconds after an upload, before any encoder runs, as the
images' pixel PCA does for images. Fitted on a sample (vocabulary, idf and the SVD basis), applied to
every text in chunks, so the time grows with N only through the cheap transform.
"""

from __future__ import annotations

import numpy as np

from sslapp.modalities.base import gather_rows
from sslapp.modalities.text.arrays import texts_of
from sslapp.vectors import l2_normalize

FIT_SAMPLE = 10_000  # texts the vocabulary and SVD are fitted on (5,000 of ~160 words: ~3 s on 2 cores)
MAX_FEATURES = 100_000  # most frequent character n-grams kept (words: min_df prunes; max_features cost 40%)
MIN_DF_FROM = 200  # from this many texts on, a term must appear in two of them (drops typos and ids)
CHUNK = 2048


def _vectorizer(n: int, analyzer: str = "word"):
    from sklearn.feature_extraction.text import TfidfVectorizer

    if analyzer == "word":
        return TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=2 if n >= MIN_DF_FROM else 1,
                               dtype=np.float32)
    # texts without two-letter words (scripts without spaces, codes, emoji): character n-grams instead
    return TfidfVectorizer(sublinear_tf=True, analyzer="char_wb", ngram_range=(2, 4),
                           max_features=MAX_FEATURES, dtype=np.float32)


def _fit(texts: list[str]):
    for analyzer in ("word", "char"):
        vec = _vectorizer(len(texts), analyzer)
        try:
            return vec, vec.fit_transform(texts)
        except ValueError:  # "empty vocabulary": no term kept
            continue
    return None, None


def tfidf_svd(cache: np.ndarray, rows: np.ndarray | None = None, dim: int = 32, seed: int = 0) -> np.ndarray:
    """(N, dim) float32, L2-normalised rows (a text without a known term stays zero); fewer dimensions
    carry values when the vocabulary or the sample is smaller than `dim` (the rest are zero)."""
    n = len(cache) if rows is None else len(rows)
    out = np.zeros((n, dim), np.float32)
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    whole = n <= FIT_SAMPLE  # fitted on every text: its fitted matrix is the answer, no second pass
    fit_idx = np.arange(n) if whole else np.sort(rng.choice(n, size=FIT_SAMPLE, replace=False))
    fit_rows = fit_idx if rows is None else np.asarray(rows)[fit_idx]
    vec, x = _fit(texts_of(gather_rows(cache, fit_rows, 0, len(fit_rows))))
    if vec is None:
        return out
    svd = None
    k = min(dim, x.shape[1])
    if x.shape[1] > dim and x.shape[0] > 1:
        from sklearn.decomposition import TruncatedSVD

        k = min(dim, x.shape[0] - 1)
        svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed).fit(x)
    for start in range(0, n, CHUNK):
        stop = min(n, start + CHUNK)
        part = x[start:stop] if whole else vec.transform(texts_of(gather_rows(cache, rows, start, stop)))
        out[start:stop, :k] = svd.transform(part) if svd is not None else part.toarray()[:, :k]
    return l2_normalize(out, dtype=np.float32)
