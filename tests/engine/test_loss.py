"""Losses: every option of cross_entropy, nll_loss, the regression losses and the binary losses,
against central differences and PyTorch."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError

# the legacy size_average/reduce cases warn, in hubkit as in PyTorch
pytestmark = pytest.mark.filterwarnings("ignore:.*size_average and reduce args will be deprecated")


def _logits_targets(n, c, *extra, ignore=False):
    def make(r):
        x = r.standard_normal((n, c, *extra)) * 2
        t = r.integers(0, c, (n, *extra))
        if ignore:
            t.reshape(-1)[::3] = -100
        return [x, t]

    return make


def _with_weight(make, c):
    return lambda r: make(r) + [r.uniform(0.2, 2.0, c)]


def _probs(*shape):
    def make(r):
        p = r.random(shape) + 0.1
        return [r.standard_normal(shape) * 2, p / p.sum(1, keepdims=True)]

    return make


def _regression(*shape):
    return lambda r: [r.standard_normal(shape), r.standard_normal(shape)]


def _binary(*shape):
    return lambda r: [r.uniform(0.05, 0.95, shape), r.random(shape)]


CE_CASES = [
    ("ce-indices", lambda m, x, t: m.cross_entropy(x, t), _logits_targets(4, 5)),
    ("ce-sum", lambda m, x, t: m.cross_entropy(x, t, reduction="sum"), _logits_targets(4, 5)),
    ("ce-none", lambda m, x, t: m.cross_entropy(x, t, reduction="none"), _logits_targets(4, 5)),
    ("ce-weight-mean", lambda m, x, t, w: m.cross_entropy(x, t, w), _with_weight(_logits_targets(6, 4), 4)),
    ("ce-weight-none", lambda m, x, t, w: m.cross_entropy(x, t, w, reduction="none"),
     _with_weight(_logits_targets(6, 4), 4)),
    ("ce-ignore-index", lambda m, x, t: m.cross_entropy(x, t), _logits_targets(6, 4, ignore=True)),
    ("ce-ignore-weight", lambda m, x, t, w: m.cross_entropy(x, t, w),
     _with_weight(_logits_targets(6, 3, ignore=True), 3)),
    ("ce-custom-ignore", lambda m, x, t: m.cross_entropy(x, t, ignore_index=2), _logits_targets(6, 4)),
    ("ce-label-smoothing", lambda m, x, t: m.cross_entropy(x, t, label_smoothing=0.2), _logits_targets(5, 4)),
    ("ce-smoothing-weight-ignore", lambda m, x, t, w: m.cross_entropy(x, t, w, label_smoothing=0.3),
     _with_weight(_logits_targets(6, 4, ignore=True), 4)),
    ("ce-smoothing-weight-sum", lambda m, x, t, w: m.cross_entropy(x, t, w, reduction="sum", label_smoothing=0.1),
     _with_weight(_logits_targets(4, 3, ignore=True), 3)),
    ("ce-smoothing-none", lambda m, x, t: m.cross_entropy(x, t, reduction="none", label_smoothing=0.1),
     _logits_targets(4, 3, ignore=True)),
    ("ce-kdim", lambda m, x, t: m.cross_entropy(x, t), _logits_targets(2, 3, 2, 2)),
    ("ce-kdim-weight-ignore-none", lambda m, x, t, w: m.cross_entropy(x, t, w, reduction="none"),
     _with_weight(_logits_targets(2, 3, 3, ignore=True), 3)),
    ("ce-kdim-smoothing", lambda m, x, t, w: m.cross_entropy(x, t, w, label_smoothing=0.25),
     _with_weight(_logits_targets(2, 3, 2, 2, ignore=True), 3)),
    ("ce-single-sample", lambda m, x, t: m.cross_entropy(x, t), lambda r: [r.standard_normal(5), np.array(3)]),
    ("ce-single-sample-none", lambda m, x, t: m.cross_entropy(x, t, reduction="none"),
     lambda r: [r.standard_normal(5), np.array(1)]),
    ("ce-one-class-row", lambda m, x, t: m.cross_entropy(x, t), _logits_targets(1, 4)),
    ("ce-probs", lambda m, x, p: m.cross_entropy(x, p), _probs(4, 5)),
    ("ce-probs-none", lambda m, x, p: m.cross_entropy(x, p, reduction="none"), _probs(4, 5)),
    ("ce-probs-weight-smoothing", lambda m, x, p, w: m.cross_entropy(x, p, w, label_smoothing=0.2),
     lambda r: _probs(4, 3)(r) + [r.uniform(0.5, 2, 3)]),
    ("ce-probs-kdim-sum", lambda m, x, p: m.cross_entropy(x, p, reduction="sum"), _probs(2, 3, 2)),
    ("nll", lambda m, x, t: m.nll_loss(x, t), _logits_targets(4, 5)),
    ("nll-weight-ignore", lambda m, x, t, w: m.nll_loss(x, t, w), _with_weight(_logits_targets(6, 4, ignore=True), 4)),
    ("nll-sum", lambda m, x, t: m.nll_loss(x, t, reduction="sum"), _logits_targets(4, 5, ignore=True)),
    ("nll-none-kdim", lambda m, x, t: m.nll_loss(x, t, reduction="none"), _logits_targets(2, 3, 4)),
    ("nll-single", lambda m, x, t: m.nll_loss(x, t), lambda r: [r.standard_normal(4), np.array(0)]),
    ("nll-legacy-size-average", lambda m, x, t: m.nll_loss(x, t, None, False), _logits_targets(4, 3)),
]

REGRESSION_CASES = [
    ("mse", lambda m, x, t: m.mse_loss(x, t), _regression(3, 4)),
    ("mse-sum", lambda m, x, t: m.mse_loss(x, t, reduction="sum"), _regression(3, 4)),
    ("mse-none", lambda m, x, t: m.mse_loss(x, t, reduction="none"), _regression(3, 4)),
    ("mse-weight", lambda m, x, t, w: m.mse_loss(x, t, weight=w), lambda r: _regression(3, 4)(r) + [r.random((3, 4))]),
    ("mse-0d", lambda m, x, t: m.mse_loss(x, t), _regression()),
    ("mse-legacy-reduce-false", lambda m, x, t: m.mse_loss(x, t, reduce=False), _regression(2, 3)),
    ("l1", lambda m, x, t: m.l1_loss(x, t), _regression(3, 4)),
    ("l1-none", lambda m, x, t: m.l1_loss(x, t, reduction="none"), _regression(5)),
    ("l1-weight-sum", lambda m, x, t, w: m.l1_loss(x, t, reduction="sum", weight=w),
     lambda r: _regression(3, 4)(r) + [r.random((3, 4))]),
    ("smooth_l1", lambda m, x, t: m.smooth_l1_loss(x, t), _regression(4, 5)),
    ("smooth_l1-beta", lambda m, x, t: m.smooth_l1_loss(x, t, beta=0.5, reduction="sum"), _regression(4, 5)),
    ("smooth_l1-beta-zero", lambda m, x, t: m.smooth_l1_loss(x, t, beta=0.0), _regression(4, 5)),
    ("smooth_l1-none", lambda m, x, t: m.smooth_l1_loss(x, t, reduction="none", beta=2.0), _regression(3, 3)),
    ("bce", lambda m, p, t: m.binary_cross_entropy(p, t), _binary(3, 4)),
    ("bce-weight-broadcast", lambda m, p, t, w: m.binary_cross_entropy(p, t, w),
     lambda r: _binary(3, 4)(r) + [r.random(4)]),
    ("bce-none", lambda m, p, t: m.binary_cross_entropy(p, t, reduction="none"), _binary(6)),
    ("bce-sum-hard-targets", lambda m, p, t: m.binary_cross_entropy(p, t, reduction="sum"),
     lambda r: [r.uniform(0.05, 0.95, (3, 3)), (r.random((3, 3)) > 0.5).astype(float)]),
    ("bce-logits", lambda m, x, t: m.binary_cross_entropy_with_logits(x, t), _regression(3, 4)),
    ("bce-logits-extreme", lambda m, x, t: m.binary_cross_entropy_with_logits(x * 50, t.clip(0, 1)),
     _regression(2, 4)),
    ("bce-logits-weight", lambda m, x, t, w: m.binary_cross_entropy_with_logits(x, t, w, reduction="sum"),
     lambda r: [r.standard_normal((3, 4)), r.random((3, 4)), r.random((3, 4))]),
    ("bce-logits-pos-weight", lambda m, x, t, pw: m.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
     lambda r: [r.standard_normal((3, 4)), r.random((3, 4)), r.uniform(0.5, 3, 4)]),
    ("bce-logits-both-weights-none",
     lambda m, x, t, w, pw: m.binary_cross_entropy_with_logits(x, t, w, reduction="none", pos_weight=pw),
     lambda r: [r.standard_normal((2, 3)), r.random((2, 3)), r.random(3), r.uniform(0.5, 3, 3)]),
]

# class weights (input 2 of the classification cases) get no gradient, in PyTorch either
# and PyTorch's binary losses give none to weight and pos_weight (ours do: see the test below)
CASES = [(*c, (0, 1)) for c in CE_CASES] + [(*c, (0,) if "hard" in c[0] else (0, 1)) for c in REGRESSION_CASES]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "fn", "make", "wrt"), CASES, ids=IDS)
def test_gradient_matches_central_differences(name, fn, make, wrt):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)), wrt=wrt)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make", "wrt"), CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, fn, make, wrt, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype, wrt=wrt)


# ---------------------------------------------------------------- semantics without torch


def test_weighted_mean_divides_by_the_weights_of_counted_targets():
    x = hubkit.tensor(np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])))
    t = hubkit.tensor([0, 1, -100])
    w = hubkit.tensor([2.0, 1.0, 5.0])
    expected = (2.0 * -np.log(0.5) + 1.0 * -np.log(0.8)) / 3.0
    assert F.nll_loss(x, t, w).item() == pytest.approx(expected, rel=1e-6)


def test_all_targets_ignored_gives_nan_like_pytorch():
    x = hubkit.randn(2, 3)
    t = hubkit.tensor([-100, -100])
    assert np.isnan(F.cross_entropy(x, t).item())
    assert F.cross_entropy(x, t, reduction="sum").item() == 0.0


def test_cross_entropy_is_stable_for_huge_logits():
    x = hubkit.tensor([[1000.0, -1000.0, 0.0]], requires_grad=True)
    loss = F.cross_entropy(x, hubkit.tensor([1]))
    assert loss.item() == pytest.approx(2000.0)
    loss.backward()
    assert np.all(np.isfinite(x.grad.numpy()))


def test_binary_losses_are_finite_at_the_edges():
    p = hubkit.tensor([0.0, 1.0, 0.0, 1.0])
    t = hubkit.tensor([0.0, 1.0, 1.0, 0.0])
    np.testing.assert_allclose(F.binary_cross_entropy(p, t, reduction="none").numpy(), [0, 0, 100, 100])
    big = hubkit.tensor([-500.0, 500.0])
    out = F.binary_cross_entropy_with_logits(big, hubkit.tensor([1.0, 0.0]), reduction="none")
    np.testing.assert_allclose(out.numpy(), [500.0, 500.0])


def test_losses_keep_float32():
    x, t = hubkit.randn(4, 3), hubkit.tensor([0, 1, 2, 0])
    p = hubkit.rand(4, 3)
    for loss in (F.cross_entropy(x, t, label_smoothing=0.1), F.nll_loss(x, t), F.mse_loss(x, p), F.l1_loss(x, p),
                 F.smooth_l1_loss(x, p), F.binary_cross_entropy(p, p), F.binary_cross_entropy_with_logits(x, p)):
        assert loss.dtype == np.float32


def test_target_errors_name_the_op_and_shapes():
    x = hubkit.randn(4, 3)
    with pytest.raises(ShapeError, match=r"cross_entropy: input \(4, 3\) \(N, C, d1, ...\) needs a target of shape "
                                         r"\(4,\) \(N, d1, ...\), got \(5,\)"):
        F.cross_entropy(x, hubkit.tensor([0, 1, 2, 0, 1]))
    with pytest.raises(IndexOutOfRangeError, match="target 3 is out of bounds for 3 classes"):
        F.nll_loss(x, hubkit.tensor([0, 3, 1, 1]))
    with pytest.raises(DTypeError, match="class probabilities"):
        F.cross_entropy(x, hubkit.zeros(4, 3, dtype=hubkit.int64))
    with pytest.raises(DTypeError, match="integer class indices"):
        F.cross_entropy(x, hubkit.zeros(4))
    with pytest.raises(ShapeError, match=r"weight has shape \(2,\), expected one weight per class \(3,\)"):
        F.cross_entropy(x, hubkit.tensor([0, 1, 2, 0]), hubkit.ones(2))
    with pytest.raises(ShapeError, match=r"binary_cross_entropy: target \(4,\) must have the same size as input"):
        F.binary_cross_entropy(hubkit.rand(4, 1), hubkit.rand(4))


def test_argument_errors():
    x, t = hubkit.randn(2, 3), hubkit.tensor([0, 1])
    with pytest.raises(ArgumentError, match="reduction must be one of"):
        F.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ArgumentError, match="label_smoothing"):
        F.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ArgumentError, match="ignore_index is not supported"):
        F.cross_entropy(x, F.softmax(x, 1), ignore_index=0)
    with pytest.raises(ArgumentError, match="input should be between 0 and 1"):
        F.binary_cross_entropy(x, hubkit.rand(2, 3))
    with pytest.raises(ArgumentError, match="beta must not be negative"):
        F.smooth_l1_loss(x, x, beta=-1.0)


def test_legacy_size_average_and_reduce_map_to_a_reduction_with_a_warning():
    x, t = hubkit.randn(4, 3), hubkit.randn(4, 3)
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        summed = F.mse_loss(x, t, size_average=False)
    assert summed.item() == pytest.approx(F.mse_loss(x, t, reduction="sum").item())
    with pytest.warns(UserWarning, match="reduction='none'"):
        assert F.l1_loss(x, t, reduce=False).shape == (4, 3)


def test_broadcasting_regression_targets_warn_like_pytorch():
    with pytest.warns(UserWarning, match="different to the input size"):
        out = F.mse_loss(hubkit.zeros(3, 1), hubkit.ones(3))
    assert out.item() == 1.0


@pytest.mark.parametrize("with_logits", [False, True])
def test_binary_loss_weights_get_their_gradients(with_logits):
    r = rng_for("binary-weights")
    if with_logits:
        gradcheck(lambda x, t, w, pw: F.binary_cross_entropy_with_logits(x, t, w, pos_weight=pw),
                  [r.standard_normal((3, 4)), r.random((3, 4)), r.random(4), r.uniform(0.5, 2, 4)], wrt=(2, 3))
    else:
        gradcheck(lambda p, t, w: F.binary_cross_entropy(p, t, w), [r.uniform(0.1, 0.9, (3, 4)), r.random((3, 4)),
                                                                     r.random((3, 1))], wrt=(2,))
