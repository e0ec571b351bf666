"""The Tensor API: conversion, memory sharing, repr, devices, dtypes, detach/clone, creation
functions, seeding, and the in-place helpers optimizers use."""

import sys

import numpy as np
import pytest

import hubkit
from hubkit import _backend
from hubkit.errors import DeviceError, DTypeError, GradError, HubkitError

# ---------------------------------------------------------------- numpy interop


def test_numpy_of_a_view_shares_memory_with_the_original():
    t = hubkit.zeros(2, 3)
    v = t.T
    v.numpy()[2, 1] = 4.0
    assert t[1, 2].item() == 4.0
    assert np.shares_memory(t.numpy(), v.numpy())


def test_detach_shares_memory_and_clone_copies():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    d, c = x.detach(), x.clone()
    assert not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.numpy(), x.numpy())
    assert not np.shares_memory(c.detach().numpy(), x.numpy())
    (c * 3).sum().backward()  # clone is differentiable
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_tensor_copies_and_as_tensor_shares():
    a = np.arange(3.0, dtype=np.float32)
    t, s = hubkit.tensor(a), hubkit.as_tensor(a)
    a[0] = 9.0
    assert t[0].item() == 0.0 and s[0].item() == 9.0


def test_item_tolist_float_int_bool():
    assert hubkit.tensor([[2.5]]).item() == 2.5
    assert hubkit.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert float(hubkit.tensor(1.5)) == 1.5 and int(hubkit.tensor(3)) == 3 and bool(hubkit.tensor(True))
    with pytest.raises(ValueError, match="2 elements"):
        hubkit.tensor([1.0, 2.0]).item()


def test_shape_helpers():
    t = hubkit.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.T.shape == (4, 3, 2) and hubkit.zeros(2, 5, 3).mT.shape == (2, 3, 5)
    assert t.element_size() == 4 and t.is_floating_point()


# ---------------------------------------------------------------- repr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: hubkit.tensor([1.0, 2.0]), "tensor([1., 2.])"),
        (lambda: hubkit.tensor([0.12345, 1.0]), "tensor([0.1235, 1.0000])"),
        (lambda: hubkit.tensor(3.5), "tensor(3.5000)"),
        (lambda: hubkit.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
        (lambda: hubkit.tensor([1e-5, 1.0]), "tensor([1.0000e-05, 1.0000e+00])"),
        (lambda: hubkit.tensor([1e10, 1.0]), "tensor([1.0000e+10, 1.0000e+00])"),
        (lambda: hubkit.tensor([float("nan"), 1.0, float("inf")]), "tensor([nan, 1., inf])"),
        (lambda: hubkit.tensor([-1.5, 2.0]), "tensor([-1.5000,  2.0000])"),
        (lambda: hubkit.tensor([True, False]), "tensor([ True, False])"),
        (lambda: hubkit.zeros(0), "tensor([])"),
        (lambda: hubkit.zeros(2, 0), "tensor([], size=(2, 0))"),
        (lambda: hubkit.zeros(0, dtype=hubkit.int64), "tensor([], dtype=hubkit.int64)"),
        (lambda: hubkit.tensor([1.0, 2.0], dtype=hubkit.float64), "tensor([1., 2.], dtype=hubkit.float64)"),
        (lambda: hubkit.tensor([1, 2], dtype=hubkit.int32), "tensor([1, 2], dtype=hubkit.int32)"),
        (lambda: hubkit.ones(2, requires_grad=True), "tensor([1., 1.], requires_grad=True)"),
        (lambda: hubkit.tensor([[1.5, 2.25], [3.0, 4.0]]), "tensor([[1.5000, 2.2500],\n        [3.0000, 4.0000]])"),
        (lambda: hubkit.arange(2000).float(),
         "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n        1.9990e+03])"),
    ],
)
def test_repr_matches_pytorch_format(make, expected):
    assert repr(make()) == expected


def test_repr_names_the_grad_fn():
    x = hubkit.ones(2, requires_grad=True)
    assert repr(x * 2) == "tensor([2., 2.], grad_fn=<MulBackward>)"


@pytest.mark.parity
def test_repr_matches_torch_for_many_tensors():
    import torch

    cases = [
        lambda m: m.arange(24).reshape(2, 3, 4).float() / 7, lambda m: m.arange(3000).reshape(30, 100) / 3,
        lambda m: m.arange(40).float() / 3, lambda m: m.zeros(3), lambda m: m.tensor([-0.0, 0.0]),
        lambda m: m.arange(1200).reshape(2, 3, 200), lambda m: m.tensor([[float("nan")]]),
        lambda m: m.tensor(float("-inf")), lambda m: m.arange(30, dtype=m.float64) * 1e9,
        lambda m: m.tensor([1.0, 2.0], dtype=m.float16), lambda m: m.tensor([123456.0, 1.5]),
        lambda m: m.arange(12).reshape(3, 4).float() * 1e-6, lambda m: m.tensor([100.5, 2.0]),
        lambda m: m.arange(200).float().reshape(2, 100) ** 2, lambda m: m.tensor([[[1, -2]]], dtype=m.int8),
    ]
    for case in cases:
        assert repr(case(hubkit)) == repr(case(torch)).replace("torch.", "hubkit.")


# ---------------------------------------------------------------- devices and dtypes


@pytest.fixture
def no_cupy(monkeypatch):
    """Make ``import cupy`` fail, whatever is installed, and forget any earlier successful import."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    _backend._import_cupy.cache_clear()
    yield
    _backend._import_cupy.cache_clear()


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", hubkit.Device("cuda", 1)])
def test_cuda_without_cupy_raises_device_error_with_install_hint(no_cupy, spec):
    with pytest.raises(DeviceError, match=r"cupy is not installed.*pip install 'hubkit\[cuda12\]'"):
        hubkit.zeros(2).to(spec)
    with pytest.raises(HubkitError):
        hubkit.zeros(2, device="cuda")
    assert hubkit.cuda_is_available() is False


def test_bad_device_strings_are_rejected():
    for spec in ("gpu", "cuda:x", "cpu:1"):
        with pytest.raises(DeviceError, match="cpu"):
            hubkit.zeros(2).to(spec)
    assert hubkit.Device("cuda") == "cuda:0" and str(hubkit.Device("cpu")) == "cpu"


def test_to_same_device_and_dtype_is_a_no_op():
    t = hubkit.ones(2)
    assert t.to("cpu") is t and t.to(hubkit.float32) is t and t.cpu() is t
    assert t.to("cpu", copy=True) is not t


def test_to_dtype_casts_and_gradient_flows_back_in_the_source_dtype():
    x = hubkit.tensor([1.5, -2.0], requires_grad=True)
    y = x.to(hubkit.float64)
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, -4.0])
    assert x.to("float16").dtype == np.float16 and x.long().tolist() == [1, -2]
    assert x.to(hubkit.zeros(1, dtype=hubkit.int32)).dtype == np.int32
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16 and x.bool().dtype == np.bool_


def test_requires_grad_only_for_floats():
    with pytest.raises(DTypeError, match="only floating point tensors can require gradients"):
        hubkit.tensor([1, 2], requires_grad=True)
    x = hubkit.ones(2).requires_grad_()
    assert x.requires_grad and x.is_leaf
    with pytest.raises(GradError, match="leaf"):
        (x * 2).requires_grad_(False)


# ---------------------------------------------------------------- creation


def test_creation_functions_shapes_and_default_dtypes():
    assert hubkit.zeros(2, 3).dtype == np.float32 and hubkit.zeros((2, 3)).shape == (2, 3)
    assert hubkit.ones(4, dtype=hubkit.int64).tolist() == [1, 1, 1, 1]
    assert hubkit.empty(2, 2).shape == (2, 2)
    assert hubkit.full((2,), 7).dtype == np.int64 and hubkit.full((2,), 0.5).dtype == np.float32
    assert hubkit.full((2,), True).dtype == np.bool_
    assert hubkit.arange(5).dtype == np.int64 and hubkit.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert hubkit.arange(0, 1, 0.25).tolist() == [0.0, 0.25, 0.5, 0.75]
    assert hubkit.arange(1, 7, 2).tolist() == [1, 3, 5]
    np.testing.assert_allclose(hubkit.linspace(0, 1, 5).numpy(), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_array_equal(hubkit.eye(2, 3).numpy(), np.eye(2, 3))
    assert hubkit.tensor([1, 2]).dtype == np.int64 and hubkit.tensor([1.0, 2]).dtype == np.float32
    assert hubkit.tensor(np.array([1.0])).dtype == np.float64  # numpy arrays keep their dtype
    assert hubkit.zeros(2, requires_grad=True).requires_grad


def test_like_functions_copy_shape_dtype_and_device():
    t = hubkit.zeros(2, 3, dtype=hubkit.float64)
    for like in (hubkit.zeros_like(t), hubkit.ones_like(t), hubkit.empty_like(t), hubkit.full_like(t, 2.0),
                 hubkit.rand_like(t), hubkit.randn_like(t)):
        assert like.shape == (2, 3) and like.dtype == np.float64 and like.device == "cpu"
    assert hubkit.ones_like(t).numpy().sum() == 6 and hubkit.full_like(t, 2.0).numpy().max() == 2.0
    assert hubkit.zeros_like(t, dtype=hubkit.int32).dtype == np.int32


def test_random_creation_ranges():
    hubkit.manual_seed(0)
    u = hubkit.rand(1000).numpy()
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1
    i = hubkit.randint(3, 7, (1000,)).numpy()
    assert i.dtype == np.int64 and set(np.unique(i)) == {3, 4, 5, 6}
    assert sorted(hubkit.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    assert hubkit.randn(2, 3, dtype=hubkit.float64).dtype == np.float64


def test_manual_seed_reproduces_every_random_source():
    def draw():
        return (hubkit.randn(3).tolist(), hubkit.rand(2).tolist(), hubkit.randint(0, 100, (3,)).tolist(),
                hubkit.randperm(4).tolist(), hubkit.empty(3).normal_().tolist(), hubkit.empty(2).uniform_().tolist())

    hubkit.manual_seed(42)
    first = draw()
    hubkit.manual_seed(42)
    assert draw() == first
    hubkit.manual_seed(43)
    assert draw() != first


def test_a_generator_object_is_independent_of_the_global_one():
    g = hubkit.Generator().manual_seed(5)
    a = hubkit.randn(3, generator=g).tolist()
    hubkit.randn(10)
    g.manual_seed(5)
    assert hubkit.randn(3, generator=g).tolist() == a


# ---------------------------------------------------------------- in-place helpers


def test_in_place_helpers_modify_the_same_memory():
    t = hubkit.ones(3)
    mem = t.numpy()
    t.mul_(2).add_(hubkit.ones(3), alpha=3).sub_(1).div_(2).clamp_(max=1.5)
    np.testing.assert_array_equal(mem, [1.5, 1.5, 1.5])
    t.zero_()
    assert not mem.any()
    t.fill_(4.0).copy_(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(mem, [1.0, 2.0, 3.0])


def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = hubkit.ones(2, requires_grad=True)
    with pytest.raises(GradError, match="in-place"):
        w.add_(1.0)
    with hubkit.no_grad():
        w.add_(1.0)
    np.testing.assert_array_equal(w.detach().numpy(), [2.0, 2.0])


def test_grad_mode_helpers():
    x = hubkit.ones(2, requires_grad=True)
    with hubkit.set_grad_enabled(False):
        assert not hubkit.is_grad_enabled()
        assert not (x * 2).requires_grad
    assert hubkit.is_grad_enabled()
    grads = hubkit.autograd.grad((x * x).sum(), [x])
    np.testing.assert_array_equal(grads[0].numpy(), [2.0, 2.0])
    assert x.grad is None


def test_retain_grad_keeps_an_intermediate_gradient():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    (y * y).sum().backward()
    np.testing.assert_array_equal(y.grad.numpy(), [6.0, 12.0])


def test_second_backward_without_retain_graph_raises():
    x = hubkit.ones(2, requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])
    with pytest.raises(GradError, match="second time"):
        y.backward()



def test_rng_state_round_trip_continues_the_same_stream():
    hubkit.manual_seed(11)
    hubkit.rand(3)
    state = hubkit.get_rng_state()
    assert state.dtype == hubkit.uint8 and state.shape == (37,)
    first = hubkit.randn(4).tolist()
    hubkit.rand(7)
    hubkit.set_rng_state(state)
    assert hubkit.randn(4).tolist() == first
    with pytest.raises(HubkitError, match="37-byte"):
        hubkit.set_rng_state(hubkit.zeros(3, dtype=hubkit.uint8))
