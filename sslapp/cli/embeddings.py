"""`sslapp embeddings import|export WORKSPACE FILE`: your own vectors in, the app's vectors and map out.

    sslapp embeddings import WS vecs.parquet [--name NAME] [--use] [--json]
    sslapp embeddings import WS vecs.npy [--paths PATHS.txt] [--name NAME] [--use] [--json]
    sslapp embeddings export WS out.parquet|out.npy [--encoder ID] [--overwrite] [--json]

Formats, matching and the import rules are in `sslapp.features.imported`: Parquet with `path` and
`vector` (list<float32>) columns, or an N x D `.npy` with its paths one per line in `FILE.paths.txt`
(`vecs.npy` -> `vecs.paths.txt`). Every item must get a vector; bad input is refused, and changes
nothing. An import joins the candidates the app measures (`sslapp.features.choose`); it is not
pinned unless `--use` is given (or `sslapp embed WS --use ID` later). Export writes the embedding the
app uses now (or `--encoder ID`), in the format of FILE's extension, with the newest map's `x`, `y`
and `cluster` when there is a map.
JSON: import {"encoder_artifact_id", "matched", "total", "dim"} (matched rows of total rows);
export {"file", "rows", "dim"}.
"""

from __future__ import annotations

from sslapp.cli.common import CLIError, count_items, emit, handle_errors, no_items_error, say, workspace_arg
from sslapp.words import count


def register(sub) -> None:
    p = sub.add_parser("embeddings", help="import your own vectors as an embedding, or export the app's with the map")
    verbs = p.add_subparsers(dest="verb", metavar="import|export", required=True)
    imp = verbs.add_parser("import", help="import vectors keyed by item source (.parquet, or .npy with a paths file)")
    imp.add_argument("workspace")
    imp.add_argument("file", help="vectors: .parquet (path, vector columns) or .npy (N x D)")
    imp.add_argument("--paths", metavar="PATHS.txt", help="paths of a .npy file's rows, one per line "
                     "(default: FILE.paths.txt next to it)")
    imp.add_argument("--name", help="name of this embedding (default: the file name); importing a name again "
                     "replaces it")
    imp.add_argument("--use", action="store_true",
                     help="pin it: map, suggestions and classifier use it (default: the app measures it against "
                          "the other candidates)")
    imp.add_argument("--json", action="store_true")
    imp.set_defaults(func=run_import)
    exp = verbs.add_parser("export", help="write the embedding in use (path, vector) and the map (x, y, cluster)")
    exp.add_argument("workspace")
    exp.add_argument("file", help="output: .parquet, or .npy (with FILE.paths.txt and FILE.map.csv)")
    exp.add_argument("--encoder", type=int, metavar="ID", help="export this encoder's features (`sslapp info` "
                     "lists them) instead of the embedding in use")
    exp.add_argument("--overwrite", action="store_true", help="replace existing output files")
    exp.add_argument("--json", action="store_true")
    exp.set_defaults(func=run_export)


def _workspace_with_items(path: str):
    ws = workspace_arg(path)
    if ws.store.count_items() == 0:
        raise no_items_error(ws)
    return ws


@handle_errors
def run_import(args) -> int:
    from sslapp.features.imported import VectorsError, import_vectors
    from sslapp.features.read import PINNED_SETTING, describe

    ws = _workspace_with_items(args.workspace)
    try:
        art, match, total = import_vectors(ws, args.file, args.paths, args.name)
    except VectorsError as exc:
        raise CLIError(f"{str(exc).rstrip('.')}. Nothing was imported.", 2) from None
    if args.use:
        ws.store.set_setting(PINNED_SETTING, art["id"])
    dim = art["meta"]["dim"]
    say(f"imported {describe(art)}: {dim}-d vectors for {count_items(ws, match.matched)} ({match.matched} of {count(total, 'row')} "
        f"rows matched{f', {match.by_tail} by the end of their path' if match.by_tail else ''}), "
        f"encoder artifact {art['id']}")
    extra = len(match.unmatched) + len(match.ambiguous)
    if extra:
        say(f"left out {count(extra, 'row')} that fit no single item")
    if ws.store.get_setting(PINNED_SETTING) == art["id"]:
        say("pinned: the map, suggestions and classifier use it (`sslapp embed WS --use auto` to undo)")
    else:
        say(f"the app measures it against the other embeddings; pin it with `sslapp embed {ws.root} --use "
            f"{art['id']}`")
    result = {"encoder_artifact_id": art["id"], "matched": match.matched, "total": total, "dim": dim}
    emit(result, args.json, f"encoder {art['id']}: {match.matched} of {count(total, 'row')} matched, {dim}-d")
    return 0


def _map_columns(ws, item_ids):
    """(xy with NaN rows, cluster with -1 rows, the map artifact) of the newest map over `item_ids`, or None."""
    import numpy as np

    from sslapp.maps.read import load_map

    data = load_map(ws)
    if data is None or len(data.item_ids) == 0:
        return None
    xy = np.full((len(item_ids), 2), np.nan, np.float32)
    cluster = np.full(len(item_ids), -1, np.int32)
    pos = np.clip(np.searchsorted(data.item_ids, item_ids), 0, len(data.item_ids) - 1)
    hit = data.item_ids[pos] == item_ids
    xy[hit], cluster[hit] = data.xy[pos[hit]], data.cluster[pos[hit]]
    return xy, cluster, data.artifact


@handle_errors
def run_export(args) -> int:
    from sslapp.features.imported import VectorsError, write_vectors
    from sslapp.features.read import encoders
    from sslapp.features.service import current_embedding, features_for

    ws = _workspace_with_items(args.workspace)

    def progress(**values) -> None:
        if values.get("message"):
            say(values["message"])

    try:
        if args.encoder is not None:
            arts = [a for a in encoders(ws) if a["id"] == args.encoder]
            if not arts:
                raise CLIError(f"--encoder {args.encoder}: no such encoder; `sslapp info {ws.root}` lists them", 2)
            emb = features_for(ws, arts[0], progress=progress)
        else:
            emb = current_embedding(ws, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise CLIError(str(exc), 1) from None
    source = {int(r["id"]): str(r["source"]) for r in ws.store.items()}
    paths = [source[int(i)] for i in emb.item_ids]
    if len(set(paths)) < len(paths):
        say(f"warning: {count_items(ws, len(paths) - len(set(paths)))} with a path another one has too; re-importing "
            "this file "
            "will refuse them")
    on_map = _map_columns(ws, emb.item_ids)
    xy, cluster = (on_map[0], on_map[1]) if on_map else (None, None)
    try:
        written = write_vectors(args.file, paths, emb.features, xy, cluster, overwrite=args.overwrite)
    except VectorsError as exc:
        raise CLIError(str(exc), 2) from None
    except OSError as exc:
        raise CLIError(f"could not write {args.file}: {exc}", 1) from None
    dim = int(emb.features.shape[1])
    map_note = (f"map {on_map[2]['id']} ({(on_map[2].get('meta') or {}).get('embedding_name')})" if on_map
                else "no map yet (`sslapp embed` makes one)")
    say(f"wrote {count(len(paths), 'vector')} of {emb.name} ({dim}-d) and {map_note} to {', '.join(map(str, written))}")
    emit({"file": str(written[0]), "rows": len(paths), "dim": dim}, args.json,
         f"{written[0]}: {count(len(paths), 'row')}, {dim}-d")
    return 0
