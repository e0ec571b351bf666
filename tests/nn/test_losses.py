"""Loss functions and modules: huber, kl_div, poisson/gaussian NLL, the margin and embedding losses and CTC
against central differences and PyTorch; every loss module (options, buffers, reprs) against torch.nn;
bad input. The older functionals' own cases are in tests/engine/test_loss.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, HubkitError, IndexOutOfRangeError, ShapeError

# the legacy size_average/reduce cases and kl_div's reduction='mean' warn, in hubkit as in PyTorch
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*size_average and reduce args will be deprecated"),
    pytest.mark.filterwarnings("ignore:.*'mean' divides the total loss"),
]


# ---------------------------------------------------------------- inputs


def _pair(*shape):
    return lambda r: [r.standard_normal(shape), r.standard_normal(shape)]


def _log_probs_and_probs(*shape):
    def make(r):
        p = r.random(shape) + 0.1
        q = r.random(shape) + 0.1
        return [np.log(p / p.sum(-1, keepdims=True)), q / q.sum(-1, keepdims=True)]

    return make


def _signs(r, *shape):
    return np.where(r.random(shape) > 0.5, 1.0, -1.0)


def _multilabel_targets(r, n, c):
    """Rows of distinct target classes ended by -1 (junk after it), plus a full row and an empty row."""
    rows = []
    for i in range(n):
        classes = r.permutation(c)
        if i == 0:
            rows.append(classes)  # every class is a target: no -1 at all
        elif i == 1:
            rows.append(np.concatenate([[-1], classes[1:]]))  # no target
        else:
            k = int(r.integers(1, c - 1))
            rows.append(np.concatenate([classes[:k], [-1], r.integers(-1, c, c - k - 1)]))
    return np.stack(rows).astype(np.int64)


def _ctc_batch(r, t, n, c, s, *, blank=0, impossible=False, concatenated=False):
    """Random logits (T, N, C), targets without the blank, random lengths; the first sample can be made
    impossible (more labels plus repeats than frames)."""
    logits = r.standard_normal((t, n, c)) * 1.5
    labels = [x for x in range(c) if x != blank]
    tl = r.integers(0, s + 1, n)
    il = np.array([int(r.integers(max(int(k) * 2, 1), t + 1)) if 2 * k <= t else t for k in tl])
    tg = r.choice(labels, (n, s))
    if impossible:
        tl[0], il[0] = s, max(s - 1, 0)
    if concatenated:
        tg = np.concatenate([tg[i, :k] for i, k in enumerate(tl)]).astype(np.int64)
    return logits, tg.astype(np.int64), il.astype(np.int64), tl.astype(np.int64)


# ---------------------------------------------------------------- functional cases: (name, fn, make, wrt)

NEW_CASES = [
    ("huber", lambda m, x, t: m.huber_loss(x, t), _pair(3, 4), None),
    ("huber-delta-sum", lambda m, x, t: m.huber_loss(x, t, reduction="sum", delta=0.5), _pair(3, 4), None),
    ("huber-none-delta2", lambda m, x, t: m.huber_loss(x, t, reduction="none", delta=2.0), _pair(5), None),
    ("huber-weight", lambda m, x, t, w: m.huber_loss(x, t, weight=w),
     lambda r: _pair(3, 4)(r) + [r.random((3, 4))], None),
    ("kl-batchmean", lambda m, x, t: m.kl_div(x, t, reduction="batchmean"), _log_probs_and_probs(3, 4), None),
    ("kl-sum", lambda m, x, t: m.kl_div(x, t, reduction="sum"), _log_probs_and_probs(3, 4), None),
    ("kl-none", lambda m, x, t: m.kl_div(x, t, reduction="none"), _log_probs_and_probs(2, 5), None),
    ("kl-mean", lambda m, x, t: m.kl_div(x, t), _log_probs_and_probs(3, 4), None),
    ("kl-log-target", lambda m, x, t: m.kl_div(x, m.log(t), reduction="batchmean", log_target=True),
     _log_probs_and_probs(3, 4), None),
    ("kl-legacy-reduce-false", lambda m, x, t: m.kl_div(x, t, reduce=False), _log_probs_and_probs(2, 3), None),
    ("poisson", lambda m, x, t: m.poisson_nll_loss(x, t),
     lambda r: [r.standard_normal((3, 4)), r.poisson(2.0, (3, 4)) + 0.5], None),
    ("poisson-rate-sum", lambda m, x, t: m.poisson_nll_loss(x, t, log_input=False, reduction="sum"),
     lambda r: [r.uniform(0.2, 3, (3, 4)), r.uniform(0.1, 4, (3, 4))], None),
    ("poisson-full-none", lambda m, x, t: m.poisson_nll_loss(x, t, full=True, reduction="none"),
     lambda r: [r.standard_normal((3, 4)), np.where(r.random((3, 4)) > 0.5, r.uniform(1.5, 5, (3, 4)),
                                                   r.uniform(0.1, 0.8, (3, 4)))], None),
    ("gaussian", lambda m, x, t, v: m.gaussian_nll_loss(x, t, v),
     lambda r: _pair(4, 3)(r) + [r.uniform(0.3, 2, (4, 3))], None),
    ("gaussian-var-one-short-full", lambda m, x, t, v: m.gaussian_nll_loss(x, t, v, full=True, reduction="sum"),
     lambda r: _pair(4, 3)(r) + [r.uniform(0.3, 2, 4)], None),
    ("gaussian-var-size-one-dim-none", lambda m, x, t, v: m.gaussian_nll_loss(x, t, v, reduction="none"),
     lambda r: _pair(2, 3, 4)(r) + [r.uniform(0.3, 2, (2, 1, 4))], None),
    ("gaussian-float-var", lambda m, x, t: m.gaussian_nll_loss(x, t, 0.7), _pair(4, 3), None),
    ("cosine-embedding", lambda m, a, b, y: m.cosine_embedding_loss(a, b, y, margin=0.1),
     lambda r: _pair(5, 4)(r) + [_signs(r, 5)], (0, 1)),
    ("cosine-embedding-none", lambda m, a, b, y: m.cosine_embedding_loss(a, b, y, reduction="none"),
     lambda r: _pair(5, 4)(r) + [_signs(r, 5)], (0, 1)),
    ("cosine-embedding-1d", lambda m, a, b, y: m.cosine_embedding_loss(a, b, y, margin=-0.5),
     lambda r: _pair(4)(r) + [np.array(1.0)], (0, 1)),
    ("margin-ranking", lambda m, a, b, y: m.margin_ranking_loss(a, b, y, margin=0.3),
     lambda r: _pair(6)(r) + [_signs(r, 6)], None),
    ("margin-ranking-none", lambda m, a, b, y: m.margin_ranking_loss(a, b, y, reduction="none"),
     lambda r: _pair(6)(r) + [_signs(r, 6)], None),
    ("hinge-embedding", lambda m, x, y: m.hinge_embedding_loss(x, y, margin=1.5),
     lambda r: [r.uniform(0, 3, (3, 4)), _signs(r, 3, 4)], (0,)),
    ("hinge-embedding-none", lambda m, x, y: m.hinge_embedding_loss(x, y, reduction="none"),
     lambda r: [r.uniform(0, 3, (6,)), _signs(r, 6)], (0,)),
    ("soft-margin", lambda m, x, y: m.soft_margin_loss(x, y),
     lambda r: [r.standard_normal((3, 4)) * 3, _signs(r, 3, 4)], (0,)),
    ("soft-margin-sum", lambda m, x, y: m.soft_margin_loss(x, y, reduction="sum"),
     lambda r: [r.standard_normal(5), _signs(r, 5)], (0,)),
    ("multilabel-soft-margin", lambda m, x, t: m.multilabel_soft_margin_loss(x, t),
     lambda r: [r.standard_normal((3, 4)), (r.random((3, 4)) > 0.5).astype(float)], (0,)),
    ("multilabel-soft-margin-weight-none", lambda m, x, t, w: m.multilabel_soft_margin_loss(x, t, w, reduction="none"),
     lambda r: [r.standard_normal((3, 4)), r.random((3, 4)), r.uniform(0.5, 2, 4)], None),
    ("multilabel-margin", lambda m, x, t: m.multilabel_margin_loss(x, t),
     lambda r: [r.standard_normal((5, 5)), _multilabel_targets(r, 5, 5)], None),
    ("multilabel-margin-none", lambda m, x, t: m.multilabel_margin_loss(x, t, reduction="none"),
     lambda r: [r.standard_normal((4, 6)), _multilabel_targets(r, 4, 6)], None),
    ("multilabel-margin-1d-sum", lambda m, x, t: m.multilabel_margin_loss(x, t, reduction="sum"),
     lambda r: [r.standard_normal(4), np.array([2, 0, -1, 1])], None),
    ("multi-margin", lambda m, x, t: m.multi_margin_loss(x, t),
     lambda r: [r.standard_normal((5, 4)), r.integers(0, 4, 5)], None),
    ("multi-margin-p2-weight", lambda m, x, t, w: m.multi_margin_loss(x, t, p=2, margin=0.7, weight=w),
     lambda r: [r.standard_normal((5, 4)), r.integers(0, 4, 5), r.uniform(0.5, 2, 4)], (0,)),
    ("multi-margin-none", lambda m, x, t: m.multi_margin_loss(x, t, reduction="none"),
     lambda r: [r.standard_normal((5, 3)), r.integers(0, 3, 5)], None),
    ("multi-margin-1d", lambda m, x, t: m.multi_margin_loss(x, t), lambda r: [r.standard_normal(4), np.array(2)], None),
    ("triplet", lambda m, a, p, n: m.triplet_margin_loss(a, p, n), lambda r: _pair(4, 5)(r) + _pair(4, 5)(r)[:1],
     None),
    ("triplet-p1-swap-none", lambda m, a, p, n: m.triplet_margin_loss(a, p, n, margin=2.0, p=1, swap=True,
                                                                      reduction="none"),
     lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3)), r.standard_normal((4, 3))], None),
    ("triplet-1d-sum", lambda m, a, p, n: m.triplet_margin_loss(a, p, n, margin=3.0, reduction="sum"),
     lambda r: [r.standard_normal(5), r.standard_normal(5), r.standard_normal(5)], None),
    ("triplet-distance", lambda m, a, p, n: m.triplet_margin_with_distance_loss(a, p, n, margin=2.0),
     lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3)), r.standard_normal((4, 3))], None),
    ("triplet-distance-cosine-swap",
     lambda m, a, p, n: m.triplet_margin_with_distance_loss(
         a, p, n, distance_function=lambda x, y: 1.0 - m.cosine_similarity(x, y), margin=0.5, swap=True,
         reduction="none"),
     lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3)), r.standard_normal((4, 3))], None),
]

NEW_IDS = [c[0] for c in NEW_CASES]


@pytest.mark.parametrize(("name", "fn", "make", "wrt"), NEW_CASES, ids=NEW_IDS)
def test_gradient_matches_central_differences(name, fn, make, wrt):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)), wrt=wrt)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make", "wrt"), NEW_CASES, ids=NEW_IDS)
def test_forward_and_backward_match_torch(name, fn, make, wrt, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype, wrt=wrt)


# ---------------------------------------------------------------- CTC

CTC_CASES = [
    ("mean", {}, {}),
    ("sum", {"reduction": "sum"}, {}),
    ("none", {"reduction": "none"}, {}),
    ("blank-last", {"blank": 4, "reduction": "none"}, {"blank": 4}),
    ("concatenated", {}, {"concatenated": True}),
    ("zero-infinity-impossible", {"zero_infinity": True, "reduction": "none"}, {"impossible": True}),
    ("zero-infinity-mean", {"zero_infinity": True}, {"impossible": True}),
]


@pytest.mark.parametrize(("name", "kwargs", "batch"), CTC_CASES, ids=[c[0] for c in CTC_CASES])
def test_ctc_gradient_through_log_softmax_matches_central_differences(name, kwargs, batch):
    logits, tg, il, tl = _ctc_batch(rng_for("ctc-" + name), 6, 3, 5, 3, **batch)
    gradcheck(lambda x: F.ctc_loss(F.log_softmax(x, 2), hubkit.tensor(tg), hubkit.tensor(il), hubkit.tensor(tl),
                                   **kwargs), [logits])


def test_ctc_unbatched_gradient_matches_central_differences():
    r = rng_for("ctc-unbatched")
    gradcheck(lambda x: F.ctc_loss(F.log_softmax(x, 1), hubkit.tensor([1, 1, 2]), 6, 3), [r.standard_normal((6, 4))])


def _brute_force_ctc(log_probs, target, blank):
    """-log of the summed probability of every frame labelling that collapses to ``target``."""
    t, c = log_probs.shape
    total = 0.0
    for path in itertools.product(range(c), repeat=t):
        collapsed = [k for i, k in enumerate(path) if k != blank and (i == 0 or path[i - 1] != k)]
        if collapsed == list(target):
            total += math.exp(sum(log_probs[i, k] for i, k in enumerate(path)))
    return -math.log(total) if total else math.inf


@pytest.mark.parametrize(("target", "frames", "blank"), [([1, 2], 4, 0), ([1, 1], 4, 0), ([2], 3, 1), ([], 3, 0),
                                                         ([1, 1, 1], 4, 0)])
def test_ctc_equals_the_sum_over_all_alignments(target, frames, blank):
    r = rng_for(f"ctc-brute-{target}-{frames}")
    x = r.standard_normal((frames, 3))
    lp = x - np.log(np.exp(x).sum(1, keepdims=True))
    got = F.ctc_loss(hubkit.tensor(lp[:, None]), hubkit.tensor([target], dtype=hubkit.int64).reshape(1, -1),
                     [frames], [len(target)], blank=blank, reduction="none")
    assert got.numpy()[0] == pytest.approx(_brute_force_ctc(lp, target, blank), rel=1e-10)


def test_ctc_zero_infinity_zeroes_the_impossible_loss_and_its_gradient():
    lp = F.log_softmax(hubkit.randn(3, 2, 4, dtype=hubkit.float64), 2).detach().requires_grad_()
    targets = hubkit.tensor([[1, 2, 3], [1, 2, 3]])
    losses = F.ctc_loss(lp, targets, [2, 3], [3, 3], reduction="none")
    assert np.isinf(losses.numpy()[0]) and np.isfinite(losses.numpy()[1])
    zeroed = F.ctc_loss(lp, targets, [2, 3], [3, 3], reduction="sum", zero_infinity=True)
    zeroed.backward()
    assert zeroed.item() == pytest.approx(losses.numpy()[1])
    assert np.all(lp.grad.numpy()[:, 0] == 0) and np.any(lp.grad.numpy()[:, 1] != 0)


def test_ctc_frames_after_the_input_length_get_no_gradient_and_empty_inputs_cost_nothing():
    lp = F.log_softmax(hubkit.randn(5, 3, 4, dtype=hubkit.float64), 2).detach().requires_grad_()
    loss = F.ctc_loss(lp, hubkit.tensor([[1, 2], [3, 3], [1, 1]]), (5, 3, 0), (2, 1, 0), reduction="none")
    assert loss.numpy()[2] == 0
    loss.sum().backward()
    assert np.all(lp.grad.numpy()[3:, 1] == 0) and np.all(lp.grad.numpy()[:, 2] == 0)


def test_ctc_padded_concatenated_and_unbatched_targets_agree():
    r = rng_for("ctc-layouts")
    lp = F.log_softmax(hubkit.tensor(r.standard_normal((6, 2, 5))), 2)
    il, tl = hubkit.tensor([6, 5]), hubkit.tensor([3, 2])
    padded = F.ctc_loss(lp, hubkit.tensor([[1, 2, 2], [4, 3, 0]]), il, tl, reduction="none")
    concatenated = F.ctc_loss(lp, hubkit.tensor([1, 2, 2, 4, 3]), il, tl, reduction="none")
    np.testing.assert_allclose(padded.numpy(), concatenated.numpy())
    single = F.ctc_loss(lp[:, 1], hubkit.tensor([4, 3]), 5, 2, reduction="none")
    assert single.shape == () and single.item() == pytest.approx(padded.numpy()[1])
    mean = F.ctc_loss(lp, hubkit.tensor([1, 2, 2, 4, 3]), [6, 5], [3, 2])
    assert mean.item() == pytest.approx((padded.numpy() / np.array([3, 2])).mean())


CTC_PARITY = [
    ("mean", {}, {}),
    ("sum", {"reduction": "sum"}, {}),
    ("none", {"reduction": "none"}, {}),
    ("blank-2", {"blank": 2, "reduction": "none"}, {"blank": 2}),
    ("concatenated-mean", {}, {"concatenated": True}),
    ("zero-infinity-none", {"zero_infinity": True, "reduction": "none"}, {"impossible": True}),
    ("zero-infinity-mean", {"zero_infinity": True}, {"impossible": True}),
]


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("through_log_softmax", [True, False], ids=["logits", "log-probs-leaf"])
@pytest.mark.parametrize(("name", "kwargs", "batch"), CTC_PARITY, ids=[c[0] for c in CTC_PARITY])
def test_ctc_matches_torch_on_random_lengths(name, kwargs, batch, through_log_softmax, dtype):
    for seed in range(3):
        logits, tg, il, tl = _ctc_batch(rng_for(f"ctc-parity-{name}-{seed}"), 12, 4, 6, 5, **batch)
        x = logits if through_log_softmax else logits - np.log(np.exp(logits).sum(2, keepdims=True))
        compare_with_torch(
            lambda m, x, tg, il, tl: m.ctc_loss(m.log_softmax(x, 2) if through_log_softmax else x, tg, il, tl,
                                                **kwargs),
            [x, tg, il, tl], dtype=dtype, seed=seed)


@pytest.mark.parity
def test_ctc_impossible_alignment_is_inf_like_torch_and_unbatched_matches():
    import torch

    logits, tg, il, tl = _ctc_batch(rng_for("ctc-parity-inf"), 8, 3, 5, 4, impossible=True)
    lp = logits - np.log(np.exp(logits).sum(2, keepdims=True))
    ours = F.ctc_loss(hubkit.tensor(lp), hubkit.tensor(tg), hubkit.tensor(il), hubkit.tensor(tl), reduction="none")
    theirs = torch.nn.functional.ctc_loss(torch.tensor(lp), torch.tensor(tg), torch.tensor(il), torch.tensor(tl),
                                          reduction="none")
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10)
    assert np.isinf(ours.numpy()[0])
    compare_with_torch(lambda m, x, t: m.ctc_loss(m.log_softmax(x, 1), t, (8,), (3,)),
                       [logits[:, 1], tg[1, :3].copy()])


# ---------------------------------------------------------------- modules against torch.nn

_W4 = np.array([0.5, 1.5, 1.0, 2.0])


def _indices(n, c, *extra, ignore=False):
    def make(r):
        t = r.integers(0, c, (n, *extra))
        if ignore:
            t.reshape(-1)[::3] = -100
        return [r.standard_normal((n, c, *extra)), t]

    return make


def _probabilities(*shape):
    def make(r):
        p = r.random(shape) + 0.1
        return [r.standard_normal(shape), p / p.sum(1, keepdims=True)]

    return make


def _binary(*shape):
    return lambda r: [r.uniform(0.05, 0.95, shape), r.random(shape)]


# (name, class, constructor kwargs (arrays become tensors), inputs, positions whose gradient is compared)
MODULE_CASES = [
    ("L1Loss", "L1Loss", {}, _pair(3, 4), None),
    ("L1Loss-sum", "L1Loss", {"reduction": "sum"}, _pair(3, 4), None),
    ("L1Loss-legacy-size-average", "L1Loss", {"size_average": False}, _pair(3, 4), None),
    ("MSELoss", "MSELoss", {}, _pair(3, 4), None),
    ("MSELoss-none", "MSELoss", {"reduction": "none"}, _pair(3, 4), None),
    ("MSELoss-legacy-reduce", "MSELoss", {"reduce": False}, _pair(2, 3), None),
    ("SmoothL1Loss-beta", "SmoothL1Loss", {"beta": 0.5}, _pair(3, 4), None),
    ("HuberLoss-delta-sum", "HuberLoss", {"delta": 0.7, "reduction": "sum"}, _pair(3, 4), None),
    ("CrossEntropyLoss", "CrossEntropyLoss", {}, _indices(5, 4), (0,)),
    ("CrossEntropyLoss-weight-ignore", "CrossEntropyLoss", {"weight": _W4, "ignore_index": 2}, _indices(6, 4),
     (0,)),
    ("CrossEntropyLoss-smoothing-ignore-none", "CrossEntropyLoss",
     {"label_smoothing": 0.2, "reduction": "none"}, _indices(6, 4, ignore=True), (0,)),
    ("CrossEntropyLoss-kdim-weight-smoothing", "CrossEntropyLoss", {"weight": _W4, "label_smoothing": 0.1},
     _indices(2, 4, 3, 2, ignore=True), (0,)),
    ("CrossEntropyLoss-probs-smoothing", "CrossEntropyLoss", {"label_smoothing": 0.3}, _probabilities(5, 4),
     None),
    ("CrossEntropyLoss-probs-kdim-weight-sum", "CrossEntropyLoss", {"weight": _W4, "reduction": "sum"},
     _probabilities(2, 4, 3), None),
    ("NLLLoss", "NLLLoss", {}, _indices(5, 4), (0,)),
    ("NLLLoss-weight-ignore-sum", "NLLLoss", {"weight": _W4, "reduction": "sum"}, _indices(6, 4, ignore=True),
     (0,)),
    ("NLLLoss-kdim-none", "NLLLoss", {"reduction": "none", "ignore_index": 1}, _indices(2, 4, 3), (0,)),
    ("BCELoss-weight", "BCELoss", {"weight": _W4}, _binary(3, 4), None),
    ("BCELoss-none", "BCELoss", {"reduction": "none"}, _binary(3, 4), None),
    ("BCEWithLogitsLoss-pos-weight", "BCEWithLogitsLoss", {"pos_weight": _W4}, _pair(3, 4), None),
    ("BCEWithLogitsLoss-weight-pos-weight-sum", "BCEWithLogitsLoss",
     {"weight": _W4[::-1].copy(), "pos_weight": _W4, "reduction": "sum"}, _pair(3, 4), None),
    ("KLDivLoss-batchmean", "KLDivLoss", {"reduction": "batchmean"}, _log_probs_and_probs(3, 4), None),
    ("KLDivLoss-log-target-none", "KLDivLoss", {"reduction": "none", "log_target": True}, _pair(3, 4), None),
    ("PoissonNLLLoss-full", "PoissonNLLLoss", {"full": True},
     lambda r: [r.standard_normal((3, 4)), r.uniform(0.1, 5, (3, 4))], None),
    ("PoissonNLLLoss-rate-eps", "PoissonNLLLoss", {"log_input": False, "eps": 1e-3, "reduction": "sum"},
     lambda r: [r.uniform(0.1, 3, (3, 4)), r.uniform(0.1, 4, (3, 4))], None),
    ("GaussianNLLLoss-full-clamped-var", "GaussianNLLLoss", {"full": True, "eps": 0.05},
     lambda r: _pair(4, 3)(r) + [r.uniform(0.0, 0.5, (4, 3))], None),
    ("GaussianNLLLoss-homoscedastic-none", "GaussianNLLLoss", {"reduction": "none"},
     lambda r: _pair(4, 3)(r) + [r.uniform(0.3, 2, (4, 1))], None),
    ("CosineEmbeddingLoss-margin", "CosineEmbeddingLoss", {"margin": 0.2},
     lambda r: _pair(5, 4)(r) + [_signs(r, 5)], (0, 1)),
    ("MarginRankingLoss-sum", "MarginRankingLoss", {"margin": 0.5, "reduction": "sum"},
     lambda r: _pair(6)(r) + [_signs(r, 6)], None),
    ("HingeEmbeddingLoss-none", "HingeEmbeddingLoss", {"margin": 2.0, "reduction": "none"},
     lambda r: [r.uniform(0, 3, (3, 4)), _signs(r, 3, 4)], (0,)),
    ("MultiLabelSoftMarginLoss-weight", "MultiLabelSoftMarginLoss", {"weight": _W4},
     lambda r: [r.standard_normal((3, 4)), (r.random((3, 4)) > 0.5).astype(float)], (0,)),
    ("MultiLabelMarginLoss", "MultiLabelMarginLoss", {}, lambda r: [r.standard_normal((4, 5)),
                                                                   _multilabel_targets(r, 4, 5)], None),
    ("MultiMarginLoss-p2-weight-none", "MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": _W4, "reduction": "none"},
     lambda r: [r.standard_normal((5, 4)), r.integers(0, 4, 5)], (0,)),
    ("SoftMarginLoss", "SoftMarginLoss", {}, lambda r: [r.standard_normal((3, 4)), _signs(r, 3, 4)], (0,)),
    ("TripletMarginLoss-p1-swap", "TripletMarginLoss", {"margin": 2.0, "p": 1.0, "swap": True},
     lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3)), r.standard_normal((4, 3))], None),
    ("TripletMarginWithDistanceLoss-swap-none", "TripletMarginWithDistanceLoss",
     {"margin": 1.5, "swap": True, "reduction": "none"},
     lambda r: [r.standard_normal((4, 3)), r.standard_normal((4, 3)), r.standard_normal((4, 3))], None),
    ("CTCLoss-zero-infinity", "CTCLoss", {"blank": 5, "zero_infinity": True},
     lambda r: list(_ctc_batch(r, 8, 3, 6, 3, blank=5, impossible=True)), None),
]


def _module_fn(cls, kwargs, dtype, ctc):
    def fn(m, *xs):
        import torch

        torch_side = m is not F
        lib = torch.nn if torch_side else nn
        make = torch.from_numpy if torch_side else hubkit.from_numpy
        module = getattr(lib, cls)(**{k: make(v.astype(dtype)) if isinstance(v, np.ndarray) else v
                                      for k, v in kwargs.items()})
        if ctc:  # the module gets log-probabilities: PyTorch's gradient convention is checked through log_softmax
            return module(m.log_softmax(xs[0], 2), *xs[1:])
        return module(*xs)

    return fn


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "cls", "kwargs", "make", "wrt"), MODULE_CASES, ids=[c[0] for c in MODULE_CASES])
def test_module_matches_torch_nn(name, cls, kwargs, make, wrt, dtype):
    compare_with_torch(_module_fn(cls, kwargs, dtype, cls == "CTCLoss"), make(rng_for(name)), dtype=dtype, wrt=wrt)


TORCH_LOSSES = ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "SmoothL1Loss",
                "HuberLoss", "KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss", "CosineEmbeddingLoss",
                "MarginRankingLoss", "HingeEmbeddingLoss", "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss",
                "MultiMarginLoss", "SoftMarginLoss", "TripletMarginLoss", "TripletMarginWithDistanceLoss", "CTCLoss"]


@pytest.mark.parity
@pytest.mark.parametrize("cls", TORCH_LOSSES)
def test_module_repr_and_state_dict_keys_match_torch(cls):
    import torch

    kwargs = {}
    if cls in ("CrossEntropyLoss", "NLLLoss", "BCELoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss"):
        kwargs = {"weight": _W4}
    if cls == "BCEWithLogitsLoss":
        kwargs = {"weight": _W4, "pos_weight": _W4}
    ours = getattr(nn, cls)(**{k: hubkit.tensor(v) for k, v in kwargs.items()})
    theirs = getattr(torch.nn, cls)(**{k: torch.tensor(v) for k, v in kwargs.items()})
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert ours.reduction == theirs.reduction


# ---------------------------------------------------------------- modules without torch

def test_every_torch_loss_module_is_exported_from_hubkit_nn():
    assert set(TORCH_LOSSES) <= set(nn.modules.__all__)
    for name in TORCH_LOSSES:
        assert getattr(nn, name).__name__ == name


def test_weight_buffers_follow_the_module_and_reach_the_state_dict():
    w = hubkit.tensor([1.0, 2.0, 3.0])
    ce = nn.CrossEntropyLoss(weight=w)
    assert list(ce.state_dict()) == ["weight"] and ce.weight is w
    ce.to(hubkit.float64)
    assert ce.weight.dtype == np.float64
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    bce = nn.BCEWithLogitsLoss(pos_weight=hubkit.ones(3))
    assert list(bce.state_dict()) == ["pos_weight"]
    loss = ce(hubkit.randn(4, 3, dtype=hubkit.float64), hubkit.tensor([0, 1, 2, 1]))
    assert loss.dtype == np.float64


def test_module_applies_its_options():
    x = hubkit.randn(4, 3, requires_grad=True)
    t = hubkit.tensor([0, 2, 1, 2])
    w = hubkit.tensor([1.0, 0.5, 2.0])
    module = nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1, reduction="sum")
    direct = F.cross_entropy(x, t, w, ignore_index=1, label_smoothing=0.1, reduction="sum")
    assert module(x, t).item() == pytest.approx(direct.item())
    module(x, t).backward()
    assert x.grad.shape == (4, 3)


def test_legacy_size_average_and_reduce_become_the_reduction_at_construction():
    with pytest.warns(UserWarning, match="please use reduction='sum' instead"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning, match="reduction='none'"):
        module = nn.NLLLoss(reduce=False)
    assert module(F.log_softmax(hubkit.randn(3, 2), 1), hubkit.tensor([0, 1, 1])).shape == (3,)
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"


def test_reprs_are_pytorchs():
    assert repr(nn.CrossEntropyLoss(label_smoothing=0.1)) == "CrossEntropyLoss()"
    assert repr(nn.TripletMarginWithDistanceLoss()) == (
        "TripletMarginWithDistanceLoss(\n  (distance_function): PairwiseDistance()\n)")


def test_custom_losses_subclass_the_base_classes_as_in_torch():
    class Doubled(nn.modules.loss._Loss):
        def forward(self, input, target):
            return 2 * F.mse_loss(input, target, reduction=self.reduction)

    x, t = hubkit.randn(3), hubkit.randn(3)
    assert Doubled(reduction="sum")(x, t).item() == pytest.approx(2 * F.mse_loss(x, t, reduction="sum").item())


def test_margin_losses_give_the_values_of_pytorchs_documentation_examples():
    x = hubkit.tensor([[0.1, 0.2, 0.4, 0.8]])
    # targets 3 and 0 (the list ends at -1): sum over the pairs with the non-targets 1 and 2, over C = 4
    assert nn.MultiLabelMarginLoss()(x, hubkit.tensor([[3, 0, -1, 1]])).item() == pytest.approx(0.85)
    # target 3: (max(0, 1 - 0.8 + 0.1) + max(0, 1 - 0.8 + 0.2) + max(0, 1 - 0.8 + 0.4)) / 4
    assert nn.MultiMarginLoss()(x, hubkit.tensor([3])).item() == pytest.approx(0.325)
    a, b = hubkit.tensor([[1.0, 0.0]]), hubkit.tensor([[0.0, 1.0]])
    assert F.cosine_embedding_loss(a, b, hubkit.tensor([1.0])).item() == pytest.approx(1.0)
    assert F.cosine_embedding_loss(a, a, hubkit.tensor([-1.0]), margin=0.5).item() == pytest.approx(0.5)
    assert F.margin_ranking_loss(hubkit.tensor([1.0]), hubkit.tensor([2.0]), hubkit.tensor([1.0]),
                                 margin=0.5).item() == pytest.approx(1.5)
    anchor, pos, neg = hubkit.tensor([[0.0, 0.0]]), hubkit.tensor([[3.0, 4.0]]), hubkit.tensor([[1.0, 0.0]])
    assert F.triplet_margin_loss(anchor, pos, neg, eps=0.0).item() == pytest.approx(5.0)
    assert F.triplet_margin_loss(anchor, pos, neg, p=1, eps=0.0).item() == pytest.approx(7.0)


def test_kl_div_reductions():
    r = rng_for("kl-reductions")
    x, t = (hubkit.tensor(a) for a in _log_probs_and_probs(4, 3)(r))
    total = F.kl_div(x, t, reduction="sum").item()
    assert F.kl_div(x, t, reduction="batchmean").item() == pytest.approx(total / 4)
    with pytest.warns(UserWarning, match="'batchmean' divides only by the batch size"):
        assert F.kl_div(x, t).item() == pytest.approx(total / 12)
    zero_target = F.kl_div(x, hubkit.zeros(4, 3, dtype=hubkit.float64), reduction="sum")
    assert zero_target.item() == 0.0


def test_gaussian_nll_var_gradient_passes_the_clamp_like_pytorch():
    var = hubkit.tensor([1e-9, 0.5], requires_grad=True)
    x = hubkit.tensor([1.0, 1.0])
    t = hubkit.tensor([0.0, 0.0])
    F.gaussian_nll_loss(x, t, var, eps=1e-3, reduction="sum").backward()
    clamped = np.array([1e-3, 0.5])
    np.testing.assert_allclose(var.grad.numpy(), 0.5 / clamped - 0.5 / clamped**2, rtol=1e-5)


def test_losses_keep_float32():
    x, t = hubkit.randn(4, 3), hubkit.randn(4, 3)
    y = hubkit.tensor([1.0, -1.0, 1.0, -1.0])
    lp = F.log_softmax(hubkit.randn(5, 2, 4), 2)
    for loss in (F.huber_loss(x, t), F.kl_div(x, t.exp(), reduction="batchmean"), F.poisson_nll_loss(x, t.abs(),
                 full=True), F.gaussian_nll_loss(x, t, 0.5), F.cosine_embedding_loss(x, t, y),
                 F.margin_ranking_loss(x[:, 0], t[:, 0], y), F.hinge_embedding_loss(x, y[:, None]),
                 F.soft_margin_loss(x, y[:, None]), F.multilabel_soft_margin_loss(x, (t > 0).float()),
                 F.multilabel_margin_loss(x, hubkit.tensor([[0, -1, 0]] * 4)),
                 F.multi_margin_loss(x, hubkit.tensor([0, 1, 2, 0])), F.triplet_margin_loss(x, t, t * 2),
                 F.triplet_margin_with_distance_loss(x, t, -t), F.ctc_loss(lp, hubkit.tensor([[1, 2], [3, 3]]),
                                                                          [5, 5], [2, 2])):
        assert loss.dtype == np.float32


# ---------------------------------------------------------------- bad input


def test_ctc_bad_input_errors():
    lp = F.log_softmax(hubkit.randn(5, 2, 4), 2)
    targets = hubkit.tensor([[1, 2], [3, 1]])
    with pytest.raises(ArgumentError, match="input_lengths must not be negative, got -1"):
        F.ctc_loss(lp, targets, [5, -1], [2, 2])
    with pytest.raises(ArgumentError, match="target_lengths must not be negative"):
        F.ctc_loss(lp, targets, [5, 5], hubkit.tensor([-2, 2]))
    with pytest.raises(ArgumentError, match="input_lengths must be at most T=5, got 6"):
        F.ctc_loss(lp, targets, [6, 5], [2, 2])
    with pytest.raises(ShapeError, match=r"input_lengths must have one length per sample \(2,\)"):
        F.ctc_loss(lp, targets, [5], [2, 2])
    with pytest.raises(DTypeError, match="target_lengths must hold integer lengths"):
        F.ctc_loss(lp, targets, [5, 5], hubkit.tensor([2.0, 2.0]))
    with pytest.raises(DTypeError, match="targets must hold integer class indices"):
        F.ctc_loss(lp, targets.float(), [5, 5], [2, 2])
    with pytest.raises(IndexOutOfRangeError, match="target 4 is out of bounds for 4 classes"):
        F.ctc_loss(lp, hubkit.tensor([[1, 4], [3, 1]]), [5, 5], [2, 2])
    with pytest.raises(ArgumentError, match="must not contain the blank label 0"):
        F.ctc_loss(lp, hubkit.tensor([[1, 0], [3, 1]]), [5, 5], [2, 2])
    with pytest.raises(ShapeError, match="S >= the longest target length 3"):
        F.ctc_loss(lp, targets, [5, 5], [3, 2])
    with pytest.raises(ShapeError, match=r"sum\(target_lengths\) = 4 elements, got 3"):
        F.ctc_loss(lp, hubkit.tensor([1, 2, 3]), [5, 5], [2, 2])
    with pytest.raises(ArgumentError, match=r"blank must be a class index in \[0, 4\), got 4"):
        F.ctc_loss(lp, targets, [5, 5], [2, 2], blank=4)
    with pytest.raises(ShapeError, match=r"log_probs must be \(T, N, C\) or \(T, C\)"):
        F.ctc_loss(hubkit.randn(5), targets, [5, 5], [2, 2])
    with pytest.raises(ArgumentError, match="reduction must be one of"):
        nn.CTCLoss(reduction="avg")(lp, targets, [5, 5], [2, 2])


def test_classification_loss_errors():
    x = hubkit.randn(4, 3)
    with pytest.raises(IndexOutOfRangeError, match="target 3 is out of bounds for 3 classes"):
        nn.CrossEntropyLoss()(x, hubkit.tensor([0, 3, 1, 1]))
    with pytest.raises(DTypeError, match="integer class indices"):
        nn.NLLLoss()(x, hubkit.tensor([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ShapeError, match="needs a target of shape"):
        nn.CrossEntropyLoss()(x, hubkit.tensor([[0, 1]]))
    with pytest.raises(IndexOutOfRangeError, match="target 5 is out of bounds for 3 classes"):
        F.multi_margin_loss(x, hubkit.tensor([0, 5, 1, 1]))
    with pytest.raises(DTypeError, match="integer class indices"):
        F.multi_margin_loss(x, hubkit.tensor([0.0, 1.0, 1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"needs a target of shape \(N,\) or \(\)"):
        F.multi_margin_loss(x, hubkit.tensor([0, 1]))
    with pytest.raises(ArgumentError, match="only p == 1 and p == 2"):
        nn.MultiMarginLoss(p=3)
    with pytest.raises(ShapeError, match="one weight per class"):
        F.multi_margin_loss(x, hubkit.tensor([0, 1, 1, 2]), weight=hubkit.ones(4))
    with pytest.raises(IndexOutOfRangeError, match="target 3 is out of bounds for 3 classes"):
        F.multilabel_margin_loss(x, hubkit.tensor([[0, 3, -1]] * 4))
    with pytest.raises(ShapeError, match="with a target of the same size"):
        F.multilabel_margin_loss(x, hubkit.tensor([0, 1, -1]))
    with pytest.raises(DTypeError, match="integer class indices"):
        F.multilabel_margin_loss(x, hubkit.zeros(4, 3))


def test_regression_and_embedding_loss_errors():
    x = hubkit.randn(4, 3)
    with pytest.raises(ArgumentError, match="delta must be positive"):
        nn.HuberLoss(delta=0.0)(x, x)
    with pytest.raises(ShapeError, match="weight"):
        F.huber_loss(x, x, weight=hubkit.ones(3))
    with pytest.raises(ArgumentError, match="reduction must be one of"):
        F.kl_div(x, x, reduction="avg")
    with pytest.raises(ArgumentError, match="var has negative entry"):
        F.gaussian_nll_loss(x, x, -1.0)
    with pytest.raises(ArgumentError, match="var has negative entry"):
        nn.GaussianNLLLoss()(x, x, -hubkit.ones(4, 3))
    with pytest.raises(ShapeError, match=r"var \(2, 3\) is of incorrect size for input \(4, 3\)"):
        F.gaussian_nll_loss(x, x, hubkit.ones(2, 3))
    with pytest.raises(ShapeError, match=r"need a target of shape \(4,\), got \(3,\)"):
        F.cosine_embedding_loss(x, x, hubkit.ones(3))
    with pytest.raises(ShapeError, match="must both be"):
        F.cosine_embedding_loss(x, hubkit.randn(4, 2), hubkit.ones(4))
    with pytest.raises(ShapeError, match="same number of dims"):
        F.margin_ranking_loss(x[:, 0], x[:, 1], hubkit.ones(4, 1))
    with pytest.raises(ShapeError, match="same size as input"):
        nn.MultiLabelSoftMarginLoss()(x, hubkit.ones(4))
    with pytest.raises(ArgumentError, match="margin must be greater than 0"):
        F.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(ArgumentError, match="expected margin to be greater than 0"):
        nn.TripletMarginWithDistanceLoss(margin=-1.0)
    with pytest.raises(ShapeError, match="anchor 2D, positive 2D, and negative 1D"):
        F.triplet_margin_with_distance_loss(x, x, x[0])


def test_every_error_is_a_hubkit_error():
    with pytest.raises(HubkitError):
        nn.SoftMarginLoss(reduction="bogus")(hubkit.randn(2), hubkit.ones(2))
