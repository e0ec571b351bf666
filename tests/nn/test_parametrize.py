"""nn.utils: parametrize (register/remove, caching, right_inverse), the weight_norm / spectral_norm / orthogonal
parametrizations and their legacy hook versions with torch's state-dict keys and numbers, and gradient
clipping."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from opcheck import rng_for

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError, ArgumentTypeError, GradError, ShapeError
from hubkit.nn.utils import parametrizations as P
from hubkit.nn.utils import parametrize

# the legacy weight_norm warns that it is deprecated, in hubkit as in torch
pytestmark = pytest.mark.filterwarnings("ignore:`torch.nn.utils.weight_norm` is deprecated")


class Symmetric(nn.Module):
    def forward(self, x):
        return _triu(x) + _triu(x, 1).mT

    def right_inverse(self, a):
        return _triu(a)


def _triu(x, k=0):
    mask = np.triu(np.ones(x.shape), k).astype(x.dtype)
    return x * hubkit.from_numpy(mask)


class Scale(nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def right_inverse(self, y):
        return y / self.factor


class Split(nn.Module):
    """Two originals: the weight is their sum; right_inverse stores (w / 2, w / 2)."""

    def forward(self, a, b):
        return a + b

    def right_inverse(self, w):
        return w * 0.5, w * 0.5


# ---------------------------------------------------------------- parametrize


def test_register_parametrization_moves_the_tensor_and_computes_it_on_read():
    m = nn.Linear(3, 3)
    original = m.weight
    before = m.weight.numpy().copy()
    parametrize.register_parametrization(m, "weight", Symmetric())
    assert type(m).__name__ == "ParametrizedLinear" and isinstance(m, nn.Linear)
    assert parametrize.type_before_parametrizations(m) is nn.Linear
    assert parametrize.is_parametrized(m) and parametrize.is_parametrized(m, "weight")
    assert not parametrize.is_parametrized(m, "bias")
    assert m.parametrizations.weight.original is original  # the Parameter object is kept (optimizers hold it)
    np.testing.assert_allclose(original.numpy(), np.triu(before))
    w = m.weight.numpy()
    np.testing.assert_allclose(w, w.T)
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original"]
    assert "weight" not in dict(m.named_parameters())
    out = m(hubkit.randn(2, 3))
    out.sum().backward()
    assert original.grad is not None and np.all(np.tril(original.grad.numpy(), -1) == 0)


def test_assignment_goes_through_right_inverse():
    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Scale(3.0))
    m.weight = hubkit.tensor([[3.0, 6.0], [9.0, 12.0]])
    np.testing.assert_allclose(m.parametrizations.weight.original.numpy(), [[1, 2], [3, 4]])
    np.testing.assert_allclose(m.weight.numpy(), [[3, 6], [9, 12]])


def test_parametrizations_chain_in_registration_order():
    m = nn.Linear(2, 2)
    w0 = m.weight.numpy().copy()
    parametrize.register_parametrization(m, "weight", Scale(2.0))
    parametrize.register_parametrization(m, "weight", Scale(5.0))
    assert len(m.parametrizations.weight) == 2
    np.testing.assert_allclose(m.parametrizations.weight.original.numpy(), w0 / 2, rtol=1e-6)
    np.testing.assert_allclose(m.weight.numpy(), w0 * 5, rtol=1e-6)
    m.weight = hubkit.ones(2, 2)
    np.testing.assert_allclose(m.parametrizations.weight.original.numpy(), 0.1, rtol=1e-6)


def test_right_inverse_returning_several_tensors_makes_numbered_originals():
    m = nn.Linear(2, 3)
    w0 = m.weight.numpy().copy()
    parametrize.register_parametrization(m, "weight", Split())
    assert list(m.state_dict()) == ["bias", "parametrizations.weight.original0", "parametrizations.weight.original1"]
    np.testing.assert_allclose(m.weight.numpy(), w0, rtol=1e-6)
    with pytest.raises(ArgumentError, match="sequence of tensors"):
        parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    parametrize.remove_parametrizations(m, "weight")
    assert isinstance(m.weight, nn.Parameter) and m.weight.requires_grad
    np.testing.assert_allclose(m.weight.numpy(), w0, rtol=1e-6)


def test_remove_parametrizations_restores_the_class_and_the_parameter():
    m = nn.Linear(3, 3)
    original = m.weight
    parametrize.register_parametrization(m, "weight", Scale(2.0))
    value = m.weight.numpy().copy()
    parametrize.remove_parametrizations(m, "weight")
    assert type(m) is nn.Linear and not parametrize.is_parametrized(m)
    assert m.weight is original  # same object, now holding the parametrized value
    np.testing.assert_allclose(m.weight.numpy(), value)
    assert list(m.state_dict()) == ["bias", "weight"]
    assert "parametrizations" not in m._modules

    m = nn.Linear(3, 3)
    parametrize.register_parametrization(m, "weight", Scale(2.0))
    parametrize.register_parametrization(m, "bias", Scale(2.0))
    stored = m.parametrizations.weight.original.numpy().copy()
    parametrize.remove_parametrizations(m, "weight", leave_parametrized=False)
    np.testing.assert_allclose(m.weight.numpy(), stored)
    assert type(m).__name__ == "ParametrizedLinear"  # bias is still parametrized
    with pytest.raises(ArgumentError, match="does not have a parametrization on weight"):
        parametrize.remove_parametrizations(m, "weight")


def test_cached_computes_each_parametrized_tensor_once():
    calls = []

    class Counting(nn.Module):
        def forward(self, x):
            calls.append(1)
            return x * 2

    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Counting())
    calls.clear()
    first, second = m.weight, m.weight
    assert len(calls) == 2 and first is not second
    calls.clear()
    with parametrize.cached():
        a, b = m.weight, m.weight
        m(hubkit.randn(1, 2))
    assert len(calls) == 1 and a is b
    assert m.weight is not a  # outside the block: computed afresh
    assert len(calls) == 2


def test_parametrize_works_on_buffers_and_module_to_dtype():
    m = nn.BatchNorm1d(3)
    parametrize.register_parametrization(m, "running_var", Scale(2.0))
    assert "parametrizations.running_var.original" in m.state_dict()
    m.double()
    assert m.running_var.dtype == np.float64
    assert m.parametrizations.running_var.original.dtype == np.float64


def test_deepcopy_gives_an_independent_parametrized_module():
    m = nn.Linear(2, 2)
    parametrize.register_parametrization(m, "weight", Scale(2.0))
    c = copy.deepcopy(m)
    assert type(c) is not type(m) and type(c).__name__ == "ParametrizedLinear"
    np.testing.assert_allclose(c.weight.numpy(), m.weight.numpy())
    parametrize.remove_parametrizations(c, "weight")
    assert type(c) is nn.Linear
    np.testing.assert_allclose(m.weight.numpy(), c.weight.numpy())  # m still parametrized and readable
    assert parametrize.is_parametrized(m, "weight")
    with pytest.raises(ArgumentTypeError, match="state_dict"):
        pickle.dumps(m)


def test_transfer_parametrizations_and_params():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    parametrize.register_parametrization(a, "weight", Scale(3.0))
    parametrize.transfer_parametrizations_and_params(a, b)
    assert parametrize.is_parametrized(b, "weight")
    np.testing.assert_allclose(b.weight.numpy(), a.weight.numpy())


def test_parametrize_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(ArgumentError, match="does not have a parameter, a buffer"):
        parametrize.register_parametrization(m, "weights", Scale(1.0))

    class Shrink(nn.Module):
        def forward(self, x):
            return x[:1]

    with pytest.raises(ArgumentError, match="may not change the shape"):
        parametrize.register_parametrization(m, "weight", Shrink())

    class ToDouble(nn.Module):
        def forward(self, x):
            return x.double()

    with pytest.raises(ArgumentError, match="may not change the dtype"):
        parametrize.register_parametrization(nn.Linear(2, 2), "weight", ToDouble())
    parametrize.register_parametrization(m, "weight", Shrink(), unsafe=True)
    assert m.weight.shape == (1, 2)

    class NoInverse(nn.Module):
        def forward(self, x):
            return x

    n = nn.Linear(2, 2)
    parametrize.register_parametrization(n, "weight", NoInverse())
    with pytest.raises(ArgumentError, match="does not implement right_inverse"):
        n.weight = hubkit.zeros(2, 2)
    with pytest.raises(ArgumentTypeError, match="nn.Module"):
        parametrize.register_parametrization(nn.Linear(2, 2), "weight", lambda x: x)


# ---------------------------------------------------------------- weight norm


def _torch_state(module) -> dict:
    return {k: v.detach().numpy() for k, v in module.state_dict().items()}


def _compare_forward_backward(ours, theirs, x: np.ndarray, rtol=1e-5, atol=1e-6):
    import torch

    ho, to = ours(hubkit.from_numpy(x.copy())), theirs(torch.from_numpy(x.copy()))
    np.testing.assert_allclose(ho.numpy(), to.detach().numpy(), rtol=rtol, atol=atol)
    g = rng_for("grad").standard_normal(tuple(to.shape)).astype(x.dtype)
    ho.backward(hubkit.from_numpy(g))
    to.backward(torch.from_numpy(g))
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert sorted(ours_params) == sorted(theirs_params)
    for name, p in ours_params.items():
        np.testing.assert_allclose(p.grad.numpy(), theirs_params[name].grad.numpy(), rtol=rtol, atol=atol,
                                   err_msg=name)


@pytest.mark.parity
@pytest.mark.parametrize("dim", [0, 1, None, -1])
def test_weight_norm_parametrization_matches_torch(dim):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv2d(3, 4, 3), dim=dim)
    ours = P.weight_norm(nn.Conv2d(3, 4, 3), dim=dim)
    state = _torch_state(theirs)
    assert list(ours.state_dict()) == list(state)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in state.items()}
    ours.load_state_dict(state)
    assert repr(ours) == repr(theirs)
    _compare_forward_backward(ours, theirs, rng_for("wn").standard_normal((2, 3, 5, 5)).astype(np.float32))


def test_weight_norm_keeps_the_weight_and_splits_magnitude_and_direction():
    m = nn.Linear(4, 3)
    w = m.weight.numpy().copy()
    P.weight_norm(m)
    g = m.parametrizations.weight.original0.numpy()
    np.testing.assert_allclose(g, np.linalg.norm(w, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(m.weight.numpy(), w, rtol=1e-6)
    with hubkit.no_grad():
        m.parametrizations.weight.original0.array *= 2
    np.testing.assert_allclose(m.weight.numpy(), 2 * w, rtol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("dim", [0, 1, None])
def test_legacy_weight_norm_matches_torch_and_removes(dim):
    import torch

    torch.manual_seed(1)
    theirs = torch.nn.utils.weight_norm(torch.nn.Linear(5, 3), dim=dim)
    ours = nn.utils.weight_norm(nn.Linear(5, 3), dim=dim)
    state = _torch_state(theirs)
    assert list(ours.state_dict()) == list(state) == ["bias", "weight_g", "weight_v"]
    ours.load_state_dict(state)
    _compare_forward_backward(ours, theirs, rng_for("lwn").standard_normal((4, 5)).astype(np.float32))
    torch.nn.utils.remove_weight_norm(theirs)
    nn.utils.remove_weight_norm(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["bias", "weight"]
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-6)


def test_legacy_weight_norm_errors():
    with pytest.warns(FutureWarning, match="parametrizations.weight_norm"):
        m = nn.utils.weight_norm(nn.Linear(2, 2))
    with pytest.raises(ArgumentError, match="two weight_norm hooks"):
        nn.utils.weight_norm(m)
    with pytest.raises(ArgumentError, match="not found"):
        nn.utils.remove_weight_norm(nn.Linear(2, 2))
    with pytest.raises(ArgumentError, match="no parameter 'kernel'"):
        nn.utils.weight_norm(nn.Linear(2, 2), name="kernel")


# ---------------------------------------------------------------- spectral norm


def _largest_singular_value(w: np.ndarray, dim: int = 0) -> float:
    return float(np.linalg.svd(np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1), compute_uv=False)[0])


@pytest.mark.parity
@pytest.mark.parametrize(("make", "shape"), [
    (lambda n: n.Linear(6, 4), (3, 6)),
    (lambda n: n.Conv2d(2, 3, 3), (2, 2, 5, 5)),
    (lambda n: n.ConvTranspose2d(3, 2, 3), (2, 3, 4, 4)),  # dim 1 by default
])
def test_spectral_norm_parametrization_matches_torch_with_the_same_buffers(make, shape):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.spectral_norm(make(torch.nn), n_power_iterations=2)
    ours = P.spectral_norm(make(nn), n_power_iterations=2)
    state = _torch_state(theirs)
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    assert repr(ours) == repr(theirs)
    x = rng_for("sn").standard_normal(shape).astype(np.float32)
    _compare_forward_backward(ours, theirs, x, rtol=1e-4, atol=1e-5)  # training: two power iterations
    for key in ("parametrizations.weight.0._u", "parametrizations.weight.0._v"):
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), theirs.state_dict()[key].numpy(), rtol=1e-4,
                                   atol=1e-6)
    ours.eval()
    theirs.eval()
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours(hubkit.from_numpy(x)).numpy(), expected, rtol=1e-4, atol=1e-5)


def test_spectral_norm_divides_by_the_largest_singular_value():
    hubkit.manual_seed(0)
    m = P.spectral_norm(nn.Linear(8, 5))
    w = m.parametrizations.weight.original.numpy()
    for _ in range(30):
        m(hubkit.randn(1, 8))
    assert _largest_singular_value(m.weight.numpy()) == pytest.approx(1.0, rel=1e-4)
    np.testing.assert_allclose(m.weight.numpy(), w / _largest_singular_value(w), rtol=1e-4)
    u = m.parametrizations.weight[0]._u
    m.eval()
    m(hubkit.randn(1, 8))
    assert m.parametrizations.weight[0]._u is u  # updated in place, never replaced
    bias_norm = P.spectral_norm(nn.Linear(3, 4), name="bias")  # a 1-d tensor is just normalized
    assert np.linalg.norm(bias_norm.bias.numpy()) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ArgumentError, match="n_power_iterations"):
        P.spectral_norm(nn.Linear(2, 2), n_power_iterations=0)
    with pytest.raises(ArgumentError, match="no parameter or buffer"):
        P.spectral_norm(nn.Linear(2, 2), name="kernel")


@pytest.mark.parity
@pytest.mark.parametrize("make", [lambda n: n.Linear(6, 4), lambda n: n.ConvTranspose2d(3, 2, 3)])
def test_legacy_spectral_norm_matches_torch_with_the_same_buffers(make):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.utils.spectral_norm(make(torch.nn))
    ours = nn.utils.spectral_norm(make(nn))
    state = _torch_state(theirs)
    assert list(ours.state_dict()) == list(state) == ["bias", "weight_orig", "weight_u", "weight_v"]
    ours.load_state_dict(state)
    shape = (3, 6) if isinstance(theirs, torch.nn.Linear) else (2, 3, 4, 4)
    x = rng_for("lsn").standard_normal(shape).astype(np.float32)
    _compare_forward_backward(ours, theirs, x, rtol=1e-4, atol=1e-5)
    for key in ("weight_u", "weight_v"):
        np.testing.assert_allclose(ours.get_buffer(key).numpy(), theirs.get_buffer(key).numpy(), rtol=1e-4,
                                   atol=1e-6)
    torch.nn.utils.remove_spectral_norm(theirs)
    nn.utils.remove_spectral_norm(ours)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-4, atol=1e-6)


def test_legacy_spectral_norm_errors():
    m = nn.utils.spectral_norm(nn.Linear(2, 2))
    with pytest.raises(ArgumentError, match="two spectral_norm hooks"):
        nn.utils.spectral_norm(m)
    with pytest.raises(ArgumentError, match="not found"):
        nn.utils.remove_spectral_norm(nn.Linear(2, 2))


# ---------------------------------------------------------------- orthogonal


ORTHO_CASES = [((4, 4), None, True), ((3, 5), None, True), ((5, 3), None, True), ((4, 4), "cayley", True),
               ((5, 3), "cayley", True), ((3, 5), "householder", False), ((4, 4), "householder", True),
               ((5, 3), "matrix_exp", True)]


@pytest.mark.parity
@pytest.mark.parametrize(("features", "orthogonal_map", "trivialization"), ORTHO_CASES)
def test_orthogonal_matches_torch_with_the_same_state(features, orthogonal_map, trivialization):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.utils.parametrizations.orthogonal(torch.nn.Linear(*features).double(),
                                                        orthogonal_map=orthogonal_map,
                                                        use_trivialization=trivialization)
    ours = P.orthogonal(nn.Linear(*features).double(), orthogonal_map=orthogonal_map,
                        use_trivialization=trivialization)
    with torch.no_grad():  # move off the starting point so every map does real work
        original = theirs.parametrizations.weight.original
        original.add_(0.3 * torch.from_numpy(rng_for("orth").standard_normal(tuple(original.shape))))
    state = _torch_state(theirs)
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    _compare_forward_backward(ours, theirs, rng_for("ox").standard_normal((2, features[0])), rtol=1e-7, atol=1e-9)
    assert np.any(ours.parametrizations.weight.original.grad.numpy() != 0)


@pytest.mark.parametrize(("features", "orthogonal_map", "trivialization"), ORTHO_CASES)
def test_orthogonal_weights_are_orthonormal_and_assignable(features, orthogonal_map, trivialization):
    m = P.orthogonal(nn.Linear(*features).double(), orthogonal_map=orthogonal_map,
                     use_trivialization=trivialization)
    w = m.weight.numpy()
    small = min(w.shape)
    gram = w @ w.T if w.shape[0] == small else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    q = np.linalg.qr(rng_for("q").standard_normal((max(w.shape), small)))[0]
    q = q if w.shape[0] >= w.shape[1] else q.T
    m.weight = hubkit.tensor(q)
    np.testing.assert_allclose(m.weight.numpy(), q, atol=1e-12)


def test_orthogonal_errors():
    with pytest.raises(ShapeError, match="matrix"):
        P.orthogonal(nn.Linear(3, 3), name="bias")
    with pytest.raises(ArgumentError, match="orthogonal_map has to be one of"):
        P.orthogonal(nn.Linear(3, 3), orthogonal_map="qr")
    m = P.orthogonal(nn.Linear(3, 3).double(), use_trivialization=False)
    with pytest.raises(ArgumentError, match="use_trivialization=False"):
        m.weight = hubkit.tensor(np.eye(3))


# ---------------------------------------------------------------- gradient clipping


def _params_with_grads(seed=0):
    r = np.random.default_rng(seed)
    params = [nn.Parameter(hubkit.zeros(3, 4)), nn.Parameter(hubkit.zeros(5))]
    for p in params:
        p.grad = hubkit.tensor(r.standard_normal(p.shape).astype(np.float32))
    return params


@pytest.mark.parity
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, float("inf"), 0.0])
def test_clip_grad_norm_matches_torch(norm_type):
    import torch

    ours = _params_with_grads()
    theirs = [torch.nn.Parameter(torch.zeros(p.shape)) for p in ours]
    for h, t in zip(ours, theirs):
        t.grad = torch.from_numpy(h.grad.numpy().copy())
    total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type, foreach=True)
    expected = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type, foreach=False)
    assert float(total) == pytest.approx(float(expected), rel=1e-5)
    for h, t in zip(ours, theirs):
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), rtol=1e-5)
    grads = [p.grad for p in _params_with_grads(1)]
    assert float(nn.utils.get_total_norm(grads, norm_type)) == pytest.approx(
        float(torch.nn.utils.get_total_norm([torch.from_numpy(g.numpy()) for g in grads], norm_type)), rel=1e-5)


def test_clip_grad_helpers():
    params = _params_with_grads()
    total = nn.utils.get_total_norm([p.grad for p in params])
    nn.utils.clip_grads_with_norm_(params, 1.0, total)
    assert float(nn.utils.get_total_norm([p.grad for p in params])) == pytest.approx(1.0, rel=1e-5)
    with pytest.warns(FutureWarning, match="deprecated"):
        nn.utils.clip_grad_norm(params, 0.5)
    nn.utils.clip_grad_value_(params, 0.01, foreach=True)
    assert all(np.abs(p.grad.numpy()).max() <= 0.01 for p in params)
    with pytest.warns(UserWarning, match="empty generator"):
        assert float(nn.utils.clip_grad_norm_((p for p in []), 1.0)) == 0.0
    params[0].grad.array[0, 0] = np.inf
    with pytest.raises(GradError, match="non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
