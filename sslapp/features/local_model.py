"""Bring your own text model: a sentence-transformers or Hugging Face folder becomes one more candidate
encoder of a text workspace (`sslapp models add`, the Pretrain page's "Add a local model folder").

The folder is checked without torch first (`models.text.local_files.check_folder`: safetensors only, a fast
tokenizer, the pooling), then its three files are copied into the workspace with their sha256
(`checkpoints/local-<name>-<ms>/`, so the workspace stays whole when the folder moves or changes), loaded
once by transformers and tried on two texts. Only then is an encoder file written beside the copy
(`checkpoints/start-local-<ms>.safetensors`: the copy's folder and hashes, no weights) and registered with
`meta.start = "local"`: the features service embeds with it, measures it against the other candidates on the
user's labels (`features.choose`), maps, trains and exports with it like the shipped MiniLM. Anything
refused leaves the workspace as it was (the copy is removed). Adding a name again replaces that model as a
candidate (a pin on it follows); the older copy stays for classifiers trained on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sslapp.features.read import PINNED_SETTING
from sslapp.features.starts import add_start_file
from sslapp.modalities import MODALITY_SETTING, workspace_modality
from sslapp.models.text.local_files import (
    FILES,
    LocalModelError,
    ModelFolder,
    check_folder,
    copy_files,
    remove_copy,
    slug,
)
from sslapp.workspace import Workspace

__all__ = ["LocalModelError", "add_local_model", "local_model_refusal", "run_add_model_job"]

Progress = Callable[..., None]
TRY_TEXTS = ["a short text", "Another text, with punctuation and Ünïcödé, to try the model on."]
MAX_NAME = 80


def local_model_refusal(ws: Workspace) -> str | None:
    """Why this workspace cannot take a text model folder (it holds no texts), with what to do; else None."""
    if ws.store.get_setting(MODALITY_SETTING) is None:
        return (f"{ws.root} holds nothing yet; add texts first (`sslapp ingest {ws.root} texts.csv`), then the "
                "model folder")
    modality = workspace_modality(ws)
    if modality.name != "text":
        return (f"{ws.root} holds {modality.plural}, and a sentence-transformers or Hugging Face folder embeds texts; "
                "add it to a text workspace (`sslapp ingest NEW_WS texts.csv` makes one)")
    return None


def _name(found: ModelFolder, name: str | None) -> str:
    name = " ".join((name or found.folder.name).split())
    if not name or len(name) > MAX_NAME:
        raise LocalModelError(f"a model's name must be 1 to {MAX_NAME} characters, not {len(name)}")
    return name


def add_local_model(ws: Workspace, folder: str, name: str | None = None, progress: Progress | None = None
                    ) -> tuple[dict[str, Any], ModelFolder]:
    """Check, copy, load and register the model in `folder`; (its encoder artifact, what was found).
    LocalModelError, with nothing left behind, when it is refused."""
    import numpy as np

    from sslapp.models.text.base import write_text_encoder_file
    from sslapp.models.text.local import LocalModel

    say = progress or (lambda **_: None)
    refusal = local_model_refusal(ws)
    if refusal:
        raise LocalModelError(refusal)
    found = check_folder(folder)
    name = _name(found, name)
    size = sum(found.file(f).stat().st_size for f in FILES)
    dest = ws.checkpoints_dir / f"local-{slug(name)}-{int(time.time() * 1000)}"
    say(message=f"copying {name} ({size / 1e6:.0f} MB) into the workspace")
    try:
        config = {"start": "local", "name": name, "folder": dest.name, "source": str(found.folder),
                  "layout": found.layout, "model_type": found.model_type, "pooling": found.pooling,
                  "normalize": found.normalize, "max_tokens": found.max_tokens, "pad_id": found.pad_id,
                  "sha256": copy_files(found, dest)}
        say(message=f"loading {name} with transformers")
        model = LocalModel(dest, config)
        tried = model.embed(TRY_TEXTS)
        if not np.isfinite(tried).all():
            raise LocalModelError(f"{name} gives vectors that are not finite numbers (NaN or inf) on plain texts")
        config = model.file_config()
        meta = {"start": "local", "method": "local", "modality": "text", "backbone": found.model_type, "name": name,
                "source": config["source"], "layout": found.layout, "dim": model.dim, "pooling": found.pooling,
                "normalize": found.normalize, "max_tokens": found.max_tokens, "copy": f"checkpoints/{dest.name}",
                "bytes": size, "sha256": config["sha256"]}
        replaced = [a["id"] for a in ws.store.artifacts("encoder", limit=100_000)
                    if (a.get("meta") or {}).get("start") == "local" and a["meta"].get("name") == name]
        art = add_start_file(ws, "local", ".safetensors", lambda path: write_text_encoder_file(path, config, {}),
                             meta)
    except BaseException:
        remove_copy(dest)
        raise
    if ws.store.get_setting(PINNED_SETTING) in replaced:  # a pin on this name follows it
        ws.store.set_setting(PINNED_SETTING, art["id"])
    return art, found


def run_add_model_job(ctx) -> dict[str, Any]:
    """The add_model job. params: folder, name (default: the folder's), use (pin it), map (queue a map after)."""
    from sslapp.jobs.launcher import queue_map

    ws, params = ctx.workspace, ctx.params
    art, found = add_local_model(ws, str(params["folder"]), params.get("name"), progress=ctx.progress)
    ctx.log.info("added %s from %s as encoder %s: %s", art["meta"]["name"], found.folder, art["id"], found.notes)
    if params.get("use"):
        ws.store.set_setting(PINNED_SETTING, art["id"])
    meta = art["meta"]
    return {"encoder_artifact_id": art["id"], "name": meta["name"], "source": meta["source"], "layout": found.layout,
            "model_type": found.model_type, "dim": meta["dim"], "pooling": found.pooling,
            "normalize": found.normalize, "max_tokens": found.max_tokens, "bytes": meta["bytes"], "copy": meta["copy"],
            "notes": found.notes, "pinned": ws.store.get_setting(PINNED_SETTING) == art["id"],
            "map_job": queue_map(ws) if params.get("map") else None}
