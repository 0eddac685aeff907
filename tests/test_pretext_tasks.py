"""The pieces of the jigsaw and colourisation pretext tasks on tiny tensors: the permutation set, the
tiles and their inverse, the Lab conversion and colour bins, and the refusal of grey images. (Both
methods train, checkpoint and resume in tests/test_pretrain.py and take real steps in test_ssl_losses.py.)"""

import kornia
import numpy as np
import pytest
import torch

from sslapp.bench.data import synthetic_images, workspace_from_arrays
from sslapp.models.backbones import build_backbone, feature_map
from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD, imagenet_normalise
from sslapp.ssl.methods import build_method
from sslapp.ssl.methods.colorization import Colorization, ab_bins, grey_of, rgb_to_lab, soft_encode
from sslapp.ssl.methods.jigsaw import cut_tiles, permutation_set, shuffle_tiles, unshuffle_tiles
from sslapp.ssl.train import PretrainError, pretrain

RESNET = "resnet18-w16"


def test_permutation_set_is_distinct_deterministic_and_far_apart():
    perms = permutation_set(100)
    assert perms.shape == (100, 9)
    assert (np.sort(perms, axis=1) == np.arange(9)).all() and len(np.unique(perms, axis=0)) == 100
    hamming = (perms[:, None] != perms[None]).sum(-1)
    off_diagonal = hamming[~np.eye(100, dtype=bool)]
    # the paper's average for 100 (8.08); the greedy maximin choice also keeps every pair 6 tiles apart
    assert off_diagonal.min() >= 6 and off_diagonal.mean() >= 8.0
    # computed again from scratch, the same set; a smaller one is its beginning, so class k keeps its meaning
    assert np.array_equal(permutation_set.__wrapped__(16), perms[:16])
    m = build_method("jigsaw", build_backbone(RESNET, 16), tile_dim=8, hidden_dim=16)
    assert torch.equal(m.perms, torch.from_numpy(perms)) and m.classifier[-1].out_features == 100


def test_tiles_put_back_by_the_inverse_permutation_give_the_image():
    x = torch.arange(2 * 3 * 14 * 14, dtype=torch.float32).view(2, 3, 14, 14)
    tiles = cut_tiles(x, gap=0)  # cells of 4 px, the central 12 px
    assert tiles.shape == (2, 9, 3, 4, 4)
    perms = torch.from_numpy(permutation_set(100)[[5, 42]])
    shuffled = shuffle_tiles(tiles, perms)
    for b in range(2):
        for i in range(9):
            assert torch.equal(shuffled[b, i], tiles[b, perms[b, i]])
    back = unshuffle_tiles(shuffled, perms)
    image = back.view(2, 3, 3, 3, 4, 4).permute(0, 3, 1, 4, 2, 5).reshape(2, 3, 12, 12)
    assert torch.equal(image, x[..., 1:13, 1:13])
    # with a gap each tile is a crop of its own cell at its offset
    offsets = torch.randint(0, 2, (2, 9, 2))
    gapped = cut_tiles(x, gap=1, offsets=offsets)
    for b, i in [(0, 0), (1, 4), (1, 8)]:
        top, left = 1 + 4 * (i // 3) + offsets[b, i, 0], 1 + 4 * (i % 3) + offsets[b, i, 1]
        assert torch.equal(gapped[b, i], x[b, :, top:top + 3, left:left + 3])


def test_jigsaw_tiles_are_normalised_and_sized_for_the_backbone():
    m = build_method("jigsaw", build_backbone(RESNET, 32), min_tile=0, tile_dim=8, hidden_dim=16)
    assert (m.gap, m.tile_size) == (2, 8)  # cells of 10 px, 15% gap
    tiles, labels = m.puzzles(torch.rand(4, 3, 32, 32) * 5)
    assert tiles.shape == (36, 3, 8, 8) and labels.shape == (4,) and 0 <= labels.min() <= labels.max() < 100
    assert tiles.mean(dim=(-2, -1)).abs().max() < 1e-4
    assert torch.allclose(tiles.std(dim=(-2, -1)), torch.ones(36, 3), atol=1e-3)
    assert build_method("jigsaw", build_backbone(RESNET, 32), tile_dim=8, hidden_dim=16).tile_size == 16
    vit = build_method("jigsaw", build_backbone("vit-tiny-p4", 32), min_tile=10, tile_dim=8, hidden_dim=16)
    assert vit.tile_size == 12  # 10 px, up to the ViT's patch multiple
    with pytest.raises(ValueError, match="at least 12 px"):
        build_method("jigsaw", build_backbone(RESNET, 8))


def test_lab_conversion_matches_known_values_and_kornia():
    colours = torch.tensor([[1.0, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]])  # (5, 3)
    lab = rgb_to_lab(colours.T.reshape(1, 3, 5, 1))[0, :, :, 0].T
    known = torch.tensor([[100.0, 0, 0], [0, 0, 0], [53.24, 80.09, 67.20], [87.73, -86.18, 83.18],
                          [32.30, 79.19, -107.86]])  # sRGB white, black, red, green, blue under D65
    assert torch.allclose(lab, known, atol=0.05)
    x = torch.rand(2, 3, 8, 8)
    assert torch.allclose(rgb_to_lab(x), kornia.color.rgb_to_lab(x), atol=0.01)
    grey = rgb_to_lab(grey_of(x).expand(-1, 3, -1, -1))
    assert torch.allclose(grey[:, 0], rgb_to_lab(x)[:, 0], atol=1e-3)  # the same lightness, no colour
    assert grey[:, 1:].abs().max() < 1e-3


def test_colour_bins_and_the_soft_encoding():
    bins = ab_bins()
    assert 200 <= len(bins) <= 320  # the paper's in-gamut cells of 10: 313
    assert (bins % 10 == 0).all() and (bins == 0).all(dim=1).any()
    index, weight = soft_encode(torch.tensor([[0.0, 0.0], [80.09, 67.20]]), bins)
    assert torch.allclose(weight.sum(1), torch.ones(2)) and (weight[:, :1] >= weight).all()
    assert bins[index[0, 0]].tolist() == [0.0, 0.0] and bins[index[1, 0]].tolist() == [80.0, 70.0]


def test_colorization_sees_grey_and_predicts_the_colour_of_each_area():
    m = build_method("colorization", build_backbone(RESNET, 16), hidden_dim=8)
    red = torch.zeros(2, 3, 16, 16)
    red[:, 0] = 1.0
    grey, ab = m.inputs_and_targets(imagenet_normalise(red))
    assert grey.shape == (2, 3, 16, 16) and ab.shape == (2, 2, 4, 4)
    seen = grey * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    assert torch.allclose(seen[:, 0], seen[:, 2], atol=1e-5)
    assert torch.allclose(seen[:, 0], grey_of(red)[:, 0], atol=1e-5)
    assert torch.allclose(ab[:, 0], torch.full((2, 4, 4), 80.09), atol=0.05)
    assert m.logits(grey).shape == (2, len(ab_bins()), 4, 4)
    std = build_backbone("resnet18-std", 32).module  # the ImageNet stem leaves 1x1 at 32 px: upsampled
    assert feature_map(std, torch.randn(2, 3, 32, 32)).shape == (2, 512, 1, 1)
    vit = build_backbone("vit-tiny-p8", 16).module
    assert feature_map(vit, torch.randn(2, 3, 16, 16)).shape == (2, 192, 2, 2)  # patch tokens on their grid


def test_colorization_refuses_grey_images_before_training(tmp_path):
    colour, labels = synthetic_images(8, 16)
    grey = np.repeat(colour.mean(axis=-1, keepdims=True).astype(np.uint8), 3, axis=-1)
    assert Colorization.data_refusal(colour) is None
    assert "no colour to learn" in Colorization.data_refusal(grey)
    ws = workspace_from_arrays(tmp_path / "grey", grey, labels)
    with pytest.raises(PretrainError, match="these images are grey.*Choose another method"):
        pretrain(ws, {"method": "colorization", "epochs": 1, "batch_size": 4})
    assert ws.store.runs(kind="pretrain") == []  # refused before a run was recorded
