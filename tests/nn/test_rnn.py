"""Recurrent layers and sequence packing: gradchecks (cells, stacked bidirectional layers, projections, packed
sequences), PyTorch's parameter names and shapes, variable-length semantics, and errors. Parity with torch is in
test_rnn_parity.py."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from opcheck import gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional.rnn as R
from hubkit.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from hubkit.nn.utils.rnn import (
    PackedSequence,
    invert_permutation,
    pack_padded_sequence,
    pack_sequence,
    pad_packed_sequence,
    pad_sequence,
    unpack_sequence,
    unpad_sequence,
)

RNG = np.random.default_rng(11)
GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}


def _rand(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


def _weight_arrays(mode, input_size, hidden, layers, directions, bias=True, proj=0):
    """A flat list of weight arrays and how many belong to each (layer, direction) group, each group in
    (w_ih, w_hh, b_ih, b_hh, w_hr) order."""
    gate, out = GATES[mode] * hidden, proj or hidden
    arrays, per_group = [], []
    for layer in range(layers):
        for _ in range(directions):
            layer_input = input_size if layer == 0 else out * directions
            group = [_rand(gate, layer_input, scale=0.5), _rand(gate, out, scale=0.5)]
            if bias:
                group += [_rand(gate, scale=0.5), _rand(gate, scale=0.5)]
            if proj:
                group.append(_rand(proj, hidden, scale=0.5))
            arrays += group
            per_group.append(len(group))
    return arrays, per_group


def _groups(flat, per_group, bias, proj):
    out, i = [], 0
    for n in per_group:
        g = list(flat[i:i + n])
        i += n
        w_ih, w_hh = g[0], g[1]
        b_ih, b_hh = (g[2], g[3]) if bias else (None, None)
        out.append((w_ih, w_hh, b_ih, b_hh, g[-1] if proj else None))
    return out


# ---------------------------------------------------------------- gradchecks of the math


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("cell", ["rnn_tanh_cell", "rnn_relu_cell", "gru_cell"])
def test_single_state_cells_gradcheck(cell, bias):
    chunks = {"rnn_tanh_cell": 1, "rnn_relu_cell": 1, "gru_cell": 3}[cell]
    fn = getattr(R, cell)
    ws = [_rand(chunks * 4, 3), _rand(chunks * 4, 4)] + ([_rand(chunks * 4), _rand(chunks * 4)] if bias else [])
    gradcheck(lambda x, h, *w: fn(x, h, *w), [_rand(2, 3), _rand(2, 4), *ws])


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_cell_gradcheck(bias):
    ws = [_rand(16, 3), _rand(16, 4)] + ([_rand(16), _rand(16)] if bias else [])
    gradcheck(lambda x, h, c, *w: R.lstm_cell(x, (h, c), *w), [_rand(2, 3), _rand(2, 4), _rand(2, 4), *ws])


# (mode, bias, proj_size)
STACK_CASES = [("RNN_TANH", True, 0), ("RNN_RELU", True, 0), ("GRU", True, 0), ("GRU", False, 0),
               ("LSTM", True, 0), ("LSTM", False, 0), ("LSTM", True, 2)]


@pytest.mark.parametrize("lengths", [(3, 3), (4, 2, 1)], ids=["padded", "packed"])
@pytest.mark.parametrize("mode, bias, proj", STACK_CASES)
def test_two_layer_bidirectional_stack_gradcheck(mode, bias, proj, lengths):
    """Input, initial states and every weight of a 2-layer bidirectional stack, on a padded batch and on packed
    rows of variable lengths."""
    hidden, input_size, layers, dirs = 3, 2, 2, 2
    out = proj or hidden
    batch_sizes = [sum(n > t for n in lengths) for t in range(max(lengths))]
    flat, per_group = _weight_arrays(mode, input_size, hidden, layers, dirs, bias, proj)
    x = _rand(sum(batch_sizes), input_size)
    h0 = _rand(layers * dirs, len(lengths), out, scale=0.5)
    c0 = _rand(layers * dirs, len(lengths), hidden, scale=0.5)

    def fn(x, h0, c0, *w):
        hx = (h0, c0) if mode == "LSTM" else h0
        y, h = R.rnn(mode, x, batch_sizes, hx, _groups(w, per_group, bias, proj), layers, 0.0, False, True)
        return (y, *h) if mode == "LSTM" else (y, h)

    gradcheck(fn, [x, h0, c0, *flat], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cls, kw", [(nn.LSTM, dict(proj_size=2)), (nn.GRU, {}), (nn.RNN, {})])
def test_module_through_packing_gradcheck(cls, kw):
    """pack_padded_sequence (unsorted lengths) -> module -> pad_packed_sequence: gradients of the padded input and
    of h0 reach the right rows; the padding gets none."""
    m = cls(2, 3, num_layers=2, bidirectional=True, batch_first=True, **kw).double()
    lengths = [2, 4, 3]
    out = kw.get("proj_size") or 3

    def fn(x, h0):
        hx = (h0, hubkit.zeros(4, 3, 3, dtype=hubkit.float64)) if cls is nn.LSTM else h0
        y, h = m(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False), hx)
        padded, _ = pad_packed_sequence(y, batch_first=True)
        return (padded, *h) if cls is nn.LSTM else (padded, h)

    gradcheck(fn, [_rand(3, 4, 2), _rand(4, 3, out, scale=0.5)], atol=1e-5, rtol=1e-4)


def test_padding_gets_no_gradient():
    m = nn.GRU(2, 3).double()
    x = hubkit.tensor(_rand(4, 2, 2), requires_grad=True)
    y, _ = m(pack_padded_sequence(x, [4, 2]))
    pad_packed_sequence(y)[0].sum().backward()
    assert np.all(x.grad.numpy()[2:, 1] == 0) and np.all(x.grad.numpy()[:2, 1] != 0)


def test_pack_and_pad_ops_gradcheck():
    gradcheck(lambda x: pack_padded_sequence(x, [2, 3, 1], enforce_sorted=False).data, [_rand(3, 3, 2)])
    gradcheck(lambda x: pad_packed_sequence(PackedSequence(x, hubkit.tensor([3, 2, 1])), total_length=4)[0],
              [_rand(6, 2)])
    gradcheck(lambda a, b: pad_sequence([a, b], batch_first=True, padding_side="left"), [_rand(2, 3), _rand(4, 3)])


# ---------------------------------------------------------------- PyTorch's parameters


def test_parameter_names_and_shapes_are_torchs():
    m = nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert list(shapes) == [
        f"{kind}_l{layer}{sfx}" for layer in range(2) for sfx in ("", "_reverse")
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr")
    ]
    assert shapes["weight_ih_l0"] == (20, 3) and shapes["weight_hh_l0"] == (20, 2)
    assert shapes["weight_ih_l1_reverse"] == (20, 4) and shapes["weight_hr_l1"] == (2, 5)
    assert shapes["bias_hh_l1_reverse"] == (20,)
    gru = nn.GRU(3, 4, bias=False)
    assert list(gru.state_dict()) == ["weight_ih_l0", "weight_hh_l0"] and gru.weight_ih_l0.shape == (12, 3)
    cell = nn.LSTMCell(3, 4)
    assert {k: tuple(v.shape) for k, v in cell.state_dict().items()} == {
        "weight_ih": (16, 3), "weight_hh": (16, 4), "bias_ih": (16,), "bias_hh": (16,)}


def test_all_weights_and_flatten_parameters():
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    assert m.flatten_parameters() is None
    assert len(m.all_weights) == 4 and all(len(ws) == 4 for ws in m.all_weights)
    assert m.all_weights[1][0] is m.weight_ih_l0_reverse
    assert [id(p) for p in m._flat_weights] == [id(p) for p in m.parameters()]


def test_init_is_uniform_within_one_over_sqrt_hidden():
    bound = 1 / np.sqrt(16)
    for m in (nn.LSTM(8, 16, num_layers=2), nn.GRUCell(8, 16), nn.RNN(8, 16, bidirectional=True)):
        values = np.concatenate([p.numpy().ravel() for p in m.parameters()])
        assert values.min() >= -bound and values.max() <= bound
        assert values.std() > bound / 3  # spread over the range, not a constant


def test_reprs():
    assert repr(nn.LSTM(10, 20, 2, batch_first=True, proj_size=5)) == \
        "LSTM(10, 20, proj_size=5, num_layers=2, batch_first=True)"
    assert repr(nn.GRU(3, 4, bias=False, dropout=0.5, num_layers=2, bidirectional=True)) == \
        "GRU(3, 4, num_layers=2, bias=False, dropout=0.5, bidirectional=True)"
    assert repr(nn.RNN(3, 4, nonlinearity="relu")) == "RNN(3, 4)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"


def test_state_dict_round_trip_between_modules():
    a, b = nn.LSTM(3, 4, num_layers=2, proj_size=2), nn.LSTM(3, 4, num_layers=2, proj_size=2)
    b.load_state_dict({k: v.numpy() for k, v in a.state_dict().items()})
    x = hubkit.randn(5, 2, 3)
    np.testing.assert_array_equal(a(x)[0].numpy(), b(x)[0].numpy())


# ---------------------------------------------------------------- semantics


@pytest.mark.parametrize("cls", [nn.RNN, nn.LSTM, nn.GRU])
def test_batch_first_and_unbatched_agree_with_time_major(cls):
    m = cls(3, 4, num_layers=2, bidirectional=True)
    x = hubkit.randn(5, 2, 3)
    out, h = m(x)
    m.batch_first = True
    out_bf, h_bf = m(x.transpose(0, 1))
    np.testing.assert_allclose(out_bf.transpose(0, 1).numpy(), out.numpy(), rtol=1e-6)
    m.batch_first = False
    out1, h1 = m(x[:, 1])  # unbatched (T, input_size): batch dim dropped from output and state
    np.testing.assert_allclose(out1.numpy(), out.numpy()[:, 1], rtol=1e-5, atol=1e-6)
    first, second = (h[0], h1[0]) if cls is nn.LSTM else (h, h1)
    assert second.shape == (4, 4)
    np.testing.assert_allclose(second.numpy(), first.numpy()[:, 1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls, kw", [(nn.LSTM, dict(proj_size=2)), (nn.GRU, {}), (nn.RNN, dict(nonlinearity="relu"))])
def test_packed_h_n_is_each_sequences_own_last_step(cls, kw):
    """A packed batch with unsorted lengths gives, per sequence, the outputs and final states of running that
    sequence alone (forward direction at its last step, reverse direction at its first)."""
    m = cls(3, 4, num_layers=2, bidirectional=True, **kw).double()
    seqs = [hubkit.tensor(_rand(n, 3)) for n in (2, 5, 3)]
    packed_out, h = m(pack_sequence(seqs, enforce_sorted=False))
    outs = unpack_sequence(packed_out)
    for b, s in enumerate(seqs):
        alone_out, alone_h = m(s)
        np.testing.assert_allclose(outs[b].numpy(), alone_out.numpy(), rtol=1e-10, atol=1e-12)
        for got, want in zip(h if cls is nn.LSTM else (h,), alone_h if cls is nn.LSTM else (alone_h,)):
            np.testing.assert_allclose(got.numpy()[:, b], want.numpy(), rtol=1e-10, atol=1e-12)


def test_packed_input_takes_hx_in_the_batchs_order():
    m = nn.GRU(2, 3).double()
    seqs = [hubkit.tensor(_rand(n, 2)) for n in (1, 3)]
    h0 = hubkit.tensor(_rand(1, 2, 3))
    _, h = m(pack_sequence(seqs, enforce_sorted=False), h0)
    for b, s in enumerate(seqs):
        np.testing.assert_allclose(h.numpy()[:, b], m(s, h0[:, b])[1].numpy(), rtol=1e-12)


def test_cells_match_one_step_of_the_layer():
    for cell_cls, layer_cls in [(nn.LSTMCell, nn.LSTM), (nn.GRUCell, nn.GRU), (nn.RNNCell, nn.RNN)]:
        cell, layer = cell_cls(3, 4), layer_cls(3, 4)
        layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
        x = hubkit.randn(2, 3)
        got = cell(x)
        want = layer(x[None])[1]
        if cell_cls is nn.LSTMCell:
            np.testing.assert_allclose(got[0].numpy(), want[0][0].numpy(), rtol=1e-6)
            np.testing.assert_allclose(got[1].numpy(), want[1][0].numpy(), rtol=1e-6)
        else:
            np.testing.assert_allclose(got.numpy(), want[0].numpy(), rtol=1e-6)
        unbatched = cell(x[0])
        assert (unbatched[0] if cell_cls is nn.LSTMCell else unbatched).shape == (4,)


def test_dropout_between_layers_only_in_training():
    m = nn.LSTM(3, 8, num_layers=2, dropout=0.5)
    x = hubkit.randn(4, 2, 3)
    m.eval()
    np.testing.assert_array_equal(m(x)[0].numpy(), m(x)[0].numpy())
    hubkit.manual_seed(0)
    m.train()
    assert not np.allclose(m(x)[0].numpy(), m.eval()(x)[0].numpy())
    with pytest.warns(UserWarning, match="num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.GRU(3, 4, num_layers=2, dropout=0.2)


def test_float64_module_and_default_dtype():
    m = nn.GRU(3, 4)
    assert m.weight_ih_l0.dtype == np.float32 and m(hubkit.randn(2, 1, 3))[0].dtype == np.float32
    m.double()
    assert m(hubkit.randn(2, 1, 3, dtype=hubkit.float64))[0].dtype == np.float64


def test_backward_reaches_every_parameter():
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    out, (h, c) = m(hubkit.randn(5, 2, 3))
    (out.sum() + c.sum()).backward()
    assert all(p.grad is not None and np.abs(p.grad.numpy()).sum() > 0 for p in m.parameters())


def test_backward_twice_with_retain_graph_accumulates():
    for m in (nn.LSTM(3, 4, proj_size=2), nn.GRU(3, 4), nn.RNN(3, 4)):
        out, h = m(hubkit.randn(4, 2, 3))
        loss = out.sum() + (h[1] if isinstance(h, tuple) else h).sum()
        loss.backward(retain_graph=True)
        once = [p.grad.numpy().copy() for p in m.parameters()]
        loss.backward()
        for p, g in zip(m.parameters(), once):
            np.testing.assert_allclose(p.grad.numpy(), 2 * g, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("m", [nn.LSTM(2, 1), nn.LSTM(2, 3, proj_size=1), nn.LSTMCell(2, 1)], ids=repr)
def test_forward_leaves_the_weights_untouched(m):
    """Width-1 weights transpose to C-contiguous views; the forward must still not write into them."""
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    x = hubkit.randn(3, 2) if isinstance(m, nn.LSTMCell) else hubkit.randn(3, 2, 2)
    first = m(x)
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    np.testing.assert_array_equal(m(x)[0].numpy(), first[0].numpy())


# ---------------------------------------------------------------- errors


def test_input_errors():
    m = nn.LSTM(3, 4)
    with pytest.raises(ShapeError, match="Expected input to be 2D or 3D, got 4D"):
        m(hubkit.randn(1, 2, 3, 3))
    with pytest.raises(ShapeError, match="input.size\\(-1\\) must be equal to input_size. Expected 3, got 5"):
        m(hubkit.randn(2, 1, 5))
    with pytest.raises(DTypeError, match="does not match weight dtype"):
        m(hubkit.randn(2, 1, 3, dtype=hubkit.float64))
    with pytest.raises(ShapeError, match=r"Expected hidden\[0\] size \(1, 2, 4\), got \[1, 3, 4\]"):
        m(hubkit.randn(2, 2, 3), (hubkit.zeros(1, 3, 4), hubkit.zeros(1, 2, 4)))
    with pytest.raises(ShapeError, match=r"Expected hidden\[1\] size"):
        m(hubkit.randn(2, 2, 3), (hubkit.zeros(1, 2, 4), hubkit.zeros(1, 2, 5)))
    with pytest.raises(ShapeError, match="hx and cx should also be 3-D"):
        m(hubkit.randn(2, 2, 3), (hubkit.zeros(2, 4), hubkit.zeros(2, 4)))
    with pytest.raises(ArgumentTypeError, match="tuple"):
        m(hubkit.randn(2, 2, 3), hubkit.zeros(1, 2, 4))
    g = nn.GRU(3, 4, num_layers=2)
    with pytest.raises(ShapeError, match=r"Expected hidden size \(2, 1, 4\), got \[1, 1, 4\]"):
        g(hubkit.randn(2, 1, 3), hubkit.zeros(1, 1, 4))
    with pytest.raises(ShapeError, match="For unbatched 2-D input, hx should also be 2-D but got 3-D"):
        g(hubkit.randn(2, 3), hubkit.zeros(2, 1, 4))
    with pytest.raises(ShapeError, match="For batched 3-D input, hx should also be 3-D but got 2-D"):
        g(hubkit.randn(2, 1, 3), hubkit.zeros(2, 4))


def test_constructor_errors():
    with pytest.raises(ArgumentError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ArgumentError, match="only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ArgumentError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(ArgumentError, match="dropout should be a number in range"):
        nn.LSTM(3, 4, num_layers=2, dropout=1.5)
    with pytest.raises(ArgumentError, match="hidden_size must be greater than zero"):
        nn.GRU(3, 0)
    with pytest.raises(ArgumentTypeError, match="batch_first should be of type bool"):
        nn.RNN(3, 4, batch_first=1)
    with pytest.raises(ArgumentError, match="Unknown nonlinearity"):
        nn.RNNCell(3, 4, nonlinearity="sigmoid")


def test_cell_errors():
    cell = nn.GRUCell(3, 4)
    with pytest.raises(ShapeError, match="Expected input to be 1D or 2D, got 3D"):
        cell(hubkit.randn(1, 2, 3))
    with pytest.raises(ShapeError, match="inconsistent input_size: got 5, expected 3"):
        cell(hubkit.randn(2, 5))
    with pytest.raises(ShapeError, match="input batch size 2 doesn't match hidden batch size 3"):
        cell(hubkit.randn(2, 3), hubkit.zeros(3, 4))
    with pytest.raises(ShapeError, match="hx\\[0\\] has inconsistent hidden_size: got 5, expected 4"):
        nn.LSTMCell(3, 4)(hubkit.randn(2, 3), (hubkit.zeros(2, 5), hubkit.zeros(2, 5)))


# ---------------------------------------------------------------- packing utilities


def test_pad_sequence_layouts():
    a, b = hubkit.tensor([[1.0], [2.0]]), hubkit.tensor([[3.0], [4.0], [5.0]])
    def values(padded):
        return padded.numpy()[..., 0].tolist()

    assert values(pad_sequence([a, b])) == [[1, 3], [2, 4], [0, 5]]
    assert values(pad_sequence([a, b], batch_first=True, padding_value=-1)) == [[1, 2, -1], [3, 4, 5]]
    assert values(pad_sequence([a, b], batch_first=True, padding_side="left")) == [[0, 1, 2], [3, 4, 5]]


def test_pack_pad_unpack_round_trips():
    seqs = [hubkit.tensor(_rand(n, 2)) for n in (3, 5, 1, 4)]
    packed = pack_sequence(seqs, enforce_sorted=False)
    assert packed.batch_sizes.tolist() == [4, 3, 3, 2, 1] and packed.batch_sizes.dtype == np.int64
    assert packed.sorted_indices.tolist() == [1, 3, 0, 2] and packed.unsorted_indices.tolist() == [2, 0, 3, 1]
    for got, want in zip(unpack_sequence(packed), seqs):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    padded, lengths = pad_packed_sequence(packed, batch_first=True, total_length=7)
    assert padded.shape == (4, 7, 2) and lengths.tolist() == [3, 5, 1, 4] and np.all(padded.numpy()[2, 1:] == 0)
    for got, want in zip(unpad_sequence(padded, lengths, batch_first=True), seqs):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    time_major = pad_sequence(seqs)
    again = pack_padded_sequence(time_major, lengths, enforce_sorted=False)
    np.testing.assert_array_equal(again.data.numpy(), packed.data.numpy())


def test_packed_sequence_is_a_named_tuple_with_conversions():
    packed = pack_sequence([hubkit.randn(3, 2), hubkit.randn(2, 2)])
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    assert sorted_indices is None and unsorted_indices is None and batch_sizes.tolist() == [2, 2, 1]
    assert packed.double().data.dtype == np.float64 and not packed.is_cuda
    assert packed.to(hubkit.float32) is packed
    assert invert_permutation(hubkit.tensor([2, 0, 1])).tolist() == [1, 2, 0]


def test_packing_errors():
    x = hubkit.randn(4, 3, 2)
    with pytest.raises(ArgumentError, match="must be sorted in decreasing order"):
        pack_padded_sequence(x, [2, 3, 1])
    with pytest.raises(ArgumentError, match="greater than 0"):
        pack_padded_sequence(x, [3, 2, 0])
    with pytest.raises(ShapeError, match="equal to batch_size, but got 2 \\(batch_size=3\\)"):
        pack_padded_sequence(x, [3, 2])
    with pytest.raises(ShapeError, match="exceeds the input's 4 time steps"):
        pack_padded_sequence(x, [5, 2, 1])
    with pytest.raises(ArgumentError, match="total_length to be at least"):
        pad_packed_sequence(pack_padded_sequence(x, [4, 2, 1]), total_length=3)
    with pytest.raises(ArgumentError, match="empty list"):
        pad_sequence([])
    with pytest.raises(ShapeError, match="same trailing dims"):
        pad_sequence([hubkit.randn(2, 3), hubkit.randn(2, 4)])


def test_utils_rnn_is_a_submodule_of_nn_utils():
    import hubkit.nn.utils as utils

    assert utils.rnn.pack_padded_sequence is pack_padded_sequence
    assert nn.utils.rnn.PackedSequence is PackedSequence
