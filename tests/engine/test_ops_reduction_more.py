"""Reductions, orderings and differences (hubkit/ops/reduction.py, order.py, differences.py): gradients
against central differences, values/indices/gradients against PyTorch, dtype rules and errors."""

import numpy as np
import pytest
from opcases import case_ids, check_gradient, check_torch, distinct, inputs, n

import hubkit
from hubkit.errors import ArgumentError, ShapeError

# (name, fn(ns, *xs) with ns = hubkit or torch, input maker); distinct() inputs keep ties away
CASES = [
    ("prod-all", lambda t, x: t.prod(x), n(2, 3)),
    ("prod-dim", lambda t, x: t.prod(x, 1), n(2, 3)),
    ("prod-keepdim", lambda t, x: x.prod(0, keepdim=True), n(3, 2)),
    ("prod-with-zero", lambda t, x: t.prod(x * t.tensor([[1.0, 0.0, 1.0]], dtype=x.dtype), 1), n(2, 3)),
    ("amax-all", lambda t, x: t.amax(x), distinct(2, 3)),
    ("amax-dims", lambda t, x: t.amax(x, (0, 2), keepdim=True), distinct(2, 3, 2)),
    ("amin-dim", lambda t, x: t.amin(x, -1), distinct(3, 4)),
    ("amax-ties", lambda t, x: t.amax(t.round(x * 0) + x * 0 + x.detach().round(), 1) * x.sum(), n(2, 3)),
    ("aminmax", lambda t, x: t.aminmax(x, dim=1), distinct(3, 4)),
    ("norm-fro", lambda t, x: t.norm(x), n(2, 3)),
    ("norm-p1-dim", lambda t, x: t.norm(x, 1, dim=1), n(2, 3)),
    ("norm-p3-keepdim", lambda t, x: t.norm(x, 3, dim=0, keepdim=True), n(3, 2)),
    ("norm-p0.5", lambda t, x: t.norm(x, 0.5), n(4)),
    ("norm-inf", lambda t, x: t.norm(x, float("inf"), dim=1), distinct(2, 3)),
    ("norm-neg-inf", lambda t, x: t.norm(x, float("-inf")), distinct(5)),
    ("norm-nuc", lambda t, x: t.norm(x, "nuc"), n(3, 3)),
    ("dist", lambda t, a, b: t.dist(a, b, 3), inputs(n(2, 3), n(3))),
    ("nansum", lambda t, x: t.nansum(x, 1), n(2, 3)),
    ("nanmean", lambda t, x: t.nanmean(x, 0), n(3, 2)),
    ("std_mean", lambda t, x: t.std_mean(x, 1), n(2, 4)),
    ("var_mean", lambda t, x: t.var_mean(x, 0, correction=0), n(3, 2)),
    ("cumprod", lambda t, x: t.cumprod(x, 1), n(2, 4)),
    ("cumprod-zeros", lambda t, x: t.cumprod(x * t.tensor([1.0, 0.0, 1.0, 0.0], dtype=x.dtype), 0), n(4)),
    ("cummax", lambda t, x: t.cummax(x, 1).values, distinct(2, 5)),
    ("cummin", lambda t, x: t.cummin(x, 0).values, distinct(4, 2)),
    ("logcumsumexp", lambda t, x: t.logcumsumexp(x, 1), n(2, 4, scale=3)),
    ("logcumsumexp-spread", lambda t, x: t.logcumsumexp(x * t.tensor([300.0, 1, 1], dtype=x.dtype), 0), n(3)),
    ("sort", lambda t, x: t.sort(x, 1).values, distinct(3, 4)),
    ("sort-descending", lambda t, x: t.sort(x, 0, descending=True).values, distinct(3, 2)),
    ("msort", lambda t, x: t.msort(x), distinct(3, 2)),
    ("topk", lambda t, x: t.topk(x, 2).values, distinct(3, 4)),
    ("topk-smallest", lambda t, x: t.topk(x, 3, dim=0, largest=False).values, distinct(4, 2)),
    ("kthvalue", lambda t, x: t.kthvalue(x, 2, 1).values, distinct(3, 4)),
    ("median-all", lambda t, x: t.median(x), distinct(2, 3)),
    ("median-dim", lambda t, x: t.median(x, 1, keepdim=True).values, distinct(3, 4)),
    ("nanmedian", lambda t, x: t.nanmedian(x, 0).values, distinct(3, 2)),
    ("quantile", lambda t, x: t.quantile(x, 0.3), distinct(7)),
    ("quantile-dim-qs", lambda t, x: t.quantile(x, t.tensor([0.25, 0.8], dtype=x.dtype), dim=1, keepdim=True),
     distinct(2, 5)),
    ("quantile-midpoint", lambda t, x: t.quantile(x, 0.4, dim=0, interpolation="midpoint"), distinct(5, 2)),
    ("nanquantile", lambda t, x: t.nanquantile(x, 0.6, dim=1), distinct(2, 4)),
    ("diff", lambda t, x: t.diff(x), n(2, 4)),
    ("diff-n2-prepend", lambda t, x, p: t.diff(x, 2, 0, prepend=p), inputs(n(3, 2), n(1, 2))),
    ("gradient", lambda t, x: t.gradient(x, spacing=0.5), n(3, 4)),
    ("gradient-edge2-coords", lambda t, x: t.gradient(x, spacing=(t.tensor([0.0, 0.5, 2.0, 2.5], dtype=x.dtype),),
                                                      dim=1, edge_order=2), n(2, 4)),
    ("trapezoid", lambda t, y: t.trapezoid(y, dx=0.5), n(2, 4)),
    ("trapezoid-x", lambda t, y, x: t.trapezoid(y, x, dim=0), inputs(n(3, 2), distinct(3, 2))),
    ("cumulative_trapezoid", lambda t, y: t.cumulative_trapezoid(y, dim=0), n(4, 2)),
    ("cov", lambda t, x: t.cov(x), n(3, 5)),
    ("cov-weights", lambda t, x: t.cov(x, correction=0, fweights=t.tensor([1, 2, 1, 3]),
                                       aweights=t.tensor([0.5, 1.0, 2.0, 1.0], dtype=x.dtype)), n(2, 4)),
    ("corrcoef", lambda t, x: t.corrcoef(x), n(3, 5)),
    ("renorm", lambda t, x: t.renorm(x, 2, 0, 1.0), n(3, 4)),
]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_gradient_matches_central_differences(name, fn, make):
    check_gradient(name, fn, make)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    check_torch(name, fn, make, dtype)


# ---------------------------------------------------------------- indices and ties

INDEXED = [
    ("sort", lambda t, x: t.sort(x, 1)),
    ("sort-descending-stable-ties", lambda t, x: t.sort(t.round(x), stable=True, dim=0, descending=True)),
    ("argsort", lambda t, x: (t.argsort(x, -1, descending=True),)),
    ("topk", lambda t, x: t.topk(x, 3, 1)),
    ("kthvalue", lambda t, x: t.kthvalue(x, 2, 0, keepdim=True)),
    ("median", lambda t, x: t.median(x, 1)),
    ("mode", lambda t, x: t.mode(t.round(x / 2), 1)),
    ("cummax", lambda t, x: t.cummax(t.round(x), 1)),
    ("cummin", lambda t, x: t.cummin(t.round(x), 0)),
    ("max-min-of-aminmax", lambda t, x: t.aminmax(x, dim=0)),
]


@pytest.mark.parity
@pytest.mark.parametrize(("name", "fn"), INDEXED, ids=[c[0] for c in INDEXED])
def test_values_and_indices_match_torch(name, fn):
    import torch

    x = np.random.default_rng(5).standard_normal((4, 6)) * 3
    ours, theirs = fn(hubkit, hubkit.tensor(x)), fn(torch, torch.tensor(x))
    for h, t in zip(ours, theirs):
        np.testing.assert_array_equal(h.numpy(), t.numpy())


def test_nan_sorts_last_and_propagates_through_median():
    nan = float("nan")
    x = hubkit.tensor([[1.0, nan, 3.0], [2.0, 1.0, 0.5]])
    values, indices = hubkit.sort(x, 1)
    np.testing.assert_array_equal(indices.numpy(), [[0, 2, 1], [2, 1, 0]])
    assert np.isnan(hubkit.sort(x, 1, descending=True).values.numpy()[0, 0])
    med = hubkit.median(x, 1)
    assert np.isnan(med.values.numpy()[0]) and med.indices.numpy()[0] == 1
    np.testing.assert_array_equal(hubkit.nanmedian(x, 1).values.numpy(), [1.0, 1.0])
    assert np.isnan(hubkit.quantile(x, 0.5, dim=1).numpy()[0])
    assert hubkit.nanquantile(x, 0.5, dim=1).numpy()[0] == 2.0


def test_gradient_of_selected_values_goes_to_their_positions():
    x = hubkit.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 4.0]], requires_grad=True)
    hubkit.topk(x, 2, 1).values.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[1, 0, 1], [0, 1, 1]])


def test_amax_and_inf_norm_split_the_gradient_among_ties():
    x = hubkit.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    hubkit.amax(x, 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[0, 0.5, 0.5], [0.5, 0.5, 0]])
    y = hubkit.tensor([1.0, -3.0, 3.0], requires_grad=True)
    hubkit.norm(y, float("inf")).backward()
    np.testing.assert_array_equal(y.grad.numpy(), [0, -0.5, 0.5])


def test_norm_of_zero_has_zero_gradient():
    x = hubkit.zeros(3, requires_grad=True)
    hubkit.norm(x).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 0, 0])
    z = hubkit.tensor([1.0, 0.0, 3.0], requires_grad=True)
    hubkit.norm(z, 0.5).backward()
    assert np.isfinite(z.grad.numpy()).all() and z.grad.numpy()[1] == 0


def test_logcumsumexp_keeps_tiny_and_huge_terms():
    x = hubkit.tensor([-1000.0, 0.0, 1000.0], dtype=hubkit.float64, requires_grad=True)
    y = hubkit.logcumsumexp(x, 0)
    np.testing.assert_allclose(y.detach().numpy(), [-1000.0, 0.0, 1000.0])
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0, 1.0], atol=1e-12)


# ---------------------------------------------------------------- dtypes, counting, searching


def test_integer_reductions_follow_torch_dtypes():
    i = hubkit.tensor([[1, 2], [3, 4]], dtype=hubkit.int32)
    assert hubkit.prod(i).dtype == np.int64 and hubkit.prod(i).item() == 24
    assert hubkit.cumprod(i, 1).dtype == np.int64
    assert hubkit.amax(i).dtype == np.int32 and hubkit.amax(i).item() == 4
    assert hubkit.count_nonzero(hubkit.tensor([[1, 0], [2, 3]]), dim=0).tolist() == [2, 1]
    assert hubkit.nansum(hubkit.tensor([1, 2])).dtype == np.int64
    assert hubkit.cummax(hubkit.tensor([1, 3, 2]), 0).values.dtype == np.int64
    with pytest.raises(TypeError, match="vector_norm: expected a floating point tensor"):
        hubkit.norm(hubkit.tensor([1, 2]))


@pytest.mark.parity
def test_counting_and_searching_match_torch():
    import torch

    x = np.array([3, 1, 3, 2, 2, 2, 5])
    h, t = hubkit.tensor(x), torch.tensor(x)
    for ours, theirs in [
        (hubkit.unique(h, return_inverse=True, return_counts=True), torch.unique(t, return_inverse=True,
                                                                                   return_counts=True)),
        (hubkit.unique_consecutive(h, return_inverse=True, return_counts=True),
         torch.unique_consecutive(t, return_inverse=True, return_counts=True)),
        ((hubkit.bincount(h, minlength=8),), (torch.bincount(t, minlength=8),)),
        ((hubkit.bincount(h, weights=hubkit.tensor(x * 0.5)),), (torch.bincount(t, weights=torch.tensor(x * 0.5)),)),
    ]:
        for a, b in zip(ours, theirs):
            assert a.dtype == np.dtype(str(b.dtype).replace("torch.", ""))
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    m = np.array([[1, 1, 2], [3, 3, 3], [1, 1, 2]])
    np.testing.assert_array_equal(hubkit.unique(hubkit.tensor(m), dim=0).numpy(), torch.unique(torch.tensor(m),
                                                                                               dim=0).numpy())
    seq = np.array([[1, 3, 5, 7], [2, 4, 6, 8]])
    vals = np.array([[3, 6], [1, 9]])
    for right in (False, True):
        np.testing.assert_array_equal(
            hubkit.searchsorted(hubkit.tensor(seq), hubkit.tensor(vals), right=right).numpy(),
            torch.searchsorted(torch.tensor(seq), torch.tensor(vals), right=right).numpy())
        np.testing.assert_array_equal(
            hubkit.bucketize(hubkit.tensor(vals), hubkit.tensor(seq[0]), right=right).numpy(),
            torch.bucketize(torch.tensor(vals), torch.tensor(seq[0]), right=right).numpy())
    data = np.random.default_rng(0).standard_normal(50).astype(np.float32)
    np.testing.assert_array_equal(hubkit.histc(hubkit.tensor(data), bins=7, min=-2, max=2).numpy(),
                                  torch.histc(torch.tensor(data), bins=7, min=-2, max=2).numpy())
    np.testing.assert_array_equal(hubkit.histc(hubkit.tensor(data), bins=5).numpy(),
                                  torch.histc(torch.tensor(data), bins=5).numpy())
    ours, theirs = hubkit.histogram(hubkit.tensor(data), bins=4), torch.histogram(torch.tensor(data), bins=4)
    np.testing.assert_allclose(ours.hist.numpy(), theirs.hist.numpy())
    np.testing.assert_allclose(ours.bin_edges.numpy(), theirs.bin_edges.numpy(), rtol=1e-6)


def test_method_forms_match_functions():
    x = hubkit.tensor(np.random.default_rng(1).standard_normal((3, 4)))
    for name, args in [("prod", (1,)), ("amax", (0,)), ("norm", ()), ("cumprod", (1,)), ("logcumsumexp", (0,)),
                       ("nansum", ()), ("diff", ()), ("msort", ()), ("cov", ()), ("renorm", (2, 0, 1.0))]:
        np.testing.assert_array_equal(getattr(x, name)(*args).numpy(), getattr(hubkit, name)(x, *args).numpy())
    v = x.clone()
    v.cumprod_(1)
    np.testing.assert_array_equal(v.numpy(), hubkit.cumprod(x, 1).numpy())
    w = x.clone()
    w.cumsum_(0)
    np.testing.assert_allclose(w.numpy(), np.cumsum(x.numpy(), 0))


# ---------------------------------------------------------------- errors


def test_bad_arguments_raise_clear_errors():
    x = hubkit.ones(2, 3)
    with pytest.raises(ShapeError, match=r"topk: k \(4\) is out of range for dim -1 of size 3"):
        hubkit.topk(x, 4)
    with pytest.raises(ShapeError, match="kthvalue: k"):
        hubkit.kthvalue(x, 0)
    with pytest.raises(ShapeError, match="prod: dim 2 is out of range"):
        hubkit.prod(x, 2)
    with pytest.raises(ArgumentError, match="quantile: q values must be in"):
        hubkit.quantile(x, 1.5)
    with pytest.raises(ArgumentError, match="interpolation must be one of"):
        hubkit.quantile(x, 0.5, interpolation="cubic")
    with pytest.raises(ArgumentError, match="norm: p must be a number"):
        hubkit.norm(x, "max")
    with pytest.raises(ShapeError, match="amax: dim 1 of shape"):
        hubkit.amax(hubkit.ones(2, 0), 1)
    with pytest.raises(ArgumentError, match="bincount: input must contain only non-negative"):
        hubkit.bincount(hubkit.tensor([1, -1]))
    with pytest.raises(ShapeError, match="diff: expects a tensor with at least 1 dim"):
        hubkit.diff(hubkit.tensor(1.0))
    with pytest.raises(ArgumentError, match="gradient: edge_order must be 1 or 2"):
        hubkit.gradient(x, edge_order=3)
    with pytest.raises(ShapeError, match="gradient: dim 0 has 2 samples"):
        hubkit.gradient(x, dim=0, edge_order=2)
    with pytest.raises(ArgumentError, match="trapezoid: pass x or dx, not both"):
        hubkit.trapezoid(x, hubkit.ones(3), dx=1.0)


@pytest.mark.parametrize("length", [1, 2, 5, 8, 13])
@pytest.mark.parametrize("op", [np.maximum, np.minimum, np.logaddexp], ids=["max", "min", "logaddexp"])
def test_log_step_scan_used_on_cuda_equals_accumulate(length, op):
    from hubkit.ops.reduction import log_step_scan

    x = np.random.default_rng(length).standard_normal((3, length, 2))
    np.testing.assert_allclose(log_step_scan(op, x, 1), op.accumulate(x, axis=1), rtol=1e-13)
