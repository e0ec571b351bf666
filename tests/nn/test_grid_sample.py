"""F.grid_sample (bilinear/nearest/bicubic, zeros/border/reflection padding, align_corners, 4-d and 5-d) and
F.affine_grid: float64 gradchecks in input and grid, torch parity, and the errors torch raises."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from opcheck import gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

COMBOS = [(dims, mode, pad, ac) for dims, mode, pad, ac in itertools.product(
    (2, 3), ("bilinear", "nearest", "bicubic"), ("zeros", "border", "reflection"), (False, True))
    if not (dims == 3 and mode == "bicubic")]


def _data(dims, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    spatial = (3, 4) if dims == 2 else (2, 3, 4)
    out = (2, 3) if dims == 2 else (2, 2, 2)
    x = rng.standard_normal((2, 2, *spatial)).astype(dtype)
    grid = (rng.random((2, *out, dims)) * 2.6 - 1.3).astype(dtype)  # some points outside [-1, 1]
    return x, grid


@pytest.mark.parametrize("dims, mode, pad, ac", COMBOS)
def test_gradcheck(dims, mode, pad, ac):
    x, grid = _data(dims, seed=len(mode) + dims)
    wrt = [0] if mode == "nearest" else [0, 1]
    gradcheck(lambda a, g: F.grid_sample(a, g, mode=mode, padding_mode=pad, align_corners=ac), [x, grid],
              wrt=wrt, atol=1e-5, rtol=1e-4)


def test_nearest_has_zero_grid_gradient_and_rounds_half_to_even():
    x = hubkit.tensor(np.arange(5.0).reshape(1, 1, 1, 5))
    # align_corners=True: x = -1 + 2 * col / 4, so these sit exactly halfway between columns 0|1, 1|2, 2|3
    cols = np.array([0.5, 1.5, 2.5]) / 2 - 1
    grid = hubkit.tensor(np.stack([cols, np.zeros(3)], -1).reshape(1, 1, 3, 2), requires_grad=True)
    y = F.grid_sample(x, grid, mode="nearest", align_corners=True)
    assert y.reshape(-1).tolist() == [0.0, 2.0, 2.0]
    y.sum().backward()
    assert not grid.grad.numpy().any()


def test_identity_grid_reproduces_the_input():
    x = hubkit.randn(2, 3, 5, 6, dtype=hubkit.float64)
    theta = hubkit.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]] * 2, dtype=hubkit.float64)
    for ac in (False, True):
        for mode in ("bilinear", "nearest", "bicubic"):
            grid = F.affine_grid(theta, (2, 3, 5, 6), align_corners=ac)
            y = F.grid_sample(x, grid, mode=mode, align_corners=ac)
            np.testing.assert_allclose(y.numpy(), x.numpy(), atol=1e-12)


def test_out_of_range_samples_follow_the_padding_mode():
    x = hubkit.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    far = hubkit.tensor([[[[5.0, 5.0]]]])  # well past the bottom-right corner
    assert F.grid_sample(x, far, padding_mode="zeros", align_corners=True).item() == 0.0
    assert F.grid_sample(x, far, padding_mode="border", align_corners=True).item() == 4.0
    inside = F.grid_sample(x, hubkit.tensor([[[[1.0, 1.0]]]]), padding_mode="reflection", align_corners=True)
    assert inside.item() == 4.0


def test_a_nan_pixel_outside_the_taps_does_not_leak():
    x = hubkit.tensor([[[[float("nan"), 1.0], [1.0, 1.0]]]])
    y = F.grid_sample(x, hubkit.tensor([[[[3.0, 3.0]]]]), align_corners=False)
    assert y.item() == 0.0


def test_align_corners_none_warns_like_torch():
    x, grid = _data(2)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.grid_sample(hubkit.tensor(x), hubkit.tensor(grid))
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        F.affine_grid(hubkit.zeros(1, 2, 3), (1, 1, 2, 2))


def test_grid_sample_errors():
    x, grid = (hubkit.tensor(a) for a in _data(2))
    with pytest.raises(ArgumentError, match="expected mode to be 'bilinear', 'nearest' or 'bicubic'"):
        F.grid_sample(x, grid, mode="area", align_corners=False)
    with pytest.raises(ArgumentError, match="expected padding_mode to be 'zeros', 'border', or 'reflection'"):
        F.grid_sample(x, grid, padding_mode="circular", align_corners=False)
    with pytest.raises(ShapeError, match="expected grid to have size 2 in last dimension"):
        F.grid_sample(x, hubkit.zeros(2, 3, 3, 3, dtype=hubkit.float64), align_corners=False)
    with pytest.raises(ShapeError, match="same batch size"):
        F.grid_sample(x, grid[:1], align_corners=False)
    with pytest.raises(DTypeError, match="same floating-point dtype"):
        F.grid_sample(x, grid.float(), align_corners=False)
    x3, g3 = (hubkit.tensor(a) for a in _data(3))
    with pytest.raises(ShapeError, match="bicubic interpolation only supports 4D input"):
        F.grid_sample(x3, g3, mode="bicubic", align_corners=False)


def test_affine_grid_gradcheck_and_errors():
    rng = np.random.default_rng(0)
    gradcheck(lambda t: F.affine_grid(t, (2, 1, 3, 4), align_corners=False), [rng.standard_normal((2, 2, 3))])
    gradcheck(lambda t: F.affine_grid(t, (1, 1, 2, 3, 2), align_corners=True), [rng.standard_normal((1, 3, 4))])
    with pytest.raises(ShapeError, match="Expected a batch of 2D affine matrices of shape Nx2x3"):
        F.affine_grid(hubkit.zeros(1, 3, 4), (1, 1, 2, 2), align_corners=False)
    with pytest.raises(ShapeError, match="only supports 4D and 5D sizes"):
        F.affine_grid(hubkit.zeros(1, 2, 3), (1, 1, 2), align_corners=False)
    with pytest.raises(ShapeError, match="Expected non-zero, positive output size"):
        F.affine_grid(hubkit.zeros(1, 2, 3), (1, 1, 0, 2), align_corners=False)
    with pytest.raises(DTypeError, match="floating point type"):
        F.affine_grid(hubkit.zeros(1, 2, 3, dtype=hubkit.int64), (1, 1, 2, 2), align_corners=False)


def test_spatial_transformer_trains_theta():
    x = hubkit.randn(1, 1, 6, 6)
    target = F.grid_sample(x, F.affine_grid(hubkit.tensor([[[0.8, 0.1, 0.1], [-0.1, 0.9, 0.0]]]), (1, 1, 6, 6),
                                            align_corners=False), align_corners=False)
    theta = hubkit.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], requires_grad=True)
    opt = hubkit.optim.Adam([theta], lr=0.02)
    first = None
    for _ in range(60):
        opt.zero_grad()
        loss = ((F.grid_sample(x, F.affine_grid(theta, (1, 1, 6, 6), align_corners=False),
                               align_corners=False) - target) ** 2).mean()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dims, mode, pad, ac", COMBOS)
def test_grid_sample_matches_torch(dims, mode, pad, ac, dtype):
    import torch

    x, grid = _data(dims, seed=3, dtype=dtype)
    hx, hg = hubkit.tensor(x, requires_grad=True), hubkit.tensor(grid, requires_grad=True)
    tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(grid).requires_grad_()
    hy = F.grid_sample(hx, hg, mode=mode, padding_mode=pad, align_corners=ac)
    ty = torch.nn.functional.grid_sample(tx, tg, mode=mode, padding_mode=pad, align_corners=ac)
    tol = {"rtol": 1e-10, "atol": 1e-12} if dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-5}
    np.testing.assert_allclose(hy.detach().numpy(), ty.detach().numpy(), **tol)
    w = np.random.default_rng(9).standard_normal(hy.shape).astype(dtype)
    (hy * hubkit.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), **tol)
    np.testing.assert_allclose(hg.grad.numpy(), tg.grad.numpy(), **tol)


@pytest.mark.parity
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (2, 1, 3, 4, 5), (2, 3, 1, 5)])
@pytest.mark.parametrize("ac", [False, True])
def test_affine_grid_matches_torch(size, ac):
    import torch

    theta = np.random.default_rng(0).standard_normal((2, 2, 3) if len(size) == 4 else (2, 3, 4))
    ht, tt = hubkit.tensor(theta, requires_grad=True), torch.from_numpy(theta).requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unit-size grid warning, raised by both
        hy, ty = F.affine_grid(ht, size, ac), torch.nn.functional.affine_grid(tt, size, ac)
    np.testing.assert_allclose(hy.detach().numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-14)
    w = np.random.default_rng(1).standard_normal(hy.shape)
    (hy * hubkit.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(ht.grad.numpy(), tt.grad.numpy(), rtol=1e-10)
