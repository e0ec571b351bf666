"""nn.init beyond the basics: dirac_, sparse_, the deterministic initializers identical to torch's, generator=
on every random one, torch's deprecated aliases, and the new layers' default initializations."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn import init

RANDOM_INITS = [
    ("uniform_", (-1.0, 2.0)), ("normal_", (0.5, 2.0)), ("trunc_normal_", (0.0, 1.0, -1.0, 1.5)),
    ("xavier_uniform_", (1.5,)), ("xavier_normal_", (1.5,)), ("kaiming_uniform_", (0.1,)), ("kaiming_normal_", (0.1,)),
    ("orthogonal_", (2.0,)), ("sparse_", (0.3, 0.5)),
]


@pytest.mark.parametrize(("name", "args"), RANDOM_INITS)
def test_every_random_initializer_takes_a_generator(name, args):
    fn = getattr(init, name)
    a = fn(hubkit.zeros(6, 5), *args, generator=hubkit.Generator(11)).numpy()
    b = fn(hubkit.zeros(6, 5), *args, generator=hubkit.Generator(11)).numpy()
    c = fn(hubkit.zeros(6, 5), *args, generator=hubkit.Generator(12)).numpy()
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)


@pytest.mark.parity
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("shape", [(4, 4, 3), (6, 3, 3, 5), (4, 2, 3, 3, 3), (2, 5, 4, 4)])
def test_dirac_matches_torch(shape, groups):
    import torch

    if shape[0] % groups:
        pytest.skip("shape not divisible by groups")
    expected = torch.nn.init.dirac_(torch.empty(shape), groups).numpy()
    np.testing.assert_array_equal(init.dirac_(hubkit.ones(*shape), groups).numpy(), expected)


def test_dirac_makes_a_convolution_the_identity():
    conv = nn.Conv2d(3, 3, 3, padding=1, bias=False)
    init.dirac_(conv.weight)
    x = hubkit.randn(2, 3, 5, 5)
    np.testing.assert_allclose(conv(x).numpy(), x.numpy(), atol=1e-6)
    grouped = nn.Conv1d(4, 4, 3, padding=1, groups=2, bias=False)
    init.dirac_(grouped.weight, groups=2)
    y = hubkit.randn(1, 4, 6)
    np.testing.assert_allclose(grouped(y).numpy(), y.numpy(), atol=1e-6)


def test_dirac_errors():
    with pytest.raises(ShapeError, match="3, 4, or 5 dimensions"):
        init.dirac_(hubkit.zeros(3, 3))
    with pytest.raises(ArgumentError, match="divisible by groups"):
        init.dirac_(hubkit.zeros(3, 3, 3), groups=2)


@pytest.mark.parity
def test_deterministic_initializers_and_gains_are_torchs():
    import torch

    for shape in [(3, 5), (4, 4), (6, 2)]:
        np.testing.assert_array_equal(init.eye_(hubkit.zeros(*shape)).numpy(), torch.nn.init.eye_(torch.empty(shape)))
    np.testing.assert_array_equal(init.constant_(hubkit.zeros(2, 3), -0.75).numpy(),
                                  torch.nn.init.constant_(torch.empty(2, 3), -0.75).numpy())
    np.testing.assert_array_equal(init.ones_(hubkit.zeros(4)).numpy(), torch.nn.init.ones_(torch.empty(4)).numpy())
    np.testing.assert_array_equal(init.zeros_(hubkit.ones(4)).numpy(), torch.nn.init.zeros_(torch.empty(4)).numpy())
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                 "sigmoid", "tanh", "relu", "selu", "leaky_relu"]:
        assert init.calculate_gain(name) == torch.nn.init.calculate_gain(name), name
    for slope in (0.2, 0, 3, math.sqrt(5)):
        assert init.calculate_gain("leaky_relu", slope) == pytest.approx(torch.nn.init.calculate_gain("leaky_relu",
                                                                                                       slope))
    for shape in [(5, 3), (4, 3, 2, 2), (2, 7, 3)]:
        assert init._calculate_fan_in_and_fan_out(hubkit.zeros(*shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
        for mode in ("fan_in", "fan_out"):
            assert init._calculate_correct_fan(hubkit.zeros(*shape), mode) == \
                torch.nn.init._calculate_correct_fan(torch.empty(shape), mode)


def test_sparse_zeroes_the_same_share_of_every_column():
    w = init.sparse_(hubkit.zeros(20, 400), sparsity=0.25, std=0.5).numpy()
    zeros_per_column = (w == 0).sum(axis=0)
    assert np.all(zeros_per_column == 5)  # ceil(0.25 * 20)
    nonzero = w[w != 0]
    assert nonzero.std() == pytest.approx(0.5, rel=0.05) and nonzero.mean() == pytest.approx(0, abs=0.03)
    assert len({tuple(np.flatnonzero(col == 0)) for col in w.T}) > 100  # random rows in each column
    with pytest.raises(ShapeError, match="2 dimensions"):
        init.sparse_(hubkit.zeros(2, 3, 4), 0.1)
    with pytest.raises(ArgumentError, match="sparsity"):
        init.sparse_(hubkit.zeros(2, 3), 1.5)


def test_trunc_normal_with_generator_stays_in_bounds():
    w = init.trunc_normal_(hubkit.zeros(20000), mean=1.0, std=2.0, a=-2.0, b=4.0,
                           generator=hubkit.Generator(0)).numpy()
    assert w.min() >= -2.0 and w.max() <= 4.0
    # bounds at +-1.5 sigma: the mean stays, the variance shrinks by 1 - 2 * 1.5 * phi(1.5) / (2 Phi(1.5) - 1)
    phi = math.exp(-1.5**2 / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(1.5 / math.sqrt(2))
    assert w.mean() == pytest.approx(1.0, abs=0.03)
    assert w.std() == pytest.approx(2.0 * math.sqrt(1 - 3 * phi / mass), rel=0.03)


def test_deprecated_names_warn_and_still_work():
    for old, new, args in [("uniform", "uniform_", ()), ("normal", "normal_", ()), ("constant", "constant_", (0.5,)),
                           ("xavier_uniform", "xavier_uniform_", ()), ("xavier_normal", "xavier_normal_", ()),
                           ("kaiming_uniform", "kaiming_uniform_", ()), ("kaiming_normal", "kaiming_normal_", ()),
                           ("orthogonal", "orthogonal_", ()), ("sparse", "sparse_", (0.5,)), ("eye", "eye_", ()),
                           ("dirac", "dirac_", ())]:
        t = hubkit.zeros(4, 4, 3) if old == "dirac" else hubkit.zeros(4, 4)
        with pytest.warns(FutureWarning, match=f"nn.init.{old}` is now deprecated in favor of `nn.init.{new}"):
            assert getattr(init, old)(t, *args) is t


def test_new_layers_default_initialization():
    hubkit.manual_seed(0)
    prelu = nn.PReLU(4, init=0.1)
    np.testing.assert_allclose(prelu.weight.numpy(), 0.1)
    inorm = nn.InstanceNorm2d(3, affine=True)
    assert np.all(inorm.weight.numpy() == 1) and np.all(inorm.bias.numpy() == 0)
    bag = nn.EmbeddingBag(3000, 8)
    assert bag.weight.numpy().std() == pytest.approx(1.0, rel=0.05)
    bil = nn.Bilinear(100, 20, 30)
    bound = 1 / math.sqrt(100)
    w = bil.weight.numpy()
    assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)
