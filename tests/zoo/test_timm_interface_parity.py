"""Stage feature maps and trunk outputs equal torchvision's feature extraction on the same weights.

torchvision's model (random weights, BatchNorm statistics and affine parameters randomised so they matter) is
saved with ``torch.save``; ``hubkit.load(name, weights=path, features_only=True)`` gives the stage maps, which
must equal ``create_feature_extractor``'s outputs at the nodes ``feature_info.module_name()`` names, and
``forward_features`` / ``forward_head(pre_logits=True)`` must equal the nodes where torchvision's trunk ends and
where its last layer's input is.
"""

from __future__ import annotations

import numpy as np
import pytest

import hubkit

pytestmark = pytest.mark.parity

# architecture -> (torchvision node of forward_features' output, node of the last layer's input)
TRUNK_AND_PRE_LOGITS = {
    "resnet18": ("layer4", "flatten"), "resnet50": ("layer4", "flatten"), "vgg16": ("features.30", "classifier.5"),
    "mobilenet_v2": ("features.18", "classifier.0"), "mobilenet_v3_large": ("features.16", "classifier.2"),
    "efficientnet_b0": ("features.8", "classifier.0"), "convnext_tiny": ("features.7", "classifier.1"),
    "densenet121": ("relu", "flatten"), "vit_b_16": ("encoder.ln", "getitem_5"), "squeezenet1_1": ("features.12", None),
    "alexnet": ("features.12", "classifier.5"), "shufflenet_v2_x1_0": ("conv5", "mean"),
}  # fmt: skip
# hubkit's stage module -> torchvision's node, where torchvision applies the stage's last op as a function
NODE = {("densenet121", "features.norm5"): "relu"}


def _randomise_batchnorm(model, torch) -> None:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) * 0.5 + 0.75)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.1)


def _close(got, want, what: str) -> None:
    """Equal up to float32 rounding relative to the tensor's scale (random deep nets grow their activations)."""
    assert got.shape == want.shape, what
    scale = max(float(np.abs(want).max()), 1e-3)
    diff = float(np.abs(got - want).max())
    assert diff <= 1e-4 * scale, f"{what}: max abs difference {diff:.3g} at scale {scale:.3g}"


@pytest.mark.parametrize("name", sorted(TRUNK_AND_PRE_LOGITS))
def test_stage_maps_and_trunk_match_torchvision(name, tmp_path):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    from torchvision.models.feature_extraction import create_feature_extractor

    torch.manual_seed(0)
    tv_model = torchvision.models.get_model(name, weights=None).eval()
    _randomise_batchnorm(tv_model, torch)
    path = tmp_path / f"{name}.pth"
    torch.save(tv_model.state_dict(), path)

    feats = hubkit.load(name, weights=str(path), features_only=True)
    model = hubkit.load(name, weights=str(path))
    stages = [NODE.get((name, m), m) for m in feats.feature_info.module_name()]
    trunk, pre_logits = TRUNK_AND_PRE_LOGITS[name]
    nodes = [*stages, trunk] + ([pre_logits] if pre_logits else [])
    side = 224 if name == "vit_b_16" else 96
    x = np.random.default_rng(1).standard_normal((2, 3, side, side)).astype(np.float32)
    with torch.no_grad():
        out = create_feature_extractor(tv_model, {n: n for n in nodes})(torch.from_numpy(x))
        want = {n: v.numpy() for n, v in out.items()}
    with hubkit.no_grad():
        got_maps = [m.numpy() for m in feats(hubkit.from_numpy(x))]
        trunk_out = model.forward_features(hubkit.from_numpy(x))
        got_pre = model.forward_head(trunk_out, pre_logits=True).numpy()
    for node, got in zip(stages, got_maps):
        expected = want[node]
        if name == "vit_b_16":  # torchvision's block output is tokens: drop the class token, lay out the patch grid
            n, s, d = expected.shape
            grid = int(round((s - 1) ** 0.5))
            expected = expected[:, 1:].reshape(n, grid, grid, d).transpose(0, 3, 1, 2)
        _close(got, expected, f"{name} stage {node}")
    _close(trunk_out.numpy(), want[trunk], f"{name} forward_features")
    if pre_logits:
        _close(got_pre, want[pre_logits], f"{name} pre-logits")
