"""Recurrent math: RNN (tanh, relu), LSTM (optionally projected) and GRU, with PyTorch's gate order.

Sequences are *packed rows*: ``data: (N, features)`` holds time step ``t`` in rows
``offsets[t] : offsets[t] + batch_sizes[t]``, with ``batch_sizes`` non-increasing (longest sequences
first), so a padded ``(T, B, features)`` batch is the case ``batch_sizes = (B,) * T`` and needs no copy.
At each step only the first ``batch_sizes[t]`` rows of the state move on; the others keep the state
their sequence ended with, which is what makes ``h_n`` right for variable lengths in either direction.

Gates (rows of ``weight_ih`` / ``weight_hh``): LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``.

One layer in one direction over the whole sequence is one ``Function`` (backprop through time in one
node) instead of ~10 autograd nodes per step: forward computes the input projection of every step in
one GEMM, keeps the gate activations in ``(N, gates)`` arrays, and backward runs the recurrence in
reverse on raw arrays, leaving one small GEMM (``dh @ weight_hh``) and a handful of elementwise ops per
step; the input and weight gradients are then one GEMM each over all steps. Measured with bench/ops.py
(64 steps x batch 32, 128 -> 256 features, forward + backward, 2-core CPU) against torch: RNN 0.6-0.8x
its time, GRU 0.5x, LSTM 1.2-1.5x; torch sends LSTM to oneDNN's fused RNN kernel, whose GEMMs outrun
OpenBLAS's here (single-threaded, with oneDNN off, torch's LSTM takes the same time as this one).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.nn.functional.dropout import dropout as _dropout
from hubkit.ops.shape import cat, stack, unbind
from hubkit.tensor import Tensor

GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}  # gates per mode: rows of weight_ih are GATES * hidden
MODES = tuple(GATES)


def _sigmoid_(a: Any) -> Any:
    """``a = sigmoid(a)`` in place, as ``0.5 * tanh(0.5 a) + 0.5``: one transcendental pass and no
    overflow for large negative ``a`` (the ``1 / (1 + exp(-a))`` form needs a select to stay finite)."""
    xp = get_array_module(a)
    a *= 0.5
    xp.tanh(a, out=a)
    a *= 0.5
    a += 0.5
    return a


def _input_projection(x: Any, w_ih: Any, *biases: Any) -> Any:
    """``x @ w_ih.T + biases`` for every step at once: ``(N, in) -> (N, gates)``, a fresh array."""
    a = x @ w_ih.T
    for b in biases:
        if b is not None:
            a += b
    return a


class _Recurrence(Function):
    """Base of one layer in one direction: the row ranges of the steps, in the order they are computed."""

    def __init__(self, batch_sizes: Sequence[int], reverse: bool) -> None:
        starts = itertools.accumulate(batch_sizes, initial=0)
        steps = [(s, s + b, b) for s, b in zip(starts, batch_sizes)]
        self.steps = steps[::-1] if reverse else steps

    def _weight_grads(self, d_in: Any, d_rec: Any, x: Any, hprev: Any, w_ih: Any, grad_at: Sequence[int]) -> list:
        """``[gx, gw_ih, gw_hh, gb_ih, gb_hh]`` from the gate gradients of all steps (``d_in`` for the input
        side, ``d_rec`` for the recurrent side), one GEMM or sum each, None where not needed."""
        need = self.needs_input_grad
        ix, iw_ih, iw_hh, ib_ih, ib_hh = grad_at
        return [
            d_in @ w_ih if need[ix] else None,
            d_in.T @ x if need[iw_ih] else None,
            d_rec.T @ hprev if need[iw_hh] else None,
            d_in.sum(axis=0) if need[ib_ih] else None,
            d_rec.sum(axis=0) if need[ib_hh] else None,
        ]


class RNNLayer(_Recurrence):
    """``h' = act(W_ih x + b_ih + W_hh h + b_hh)`` with ``act`` tanh or relu.

    ``x: (N, in)``, ``h0: (B, H)``, ``w_ih: (H, in)``, ``w_hh: (H, H)``, ``b_*: (H,)`` or None
    -> ``y: (N, H)``, ``h_n: (B, H)``.
    """

    def __init__(self, batch_sizes: Sequence[int], reverse: bool, nonlinearity: str) -> None:
        super().__init__(batch_sizes, reverse)
        self.relu = nonlinearity == "relu"

    def forward(self, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        keep = any(self.needs_input_grad)
        y = _input_projection(x, w_ih, b_ih, b_hh)
        hprev = xp.empty_like(y) if keep else None
        h = h0.copy()
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        for s, e, b in self.steps:
            a = y[s:e]
            if keep:
                hprev[s:e] = h[:b]
            a += h[:b] @ w_hh_t
            if self.relu:
                xp.maximum(a, 0, out=a)
            else:
                xp.tanh(a, out=a)
            h[:b] = a
        if keep:
            self.x, self.w_ih, self.w_hh, self.y, self.hprev = x, w_ih, w_hh, y, hprev
        return y, h

    def backward(self, gy: Any, ghn: Any) -> tuple[Any, ...]:
        xp = get_array_module(gy)
        y, w_hh = self.y, self.w_hh
        slope = (y > 0).astype(y.dtype) if self.relu else 1 - y * y  # act'(pre-activation), all steps at once
        d = xp.empty_like(y)
        dh = ghn.copy()
        for s, e, b in reversed(self.steps):
            g = d[s:e]
            xp.add(gy[s:e], dh[:b], out=g)
            g *= slope[s:e]
            xp.matmul(g, w_hh, out=dh[:b])
        gx, gw_ih, gw_hh, gb_ih, gb_hh = self._weight_grads(d, d, self.x, self.hprev, self.w_ih, (0, 2, 3, 4, 5))
        return gx, dh, gw_ih, gw_hh, gb_ih, gb_hh


class LSTMLayer(_Recurrence):
    """``i, f, g, o`` gates; ``c' = f c + i g``, ``h' = o tanh(c')``, then ``h' = h' @ w_hr.T`` with a projection.

    ``x: (N, in)``, ``h0: (B, P)``, ``c0: (B, H)``, ``w_ih: (4H, in)``, ``w_hh: (4H, P)``, ``b_*: (4H,)`` or
    None, ``w_hr: (P, H)`` or None (then ``P = H``) -> ``y: (N, P)``, ``h_n: (B, P)``, ``c_n: (B, H)``.
    """

    def forward(self, x: Any, h0: Any, c0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any,
                w_hr: Any) -> tuple[Any, Any, Any]:
        xp = get_array_module(x)
        keep = any(self.needs_input_grad)
        n_rows, hidden, out_size = x.shape[0], c0.shape[1], h0.shape[1]
        gates = _input_projection(x, w_ih, b_ih, b_hh)
        h, c = h0.copy(), c0.copy()
        y = xp.empty((n_rows, out_size), dtype=x.dtype)
        w_hh_t = w_hh.T.copy()  # always a copy (never a view, even when hidden is 1): its columns are rescaled below
        w_hr_t = None if w_hr is None else xp.ascontiguousarray(w_hr.T)
        if keep:
            hprev = xp.empty_like(y)
            cprev = xp.empty((n_rows, hidden), dtype=x.dtype)
            tanh_c = xp.empty_like(cprev)
            h_raw = xp.empty_like(cprev) if w_hr is not None else None
        h1, h2, h3 = hidden, 2 * hidden, 3 * hidden
        # sigmoid(a) = 0.5 tanh(a / 2) + 0.5: halving the i, f, o columns up front (exact in binary floating
        # point) lets one tanh pass per step serve all four gates
        for cols in (slice(0, h2), slice(h3, None)):
            gates[:, cols] *= 0.5
            w_hh_t[:, cols] *= 0.5
        for s, e, b in self.steps:
            g = gates[s:e]
            if keep:
                hprev[s:e] = h[:b]
                cprev[s:e] = c[:b]
            g += h[:b] @ w_hh_t
            xp.tanh(g, out=g)
            for cols in (g[:, :h2], g[:, h3:]):
                cols *= 0.5
                cols += 0.5
            ct = c[:b]
            ct *= g[:, h1:h2]
            ct += g[:, :h1] * g[:, h2:h3]
            tc = xp.tanh(ct, out=tanh_c[s:e]) if keep else xp.tanh(ct)
            if w_hr is None:
                ht = xp.multiply(g[:, h3:], tc, out=y[s:e])
            else:
                raw = xp.multiply(g[:, h3:], tc, out=h_raw[s:e]) if keep else g[:, h3:] * tc
                ht = xp.matmul(raw, w_hr_t, out=y[s:e])
            h[:b] = ht
        if keep:
            self.x, self.w_ih, self.w_hh, self.w_hr = x, w_ih, w_hh, w_hr
            self.gates, self.hprev, self.cprev, self.tanh_c, self.h_raw = gates, hprev, cprev, tanh_c, h_raw
        return y, h, c

    def backward(self, gy: Any, ghn: Any, gcn: Any) -> tuple[Any, ...]:
        xp = get_array_module(gy)
        gates, tanh_c, cprev, w_hh, w_hr = self.gates, self.tanh_c, self.cprev, self.w_hh, self.w_hr
        hidden = cprev.shape[1]
        h1, h2, h3 = hidden, 2 * hidden, 3 * hidden
        n_rows = gates.shape[0]
        # Everything in the gate gradients that does not depend on the incoming gradient is computed here for
        # all steps at once (big vectorized passes), which leaves 6 small elementwise ops per step instead of ~25.
        i, f, gg, o = gates[:, :h1], gates[:, h1:h2], gates[:, h2:h3], gates[:, h3:]
        by_c = xp.empty((n_rows, 3, hidden), dtype=gates.dtype)  # d(i, f, g pre-activations) / dc
        by_c[:, 0] = gg * i * (1 - i)
        by_c[:, 1] = cprev * f * (1 - f)
        by_c[:, 2] = i * (1 - gg * gg)
        o_by_h = tanh_c * o * (1 - o)  # d(o pre-activation) / dh
        c_by_h = o * (1 - tanh_c * tanh_c)  # dc / dh
        d = xp.empty_like(gates)
        d_ifg = d.reshape(n_rows, 4, hidden)[:, :3]
        dh, dc = ghn.copy(), gcn.copy()
        dproj = xp.empty_like(gy) if w_hr is not None else None
        for s, e, b in reversed(self.steps):
            dht = gy[s:e] + dh[:b]
            if w_hr is not None:
                dproj[s:e] = dht
                dht = dht @ w_hr
            dct = dc[:b]
            dct += dht * c_by_h[s:e]
            xp.multiply(by_c[s:e], dct[:, None, :], out=d_ifg[s:e])
            xp.multiply(dht, o_by_h[s:e], out=d[s:e, h3:])
            dct *= f[s:e]
            xp.matmul(d[s:e], w_hh, out=dh[:b])
        gx, gw_ih, gw_hh, gb_ih, gb_hh = self._weight_grads(d, d, self.x, self.hprev, self.w_ih, (0, 3, 4, 5, 6))
        gw_hr = dproj.T @ self.h_raw if w_hr is not None and self.needs_input_grad[7] else None
        return gx, dh, dc, gw_ih, gw_hh, gb_ih, gb_hh, gw_hr


class GRULayer(_Recurrence):
    """``r, z, n`` gates; ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``, ``h' = (1 - z) n + z h``.

    ``x: (N, in)``, ``h0: (B, H)``, ``w_ih: (3H, in)``, ``w_hh: (3H, H)``, ``b_*: (3H,)`` or None
    -> ``y: (N, H)``, ``h_n: (B, H)``.
    """

    def forward(self, x: Any, h0: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any) -> tuple[Any, Any]:
        xp = get_array_module(x)
        keep = any(self.needs_input_grad)
        hidden = h0.shape[1]
        h1, h2 = hidden, 2 * hidden
        gates = _input_projection(x, w_ih, b_ih)
        # b_hr and b_hz simply add to the input side; b_hn sits inside r * (...) and stays in the loop
        if b_hh is not None:
            gates[:, :h2] += b_hh[:h2]
        b_hn = None if b_hh is None else b_hh[h2:]
        y = xp.empty((x.shape[0], hidden), dtype=x.dtype)
        h = h0.copy()
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        if keep:
            hprev = xp.empty_like(y)
            hn_all = xp.empty_like(y)
        for s, e, b in self.steps:
            g, hp = gates[s:e], h[:b]
            if keep:
                hprev[s:e] = hp
            gh = hp @ w_hh_t
            rz = g[:, :h2]
            rz += gh[:, :h2]
            _sigmoid_(rz)
            hn = gh[:, h2:]
            if b_hn is not None:
                hn += b_hn
            if keep:
                hn_all[s:e] = hn
            n = g[:, h2:]
            n += g[:, :h1] * hn
            xp.tanh(n, out=n)
            ht = xp.subtract(hp, n, out=y[s:e])
            ht *= g[:, h1:h2]
            ht += n
            h[:b] = ht
        if keep:
            self.x, self.w_ih, self.w_hh = x, w_ih, w_hh
            self.gates, self.hprev, self.hn_all = gates, hprev, hn_all
        return y, h

    def backward(self, gy: Any, ghn: Any) -> tuple[Any, ...]:
        xp = get_array_module(gy)
        gates, hprev, hn_all, w_hh = self.gates, self.hprev, self.hn_all, self.w_hh
        hidden = hprev.shape[1]
        h1, h2 = hidden, 2 * hidden
        n_rows = gates.shape[0]
        # the step-independent factors of the gate gradients, for all steps at once (as in LSTMLayer.backward)
        r, z, n = gates[:, :h1], gates[:, h1:h2], gates[:, h2:]
        by_h = xp.empty((n_rows, 2, hidden), dtype=gates.dtype)  # d(z, n pre-activations) / dh
        by_h[:, 0] = (hprev - n) * z * (1 - z)
        by_h[:, 1] = (1 - z) * (1 - n * n)
        r_by_n = hn_all * r * (1 - r)  # d(r pre-activation) / d(n pre-activation)
        d_in = xp.empty_like(gates)
        d_zn = d_in.reshape(n_rows, 3, hidden)[:, 1:]
        d_rec = xp.empty_like(gates)
        dh = ghn.copy()
        for s, e, b in reversed(self.steps):
            dht = gy[s:e] + dh[:b]
            di, dr = d_in[s:e], d_rec[s:e]
            xp.multiply(by_h[s:e], dht[:, None, :], out=d_zn[s:e])
            xp.multiply(di[:, h2:], r_by_n[s:e], out=di[:, :h1])
            dr[:, :h2] = di[:, :h2]
            xp.multiply(di[:, h2:], r[s:e], out=dr[:, h2:])
            xp.matmul(dr, w_hh, out=dh[:b])
            dht *= z[s:e]
            dh[:b] += dht
        gx, gw_ih, gw_hh, gb_ih, gb_hh = self._weight_grads(d_in, d_rec, self.x, hprev, self.w_ih, (0, 2, 3, 4, 5))
        return gx, dh, gw_ih, gw_hh, gb_ih, gb_hh


# ---------------------------------------------------------------- a stack of layers


def _check_weights(mode: str, weights: Sequence[Sequence[Any]], count: int) -> None:
    if len(weights) != count:
        raise ArgumentError(f"{mode}: expected {count} weight groups (one per layer and direction), got {len(weights)}")
    for group in weights:
        if len(group) != 5:
            raise ArgumentError(f"{mode}: each weight group is (w_ih, w_hh, b_ih, b_hh, w_hr) with None for the "
                                f"missing ones, got {len(group)} entries")


def rnn(mode: str, input: Tensor, batch_sizes: Sequence[int], hx: Tensor | tuple[Tensor, Tensor],  # noqa: A002
        weights: Sequence[Sequence[Tensor | None]], num_layers: int = 1, dropout: float = 0.0,
        training: bool = False, bidirectional: bool = False) -> tuple[Tensor, Any]:
    """Run ``num_layers`` recurrent layers (each in one or two directions) over packed rows.

    ``mode``: ``RNN_TANH``, ``RNN_RELU``, ``LSTM`` or ``GRU``. ``input: (N, input_size)`` packed rows;
    ``batch_sizes``: non-increasing step sizes summing to ``N``; ``hx: (L*D, B, H_out)``, for LSTM a pair
    ``(h0 (L*D, B, H_out), c0 (L*D, B, hidden_size))``; ``weights``: one ``(w_ih, w_hh, b_ih, b_hh, w_hr)``
    per layer and direction (``l0``, ``l0_reverse``, ``l1``, ...), None for absent ones. Dropout with
    probability ``dropout`` is applied to every layer's output but the last when ``training``.

    Returns ``(output (N, D*H_out), h_n (L*D, B, H_out))``; for LSTM ``(output, (h_n, c_n))``.
    """
    if mode not in MODES:
        raise ArgumentError(f"rnn: mode must be one of {MODES}, got {mode!r}")
    directions = 2 if bidirectional else 1
    _check_weights(mode, weights, num_layers * directions)
    batch_sizes = tuple(int(b) for b in batch_sizes)
    if sum(batch_sizes) != input.shape[0] or any(a < b for a, b in zip(batch_sizes, batch_sizes[1:])):
        raise ShapeError(f"{mode}: batch_sizes {list(batch_sizes)} must be non-increasing and sum to the number of "
                         f"input rows ({input.shape[0]})")
    lstm = mode == "LSTM"
    h0s = unbind(hx[0] if lstm else hx, 0)
    c0s = unbind(hx[1], 0) if lstm else None
    x = input
    h_n, c_n = [], []
    for layer in range(num_layers):
        outs = []
        for direction in range(directions):
            k = layer * directions + direction
            w_ih, w_hh, b_ih, b_hh, w_hr = weights[k]
            reverse = direction == 1
            if lstm:
                y, h, c = LSTMLayer(batch_sizes, reverse)(x, h0s[k], c0s[k], w_ih, w_hh, b_ih, b_hh, w_hr)
                c_n.append(c)
            elif mode == "GRU":
                y, h = GRULayer(batch_sizes, reverse)(x, h0s[k], w_ih, w_hh, b_ih, b_hh)
            else:
                act = "relu" if mode == "RNN_RELU" else "tanh"
                y, h = RNNLayer(batch_sizes, reverse, act)(x, h0s[k], w_ih, w_hh, b_ih, b_hh)
            outs.append(y)
            h_n.append(h)
        x = outs[0] if directions == 1 else cat(outs, dim=1)
        if dropout > 0 and training and layer < num_layers - 1:
            x = _dropout(x, dropout, True)
    return x, ((stack(h_n), stack(c_n)) if lstm else stack(h_n))


# ---------------------------------------------------------------- single steps (the cells)


def _check_cell(op: str, input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, what: str) -> None:  # noqa: A002
    if input.ndim != 2 or hx.ndim != 2:
        raise ShapeError(f"{op}: expected a 2-D input (batch, input_size) and a 2-D {what} (batch, hidden_size), "
                         f"got shapes {tuple(input.shape)} and {tuple(hx.shape)}")
    if input.shape[1] != w_ih.shape[1]:
        raise ShapeError(f"{op}: input has inconsistent input_size: got {input.shape[1]}, expected {w_ih.shape[1]} "
                         "(the weight_ih's second dim)")
    if hx.shape[1] != w_hh.shape[1]:
        raise ShapeError(f"{op}: {what} has inconsistent hidden_size: got {hx.shape[1]}, expected {w_hh.shape[1]}")
    if input.shape[0] != hx.shape[0]:
        raise ShapeError(f"{op}: input batch size {input.shape[0]} doesn't match {what} batch size {hx.shape[0]}")
    if input.dtype != w_ih.dtype or hx.dtype != w_ih.dtype:
        raise DTypeError(f"{op}: input ({input.dtype}) and {what} ({hx.dtype}) must have the weights' dtype "
                         f"({w_ih.dtype}); convert them with .to({w_ih.dtype})")


def _rnn_cell(nonlinearity: str, input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor,  # noqa: A002
              b_ih: Tensor | None, b_hh: Tensor | None) -> Tensor:
    _check_cell(f"rnn_{nonlinearity}_cell", input, hx, w_ih, w_hh, "hidden")
    return RNNLayer((input.shape[0],), False, nonlinearity)(input, hx, w_ih, w_hh, b_ih, b_hh)[1]


def rnn_tanh_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,  # noqa: A002
                  b_hh: Tensor | None = None) -> Tensor:
    """One Elman step ``tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)``: ``input (B, in)``, ``hx (B, H)`` -> ``(B, H)``."""
    return _rnn_cell("tanh", input, hx, w_ih, w_hh, b_ih, b_hh)


def rnn_relu_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,  # noqa: A002
                  b_hh: Tensor | None = None) -> Tensor:
    """One Elman step with relu: ``input (B, in)``, ``hx (B, H)`` -> ``(B, H)``."""
    return _rnn_cell("relu", input, hx, w_ih, w_hh, b_ih, b_hh)


def lstm_cell(input: Tensor, hx: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor,  # noqa: A002
              b_ih: Tensor | None = None, b_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """One LSTM step: ``input (B, in)``, ``hx = (h (B, H), c (B, H))``, ``w_ih (4H, in)``, ``w_hh (4H, H)``
    -> ``(h', c')``, each ``(B, H)``."""
    h, c = hx
    _check_cell("lstm_cell", input, h, w_ih, w_hh, "hx[0]")
    if tuple(c.shape) != tuple(h.shape):
        raise ShapeError(f"lstm_cell: hx[1] has shape {tuple(c.shape)}, expected {tuple(h.shape)} like hx[0]")
    _, h1, c1 = LSTMLayer((input.shape[0],), False)(input, h, c, w_ih, w_hh, b_ih, b_hh, None)
    return h1, c1


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None,  # noqa: A002
             b_hh: Tensor | None = None) -> Tensor:
    """One GRU step: ``input (B, in)``, ``hx (B, H)``, ``w_ih (3H, in)``, ``w_hh (3H, H)`` -> ``(B, H)``."""
    _check_cell("gru_cell", input, hx, w_ih, w_hh, "hidden")
    return GRULayer((input.shape[0],), False)(input, hx, w_ih, w_hh, b_ih, b_hh)[1]
