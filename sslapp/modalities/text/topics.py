"""Name a map's clusters of texts by their most distinctive words: class-based TF-IDF, as BERTopic does.

Each cluster's texts are joined into one document; a word's weight in a cluster is its frequency there
(normalised by the cluster's length) times log(1 + A / f), where A is the average number of words per
cluster and f the word's frequency over all clusters. Words every cluster uses (and English stop words)
score low, so the top words tell the clusters apart rather than describe the corpus. Grootendorst 2022,
"BERTopic: Neural topic modeling with a class-based TF-IDF procedure", arXiv:2203.05794, eq. 1.
"""

from __future__ import annotations

import numpy as np

from sslapp.modalities.base import gather_rows
from sslapp.modalities.text.arrays import texts_of

SAMPLE = 20_000  # texts read at most (a random sample above that): a name needs the frequent words only
CHUNK = 4096


def cluster_words(cache: np.ndarray, rows: np.ndarray, clusters: np.ndarray, top: int = 3,
                  seed: int = 0) -> dict[int, list[str]]:
    """{cluster: its `top` most distinctive words} for the texts at cache `rows` (cluster -1, noise, is
    left out); a cluster with no word of its own gets none."""
    from sklearn.feature_extraction.text import CountVectorizer

    rows, clusters = np.asarray(rows, np.int64), np.asarray(clusters, np.int64)
    keep = clusters >= 0
    rows, clusters = rows[keep], clusters[keep]
    if len(rows) > SAMPLE:
        pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=SAMPLE, replace=False))
        rows, clusters = rows[pick], clusters[pick]
    if len(rows) == 0:
        return {}
    ids = np.unique(clusters)
    docs = {int(c): [] for c in ids}
    for start in range(0, len(rows), CHUNK):
        stop = min(len(rows), start + CHUNK)
        for c, text in zip(clusters[start:stop], texts_of(gather_rows(cache, rows, start, stop)), strict=True):
            docs[int(c)].append(text)
    vectorizer = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[^\W\d_][^\W\d_]+\b")
    try:
        counts = vectorizer.fit_transform([" ".join(docs[int(c)]) for c in ids]).astype(np.float64)
    except ValueError:  # no word at all (codes, emoji, only stop words)
        return {}
    words = vectorizer.get_feature_names_out()
    per_cluster = np.asarray(counts.sum(axis=1)).ravel()
    tf = counts.multiply(1.0 / np.maximum(per_cluster, 1.0)[:, None]).tocsr()
    overall = np.asarray(counts.sum(axis=0)).ravel()
    idf = np.log1p(per_cluster.mean() / np.maximum(overall, 1.0))
    scores = tf.multiply(idf[None, :]).tocsr()
    out = {}
    for k, c in enumerate(ids):
        row = scores.getrow(k)
        order = row.indices[np.argsort(-row.data, kind="stable")][:top]
        out[int(c)] = [str(words[i]) for i in order]
    return out
