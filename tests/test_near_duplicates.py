"""Near-duplicates (`sslapp.curate.duplicates`, `sslapp near-duplicates`): the bundled real photos
(sample_data/, 300 CIFAR-10 PNGs) plus planted copies that were resized, JPEG re-encoded and
slightly cropped, written as files and ingested into a real workspace."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def jpeg(image: Image.Image, quality: int = 70) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def altered(path: Path, how: str) -> bytes:
    """A copy as people make them: upscaled (and cropped a little, or not), then JPEG at quality 70."""
    image = Image.open(path).convert("RGB")
    big = image.resize((40, 40), Image.Resampling.BICUBIC)
    if how == "resized":
        return jpeg(big)
    if how == "cropped":
        return jpeg(big.crop((2, 1, 39, 38)).resize((32, 32), Image.Resampling.BICUBIC))
    return jpeg(big.crop((0, 2, 40, 38)))  # "wide": not square, so ingest centre-crops it further


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The 300 sample photos plus 7 copies of 5 of them (one photo copied three times)."""
    from sslapp.ingest.ingest import ingest
    from sslapp.workspace import open_workspace

    tmp = tmp_path_factory.mktemp("dups")
    root = tmp / "images"
    shutil.copytree(SAMPLE, root / "photos", ignore=shutil.ignore_patterns("*.md"))
    originals = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.png"))
    chosen = originals[5::60]
    plan = {chosen[0]: ["resized", "cropped", "wide"], chosen[1]: ["resized"], chosen[2]: ["cropped"],
            chosen[3]: ["wide"], chosen[4]: ["cropped"]}
    (root / "copies").mkdir()
    families = []
    for n, (source, hows) in enumerate(plan.items()):
        family = [source]
        for how in hows:
            name = f"copies/{n}-{how}.jpg"
            (root / name).write_bytes(altered(root / source, how))
            family.append(name)
        families.append(sorted(family))
    ws = open_workspace(tmp / "ws", cache_size=32)
    report = ingest(ws, [str(root)], base=str(root), workers=1)
    assert report["added"] == 307
    ws.store.set_setting("features.starts", ["pixels"])  # fast; the choice of embedding does not matter here
    return ws, families


def test_planted_copies_are_grouped_and_nothing_else(planted):
    from sslapp.curate.duplicates import near_duplicate_groups

    ws, families = planted
    groups = near_duplicate_groups(ws)
    assert sorted(sorted(g["paths"]) for g in groups) == sorted(families)
    assert [len(g["items"]) for g in groups] == [4, 2, 2, 2, 2]  # largest first
    for g in groups:
        assert g["items"] == sorted(g["items"])
        assert g["paths"] == [ws.store.item(i)["source"] for i in g["items"]]


def test_fingerprints_and_blank_frames():
    from sslapp.curate.duplicates import duplicate_pairs, group_rows, hamming
    from sslapp.modalities.image.fingerprint import fingerprints
    from sslapp.vectors import l2_normalize

    ramp = np.tile(np.linspace(0, 255, 32, dtype=np.float32)[None, :, None], (32, 1, 3)).astype(np.uint8)
    hashes, thumbs = fingerprints(np.stack([ramp, ramp[:, ::-1], ramp.transpose(1, 0, 2)]))
    assert hashes.dtype == np.uint64 and thumbs.shape == (3, 64)
    assert list(hashes[0]) == [0, 0]  # brighter to the right: no "left brighter" bits, no vertical ones
    assert list(hashes[1]) == [2**64 - 1, 0]
    assert list(hashes[2]) == [0, 0] and hamming(hashes[0], hashes[1]) == 64
    assert np.allclose(thumbs[0].reshape(8, 8), thumbs[0].reshape(8, 8)[0])  # the same columns in every row
    # blank frames: no gradients to hash, so flat images as bright as each other are copies
    rng = np.random.default_rng(0)
    images = np.concatenate([np.full((2, 16, 16, 3), 20, np.uint8), np.full((1, 16, 16, 3), 200, np.uint8),
                             rng.integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)])
    images[1] += 1
    hashes, thumbs = fingerprints(images)
    vectors = l2_normalize(rng.standard_normal((6, 8)), dtype=np.float32)
    pairs = duplicate_pairs(vectors, hashes, thumbs, k=5)
    assert [list(g) for g in group_rows(6, pairs)] == [[0, 1]]


def test_keep_one_keeps_a_labelled_image_and_skips_the_rest(planted):
    from sslapp.curate.duplicates import near_duplicate_groups
    from sslapp.curate.read import keep_one

    ws, _ = planted
    group = near_duplicate_groups(ws)[0]["items"]
    ws.store.set_labels([group[2]], ws.store.class_id("plane", create=True))
    try:
        assert keep_one(ws, group) == {"kept": group[2], "skipped": [group[0], group[1], group[3]]}
        assert ws.store.skipped_ids() >= {group[0], group[1], group[3]}
        unlabeled = set(ws.store.unlabeled_ids())
        assert not unlabeled & set(group)  # skipped ones leave the labelling queue, nothing is deleted
        assert ws.store.count_items() == 307
        assert keep_one(ws, group[:2]) == {"kept": group[0], "skipped": [group[1]]}  # no label: the lowest id
        with pytest.raises(ValueError):
            keep_one(ws, [])
    finally:
        ws.store.unskip_items(group)
        ws.store.remove_labels([group[2]])


def test_near_duplicates_cli(planted, capsys, tmp_path):
    from sslapp.cli import main

    ws, families = planted
    assert main(["near-duplicates", str(ws.root), "--json"]) == 0
    out = capsys.readouterr()
    groups = json.loads(out.out)
    assert all(set(g) == {"items", "paths"} for g in groups)
    assert sorted(sorted(g["paths"]) for g in groups) == sorted(families)
    assert "5 groups" in out.err
    assert main(["near-duplicates", str(ws.root), "--keep-one"]) == 0
    out = capsys.readouterr()
    assert len(out.out.strip().splitlines()) == 5 and "7 skipped" in out.err
    assert len(ws.store.skipped_ids()) == 7
    ws.store.unskip_items(list(ws.store.skipped_ids()))
    from sslapp.workspace import open_workspace

    empty = open_workspace(tmp_path / "empty")
    assert main(["near-duplicates", str(empty.root), "--json"]) == 1
    out = capsys.readouterr()
    assert "no items yet" in out.err and not out.out
    assert main(["near-duplicates", str(tmp_path / "nowhere")]) == 2
