"""Reductions: sum, mean, var/std, logsumexp, max/min, argmax/argmin, cumsum."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for, tie_free

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError


def _n(*shape, scale=1.0):
    return lambda r: [r.standard_normal(shape) * scale]


def _tie_free(*shape):
    return lambda r: [tie_free(shape, seed=int(r.integers(1000)))]


CASES = [
    ("sum-all", lambda m, x: m.sum(x), _n(2, 3)),
    ("sum-dim", lambda m, x: m.sum(x, 1), _n(2, 3, 4)),
    ("sum-dims-keepdim", lambda m, x: m.sum(x, (0, 2), keepdim=True), _n(2, 3, 4)),
    ("sum-negative-dim", lambda m, x: x.sum(-1), _n(3, 4)),
    ("sum-empty", lambda m, x: m.sum(x, 0), _n(0, 3)),
    ("sum-0d", lambda m, x: m.sum(x), _n()),
    ("mean-all", lambda m, x: m.mean(x), _n(3, 4)),
    ("mean-dim-keepdim", lambda m, x: m.mean(x, 1, keepdim=True), _n(3, 4)),
    ("mean-size-one-dim", lambda m, x: m.mean(x, 0), _n(1, 4)),
    ("mean-over-nonempty-of-empty", lambda m, x: m.mean(x, 1), _n(0, 3)),
    ("var-all", lambda m, x: m.var(x), _n(3, 4)),
    ("var-dim", lambda m, x: m.var(x, 1), _n(3, 4)),
    ("var-biased", lambda m, x: m.var(x, 1, False), _n(3, 4)),
    ("var-correction-keepdim", lambda m, x: m.var(x, (0, 2), keepdim=True, correction=2), _n(2, 3, 4)),
    ("var-unbiased-kw", lambda m, x: x.var(dim=0, unbiased=False), _n(4, 2)),
    ("var-size-one-biased", lambda m, x: m.var(x, 0, correction=0), _n(1, 3)),
    ("std-all", lambda m, x: m.std(x), _n(3, 4)),
    ("std-dim", lambda m, x: m.std(x, -1, keepdim=True), _n(2, 5)),
    ("std-biased", lambda m, x: m.std(x, 0, False), _n(4, 3)),
    ("logsumexp-dim", lambda m, x: m.logsumexp(x, 1), _n(3, 4)),
    ("logsumexp-large", lambda m, x: m.logsumexp(x, 1), _n(3, 4, scale=300.0)),
    ("logsumexp-dims-keepdim", lambda m, x: m.logsumexp(x, (0, 2), keepdim=True), _n(2, 3, 2)),
    ("logsumexp-0d", lambda m, x: m.logsumexp(x, 0), _n()),
    ("logsumexp-empty-batch", lambda m, x: m.logsumexp(x, 1), _n(0, 3)),
    ("cumsum-0", lambda m, x: m.cumsum(x, 0), _n(3, 4)),
    ("cumsum-last", lambda m, x: x.cumsum(-1), _n(2, 3, 4)),
    ("cumsum-size-one", lambda m, x: m.cumsum(x, 0), _n(1, 4)),
    ("cumsum-empty", lambda m, x: m.cumsum(x, 1), _n(0, 3)),
    ("cumsum-0d", lambda m, x: m.cumsum(x, 0), _n()),
    ("max-all", lambda m, x: m.max(x), _tie_free(3, 4)),
    ("max-dim", lambda m, x: m.max(x, 1), _tie_free(3, 4)),
    ("max-dim-keepdim", lambda m, x: x.max(0, keepdim=True), _tie_free(3, 4)),
    ("max-0d-dim", lambda m, x: m.max(x, 0), _tie_free()),
    ("min-all", lambda m, x: m.min(x), _tie_free(2, 5)),
    ("min-dim", lambda m, x: m.min(x, -1), _tie_free(2, 3, 4)),
    ("max-elementwise", lambda m, a, b: m.max(a, b), lambda r: [r.standard_normal((2, 3)), r.standard_normal(3)]),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_gradient_matches_central_differences(name, fn, make):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype)


def test_max_and_min_with_dim_return_values_and_int64_indices():
    x = hubkit.tensor(tie_free((3, 4)))
    values, indices = hubkit.max(x, 1)
    assert indices.dtype == np.int64
    np.testing.assert_array_equal(indices.numpy(), x.numpy().argmax(1))
    np.testing.assert_array_equal(values.numpy(), x.numpy().max(1))
    out = x.min(dim=0)
    np.testing.assert_array_equal(out.indices.numpy(), x.numpy().argmin(0))


@pytest.mark.parametrize(("dim", "keepdim"), [(None, False), (None, True), (0, False), (1, True), (-1, False)])
def test_argmax_and_argmin_match_numpy(dim, keepdim):
    a = tie_free((3, 4), seed=3)
    x = hubkit.tensor(a)
    got_max, got_min = hubkit.argmax(x, dim, keepdim), x.argmin(dim, keepdim)
    assert got_max.dtype == np.int64 and not got_max.requires_grad
    np.testing.assert_array_equal(got_max.numpy(), np.argmax(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(got_min.numpy(), np.argmin(a, axis=dim, keepdims=keepdim))


@pytest.mark.parity
def test_argmax_matches_torch():
    import torch

    a = tie_free((4, 5), seed=7)
    for dim in (None, 0, 1):
        np.testing.assert_array_equal(hubkit.argmax(hubkit.tensor(a), dim).numpy(),
                                      torch.argmax(torch.tensor(a), dim).numpy())


def test_max_over_all_elements_splits_ties_evenly():
    x = hubkit.tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_allclose(x.grad.numpy(), [0.0, 0.5, 0.5])


def test_reductions_keep_float32():
    x = hubkit.randn(3, 4)
    for out in (x.sum(), x.mean(1), x.var(), x.std(0), x.logsumexp(1), x.cumsum(0), x.max(1).values):
        assert out.dtype == np.float32


def test_integer_sum_and_cumsum_give_int64():
    i = hubkit.tensor([1, 2, 3], dtype=hubkit.int32)
    assert i.sum().dtype == np.int64 and i.cumsum(0).dtype == np.int64
    np.testing.assert_array_equal(hubkit.tensor([True, True, False]).cumsum(0).numpy(), [1, 2, 2])


def test_var_of_one_element_with_bessel_correction_is_nan():
    assert np.isnan(hubkit.tensor([2.0]).var().item())


def test_var_rejects_unbiased_and_correction_together():
    with pytest.raises(ArgumentError, match="either unbiased= or correction="):
        hubkit.var(hubkit.ones(3), 0, True, correction=1)


def test_logsumexp_of_all_minus_infinity_is_minus_infinity():
    x = hubkit.tensor([[-np.inf, -np.inf], [0.0, -np.inf]])
    np.testing.assert_array_equal(hubkit.logsumexp(x, 1).numpy(), [-np.inf, 0.0])


def test_dim_out_of_range_names_op_and_rank():
    with pytest.raises(ShapeError, match="sum: dim 2 is out of range for a tensor with 2 dims"):
        hubkit.ones(2, 3).sum(2)
    with pytest.raises(ShapeError, match="max: dim 0 of shape \\(0, 3\\) is empty"):
        hubkit.ones(0, 3).max(0)
