"""Every vision architecture builds, has the registered parameter count, and runs at its minimum input size."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.errors import ShapeError

VISION = hubkit.list_models(modality="vision")
# architecture-only models take 1x28x28 digits unless listed here: (channels, height, width)
ARCH_ONLY_INPUT = {name: (3, 32, 32) for name in ("resnet20", "resnet32", "resnet44", "resnet56", "resnet110")}


@pytest.mark.parametrize("name", VISION)
def test_builds_with_registered_parameter_count_and_runs_at_min_size(name):
    info = hubkit.model_info(name)
    hubkit.manual_seed(0)
    model = hubkit.load(name).eval()
    count = sum(p.numel() for p in model.parameters())
    if info["weights"]:
        default = next(w for w in info["weights"] if w["tag"] == info["default"])
        assert count == default["num_params"]
        h, w = default["min_size"]
        channels, classes = 3, default["num_classes"]
    else:
        channels, h, w = ARCH_ONLY_INPUT.get(name, (1, 28, 28))
        classes = 10
    x = hubkit.from_numpy(np.random.default_rng(0).standard_normal((2, channels, h, w)).astype(np.float32))
    with hubkit.no_grad():
        out = model(x)
    assert out.shape == (2, classes)
    assert np.isfinite(out.numpy()).all()


def test_state_dict_keys_follow_torchvision_names():
    keys = list(hubkit.load("resnet18").state_dict())
    assert keys[:6] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var",
                        "bn1.num_batches_tracked"]
    assert "layer2.0.downsample.0.weight" in keys and keys[-2:] == ["fc.weight", "fc.bias"]
    vit = hubkit.load("vit_b_16").state_dict()
    assert vit["encoder.pos_embedding"].shape == (1, 197, 768)
    assert "encoder.layers.encoder_layer_11.self_attention.in_proj_weight" in vit and "heads.head.weight" in vit
    assert hubkit.load("vit_b_16", image_size=384).state_dict()["encoder.pos_embedding"].shape == (1, 577, 768)


def test_vit_rejects_inputs_of_the_wrong_size():
    with pytest.raises(ShapeError, match="224x224"), hubkit.no_grad():
        hubkit.load("vit_b_16")(hubkit.zeros(1, 3, 200, 200))
