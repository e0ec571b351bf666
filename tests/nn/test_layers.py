"""Layers: shapes, semantics (batch-norm statistics, dropout modes, embedding padding, attention masks)
and, with torch installed, forward/backward parity for the same weights."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError


def _x(*shape: int, seed: int = 0) -> hubkit.Tensor:
    return hubkit.from_numpy(np.random.default_rng(seed).standard_normal(shape).astype(np.float32))


def test_linear_computes_x_wt_plus_b_on_any_leading_dims():
    lin = nn.Linear(4, 3)
    x = _x(2, 5, 4)
    expected = x.numpy() @ lin.weight.numpy().T + lin.bias.numpy()
    np.testing.assert_allclose(lin(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert nn.Linear(4, 3, bias=False).bias is None


def test_identity_flatten_unflatten():
    x = _x(2, 3, 4, 5)
    assert nn.Identity(54, foo=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 2)(x).shape == (24, 5)
    assert nn.Unflatten(1, (3, 20))(nn.Flatten()(x)).shape == (2, 3, 20)


@pytest.mark.parametrize("kwargs,out_hw", [
    ({"kernel_size": 3}, (6, 6)),
    ({"kernel_size": 3, "padding": 1, "stride": 2}, (4, 4)),
    ({"kernel_size": (3, 1), "padding": "same"}, (8, 8)),
    ({"kernel_size": 3, "dilation": 2, "padding": 2, "groups": 2}, (8, 8)),
    ({"kernel_size": 3, "padding": 1, "padding_mode": "reflect"}, (8, 8)),
    ({"kernel_size": 3, "padding": 1, "padding_mode": "circular"}, (8, 8)),
])
def test_conv2d_output_shapes(kwargs, out_hw):
    conv = nn.Conv2d(4, 6, **kwargs)
    assert conv(_x(2, 4, 8, 8)).shape == (2, 6, *out_hw)


def test_conv2d_padding_mode_pads_before_a_valid_convolution():
    conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="replicate")
    x = _x(1, 2, 5, 5)
    expected = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), conv.weight, conv.bias)
    np.testing.assert_allclose(conv(x).numpy(), expected.numpy(), rtol=1e-6)


def test_conv_argument_errors():
    with pytest.raises(ArgumentError, match="divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ArgumentError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ArgumentError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")


def test_conv1d_and_conv_transpose2d_shapes():
    assert nn.Conv1d(3, 5, 3, stride=2, padding=1)(_x(2, 3, 9)).shape == (2, 5, 5)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    assert up(_x(1, 4, 5, 5)).shape == (1, 2, 10, 10)
    up = nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1)
    assert up(_x(1, 4, 5, 5)).shape == (1, 2, 9, 9)
    assert up(_x(1, 4, 5, 5), output_size=(10, 10)).shape == (1, 2, 10, 10)
    with pytest.raises(ArgumentError, match="not reachable"):
        up(_x(1, 4, 5, 5), output_size=(12, 12))


def test_pooling_layers():
    x = _x(2, 3, 8, 8)
    np.testing.assert_array_equal(nn.MaxPool2d(2)(x).numpy(), x.numpy().reshape(2, 3, 4, 2, 4, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).numpy(), x.numpy().reshape(2, 3, 4, 2, 4, 2).mean(axis=(3, 5)),
                               rtol=1e-5, atol=1e-6)
    out, idx = nn.MaxPool2d(3, 2, 1, return_indices=True)(x)
    assert out.shape == idx.shape == (2, 3, 4, 4)
    assert nn.MaxPool2d(3, 2, ceil_mode=True)(x).shape == (2, 3, 4, 4)
    assert nn.MaxPool1d(2)(_x(2, 3, 9)).shape == (2, 3, 4)
    np.testing.assert_allclose(nn.AdaptiveAvgPool2d(1)(x).numpy()[..., 0, 0], x.numpy().mean(axis=(2, 3)),
                               rtol=1e-5, atol=1e-6)
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (2, 3, 8, 2)
    assert nn.AdaptiveMaxPool2d(2)(x).shape == (2, 3, 2, 2)


def test_batchnorm_training_updates_running_stats_with_momentum():
    bn = nn.BatchNorm2d(3, momentum=0.1)
    x = _x(8, 3, 4, 4)
    y = bn(x).numpy()
    a = x.numpy()
    mean, var = a.mean(axis=(0, 2, 3)), a.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, (a - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), atol=1e-4)
    n = a.size / 3
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * var * n / (n - 1), rtol=1e-4)
    assert bn.num_batches_tracked.item() == 1


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [_x(16, 2, seed=s) + s for s in range(3)]
    for b in batches:
        bn(b)
    np.testing.assert_allclose(bn.running_mean.numpy(), np.mean([b.numpy().mean(0) for b in batches], axis=0),
                               rtol=1e-5, atol=1e-6)
    assert bn.num_batches_tracked.item() == 3


def test_batchnorm_eval_uses_running_stats_and_modes_without_tracking():
    bn = nn.BatchNorm1d(3, affine=False)
    bn.running_mean.array[...] = [1, 2, 3]
    bn.running_var.array[...] = 4
    bn.eval()
    x = _x(5, 3, 7)
    np.testing.assert_allclose(bn(x).numpy(), (x.numpy() - [[[1], [2], [3]]]) / np.sqrt(4 + 1e-5), rtol=1e-5)
    assert bn.num_batches_tracked.item() == 0
    free = nn.BatchNorm2d(3, track_running_stats=False).eval()
    assert free.running_mean is None and "running_mean" not in free.state_dict()
    y = free(_x(4, 3, 2, 2)).numpy()
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # batch statistics even in eval
    with pytest.raises(ShapeError, match="expected 4D input"):
        nn.BatchNorm2d(3)(_x(4, 3))


def test_layer_norm_and_group_norm():
    x = _x(2, 6, 5)
    ln = nn.LayerNorm(5)
    y = ln(x).numpy()
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(y.std(-1), 1, atol=1e-3)
    assert nn.LayerNorm([6, 5], elementwise_affine=False).weight is None
    gn = nn.GroupNorm(3, 6)
    y = gn(x).numpy().reshape(2, 3, -1)
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-5)
    with pytest.raises(ArgumentError, match="divisible"):
        nn.GroupNorm(4, 6)


def test_dropout_train_and_eval():
    drop = nn.Dropout(0.5)
    x = hubkit.ones(10000)
    y = drop(x).numpy()
    assert set(np.unique(y)) <= {0.0, 2.0} and 0.45 < (y == 0).mean() < 0.55
    drop.eval()
    np.testing.assert_array_equal(drop(x).numpy(), x.numpy())
    with pytest.raises(ArgumentError, match="between 0 and 1"):
        nn.Dropout(1.5)


def test_embedding_lookup_padding_and_from_pretrained():
    emb = nn.Embedding(10, 4, padding_idx=-1)
    assert emb.padding_idx == 9 and np.all(emb.weight.numpy()[9] == 0)
    idx = hubkit.tensor([[1, 9], [3, 1]])
    out = emb(idx)
    np.testing.assert_array_equal(out.numpy(), emb.weight.numpy()[idx.numpy()])
    out.sum().backward()
    assert np.all(emb.weight.grad.numpy()[9] == 0) and np.all(emb.weight.grad.numpy()[1] == 2)
    table = hubkit.randn(5, 3)
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and np.shares_memory(frozen.weight.numpy(), table.numpy())
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    capped = nn.Embedding(4, 3, max_norm=1.0)
    capped(hubkit.tensor([0, 2]))
    norms = np.linalg.norm(capped.weight.numpy(), axis=1)
    assert norms[0] <= 1.0 + 1e-5 and norms[2] <= 1.0 + 1e-5


def test_activation_modules_match_functional():
    x = _x(3, 7)
    pairs = [
        (nn.ReLU(), F.relu(x)), (nn.LeakyReLU(0.2), F.leaky_relu(x, 0.2)), (nn.ELU(0.5), F.elu(x, 0.5)),
        (nn.Sigmoid(), F.sigmoid(x)), (nn.Tanh(), F.tanh(x)), (nn.GELU("tanh"), F.gelu(x, approximate="tanh")),
        (nn.SiLU(), F.silu(x)), (nn.Softplus(2.0, 10.0), F.softplus(x, 2.0, 10.0)),
        (nn.Softmax(dim=1), F.softmax(x, 1)), (nn.LogSoftmax(dim=0), F.log_softmax(x, 0)),
        (nn.Hardtanh(-0.5, 0.5), F.hardtanh(x, -0.5, 0.5)), (nn.ReLU6(), F.relu6(x)),
        (nn.Hardswish(), F.hardswish(x)), (nn.Hardsigmoid(), F.hardsigmoid(x)),
    ]
    for module, expected in pairs:
        np.testing.assert_allclose(module(x).numpy(), expected.numpy(), err_msg=repr(module))


def test_multihead_attention_shapes_and_masking():
    mha = nn.MultiheadAttention(8, 2, batch_first=True)
    q, kv = _x(3, 4, 8), _x(3, 6, 8, seed=1)
    out, w = mha(q, kv, kv)
    assert out.shape == (3, 4, 8) and w.shape == (3, 4, 6)
    np.testing.assert_allclose(w.numpy().sum(-1), 1, rtol=1e-5)
    pad = np.zeros((3, 6), bool)
    pad[:, 4:] = True
    _, w = mha(q, kv, kv, key_padding_mask=hubkit.from_numpy(pad), average_attn_weights=False)
    assert w.shape == (3, 2, 4, 6) and np.all(w.numpy()[..., 4:] == 0)
    x = _x(3, 5, 8)
    _, w = mha(x, x, x, is_causal=True)
    assert np.all(np.triu(w.numpy()[0], 1) == 0)
    out, w = mha(_x(4, 8), _x(6, 8), _x(6, 8), need_weights=False)
    assert out.shape == (4, 8) and w is None
    with pytest.raises(ArgumentError, match="divisible"):
        nn.MultiheadAttention(10, 3)


def test_multihead_attention_gradients_reach_every_parameter():
    mha = nn.MultiheadAttention(8, 2, kdim=6, vdim=4, add_bias_kv=True, add_zero_attn=True)
    assert mha.in_proj_weight is None and mha.q_proj_weight.shape == (8, 8)
    out, _ = mha(_x(5, 2, 8), _x(7, 2, 6), _x(7, 2, 4))
    out.sum().backward()
    for name, p in mha.named_parameters():
        assert p.grad is not None and np.any(p.grad.numpy() != 0), name


# ---------------------------------------------------------------- parity with torch


def _copy_from_torch(ours: nn.Module, theirs) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def _compare(ours, theirs, inputs: list[np.ndarray], *, train: bool = False, call=None, rtol=1e-4, atol=1e-5):
    import torch

    _copy_from_torch(ours, theirs)
    ours.train(train)
    theirs.train(train)
    hx = [hubkit.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f") for a in inputs]
    tx = [torch.from_numpy(a.copy()).requires_grad_(a.dtype.kind == "f") for a in inputs]
    call = call or (lambda m, xs: m(*xs))
    ho, to = call(ours, hx), call(theirs, tx)
    ho = ho[0] if isinstance(ho, tuple) else ho
    to = to[0] if isinstance(to, tuple) else to
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


def _rand(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


LAYER_CASES = [
    ("Linear", (7, 5), {}, [(3, 7)]),
    ("Conv1d", (4, 6, 3), {"stride": 2, "padding": 1, "dilation": 2}, [(2, 4, 11)]),
    ("Conv2d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, [(2, 4, 9, 9)]),
    ("Conv2d", (3, 5, (3, 2)), {"padding": "same", "padding_mode": "reflect"}, [(2, 3, 7, 8)]),
    ("Conv2d", (3, 5, 3), {"padding": 1, "padding_mode": "circular", "bias": False}, [(2, 3, 6, 6)]),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1}, [(2, 4, 5, 5)]),
    ("BatchNorm1d", (5,), {}, [(6, 5, 3)]),
    ("BatchNorm2d", (5,), {"momentum": None}, [(4, 5, 3, 3)]),
    ("LayerNorm", ((4, 5),), {}, [(3, 4, 5)]),
    ("GroupNorm", (2, 6), {}, [(3, 6, 4)]),
    ("MaxPool2d", (3, 2, 1), {"ceil_mode": True}, [(2, 3, 8, 8)]),
    ("AvgPool2d", (3, 2, 1), {"count_include_pad": False}, [(2, 3, 8, 8)]),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, [(2, 3, 7, 5)]),
    ("AdaptiveMaxPool2d", (3,), {}, [(2, 3, 7, 5)]),
    ("MaxPool1d", (3, 2), {}, [(2, 3, 9)]),
]


@pytest.mark.parity
@pytest.mark.parametrize("name,args,kwargs,shapes", LAYER_CASES)
@pytest.mark.parametrize("train", [True, False])
def test_layers_match_torch_forward_and_backward(name, args, kwargs, shapes, train):
    import torch

    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    if isinstance(theirs, torch.nn.modules.batchnorm._BatchNorm):
        theirs.running_mean.uniform_(-1, 1)
        theirs.running_var.uniform_(0.5, 2)
    ours = getattr(nn, name)(*args, **kwargs)
    _compare(ours, theirs, [_rand(*s, seed=i) for i, s in enumerate(shapes)], train=train)
    assert repr(ours) == repr(theirs)


@pytest.mark.parity
def test_embedding_and_activations_match_torch():
    import torch

    theirs = torch.nn.Embedding(10, 4, padding_idx=2)
    ours = nn.Embedding(10, 4, padding_idx=2)
    idx = np.array([[1, 2, 3], [2, 2, 9]], np.int64)
    _compare(ours, theirs, [idx])
    assert repr(ours) == repr(theirs)
    for name, args in [("ReLU", ()), ("LeakyReLU", (0.1,)), ("ELU", (0.7,)), ("GELU", ()), ("SiLU", ()),
                       ("Softplus", (1.5, 5.0)), ("Softmax", (1,)), ("LogSoftmax", (-1,)), ("Hardtanh", (-2.0, 1.0)),
                       ("ReLU6", ()), ("Hardswish", ()), ("Hardsigmoid", ()), ("Sigmoid", ()), ("Tanh", ())]:
        m, t = getattr(nn, name)(*args), getattr(torch.nn, name)(*args)
        _compare(m, t, [_rand(4, 9) * 4])
        assert repr(m) == repr(t)


MHA_CASES = [
    ({"batch_first": True}, {}),
    ({}, {"average_attn_weights": False}),
    ({"kdim": 6, "vdim": 5}, {}),
    ({"add_bias_kv": True, "add_zero_attn": True}, {}),
    ({"bias": False, "batch_first": True}, {"mask": True}),
]


@pytest.mark.parity
@pytest.mark.parametrize("ctor,call_kwargs", MHA_CASES)
def test_multihead_attention_matches_torch(ctor, call_kwargs):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(8, 2, **ctor)
    ours = nn.MultiheadAttention(8, 2, **ctor)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    batch_first = ctor.get("batch_first", False)
    lq, s, n = 4, 6, 3
    q = _rand(*((n, lq, 8) if batch_first else (lq, n, 8)))
    k = _rand(*((n, s, ctor.get("kdim", 8)) if batch_first else (s, n, ctor.get("kdim", 8))), seed=1)
    v = _rand(*((n, s, ctor.get("vdim", 8)) if batch_first else (s, n, ctor.get("vdim", 8))), seed=2)
    extra = {k2: v2 for k2, v2 in call_kwargs.items() if k2 != "mask"}
    if call_kwargs.get("mask"):
        attn = np.triu(np.ones((lq, s), bool), 2)
        pad = np.zeros((n, s), bool)
        pad[0, -1] = True

        def call(m, xs):
            lib = torch if isinstance(xs[0], torch.Tensor) else hubkit
            return m(*xs, attn_mask=lib.from_numpy(attn), key_padding_mask=lib.from_numpy(pad), **extra)
    else:
        def call(m, xs):
            return m(*xs, **extra)

    _compare(ours, theirs, [q, k, v], call=call)
    _copy_from_torch(ours, theirs)
    _, w_ours = call(ours, [hubkit.from_numpy(a) for a in (q, k, v)])
    _, w_theirs = call(theirs, [torch.from_numpy(a) for a in (q, k, v)])
    np.testing.assert_allclose(w_ours.numpy(), w_theirs.detach().numpy(), rtol=1e-4, atol=1e-6)
