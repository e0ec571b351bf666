"""nn.Transformer and its layers: torch parity on copied weights (masks, padding, pre/post-LN, batch_first),
state dicts by key, reprs, float64 gradcheck, errors, and pytorch/examples' word-level language model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from opcheck import gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError

# torch warns about bool/float mask mixes (which both libraries support) and about its nested-tensor fast path
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched:UserWarning"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True:UserWarning")]  # fmt: skip

E, HEADS, FF = 8, 2, 16  # d_model, nhead, dim_feedforward: small enough for a 2-core machine


def _rand(*shape: int, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _seq(length: int, batch: int, batch_first: bool, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return _rand(*((batch, length, E) if batch_first else (length, batch, E)), seed=seed, dtype=dtype)


def _causal(size: int) -> np.ndarray:
    return np.triu(np.full((size, size), -np.inf, np.float32), 1)


def _activation(spec: str, lib_nn, lib_f):
    """The same activation for torch or hubkit: a legacy string, the functional op, or a module."""
    return {"relu": "relu", "gelu": "gelu", "F.gelu": lib_f.gelu, "GELU(tanh)": lib_nn.GELU("tanh")}[spec]


def _build(name: str, *args, activation: str | None = None, dtype=np.float32, **kwargs):
    """(torch module, hubkit module with torch's weights copied in by key)."""
    import torch

    torch.manual_seed(0)
    t_kwargs, h_kwargs = dict(kwargs), dict(kwargs)
    if activation is not None:
        t_kwargs["activation"] = _activation(activation, torch.nn, torch.nn.functional)
        h_kwargs["activation"] = _activation(activation, nn, F)
    theirs = getattr(torch.nn, name)(*args, **t_kwargs)
    ours = getattr(nn, name)(*args, **h_kwargs, dtype=dtype)
    if dtype == np.float64:
        theirs = theirs.double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()}, strict=True)
    return theirs, ours


def _run_both(theirs, ours, inputs: list[np.ndarray], masks: dict[str, object], *, train: bool,
              rtol: float, atol: float) -> None:
    """Forward both with the same inputs and masks; compare outputs, input gradients and parameter gradients."""
    import torch

    theirs.train(train)
    ours.train(train)
    tx = [torch.from_numpy(a.copy()).requires_grad_() for a in inputs]
    hx = [hubkit.from_numpy(a.copy()).requires_grad_() for a in inputs]
    t_masks = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in masks.items()}
    h_masks = {k: hubkit.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in masks.items()}
    to, ho = theirs(*tx, **t_masks), ours(*hx, **h_masks)
    np.testing.assert_allclose(ho.numpy(), to.detach().numpy(), rtol=rtol, atol=atol)
    g = np.random.default_rng(9).standard_normal(tuple(to.shape)).astype(inputs[0].dtype)
    to.backward(torch.from_numpy(g))
    ho.backward(hubkit.from_numpy(g))
    for a, b in zip(hx, tx):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=rtol, atol=atol)
    t_params = dict(theirs.named_parameters())
    h_params = dict(ours.named_parameters())
    assert list(h_params) == list(t_params)
    for name, p in h_params.items():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), rtol=rtol, atol=atol, err_msg=name)


# ---------------------------------------------------------------- parity with torch


@pytest.mark.parity
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch_in_eval(norm_first, batch_first, activation):
    theirs, ours = _build("TransformerEncoderLayer", E, HEADS, FF, activation=activation, batch_first=batch_first,
                          norm_first=norm_first)  # fmt: skip
    assert repr(ours) == repr(theirs)
    pad = np.zeros((3, 5), bool)
    pad[1, 3:] = True
    masks = {"src_mask": _causal(5), "src_key_padding_mask": pad}
    _run_both(theirs, ours, [_seq(5, 3, batch_first)], masks, train=False, rtol=1e-4, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("activation", ["F.gelu", "GELU(tanh)"])
def test_encoder_layer_with_callable_activation_matches_torch(activation):
    theirs, ours = _build("TransformerEncoderLayer", E, HEADS, FF, activation=activation, dropout=0.0,
                          layer_norm_eps=1e-6, bias=False)  # fmt: skip
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _run_both(theirs, ours, [_seq(4, 2, False)], {}, train=True, rtol=1e-4, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_matches_torch_in_eval(norm_first, batch_first):
    theirs, ours = _build("TransformerDecoderLayer", E, HEADS, FF, activation="gelu", batch_first=batch_first,
                          norm_first=norm_first)  # fmt: skip
    assert repr(ours) == repr(theirs)
    tgt_pad = np.zeros((3, 4), bool)
    tgt_pad[2, 3] = True
    mem_pad = np.zeros((3, 6), bool)
    mem_pad[0, 4:] = True
    memory_mask = _rand(4, 6, seed=7)  # a float mask is added to the scores
    masks = {"tgt_mask": _causal(4), "memory_mask": memory_mask, "tgt_key_padding_mask": tgt_pad,
             "memory_key_padding_mask": mem_pad}  # fmt: skip
    inputs = [_seq(4, 3, batch_first), _seq(6, 3, batch_first, seed=1)]
    _run_both(theirs, ours, inputs, masks, train=False, rtol=1e-4, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("batch_first", [False, True])
def test_full_transformer_matches_torch_with_every_mask(batch_first):
    # float64 keeps two 2-layer stacks comparable at a tight tolerance
    theirs, ours = _build("Transformer", E, HEADS, 2, 2, FF, dropout=0.0, batch_first=batch_first, dtype=np.float64)
    s, t, n = 6, 5, 3
    src_pad = np.zeros((n, s), bool)
    src_pad[1, 4:] = True
    tgt_pad = np.zeros((n, t), bool)
    tgt_pad[2, 4] = True
    src_mask = np.zeros((s, s), bool)
    src_mask[0, 5] = True  # bool: True may not be attended to
    memory_mask = _rand(n * HEADS, t, s, seed=4, dtype=np.float64)  # a per-head float mask
    masks = {
        "src_mask": src_mask, "tgt_mask": nn.Transformer.generate_square_subsequent_mask(t, dtype=hubkit.float64)
        .numpy(), "memory_mask": memory_mask, "src_key_padding_mask": src_pad, "tgt_key_padding_mask": tgt_pad,
        "memory_key_padding_mask": src_pad,
    }  # fmt: skip
    inputs = [_seq(s, n, batch_first, dtype=np.float64), _seq(t, n, batch_first, seed=1, dtype=np.float64)]
    _run_both(theirs, ours, inputs, masks, train=True, rtol=1e-9, atol=1e-10)


@pytest.mark.parity
def test_unbatched_transformer_matches_torch():
    theirs, ours = _build("Transformer", E, HEADS, 1, 1, FF, dropout=0.0, norm_first=True)
    pad = np.array([False, False, False, True])
    masks = {"src_key_padding_mask": pad, "memory_key_padding_mask": pad, "tgt_mask": _causal(3)}
    _run_both(theirs, ours, [_rand(4, E), _rand(3, E, seed=1)], masks, train=False, rtol=1e-4, atol=1e-5)


@pytest.mark.parity
def test_encoder_stack_with_causal_hint_matches_torch():
    import torch

    torch.manual_seed(0)
    t_layer = torch.nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0)
    theirs = torch.nn.TransformerEncoder(t_layer, 3, norm=torch.nn.LayerNorm(E), enable_nested_tensor=False)
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0), 3, norm=nn.LayerNorm(E))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    x = _seq(5, 2, False)
    # torch detects the causal mask and runs SDPA's is_causal path; hubkit applies the mask: same numbers
    for is_causal in (None, True):
        _run_both(theirs, ours, [x], {"mask": _causal(5), "is_causal": is_causal}, train=True, rtol=1e-4,
                  atol=1e-5)  # fmt: skip
        theirs.zero_grad()
        ours.zero_grad()


@pytest.mark.parity
def test_fully_padded_sequence_gives_finite_outputs_like_torch():
    theirs, ours = _build("TransformerEncoderLayer", E, HEADS, FF, dropout=0.0)
    pad = np.zeros((2, 4), bool)
    pad[1] = True  # the second sequence has nothing to attend to
    _run_both(theirs, ours, [_seq(4, 2, False)], {"src_key_padding_mask": pad}, train=True, rtol=1e-4, atol=1e-5)
    for p in ours.parameters():
        assert np.all(np.isfinite(p.grad.numpy()))


@pytest.mark.parity
def test_torch_state_dict_loads_by_key_and_reprs_match():
    import torch

    theirs = torch.nn.Transformer(16, 4, 2, 1, 32, activation="gelu", norm_first=True, batch_first=True)
    ours = nn.Transformer(16, 4, 2, 1, 32, activation="gelu", norm_first=True, batch_first=True)
    assert repr(ours) == repr(theirs)
    state = {k: v.numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    assert "decoder.layers.0.multihead_attn.out_proj.weight" in state and "encoder.norm.bias" in state
    result = ours.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    for k, v in ours.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k])
    layer = torch.nn.TransformerDecoderLayer(16, 4, 32, activation=torch.nn.GELU())
    assert repr(nn.TransformerDecoderLayer(16, 4, 32, activation=nn.GELU())) == repr(layer)


@pytest.mark.parity
def test_generate_square_subsequent_mask_matches_torch():
    import torch

    ours = nn.Transformer.generate_square_subsequent_mask(5)
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(5)
    assert ours.dtype == hubkit.float32
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


# ---------------------------------------------------------------- behaviour without torch


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradcheck_float64(norm_first):
    """Input and float-mask gradients of one small layer against central differences."""
    hubkit.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, activation="gelu", norm_first=norm_first,
                                       dtype=hubkit.float64)  # fmt: skip
    pad = hubkit.tensor(np.array([[False, False, True], [False, False, False]]))
    gradcheck(lambda x, m: layer(x, src_mask=m, src_key_padding_mask=pad),
              [_rand(3, 2, E, dtype=np.float64), _rand(3, 3, seed=1, dtype=np.float64)])  # fmt: skip


def test_parameter_gradients_of_encoder_layer_match_central_differences():
    hubkit.manual_seed(1)
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0, dtype=hubkit.float64)
    x = hubkit.tensor(_rand(3, 2, E, dtype=np.float64))
    proj = _rand(3, 2, E, seed=2, dtype=np.float64)

    def loss() -> float:
        with hubkit.no_grad():
            return float((layer(x).numpy() * proj).sum())

    (layer(x) * hubkit.tensor(proj)).sum().backward()
    eps = 1e-6
    for name in ("self_attn.in_proj_weight", "self_attn.out_proj.bias", "linear1.weight", "norm2.weight"):
        p = layer.get_parameter(name)
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            old = p.array[idx]
            p.array[idx] = old + eps
            up = loss()
            p.array[idx] = old - eps
            down = loss()
            p.array[idx] = old
            np.testing.assert_allclose(p.grad.numpy()[idx], (up - down) / (2 * eps), rtol=1e-5, atol=1e-8,
                                       err_msg=name)  # fmt: skip


def test_defaults_and_submodule_names_are_torchs():
    model = nn.Transformer(dropout=0.0)
    assert (model.d_model, model.nhead, model.batch_first) == (512, 8, False)
    assert len(model.encoder.layers) == 6 and len(model.decoder.layers) == 6
    layer = model.encoder.layers[0]
    assert layer.linear1.out_features == 2048 and layer.activation is F.relu and not layer.norm_first
    assert layer.norm1.eps == 1e-5 and nn.TransformerEncoderLayer(8, 2).dropout.p == 0.1
    names = {n for n, _ in model.named_modules()}
    assert {"encoder.layers.5.self_attn", "decoder.layers.0.multihead_attn", "decoder.layers.0.norm3",
            "decoder.layers.0.dropout3", "encoder.norm", "decoder.norm"} <= names  # fmt: skip
    # Xavier-uniform on every matrix: bounded by sqrt(6 / (fan_in + fan_out))
    w = model.encoder.layers[0].linear1.weight.numpy()
    assert np.abs(w).max() <= math.sqrt(6 / (512 + 2048)) and np.abs(w).max() > 0.9 * math.sqrt(6 / (512 + 2048))


def test_encoder_deep_copies_the_layer():
    layer = nn.TransformerEncoderLayer(E, HEADS, FF)
    enc = nn.TransformerEncoder(layer, 3, enable_nested_tensor=True)
    assert enc.enable_nested_tensor and not enc.use_nested_tensor and enc.num_layers == 3
    assert all(m is not layer for m in enc.layers)
    np.testing.assert_array_equal(enc.layers[0].linear1.weight.numpy(), layer.linear1.weight.numpy())
    with hubkit.no_grad():
        enc.layers[0].linear1.weight.array[...] = 0.0
    assert np.any(enc.layers[1].linear1.weight.numpy() != 0) and np.any(layer.linear1.weight.numpy() != 0)
    assert len({id(p) for p in enc.parameters()}) == 3 * len(list(layer.parameters()))
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, HEADS, FF), 2)
    assert dec.norm is None and dec.layers[0].self_attn is not dec.layers[1].self_attn


def test_custom_encoder_and_decoder_are_used():
    enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0), 1)
    dec = nn.TransformerDecoder(nn.TransformerDecoderLayer(E, HEADS, FF, dropout=0.0), 1)
    model = nn.Transformer(E, HEADS, custom_encoder=enc, custom_decoder=dec)
    assert model.encoder is enc and model.decoder is dec
    src, tgt = hubkit.tensor(_rand(5, 2, E)), hubkit.tensor(_rand(3, 2, E, seed=1))
    np.testing.assert_allclose(model(src, tgt).numpy(), dec(tgt, enc(src)).numpy(), rtol=1e-6)


def test_dropout_is_active_in_train_mode_only():
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.5)
    x = hubkit.tensor(_rand(4, 2, E))
    assert not np.allclose(layer(x).numpy(), layer(x).numpy())
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), layer(x).numpy())


def test_key_padding_hides_padded_keys():
    """Changing what sits at padded source positions leaves every other position's output unchanged."""
    model = nn.Transformer(E, HEADS, 1, 1, FF, dropout=0.0, batch_first=True)
    src, tgt = _rand(2, 5, E), _rand(2, 3, E, seed=1)
    pad = np.zeros((2, 5), bool)
    pad[0, 3:] = True
    other = src.copy()
    other[0, 3:] = 100.0
    kw = {"src_key_padding_mask": hubkit.from_numpy(pad), "memory_key_padding_mask": hubkit.from_numpy(pad)}
    a = model(hubkit.from_numpy(src), hubkit.from_numpy(tgt), **kw).numpy()
    b = model(hubkit.from_numpy(other), hubkit.from_numpy(tgt), **kw).numpy()
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_causal_flag_without_mask_builds_the_causal_mask():
    hubkit.manual_seed(0)
    layer = nn.TransformerEncoderLayer(E, HEADS, FF, dropout=0.0)
    x = hubkit.tensor(_rand(5, 2, E))
    flagged = layer(x, is_causal=True).numpy()
    masked = layer(x, src_mask=nn.Transformer.generate_square_subsequent_mask(5)).numpy()
    np.testing.assert_allclose(flagged, masked, rtol=1e-6)
    assert not np.allclose(flagged, layer(x).numpy())


def test_errors():
    with pytest.raises(ArgumentError, match="divisible by nhead"):
        nn.TransformerEncoderLayer(10, 3)
    with pytest.raises(ArgumentError, match="divisible by nhead"):
        nn.Transformer(d_model=12, nhead=5)
    with pytest.raises(ArgumentError, match="relu"):
        nn.TransformerDecoderLayer(E, HEADS, activation="swish")
    with pytest.raises(ArgumentError, match="num_layers"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(E, HEADS), -1)
    model = nn.Transformer(E, HEADS, 1, 1, FF)
    src, tgt = hubkit.randn(5, 2, E), hubkit.randn(3, 2, E)
    with pytest.raises(ShapeError, match="attn_mask has shape"):
        model(src, tgt, tgt_mask=hubkit.zeros(3, 4))
    with pytest.raises(ShapeError, match="attn_mask has shape"):
        model(src, tgt, src_mask=hubkit.zeros(3 * HEADS, 5, 5))  # the per-head form needs N * nhead = 4
    with pytest.raises(ShapeError, match="attn_mask has shape"):
        model(src, tgt, memory_mask=hubkit.zeros(1, 5))
    with pytest.raises(ShapeError, match="key_padding_mask has shape"):
        model(src, tgt, src_key_padding_mask=hubkit.zeros(5, 2, dtype=hubkit.bool_))
    with pytest.raises(ShapeError, match="batch size"):
        model(src, hubkit.randn(3, 4, E))
    with pytest.raises(ShapeError, match="d_model=8"):
        model(hubkit.randn(5, 2, 6), hubkit.randn(3, 2, 6))
    with pytest.raises(ShapeError, match="must both be 3-d"):
        model(src, hubkit.randn(3, E))
    with pytest.raises(ArgumentError, match="bool or floating"):
        model(src, tgt, tgt_mask=hubkit.zeros(3, 3, dtype=hubkit.int64))


# ---------------------------------------------------------------- MultiheadAttention paths the layers take


@pytest.mark.parity
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("mask_kinds", [("bool", "bool"), ("float", "bool"), ("bool", "float"), ("float", None),
                                        (None, "float")])  # fmt: skip
def test_multihead_attention_mask_combinations_match_torch(need_weights, mask_kinds):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, HEADS, batch_first=True)
    ours = nn.MultiheadAttention(E, HEADS, batch_first=True)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(3)
    attn_bool = rng.random((4, 6)) < 0.3
    attn_bool[:, 0] = False
    pad_bool = np.zeros((3, 6), bool)
    pad_bool[1, 4:] = True
    attn = {"bool": attn_bool, "float": np.where(attn_bool, -np.inf, rng.standard_normal((4, 6))).astype(np.float32),
            None: None}[mask_kinds[0]]  # fmt: skip
    pad = {"bool": pad_bool, "float": np.where(pad_bool, -1e9, 0.0).astype(np.float32), None: None}[mask_kinds[1]]
    q, kv = _rand(3, 4, E), _rand(3, 6, E, seed=1)

    def call(m, lib):
        def conv(a):
            return None if a is None else lib.from_numpy(a)

        x, y = lib.from_numpy(q.copy()).requires_grad_(), lib.from_numpy(kv.copy()).requires_grad_()
        out, w = m(x, y, y, attn_mask=conv(attn), key_padding_mask=conv(pad), need_weights=need_weights)
        (out * lib.from_numpy(_rand(3, 4, E, seed=5))).sum().backward()
        return out, w, x.grad, y.grad

    t_out, t_w, t_gq, t_gkv = call(theirs, torch)
    h_out, h_w, h_gq, h_gkv = call(ours, hubkit)
    for a, b in [(h_out, t_out), (h_gq, t_gq), (h_gkv, t_gkv)] + ([(h_w, t_w)] if need_weights else []):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-4, atol=1e-5)
    assert (h_w is None) == (not need_weights)


@pytest.mark.parity
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the NaN torch gives too
def test_multihead_attention_fully_masked_query_matches_torch():
    """torch's need_weights=False path (SDPA) gives zeros for a query with no key; need_weights=True gives NaN."""
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, HEADS)
    ours = nn.MultiheadAttention(E, HEADS)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = _rand(3, 2, E)
    mask = np.zeros((3, 3), bool)
    mask[1] = True
    for need_weights in (False, True):
        t = theirs(*[torch.from_numpy(x)] * 3, attn_mask=torch.from_numpy(mask), need_weights=need_weights)[0]
        h = ours(*[hubkit.from_numpy(x)] * 3, attn_mask=hubkit.from_numpy(mask), need_weights=need_weights)[0]
        np.testing.assert_allclose(h.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)
        assert np.isnan(h.numpy()[1]).all() == need_weights


@pytest.mark.parity
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("extra_keys", [{}, {"add_bias_kv": True, "add_zero_attn": True}])
def test_multihead_attention_learned_float_mask_gets_torchs_gradient(need_weights, extra_keys):
    import torch

    torch.manual_seed(0)
    theirs = torch.nn.MultiheadAttention(E, HEADS, **extra_keys)
    ours = nn.MultiheadAttention(E, HEADS, **extra_keys)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x, bias = _rand(4, 2, E), _rand(2 * HEADS, 4, 4, seed=1)  # a per-head additive bias, learned
    pad = np.array([[False, False, False, True], [False] * 4])
    grads = []
    for m, lib in ((theirs, torch), (ours, hubkit)):
        xt, bt = lib.from_numpy(x.copy()).requires_grad_(), lib.from_numpy(bias.copy()).requires_grad_()
        out = m(xt, xt, xt, attn_mask=bt, key_padding_mask=lib.from_numpy(pad), need_weights=need_weights)[0]
        (out * lib.from_numpy(_rand(4, 2, E, seed=2))).sum().backward()
        grads.append((out.detach().numpy(), xt.grad.numpy(), bt.grad.numpy()))
    for a, b in zip(grads[1], grads[0]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert np.all(grads[1][2][:HEADS, :, 3] == 0)  # a padded key's bias has no effect, so no gradient


def test_multihead_attention_need_weights_paths_agree():
    hubkit.manual_seed(0)
    mha = nn.MultiheadAttention(E, HEADS)
    x = hubkit.tensor(_rand(5, 2, E))
    pad = hubkit.tensor(np.array([[False] * 5, [False, False, False, True, True]]))
    mask = nn.Transformer.generate_square_subsequent_mask(5)
    a = mha(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=True)[0]
    b = mha(x, x, x, attn_mask=mask, key_padding_mask=pad, need_weights=False)[0]
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- pytorch/examples' word_language_model


def _word_language_model(lib, nn_mod, f_mod):
    """pytorch/examples' word_language_model TransformerModel and PositionalEncoding, written against whichever
    library is passed (torch or hubkit), so the same code builds both."""

    class PositionalEncoding(nn_mod.Module):
        def __init__(self, d_model, dropout=0.1, max_len=5000):
            super().__init__()
            self.dropout = nn_mod.Dropout(p=dropout)
            pe = lib.zeros(max_len, d_model)
            position = lib.arange(0, max_len, dtype=lib.float32).unsqueeze(1)
            div_term = lib.exp(lib.arange(0, d_model, 2).float() * (-math.log(10000.0) / d_model))
            angle = (position * div_term).numpy()
            pe[:, 0::2] = lib.from_numpy(np.sin(angle))
            pe[:, 1::2] = lib.from_numpy(np.cos(angle))
            pe = pe.unsqueeze(0).transpose(0, 1)
            self.register_buffer("pe", pe)

        def forward(self, x):
            x = x + self.pe[: x.size(0), :]
            return self.dropout(x)

    class TransformerModel(nn_mod.Transformer):
        def __init__(self, ntoken, ninp, nhead, nhid, nlayers, dropout=0.5):
            super().__init__(d_model=ninp, nhead=nhead, dim_feedforward=nhid, num_encoder_layers=nlayers)
            self.model_type = "Transformer"
            self.src_mask = None
            self.pos_encoder = PositionalEncoding(ninp, dropout)
            self.input_emb = nn_mod.Embedding(ntoken, ninp)
            self.ninp = ninp
            self.decoder = nn_mod.Linear(ninp, ntoken)
            self.init_weights()

        def init_weights(self):
            initrange = 0.1
            nn_mod.init.uniform_(self.input_emb.weight, -initrange, initrange)
            nn_mod.init.zeros_(self.decoder.bias)
            nn_mod.init.uniform_(self.decoder.weight, -initrange, initrange)

        def forward(self, src, has_mask=True):
            if has_mask:
                device = src.device
                if self.src_mask is None or self.src_mask.size(0) != len(src):
                    self.src_mask = nn_mod.Transformer.generate_square_subsequent_mask(len(src)).to(device)
            else:
                self.src_mask = None
            src = self.input_emb(src) * math.sqrt(self.ninp)
            src = self.pos_encoder(src)
            output = self.encoder(src, mask=self.src_mask)
            output = self.decoder(output)
            return f_mod.log_softmax(output, dim=-1)

    return TransformerModel


def test_word_language_model_trains_on_hubkit():
    hubkit.manual_seed(0)
    ntokens = 20
    model = _word_language_model(hubkit, nn, F)(ntokens, 16, 2, 32, 2, dropout=0.2)
    assert "pos_encoder.pe" in model.state_dict() and model.pos_encoder.pe.shape == (5000, 1, 16)
    assert not any(k.startswith("decoder.layers") for k in model.state_dict())  # the Linear replaced the stack
    data = hubkit.tensor(np.random.default_rng(0).integers(0, ntokens, (9, 4)))  # (seq, batch) of token ids
    inputs, targets = data[:-1], data[1:].reshape(-1)
    optimizer = hubkit.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        output = model(inputs)
        assert output.shape == (8, 4, ntokens)
        loss = F.nll_loss(output.view(-1, ntokens), targets)
        loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and np.all(np.isfinite(p.grad.numpy())), name
        nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.eval()
    # causal: the prediction at step i does not depend on later tokens
    changed = inputs.numpy().copy()
    changed[5:] = (changed[5:] + 1) % ntokens
    a = model(inputs).numpy()
    b = model(hubkit.tensor(changed)).numpy()
    np.testing.assert_allclose(a[:5], b[:5], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[5:], b[5:])


@pytest.mark.parity
def test_word_language_model_matches_torch():
    import torch

    torch.manual_seed(0)
    theirs = _word_language_model(torch, torch.nn, torch.nn.functional)(20, 16, 2, 32, 2).eval()
    ours = _word_language_model(hubkit, nn, F)(20, 16, 2, 32, 2).eval()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()}, strict=True)
    ids = np.random.default_rng(1).integers(0, 20, (7, 3))
    t = theirs(torch.from_numpy(ids))
    h = ours(hubkit.from_numpy(ids))
    np.testing.assert_allclose(h.numpy(), t.detach().numpy(), rtol=1e-4, atol=1e-5)
