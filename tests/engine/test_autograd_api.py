"""PyTorch's autograd surface: ctx-style ``Function``, ``autograd.grad``/``backward``, tensor hooks,
``retain_grad``, grad modes (``inference_mode``), anomaly detection and module backward hooks."""

import math

import numpy as np
import pytest

import hubkit
from hubkit import nn
from hubkit.errors import GradError

# ---------------------------------------------------------------- ctx-style Function


class LegendrePolynomial3(hubkit.autograd.Function):
    """The autograd tutorial's custom Function: P3(x) = (5x^3 - 3x) / 2."""

    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input**3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input**2 - 1)


class ScaleBy(hubkit.autograd.Function):
    """Non-tensor arguments get None gradients; needs_input_grad says which inputs need one."""

    @staticmethod
    def forward(ctx, x, factor, y):
        ctx.factor = factor
        ctx.seen = ctx.needs_input_grad
        return x * factor + y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.factor, None, (g if ctx.needs_input_grad[2] else None)


def test_ctx_function_forward_and_backward():
    x = hubkit.tensor([0.5, -1.0, 2.0], dtype=hubkit.float64, requires_grad=True)
    y = LegendrePolynomial3.apply(x)
    assert y.grad_fn is not None and "LegendrePolynomial3" in repr(y.grad_fn)
    y.sum().backward()
    xs = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(y.detach().numpy(), 0.5 * (5 * xs**3 - 3 * xs))
    np.testing.assert_allclose(x.grad.numpy(), 1.5 * (5 * xs**2 - 1))


def test_ctx_function_gradcheck():
    from opcheck import gradcheck

    gradcheck(lambda x: LegendrePolynomial3.apply(x), [np.linspace(-1, 1, 5)])


def test_ctx_function_non_tensor_args_and_needs_input_grad():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    y = hubkit.tensor([3.0, 4.0])
    out = ScaleBy.apply(x, 3.0, y)
    assert out.grad_fn.ctx.seen == (True, False, False)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_ctx_function_without_grad_records_nothing():
    x = hubkit.tensor([1.0], requires_grad=True)
    with hubkit.no_grad():
        out = LegendrePolynomial3.apply(x)
    assert out.grad_fn is None and not out.requires_grad


def test_ctx_function_errors_are_clear():
    class TooMany(hubkit.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g, g

    x = hubkit.tensor([1.0], requires_grad=True)
    with pytest.raises(GradError, match="incorrect number of gradients"):
        TooMany.apply(x).sum().backward()
    with pytest.raises(GradError, match=r"\.apply"):
        LegendrePolynomial3()(x)


def test_saved_tensor_overwritten_in_place_is_refused():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    a = x * 1
    out = LegendrePolynomial3.apply(a)
    with hubkit.no_grad():
        a.add_(1)
    with pytest.raises(GradError, match="save_for_backward"):
        out.sum().backward()


def test_mark_non_differentiable():
    class SortWithIndex(hubkit.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            idx = hubkit.tensor(np.argsort(x.numpy()), dtype=hubkit.float32)
            ctx.mark_non_differentiable(idx)
            return x * 1, idx

        @staticmethod
        def backward(ctx, g, g_idx):
            return g

    x = hubkit.tensor([3.0, 1.0], requires_grad=True)
    values, idx = SortWithIndex.apply(x)
    assert values.requires_grad and not idx.requires_grad


def test_identity_returning_its_input_gets_a_new_node():
    class Ident(hubkit.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = hubkit.tensor([1.0], requires_grad=True)
    y = Ident.apply(x)
    assert y is not x and x.is_leaf
    y.sum().backward()
    assert x.grad.tolist() == [2.0]


# ---------------------------------------------------------------- autograd.grad and backward


def test_grad_of_leaves_and_intermediates_leaves_dot_grad_alone():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    y = (h * 3).sum()
    gx, gh = hubkit.autograd.grad(y, [x, h])
    np.testing.assert_allclose(gx.numpy(), [6.0, 12.0])
    np.testing.assert_allclose(gh.numpy(), [3.0, 3.0])
    assert x.grad is None


def test_grad_unused_input_and_unsupported_options():
    x = hubkit.tensor([1.0], requires_grad=True)
    z = hubkit.tensor([1.0], requires_grad=True)
    y = (x * 2).sum()
    with pytest.raises(GradError, match="allow_unused=True"):
        hubkit.autograd.grad(y, [z], retain_graph=True)
    assert hubkit.autograd.grad(y, [x, z], allow_unused=True, retain_graph=True)[1] is None
    (gz,) = hubkit.autograd.grad(y, [z], materialize_grads=True, retain_graph=True)
    assert gz.tolist() == [0.0]
    with pytest.raises(GradError, match="double backward"):
        hubkit.autograd.grad(y, [x], create_graph=True)


def test_backward_of_several_outputs_adds_their_gradients():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    hubkit.autograd.backward([(x * 2).sum(), x * x], [None, hubkit.ones(2)])
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 6.0])


# ---------------------------------------------------------------- hooks and retain_grad


def test_tensor_hooks_see_and_replace_gradients():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.tolist()))
    h = x * 3
    h.register_hook(lambda g: g * 10)  # replaces the gradient flowing into x
    h.retain_grad()
    (h * h).sum().backward()
    np.testing.assert_allclose(h.grad.numpy(), [60.0, 120.0])  # retain_grad sees the hooked gradient
    assert seen == [[180.0, 360.0]]
    np.testing.assert_allclose(x.grad.numpy(), [180.0, 360.0])
    handle.remove()
    x.grad = None
    (x * 1).sum().backward()
    assert len(seen) == 1


def test_hook_on_a_tensor_without_grad_is_refused():
    with pytest.raises(GradError, match="doesn't require gradient"):
        hubkit.zeros(2).register_hook(lambda g: g)


def test_module_full_backward_hooks():
    lin = nn.Linear(3, 2)
    calls = []

    def hook(module, grad_input, grad_output):
        calls.append((module, grad_input[0].shape, grad_output[0].shape))
        return (grad_input[0] * 0,)

    lin.register_full_backward_hook(hook)
    lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 2,))
    x = hubkit.randn(4, 3, requires_grad=True)
    lin(x).sum().backward()
    assert calls == [(lin, (4, 3), (4, 2))]
    assert float(x.grad.abs().sum()) == 0.0  # the hook replaced grad_input
    np.testing.assert_allclose(lin.bias.grad.numpy(), [8.0, 8.0])  # the pre-hook doubled grad_output


@pytest.mark.parity
def test_module_backward_hook_gradients_match_torch():
    import torch

    def run(m):
        lin = m.nn.Linear(3, 2)
        with m.no_grad():
            lin.weight.copy_(m.tensor([[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]))
            lin.bias.fill_(0.5)
        got = {}
        lin.register_full_backward_hook(lambda mod, gi, go: got.update(gi=gi[0].detach().numpy().copy(),
                                                                        go=go[0].detach().numpy().copy()))
        x = m.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]], requires_grad=True)
        (lin(x) ** 2).sum().backward()
        return got["gi"], got["go"]

    for ours, theirs in zip(run(hubkit), run(torch)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-6)


# ---------------------------------------------------------------- modes


def test_inference_mode_as_context_and_decorator():
    x = hubkit.ones(2, requires_grad=True)
    with hubkit.inference_mode():
        assert hubkit.is_inference_mode_enabled()
        assert not (x * 2).requires_grad
    assert not hubkit.is_inference_mode_enabled()

    @hubkit.inference_mode()
    def f(t):
        return t * 2

    @hubkit.inference_mode
    def g(t):
        return t * 2

    assert not f(x).requires_grad and not g(x).requires_grad
    with hubkit.inference_mode(False):
        assert (x * 2).requires_grad


@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
def test_detect_anomaly_names_the_op_that_made_a_nan():
    x = hubkit.tensor([-1.0, 4.0], requires_grad=True)
    with hubkit.autograd.detect_anomaly():
        y = hubkit.sqrt(x).sum()
        with pytest.raises(GradError, match="SqrtBackward' returned nan"):
            y.backward()
    y = hubkit.sqrt(x).sum()
    y.backward()  # outside the block nan gradients pass silently, as in torch
    assert math.isnan(x.grad.tolist()[0])


# ---------------------------------------------------------------- defaults


def test_default_dtype_and_device():
    try:
        hubkit.set_default_dtype(hubkit.float64)
        assert hubkit.get_default_dtype() == hubkit.float64
        assert hubkit.tensor([1.5]).dtype == hubkit.float64 and hubkit.zeros(2).dtype == hubkit.float64
        assert hubkit.randn(2).dtype == hubkit.float64
    finally:
        hubkit.set_default_dtype(hubkit.float32)
    assert hubkit.zeros(1).dtype == hubkit.float32
    with pytest.raises(hubkit.errors.DTypeError, match="floating-point"):
        hubkit.set_default_dtype(hubkit.int64)
    hubkit.set_default_device("cpu")
    try:
        assert hubkit.get_default_device() == "cpu" and hubkit.ones(2).device == "cpu"
    finally:
        hubkit.set_default_device(None)
    with pytest.raises(hubkit.errors.DeviceError, match="'cpu', 'cuda' or 'cuda:N'; an NVIDIA GPU is 'cuda'"):
        hubkit.set_default_device("gpu")
