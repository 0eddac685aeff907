"""TF-IDF's words, without torch: scikit-learn's vectorizer with sslapp's options, and the raw term counts
an exported TF-IDF model reads (`sslapp predict` counts with this same tokenisation, so it matches the app).

The options are scikit-learn's TfidfVectorizer ones: lowercase, then accents stripped (NFKD, combining
marks dropped, for non-ASCII texts), then words are the matches of `token_pattern`; a word counts only
when it is in the fitted vocabulary.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OPTIONS: dict[str, Any] = {"lowercase": True, "strip_accents": "unicode", "ngram_range": [1, 1],
                           "token_pattern": r"(?u)\b\w+\b", "sublinear_tf": True}
TOKENISING = ("lowercase", "strip_accents", "ngram_range", "token_pattern")  # what decides the words


def vectorizer(options: dict[str, Any], **extra: Any):
    """scikit-learn's TfidfVectorizer with `options` (float32 values); `extra` e.g. a fixed vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**{**options, "ngram_range": tuple(options["ngram_range"])}, dtype=np.float32, **extra)


def count_vectorizer(options: dict[str, Any], vocabulary: list[str]):
    """The same words counted, not weighted: column i counts `vocabulary[i]`."""
    from sklearn.feature_extraction.text import CountVectorizer

    told = {k: options[k] for k in TOKENISING}
    return CountVectorizer(**{**told, "ngram_range": tuple(told["ngram_range"])}, dtype=np.float32,
                           vocabulary={t: i for i, t in enumerate(vocabulary)})


def term_counts(counter, texts: list[str]) -> np.ndarray:
    """(N, terms) float32 counts of the vocabulary's words in `texts` (`counter`: a `count_vectorizer`)."""
    return np.asarray(counter.transform(texts).toarray(), np.float32)
