"""In-place semantics as PyTorch has them: ``.data``, ``x.op_()``, augmented assignment, the version
counter that guards saved values, ``.grad`` assignment and ``format``."""

import numpy as np
import pytest

import hubkit
from hubkit.errors import DTypeError, GradError, ShapeError

# ---------------------------------------------------------------- .data


def test_data_is_a_detached_tensor_sharing_memory():
    p = hubkit.nn.Parameter(hubkit.tensor([1.0, 2.0]))
    d = p.data
    assert isinstance(d, hubkit.Tensor) and not d.requires_grad and d.grad_fn is None
    d.add_(hubkit.tensor([10.0, 10.0]))  # pytorch/examples' manual SGD: p.data.add_(p.grad, alpha=-lr)
    np.testing.assert_array_equal(p.numpy(), [11.0, 12.0])
    assert p.is_leaf and p.requires_grad


def test_data_add_with_alpha_is_the_manual_sgd_step():
    w = hubkit.tensor([1.0, -1.0], requires_grad=True)
    (w * w).sum().backward()
    w.data.add_(w.grad, alpha=-0.5)
    np.testing.assert_allclose(w.numpy(), [0.0, 0.0])


def test_assigning_data_replaces_the_values_and_keeps_the_tensor():
    w = hubkit.tensor([1.0, 2.0], requires_grad=True)
    w.data = hubkit.zeros(3)
    assert w.shape == (3,) and w.requires_grad
    with pytest.raises(TypeError, match="Tensor"):
        w.data = [1.0, 2.0]


# ---------------------------------------------------------------- in place outside autograd


def test_augmented_assignment_on_a_leaf_under_no_grad_mutates_it():
    a = hubkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    for _ in range(2):  # the autograd tutorial's manual update, twice: the second backward must still work
        loss = (a * a).sum()
        loss.backward()
        before = a.array
        with hubkit.no_grad():
            a -= 0.1 * a.grad
            a.grad = None
        assert a.array is before and a.is_leaf and a.requires_grad
    np.testing.assert_allclose(a.numpy(), np.array([1.0, 2.0, 3.0]) * 0.8 * 0.8, rtol=1e-6)


@pytest.mark.parametrize(("op", "expected"), [
    (lambda t: t.__iadd__(2), [3.0, 4.0]),
    (lambda t: t.__isub__(2), [-1.0, 0.0]),
    (lambda t: t.__imul__(3), [3.0, 6.0]),
    (lambda t: t.__itruediv__(2), [0.5, 1.0]),
    (lambda t: t.__ipow__(2), [1.0, 4.0]),
    (lambda t: t.__ifloordiv__(2), [0.0, 1.0]),
    (lambda t: t.mul_(2).add_(1), [3.0, 5.0]),
    (lambda t: t.exp_(), np.exp([1.0, 2.0])),
    (lambda t: t.clamp_(min=1.5), [1.5, 2.0]),
    (lambda t: t.sigmoid_(), 1 / (1 + np.exp(-np.array([1.0, 2.0])))),
])
def test_inplace_ops_write_into_the_same_array(op, expected):
    t = hubkit.tensor([1.0, 2.0])
    alias = t.data
    out = op(t)
    assert out is t
    np.testing.assert_allclose(t.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(alias.numpy(), expected, rtol=1e-6)  # aliases see the write
    assert t._version > 0


def test_indexed_augmented_assignment_mutates_in_place():
    a = hubkit.zeros(3, 2)
    a[1] += hubkit.tensor([1.0, 2.0])
    a[:, 0] *= 4
    np.testing.assert_array_equal(a.numpy(), [[0, 0], [4, 2], [0, 0]])


def test_inplace_result_that_does_not_fit_is_refused():
    t = hubkit.tensor([1, 2])
    with pytest.raises(DTypeError, match="can't be cast"):
        t.add_(1.5)
    with pytest.raises(ShapeError, match="doesn't match the broadcast shape"):
        hubkit.zeros(3).add_(hubkit.zeros(2, 3))
    t.add_(3)  # same category is fine
    assert t.tolist() == [4, 5]


def test_zero_fill_copy_bump_the_version():
    t = hubkit.zeros(2)
    t.fill_(2.0)
    t.copy_(hubkit.tensor([1.0, 3.0]))
    assert t.tolist() == [1.0, 3.0] and t._version == 2
    t.zero_()
    assert t.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- in place under autograd


def test_leaf_that_requires_grad_refuses_inplace_under_grad():
    w = hubkit.tensor([1.0], requires_grad=True)
    with pytest.raises(GradError, match="leaf Variable that requires grad"):
        w += 1
    with pytest.raises(GradError, match="leaf Variable"):
        w.mul_(2)
    with pytest.raises(GradError, match="no_grad"):
        w.zero_()


def test_augmented_assignment_on_an_intermediate_is_recorded():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y += x * x  # y = 3x + x^2
    y *= 2  # y = 6x + 2x^2
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 + 4 * np.array([1.0, 2.0]))


def test_residual_add_in_place_keeps_gradients_of_both_branches():
    # torchvision's BasicBlock: out = conv(x); out += identity
    x = hubkit.tensor([1.0, -2.0], requires_grad=True)
    out = x.exp()
    saved = out  # the exp node saved its output; rebasing must not change what it saved
    out += x
    out.relu_()
    assert out is saved
    out.sum().backward()
    expected = (np.exp([1.0, -2.0]) + [1.0, -2.0] > 0) * (np.exp([1.0, -2.0]) + 1)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)


def test_copy_under_autograd_sends_the_gradient_to_the_source():
    src = hubkit.tensor([1.0, 2.0], requires_grad=True)
    dst = hubkit.zeros(2, 2)
    dst.copy_(src)
    (dst * hubkit.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    np.testing.assert_allclose(src.grad.numpy(), [4.0, 6.0])


# ---------------------------------------------------------------- the version counter


def test_overwriting_a_saved_input_is_detected_at_backward():
    w = hubkit.tensor([2.0, 3.0], requires_grad=True)
    x = hubkit.tensor([1.0, 1.0])
    loss = (w * x).sum()  # mul saved x for w's gradient
    x.add_(1)
    with pytest.raises(GradError, match="modified by an inplace operation.*version 1; expected version 0"):
        loss.backward()


def test_overwriting_a_saved_output_is_detected_at_backward():
    x = hubkit.tensor([0.5], requires_grad=True)
    y = x.sigmoid()  # sigmoid saved its output
    with hubkit.no_grad():
        y.mul_(2)
    with pytest.raises(GradError, match="modified by an inplace operation"):
        y.sum().backward()


def test_overwriting_a_value_no_op_saved_is_fine():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    c = hubkit.tensor([5.0, 5.0])
    loss = (x + c).sum()  # add saves nothing
    c.mul_(0)
    loss.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.0, 1.0])


def test_optimizer_step_after_backward_is_not_an_error():
    lin = hubkit.nn.Linear(3, 1)
    opt = hubkit.optim.SGD(lin.parameters(), lr=0.1)
    for _ in range(2):
        opt.zero_grad()
        lin(hubkit.ones(2, 3)).sum().backward()
        opt.step()


# ---------------------------------------------------------------- .grad and format


def test_grad_assignment_is_checked():
    t = hubkit.zeros(2, requires_grad=True)
    with pytest.raises(TypeError, match="expected to be a Tensor or None but got grad of type float"):
        t.grad = 0.0
    with pytest.raises(GradError, match="different size"):
        t.grad = hubkit.zeros(3)
    with pytest.raises(GradError, match="different type"):
        t.grad = hubkit.zeros(2, dtype=hubkit.float64)
    t.grad = hubkit.ones(2)
    t.grad = None
    assert t.grad is None


def test_format_of_one_element_tensors():
    loss = hubkit.tensor(0.123456)
    assert f"{loss:.3f}" == "0.123" and format(loss, ".6f") == "0.123456"
    assert f"{hubkit.tensor([2.5]):>6.2f}" == "  2.50"
    assert f"{hubkit.tensor(7):d}" == "7"
    assert f"{hubkit.tensor([1.0, 2.0])}" == str(hubkit.tensor([1.0, 2.0]))
    with pytest.raises(ValueError):
        format(hubkit.tensor([1.0, 2.0]), ".2f")


@pytest.mark.parity
def test_inplace_program_matches_torch():
    import torch

    def program(m):
        x = m.tensor([0.5, -1.0, 2.0], requires_grad=True)
        y = x * 2
        y += x.exp()
        y.mul_(x)
        z = y.clone()
        z[1:] += y[:2]
        z.tanh_()
        z.sum().backward()
        return z.detach().numpy(), x.grad.numpy()

    for ours, theirs in zip(program(hubkit), program(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)
