"""Kinds of item (images, texts and sounds), each one `Modality` behind the contract in
`base.py`, registered here by name. A workspace holds one modality, fixed by its first ingest."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sslapp.modalities.base import (
    BadItem,
    Decoded,
    Modality,
    export_option_refusal,
    export_refusal,
    gather_rows,
    method_refusal,
    pretrain_refusal,
    preview_file,
)
from sslapp.registry import Entry, Registry

if TYPE_CHECKING:
    from sslapp.workspace import Workspace

__all__ = ["MODALITIES", "MODALITY_SETTING", "BadItem", "Decoded", "Modality", "ModalityError", "claimed_by",
           "export_option_refusal", "export_refusal", "gather_rows", "get_modality", "method_refusal", "preview_file",
           "pretrain_refusal",
           "workspace_modality"]

MODALITIES = Registry("modality", [
    Entry("image", "photos, scans and drawings: PNG, JPEG, WebP, BMP, TIFF, GIF", "sslapp.modalities.image:IMAGE"),
    Entry("text", "texts: .txt files (one text each) or tables with a text column: CSV, TSV, JSON Lines, "
          "Parquet", "sslapp.modalities.text:TEXT"),
    Entry("audio", "sounds: WAV, FLAC, OGG and MP3 recordings, cut into 1-second windows",
          "sslapp.modalities.audio:AUDIO"),
])
MODALITY_SETTING = "modality"  # the workspace's kind of item, written by its first ingest
DEFAULT = "image"  # workspaces made before modalities existed hold images


class ModalityError(ValueError):
    """Items of another kind than the workspace holds; says both kinds and what to do."""


def get_modality(name: str) -> Modality:
    return MODALITIES.load(name)


def workspace_modality(ws: Workspace) -> Modality:
    """The modality this workspace holds (images where nothing was ingested yet). Once the first ingest has
    written it, it never changes, so the workspace object remembers it: a Data page of 240 thumbnails asked
    the store 627 times (0.1 s)."""
    name = getattr(ws, "_modality_name", None)
    if name is None:
        name = ws.store.get_setting(MODALITY_SETTING)
        if name is not None:
            ws._modality_name = name  # fixed from the first ingest on
    return get_modality(name or DEFAULT)


def claimed_by(file_name: str) -> list[str]:
    """The modalities that read a file of this name (by suffix), in registry order."""
    return [name for name in MODALITIES if get_modality(name).reads(file_name)]
