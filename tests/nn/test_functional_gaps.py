"""F.rms_norm / nn.RMSNorm, F.linear_cross_entropy / nn.LinearCrossEntropyLoss / LinearCrossEntropyOptions and
F.multi_head_attention_forward: gradchecks, errors and torch parity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError

# ---------------------------------------------------------------- RMSNorm


@pytest.mark.parametrize("shape, normalized", [((3, 4), (4,)), ((2, 3, 4), (3, 4)), ((5,), 5)])
def test_rms_norm_gradcheck(shape, normalized):
    rng = np.random.default_rng(0)
    w = rng.standard_normal(normalized if isinstance(normalized, tuple) else (normalized,))
    gradcheck(lambda x, g: F.rms_norm(x, normalized, g, 1e-6), [rng.standard_normal(shape), w])
    gradcheck(lambda x: F.rms_norm(x, normalized), [rng.standard_normal(shape)])


def test_rms_norm_values_and_module():
    x = hubkit.tensor([[3.0, 4.0]], dtype=hubkit.float64)
    np.testing.assert_allclose(F.rms_norm(x, (2,), eps=0.0).numpy(), [[3 / np.sqrt(12.5), 4 / np.sqrt(12.5)]])
    m = nn.RMSNorm(4)
    assert repr(m) == "RMSNorm((4,), eps=None, elementwise_affine=True)" and m.weight.tolist() == [1.0] * 4
    assert list(m.state_dict()) == ["weight"]
    assert list(nn.RMSNorm([2, 3], elementwise_affine=False).state_dict()) == []
    with pytest.raises(ShapeError, match="must end with normalized_shape"):
        F.rms_norm(hubkit.ones(2, 3), (4,))
    with pytest.raises(ShapeError, match="weight has shape"):
        F.rms_norm(hubkit.ones(2, 3), (3,), hubkit.ones(4))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [None, 1e-5])
def test_rms_norm_matches_torch(dtype, eps):
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5))
    compare_with_torch(lambda m, a, g: m.rms_norm(a, (4, 5), g, eps), [x, w], dtype=dtype)


@pytest.mark.parity
def test_rms_norm_module_matches_torch():
    import torch

    assert repr(nn.RMSNorm([2, 3], eps=1e-5, elementwise_affine=False)) == repr(
        torch.nn.RMSNorm([2, 3], eps=1e-5, elementwise_affine=False))
    assert repr(nn.RMSNorm(4)) == repr(torch.nn.RMSNorm(4))


# ---------------------------------------------------------------- linear_cross_entropy


LCE_CASES = [
    ((6, 4), (5, 4), None, "index", {}),
    ((6, 4), (5, 4), (5,), "index", {"label_smoothing": 0.1, "reduction": "sum"}),
    ((6, 4), (5, 3, 4), (5, 3), "index", {"reduction": "none"}),
    ((6, 4), (5, 4), None, "prob", {}),
    ((4,), (5, 4), None, "index", {}),
    ((6, 4), (5, 4), None, "index", {"ignore_index": 2, "weight": True}),
]


def _lce_inputs(case):
    x_shape, w_shape, b_shape, kind, kwargs = LCE_CASES[case]
    rng = np.random.default_rng(case)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(b_shape) if b_shape else None
    logits_shape = (*x_shape[:-1], w_shape[0], *w_shape[1:-1])
    if kind == "prob":
        t = rng.random(logits_shape)
        t /= t.sum(axis=1 if len(x_shape) == 2 else 0, keepdims=True)
    else:
        t = rng.integers(0, w_shape[0], (*x_shape[:-1], *w_shape[1:-1]))
    kwargs = dict(kwargs)
    if kwargs.pop("weight", False):
        kwargs["class_weight"] = rng.random(w_shape[0])
    return x, w, b, t, kwargs


@pytest.mark.parametrize("case", range(len(LCE_CASES)))
def test_linear_cross_entropy_is_cross_entropy_of_the_projection_and_gradchecks(case):
    x, w, b, t, kwargs = _lce_inputs(case)
    cw = kwargs.pop("class_weight", None)
    target = hubkit.tensor(t)
    weight = None if cw is None else hubkit.tensor(cw)

    def fn(xx, ww, *bb):
        return F.linear_cross_entropy(xx, ww, target, linear_bias=bb[0] if bb else None, weight=weight, **kwargs)

    inputs = [x, w] + ([b] if b is not None else [])
    gradcheck(fn, inputs)
    logits = F.linear(hubkit.tensor(x), hubkit.tensor(w.reshape(-1, w.shape[-1])),
                      None if b is None else hubkit.tensor(b.reshape(-1)))
    logits = logits.reshape(*x.shape[:-1], *w.shape[:-1])
    ce_kwargs = {k: v for k, v in kwargs.items()}
    expected = F.cross_entropy(logits, target, weight=weight, **ce_kwargs)
    np.testing.assert_allclose(fn(*[hubkit.tensor(a) for a in inputs]).numpy(), expected.numpy(), rtol=1e-12)


def test_linear_cross_entropy_errors_and_options():
    x, w, t = hubkit.randn(3, 4), hubkit.randn(5, 4), hubkit.tensor([0, 1, 2])
    with pytest.raises(ShapeError, match="expected equal input and linear_weight last dimensions"):
        F.linear_cross_entropy(x, hubkit.randn(5, 3), t)
    with pytest.raises(ShapeError, match="expected linear_bias shape"):
        F.linear_cross_entropy(x, w, t, linear_bias=hubkit.randn(4))
    with pytest.raises(ArgumentError, match="ignore_index cannot be specified when target contains probabilities"):
        F.linear_cross_entropy(x, w, hubkit.rand(3, 5), ignore_index=0)
    with pytest.raises(ShapeError, match="requires batched input"):
        F.linear_cross_entropy(hubkit.randn(4), hubkit.randn(5, 2, 4), hubkit.tensor([0, 1]))
    options = nn.LinearCrossEntropyOptions(batch_chunk_size=2)
    np.testing.assert_allclose(F.linear_cross_entropy(x, w, t, options=options).item(),
                               F.linear_cross_entropy(x, w, t).item())
    with pytest.warns(UserWarning, match="``options`` ignored"):
        F.linear_cross_entropy(x, w, t, options=options, label_smoothing=0.1)
    with pytest.raises(ArgumentError, match="invalid acc_policy"):
        nn.LinearCrossEntropyOptions(acc_policy="fast")
    with pytest.raises(ArgumentError, match="invalid chunking_method"):
        nn.LinearCrossEntropyOptions(chunking_method="rows")
    with pytest.raises(ArgumentError, match="batch_chunk_size must be positive int or None"):
        nn.LinearCrossEntropyOptions(batch_chunk_size=0)


def test_linear_cross_entropy_loss_module():
    m = nn.LinearCrossEntropyLoss(4, 5, out_features=(3,), bias=True)
    assert list(m.state_dict()) == ["linear.weight", "linear.bias"] and m.linear.weight.shape == (15, 4)
    x, t = hubkit.randn(6, 4), hubkit.randint(0, 5, (6, 3))
    loss = m(x, t)
    loss.backward()
    assert loss.shape == () and m.linear.weight.grad.shape == (15, 4)
    with pytest.raises(ArgumentError, match="label_smoothing to be in range"):
        nn.LinearCrossEntropyLoss(4, 5, label_smoothing=2.0)
    with pytest.raises(ShapeError, match="expected weight shape to be"):
        nn.LinearCrossEntropyLoss(4, 5, weight=hubkit.ones(3))


@pytest.mark.parity
@pytest.mark.parametrize("case", range(len(LCE_CASES)))
def test_linear_cross_entropy_matches_torch(case):
    x, w, b, t, kwargs = _lce_inputs(case)
    cw = kwargs.pop("class_weight", None)
    inputs = [x, w, t] + ([b] if b is not None else []) + ([cw] if cw is not None else [])

    def call(m, xx, ww, tt, *rest):
        rest = list(rest)
        bias = rest.pop(0) if b is not None else None
        weight = rest.pop(0) if cw is not None else None
        return m.linear_cross_entropy(xx, ww, tt, linear_bias=bias, weight=weight, **kwargs)

    compare_with_torch(call, inputs, wrt=[0, 1, 3] if b is not None else [0, 1])


@pytest.mark.parity
def test_linear_cross_entropy_loss_module_matches_torch():
    import torch

    t = torch.nn.LinearCrossEntropyLoss(4, 5, out_features=(3,), bias=True, label_smoothing=0.1).double()
    h = nn.LinearCrossEntropyLoss(4, 5, out_features=(3,), bias=True, label_smoothing=0.1).double()
    assert repr(h) == repr(t) and list(h.state_dict()) == list(t.state_dict())
    h.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.integers(0, 5, (6, 3))
    np.testing.assert_allclose(h(hubkit.tensor(x), hubkit.tensor(y)).item(),
                               t(torch.from_numpy(x), torch.from_numpy(y)).item(), rtol=1e-12)
    assert repr(nn.LinearCrossEntropyOptions()) == repr(torch.nn.LinearCrossEntropyOptions())


# ---------------------------------------------------------------- multi_head_attention_forward

E, HEADS, L, S, N = 8, 2, 3, 4, 2


def _mha_args(rng, batched=True, separate=False, bias_kv=False, static=False):
    def arr(*shape):
        return rng.standard_normal(shape)

    q = arr(L, N, E) if batched else arr(L, E)
    k = arr(S, N, E) if batched else arr(S, E)
    v = arr(S, N, E) if batched else arr(S, E)
    weights = {"in_proj_weight": arr(3 * E, E), "in_proj_bias": arr(3 * E), "out_proj_weight": arr(E, E),
               "out_proj_bias": arr(E), "bias_k": arr(1, 1, E) if bias_kv else None,
               "bias_v": arr(1, 1, E) if bias_kv else None, "q_proj_weight": arr(E, E), "k_proj_weight": arr(E, E),
               "v_proj_weight": arr(E, E), "static_k": arr(N * HEADS, S, E // HEADS) if static else None,
               "static_v": arr(N * HEADS, S, E // HEADS) if static else None}
    return q, k, v, weights


def _mha(lib_f, to, q, k, v, weights, **kwargs):
    w = {name: to(a) for name, a in weights.items()}
    return lib_f.multi_head_attention_forward(
        to(q), to(k), to(v), E, HEADS, w["in_proj_weight"], w["in_proj_bias"], w["bias_k"], w["bias_v"],
        kwargs.pop("add_zero_attn", False), 0.0, w["out_proj_weight"], w["out_proj_bias"], training=False,
        q_proj_weight=w["q_proj_weight"], k_proj_weight=w["k_proj_weight"], v_proj_weight=w["v_proj_weight"],
        static_k=w["static_k"], static_v=w["static_v"], **kwargs)


def test_mha_forward_equals_the_module_and_gradchecks():
    m = nn.MultiheadAttention(E, HEADS).double()
    rng = np.random.default_rng(0)
    q, k, v, _ = _mha_args(rng)
    x = [hubkit.tensor(a) for a in (q, k, v)]
    expected, expected_w = m(*x)
    out, weights = F.multi_head_attention_forward(*x, E, HEADS, m.in_proj_weight, m.in_proj_bias, None, None, False,
                                                  0.0, m.out_proj.weight, m.out_proj.bias, training=False)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(weights.detach().numpy(), expected_w.detach().numpy(), rtol=1e-12)

    def fn(qq, w_in):
        return F.multi_head_attention_forward(qq, x[1], x[2], E, HEADS, w_in, m.in_proj_bias, None, None, False,
                                              0.0, m.out_proj.weight, m.out_proj.bias, training=False)[0]

    gradcheck(fn, [q, m.in_proj_weight.detach().numpy()])


def test_mha_forward_errors():
    rng = np.random.default_rng(0)
    q, k, v, w = _mha_args(rng)
    to = hubkit.tensor
    with pytest.raises(ArgumentError, match="Need attn_mask if specifying the is_causal hint"):
        _mha(F, lambda a: None if a is None else to(a), q, k, v, w, is_causal=True)
    with pytest.raises(ShapeError, match="was expecting embedding dimension of 8"):
        F.multi_head_attention_forward(to(q[..., :4]), to(k[..., :4]), to(v[..., :4]), E, HEADS, None, None, None,
                                       None, False, 0.0, to(w["out_proj_weight"]), None)
    with pytest.raises(ShapeError, match="query should be unbatched 2D or batched 3D"):
        F.multi_head_attention_forward(to(q[None]), to(k), to(v), E, HEADS, None, None, None, None, False, 0.0,
                                       to(w["out_proj_weight"]), None)


MHA_CASES = [c for c in itertools.product((True, False), (False, True), (False, True), (False, True), (True, False),
                                          (None, "bool", "float", "causal"), (False, True))
             if not (c[2] and c[6]) and not (not c[0] and c[6])]


@pytest.mark.parity
@pytest.mark.parametrize("batched, separate, bias_kv, zero_attn, need_weights, mask, static", MHA_CASES)
def test_mha_forward_matches_torch(batched, separate, bias_kv, zero_attn, need_weights, mask, static):
    import torch

    rng = np.random.default_rng(len(MHA_CASES))
    q, k, v, w = _mha_args(rng, batched, separate, bias_kv, static)
    padding = rng.random((N, S) if batched else (S,)) < 0.3
    padding[..., 0] = False
    attn = rng.standard_normal((L, S)) if mask == "float" else np.triu(np.ones((L, S), bool), 1) if mask else None
    kwargs = {"add_zero_attn": zero_attn, "need_weights": need_weights, "use_separate_proj_weight": separate,
              "is_causal": mask == "causal", "average_attn_weights": need_weights and separate}
    outs = []
    for lib_f, lib in ((F, hubkit), (torch.nn.functional, torch)):
        def to(a, lib=lib):
            return None if a is None else (hubkit.tensor(a) if lib is hubkit else torch.from_numpy(a))

        out, weights = _mha(lib_f, to, q, k, v, w, key_padding_mask=to(padding), attn_mask=to(attn),
                            **dict(kwargs))
        outs.append((out.detach().numpy(), None if weights is None else weights.detach().numpy()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    assert (outs[0][1] is None) == (outs[1][1] is None)
    if outs[0][1] is not None:
        np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-12)
