"""The whitened-patch dictionary encoder on tiny images, against a plain `F.unfold` reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sslapp.models.encoder import Encoder, EncoderConfig, load_encoder, save_encoder
from sslapp.models.normalise import IMAGENET_MEAN, IMAGENET_STD
from sslapp.models.patches import CONTRAST_EPS, PatchCodes, fit_patch_codes, fit_sample

SMALL = {"atoms": 8, "patch": 3, "dims": 4}
MEAN = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
STD = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)


def normalise(x01: torch.Tensor) -> torch.Tensor:
    return (x01 - MEAN) / STD


def random_images(n: int = 24, size: int = 12, seed: int = 0) -> torch.Tensor:
    """[0, 1] images, two of them flat (zero contrast: the case CONTRAST_EPS exists for)."""
    x = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    x[0] = 0.5
    x[-1, :, : size // 2] = 0.9
    return x


def stripes(n: int = 24, size: int = 16, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """[0, 1] gray images: horizontal (class 0) or vertical (class 1) stripes of random phase, plus noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.arange(size)
    out = np.empty((n, size, size))
    for i in range(n):
        wave = 0.5 + 0.3 * np.sign(np.sin(2 * np.pi * (t + rng.integers(4)) / 4))
        out[i] = wave[:, None] if y[i] == 0 else wave[None, :]
    out = np.clip(out + rng.normal(0, 0.08, out.shape), 0, 1)
    return torch.from_numpy(np.repeat(out[:, None], 3, axis=1)).float(), y


def reference_whitened(module: PatchCodes, x: torch.Tensor) -> torch.Tensor:
    """(B, L, 3*p*p): every patch as a vector on 0-255 values, brightness/contrast normalised, whitened."""
    m = {k: v.double() for k, v in module.state_dict().items()}
    x255 = (x.double() * STD.double() + MEAN.double()) * 255.0
    cols = F.unfold(x255, module.patch).transpose(1, 2)  # channel-major, like the conv weights
    cols = (cols - cols.mean(-1, keepdim=True)) / torch.sqrt(cols.var(-1, unbiased=True, keepdim=True) + CONTRAST_EPS)
    return (cols - m["whiten_mean"]) @ m["whiten"]


def reference_codes(module: PatchCodes, x: torch.Tensor) -> torch.Tensor:
    """Whitened patches coded against the atoms, quadrant-pooled. The activation is the documented mirror
    of Coates, Lee & Ng's triangle, max(0, d_k - mean(d)), kept because it measured better."""
    p = module.patch
    white = reference_whitened(module, x)
    d = torch.cdist(white, module.centroids.double().expand(len(x), -1, -1))  # (B, L, K)
    f = torch.relu(d - d.mean(-1, keepdim=True))
    side = x.shape[-1] - p + 1
    f = f.transpose(1, 2).reshape(len(x), module.atoms, side, side)
    return F.adaptive_avg_pool2d(f, 2).flatten(1)


def test_fit_returns_the_features_its_module_computes():
    x = normalise(random_images())
    module, feats = fit_patch_codes(x, fit_patches=2000, **SMALL)
    assert isinstance(module, PatchCodes) and not module.training
    assert feats.shape == (24, 4) and module.dim == 4 and torch.isfinite(feats).all()
    with torch.no_grad():
        assert torch.allclose(module(x), feats, atol=1e-4)
    # PCA: centred and decorrelated on the fitted images
    assert feats.mean(0).abs().max() < 1e-4
    cov = torch.cov(feats.double().t())
    assert (cov - torch.diag(cov.diagonal())).abs().max() < 1e-3 * cov.diagonal().max()
    assert module.centroids.shape == (8, 27) and module.whiten.shape == (27, 27)


@pytest.mark.parametrize("patch", [3, 6])
def test_convolutional_whitening_equals_the_unfold_reference(patch):
    size = 12 if patch == 3 else 16
    x = normalise(random_images(size=size))
    module, _ = fit_patch_codes(x, atoms=8, patch=patch, dims=4, fit_patches=2000)
    with torch.no_grad():
        got = module.whitened(x).double()
    side = size - patch + 1
    assert got.shape == (24, 3 * patch * patch, side, side)
    want = reference_whitened(module, x).transpose(1, 2).reshape(got.shape)
    assert want.abs().max() > 1.0  # a reference of zeros would prove nothing
    assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max()), rtol=0)
    # whitening worked: the fitted patches' covariance is close to the identity (WHITEN_EPS regularises)
    cov = torch.cov(want.transpose(1, 2).reshape(-1, 3 * patch * patch).t())
    assert (cov.diagonal() < 1.5).all() and cov.diagonal().mean() > 0.3


@pytest.mark.parametrize("patch", [3, 6])
def test_convolutional_codes_equal_the_unfold_reference(patch):
    x = normalise(random_images(size=12 if patch == 3 else 16))
    module, _ = fit_patch_codes(x, atoms=8, patch=patch, dims=4, fit_patches=2000)
    with torch.no_grad():
        got = module.codes(x).double()
    want = reference_codes(module, x)
    assert got.shape == want.shape == (24, 4 * 8)
    assert want.abs().max() > 0.1  # a reference of zeros would prove nothing
    assert torch.allclose(got, want, atol=1e-3 * float(want.abs().max()), rtol=0)


def test_whitening_uses_the_fitted_buffers():
    """The reference really depends on the fitted buffers: an unfitted module whitens otherwise."""
    x = normalise(random_images())
    fitted, _ = fit_patch_codes(x, fit_patches=2000, **SMALL)
    blank = PatchCodes(**SMALL)  # identity whitening, zero mean
    with torch.no_grad():
        got = blank.whitened(x).double()
        assert not torch.allclose(got, fitted.whitened(x).double(), atol=1e-2)
    want = reference_whitened(blank, x).transpose(1, 2).reshape(got.shape)
    assert torch.allclose(got, want, atol=1e-4 * float(want.abs().max()), rtol=0)


def test_saves_and_loads_as_an_encoder(tmp_path):
    x01 = random_images(size=16)
    enc = Encoder(EncoderConfig("patches", 16, 16, method="patches", extra={"backbone_options": SMALL}))
    assert enc.dim == 4
    fitted, feats = fit_patch_codes(enc.preprocess(x01), fit_patches=2000, **SMALL)
    enc.backbone.load_state_dict(fitted.state_dict())
    save_encoder(enc.eval(), tmp_path / "patches.safetensors")
    loaded = load_encoder(tmp_path / "patches.safetensors")
    assert isinstance(loaded.backbone, PatchCodes) and loaded.backbone.atoms == 8 and loaded.dim == 4
    with torch.no_grad():
        assert torch.allclose(loaded(x01), feats, atol=1e-4)
        assert torch.allclose(loaded(x01), enc(x01))
    for name, value in fitted.state_dict().items():
        assert torch.equal(loaded.backbone.state_dict()[name], value), name


def test_features_separate_horizontal_from_vertical_stripes():
    x01, y = stripes()
    _, feats = fit_patch_codes(normalise(x01), fit_patches=2000, **SMALL)
    f = F.normalize(feats.double(), dim=1).numpy()
    train, test = np.arange(12), np.arange(12, 24)
    centroids = np.stack([f[train][y[train] == c].mean(0) for c in (0, 1)])
    accuracy = ((f[test] @ centroids.T).argmax(1) == y[test]).mean()
    assert accuracy >= 0.9
    shuffled = np.random.default_rng(0).permutation(y)  # the same features cannot fit random labels
    centroids = np.stack([f[train][shuffled[train] == c].mean(0) for c in (0, 1)])
    assert ((f[test] @ centroids.T).argmax(1) == shuffled[test]).mean() < 0.9


def test_too_few_images_and_the_fit_sample():
    with pytest.raises(ValueError, match="at least 2 images"):
        fit_patch_codes(normalise(random_images(1)), **SMALL)
    assert np.array_equal(fit_sample(10, seed=0, limit=20), np.arange(10))
    rows = fit_sample(100, seed=0, limit=20)
    assert len(rows) == 20 and np.all(np.diff(rows) > 0) and rows.max() < 100
    assert np.array_equal(rows, fit_sample(100, seed=0, limit=20))


def test_the_same_images_and_seed_give_the_same_encoder():
    """torch.pca_lowrank draws from the global generator: the fit must seed it (and leave it be)."""
    x = normalise(random_images())
    _, a = fit_patch_codes(x, seed=0, fit_patches=2000, **SMALL)
    torch.rand(1)  # anything else that used the global RNG in between
    state = torch.random.get_rng_state()
    _, b = fit_patch_codes(x, seed=0, fit_patches=2000, **SMALL)
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_features_keep_their_structure_when_dims_exceed_the_images():
    """Whitening n images to n - 1 components would put them on a regular simplex (every pair equally far
    apart, no structure left): with the default 256 dims, any workspace under 257 images."""
    torch.manual_seed(0)
    x01, y = stripes()
    module, feats = fit_patch_codes(normalise(x01), atoms=8, patch=3, dims=256, fit_patches=2000)
    with torch.no_grad():
        codes = module.codes(normalise(x01)).numpy()

    def nearest_neighbour_accuracy(f: np.ndarray) -> float:
        d = ((f[:, None] - f[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return float((y[d.argmin(1)] == y).mean())

    assert nearest_neighbour_accuracy(codes) == 1.0  # the codes before PCA do tell the stripes apart
    assert nearest_neighbour_accuracy(feats.numpy()) >= 0.9
    d = torch.pdist(feats)
    assert d.min() < 0.5 * d.max()  # not a simplex
