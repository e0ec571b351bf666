"""Dropout: train/eval behaviour, scaling, reproducibility from hubkit's generator, gradients."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError


def _seeded_dropout(p):
    def fn(x):
        hubkit.manual_seed(123)  # the same mask on every evaluation, so central differences apply
        return F.dropout(x, p)

    return fn


@pytest.mark.parametrize("shape", [(3, 4), (1, 5), (0, 3), ()])
@pytest.mark.parametrize("p", [0.3, 0.9])
def test_gradient_matches_central_differences(shape, p):
    gradcheck(_seeded_dropout(p), [np.random.default_rng(0).standard_normal(shape)])


def test_training_zeroes_about_p_and_scales_the_rest():
    hubkit.manual_seed(0)
    x = hubkit.ones(200_000)
    y = F.dropout(x, 0.3).numpy()
    kept = y != 0
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs((~kept).mean() - 0.3) < 0.01  # 45 standard deviations would be needed to fail by chance
    assert y.dtype == np.float32


def test_gradient_is_the_same_mask_and_scale():
    hubkit.manual_seed(1)
    x = hubkit.randn(50, requires_grad=True)
    y = F.dropout(x, 0.5)
    y.sum().backward()
    expected = np.where(y.detach().numpy() != 0, 2.0, 0.0)
    np.testing.assert_array_equal(x.grad.numpy(), expected)


def test_eval_mode_and_p_zero_return_the_input_unchanged():
    x = hubkit.randn(3, 4)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x


def test_p_one_drops_everything():
    x = hubkit.randn(3, 4, requires_grad=True)
    y = F.dropout(x, 1.0)
    assert not y.detach().numpy().any()
    y.sum().backward()
    assert not x.grad.numpy().any()


def test_manual_seed_makes_masks_reproducible():
    x = hubkit.ones(1000)
    hubkit.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    b = F.dropout(x, 0.5).numpy()
    hubkit.manual_seed(7)
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_invalid_probability_is_rejected(p):
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        F.dropout(hubkit.ones(2), p)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_eval_mode_matches_torch(dtype):
    compare_with_torch(lambda m, x: m.dropout(x * 2, 0.4, training=False), [np.random.rand(3, 4)], dtype=dtype)


# ---------------------------------------------------------------- channel-wise and alpha dropout


@pytest.mark.parametrize(("fn", "shape", "mask_dims"), [
    (F.dropout1d, (4, 6, 5), 2),
    (F.dropout1d, (6, 5), 1),
    (F.dropout2d, (4, 6, 3, 3), 2),
    (F.dropout3d, (2, 6, 2, 2, 2), 2),
    (F.dropout3d, (6, 2, 2, 2), 1),
])
def test_channel_dropout_zeroes_whole_channels(fn, shape, mask_dims):
    hubkit.manual_seed(0)
    y = fn(hubkit.ones(*shape), 0.5).numpy()
    per_channel = y.reshape(*shape[:mask_dims], -1)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2.0).all(-1))
    assert 0 < (per_channel == 0).all(-1).sum() < per_channel[..., 0].size


def test_dropout2d_on_a_2d_input_is_elementwise_with_torchs_warning():
    hubkit.manual_seed(0)
    with pytest.warns(UserWarning, match="dropout2d"):
        y = F.dropout2d(hubkit.ones(50, 40), 0.5).numpy()
    assert 0 < (y == 0).sum() < y.size


def test_dropout_modules_respect_eval_mode_and_repr():
    for cls in (hubkit.nn.Dropout1d, hubkit.nn.Dropout2d, hubkit.nn.Dropout3d, hubkit.nn.AlphaDropout,
                hubkit.nn.FeatureAlphaDropout):
        m = cls(0.3).eval()
        x = hubkit.randn(2, 3, 4, 4, 4) if cls is not hubkit.nn.Dropout1d else hubkit.randn(2, 3, 4)
        assert m(x) is x
        assert repr(m) == f"{cls.__name__}(p=0.3, inplace=False)"
    with pytest.raises(hubkit.errors.ShapeError, match="dropout1d"):
        F.dropout1d(hubkit.ones(2, 2, 2, 2))


def test_alpha_dropout_keeps_mean_and_variance_of_a_standard_normal():
    hubkit.manual_seed(3)
    x = hubkit.randn(400_000, dtype=hubkit.float64)
    y = F.alpha_dropout(x, 0.2, training=True).numpy()
    assert abs(y.mean()) < 0.01 and abs(y.std() - 1) < 0.01
    assert F.alpha_dropout(x, 0.2) is x  # training defaults to False, as in torch


def test_alpha_dropout_gradient():
    def fn(x):
        hubkit.manual_seed(5)
        return F.alpha_dropout(x, 0.4, training=True)

    gradcheck(fn, [np.random.default_rng(0).standard_normal((3, 4))])


def _affine_and_dropped(x, y):
    """(slope, intercept) of the kept elements and the value dropped ones take (the most frequent value)."""
    values, counts = np.unique(np.round(y, 12), return_counts=True)
    dropped = values[counts.argmax()]
    kept = ~np.isclose(y, dropped, rtol=0, atol=1e-12)
    return (*np.polyfit(x[kept], y[kept], 1), dropped)


@pytest.mark.parity
def test_alpha_dropout_values_follow_torchs_affine_map():
    import torch

    x = np.random.default_rng(0).standard_normal(2000)
    theirs = torch.nn.functional.alpha_dropout(torch.from_numpy(x), 0.3, training=True).numpy()
    ours = F.alpha_dropout(hubkit.from_numpy(x), 0.3, training=True).numpy()
    # the masks differ (different generators); the map of kept values and the dropped value must not
    np.testing.assert_allclose(_affine_and_dropped(x, ours), _affine_and_dropped(x, theirs), rtol=1e-9)
