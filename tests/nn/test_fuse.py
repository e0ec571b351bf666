"""fuse_for_inference: folded BatchNorm and fused ReLU give the same outputs as the original in eval mode."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError
from hubkit.nn.fuse import FusedLayer, fuse_for_inference


def _randomize_bn(model: nn.Module, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            c = m.num_features
            m.running_mean.array[...] = rng.normal(0, 1, c)
            m.running_var.array[...] = rng.uniform(0.5, 2.0, c)
            if m.weight is not None:
                m.weight.array[...] = rng.normal(1, 0.3, c)
                m.bias.array[...] = rng.normal(0, 0.3, c)


def _conv_net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, groups=2), nn.BatchNorm2d(8, affine=False),
        nn.Conv2d(8, 4, 1), nn.ReLU(),
        nn.Flatten(), nn.Linear(4 * 3 * 3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2),
    )


def test_fused_model_matches_original_in_eval():
    model = _conv_net()
    _randomize_bn(model)
    fused = fuse_for_inference(model)
    x = hubkit.randn(5, 3, 8, 8)
    model.eval()
    with hubkit.no_grad():
        expected = model(x).numpy()
        got = fused(x).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    kinds = [type(m).__name__ for m in fused]
    assert kinds == ["FusedLayer", "Identity", "Identity", "FusedLayer", "Identity", "FusedLayer", "Identity",
                     "Flatten", "FusedLayer", "Identity", "Identity", "Linear"]
    assert [m.relu for m in fused if isinstance(m, FusedLayer)] == [True, False, True, True]


def test_original_model_is_untouched():
    model = _conv_net()
    _randomize_bn(model)
    before = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    fuse_for_inference(model)
    assert model.training and isinstance(model[1], nn.BatchNorm2d)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_fused_relu_keeps_gradients_correct_when_recording():
    model = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU())
    _randomize_bn(model)
    fused = fuse_for_inference(model)
    model.eval()
    x1 = hubkit.randn(2, 2, 5, 5, requires_grad=True)
    x2 = hubkit.tensor(x1.numpy(), requires_grad=True)
    model(x1).sum().backward()
    fused(x2).sum().backward()
    np.testing.assert_allclose(x2.grad.numpy(), x1.grad.numpy(), rtol=1e-4, atol=1e-5)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + x)


def test_explicit_modules_to_fuse_for_custom_forwards():
    model = nn.Sequential(Block(), Block())
    _randomize_bn(model)
    fused = fuse_for_inference(model, [["0.conv1", "0.bn1"], ["0.conv2", "0.bn2"], ["1.conv1", "1.bn1"]])
    assert isinstance(fused[0].conv1, FusedLayer) and isinstance(fused[0].bn2, nn.Identity)
    assert isinstance(fused[1].bn2, nn.BatchNorm2d)
    x = hubkit.randn(2, 4, 6, 6)
    model.eval()
    with hubkit.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)


def test_bad_fusion_requests_explain():
    model = nn.Sequential(Block())
    with pytest.raises(ArgumentError, match="no submodule"):
        fuse_for_inference(model, [["0.conv1", "0.bn9"]])
    with pytest.raises(ArgumentError, match="share one parent"):
        fuse_for_inference(nn.Sequential(Block(), Block()), [["0.conv1", "1.bn1"]])
    with pytest.raises(ArgumentError, match="starting with Conv1d, Conv2d or Linear"):
        fuse_for_inference(model, [["0.bn1", "0.conv1"]])
    with pytest.raises(ArgumentError, match="optional BatchNorm, then an optional ReLU"):
        fuse_for_inference(model, [["0.conv1", "0.relu", "0.bn1"]])
    no_stats = nn.Sequential(nn.Conv2d(2, 2, 1), nn.BatchNorm2d(2, track_running_stats=False))
    fused = fuse_for_inference(no_stats)  # left alone: batch statistics cannot be folded
    assert isinstance(fused[1], nn.BatchNorm2d)
