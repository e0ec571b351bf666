"""Parity with torchvision: same state dict, same logits, same parameter counts, same preprocessing.

For every architecture in the vision zoo, torchvision's model (random weights, BatchNorm statistics
perturbed so they matter) is saved with ``torch.save(state_dict)``, loaded by
``hubkit.load(name, weights=path)``, and both run the same batch in eval mode.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import hubkit

pytestmark = pytest.mark.parity

TORCHVISION_ARCHS = [
    "alexnet", "vgg11", "vgg11_bn", "vgg16", "vgg16_bn", "resnet18", "resnet34", "resnet50", "resnet101",
    "resnet152", "wide_resnet50_2", "resnext50_32x4d", "squeezenet1_1", "mobilenet_v2", "mobilenet_v3_small",
    "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0", "efficientnet_b0", "densenet121", "vit_b_16",
    "resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3",
    "efficientnet_b4", "efficientnet_b5", "efficientnet_b6", "efficientnet_b7", "convnext_tiny", "convnext_small",
    "convnext_base", "convnext_large",
]


def _calibrate_batchnorm(model, x: np.ndarray, torch) -> None:
    """Give BatchNorm real statistics (one training-mode pass on ``x``) and non-trivial affine parameters.

    Default statistics (mean 0, var 1) would hide eps and statistics bugs, and with random weights they
    let deep residual nets' logits grow to 1e8, where float32 rounding alone exceeds any fixed tolerance.
    """
    g = torch.Generator().manual_seed(0)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    with torch.no_grad():
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: the stats of exactly this batch
            m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
            m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)
        if bns:
            model.train()
            model(torch.from_numpy(x))
        for m in bns:  # no near-zero variances: dividing by them would amplify rounding noise
            m.running_var.add_(m.running_var.mean())
    model.eval()


def _compare(tv_model, name: str, x: np.ndarray, tmp_path, torch, **kwargs) -> None:
    tv_model.eval()
    path = tmp_path / f"{name}.pth"
    torch.save(tv_model.state_dict(), path)
    model = hubkit.load(name, weights=str(path), **kwargs)
    assert not model.training
    tv_params = sum(p.numel() for p in tv_model.parameters())
    assert sum(p.numel() for p in model.parameters()) == tv_params
    with torch.no_grad():
        expected = tv_model(torch.from_numpy(x)).numpy()
    with hubkit.no_grad():
        got = model(hubkit.from_numpy(x)).numpy()
    assert got.shape == expected.shape
    assert got.dtype == np.float32
    diff = float(np.abs(got - expected).max())
    assert diff < 1e-4, f"{name}: max abs logit difference {diff:.3g} (logit scale {np.abs(expected).max():.3g})"


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_logits_match_torchvision(name, tmp_path):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv_model = torchvision.models.get_model(name, weights=None)
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    _calibrate_batchnorm(tv_model, x, torch)
    _compare(tv_model, name, x, tmp_path, torch)


def test_vit_b_16_at_384_pixels_matches_torchvision(tmp_path):
    """The SWAG end-to-end weights need image_size=384 (a longer position embedding)."""
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(1)
    tv_model = torchvision.models.vit_b_16(weights=None, image_size=384)
    assert sum(p.numel() for p in tv_model.parameters()) == hubkit.model_info("vit_b_16.IMAGENET1K_SWAG_E2E_V1")[
        "weights"][0]["num_params"]
    x = np.random.default_rng(1).standard_normal((1, 3, 384, 384)).astype(np.float32)
    _compare(tv_model, "vit_b_16", x, tmp_path, torch, image_size=384)


def test_lenet5_matches_the_same_network_written_in_torch(tmp_path):
    """LeNet-5 has no torchvision counterpart: compare with the same layers built from torch.nn."""
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(2)
    tv_model = nn.Sequential()
    tv_model.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2))
    tv_model.flat = nn.Flatten()
    tv_model.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, 10))
    x = np.random.default_rng(2).standard_normal((4, 1, 28, 28)).astype(np.float32)
    _compare(tv_model, "lenet5", x, tmp_path, torch)


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_registered_parameter_counts_match_torchvision(name):
    torchvision = pytest.importorskip("torchvision")
    enum = torchvision.models.get_model_weights(name)
    info = hubkit.model_info(name)
    by_tag = {w["tag"]: w for w in info["weights"]}
    assert set(by_tag) == {w.name for w in enum}, "every torchvision IMAGENET1K tag is registered"
    assert info["default"] == enum.DEFAULT.name
    for w in enum:
        row = by_tag[w.name]
        assert row["num_params"] == w.meta["num_params"]
        assert row["url"] == w.url
        published = {k: v for k, v in w.meta["_metrics"].items() if not any(math.isnan(x) for x in v.values())}
        assert row["metrics"] == published
        assert row["min_size"] == list(w.meta["min_size"])
    tv_model = torchvision.models.get_model(name, weights=None)
    model = hubkit.load(name)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in tv_model.parameters())


@pytest.mark.parametrize("name", TORCHVISION_ARCHS)
def test_preprocessing_and_categories_match_torchvision(name):
    torchvision = pytest.importorskip("torchvision")
    enum = torchvision.models.get_model_weights(name)
    for w in enum:
        ours = hubkit.get_weights(f"{name}.{w.name}")
        assert ours.meta["categories"] == w.meta["categories"]
        theirs = w.transforms()
        mine = ours.transforms()
        assert mine.crop_size == list(theirs.crop_size)
        assert mine.resize_size == list(theirs.resize_size)
        assert mine.interpolation.value == theirs.interpolation.value
        assert mine.mean == list(theirs.mean) and mine.std == list(theirs.std)


def _test_image(h: int, w: int, mode: str = "RGB"):
    from PIL import Image

    rng = np.random.default_rng(h * 1000 + w)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], axis=-1)
    noise = rng.integers(0, 40, size=(h, w, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB").convert(mode)


@pytest.mark.parametrize("tag", ["resnet18.IMAGENET1K_V1", "resnet50.IMAGENET1K_V2", "efficientnet_b0.IMAGENET1K_V1",
                                 "vit_b_16.IMAGENET1K_SWAG_E2E_V1", "vgg16.IMAGENET1K_FEATURES"])
@pytest.mark.parametrize("size", [(300, 400), (500, 333), (224, 224), (180, 260)])
def test_transforms_match_torchvision_on_pil_images(tag, size):
    pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    img = _test_image(*size)
    arch, t = tag.split(".")
    theirs = torchvision.models.get_model_weights(arch)[t].transforms()(img).numpy()
    preset = hubkit.get_weights(tag).transforms()
    mine = preset(img).numpy()
    assert mine.shape == theirs.shape and mine.dtype == np.float32
    std = np.array(preset.std)[:, None, None]
    # compare in pixel units (undo the division by std): within 1/255 per pixel
    assert float(np.abs((mine - theirs) * std).max()) <= 1.0 / 255 + 1e-6


@pytest.mark.parametrize("tag", ["resnet18.IMAGENET1K_V1", "efficientnet_b0.IMAGENET1K_V1"])
def test_transforms_match_torchvision_on_uint8_tensors(tag):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    arr = np.asarray(_test_image(310, 420))
    chw = np.ascontiguousarray(arr.transpose(2, 0, 1))
    arch, t = tag.split(".")
    theirs = torchvision.models.get_model_weights(arch)[t].transforms()(torch.from_numpy(chw)).numpy()
    ours = hubkit.get_weights(tag).transforms()
    for given in (hubkit.from_numpy(chw), arr):  # a (C, H, W) Tensor and an (H, W, C) ndarray
        mine = ours(given).numpy()
        std = np.array(ours.std)[:, None, None]
        assert float(np.abs((mine - theirs) * std).max()) <= 1.0 / 255 + 1e-6
