"""In-place shape methods (squeeze_, unsqueeze_, t_, transpose_, swapaxes_, swapdims_, resize_, resize_as_):
the tensor object changes shape over the same memory, autograd follows, and misuse raises torch's errors."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, GradError, ShapeError

CASES = [
    ((2, 1, 3), "squeeze_", ()),
    ((2, 1, 3, 1), "squeeze_", (1,)),
    ((2, 1, 1), "squeeze_", ((1, 2),)),
    ((2, 3), "squeeze_", (0,)),
    ((2, 3), "unsqueeze_", (1,)),
    ((2, 3), "unsqueeze_", (-1,)),
    ((2, 3), "t_", ()),
    ((3,), "t_", ()),
    ((2, 3, 4), "transpose_", (0, 2)),
    ((2, 3, 4), "swapaxes_", (1, -1)),
    ((2, 3, 4), "swapdims_", (0, 1)),
]


@pytest.mark.parametrize("shape, name, args", CASES)
def test_inplace_shape_method_reshapes_the_same_tensor(shape, name, args):
    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    x = hubkit.tensor(data)
    before, memory = x._version, x.numpy()
    out = getattr(x, name)(*args)
    assert out is x
    expected = getattr(hubkit.tensor(data), name.rstrip("_"))(*args)
    assert x.shape == expected.shape
    np.testing.assert_array_equal(x.numpy(), expected.numpy())
    assert x._version == before + 1
    assert np.shares_memory(x.numpy(), memory)


def test_inplace_shape_method_keeps_memory_shared_with_other_views():
    x = hubkit.arange(6.0)
    view = x.view(2, 3)
    x.unsqueeze_(0)
    assert x.shape == (1, 6) and view.shape == (2, 3)
    x[0, 4] = 100.0
    assert view[1, 1].item() == 100.0
    y = hubkit.arange(6.0).reshape(2, 3)
    y.t_()
    assert y.stride() == (1, 3) and not y.is_contiguous()


@pytest.mark.parametrize("shape, name, args", CASES)
def test_autograd_flows_through_an_inplace_shape_change(shape, name, args):
    rng = np.random.default_rng(0)
    data = rng.standard_normal(shape)
    x = hubkit.tensor(data, requires_grad=True)
    y = x * 1.0
    used_before = (y * 3.0).sum()  # a consumer recorded while y still had its old shape
    getattr(y, name)(*args)
    weights = hubkit.tensor(rng.standard_normal(y.shape))
    (used_before + (y * weights).sum()).backward()
    ref = hubkit.tensor(data, requires_grad=True)
    ((ref * 3.0).sum() + (getattr(ref * 1.0, name.rstrip("_"))(*args) * weights).sum()).backward()
    np.testing.assert_allclose(x.grad.numpy(), ref.grad.numpy())
    assert y.grad_fn is not None


def test_leaf_that_requires_grad_is_refused_unless_under_no_grad():
    x = hubkit.ones(2, 1, requires_grad=True)
    with pytest.raises(GradError, match="leaf Variable that requires grad is being used in an in-place"):
        x.squeeze_()
    with hubkit.no_grad():
        x.squeeze_()
    assert x.shape == (2,) and x.requires_grad and x.is_leaf


def test_bad_dims_raise():
    with pytest.raises(ShapeError, match="squeeze: dim 5 is out of range"):
        hubkit.ones(2, 3).squeeze_(5)
    with pytest.raises(ShapeError, match="unsqueeze: dim 3 is out of range"):
        hubkit.ones(2, 3).unsqueeze_(3)
    with pytest.raises(ShapeError, match="t: expects a tensor with at most 2 dims"):
        hubkit.ones(2, 3, 4).t_()
    with pytest.raises(ShapeError, match="transpose: dim 3 is out of range"):
        hubkit.ones(2, 3, 4).transpose_(0, 3)
    x = hubkit.ones(2, 3)
    with pytest.raises(ShapeError):
        x.squeeze_(7)
    assert x.shape == (2, 3) and x._version == 0  # a failed call changes nothing


def test_normal_inplace_ops_still_refuse_a_shape_change():
    x = hubkit.ones(2, 3)
    with pytest.raises(ShapeError, match="doesn't match the broadcast shape"):
        x.add_(hubkit.ones(4, 2, 3))


# ---------------------------------------------------------------- resize_


def test_resize_shrinks_over_the_same_memory():
    x = hubkit.arange(6.0)
    alias = x[:]
    assert x.resize_(2, 2) is x
    assert x.tolist() == [[0.0, 1.0], [2.0, 3.0]]
    x[0, 0] = 100.0
    assert alias[0].item() == 100.0
    assert x._version == 1


def test_resize_grows_keeping_the_old_elements_first():
    x = hubkit.arange(6.0)
    x.resize_(3, 3)
    assert x[:2].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert x.shape == (3, 3)


def test_resize_takes_elements_in_memory_order_and_same_shape_is_a_no_op():
    x = hubkit.arange(6.0).reshape(2, 3).t()
    x.resize_(3, 2)
    assert x.stride() == (1, 3)  # unchanged, as torch keeps the strides
    x.resize_(2, 2)
    assert x.tolist() == [[0.0, 1.0], [2.0, 3.0]]


def test_resize_size_spellings_and_resize_as():
    x = hubkit.arange(4.0)
    x.resize_((2, 2))
    x.resize_([4])
    x.resize_(2, 2)
    assert x.shape == (2, 2)
    y = hubkit.arange(6.0)
    y.resize_as_(hubkit.zeros(2, 3))
    assert y.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]


def test_resize_refuses_tensors_that_require_grad_and_bad_sizes():
    x = hubkit.ones(2, requires_grad=True)
    with hubkit.no_grad(), pytest.raises(GradError, match="cannot resize variables that require grad"):
        x.resize_(3)
    y = x * 2
    with pytest.raises(GradError, match="cannot resize variables that require grad"):
        y.resize_(1)
    with pytest.raises(ArgumentError, match="sizes must be non-negative ints"):
        hubkit.ones(2).resize_(-1)


@pytest.mark.parity
@pytest.mark.parametrize("shape, name, args", CASES + [((6,), "resize_", (2, 2)), ((2, 3), "resize_", (5,))])
def test_matches_torch(shape, name, args):
    import torch

    data = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    h, t = hubkit.tensor(data), torch.tensor(data)
    getattr(h, name)(*args)
    getattr(t, name)(*args)
    assert tuple(h.shape) == tuple(t.shape)
    n = min(h.numel(), t.numel(), data.size)
    np.testing.assert_array_equal(h.numpy().reshape(-1)[:n], t.numpy().reshape(-1)[:n])
    assert h.stride() == t.stride()


@pytest.mark.parity
def test_gradient_through_inplace_shape_changes_matches_torch():
    import torch

    rng = np.random.default_rng(1)
    data, w = rng.standard_normal((2, 1, 3)), rng.standard_normal((3, 2))
    grads = []
    for lib in (hubkit, torch):
        x = lib.tensor(data, requires_grad=True)
        y = x * 2.0
        y.squeeze_(1)
        y.t_()
        y.unsqueeze_(0)
        (y * lib.tensor(w)).sum().backward()
        grads.append(x.grad.numpy())
    np.testing.assert_allclose(grads[0], grads[1])
