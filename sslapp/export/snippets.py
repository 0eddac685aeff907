"""The standalone predict_onnx.py an export carries, for its kind of item.

Images and texts: a script kept as it is (`onnx_snippet.py`, `text_snippet.py`). Sounds: `audio_snippet.py`
with sslapp's sound front end (`sslapp.modalities.audio.frontend`, numpy only) copied in where the script
imports it, and ingestion's shortest sound, so the script cuts and draws windows with the very code
the app ran on its cache: one definition, nothing restated.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = {"image": HERE / "onnx_snippet.py", "text": HERE / "text_snippet.py", "audio": HERE / "audio_snippet.py"}
FRONTEND_MARK = "# sslapp: frontend"  # on the line that imports it
MIN_SECONDS_MARK = "# sslapp: MIN_SECONDS"


def snippet(modality: str) -> str:
    """predict_onnx.py's text for an export of `modality` ("image", "text" or "audio")."""
    text = SCRIPTS[modality].read_text(encoding="utf-8")
    return audio_script(text) if modality == "audio" else text


def frontend_source() -> str:
    """sslapp's sound front end as a block of the script: its module docstring as comments, without the
    `from __future__` line (the script has its own)."""
    from sslapp.modalities.audio import frontend

    source = inspect.getsource(frontend)
    module = ast.parse(source)
    doc = ast.get_docstring(module) or ""
    body = [line for line in source.splitlines()[module.body[0].end_lineno:]  # after the docstring
            if line.strip() != "from __future__ import annotations"]
    header = ["# --- sslapp's sound front end (sslapp/modalities/audio/frontend.py), copied at export ---",
              *(f"# {line}".rstrip() for line in doc.splitlines())]
    return "\n".join([*header, *body]).rstrip() + "\n# --- end of the front end ---"


def audio_script(template: str) -> str:
    """The sound script: the front end's import replaced by its source, ingestion's MIN_SECONDS filled in."""
    from sslapp.modalities.audio.decode import MIN_SECONDS

    out: list[str] = []
    filled: set[str] = set()
    for line in template.splitlines():
        if FRONTEND_MARK in line:
            out.append(frontend_source())
            filled.add(FRONTEND_MARK)
        elif MIN_SECONDS_MARK in line:
            out.append(f"MIN_SECONDS = {MIN_SECONDS!r}  # a shorter recording is refused, as sslapp refuses it")
            filled.add(MIN_SECONDS_MARK)
        else:
            out.append(line)
    if filled != {FRONTEND_MARK, MIN_SECONDS_MARK}:  # a script that would import sslapp, or guess
        raise RuntimeError(f"{SCRIPTS['audio'].name} lost its markers: {FRONTEND_MARK!r}, {MIN_SECONDS_MARK!r}")
    return "\n".join(out) + "\n"
