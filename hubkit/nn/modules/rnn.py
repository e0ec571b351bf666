"""Recurrent layers: RNN, LSTM, GRU (multi-layer, bidirectional, packed sequences) and their cells.

Parameter names, shapes, gate order and init are PyTorch's (``weight_ih_l0``, ``bias_hh_l1_reverse``,
``weight_hr_l0`` for LSTM projections; U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))), so a torch
checkpoint loads by key. The math is in ``hubkit.nn.functional.rnn``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from hubkit.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from hubkit.nn import init
from hubkit.nn.functional.rnn import GATES, gru_cell, lstm_cell, rnn, rnn_relu_cell, rnn_tanh_cell
from hubkit.nn.module import Module
from hubkit.nn.parameter import Parameter
from hubkit.nn.utils.rnn import PackedSequence
from hubkit.ops.shape import getitem, reshape, squeeze, transpose, unsqueeze
from hubkit.tensor import Tensor, empty, zeros

_NAMES = {"RNN_TANH": "RNN", "RNN_RELU": "RNN", "LSTM": "LSTM", "GRU": "GRU"}


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} should be of type int, got: {type(value).__name__}")
    if value <= 0:
        raise ArgumentError(f"{name} must be greater than zero, got {value}")


class RNNBase(Module):
    """The stack of recurrent layers behind RNN, LSTM and GRU (``mode``: RNN_TANH, RNN_RELU, LSTM, GRU).

    ``forward(input, hx=None)``: ``input`` is ``(T, B, input_size)`` (``(B, T, input_size)`` with
    ``batch_first``), ``(T, input_size)`` unbatched, or a ``PackedSequence``. ``hx`` is
    ``(num_layers * D, B, H_out)`` (``D = 2`` if bidirectional, ``H_out = proj_size or hidden_size``),
    zeros when omitted; LSTM takes ``(h_0, c_0)`` with ``c_0: (num_layers * D, B, hidden_size)``.
    Returns ``(output (T, B, D * H_out), h_n)`` (LSTM: ``(output, (h_n, c_n))``); a PackedSequence in
    gives a PackedSequence out, with each sequence's ``h_n`` taken at its own last step.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__()
        if mode not in GATES:
            raise ArgumentError(f"Unrecognized RNN mode: {mode!r}; expected one of {sorted(GATES)}")
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) or not 0 <= dropout <= 1:
            raise ArgumentError("dropout should be a number in range [0, 1] representing the probability of an "
                                f"element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                          f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                          UserWarning, stacklevel=3)
        if not isinstance(bias, bool):
            raise ArgumentTypeError(f"bias should be of type bool, got: {type(bias).__name__}")
        if not isinstance(batch_first, bool):
            raise ArgumentTypeError(f"batch_first should be of type bool, got: {type(batch_first).__name__}")
        _check_int("input_size", input_size)
        _check_int("hidden_size", hidden_size)
        _check_int("num_layers", num_layers)
        if proj_size < 0:
            raise ArgumentError("proj_size should be a positive integer or zero to disable projections, got "
                                f"{proj_size}")
        if proj_size >= hidden_size:
            raise ArgumentError(f"proj_size has to be smaller than hidden_size, got proj_size={proj_size} and "
                                f"hidden_size={hidden_size}")
        self.mode = mode
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.proj_size = int(proj_size)
        gate_size = GATES[mode] * self.hidden_size
        out_size = self.proj_size or self.hidden_size
        directions = 2 if bidirectional else 1
        self._flat_weights_names: list[str] = []
        self._all_weights: list[list[str]] = []
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else out_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                shapes = [("weight_ih", (gate_size, layer_input)), ("weight_hh", (gate_size, out_size))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if self.proj_size:
                    shapes.append(("weight_hr", (self.proj_size, self.hidden_size)))
                names = []
                for kind, shape in shapes:
                    setattr(self, kind + suffix, Parameter(empty(shape, dtype=dtype, device=device)))
                    names.append(kind + suffix)
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self) -> None:
        """Kept for compatibility: PyTorch packs weights into one cuDNN buffer here; hubkit reads the
        parameters as they are, so there is nothing to do."""

    @property
    def _flat_weights(self) -> list[Parameter]:
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """The parameters of each layer and direction, in state-dict order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # ------------------------------------------------------------ forward
    def _weight_groups(self) -> list[tuple[Parameter | None, ...]]:
        groups = []
        for names in self._all_weights:
            p = {name.split("_l")[0]: getattr(self, name) for name in names}
            groups.append((p["weight_ih"], p["weight_hh"], p.get("bias_ih"), p.get("bias_hh"), p.get("weight_hr")))
        return groups

    def _expected_hidden(self, batch: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        layers = self.num_layers * (2 if self.bidirectional else 1)
        return (layers, batch, self.proj_size or self.hidden_size), (layers, batch, self.hidden_size)

    def _check_input(self, data: Tensor, dims: int) -> None:
        weight = self.weight_ih_l0
        if data.dtype != weight.dtype:
            raise DTypeError(f"{_NAMES[self.mode]} input dtype ({data.dtype}) does not match weight dtype "
                             f"({weight.dtype}). Convert input: input.to({weight.dtype}), or convert model: "
                             f"model.to({data.dtype})")
        if data.ndim != dims:
            raise ShapeError(f"{_NAMES[self.mode]}: input must have {dims} dimensions, got {data.ndim}")
        if data.shape[-1] != self.input_size:
            raise ShapeError(f"{_NAMES[self.mode]}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {data.shape[-1]}")

    def _hidden_pair(self, hx: Any) -> tuple[Tensor, Tensor]:
        if not (isinstance(hx, (tuple, list)) and len(hx) == 2 and all(isinstance(t, Tensor) for t in hx)):
            raise ArgumentTypeError(f"LSTM: hx must be a tuple (h_0, c_0) of two tensors, got {type(hx).__name__}")
        return hx[0], hx[1]

    def _unsqueeze_hidden(self, hx: Any, batched: bool) -> Any:
        """Check that ``hx`` has as many dims as the input calls for and add the batch dim if unbatched."""
        want = 3 if batched else 2
        kind = "batched 3-D" if batched else "unbatched 2-D"
        if self.mode == "LSTM":
            h, c = self._hidden_pair(hx)
            if h.ndim != want or c.ndim != want:
                raise ShapeError(f"For {kind} input, hx and cx should also be {want}-D but got ({h.ndim}-D, "
                                 f"{c.ndim}-D) tensors")
            return (h, c) if batched else (unsqueeze(h, 1), unsqueeze(c, 1))
        if hx.ndim != want:
            raise ShapeError(f"For {kind} input, hx should also be {want}-D but got {hx.ndim}-D tensor")
        return hx if batched else unsqueeze(hx, 1)

    def _initial_hidden(self, hx: Any, batch: int, data: Tensor) -> Any:
        h_shape, c_shape = self._expected_hidden(batch)
        if hx is None:
            h = zeros(h_shape, dtype=data.dtype, device=data.device)
            return (h, zeros(c_shape, dtype=data.dtype, device=data.device)) if self.mode == "LSTM" else h
        checks = [(hx[0], h_shape, "hidden[0]"), (hx[1], c_shape, "hidden[1]")] if self.mode == "LSTM" \
            else [(hx, h_shape, "hidden")]
        for t, shape, what in checks:
            if tuple(t.shape) != shape:
                raise ShapeError(f"Expected {what} size {shape}, got {list(t.shape)}: (num_layers * num_directions, "
                                 "batch, hidden size)")
            if t.dtype != data.dtype:
                raise DTypeError(f"{what} dtype ({t.dtype}) does not match the input's ({data.dtype}); convert it "
                                 f"with .to({data.dtype})")
        return hx

    def _permute_hidden(self, hx: Any, permutation: Tensor | None) -> Any:
        if permutation is None:
            return hx
        if self.mode == "LSTM":
            return getitem(hx[0], (slice(None), permutation)), getitem(hx[1], (slice(None), permutation))
        return getitem(hx, (slice(None), permutation))

    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:  # noqa: A002
        if isinstance(input, PackedSequence):
            data, batch_sizes_t, sorted_indices, unsorted_indices = input
            batch_sizes = [int(b) for b in batch_sizes_t.tolist()]
            if hx is not None:
                if self.mode == "LSTM":
                    hx = self._hidden_pair(hx)
                hx = self._permute_hidden(hx, sorted_indices)
            self._check_input(data, 2)
            hx = self._initial_hidden(hx, batch_sizes[0], data)
            output, hidden = self._run(data, batch_sizes, hx)
            return PackedSequence(output, batch_sizes_t, sorted_indices, unsorted_indices), \
                self._permute_hidden(hidden, unsorted_indices)
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{_NAMES[self.mode]}: input must be a Tensor or a PackedSequence, got "
                                    f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ShapeError(f"{_NAMES[self.mode]}: Expected input to be 2D or 3D, got {input.ndim}D tensor instead")
        batched = input.ndim == 3
        if hx is not None:
            hx = self._unsqueeze_hidden(hx, batched)
        # the layers run time-major: (T, B, input_size)
        if not batched:
            input = unsqueeze(input, 1)  # noqa: A001
        elif self.batch_first:
            input = transpose(input, 0, 1)  # noqa: A001
        self._check_input(input, 3)
        steps, batch = input.shape[0], input.shape[1]
        hx = self._initial_hidden(hx, batch, input)
        output, hidden = self._run(reshape(input, steps * batch, self.input_size), [batch] * steps, hx)
        output = reshape(output, steps, batch, output.shape[-1])
        if not batched:
            output = squeeze(output, 1)
            hidden = (squeeze(hidden[0], 1), squeeze(hidden[1], 1)) if self.mode == "LSTM" else squeeze(hidden, 1)
        elif self.batch_first:
            output = transpose(output, 0, 1)
        return output, hidden

    def _run(self, data: Tensor, batch_sizes: list[int], hx: Any) -> tuple[Tensor, Any]:
        return rnn(self.mode, data, batch_sizes, hx, self._weight_groups(), self.num_layers, self.dropout,
                     self.training, self.bidirectional)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu), stacked and optionally
    bidirectional. Shapes as ``RNNBase``; ``weight_ih_l0: (hidden, input_size)``, ``weight_hh_lk: (hidden, hidden)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device: Any = None, dtype: Any = None, *, proj_size: int | None = None) -> None:
        if proj_size is not None:
            raise ArgumentError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, gates ``i, f, g, o`` (rows of ``weight_ih_lk: (4 hidden, in)``):
    ``c_t = f c_{t-1} + i g``, ``h_t = o tanh(c_t)``; with ``proj_size > 0``, ``h_t = h_t W_hr^T``
    (``weight_hr_lk: (proj_size, hidden)``). Shapes as ``RNNBase``; ``hx`` is ``(h_0, c_0)``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 device: Any = None, dtype: Any = None) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         proj_size, device, dtype)


class GRU(RNNBase):
    """Gated recurrent unit, gates ``r, z, n`` (rows of ``weight_ih_lk: (3 hidden, in)``):
    ``n = tanh(W_in x + b_in + r (W_hn h + b_hn))``, ``h_t = (1 - z) n + z h_{t-1}``. Shapes as ``RNNBase``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None, *, proj_size: int | None = None) -> None:
        if proj_size is not None:
            raise ArgumentError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)


# ---------------------------------------------------------------- cells


class RNNCellBase(Module):
    """One step of a recurrent layer: ``weight_ih: (chunks * hidden, input_size)``,
    ``weight_hh: (chunks * hidden, hidden)``, ``bias_ih``/``bias_hh: (chunks * hidden,)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool, num_chunks: int, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__()
        _check_int("input_size", input_size)
        _check_int("hidden_size", hidden_size)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bias
        self.weight_ih = Parameter(empty((num_chunks * hidden_size, input_size), dtype=dtype, device=device))
        self.weight_hh = Parameter(empty((num_chunks * hidden_size, hidden_size), dtype=dtype, device=device))
        if bias:
            self.bias_ih = Parameter(empty((num_chunks * hidden_size,), dtype=dtype, device=device))
            self.bias_hh = Parameter(empty((num_chunks * hidden_size,), dtype=dtype, device=device))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = self.__dict__.get("nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _batched(self, input: Tensor, states: list[Tensor | None], what: list[str]) -> tuple[bool, Tensor, list]:  # noqa: A002
        """Check dims (1-D unbatched or 2-D batched), add the batch dim, and fill missing states with zeros."""
        name = type(self).__name__
        if not isinstance(input, Tensor):
            raise ArgumentTypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
        if input.ndim not in (1, 2):
            raise ShapeError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        for s, w in zip(states, what):
            if s is not None and s.ndim not in (1, 2):
                raise ShapeError(f"{name}: Expected {w} to be 1D or 2D, got {s.ndim}D instead")
        batched = input.ndim == 2
        if not batched:
            input = unsqueeze(input, 0)  # noqa: A001
        out = []
        for s in states:
            if s is None:
                s = zeros((input.shape[0], self.hidden_size), dtype=input.dtype, device=input.device)
            elif not batched:
                s = unsqueeze(s, 0)
            out.append(s)
        return batched, input, out


class RNNCell(RNNCellBase):
    """``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or relu): ``input (B, in)`` or ``(in,)``,
    ``hx (B, hidden)`` or ``(hidden,)`` (zeros if omitted) -> ``(B, hidden)`` or ``(hidden,)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 device: Any = None, dtype: Any = None) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ArgumentError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        super().__init__(input_size, hidden_size, bias, 1, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        batched, input, (h,) = self._batched(input, [hx], ["hidden"])  # noqa: A001
        cell = rnn_tanh_cell if self.nonlinearity == "tanh" else rnn_relu_cell
        out = cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else squeeze(out, 0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates ``i, f, g, o``): ``input (B, in)`` or ``(in,)``, ``hx = (h, c)`` each
    ``(B, hidden)`` or ``(hidden,)`` (zeros if omitted) -> ``(h', c')`` of the same shapes."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device, dtype)

    def forward(self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:  # noqa: A002
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ArgumentTypeError(f"LSTMCell: hx must be a tuple (h, c) of two tensors, got {type(hx).__name__}")
        states = [None, None] if hx is None else list(hx)
        batched, input, (h, c) = self._batched(input, states, ["hx[0]", "hx[1]"])  # noqa: A001
        h1, c1 = lstm_cell(input, (h, c), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return (h1, c1) if batched else (squeeze(h1, 0), squeeze(c1, 0))


class GRUCell(RNNCellBase):
    """One GRU step (gates ``r, z, n``): ``input (B, in)`` or ``(in,)``, ``hx (B, hidden)`` or ``(hidden,)``
    (zeros if omitted) -> ``(B, hidden)`` or ``(hidden,)``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
                 dtype: Any = None) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:  # noqa: A002
        batched, input, (h,) = self._batched(input, [hx], ["hidden"])  # noqa: A001
        out = gru_cell(input, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return out if batched else squeeze(out, 0)
