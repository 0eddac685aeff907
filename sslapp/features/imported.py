"""Your own embeddings, in and out: vectors computed elsewhere, keyed by the images' source paths.

Formats (the file's extension says which, for import and export alike):
- Parquet (`.parquet`): a `path` column (string) and a `vector` column (list<float32>; any list of
  numbers is read, all the same length). Export adds `x`, `y` (float32) and `cluster` (int32) from
  the newest map (`sslapp embed`), null for images that are not on it.
- NumPy (`.npy`): an N x D array of numbers, the N paths one per line in `vecs.paths.txt` (or
  `vecs.npy.paths.txt`, or `--paths FILE`). Export writes `vecs.npy` (float32), `vecs.paths.txt`
  and, when there is a map, `vecs.map.csv` (path, x, y, cluster).

A path is the image's `source` as ingested (`sslapp info`, the Data page). A row matches the image
whose source equals it (`\\` or `/`, a leading `./` ignored), else the image whose source is the
end of the path (`/data/cats/1.png` fits `cats/1.png`), else the one image whose source ends with
it; a path that fits several images matches none.

Import rules, checked before anything is stored (bad input changes nothing): the file reads; as
many paths as vectors, at least one; vectors N x D, finite; no path twice, no image fitted twice;
and *every* current image gets a vector (rows for other paths are ignored and counted). There is
no partial import: an embedding that misses images cannot be compared with the others.

Served by `sslapp.features.service`: an import is an 'encoder' artifact with `meta.start` =
"imported" whose `path` is `embeddings/imported-<ms>.npz` (`item_ids`, `features`), a candidate like
any encoder, one per name (a re-import of a name replaces it; a pin on it follows). Images added
later have no vector, so it is skipped (a pin on it set aside) with a note until imported again.
Nothing computes these vectors from an item, so a classifier on them cannot be exported as a model
that reads items (`export_problem`).
"""

from __future__ import annotations

import csv
import posixpath
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sslapp.features.read import describe_imported, is_imported

FORMATS = (".parquet", ".npy")
EXAMPLES = 3


class VectorsError(ValueError):
    """A vectors file that cannot be imported (or written), with what is wrong and what to do."""


def _some(items, n: int = EXAMPLES) -> str:
    items = list(items)
    return ", ".join(repr(str(x)) for x in items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _format(file: Path) -> str:
    suffix = file.suffix.lower()
    if suffix not in FORMATS:
        raise VectorsError(f"{file.name}: use a .parquet file (path, vector columns) or a .npy file (N x D) with a "
                           f"paths file, not {suffix or 'a file without an extension'}")
    return suffix


# -- reading -------------------------------------------------------------------------------------
def paths_file_for(file: Path) -> Path:
    """The paths file that goes with `vecs.npy`: `vecs.paths.txt`, else `vecs.npy.paths.txt`."""
    first, second = file.with_suffix(".paths.txt"), file.with_name(file.name + ".paths.txt")
    return second if not first.exists() and second.exists() else first


def read_paths(file: Path) -> list[str]:
    """One path per line (UTF-8); trailing empty lines are dropped, an empty line before them is an error."""
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise VectorsError(f"the paths file {file} does not exist: write one path per line next to the .npy "
                           "file, or name it with --paths") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise VectorsError(f"cannot read the paths file {file}: {exc}") from None
    while lines and not lines[-1]:
        lines.pop()
    empty = [k + 1 for k, line in enumerate(lines) if not line.strip()]
    if empty:
        raise VectorsError(f"{file.name}: line {empty[0]} is empty; every line must be an image path")
    return lines


def _read_npy(file: Path) -> np.ndarray:
    try:
        data = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise VectorsError(f"cannot read {file.name} as a NumPy .npy array: {exc}") from None
    if not isinstance(data, np.ndarray):
        raise VectorsError(f"{file.name} is not a single .npy array (an .npz archive?); save it with numpy.save")
    if data.dtype.kind not in "iuf":
        raise VectorsError(f"{file.name} holds {data.dtype} values; vectors must be numbers (float32)")
    if data.ndim != 2:
        raise VectorsError(f"{file.name} has shape {data.shape}; vectors must be an N x D array, one row per "
                           "image")
    return data


def _read_parquet(file: Path) -> tuple[list[str], np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(file)
    except (OSError, pa.ArrowException) as exc:
        raise VectorsError(f"cannot read {file.name} as Parquet: {exc}") from None
    absent = [c for c in ("path", "vector") if c not in table.column_names]
    if absent:
        raise VectorsError(f"{file.name} has no {' or '.join(repr(c) for c in absent)} column (it has "
                           f"{', '.join(table.column_names) or 'none'}); write 'path' (string) and 'vector' "
                           "(list<float32>) columns")
    path_col = table.column("path")
    if not (pa.types.is_string(path_col.type) or pa.types.is_large_string(path_col.type)):
        raise VectorsError(f"{file.name}: the 'path' column holds {path_col.type}, not strings")
    if path_col.null_count:
        raise VectorsError(f"{file.name}: {path_col.null_count} rows have no path")
    vec = table.column("vector").combine_chunks()
    kind = vec.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)) or not (
            pa.types.is_floating(kind.value_type) or pa.types.is_integer(kind.value_type)):
        raise VectorsError(f"{file.name}: the 'vector' column holds {kind}; it must be a list of numbers "
                           "(list<float32>), one vector per row")
    paths = path_col.to_pylist()
    if vec.null_count:
        raise VectorsError(f"{file.name}: {vec.null_count} rows have no vector (null)")
    lengths = np.asarray(pc.list_value_length(vec).to_numpy(zero_copy_only=False), np.int64)
    values = vec.flatten()
    if values.null_count:
        raise VectorsError(f"{file.name}: {values.null_count} numbers inside the vectors are null")
    if len(lengths) and (lengths != lengths[0]).any():
        sizes = Counter(lengths.tolist()).most_common()
        odd = [p for p, n in zip(paths, lengths, strict=True) if n != sizes[0][0]]
        counts = ", ".join(f"{n} of length {d}" for d, n in sizes)
        raise VectorsError(f"{file.name}: the vectors have different lengths ({counts}); not of length "
                           f"{sizes[0][0]}: {_some(odd)}. Every vector must have the same length")
    dim = int(lengths[0]) if len(lengths) else 0
    return paths, np.asarray(values.to_numpy(zero_copy_only=False)).reshape(len(paths), dim)


def read_vectors(file: str | Path, paths_file: str | Path | None = None) -> tuple[list[str], np.ndarray]:
    """(paths, float32 N x D vectors) from a .parquet or .npy file, checked (`check_vectors`)."""
    file = Path(file)
    fmt = _format(file)
    if not file.is_file():
        raise VectorsError(f"{file} does not exist or is not a file")
    if fmt == ".npy":
        vectors = _read_npy(file)
        paths = read_paths(Path(paths_file) if paths_file else paths_file_for(file))
    else:
        if paths_file:
            raise VectorsError("--paths goes with a .npy file; a Parquet file has its own 'path' column")
        paths, vectors = _read_parquet(file)
    return paths, check_vectors(paths, vectors, file.name)


def check_vectors(paths: list[str], vectors: np.ndarray, name: str = "the file") -> np.ndarray:
    """The vectors as float32 after the rules in the module docstring; raises VectorsError."""
    if vectors.ndim != 2:
        raise VectorsError(f"{name}: vectors have shape {vectors.shape}; they must be N x D")
    if len(paths) != len(vectors):
        raise VectorsError(f"{name}: {len(vectors)} vectors but {len(paths)} paths; give one path per vector, in "
                           "the same order")
    if len(paths) == 0:
        raise VectorsError(f"{name} holds no vectors")
    if vectors.shape[1] == 0:
        raise VectorsError(f"{name}: the vectors are empty (length 0)")
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.asarray(vectors, np.float32)
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if len(bad):
        raise VectorsError(f"{name}: NaN or infinite values (or numbers too large for float32) in {len(bad)} of "
                           f"{len(paths)} vectors, e.g. {_some(paths[i] for i in bad)}; fix or drop those rows")
    twice = [p for p, n in Counter(paths).items() if n > 1]
    if twice:
        raise VectorsError(f"{name}: paths given more than once ({len(twice)}): {_some(twice)}; give each "
                           "image one vector")
    return out


# -- matching ------------------------------------------------------------------------------------
def _norm(path: str) -> str:
    path = posixpath.normpath(path.replace("\\", "/"))
    return "" if path == "." else path


@dataclass
class Match:
    """How a file's rows fit the workspace's images (`sources`, in the store's item order)."""

    row_of_item: np.ndarray  # (n_items,) the file's row for each image, -1 when none
    unmatched: list[str]  # paths that fit no image
    ambiguous: list[str]  # paths that fit several images
    by_tail: int  # rows matched by the end of their path (or of the source), not exactly
    clashes: list[str]  # images that two or more rows fit

    @property
    def matched(self) -> int:
        return int((self.row_of_item >= 0).sum())

    @property
    def missing(self) -> np.ndarray:
        return np.flatnonzero(self.row_of_item < 0)


def match_paths(paths: list[str], sources: list[str]) -> Match:
    """Fit each path to one image's source (rules in the module docstring)."""
    full: dict[str, list[int]] = defaultdict(list)
    tails: dict[str, set[int]] = defaultdict(set)
    for pos, source in enumerate(sources):
        norm = _norm(source)
        full[norm].append(pos)
        parts = norm.split("/")
        for i in range(1, len(parts)):
            tails["/".join(parts[i:])].add(pos)
    claims: dict[int, list[int]] = defaultdict(list)
    unmatched, ambiguous, by_tail = [], [], 0
    for row, path in enumerate(paths):
        norm = _norm(path)
        parts = norm.split("/")
        found = full.get(norm) or next((full[t] for t in ("/".join(parts[i:]) for i in range(1, len(parts)))
                                        if t in full), None) or sorted(tails.get(norm, ()))
        if len(found) == 1:
            claims[found[0]].append(row)
            by_tail += _norm(sources[found[0]]) != norm
        elif found:
            ambiguous.append(path)
        else:
            unmatched.append(path)
    row_of_item = np.full(len(sources), -1, np.int64)
    clashes = []
    for pos, rows in claims.items():
        if len(rows) == 1:
            row_of_item[pos] = rows[0]
        else:
            clashes.append(sources[pos])
    return Match(row_of_item, unmatched, ambiguous, by_tail, clashes)


def check_match(match: Match, paths: list[str], sources: list[str], name: str) -> None:
    """Refuse a file that leaves any image without a vector, saying which rows and images do not fit."""
    if match.clashes:
        raise VectorsError(f"{name}: several rows fit the same image, e.g. {_some(match.clashes)}; give each image "
                           "one row (use the paths `sslapp info`/the Data page show)")
    if not len(match.missing):
        return
    if match.matched == 0:
        raise VectorsError(f"no path in {name} matches an image in the workspace ({len(paths)} rows): its paths "
                           f"look like {_some(paths, 2)}, the workspace's like {_some(sources, 2)}")
    text = (f"{len(match.missing)} of {len(sources)} images have no vector in {name}, e.g. "
            f"{_some(sources[i] for i in match.missing)}; every image needs one. {match.matched} of {len(paths)} "
            "rows matched an image")
    if match.unmatched:
        text += f"; {len(match.unmatched)} fit none, e.g. {_some(match.unmatched)}"
    if match.ambiguous:
        text += f"; {len(match.ambiguous)} fit several images, e.g. {_some(match.ambiguous)}"
    raise VectorsError(text)


# -- the workspace side --------------------------------------------------------------------------
def import_vectors(ws, file: str | Path, paths_file: str | Path | None = None,
                   name: str | None = None) -> tuple[dict[str, Any], Match, int]:
    """Read, check and match `file`, then store it as an encoder artifact; returns (artifact, match, rows
    in the file). Raises VectorsError before storing anything. Pins nothing new: a pin on an earlier
    import of the same name moves to this one."""
    from sslapp.features.extract import save_npz
    from sslapp.features.read import PINNED_SETTING

    file = Path(file)
    paths, vectors = read_vectors(file, paths_file)
    items = ws.store.items()
    if not items:
        raise VectorsError("the workspace has no items yet; ingest them first, then import their vectors")
    item_ids = np.array([r["id"] for r in items], np.int64)
    sources = [str(r["source"]) for r in items]
    match = match_paths(paths, sources)
    check_match(match, paths, sources, file.name)
    name = (name or file.stem).strip() or file.stem
    rel = f"embeddings/imported-{int(time.time() * 1000)}.npz"
    save_npz(ws.root / rel, item_ids=item_ids, features=vectors[match.row_of_item])
    meta = {"start": "imported", "method": "imported", "name": name, "file": file.name, "dim": int(vectors.shape[1]),
            "n_matched": match.matched, "n_rows": len(paths), "n_items": len(item_ids)}
    replaced = [a["id"] for a in ws.store.artifacts("encoder", limit=100_000)
                if is_imported(a) and (a.get("meta") or {}).get("name") == name]
    try:
        art_id = ws.store.add_artifact("encoder", rel, meta)
    except BaseException:
        (ws.root / rel).unlink(missing_ok=True)
        raise
    if ws.store.get_setting(PINNED_SETTING) in replaced:  # a pin on this name follows it
        ws.store.set_setting(PINNED_SETTING, art_id)
    return {"id": art_id, "path": rel, "meta": meta, "run_id": None, "kind": "encoder"}, match, len(paths)


def unusable_reason(ws, artifact: dict[str, Any], item_ids: np.ndarray) -> str | None:
    """Why an imported embedding cannot serve `item_ids` (some have no vector), or None when it can."""
    if not is_imported(artifact):
        return None
    with np.load(ws.root / artifact["path"], allow_pickle=False) as data:
        missing = int((~np.isin(item_ids, data["item_ids"])).sum())
    if not missing:
        return None
    return (f"{describe_imported(artifact.get('meta') or {})} has no vector for {missing} of {len(item_ids)} images "
            "(added since the import), so it is left out; import vectors for every image again to use it")


def features_of(ws, artifact: dict[str, Any], item_ids: np.ndarray) -> np.ndarray:
    """The imported vectors of `item_ids`, in that order; ValueError when some have none."""
    from sslapp.features.extract import load_npz

    data = load_npz(ws.root / artifact["path"])
    index = {int(i): k for k, i in enumerate(data["item_ids"])}
    rows = [index.get(int(i), -1) for i in item_ids]
    if -1 in rows:
        raise ValueError(unusable_reason(ws, artifact, item_ids))
    return np.asarray(data["features"], np.float32)[rows]


def export_problem(ws) -> str | None:
    """Why the newest classifier cannot be exported as a model that reads the workspace's items (it was
    trained on imported vectors, which nothing computes from an item), or None."""
    from sslapp.modalities import workspace_modality

    clf = ws.store.latest_artifact("classifier")
    wanted = (clf.get("meta") or {}).get("encoder_artifact_id") if clf else None
    enc = next((a for a in ws.store.artifacts("encoder", limit=100_000) if a["id"] == wanted), None)
    if not is_imported(enc):
        return None
    noun = workspace_modality(ws).noun
    a_noun = f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"  # an image, a text
    return (f"the newest classifier was trained on {describe_imported(enc['meta'])}, which sslapp cannot compute "
            f"from {a_noun}, so it cannot be exported as {a_noun} model. Choose {a_noun} embedding (`sslapp embed "
            "WS --use auto`, or --use with an encoder `sslapp info` lists), train again (`sslapp finetune WS`), "
            "then export; `sslapp embeddings export WS FILE` writes the vectors and map coordinates")


# -- writing -------------------------------------------------------------------------------------
def write_vectors(file: str | Path, paths: list[str], vectors: np.ndarray, xy: np.ndarray | None = None,
                  cluster: np.ndarray | None = None, overwrite: bool = False) -> list[Path]:
    """Write the format of `file`'s extension (module docstring); `xy` rows NaN and `cluster` -1 for
    images not on the map. Refuses to replace files unless `overwrite`. Returns the files written."""
    from sslapp.atomic import atomic_path

    file = Path(file)
    fmt = _format(file)
    vectors = np.asarray(vectors, np.float32)
    if fmt == ".npy":
        targets = [file, file.with_suffix(".paths.txt")] + ([file.with_suffix(".map.csv")] if xy is not None else [])
    else:
        targets = [file]
    existing = [t.name for t in targets if t.exists()]
    if existing and not overwrite:
        raise VectorsError(f"{', '.join(existing)} already exists; pass --overwrite to replace it")
    file.parent.mkdir(parents=True, exist_ok=True)
    on_map = None if xy is None else np.isfinite(xy).all(axis=1)
    if fmt == ".npy":
        with atomic_path(targets[0]) as tmp, open(tmp, "wb") as f:
            np.save(f, vectors)
        with atomic_path(targets[1]) as tmp:
            tmp.write_text("".join(p + "\n" for p in paths), encoding="utf-8")
        if xy is not None:
            with atomic_path(targets[2]) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(["path", "x", "y", "cluster"])
                for p, (x, y), c, ok in zip(paths, xy, cluster, on_map, strict=True):
                    out.writerow([p, repr(float(x)), repr(float(y)), int(c)] if ok else [p, "", "", ""])
        return targets
    import pyarrow as pa
    import pyarrow.parquet as pq

    dim = vectors.shape[1]
    offsets = pa.array(np.arange(len(paths) + 1, dtype=np.int32) * dim)
    columns = {"path": pa.array(paths, pa.string()),
               "vector": pa.ListArray.from_arrays(offsets, pa.array(vectors.reshape(-1), pa.float32()))}
    if xy is not None:
        columns["x"] = pa.array(xy[:, 0], pa.float32(), mask=~on_map)
        columns["y"] = pa.array(xy[:, 1], pa.float32(), mask=~on_map)
        columns["cluster"] = pa.array(np.asarray(cluster, np.int32), pa.int32(), mask=~on_map)
    with atomic_path(file) as tmp:
        pq.write_table(pa.table(columns), tmp)
    return targets
