"""The CLI in a subprocess or in this process, and a small real workspace to run it on."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

COLOURS = ("red", "green", "blue")


def sslapp(*args):
    return subprocess.run([sys.executable, "-m", "sslapp", *args], capture_output=True, text=True)


def sslapp_here(capsys, *args):
    """The same CLI in this process (torch and scikit-activeml are imported once per test session)."""
    from sslapp.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def colour_workspace(tmp_path, starts=("patches",)):
    """45 PNG files in three colour classes (red0.png ... blue14.png), ingested into a fresh workspace;
    only the given starting encoders are made (fast; the ImageNet start has its own tests)."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    root.mkdir()
    for c, name in enumerate(COLOURS):
        for i in range(15):
            a = (rng.random((20, 20, 3)) * 80).astype(np.uint8)
            a[..., c] += 150
            Image.fromarray(a).save(root / f"{name}{i}.png")
    ws = open_workspace(tmp_path / "ws", cache_size=16)
    ingest(ws, [str(root)], base=str(root), workers=1)
    ws.store.set_setting("features.starts", list(starts))
    return ws
