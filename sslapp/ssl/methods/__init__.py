"""SSL methods, one file each, chosen by name. Modules import lazily so the CLI stays fast. Image methods
wrap a backbone (`base.SSLMethod`) and also train on sounds' log-mel pictures (with the audio views;
BYOL-A says ``modality: audio``); text methods (`sslapp.ssl.text`) say ``modality: text``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sslapp.registry import Entry, Registry

if TYPE_CHECKING:
    from sslapp.models.backbones import Backbone
    from sslapp.ssl.methods.base import SSLMethod

_M = "sslapp.ssl.methods"
# defaults: what a plan needs to know before building the method (its hyperparameters live in the class).
METHODS = Registry("method", [
    Entry("simclr", "SimCLR — contrastive, robust default", f"{_M}.simclr:SimCLR"),
    Entry("mocov3", "MoCo v3 — contrastive with a momentum encoder", f"{_M}.mocov3:MoCoV3"),
    Entry("byol", "BYOL — no negatives, momentum teacher", f"{_M}.byol:BYOL"),
    Entry("swav", "SwAV — prototypes and multi-crop", f"{_M}.swav:SwAV"),
    Entry("dino", "DINO — self-distillation, multi-crop", f"{_M}.dino:DINO"),
    Entry("mae", "MAE — masked autoencoder (ViT only)", f"{_M}.mae:MAE", {"vit_only": True}),
    Entry("rotation", "Rotation prediction — classic pretext baseline", f"{_M}.rotation:RotationPrediction"),
    Entry("jigsaw", "Jigsaw puzzles — name the shuffle of 3x3 tiles, classic pretext task",
          f"{_M}.jigsaw:Jigsaw"),
    Entry("colorization", "Colourisation — predict colour from the grey image (colour images only)",
          f"{_M}.colorization:Colorization"),
    Entry("byol-a", "BYOL-A — BYOL on your sounds' log-mel pictures with the audio views (sounds only)",
          f"{_M}.byol_a:BYOLA", {"modality": "audio"}),
    Entry("cpc", "CPC — predict the next frames of your sounds from the past, InfoNCE (sounds only)",
          f"{_M}.cpc:CPC", {"modality": "audio", "frames_only": True}),
    Entry("wav2vec", "wav2vec 2.0-style — find masked frames of your sounds among distractors (sounds only)",
          f"{_M}.wav2vec:Wav2VecStyle", {"modality": "audio", "frames_only": True}),
    # texts (`sslapp.ssl.text`): trained by the text loop, not around an image backbone
    Entry("simcse", "SimCSE — MiniLM tuned on your texts, dropout makes the two views",
          "sslapp.ssl.text.simcse:SimCSE", {"modality": "text"}),
    Entry("word2vec", "Word2Vec + SIF — word vectors learned from your texts, averaged per text",
          "sslapp.ssl.text.word2vec:Word2VecSIF", {"modality": "text"}),
    Entry("mlm", "Masked language modelling — MiniLM continued on your texts (BERT's objective)",
          "sslapp.ssl.text.mlm:MaskedLM", {"modality": "text"}),
    Entry("mlm-scratch", "Masked language modelling — a small BERT from scratch on your texts",
          "sslapp.ssl.text.mlm:MaskedLMScratch", {"modality": "text"}),
])


def modality_of(name: str) -> str:
    """The kind of item the method trains on ("image" unless its entry says otherwise)."""
    return str(METHODS.get_entry(name).defaults.get("modality", "image"))


def method_class(name: str) -> type[SSLMethod]:
    return METHODS.load(name)


def build_method(name: str, backbone: Backbone, **hparams: Any) -> SSLMethod:
    """The method called `name` around `backbone` (heads randomly initialised); image methods only."""
    if modality_of(name) == "text":
        raise ValueError(f"{name} trains on {modality_of(name)}s with its own loop (sslapp.ssl.text), not around "
                         "an image backbone")
    return method_class(name)(backbone, **hparams)
