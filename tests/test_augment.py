"""Batched view generation: shapes, inputs, normalisation, seeding and the maths of each op."""

import kornia
import pytest
import torch

from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
from sslapp.ssl.augment import (
    apply_color,
    color_transform,
    crop_boxes,
    gaussian_blur,
    make_views,
    random_solarize,
    resized_crop,
    to_float_images,
)
from sslapp.ssl.methods.base import ViewSpec

MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


@pytest.fixture
def batch():
    return torch.randint(0, 256, (6, 24, 24, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


def test_views_have_the_spec_shapes_and_dtype(batch):
    spec = ViewSpec(n_global=2, global_size=16, n_local=3, local_size=8, blur=(1.0, 0.1), solarize=(0.0, 0.2))
    views = make_views(batch, spec, seed=1)
    assert [tuple(v.shape) for v in views] == [(6, 3, 16, 16)] * 2 + [(6, 3, 8, 8)] * 3
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in views)
    # normalised: values lie within the ImageNet-normalised range of [0, 1] pixels
    lo, hi = ((0 - MEAN) / STD).min(), ((1 - MEAN) / STD).max()
    assert all(v.min() >= lo - 1e-4 and v.max() <= hi + 1e-4 for v in views)


def test_seeded_views_are_reproducible_and_leave_the_global_rng_alone(batch):
    spec = ViewSpec(global_size=16, blur=(0.5, 0.5), solarize=(0.2, 0.2))
    state = torch.get_rng_state()
    a, b = make_views(batch, spec, seed=7), make_views(batch, spec, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    c = make_views(batch, spec, seed=8)
    assert not torch.equal(a[0], c[0])
    assert not torch.equal(a[0], a[1])  # the two views of one call differ


def test_unseeded_views_follow_torch_manual_seed(batch):
    spec = ViewSpec(global_size=16)
    torch.manual_seed(3)
    a = make_views(batch, spec)
    torch.manual_seed(3)
    assert torch.equal(a[0], make_views(batch, spec)[0])


def test_uint8_and_float_inputs_give_the_same_views(batch):
    as_float = batch.permute(0, 3, 1, 2).float() / 255
    spec = ViewSpec(global_size=16, blur=(1.0, 0.0))
    for x, y in zip(make_views(batch, spec, seed=2), make_views(as_float, spec, seed=2), strict=True):
        assert torch.allclose(x, y, atol=1e-5)


def test_full_crop_without_colour_is_the_normalised_image(batch):
    spec = ViewSpec(n_global=1, global_size=24, global_scale=(1.0, 1.0), color=False, flip=False,
                    blur=(0.0,), solarize=(0.0,))
    (view,) = make_views(batch, spec, seed=0)
    assert torch.allclose(view * STD + MEAN, to_float_images(batch), atol=1e-5)


def test_flip_mirrors_and_boxes_stay_inside():
    x = torch.rand(4, 3, 10, 10)
    full = torch.tensor([[0.0, 0.0, 10.0, 10.0]]).repeat(4, 1)
    flip = torch.tensor([True, False, True, False])
    out = resized_crop(x, full, flip, 10)
    assert torch.allclose(out[0], x[0].flip(-1), atol=1e-5) and torch.allclose(out[1], x[1], atol=1e-5)
    boxes = crop_boxes(torch.Generator().manual_seed(0), 500, 32, 24, (0.2, 0.6))
    top, left, h, w = boxes.unbind(1)
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 32).all() and (left + w <= 24).all()
    area = h * w / (32 * 24)
    assert 0.17 < area.min() and area.max() < 0.65  # rounding allows a little slack
    # a crop box picks exactly that region when no resampling is needed
    box = torch.tensor([[2.0, 3.0, 5.0, 5.0]])
    assert torch.allclose(resized_crop(x[:1], box, torch.tensor([False]), 5), x[:1, :, 2:7, 3:8], atol=1e-5)


def test_colour_transform_identity_grayscale_and_neutral_invariance():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 6, 6)
    A, t = color_transform(x.mean(dim=(2, 3)), g, jitter_p=0.0, gray_p=0.0)
    assert torch.allclose(apply_color(x, A, t), x, atol=1e-6)
    A, t = color_transform(x.mean(dim=(2, 3)), g, jitter_p=0.0, gray_p=1.0)
    y = apply_color(x, A, t)
    assert torch.allclose(y[:, 0], y[:, 1], atol=1e-6) and torch.allclose(y[:, 1], y[:, 2], atol=1e-6)
    # brightness, contrast, saturation and hue all keep a gray image gray
    gray = torch.rand(8, 1, 6, 6).expand(-1, 3, -1, -1) * 0.5 + 0.25
    A, t = color_transform(gray.mean(dim=(2, 3)), g, jitter_p=1.0, gray_p=0.0)
    y = apply_color(gray, A, t)
    assert torch.allclose(y[:, 0], y[:, 2], atol=1e-5) and not torch.allclose(y, gray, atol=1e-3)
    # and jitter changes colourful images
    A, t = color_transform(x.mean(dim=(2, 3)), g, jitter_p=1.0, gray_p=0.0)
    assert (apply_color(x, A, t) - x).abs().amax(dim=(1, 2, 3)).min() > 1e-3


def test_blur_matches_kornia_and_solarize_inverts_bright_pixels():
    x = torch.rand(3, 3, 12, 12)
    sigma = torch.tensor([0.3, 1.0, 2.0])
    ref = kornia.filters.gaussian_blur2d(x, (5, 5), sigma[:, None].repeat(1, 2), border_type="reflect")
    assert torch.allclose(gaussian_blur(x, sigma, 5), ref, atol=1e-5)
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert torch.allclose(gaussian_blur(flat, torch.tensor([1.5]), 3), flat, atol=1e-6)
    y = random_solarize(x.clone(), torch.Generator().manual_seed(0), p=1.0)
    assert torch.allclose(y, torch.where(x >= 0.5, 1 - x, x))


def test_bad_batches_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="4 dimensions"):
        make_views(torch.zeros(3, 8, 8, dtype=torch.uint8), ViewSpec(global_size=8))
    with pytest.raises(ValueError, match=r"\(B, S, S, 3\)"):
        make_views(torch.zeros(2, 3, 8, 8, dtype=torch.uint8), ViewSpec(global_size=8))
    with pytest.raises(ValueError, match="float batches"):
        make_views(torch.zeros(2, 8, 8, 3), ViewSpec(global_size=8))
    with pytest.raises(ValueError, match="local_size"):
        ViewSpec(n_local=2)


def test_views_stay_float32_inside_bf16_autocast(batch):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        views = make_views(batch, ViewSpec(global_size=16, blur=(1.0, 1.0)), seed=0)
    assert all(v.dtype == torch.float32 for v in views)
    assert torch.allclose(views[0], make_views(batch, ViewSpec(global_size=16, blur=(1.0, 1.0)), seed=0)[0])
