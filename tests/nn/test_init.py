"""Initializers: bounds, moments and gains as PyTorch defines them; layer defaults; generator reproducibility."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import init


def _t(*shape: int) -> hubkit.Tensor:
    return hubkit.zeros(*shape)


def test_calculate_gain_values():
    assert init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    assert init.calculate_gain("selu") == pytest.approx(0.75)
    with pytest.raises(ArgumentError, match="unsupported nonlinearity"):
        init.calculate_gain("swishy")


def test_fan_in_and_fan_out_include_the_receptive_field():
    assert init._calculate_fan_in_and_fan_out(_t(8, 3, 5, 5)) == (75, 200)
    assert init._calculate_fan_in_and_fan_out(_t(10, 4)) == (4, 10)
    with pytest.raises(ShapeError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(_t(3))


def _check_uniform(a: np.ndarray, bound: float) -> None:
    assert np.abs(a).max() <= bound
    assert np.abs(a).max() > 0.98 * bound  # the whole range is used
    assert a.mean() == pytest.approx(0.0, abs=0.03 * bound)
    assert a.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_kaiming_uniform_and_normal():
    w = init.kaiming_uniform_(_t(256, 128), a=0, nonlinearity="relu").numpy()
    _check_uniform(w, math.sqrt(2) * math.sqrt(3 / 128))
    w = init.kaiming_uniform_(_t(256, 128), mode="fan_out", nonlinearity="relu").numpy()
    _check_uniform(w, math.sqrt(2) * math.sqrt(3 / 256))
    w = init.kaiming_normal_(_t(256, 64, 3, 3), nonlinearity="relu").numpy()
    assert w.std() == pytest.approx(math.sqrt(2 / (64 * 9)), rel=0.02)
    with pytest.raises(ArgumentError, match="fan_in"):
        init.kaiming_normal_(_t(2, 2), mode="fan_sideways")


def test_xavier_uniform_and_normal():
    w = init.xavier_uniform_(_t(300, 200), gain=2.0).numpy()
    _check_uniform(w, 2.0 * math.sqrt(6 / 500))
    w = init.xavier_normal_(_t(300, 200)).numpy()
    assert w.std() == pytest.approx(math.sqrt(2 / 500), rel=0.02)


def test_uniform_normal_constant():
    u = init.uniform_(_t(10000), -2, 3).numpy()
    assert u.min() >= -2 and u.max() < 3 and u.mean() == pytest.approx(0.5, abs=0.05)
    n = init.normal_(_t(20000), 1.0, 0.5).numpy()
    assert n.mean() == pytest.approx(1.0, abs=0.02) and n.std() == pytest.approx(0.5, rel=0.03)
    assert np.all(init.constant_(_t(3), 0.25).numpy() == 0.25)
    assert np.all(init.ones_(_t(2)).numpy() == 1) and np.all(init.zeros_(hubkit.ones(2)).numpy() == 0)
    np.testing.assert_array_equal(init.eye_(_t(2, 3)).numpy(), np.eye(2, 3))


def test_trunc_normal_respects_bounds_and_shape_of_distribution():
    w = init.trunc_normal_(_t(50000), mean=0.0, std=1.0, a=-1.0, b=2.0).numpy()
    assert w.min() >= -1.0 and w.max() <= 2.0
    # mean of N(0,1) truncated to [-1, 2]: (phi(-1) - phi(2)) / (Phi(2) - Phi(-1))
    phi = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    assert w.mean() == pytest.approx((phi(-1) - phi(2)) / (cdf(2) - cdf(-1)), abs=0.02)
    w = init.trunc_normal_(_t(1000), std=0.02).numpy()  # the ViT/timm use: bounds far outside, plain normal
    assert w.std() == pytest.approx(0.02, rel=0.1)
    with pytest.raises(ArgumentError, match="a < b"):
        init.trunc_normal_(_t(3), a=1, b=0)


def test_orthogonal_rows_or_columns_are_orthonormal():
    w = init.orthogonal_(_t(6, 10)).numpy().astype(np.float64)
    np.testing.assert_allclose(w @ w.T, np.eye(6), atol=1e-5)
    w = init.orthogonal_(_t(10, 2, 2), gain=2.0).numpy().reshape(10, 4).astype(np.float64)
    np.testing.assert_allclose(w.T @ w, 4 * np.eye(4), atol=1e-4)


def test_initializers_draw_from_hubkits_generator():
    g1, g2 = hubkit.Generator(7), hubkit.Generator(7)
    a = init.kaiming_uniform_(_t(4, 4), generator=g1).numpy()
    b = init.kaiming_uniform_(_t(4, 4), generator=g2).numpy()
    np.testing.assert_array_equal(a, b)
    hubkit.manual_seed(3)
    first = nn.Linear(5, 5).weight.numpy().copy()
    hubkit.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(5, 5).weight.numpy(), first)


def test_init_works_on_parameters_that_require_grad_and_records_nothing():
    p = nn.Parameter(hubkit.zeros(3, 3))
    init.xavier_uniform_(p)
    assert p.is_leaf and p.grad_fn is None and np.any(p.numpy() != 0)


def test_linear_and_conv_defaults_are_fan_in_uniform():
    hubkit.manual_seed(0)
    lin = nn.Linear(400, 300)
    _check_uniform(lin.weight.numpy(), 1 / math.sqrt(400))
    assert np.abs(lin.bias.numpy()).max() <= 1 / math.sqrt(400)
    conv = nn.Conv2d(32, 64, 3)
    _check_uniform(conv.weight.numpy(), 1 / math.sqrt(32 * 9))
    assert np.abs(conv.bias.numpy()).max() <= 1 / math.sqrt(32 * 9)
    tconv = nn.ConvTranspose2d(64, 32, 4, groups=2)  # weight (64, 16, 4, 4): fan_in = 16 * 16
    _check_uniform(tconv.weight.numpy(), 1 / math.sqrt(16 * 16))


def test_other_layer_defaults():
    bn = nn.BatchNorm2d(5)
    assert np.all(bn.weight.numpy() == 1) and np.all(bn.bias.numpy() == 0)
    assert np.all(bn.running_mean.numpy() == 0) and np.all(bn.running_var.numpy() == 1)
    emb = nn.Embedding(5000, 16, padding_idx=3)
    w = emb.weight.numpy()
    assert np.all(w[3] == 0) and w.std() == pytest.approx(1.0, rel=0.03)
    mha = nn.MultiheadAttention(64, 4)
    _check_uniform(mha.in_proj_weight.numpy(), math.sqrt(6 / (64 + 192)))
    assert np.all(mha.in_proj_bias.numpy() == 0) and np.all(mha.out_proj.bias.numpy() == 0)


@pytest.mark.parity
def test_default_init_distributions_match_torch():
    import torch

    torch.manual_seed(0)
    hubkit.manual_seed(0)
    pairs = [
        (nn.Linear(300, 200), torch.nn.Linear(300, 200)),
        (nn.Conv2d(16, 32, 5), torch.nn.Conv2d(16, 32, 5)),
        (nn.Conv1d(8, 16, 3, groups=2), torch.nn.Conv1d(8, 16, 3, groups=2)),
        (nn.ConvTranspose2d(16, 8, 3), torch.nn.ConvTranspose2d(16, 8, 3)),
        (nn.Embedding(2000, 32), torch.nn.Embedding(2000, 32)),
        (nn.MultiheadAttention(32, 4), torch.nn.MultiheadAttention(32, 4)),
    ]
    for ours, theirs in pairs:
        for (name, a), (_, b) in zip(ours.named_parameters(), theirs.named_parameters()):
            a, b = a.numpy(), b.detach().numpy()
            assert a.shape == b.shape, name
            if b.std() == 0:
                np.testing.assert_array_equal(a, b)
                continue
            assert np.abs(a).max() <= np.abs(b).max() * (1.2 if a.size >= 500 else 2.0), (type(ours).__name__, name)
            if a.size >= 500:  # smaller ones are too few samples for a stable std
                assert a.std() == pytest.approx(b.std(), rel=0.1), (type(ours).__name__, name)
