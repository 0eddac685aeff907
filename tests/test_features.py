"""Choosing the embedding (pure functions against dense references) and the features service on a real workspace."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pytest
from PIL import Image

from sslapp.estimators.propagate import knn_graph
from sslapp.features.choose import (
    MAX_FOLDS,
    MAX_GRAPH_ROWS,
    MIN_PER_CLASS,
    SCORE_PER_CLASS,
    choose,
    first_per_class,
    graph_cv_accuracy,
    measurable,
    prior_index,
    replace_margin,
    scoring_rows,
)
from sslapp.modalities.image import IMAGE
from sslapp.modalities.image.prior import is_grayscale
from sslapp.modalities.text import TEXT


# -- choose ------------------------------------------------------------------------------
def dense_poisson_argmax(weights, sources: np.ndarray, source_labels: np.ndarray) -> np.ndarray:
    """Poisson learning by a dense pseudo-inverse (Calder et al. 2020) on a connected graph, each class's
    scores standardised as the app does before its softmax; the predicted class of every row."""
    present, local = np.unique(source_labels, return_inverse=True)
    W = weights.toarray()
    np.fill_diagonal(W, 0.0)
    d = W.sum(axis=1)
    L = np.eye(len(W)) - W / np.sqrt(d[:, None] * d[None, :])
    onehot = np.eye(len(present))[local]
    b = np.zeros((len(W), len(present)))
    b[sources] = onehot - onehot.mean(axis=0)
    u = np.linalg.pinv(L) @ (b / np.sqrt(d)[:, None]) / np.sqrt(d)[:, None]
    z = (u - u.mean(axis=0)) / u.std(axis=0)
    return present[z.argmax(axis=1)]


def reference_graph_cv(features: np.ndarray, labeled_idx: np.ndarray, labels: np.ndarray) -> float | None:
    """Each fold hides one label of every class with two or more (the folds laid out as the docstring of
    graph_cv_accuracy says, with its seed 0 permutation); every other label is a source."""
    classes, counts = np.unique(labels, return_counts=True)
    scored = classes[counts >= MIN_PER_CLASS]
    if len(scored) < 2:
        return None
    weights = knn_graph(features).weights
    folds = min(MAX_FOLDS, counts[counts >= MIN_PER_CLASS].min())
    fold_of = np.full(len(labels), -1)
    rng = np.random.default_rng(0)
    for c in scored:
        rows = np.flatnonzero(labels == c)
        fold_of[rng.permutation(rows)] = np.arange(len(rows)) % folds
    right = 0
    for f in range(folds):
        held = fold_of == f
        assert set(labels[held]) == set(scored) and set(labels[~held]) == set(classes)
        pred = dense_poisson_argmax(weights, labeled_idx[~held], labels[~held])
        right += int((pred[labeled_idx[held]] == labels[held]).sum())
    return right / int((fold_of >= 0).sum())


@pytest.mark.parametrize("seed", range(3))
def test_graph_cv_accuracy_matches_a_dense_reference(seed):
    rng = np.random.default_rng(seed)
    truth = np.arange(90) % 3
    features = np.eye(6)[truth] * 1.6 + rng.normal(size=(90, 6))  # overlapping: mistakes happen
    labeled_idx = rng.choice(90, size=21, replace=False)
    labels = truth[labeled_idx] * 2 + 1  # class ids need not be 0..k-1
    labels[0] = 8  # a class with one label is never held out, always a source
    got = graph_cv_accuracy(features, labeled_idx, labels)
    want = reference_graph_cv(features, labeled_idx, labels)
    assert got is not None and got == pytest.approx(want, abs=1e-12)
    assert 0.3 < got < 1.0  # a real comparison, not two perfect scores


def test_graph_cv_accuracy_needs_two_classes_with_two_labels():
    x = np.random.default_rng(0).normal(size=(30, 4))
    assert graph_cv_accuracy(x, np.array([0, 1, 2]), np.array([0, 0, 1])) is None
    assert graph_cv_accuracy(x, np.array([0, 1, 2]), np.array([0, 1, 2])) is None
    assert graph_cv_accuracy(x, np.array([], np.int64), np.array([], np.int64)) is None
    assert graph_cv_accuracy(x, np.array([0, 1, 2, 3]), np.array([0, 0, 1, 1])) is not None


def separable(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features with two clean classes, labelled rows, their labels): 5 labels per class (SCORE_PER_CLASS)."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    features = np.eye(8)[truth] * 5 + rng.normal(size=(n, 8)) * 0.3
    labeled_idx = np.arange(10)
    return features, labeled_idx, truth[labeled_idx]


def isolated(features: np.ndarray, labelled_rows: list[int], first_spare: int = 10, seed: int = 0) -> np.ndarray:
    """Each given labelled row moved, with 10 unlabelled rows, into a clump of its own far from the rest
    (its own kNN component): held out it cannot be predicted, as a source it changes nothing else, so
    each costs exactly one labelled image of accuracy."""
    out = features.copy()
    rng = np.random.default_rng(seed)
    spare = iter(range(first_spare, len(features)))
    for k, row in enumerate(labelled_rows):
        members = [row] + [next(spare) for _ in range(10)]
        out[members] = np.eye(8)[2 + k] * 5 + rng.normal(size=(11, 8)) * 0.3
    return out


def test_choose_uses_the_prior_until_labels_can_measure():
    good, _, _ = separable()
    noise = np.random.default_rng(1).normal(size=good.shape)
    choice = choose([noise, good], np.array([0, 1]), np.array([0, 1]), prior=0, names=["noise", "good"])
    assert choice.index == 0 and choice.scores == [None, None] and choice.n_scored == 0
    assert "noise" in choice.reason and "nothing can be measured" in choice.reason
    assert choose([noise, good], np.array([], np.int64), np.array([], np.int64), prior=1).index == 1


def test_choose_picks_the_measurably_better_candidate():
    good, idx, labels = separable()
    noise = np.random.default_rng(1).normal(size=good.shape)
    choice = choose([noise, good], idx, labels, prior=0, names=["noise", "good"])
    assert choice.index == 1 and choice.n_scored == 10
    assert choice.scores[1] == 1.0 and choice.scores[0] < 0.8
    assert choice.reason.index("good 100%") < choice.reason.index("noise")  # ranked, best first
    assert choose([good, noise], idx, labels, prior=1).index == 0  # by measurement, wherever it sits


def test_choose_keeps_the_prior_on_a_tie_or_within_one_standard_error():
    good, idx, labels = separable()
    assert choose([good, good.copy()], idx, labels, prior=1).index == 1
    assert choose([good, good.copy()], idx, labels, prior=0).index == 0
    one_off = isolated(good, [1])  # exactly one labelled image worse
    assert graph_cv_accuracy(one_off, idx, labels) == pytest.approx(9 / 10)
    assert choose([good, one_off], idx, labels, prior=1).index == 1  # 1.0 - 0.9 is one label: keep
    two_off = isolated(good, [1, 3])
    assert graph_cv_accuracy(two_off, idx, labels) == pytest.approx(8 / 10)
    assert replace_margin(0.8, 10) == pytest.approx(0.4 / 10 ** 0.5)  # one standard error, above 1/10
    assert choose([good, two_off], idx, labels, prior=1).index == 0  # 0.2 better: switch
    assert replace_margin(1.0, 10) == pytest.approx(0.1) and replace_margin(0.5, 4) == pytest.approx(0.25)


def test_choose_scores_on_the_first_labels_of_each_class():
    """Later labels come from uncertainty sampling: only the first SCORE_PER_CLASS of each class count."""
    good, _, _ = separable()
    truth = np.arange(64) % 2
    idx = np.arange(30)
    late_mistakes = isolated(good, [21, 23, 25], first_spare=30)  # labelled past the first five per class
    assert graph_cv_accuracy(late_mistakes, idx, truth[idx]) < 1.0
    choice = choose([good, late_mistakes], idx, truth[idx], prior=1)
    assert choice.n_scored == 2 * SCORE_PER_CLASS and choice.scores == [1.0, 1.0] and choice.index == 1
    rows, kept = first_per_class(np.array([7, 3, 9, 4, 8, 1]), np.array([1, 0, 1, 0, 1, 1]), k=2)
    assert rows.tolist() == [7, 3, 9, 4] and kept.tolist() == [1, 0, 1, 0]


def test_candidates_are_scored_on_the_labelled_rows_and_a_fixed_sample():
    labelled = np.array([12_000, 3, 40_000])
    rows, local = scoring_rows(50_000, labelled)
    assert len(rows) == MAX_GRAPH_ROWS and len(set(rows.tolist())) == MAX_GRAPH_ROWS
    assert rows[local].tolist() == labelled.tolist()  # the labelled rows, where choose looks for them
    again, _ = scoring_rows(50_000, labelled)
    assert np.array_equal(rows, again)  # seeded: the cached features of the sample serve every round
    small, small_local = scoring_rows(500, labelled[1:2])
    assert np.array_equal(small, np.arange(500)) and small_local.tolist() == [3]
    assert not measurable(np.array([0, 0, 1])) and measurable(np.array([0, 0, 1, 1]))
    assert not measurable(np.array([], np.int64))


def test_is_grayscale():
    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 256, (20, 8, 8, 1), dtype=np.uint8), 3, axis=-1)
    assert is_grayscale(gray)
    assert is_grayscale(gray[..., :1])
    jitter = gray.astype(np.int16)
    jitter[..., 1] = np.clip(jitter[..., 1] + rng.integers(-2, 3, jitter.shape[:-1]), 0, 255)
    assert is_grayscale(jitter.astype(np.uint8))  # JPEG-like noise between the channels
    colour = rng.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    assert not is_grayscale(colour)
    mostly_gray = gray.copy()
    mostly_gray[3, :4, :4] = (250, 10, 10)  # one red corner in one image: colour
    assert not is_grayscale(mostly_gray)
    assert not is_grayscale(np.zeros((0, 8, 8, 3), np.uint8))


def test_prior_index_follows_each_modalitys_start_order():
    colour = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    gray = colour[..., :1]
    assert prior_index(["imagenet", "patches", "pixels"], IMAGE.start_order(colour)) == 0
    # grayscale: a start fitted on the images themselves (which one is a measured prior that may change)
    assert prior_index(["imagenet", "patches", "pixels"], IMAGE.start_order(gray)) in (1, 2)
    assert prior_index(["imagenet", "pixels"], IMAGE.start_order(gray)) == 1
    assert prior_index(["imagenet", "patches"], IMAGE.start_order(gray)) == 1
    assert prior_index(["patches", None, "imagenet"], IMAGE.start_order(colour)) == 2
    assert prior_index(["patches", None], IMAGE.start_order(colour)) == 0  # no ImageNet start: the patches
    assert prior_index([None, None, None], IMAGE.start_order(gray)) == 2  # only runs: the newest
    texts = np.zeros((3, 16), np.uint8)
    assert prior_index(["tfidf", "minilm", None], TEXT.start_order(texts)) == 1  # the sentence model first
    assert prior_index(["tfidf", None], TEXT.start_order(texts)) == 0
    # a modality that says nothing about its prior trusts its starts in the order it lists them
    plain = dataclasses.replace(TEXT, name="plain", starting_encoders=("b", "a"), prior_order=None, baseline=None)
    assert prior_index(["a", "b"], plain.start_order(texts)) == 1


def test_each_modality_names_its_cheap_baseline():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 8, 8, 3), dtype=np.uint8)
    name, feats = IMAGE.baseline_features(images, np.arange(30), seed=0)
    x = images.reshape(30, -1).astype(np.float64) / 255.0
    x -= x.mean(0)
    assert name == "raw-pixels" and feats.shape == (30, 29)  # PCA-50, capped at n - 1
    assert np.allclose(np.abs(feats[:, 0]), np.abs(x @ np.linalg.svd(x, full_matrices=False)[2][0]), atol=1e-4)
    plain = dataclasses.replace(IMAGE, name="plain", baseline=None)
    name, feats = plain.baseline_features(images, np.arange(30), seed=0)
    assert name == "first-look" and feats.shape[0] == 30


def test_pixel_pca_matches_numpy_and_round_trips_as_an_encoder(tmp_path):
    import torch

    from sslapp.models.encoder import (
        Encoder,
        EncoderConfig,
        load_encoder,
        save_encoder,
    )
    from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
    from sslapp.models.pixels import PixelPCA, fit_pixel_pca

    rng = np.random.default_rng(0)
    x01 = rng.random((20, 3, 16, 16)).astype(np.float32)
    mean, std = np.array(IMAGENET_MEAN).reshape(1, 3, 1, 1), np.array(IMAGENET_STD).reshape(1, 3, 1, 1)
    x = torch.from_numpy(((x01 - mean) / std).astype(np.float32))
    module, feats = fit_pixel_pca(x, side=8, dims=5)
    assert isinstance(module, PixelPCA) and feats.shape == (20, 5)
    pixels = x01.reshape(20, 3, 8, 2, 8, 2).mean(axis=(3, 5)).reshape(20, -1)  # 2x2 area average, channel-major
    centred = pixels - pixels.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    want = centred @ vt[:5].T
    signs = np.sign((want * feats.numpy()).sum(axis=0))  # components are defined up to sign
    assert np.allclose(feats.numpy() * signs, want, atol=1e-4)
    with torch.no_grad():
        assert torch.allclose(module(x), feats, atol=1e-5)
    enc = Encoder(EncoderConfig("pixels", 16, 16, method="pixels", extra={"backbone_options": {"side": 8, "dims": 5}}))
    enc.backbone.load_state_dict(module.state_dict())
    save_encoder(enc.eval(), tmp_path / "pixels.safetensors")
    with torch.no_grad():
        assert torch.allclose(load_encoder(tmp_path / "pixels.safetensors")(torch.from_numpy(x01)), feats, atol=1e-4)


# -- the service on a real workspace -------------------------------------------------------
N, SIZE = 40, 16
LABELLED = {0: 9, 1: 7}


def brightness_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gray images, class 0 dark and class 1 bright, same noise: only brightness tells them apart, which
    the patch dictionary normalises away by design and any plain convnet keeps."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    base = np.where(y == 0, 60, 190)[:, None, None]
    gray = np.clip(base + rng.integers(-30, 31, (n, SIZE, SIZE)), 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1), y


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A workspace with its patch dictionary fitted once (the slow part, ~7 s); tests copy it."""
    from sslapp.bench.data import workspace_from_arrays
    from sslapp.features import service

    images, _ = brightness_images(N, seed=0)
    root = tmp_path_factory.mktemp("features") / "ws"
    ws = workspace_from_arrays(root, images)
    ws.store.set_setting(service.STARTS_SETTING, ["patches"])
    made = service.ensure_starting_encoders(ws)
    ws.store.close()
    return root, made


@pytest.fixture
def fresh(template, tmp_path):
    from sslapp.workspace import open_workspace

    root, made = template
    shutil.copytree(root, tmp_path / "ws")
    return open_workspace(tmp_path / "ws"), made


def n_embeddings(ws) -> int:
    return len(ws.store.artifacts("embeddings", limit=1000))


def encode(ws, artifact, rows: np.ndarray) -> np.ndarray:
    from sslapp.features.extract import encoder_features
    from sslapp.ingest.cache import read_cache
    from sslapp.models.encoder import load_encoder

    return encoder_features(load_encoder(ws.root / artifact["path"]), read_cache(ws), rows, device="cpu")


def test_patches_start_is_made_once_with_its_features_cached(fresh):
    from sslapp.features import service

    ws, made = fresh
    assert len(made) == 1 and made[0]["meta"]["start"] == "patches"
    assert [a["id"] for a in service.encoders(ws)] == [made[0]["id"]]
    assert n_embeddings(ws) == 1  # the fit embedded every image already
    assert service.ensure_starting_encoders(ws) == []
    assert n_embeddings(ws) == 1 and len(ws.store.artifacts("encoder")) == 1
    emb = service.features_for(ws, made[0])
    assert emb.features.shape == (N, 256) and emb.name == "patch dictionary of your images"
    _, rows = service.current_items(ws)
    # the features cached from the fit are what the saved encoder computes from the cache
    assert np.allclose(emb.features, encode(ws, made[0], rows), atol=1e-3)


def test_features_are_cached_and_extended_to_new_images(fresh, tmp_path):
    from sslapp.features import service
    from sslapp.ingest.ingest import ingest

    ws, made = fresh
    art = made[0]
    first = service.features_for(ws, art)
    again = service.features_for(ws, art)
    assert n_embeddings(ws) == 1 and np.array_equal(first.features, again.features)
    folder = tmp_path / "more"
    folder.mkdir()
    extra, _ = brightness_images(6, seed=5)
    for i, img in enumerate(extra):
        Image.fromarray(img).save(folder / f"new-{i}.png")
    assert ingest(ws, [folder], workers=1, base=str(folder))["added"] == 6
    messages = []
    grown = service.features_for(ws, art, progress=lambda **kw: messages.append(kw))
    assert any("embedding 6 images" in str(m.get("message")) for m in messages)  # only the new ones
    assert grown.features.shape == (N + 6, 256) and n_embeddings(ws) == 2
    assert np.array_equal(grown.features[:N], first.features)
    assert np.array_equal(grown.item_ids[:N], first.item_ids)
    _, rows = service.current_items(ws)
    assert np.allclose(grown.features[N:], encode(ws, art, rows[N:]), atol=1e-5)
    computed = []
    service.features_for(ws, art, progress=lambda **kw: computed.append(kw))
    assert computed == [] and n_embeddings(ws) == 2  # the extended cache serves every image now


def test_imagenet_start_is_made_once(fresh):
    from sslapp.features import service
    from sslapp.models.shipped import imagenet_available

    if not imagenet_available(service.IMAGENET_BACKBONE):
        pytest.fail("the ImageNet weights package is a dependency of sslapp and must be installed")
    ws, made = fresh
    ws.store.set_setting(service.STARTS_SETTING, ["imagenet", "patches"])
    new = service.ensure_starting_encoders(ws)
    assert [a["meta"]["start"] for a in new] == ["imagenet"]
    assert service.ensure_starting_encoders(ws) == []
    arts = service.encoders(ws)
    assert [(a.get("meta") or {}).get("start") for a in arts] == ["patches", "imagenet"]
    emb = service.features_for(ws, new[0])
    assert emb.features.shape == (N, 1280) and np.isfinite(emb.features).all()
    assert emb.name == "ImageNet EfficientNet-Lite0 (frozen)"
    assert n_embeddings(ws) == 2


def test_best_embedding_prior_measurement_and_pin(fresh):
    from sslapp.features import service
    from sslapp.ssl.train import pretrain

    ws, made = fresh
    patches_id = made[0]["id"]
    # a pretraining run: one SimCLR step of a random ResNet, which keeps brightness
    run = pretrain(ws, {"method": "simclr", "backbone": "resnet18-std", "train_size": SIZE, "epochs": 1,
                        "batch_size": 8, "max_steps": 1, "probe": False, "init": "scratch", "seed": 0})
    run_art = next(a for a in ws.store.artifacts("encoder") if a.get("run_id") == run["run_id"])

    emb = service.best_embedding(ws)  # no labels: the prior, the patches on gray images
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    assert emb.artifact["id"] == patches_id == choice["encoder_artifact_id"]
    assert "nothing can be measured" in choice["reason"]
    assert [c["encoder_artifact_id"] for c in choice["candidates"]] == [patches_id, run_art["id"]]
    assert all(c["score"] is None for c in choice["candidates"])
    # nothing to score yet: only the prior's features are needed, the run's wait for labels
    assert n_embeddings(ws) == 1 and service._cached(ws, run_art["id"]) is None

    item_ids = emb.item_ids
    _, truth = brightness_images(N, seed=0)
    for cls, count in LABELLED.items():
        class_id = ws.store.class_id(f"c{cls}", create=True)
        ws.store.set_labels(item_ids[np.flatnonzero(truth == cls)[:count]].tolist(), class_id)
    emb = service.best_embedding(ws)
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    scores = {c["encoder_artifact_id"]: c["score"] for c in choice["candidates"]}
    assert scores[run_art["id"]] == 1.0 and scores[patches_id] < 0.9, choice
    assert emb.artifact["id"] == run_art["id"] == choice["encoder_artifact_id"]
    assert choice["n_scored"] == 10 and "best on your 10 labels" in choice["reason"]  # the first 5 per class
    assert emb.notes and emb.notes[-1] == choice["reason"]
    assert n_embeddings(ws) == 2  # both scored, on every image (fewer than MAX_GRAPH_ROWS)

    ws.store.set_setting(service.PINNED_SETTING, patches_id)
    emb = service.best_embedding(ws)
    choice = ws.store.get_setting(service.CHOICE_SETTING)
    assert emb.artifact["id"] == patches_id == choice["encoder_artifact_id"]
    assert choice["reason"] == "chosen by you" and len(choice["candidates"]) == 1

    ws.store.set_setting(service.PINNED_SETTING, 10_000)  # an encoder that no longer exists
    emb = service.best_embedding(ws)
    assert emb.artifact["id"] == run_art["id"]
    assert any("is gone" in note for note in emb.notes)


def test_best_embedding_without_images_or_encoders_says_what_to_do(tmp_path):
    from sslapp.features import service
    from sslapp.workspace import open_workspace

    ws = open_workspace(tmp_path / "empty", cache_size=SIZE)
    with pytest.raises(ValueError, match="no items yet"):
        service.current_items(ws)
    ws.store.set_setting(service.STARTS_SETTING, [])
    from sslapp.bench.data import workspace_from_arrays

    images, _ = brightness_images(4, seed=1)
    ws = workspace_from_arrays(tmp_path / "empty", images)
    with pytest.raises(ValueError, match="no encoder is available"):
        service.best_embedding(ws)
