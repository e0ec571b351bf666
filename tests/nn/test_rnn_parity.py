"""RNN, LSTM, GRU, their cells and nn.utils.rnn against PyTorch, on weights loaded from torch's own state dict:
outputs, final states and the gradients of the input, the initial states and every parameter."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.nn.utils import rnn as hrnn

pytestmark = [pytest.mark.parity,
              pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")]

RNG = np.random.default_rng(5)
TOL = {np.float64: dict(rtol=1e-9, atol=1e-11), np.float32: dict(rtol=2e-4, atol=2e-5)}


def _pair(name, kw, dtype):
    """A torch module and a hubkit module holding the same weights (copied by loading torch's state dict)."""
    import torch

    torch.manual_seed(0)
    tm = getattr(torch.nn, name)(**kw).to(getattr(torch, np.dtype(dtype).name))
    hm = getattr(nn, name)(**kw).to(dtype)
    hm.load_state_dict(tm.state_dict())
    return tm, hm


def _as_tuple(h):
    return h if isinstance(h, tuple) else (h,)


def _compare(tm, hm, t_out, h_out, t_leaves, h_leaves, dtype):
    """Outputs, then a random projection of every output backpropagated on both sides; compare all gradients."""
    import torch

    tol = TOL[dtype]
    t_outs = [t_out[0].data if hasattr(t_out[0], "batch_sizes") else t_out[0], *_as_tuple(t_out[1])]
    h_outs = [h_out[0].data if hasattr(h_out[0], "batch_sizes") else h_out[0], *_as_tuple(h_out[1])]
    assert len(t_outs) == len(h_outs)
    loss_t, loss_h = 0, 0
    for t, h in zip(t_outs, h_outs):
        assert tuple(t.shape) == tuple(h.shape)
        np.testing.assert_allclose(h.numpy(), t.detach().numpy(), **tol)
        r = RNG.standard_normal(h.shape).astype(dtype)
        loss_t = loss_t + (t * torch.from_numpy(r)).sum()
        loss_h = loss_h + (h * hubkit.from_numpy(r)).sum()
    loss_t.backward()
    loss_h.backward()
    for t, h in zip(t_leaves, h_leaves):
        np.testing.assert_allclose(h.grad.numpy(), t.grad.numpy(), **tol)
    t_params = dict(tm.named_parameters())
    for name, p in hm.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), t_params[name].grad.numpy(), err_msg=name, **tol)


def _leaf(array):
    import torch

    return torch.tensor(array, requires_grad=True), hubkit.tensor(array, requires_grad=True)


CONFIGS = [
    ("RNN", dict(nonlinearity="tanh")),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True)),
    ("GRU", dict(batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False)),
    ("LSTM", dict(num_layers=2)),
    ("LSTM", dict(bidirectional=True, batch_first=True)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True)),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name, kw", CONFIGS)
def test_layers_match_torch(name, kw, dtype):
    tm, hm = _pair(name, dict(input_size=4, hidden_size=5, **kw), dtype)
    batch, steps = 3, 6
    shape = (batch, steps, 4) if kw.get("batch_first") else (steps, batch, 4)
    tx, hx = _leaf(RNG.standard_normal(shape).astype(dtype))
    states = (kw.get("num_layers", 1) * (2 if kw.get("bidirectional") else 1), batch)
    th0, hh0 = _leaf(RNG.standard_normal(states + (kw.get("proj_size") or 5,)).astype(dtype))
    if name == "LSTM":
        tc0, hc0 = _leaf(RNG.standard_normal(states + (5,)).astype(dtype))
        _compare(tm, hm, tm(tx, (th0, tc0)), hm(hx, (hh0, hc0)), [tx, th0, tc0], [hx, hh0, hc0], dtype)
    else:
        _compare(tm, hm, tm(tx, th0), hm(hx, hh0), [tx, th0], [hx, hh0], dtype)


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("name, kw", [("LSTM", dict(proj_size=2)), ("GRU", {}), ("RNN", {})])
def test_packed_unsorted_lengths_match_torch(name, kw, with_hx):
    import torch

    dtype = np.float64
    tm, hm = _pair(name, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=True, **kw),
                   dtype)
    lengths = [3, 6, 1, 4]
    tx, hx = _leaf(RNG.standard_normal((4, 6, 3)))
    t_packed = torch.nn.utils.rnn.pack_padded_sequence(tx, lengths, batch_first=True, enforce_sorted=False)
    h_packed = hrnn.pack_padded_sequence(hx, lengths, batch_first=True, enforce_sorted=False)
    assert h_packed.batch_sizes.tolist() == t_packed.batch_sizes.tolist()
    assert h_packed.sorted_indices.tolist() == t_packed.sorted_indices.tolist()
    t_leaves, h_leaves, t_hx, h_hx = [tx], [hx], None, None
    if with_hx:
        th0, hh0 = _leaf(RNG.standard_normal((4, 4, kw.get("proj_size") or 4)))
        t_leaves.append(th0)
        h_leaves.append(hh0)
        t_hx, h_hx = th0, hh0
        if name == "LSTM":
            tc0, hc0 = _leaf(RNG.standard_normal((4, 4, 4)))
            t_leaves.append(tc0)
            h_leaves.append(hc0)
            t_hx, h_hx = (th0, tc0), (hh0, hc0)
    t_out, h_out = tm(t_packed, t_hx), hm(h_packed, h_hx)
    assert isinstance(h_out[0], hrnn.PackedSequence)
    assert h_out[0].unsorted_indices.tolist() == t_out[0].unsorted_indices.tolist()
    t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(t_out[0], batch_first=True)
    h_pad, h_len = hrnn.pad_packed_sequence(h_out[0], batch_first=True)
    np.testing.assert_allclose(h_pad.numpy(), t_pad.detach().numpy(), **TOL[dtype])
    assert h_len.tolist() == t_len.tolist()
    _compare(tm, hm, t_out, h_out, t_leaves, h_leaves, dtype)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_input_matches_torch(name, batch_first):
    dtype = np.float64
    tm, hm = _pair(name, dict(input_size=3, hidden_size=4, num_layers=2, bidirectional=True, batch_first=batch_first),
                   dtype)
    tx, hx = _leaf(RNG.standard_normal((5, 3)))
    th0, hh0 = _leaf(RNG.standard_normal((4, 4)))
    if name == "LSTM":
        tc0, hc0 = _leaf(RNG.standard_normal((4, 4)))
        _compare(tm, hm, tm(tx, (th0, tc0)), hm(hx, (hh0, hc0)), [tx, th0, tc0], [hx, hh0, hc0], dtype)
    else:
        _compare(tm, hm, tm(tx, th0), hm(hx, hh0), [tx, th0], [hx, hh0], dtype)


def test_default_zero_state_matches_torch():
    tm, hm = _pair("LSTM", dict(input_size=3, hidden_size=4, proj_size=2), np.float32)
    tx, hx = _leaf(RNG.standard_normal((5, 2, 3)).astype(np.float32))
    _compare(tm, hm, tm(tx), hm(hx), [tx], [hx], np.float32)


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("name, kw", [("RNNCell", dict(nonlinearity="relu")), ("RNNCell", {}), ("LSTMCell", {}),
                                      ("GRUCell", {}), ("GRUCell", dict(bias=False))])
def test_cells_match_torch(name, kw, batched):
    dtype = np.float64
    tm, hm = _pair(name, dict(input_size=3, hidden_size=4, **kw), dtype)
    lead = (2,) if batched else ()
    tx, hx = _leaf(RNG.standard_normal(lead + (3,)))
    th, hh = _leaf(RNG.standard_normal(lead + (4,)))
    if name == "LSTMCell":
        tc, hc = _leaf(RNG.standard_normal(lead + (4,)))
        t_out, h_out = tm(tx, (th, tc)), hm(hx, (hh, hc))
        _compare(tm, hm, (t_out[0], t_out[1]), (h_out[0], h_out[1]), [tx, th, tc], [hx, hh, hc], dtype)
    else:
        _compare(tm, hm, (tm(tx, th), ()), (hm(hx, hh), ()), [tx, th], [hx, hh], dtype)


@pytest.mark.parametrize("name, kw", CONFIGS + [("RNNCell", {}), ("LSTMCell", dict(bias=False))])
def test_state_dict_keys_shapes_and_repr_are_torchs(name, kw):
    import torch

    t = getattr(torch.nn, name)(4, 5, **kw)
    h = getattr(nn, name)(4, 5, **kw)
    assert [(k, tuple(v.shape)) for k, v in h.state_dict().items()] == \
        [(k, tuple(v.shape)) for k, v in t.state_dict().items()]
    assert repr(h) == repr(t)
    h.load_state_dict(t.state_dict())  # strict: every key by name


# ---------------------------------------------------------------- nn.utils.rnn


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_pad_sequence_matches_torch(batch_first, padding_side):
    import torch

    arrays = [RNG.standard_normal((n, 2, 3)) for n in (2, 5, 3)]
    want = torch.nn.utils.rnn.pad_sequence([torch.tensor(a) for a in arrays], batch_first=batch_first,
                                           padding_value=-2.0, padding_side=padding_side)
    got = hrnn.pad_sequence([hubkit.tensor(a) for a in arrays], batch_first=batch_first, padding_value=-2.0,
                            padding_side=padding_side)
    np.testing.assert_array_equal(got.numpy(), want.numpy())


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_unpack_match_torch(batch_first, enforce_sorted):
    import torch

    lengths = [5, 4, 2, 2, 1] if enforce_sorted else [2, 5, 1, 4, 3]
    shape = (5, 6, 3) if batch_first else (6, 5, 3)
    x = RNG.standard_normal(shape)
    tp = torch.nn.utils.rnn.pack_padded_sequence(torch.tensor(x), torch.tensor(lengths), batch_first=batch_first,
                                                 enforce_sorted=enforce_sorted)
    hp = hrnn.pack_padded_sequence(hubkit.tensor(x), hubkit.tensor(lengths), batch_first=batch_first,
                                   enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(hp.data.numpy(), tp.data.numpy())
    assert hp.batch_sizes.tolist() == tp.batch_sizes.tolist()
    for ours, theirs in [(hp.sorted_indices, tp.sorted_indices), (hp.unsorted_indices, tp.unsorted_indices)]:
        assert (ours is None and theirs is None) or ours.tolist() == theirs.tolist()
    t_pad, t_len = torch.nn.utils.rnn.pad_packed_sequence(tp, batch_first=batch_first, padding_value=9.0,
                                                          total_length=8)
    h_pad, h_len = hrnn.pad_packed_sequence(hp, batch_first=batch_first, padding_value=9.0, total_length=8)
    np.testing.assert_array_equal(h_pad.numpy(), t_pad.numpy())
    assert h_len.tolist() == t_len.tolist()
    for got, want in zip(hrnn.unpad_sequence(h_pad, h_len, batch_first=batch_first),
                         torch.nn.utils.rnn.unpad_sequence(t_pad, t_len, batch_first=batch_first)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    seqs = [RNG.standard_normal((n, 2)) for n in lengths]
    tq = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    hq = hrnn.pack_sequence([hubkit.tensor(s) for s in seqs], enforce_sorted=enforce_sorted)
    np.testing.assert_array_equal(hq.data.numpy(), tq.data.numpy())
    for got, want in zip(hrnn.unpack_sequence(hq), torch.nn.utils.rnn.unpack_sequence(tq)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
