"""batch_norm, group_norm, instance_norm, normalize, cosine_similarity: gradcheck, parity, running stats."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape)


SHAPES = [(4, 3), (3, 2, 5), (2, 3, 4, 3)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_gradcheck(shape, affine):
    c = shape[1]
    rm, rv = np.zeros(c), np.ones(c)
    if affine:
        gradcheck(lambda x, w, b: F.batch_norm(x, hubkit.tensor(rm), hubkit.tensor(rv), w, b, training=True),
                  [_rand(*shape), _rand(c), _rand(c)])  # fmt: skip
    else:
        gradcheck(lambda x: F.batch_norm(x, None, None, training=True), [_rand(*shape)])


@pytest.mark.parametrize("shape", SHAPES)
def test_batch_norm_eval_gradcheck(shape):
    c = shape[1]
    rm, rv = _rand(c), RNG.uniform(0.5, 2, c)
    gradcheck(lambda x, w, b: F.batch_norm(x, hubkit.tensor(rm), hubkit.tensor(rv), w, b, training=False),
              [_rand(*shape), _rand(c), _rand(c)])  # fmt: skip


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch_including_running_stats(shape, training, dtype):
    import torch

    c = shape[1]
    x, w, b = _rand(*shape), _rand(c), _rand(c)
    rm0, rv0 = _rand(c), RNG.uniform(0.5, 2, c)
    h_rm, h_rv = hubkit.tensor(rm0.astype(dtype)), hubkit.tensor(rv0.astype(dtype))
    t_rm, t_rv = torch.tensor(rm0.astype(dtype)), torch.tensor(rv0.astype(dtype))

    def run(m, x, w, b):
        rm, rv = (t_rm, t_rv) if m.__class__.__name__ == "_TorchNS" else (h_rm, h_rv)
        return m.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3, eps=1e-4)

    compare_with_torch(run, [x, w, b], dtype=dtype)
    tol = 1e-5 if dtype == np.float64 else 1e-4
    # two calls each (forward of the comparison and of nothing else): running stats moved identically
    np.testing.assert_allclose(h_rm.numpy(), t_rm.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(h_rv.numpy(), t_rv.numpy(), rtol=tol, atol=tol)


def test_batch_norm_updates_running_stats_in_place_with_unbiased_variance():
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    rm, rv = hubkit.zeros(2), hubkit.ones(2)
    rm_buffer = rm.numpy()
    y = F.batch_norm(hubkit.tensor(x), rm, rv, training=True, momentum=0.5)
    assert rm.numpy() is rm_buffer or np.shares_memory(rm.numpy(), rm_buffer)
    np.testing.assert_allclose(rm.numpy(), 0.5 * x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(rv.numpy(), 0.5 + 0.5 * x.var(0, ddof=1), rtol=1e-6)
    np.testing.assert_allclose(y.numpy(), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32


GN_CASES = [((2, 4, 3), 2), ((2, 6, 2, 3), 3), ((3, 4, 5), 1), ((2, 4, 2, 2), 4)]


@pytest.mark.parametrize("shape, groups", GN_CASES)
def test_group_norm_gradcheck(shape, groups):
    c = shape[1]
    gradcheck(lambda x, w, b: F.group_norm(x, groups, w, b), [_rand(*shape), _rand(c), _rand(c)])
    gradcheck(lambda x: F.group_norm(x, groups), [_rand(*shape)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, groups", GN_CASES)
def test_group_norm_matches_torch(shape, groups, dtype):
    c = shape[1]
    compare_with_torch(lambda m, x, w, b: m.group_norm(x, groups, w, b, eps=1e-3), [_rand(*shape), _rand(c),
                       _rand(c)], dtype=dtype)  # fmt: skip


@pytest.mark.parity
@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_matches_torch_including_running_stats(use_input_stats):
    import torch

    shape, c = (3, 2, 4, 5), 2
    rm0, rv0 = _rand(c), RNG.uniform(0.5, 2, c)
    h_rm, h_rv, t_rm, t_rv = hubkit.tensor(rm0), hubkit.tensor(rv0), torch.tensor(rm0), torch.tensor(rv0)

    def run(m, x, w, b):
        rm, rv = (t_rm, t_rv) if m.__class__.__name__ == "_TorchNS" else (h_rm, h_rv)
        return m.instance_norm(x, rm, rv, w, b, use_input_stats=use_input_stats, momentum=0.2)

    compare_with_torch(run, [_rand(*shape), _rand(c), _rand(c)])
    np.testing.assert_allclose(h_rm.numpy(), t_rm.numpy(), rtol=1e-6)
    np.testing.assert_allclose(h_rv.numpy(), t_rv.numpy(), rtol=1e-6)


def test_instance_norm_gradcheck():
    gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), [_rand(2, 3, 4, 2), _rand(3), _rand(3)])


NORMALIZE_CASES = [dict(), dict(p=1.0, dim=0), dict(p=3.0, dim=-1), dict(p=float("inf"), dim=1)]


@pytest.mark.parametrize("kw", NORMALIZE_CASES)
def test_normalize_gradcheck(kw):
    gradcheck(lambda x: F.normalize(x, **kw), [_rand(3, 4, 2)])


@pytest.mark.parity
@pytest.mark.parametrize("kw", NORMALIZE_CASES)
def test_normalize_matches_torch(kw):
    compare_with_torch(lambda m, x: m.normalize(x, **kw), [_rand(3, 4, 2)])


def test_normalize_clamps_tiny_norms_with_eps():
    y = F.normalize(hubkit.zeros(2, 3), dim=1)
    assert np.all(y.numpy() == 0)


COS_CASES = [((4, 5), (4, 5), 1), ((3, 1, 6), (4, 6), -1), ((2, 3), (2, 3), 0)]


@pytest.mark.parametrize("s1, s2, dim", COS_CASES)
def test_cosine_similarity_gradcheck(s1, s2, dim):
    gradcheck(lambda a, b: F.cosine_similarity(a, b, dim=dim), [_rand(*s1), _rand(*s2)])


@pytest.mark.parity
@pytest.mark.parametrize("s1, s2, dim", COS_CASES)
def test_cosine_similarity_matches_torch(s1, s2, dim):
    compare_with_torch(lambda m, a, b: m.cosine_similarity(a, b, dim=dim), [_rand(*s1), _rand(*s2)])


def test_normalization_errors_are_clear():
    x = hubkit.randn(2, 4, 3)
    with pytest.raises(ShapeError, match=r"weight has shape \(3,\), expected \(4,\)"):
        F.batch_norm(x, None, None, hubkit.ones(3), training=True)
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        F.batch_norm(hubkit.randn(1, 4), None, None, training=True)
    with pytest.raises(ArgumentError, match="required when training=False"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ArgumentError, match="num_groups must divide the 4 channels"):
        F.group_norm(x, 3)
    with pytest.raises(ArgumentError, match="dim 3 is out of range"):
        F.normalize(x, dim=3)
