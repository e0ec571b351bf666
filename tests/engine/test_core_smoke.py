"""Core engine behaviour: autograd traversal, memory sharing, dtype rules, shape errors."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import GradError, ShapeError


def test_numpy_shares_memory_both_ways():
    t = hubkit.zeros(3)
    a = t.numpy()
    a[1] = 5.0
    assert t[1].item() == 5.0
    t.array[2] = 7.0
    assert a[2] == 7.0
    b = np.arange(4.0)
    u = hubkit.from_numpy(b)
    b[0] = 9.0
    assert u[0].item() == 9.0


def test_python_scalars_never_promote_float32():
    x = hubkit.ones(2)
    for y in (x + 1.5, 2.0 * x, x / 3, x**2, x - 1, 1 - x, x * np.float64(2)):
        assert y.dtype == np.float32
    assert (hubkit.tensor([1, 2]) + 0.5).dtype == np.float32
    assert (hubkit.tensor([1, 2]) / 2).dtype == np.float32


def test_ten_thousand_op_chain_backward_has_no_recursion_limit():
    x = hubkit.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y + 1.0
    y.sum().backward()
    assert x.grad.item() == 1.0


def test_shared_input_finishes_before_its_consumer():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    b = x * 2
    a = b * 3
    (b + a).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [8.0, 8.0])


def test_gradients_accumulate_into_leaves_across_backward_calls():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0])


def test_shared_gradient_array_is_not_aliased_between_leaves():
    a = hubkit.tensor([1.0], requires_grad=True)
    b = hubkit.tensor([1.0], requires_grad=True)
    (a + b).sum().backward()
    a.grad.mul_(10)
    assert b.grad.item() == 1.0


def test_no_grad_and_enable_grad():
    x = hubkit.ones(2, requires_grad=True)
    with hubkit.no_grad():
        y = x * 2
        with hubkit.enable_grad():
            z = x * 2
    assert not y.requires_grad and z.requires_grad

    @hubkit.no_grad()
    def f(t):
        return t * 2

    assert not f(x).requires_grad


def test_backward_on_non_scalar_needs_gradient():
    x = hubkit.ones(2, requires_grad=True)
    with pytest.raises(GradError, match="scalar"):
        (x * 2).backward()


def test_matmul_shape_error_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"matmul: \(2, 3\) @ \(4, 5\): inner dims 3 and 4 differ"):
        hubkit.zeros(2, 3) @ hubkit.zeros(4, 5)


def test_broadcast_gradient_is_summed_to_input_shape():
    gradcheck(lambda a, b: a * b + a, [np.random.rand(3, 1, 4), np.random.rand(2, 1)])


def test_gradcheck_catches_a_wrong_gradient():
    class Bad(hubkit.autograd.Function):
        def forward(self, x):
            return x * x

        def backward(self, gy):
            return gy * 3

    with pytest.raises(AssertionError):
        gradcheck(lambda x: Bad()(x), [np.random.rand(3)])


@pytest.mark.parametrize("shapes", [((2, 3), (3, 4)), ((5, 2, 3), (3,)), ((3,), (2, 3, 4)), ((2, 1, 2, 3), (4, 3, 2))])
def test_matmul_gradcheck(shapes):
    gradcheck(F.matmul, [np.random.rand(*shapes[0]), np.random.rand(*shapes[1])])


@pytest.mark.parity
def test_matmul_matches_torch():
    compare_with_torch(lambda m, a, b: m.matmul(a, b), [np.random.rand(2, 1, 2, 3), np.random.rand(4, 3, 2)])
