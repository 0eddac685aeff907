"""A text model folder the user brings (sentence-transformers or Hugging Face), read without torch: which
files it has, how it pools, whether it normalises, how many word pieces it reads; its copy in the workspace
and the hashes that copy must keep.

Only safetensors weights are read: a folder with pickled weights alone (`pytorch_model.bin`, `.pt`, ...) is
refused, as loading a pickle can run any code. The network's files are `model.safetensors`, `config.json` and
a fast tokenizer's `tokenizer.json`, at the folder's root or where sentence-transformers' `modules.json` puts
its Transformer module. Pooling comes from the Pooling module's `config.json` (mean, cls or max; other modes
are refused); a plain Hugging Face folder has none, so its vectors are the mean over the attention mask,
sentence-transformers' default. A Normalize module makes them unit length. Any other module (a Dense layer
after the pooling, ...) is refused: the vectors would not be the model's.

`check_folder` decides all that before anything is copied; `copy_files` copies the three files with their
sha256; `verify_copy` refuses a copy whose files no longer hash to what was recorded, before every load.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sslapp.models.text.minilm_files import file_sha256, remember_sha256

WEIGHTS, CONFIG, TOKENIZER = "model.safetensors", "config.json", "tokenizer.json"
FILES = (WEIGHTS, CONFIG, TOKENIZER)  # what a copy holds
PICKLED = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
MAX_TOKENS = 512  # word pieces a text is cut at, at most (sentence-transformers' max_seq_length when it says less)
ST = "sentence_transformers.models."
POOLING_KEYS = {"mean": "pooling_mode_mean_tokens", "cls": "pooling_mode_cls_token",
                "max": "pooling_mode_max_tokens"}
OTHER_POOLING = ("pooling_mode_mean_sqrt_len_tokens", "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")
# position ids of these start after the pad id (RoBERTa's `create_position_ids_from_input_ids`): 514 positions
# hold 512 word pieces
OFFSET_POSITIONS = {"roberta", "xlm-roberta", "camembert", "mpnet", "data2vec-text", "xmod", "roberta-prelayernorm",
                    "longformer", "xlm-roberta-xl"}
SAFE_SAVE = ("load it where you trust it and save it again as safetensors: `model.save_pretrained(FOLDER)` "
             "(transformers 5 writes model.safetensors; transformers 4 needs safe_serialization=True), or "
             "sentence-transformers' `model.save(FOLDER, safe_serialization=True)`")


class LocalModelError(ValueError):
    """A model folder sslapp will not read, or a copy that changed: says why and what to do."""


@dataclass
class ModelFolder:
    """What `check_folder` found: where the network's files lie and how its vectors are made."""

    folder: Path  # the folder the user named
    network: Path  # the folder holding model.safetensors, config.json and tokenizer.json
    layout: str  # "sentence-transformers" or "Hugging Face"
    model_type: str  # config.json's model_type
    pooling: str  # mean, cls or max
    normalize: bool
    max_tokens: int
    pad_id: int
    notes: list[str]  # what was decided and why, in words

    def file(self, name: str) -> Path:
        return self.network / name


def _json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LocalModelError(f"{path} cannot be read as JSON ({exc}); {what}") from None


def _modules(folder: Path) -> list[dict[str, Any]]:
    """sentence-transformers' modules.json (a list of {"type", "path", ...}), or [] for a plain folder."""
    if not (folder / "modules.json").is_file():
        return []
    modules = _json(folder / "modules.json", "it should list the sentence-transformers modules")
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise LocalModelError(f"{folder / 'modules.json'} is not a list of modules with a type each; save the "
                              "model again with sentence-transformers")
    unread = [str(m["type"]).removeprefix(ST) for m in modules
              if str(m["type"]).removeprefix(ST) not in ("Transformer", "Pooling", "Normalize")]
    if unread:
        raise LocalModelError(f"{folder.name} has sentence-transformers modules sslapp does not read "
                              f"({', '.join(unread)}); without them the vectors would not be the model's. sslapp "
                              "reads a Transformer, then Pooling and optionally Normalize")
    return modules


def _pooling(config_file: Path) -> str:
    config = _json(config_file, "it should say the pooling mode")
    if isinstance(config.get("pooling_mode"), str):  # newer sentence-transformers may write the mode by name
        modes = [{"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}.get(config["pooling_mode"],
                                                                                     config["pooling_mode"])]
    else:
        modes = [mode for mode, key in POOLING_KEYS.items() if config.get(key)]
        modes += [key.removeprefix("pooling_mode_") for key in OTHER_POOLING if config.get(key)]
    if len(modes) != 1 or modes[0] not in POOLING_KEYS:
        said = " and ".join(modes) or "no mode"
        raise LocalModelError(f"{config_file} asks for {said} pooling; sslapp pools one way: mean, cls or max")
    return modes[0]


def _network(folder: Path, modules: list[dict[str, Any]]) -> Path:
    paths = [m.get("path") or "" for m in modules if str(m["type"]).removeprefix(ST) == "Transformer"]
    if modules and len(paths) != 1:
        raise LocalModelError(f"{folder / 'modules.json'} lists {len(paths)} Transformer modules; sslapp reads one")
    return folder / paths[0] if paths else folder


def _check_weights(network: Path) -> None:
    weights = network / WEIGHTS
    if weights.is_file():
        _safetensors_header(weights)
        return
    if (network / f"{WEIGHTS}.index.json").is_file():
        raise LocalModelError(f"{network} holds its weights in shards (model.safetensors.index.json); sslapp reads "
                              "one model.safetensors: save it again in one file "
                              "(`model.save_pretrained(FOLDER, max_shard_size='50GB')`)")
    pickles = sorted(p.name for p in network.iterdir() if p.suffix.lower() in PICKLED)
    if pickles:
        raise LocalModelError(f"{network} has only pickled weights ({', '.join(pickles)}), and sslapp never loads a "
                              f"pickle: unpickling can run any code. It reads {WEIGHTS}: {SAFE_SAVE}")
    raise LocalModelError(f"{network} has no {WEIGHTS}; sslapp reads a model's weights only from safetensors "
                          "(a sentence-transformers or Hugging Face folder, as `save_pretrained` writes it)")


def _safetensors_header(path: Path) -> dict[str, Any]:
    """The header of a safetensors file; refuses a file that is not one (e.g. a Git LFS pointer)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        try:
            header = json.loads(f.read(n)) if 2 <= n <= min(size - 8, 100_000_000) else None
        except (UnicodeDecodeError, ValueError):
            header = None
    if not isinstance(header, dict):
        lfs = " (it looks like a Git LFS pointer: fetch the real file with `git lfs pull`)" if size < 1024 else ""
        raise LocalModelError(f"{path} is not a safetensors file{lfs}")
    return header


def _max_tokens(network: Path, config: dict[str, Any], notes: list[str]) -> int:
    positions = int(config.get("max_position_embeddings") or MAX_TOKENS)
    if config.get("model_type") in OFFSET_POSITIONS:
        positions -= int(config.get("pad_token_id") or 0) + 1
    limit, said = min(MAX_TOKENS, positions), "the model's positions"
    st_config = network / "sentence_bert_config.json"
    if st_config.is_file():
        st = _json(st_config, "it should say max_seq_length")
        if st.get("do_lower_case"):
            raise LocalModelError(f"{st_config} asks to lowercase every text first, which sslapp does not do; "
                                  "the vectors would not be the model's")
        if st.get("max_seq_length"):
            limit, said = min(limit, int(st["max_seq_length"])), "sentence_bert_config.json's max_seq_length"
    notes.append(f"texts are cut at {limit} word pieces ({said})")
    return limit


def _pad_id(network: Path, config: dict[str, Any]) -> int:
    padding = (_json(network / TOKENIZER, "save the tokenizer again").get("padding") or {})
    if isinstance(padding.get("pad_id"), int):
        return int(padding["pad_id"])
    return int(config.get("pad_token_id") or 0)


def check_folder(folder: str | Path) -> ModelFolder:
    """What `folder` holds and how sslapp would make vectors with it; LocalModelError when it cannot. Reads
    small files and the weights' header only (no torch): whether transformers can build the network is
    the loader's check (`sslapp.models.text.local`)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LocalModelError(f"{folder} is not a folder; name the folder that holds the model's "
                              f"{WEIGHTS}, {CONFIG} and {TOKENIZER}")
    folder = folder.resolve()
    modules = _modules(folder)
    network = _network(folder, modules)
    if not network.is_dir():
        raise LocalModelError(f"{folder / 'modules.json'} puts the Transformer in {network.name}, which is missing")
    _check_weights(network)
    if not (network / CONFIG).is_file():
        raise LocalModelError(f"{network} has no {CONFIG}: it says which network the weights belong to; save the "
                              "model with `save_pretrained`, which writes it")
    if not (network / TOKENIZER).is_file():
        raise LocalModelError(f"{network} has no {TOKENIZER}: sslapp reads a fast tokenizer's {TOKENIZER} only "
                              "(not vocab.txt or sentencepiece.bpe.model), so `sslapp predict` needs no model code; "
                              "write it with `AutoTokenizer.from_pretrained(FOLDER).save_pretrained(FOLDER)`")
    config = _json(network / CONFIG, "save the model again")
    if not config.get("model_type"):
        raise LocalModelError(f"{network / CONFIG} names no model_type, so transformers cannot tell which network "
                              "to build")
    if config.get("auto_map"):
        raise LocalModelError(f"{network / CONFIG} needs the model's own Python code (auto_map), which sslapp never "
                              "runs; use a model transformers builds by itself (BERT, RoBERTa, XLM-R, MPNet, ...)")
    notes: list[str] = []
    pooling_module = [m for m in modules if str(m["type"]).removeprefix(ST) == "Pooling"]
    pooling_file = folder / (pooling_module[0].get("path") or "1_Pooling") / CONFIG if pooling_module \
        else folder / "1_Pooling" / CONFIG
    if pooling_file.is_file():
        pooling = _pooling(pooling_file)
        notes.append(f"{pooling} pooling, as {pooling_file.parent.name}/{CONFIG} says")
    else:
        pooling = "mean"
        notes.append("mean pooling over the attention mask: the folder names no pooling (no sentence-transformers "
                     "Pooling module), and that is sentence-transformers' default")
    normalize = any(str(m["type"]).removeprefix(ST) == "Normalize" for m in modules) if modules \
        else (folder / "2_Normalize").is_dir()
    notes.append("L2-normalised, as its Normalize module says" if normalize else
                 "not normalised (no Normalize module); the app compares vectors by direction anyway")
    return ModelFolder(folder, network, "sentence-transformers" if modules or pooling_file.is_file() else
                       "Hugging Face", str(config["model_type"]), pooling, normalize,
                       _max_tokens(network, config, notes), _pad_id(network, config), notes)


def slug(name: str) -> str:
    """A file-name-safe form of a model's name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")[:60] or "model"


def copy_files(found: ModelFolder, dest: Path) -> dict[str, str]:
    """Copy the network's files into `dest` (made here), hashing them as they are written; {file: sha256}."""
    dest.mkdir(parents=True)
    hashes = {}
    for name in FILES:
        digest = hashlib.sha256()
        with open(found.file(name), "rb") as src, open(dest / name, "wb") as out:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        hashes[name] = digest.hexdigest()
        remember_sha256(dest / name, hashes[name])
    return hashes


def verify_copy(folder: Path, sha256: dict[str, str], name: str) -> None:
    """Refuse the copy of model `name` in `folder` when a file is missing or no longer hashes as recorded."""
    for file, expected in sorted(sha256.items()):
        path = folder / file
        if not path.is_file():
            raise LocalModelError(f"{path} of your model '{name}' is missing; add the model folder again "
                                  "(`sslapp models add WS FOLDER`)")
        found = file_sha256(path)
        if found != expected:
            raise LocalModelError(f"{path} of your model '{name}' changed since it was added: its sha256 is {found}, "
                                  f"recorded {expected}. sslapp will not load it; add the model folder again "
                                  "(`sslapp models add WS FOLDER --name NAME`)")


def remove_copy(folder: Path) -> None:
    """Remove a copy this process made and then refused (nothing else is ever removed)."""
    shutil.rmtree(folder, ignore_errors=True)
