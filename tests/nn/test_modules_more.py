"""The rest of torch.nn's layers: activations, instance/local-response norm, EmbeddingBag, Bilinear, padding
and distance modules — gradients against central differences, forward/backward and reprs against PyTorch,
torch state dicts loading by key, and the errors a user hits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for, tie_free

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, GradError, IndexOutOfRangeError, ShapeError


def _n(*shape, scale=2.0):
    return lambda r: [np.asarray(r.standard_normal(shape) * scale)]


# ---------------------------------------------------------------- activations

ACTIVATION_CASES = [
    ("selu", lambda m, x: m.selu(x), _n(3, 4)),
    ("celu", lambda m, x: m.celu(x, alpha=0.6), _n(3, 4)),
    ("celu-default", lambda m, x: m.celu(x), _n(5)),
    ("prelu-shared", lambda m, x, w: m.prelu(x, w), lambda r: [r.standard_normal((2, 3, 4)), np.array([0.3])]),
    ("prelu-channels", lambda m, x, w: m.prelu(x, w), lambda r: [r.standard_normal((2, 3, 4)), r.random(3)]),
    ("prelu-2d", lambda m, x, w: m.prelu(x, w), lambda r: [r.standard_normal((4, 3)), r.random(3)]),
    ("prelu-1d", lambda m, x, w: m.prelu(x, w), lambda r: [r.standard_normal(5), np.array([0.2])]),
    ("rrelu-eval", lambda m, x: m.rrelu(x, 0.1, 0.3), _n(3, 4)),
    ("threshold", lambda m, x: m.threshold(x, 0.5, -2.0), _n(3, 4)),
    ("hardshrink", lambda m, x: m.hardshrink(x), _n(3, 4)),
    ("hardshrink-lambd", lambda m, x: m.hardshrink(x, 1.2), _n(3, 4)),
    ("softshrink", lambda m, x: m.softshrink(x), _n(3, 4)),
    ("softshrink-lambd", lambda m, x: m.softshrink(x, 0.9), _n(3, 4)),
    ("softsign", lambda m, x: m.softsign(x), _n(3, 4)),
    ("tanhshrink", lambda m, x: m.tanhshrink(x), _n(3, 4)),
    ("logsigmoid", lambda m, x: m.logsigmoid(x), _n(3, 4)),
    ("logsigmoid-extreme", lambda m, x: m.logsigmoid(x), _n(6, scale=40.0)),
    ("mish", lambda m, x: m.mish(x), _n(3, 4)),
    ("mish-extreme", lambda m, x: m.mish(x), _n(6, scale=30.0)),
    ("glu-last", lambda m, x: m.glu(x), _n(3, 4)),
    ("glu-dim1", lambda m, x: m.glu(x, 1), _n(2, 6, 3)),
    ("softmin", lambda m, x: m.softmin(x, 1), _n(3, 4)),
    ("softmin-dim0", lambda m, x: m.softmin(x, dim=0), _n(3, 4)),
]
ACTIVATION_IDS = [c[0] for c in ACTIVATION_CASES]


@pytest.mark.parametrize(("name", "fn", "make"), ACTIVATION_CASES, ids=ACTIVATION_IDS)
def test_activation_gradients_match_central_differences(name, fn, make):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), ACTIVATION_CASES, ids=ACTIVATION_IDS)
def test_activation_functionals_match_torch(name, fn, make, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype)


def test_activations_keep_float32_and_stay_finite():
    x = hubkit.tensor([[-1000.0, -3.0, 0.0, 3.0, 1000.0]])
    fns = [F.selu, F.celu, F.logsigmoid, F.mish, F.softsign, F.tanhshrink, F.hardshrink, F.softshrink,
           lambda t: F.threshold(t, 0.1, 20.0), lambda t: F.rrelu(t, training=True), lambda t: F.softmin(t, 1)]
    for fn in fns:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow warnings from numpy either
            y = fn(x)
        assert y.dtype == np.float32
        assert np.all(np.isfinite(y.numpy()))


def test_rrelu_training_draws_one_slope_per_negative_element():
    hubkit.manual_seed(0)
    x = hubkit.tensor(-np.ones((200, 50)), requires_grad=True)
    y = F.rrelu(x, 0.1, 0.3, training=True)
    slopes = -y.numpy()
    assert slopes.min() >= 0.1 and slopes.max() <= 0.3
    assert slopes.std() > 0.04  # drawn per element, spread over the range (uniform: 0.2/sqrt(12) = 0.058)
    assert slopes.mean() == pytest.approx(0.2, abs=0.005)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), slopes)  # the gradient is the drawn slope
    positive = hubkit.tensor([1.0, 2.0])
    np.testing.assert_array_equal(F.rrelu(positive, training=True).numpy(), [1.0, 2.0])
    hubkit.manual_seed(3)
    a = F.rrelu(hubkit.tensor(-np.ones(10)), training=True).numpy()
    hubkit.manual_seed(3)
    np.testing.assert_array_equal(F.rrelu(hubkit.tensor(-np.ones(10)), training=True).numpy(), a)


def test_rrelu_module_uses_random_slopes_in_training_and_their_mean_in_eval():
    m = nn.RReLU(0.1, 0.3)
    x = hubkit.tensor(-np.ones((30, 30)))
    assert np.unique(m(x).numpy()).size > 100
    m.eval()
    np.testing.assert_allclose(m(x).numpy(), -0.2)


def test_in_place_functionals_write_into_their_input():
    x = hubkit.tensor([-2.0, -0.5, 0.5, 2.0])
    same = F.relu_(x)
    assert same is x
    np.testing.assert_array_equal(x.numpy(), [0, 0, 0.5, 2])
    x = hubkit.tensor([-2.0, 0.5])
    F.elu_(x)
    np.testing.assert_allclose(x.numpy(), [np.expm1(-2.0), 0.5], rtol=1e-6)
    for fn, args, expected in [(F.leaky_relu_, (0.5,), [-1.0, 0.5]), (F.hardtanh_, (-1.5, 0.2), [-1.5, 0.2]),
                               (F.threshold_, (0.0, 7.0), [7.0, 0.5]), (F.celu_, (), [np.expm1(-2.0), 0.5]),
                               (F.rrelu_, (0.25, 0.25), [-0.5, 0.5])]:
        x = hubkit.tensor([-2.0, 0.5])
        assert fn(x, *args) is x
        np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)
    x = hubkit.tensor([-1.0, 1.0])
    hubkit.selu_(x)
    np.testing.assert_allclose(x.numpy(), F.selu(hubkit.tensor([-1.0, 1.0])).numpy())
    leaf = hubkit.tensor([1.0, -1.0], requires_grad=True)
    with pytest.raises(GradError, match="leaf Variable"):
        F.relu_(leaf)


def test_in_place_functional_on_a_graph_value_keeps_gradients_right():
    x = hubkit.tensor([-1.0, 2.0, 3.0], requires_grad=True)
    h = x * 2
    F.relu_(h)
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0, 2, 2])


def test_top_level_and_method_names():
    x = hubkit.tensor([[-1.0, 0.2, 2.0]])
    for name in ("selu", "celu", "rrelu", "hardshrink"):
        np.testing.assert_allclose(getattr(hubkit, name)(x).numpy(), getattr(F, name)(x).numpy())
    np.testing.assert_allclose(hubkit.threshold(x, 0.5, 9.0).numpy(), [[9.0, 9.0, 2.0]])
    np.testing.assert_allclose(x.hardshrink(0.3).numpy(), [[-1.0, 0.0, 2.0]])
    w = hubkit.tensor([0.1])
    np.testing.assert_allclose(x.prelu(w).numpy(), hubkit.prelu(x, w).numpy())
    np.testing.assert_allclose(hubkit.prelu(x, w).numpy(), [[-0.1, 0.2, 2.0]], rtol=1e-6)


def test_activation_argument_errors():
    x = hubkit.randn(2, 3, 4)
    with pytest.raises(ShapeError, match="channel"):
        F.prelu(x, hubkit.ones(4))
    with pytest.raises(DTypeError, match="dtype"):
        F.prelu(x, hubkit.ones(3, dtype=hubkit.float64))
    with pytest.raises(ShapeError, match="must be even"):
        F.glu(hubkit.randn(2, 5))
    with pytest.raises(ShapeError, match="scalars"):
        F.glu(hubkit.tensor(1.0))
    with pytest.raises(ArgumentError, match="lambd"):
        F.softshrink(x, -0.1)
    with pytest.raises(ArgumentError, match="alpha cannot be 0"):
        F.celu(x, 0.0)
    with pytest.raises(ArgumentError, match="lower bound"):
        F.rrelu(x, 0.5, 0.1)
    with pytest.raises(ShapeError, match="3D or 4D"):
        nn.Softmax2d()(hubkit.randn(2, 3))
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        F.softmin(hubkit.randn(2, 3))


# ---------------------------------------------------------------- module parity helpers


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _load_torch_state(ours: nn.Module, theirs) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _compare_modules(ours, theirs, inputs, *, train=False, rtol=1e-4, atol=1e-5, forward_kwargs=None):
    """Same weights, same inputs: outputs, input gradients, parameter gradients and buffers agree."""
    import torch

    _load_torch_state(ours, theirs)
    ours.train(train)
    theirs.train(train)
    kwargs = forward_kwargs or {}
    hx = [hubkit.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f") for a in inputs]
    tx = [torch.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f") for a in inputs]
    ho = ours(*hx, **{k: hubkit.from_numpy(v) for k, v in kwargs.items()})
    to = theirs(*tx, **{k: torch.from_numpy(v) for k, v in kwargs.items()})
    np.testing.assert_allclose(ho.numpy(), to.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(5).standard_normal(tuple(to.shape)).astype(np.float32)
    ho.backward(hubkit.from_numpy(g))
    to.backward(torch.from_numpy(g))
    for a, b in zip(hx, tx):
        if b.grad is not None:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for name, b in theirs.named_buffers():
        np.testing.assert_allclose(ours.get_buffer(name).numpy(), b.numpy(), rtol=1e-5, atol=1e-6, err_msg=name)


ACTIVATION_MODULES = [
    ("PReLU", (), {}), ("PReLU", (3,), {"init": 0.1}), ("Mish", (), {}), ("Mish", (), {"inplace": True}),
    ("Softsign", (), {}), ("Threshold", (0.2, -1.0), {}), ("Threshold", (0.2, -1.0, True), {}), ("GLU", (), {}),
    ("GLU", (2,), {}), ("LogSigmoid", (), {}), ("Softmin", (1,), {}), ("Softmax2d", (), {}), ("Tanhshrink", (), {}),
    ("Softshrink", (), {}), ("Softshrink", (0.8,), {}), ("Hardshrink", (), {}), ("Hardshrink", (0.3,), {}),
    ("CELU", (), {}), ("CELU", (0.5, True), {}), ("SELU", (), {}), ("SELU", (True,), {}),
    ("RReLU", (), {}), ("RReLU", (0.2, 0.4, True), {}),
]


@pytest.mark.parity
@pytest.mark.parametrize(("name", "args", "kwargs"), ACTIVATION_MODULES)
def test_activation_modules_match_torch(name, args, kwargs):
    import torch

    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    x = _rand(2, 3, 4, 6) * 3
    if getattr(theirs, "inplace", False):  # torch overwrites its input: compare values only
        _load_torch_state(ours, theirs)
        ours.eval()
        theirs.eval()
        with torch.no_grad():
            expected = theirs(torch.from_numpy(x.copy())).numpy()
        np.testing.assert_allclose(ours(hubkit.from_numpy(x)).numpy(), expected, rtol=1e-5, atol=1e-6)
    else:
        _compare_modules(ours, theirs, [x])  # eval: RReLU's slope is deterministic


def test_existing_activation_modules_accept_inplace():
    for cls in (nn.ReLU, nn.ReLU6, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.SELU):
        m = cls(inplace=True)
        x = hubkit.tensor([-1.0, 2.0])
        assert m(x).shape == (2,)
    for cls, args in ((nn.LeakyReLU, (0.1,)), (nn.ELU, (1.0,)), (nn.Hardtanh, (-1.0, 1.0)), (nn.CELU, (1.0,)),
                      (nn.RReLU, (0.1, 0.2)), (nn.Threshold, (0.0, 0.0))):
        assert cls(*args, inplace=True)(hubkit.tensor([-1.0, 2.0])).shape == (2,)


def test_prelu_learns_one_slope_per_channel():
    m = nn.PReLU(3)
    assert m.weight.shape == (3,) and np.all(m.weight.numpy() == 0.25)
    x = hubkit.tensor(-np.ones((2, 3, 4), np.float32))
    m(x).sum().backward()
    np.testing.assert_allclose(m.weight.grad.numpy(), [-8.0, -8.0, -8.0])


# ---------------------------------------------------------------- normalization


NORM_CASES = [
    ("InstanceNorm1d", (4,), {}, (3, 4, 7)),
    ("InstanceNorm1d", (4,), {"affine": True, "track_running_stats": True}, (3, 4, 7)),
    ("InstanceNorm1d", (4,), {"affine": True}, (4, 7)),
    ("InstanceNorm2d", (3,), {"affine": True}, (2, 3, 4, 5)),
    ("InstanceNorm2d", (3,), {"track_running_stats": True, "momentum": 0.3}, (2, 3, 4, 5)),
    ("InstanceNorm2d", (3,), {"affine": True, "track_running_stats": True}, (3, 4, 5)),
    ("InstanceNorm3d", (2,), {"affine": True, "track_running_stats": True, "bias": False}, (2, 2, 3, 4, 3)),
    ("InstanceNorm3d", (2,), {}, (2, 3, 4, 3)),
    ("BatchNorm3d", (3,), {}, (2, 3, 3, 4, 2)),
    ("BatchNorm3d", (3,), {"affine": False, "momentum": None}, (2, 3, 3, 4, 2)),
    ("LocalResponseNorm", (3,), {}, (2, 5, 4)),
    ("LocalResponseNorm", (4,), {"alpha": 0.5, "beta": 0.6, "k": 2.0}, (2, 6, 3, 3)),
    ("LocalResponseNorm", (2,), {"alpha": 1.0}, (2, 3, 2, 2, 2)),
]


@pytest.mark.parity
@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), NORM_CASES)
@pytest.mark.parametrize("train", [True, False])
def test_normalization_layers_match_torch(name, args, kwargs, shape, train):
    import torch

    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    for p in theirs.parameters():
        p.data.uniform_(0.5, 1.5)
    for bname, b in theirs.named_buffers():
        if bname == "running_var":
            b.uniform_(0.5, 2)
        elif bname == "running_mean":
            b.uniform_(-1, 1)
    ours = getattr(nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    _compare_modules(ours, theirs, [_rand(*shape) * 2 + 0.5], train=train)
    if train and getattr(theirs, "track_running_stats", False):  # a second step updates from the first
        _compare_modules(ours, theirs, [_rand(*shape, seed=1)], train=True)


def test_instance_norm_normalizes_each_plane_and_tracks_running_stats():
    x = hubkit.tensor(_rand(4, 3, 5, 6) * 3 + 2)
    y = nn.InstanceNorm2d(3)(x).numpy()
    np.testing.assert_allclose(y.mean(axis=(2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(2, 3)), 1, rtol=1e-3)
    m = nn.InstanceNorm2d(3, track_running_stats=True, momentum=1.0)
    m(x)
    per_instance = x.numpy().mean(axis=(2, 3))
    np.testing.assert_allclose(m.running_mean.numpy(), per_instance.mean(0), rtol=1e-5)
    m.eval()
    expected = (x.numpy() - m.running_mean.numpy()[:, None, None]) / np.sqrt(m.running_var.numpy()[:, None, None]
                                                                             + 1e-5)
    np.testing.assert_allclose(m(x).numpy(), expected, rtol=1e-4, atol=1e-5)
    assert list(m.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(nn.InstanceNorm1d(3).state_dict()) == []


def test_instance_norm_input_checks():
    with pytest.raises(ShapeError, match="expected 3D or 4D input"):
        nn.InstanceNorm2d(3)(hubkit.randn(2, 3))
    with pytest.raises(ShapeError, match="num_features"):
        nn.InstanceNorm1d(4, affine=True)(hubkit.randn(2, 3, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(4)(hubkit.randn(2, 3, 5))
    with pytest.raises(ShapeError, match="expected 5D input"):
        nn.BatchNorm3d(3)(hubkit.randn(2, 3, 4, 4))


def test_local_response_norm_gradient_and_errors():
    gradcheck(lambda x: F.local_response_norm(x, 3, alpha=0.3, beta=0.7, k=1.5), [_rand(2, 4, 3)])
    gradcheck(lambda x: F.local_response_norm(x, 2, alpha=1.0), [_rand(1, 3, 2, 2, seed=2)])
    with pytest.raises(ShapeError, match="3 or more dims"):
        F.local_response_norm(hubkit.randn(2, 3), 2)
    with pytest.raises(ArgumentError, match="size"):
        F.local_response_norm(hubkit.randn(2, 3, 4), 0)
    assert F.local_response_norm(hubkit.zeros(0, 3, 4), 2).shape == (0, 3, 4)


@pytest.mark.parity
def test_functional_batch_norm_and_instance_norm_on_5d_input_match_torch():
    r = rng_for("bn5d")
    x, w, b = r.standard_normal((2, 3, 2, 3, 2)), r.random(3) + 0.5, r.standard_normal(3)
    rm, rv = r.standard_normal(3), r.random(3) + 0.5
    compare_with_torch(lambda m, x, w, b: m.batch_norm(x, None, None, w, b, training=True), [x, w, b])
    compare_with_torch(lambda m, x, w, b, rm, rv: m.batch_norm(x, rm, rv, w, b, training=False), [x, w, b, rm, rv],
                       wrt=[0, 1, 2])
    compare_with_torch(lambda m, x, w, b: m.instance_norm(x, weight=w, bias=b), [x, w, b])
    compare_with_torch(lambda m, x: m.local_response_norm(x, 3, alpha=0.2), [x])


# ---------------------------------------------------------------- EmbeddingBag


BAG_CASES = [
    ("sum-2d", {"mode": "sum"}, lambda r: [r.integers(0, 10, (3, 4))], None, None),
    ("mean-2d", {}, lambda r: [r.integers(0, 10, (3, 4))], None, None),
    ("max-2d", {"mode": "max"}, lambda r: [r.integers(0, 10, (3, 4))], None, None),
    ("sum-offsets", {"mode": "sum"}, lambda r: [np.array([1, 2, 4, 5, 4, 3, 2, 9])], np.array([0, 4, 4, 6]), None),
    ("mean-offsets-empty-bags", {}, lambda r: [np.array([1, 2, 4, 5, 4, 3, 2, 9])], np.array([0, 0, 3, 8]), None),
    ("max-offsets", {"mode": "max"}, lambda r: [np.array([1, 2, 4, 5, 4, 3, 2, 9])], np.array([0, 2, 2, 5]), None),
    ("mean-last-offset", {"include_last_offset": True}, lambda r: [np.array([1, 2, 4, 5, 4, 3])],
     np.array([0, 2, 5, 6]), None),
    ("mean-padding", {"padding_idx": 2}, lambda r: [np.array([1, 2, 2, 5, 2, 3, 2, 9])], np.array([0, 3, 4]), None),
    ("max-padding", {"mode": "max", "padding_idx": 4}, lambda r: [np.array([[1, 4, 3], [4, 4, 4]])], None, None),
    ("sum-weights", {"mode": "sum"}, lambda r: [np.array([1, 2, 4, 5, 4, 3])], np.array([0, 1, 4]), "psw"),
    ("sum-weights-padding", {"mode": "sum", "padding_idx": 4}, lambda r: [np.array([[1, 4, 3], [4, 0, 4]])], None,
     "psw"),
    ("sum-freq", {"mode": "sum", "scale_grad_by_freq": True}, lambda r: [np.array([[1, 1, 3], [1, 0, 3]])], None,
     None),
    ("mean-freq", {"scale_grad_by_freq": True}, lambda r: [np.array([1, 1, 3, 1, 0, 3])], np.array([0, 2]), None),
]


def _bag_inputs(name, make, offsets, psw):
    r = rng_for(name)
    (index,) = make(r)
    weights = r.standard_normal(index.shape) if psw else None
    return index, offsets, weights


# scale_grad_by_freq deliberately scales the gradient away from the true one: compared with torch only
TRUE_GRADIENT_BAG_CASES = [c for c in BAG_CASES if "scale_grad_by_freq" not in c[1]]


@pytest.mark.parametrize(("name", "kwargs", "make", "offsets", "psw"), TRUE_GRADIENT_BAG_CASES,
                         ids=[c[0] for c in TRUE_GRADIENT_BAG_CASES])
def test_embedding_bag_gradients_match_central_differences(name, kwargs, make, offsets, psw):
    index, offsets, weights = _bag_inputs(name, make, offsets, psw)
    idx = hubkit.tensor(index)
    off = None if offsets is None else hubkit.tensor(offsets)
    weight = tie_free((10, 3)) if kwargs.get("mode") == "max" else rng_for(name + "w").standard_normal((10, 3))
    if weights is None:
        gradcheck(lambda w: F.embedding_bag(idx, w, off, **kwargs), [weight])
    else:
        gradcheck(lambda w, p: F.embedding_bag(idx, w, off, per_sample_weights=p, **kwargs), [weight, weights])


@pytest.mark.parity
@pytest.mark.parametrize(("name", "kwargs", "make", "offsets", "psw"), BAG_CASES, ids=[c[0] for c in BAG_CASES])
def test_embedding_bag_module_matches_torch(name, kwargs, make, offsets, psw):
    import torch

    index, offsets, weights = _bag_inputs(name, make, offsets, psw)
    torch.manual_seed(0)
    theirs = torch.nn.EmbeddingBag(10, 3, **kwargs)
    ours = nn.EmbeddingBag(10, 3, **kwargs)
    assert repr(ours) == repr(theirs)
    call = {}
    if offsets is not None:
        call["offsets"] = offsets
    if weights is not None:
        call["per_sample_weights"] = weights.astype(np.float32)
    _compare_modules(ours, theirs, [index], forward_kwargs=call)


@pytest.mark.parity
def test_embedding_bag_max_norm_renormalizes_like_torch():
    import torch

    torch.manual_seed(1)
    theirs = torch.nn.EmbeddingBag(6, 4, max_norm=1.0, norm_type=1.5, mode="sum")
    ours = nn.EmbeddingBag(6, 4, max_norm=1.0, norm_type=1.5, mode="sum")
    _compare_modules(ours, theirs, [np.array([[0, 1], [1, 5]])])
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-5)
    assert repr(ours) == repr(theirs)


def test_embedding_bag_defaults_from_pretrained_and_errors():
    bag = nn.EmbeddingBag(5, 2, padding_idx=1)
    assert bag.weight.shape == (5, 2) and np.all(bag.weight.numpy()[1] == 0)
    table = hubkit.tensor(np.arange(10.0, dtype=np.float32).reshape(5, 2))
    frozen = nn.EmbeddingBag.from_pretrained(table, mode="sum")
    assert not frozen.weight.requires_grad
    out = frozen(hubkit.tensor([0, 1, 4]), hubkit.tensor([0, 2]))
    np.testing.assert_array_equal(out.numpy(), [[2, 4], [8, 9]])
    idx = hubkit.tensor([[0, 1]])
    with pytest.raises(ArgumentError, match="offsets has to be None"):
        F.embedding_bag(idx, table, hubkit.tensor([0]))
    with pytest.raises(ArgumentError, match="offsets has to be a 1D Tensor"):
        F.embedding_bag(hubkit.tensor([0, 1]), table)
    with pytest.raises(ArgumentError, match=r"offsets\[0\] has to be 0"):
        F.embedding_bag(hubkit.tensor([0, 1]), table, hubkit.tensor([1]))
    with pytest.raises(ArgumentError, match="only supported for mode='sum'"):
        F.embedding_bag(idx, table, per_sample_weights=hubkit.ones(1, 2))
    with pytest.raises(ShapeError, match="same shape as the input"):
        F.embedding_bag(idx, table, mode="sum", per_sample_weights=hubkit.ones(2))
    with pytest.raises(ArgumentError, match="mode has to be one of"):
        F.embedding_bag(idx, table, mode="median")
    with pytest.raises(ArgumentError, match="max mode does not support scaling"):
        F.embedding_bag(idx, table, mode="max", scale_grad_by_freq=True)
    with pytest.raises(IndexOutOfRangeError, match="out of range"):
        F.embedding_bag(hubkit.tensor([[0, 5]]), table)
    with pytest.raises(DTypeError, match="integer"):
        F.embedding_bag(hubkit.tensor([[0.0, 1.0]]), table)
    with pytest.raises(ShapeError, match="1D or 2D"):
        F.embedding_bag(hubkit.tensor([[[0]]]), table)


# ---------------------------------------------------------------- Bilinear


def test_bilinear_gradients_match_central_differences():
    r = rng_for("bilinear")
    x1, x2, w, b = r.standard_normal((4, 3)), r.standard_normal((4, 2)), r.standard_normal((5, 3, 2)), r.random(5)
    gradcheck(F.bilinear, [x1, x2, w, b])
    gradcheck(lambda a, c, w: F.bilinear(a, c, w), [r.standard_normal((2, 3, 3)), r.standard_normal((2, 3, 2)), w])


@pytest.mark.parity
def test_bilinear_matches_torch():
    import torch

    r = rng_for("bilinear-torch")
    compare_with_torch(lambda m, a, c, w, b: m.bilinear(a, c, w, b),
                       [r.standard_normal((2, 4, 3)), r.standard_normal((2, 4, 2)), r.standard_normal((5, 3, 2)),
                        r.standard_normal(5)])
    torch.manual_seed(0)
    for bias in (True, False):
        theirs, ours = torch.nn.Bilinear(3, 2, 4, bias=bias), nn.Bilinear(3, 2, 4, bias=bias)
        assert repr(ours) == repr(theirs)
        _compare_modules(ours, theirs, [_rand(5, 3), _rand(5, 2, seed=1)])


def test_bilinear_default_init_and_errors():
    m = nn.Bilinear(16, 3, 8)
    bound = 1 / 4
    assert np.abs(m.weight.numpy()).max() <= bound and np.abs(m.bias.numpy()).max() <= bound
    assert m.weight.numpy().std() == pytest.approx(bound / np.sqrt(3), rel=0.15)
    with pytest.raises(ShapeError, match="same size except"):
        m(hubkit.randn(2, 16), hubkit.randn(3, 3))
    with pytest.raises(ShapeError, match="in1_features"):
        m(hubkit.randn(2, 15), hubkit.randn(2, 3))
    with pytest.raises(ShapeError, match="3-d"):
        F.bilinear(hubkit.randn(2, 3), hubkit.randn(2, 3), hubkit.randn(3, 3))


# ---------------------------------------------------------------- padding


PAD_CASES = [
    ("ZeroPad1d", (2,), (2, 3, 5)), ("ZeroPad1d", ((1, 3),), (3, 5)),
    ("ZeroPad2d", ((1, 0, 2, 1),), (2, 3, 4, 5)), ("ZeroPad2d", (1,), (3, 4, 5)),
    ("ZeroPad3d", ((1, 0, 2, 1, 0, 1),), (1, 2, 3, 4, 2)),
    ("ConstantPad1d", ((2, 1), 3.5), (2, 3, 5)), ("ConstantPad2d", (1, -1.0), (2, 3, 4, 5)),
    ("ConstantPad3d", ((0, 1, 1, 0, 2, 1), 0.5), (2, 3, 2, 3)),
    ("ReflectionPad1d", ((3, 1),), (2, 3, 5)), ("ReflectionPad2d", ((1, 2, 2, 0),), (2, 3, 4, 5)),
    ("ReflectionPad2d", (2,), (3, 4, 5)), ("ReflectionPad3d", ((1, 0, 2, 1, 1, 1),), (1, 2, 3, 4, 3)),
    ("ReplicationPad1d", ((3, 1),), (2, 3, 5)), ("ReplicationPad2d", ((1, 2, 3, 0),), (2, 3, 4, 5)),
    ("ReplicationPad3d", (1,), (1, 2, 3, 4, 3)),
    ("CircularPad1d", ((3, 1),), (2, 3, 5)), ("CircularPad2d", ((1, 2, 2, 0),), (2, 3, 4, 5)),
    ("CircularPad3d", ((1, 0, 2, 1, 1, 1),), (2, 3, 4, 3)),
]


@pytest.mark.parity
@pytest.mark.parametrize(("name", "args", "shape"), PAD_CASES)
def test_padding_modules_match_torch(name, args, shape):
    import torch

    ours, theirs = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    _compare_modules(ours, theirs, [_rand(*shape)])


def test_padding_module_gradients_and_errors():
    gradcheck(lambda x: nn.ReflectionPad2d((1, 2, 2, 0))(x), [_rand(1, 2, 3, 4)])
    gradcheck(lambda x: nn.CircularPad1d((2, 1))(x), [_rand(2, 4)])
    gradcheck(lambda x: nn.ReplicationPad3d(1)(x), [_rand(1, 2, 2, 2)])
    with pytest.raises(ShapeError, match="expected 3D or 4D input"):
        nn.ReflectionPad2d(1)(hubkit.randn(4, 4))
    with pytest.raises(ShapeError, match="at most"):
        nn.ReflectionPad1d(3)(hubkit.randn(1, 2, 3))
    with pytest.raises(ArgumentError, match="tuple of 4 ints"):
        nn.ZeroPad2d((1, 2))
    assert nn.ConstantPad2d(1, 2.0)(hubkit.zeros(1, 1)).numpy().tolist() == [[2.0] * 3, [2.0, 0.0, 2.0], [2.0] * 3]


# ---------------------------------------------------------------- distances


DIST_CASES = [
    ("pairwise-2", lambda m, a, b: m.pairwise_distance(a, b), (4, 3), (4, 3)),
    ("pairwise-1", lambda m, a, b: m.pairwise_distance(a, b, p=1.0), (4, 3), (4, 3)),
    ("pairwise-3-keepdim", lambda m, a, b: m.pairwise_distance(a, b, 3.0, keepdim=True), (4, 3), (4, 3)),
    ("pairwise-inf", lambda m, a, b: m.pairwise_distance(a, b, float("inf")), (4, 3), (4, 3)),
    ("pairwise-0.5", lambda m, a, b: m.pairwise_distance(a, b, 0.5), (4, 3), (4, 3)),
    ("pairwise-broadcast", lambda m, a, b: m.pairwise_distance(a, b, eps=1e-3), (2, 4, 3), (3,)),
    ("pairwise-1d", lambda m, a, b: m.pairwise_distance(a, b), (5,), (5,)),
    ("cosine", lambda m, a, b: m.cosine_similarity(a, b), (4, 3), (4, 3)),
]


@pytest.mark.parametrize(("name", "fn", "s1", "s2"), DIST_CASES, ids=[c[0] for c in DIST_CASES])
def test_distance_gradients_match_central_differences(name, fn, s1, s2):
    r = rng_for(name)
    gradcheck(lambda a, b: fn(F, a, b), [r.standard_normal(s1), r.standard_normal(s2)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "s1", "s2"), DIST_CASES, ids=[c[0] for c in DIST_CASES])
def test_distances_match_torch(name, fn, s1, s2, dtype):
    r = rng_for(name)
    compare_with_torch(fn, [r.standard_normal(s1), r.standard_normal(s2)], dtype=dtype)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.7, float("inf")])
def test_pdist_gradient_matches_central_differences(p):
    gradcheck(lambda x: F.pdist(x, p), [rng_for(f"pdist-{p}").standard_normal((4, 3))])


@pytest.mark.parity
@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, 0.5, float("inf")])
def test_pdist_matches_torch_including_zero_distances_and_ties(p):
    x = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0], [3.0, -1.0]])  # a repeated row; ties in |diff|
    compare_with_torch(lambda m, x: m.pdist(x, p), [x])
    compare_with_torch(lambda m, x: m.pdist(x, p), [rng_for("pdist").standard_normal((5, 3))])


@pytest.mark.parity
def test_distance_modules_match_torch():
    import torch

    for args in [(), (1.0, 1e-3, True), (float("inf"),)]:
        ours, theirs = nn.PairwiseDistance(*args), torch.nn.PairwiseDistance(*args)
        assert repr(ours) == repr(theirs) and ours.norm == theirs.norm
        _compare_modules(ours, theirs, [_rand(4, 5), _rand(4, 5, seed=1)])
    ours, theirs = nn.CosineSimilarity(dim=0, eps=1e-6), torch.nn.CosineSimilarity(dim=0, eps=1e-6)
    assert repr(ours) == repr(theirs)
    _compare_modules(ours, theirs, [_rand(4, 5), _rand(4, 5, seed=1)])


def test_distance_errors():
    with pytest.raises(ShapeError, match="2D"):
        F.pdist(hubkit.randn(3))
    with pytest.raises(ArgumentError, match="non-negative"):
        F.pdist(hubkit.randn(3, 2), -1.0)
    with pytest.raises(ShapeError, match="scalars"):
        F.pairwise_distance(hubkit.tensor(1.0), hubkit.tensor(2.0))
    assert F.pdist(hubkit.randn(4, 2)).shape == (6,)


# ---------------------------------------------------------------- torch checkpoints load by key


@pytest.mark.parity
def test_torch_state_dict_of_a_model_with_every_keyed_module_loads_by_key():
    import torch

    def build(lib):
        n = lib.nn
        return n.Sequential(n.PReLU(3), n.InstanceNorm2d(3, affine=True, track_running_stats=True),
                            n.BatchNorm3d(2), n.Bilinear(4, 5, 6), n.EmbeddingBag(7, 4, mode="max", padding_idx=0),
                            n.ZeroPad2d(1), n.LocalResponseNorm(2), n.PairwiseDistance(), n.GLU())

    torch.manual_seed(0)
    theirs = build(torch)
    for p in theirs.parameters():
        p.data.uniform_(-1, 1)
    theirs[1].running_var.fill_(2.0)
    theirs[2].num_batches_tracked.fill_(7)
    ours = build(hubkit)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict(state)
    for key, value in ours.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key], err_msg=key)
    assert repr(ours) == repr(theirs)
