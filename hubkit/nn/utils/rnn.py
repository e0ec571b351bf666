"""Variable-length sequences (``torch.nn.utils.rnn``): PackedSequence, pack/pad and their inverses.

A ``PackedSequence`` holds the time steps of a batch of sequences sorted longest first, step after
step: ``data: (N, *)`` with ``batch_sizes[t]`` rows for step ``t``. The recurrent layers run on it
without touching padding. Packing and unpacking are differentiable (one gather / scatter of rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

from hubkit._backend import CPU, get_array_module, to_device
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from hubkit.ops.shape import getitem
from hubkit.tensor import Tensor, float16, float32, float64, int32, int64

__all__ = [
    "PackedSequence",
    "invert_permutation",
    "pack_padded_sequence",
    "pad_packed_sequence",
    "pad_sequence",
    "unpad_sequence",
    "pack_sequence",
    "unpack_sequence",
]


class _PackedSequenceFields(NamedTuple):
    data: Tensor
    batch_sizes: Tensor
    sorted_indices: Tensor | None
    unsorted_indices: Tensor | None


class PackedSequence(_PackedSequenceFields):
    """``(data (N, *), batch_sizes (T,) int64 on the CPU, sorted_indices (B,) or None, unsorted_indices (B,) or
    None)``, a named tuple as in PyTorch. Build one with ``pack_padded_sequence`` or ``pack_sequence``.

    ``sorted_indices[j]`` is the batch position of the ``j``-th longest sequence; ``unsorted_indices`` is its
    inverse (computed when not given).
    """

    __slots__ = ()

    def __new__(cls, data: Any, batch_sizes: Tensor | None = None, sorted_indices: Tensor | None = None,
                unsorted_indices: Tensor | None = None) -> PackedSequence:
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        if batch_sizes is None:  # PyTorch's older form: PackedSequence((data, batch_sizes))
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise ArgumentError("PackedSequence: without batch_sizes, data must be a (data, batch_sizes) pair; "
                                    "build packed sequences with pack_padded_sequence or pack_sequence")
            data, batch_sizes = data
        if not isinstance(batch_sizes, Tensor) or batch_sizes.device.type != "cpu":
            raise ArgumentError("PackedSequence: batch_sizes must be a CPU tensor of int64; build packed sequences "
                                "with pack_padded_sequence or pack_sequence instead of by hand")
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(...)``; the index tensors follow ``data`` to its device, ``batch_sizes`` stays on the CPU."""
        data = self.data.to(*args, **kwargs)
        if data is self.data:
            return self

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(data.device)

        return type(self)(data, self.batch_sizes, move(self.sorted_indices), move(self.unsorted_indices))

    def cuda(self, device: Any = None) -> PackedSequence:
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def cpu(self) -> PackedSequence:
        return self.to("cpu")

    def double(self) -> PackedSequence:
        return self.to(dtype=float64)

    def float(self) -> PackedSequence:
        return self.to(dtype=float32)

    def half(self) -> PackedSequence:
        return self.to(dtype=float16)

    def long(self) -> PackedSequence:
        return self.to(dtype=int64)

    def int(self) -> PackedSequence:
        return self.to(dtype=int32)

    @property
    def is_cuda(self) -> bool:
        return self.data.is_cuda


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of a permutation ``(B,)`` of ``0..B-1`` (``out[permutation[j]] = j``); None stays None."""
    if permutation is None:
        return None
    xp = get_array_module(permutation.array)
    out = xp.empty_like(permutation.array)
    out[permutation.array] = xp.arange(permutation.array.size, dtype=permutation.array.dtype)
    return Tensor._make(out)


# ---------------------------------------------------------------- moving rows between padded and packed


def _packed_rows(batch_sizes: np.ndarray, order: np.ndarray | None, batch: int, steps: int,
                 batch_first: bool) -> np.ndarray:
    """For each packed row, its row in the padded tensor flattened over its first two dims.

    Packed row ``(t, j)`` (step ``t``, ``j``-th longest sequence) is padded position ``(t, order[j])``
    (``(order[j], t)`` when batch-first) of a ``(steps, batch)`` grid.
    """
    t = np.repeat(np.arange(batch_sizes.size), batch_sizes)
    j = np.arange(t.size) - np.repeat(np.cumsum(batch_sizes) - batch_sizes, batch_sizes)
    b = j if order is None else order[j]
    return b * steps + t if batch_first else t * batch + b


class _GatherRows(Function):
    """Padded ``(A, C, *)`` -> packed ``(N, *)``: row ``k`` is ``padded.reshape(A * C, *)[rows[k]]``."""

    def __init__(self, rows: np.ndarray) -> None:
        self.rows = rows

    def forward(self, x: Any) -> Any:
        xp = get_array_module(x)
        self.shape = x.shape
        self.rows = xp.asarray(self.rows)
        return x.reshape((-1,) + x.shape[2:])[self.rows]

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        g = xp.zeros((self.shape[0] * self.shape[1],) + self.shape[2:], dtype=gy.dtype)
        g[self.rows] = gy  # each padded position holds at most one packed row: no accumulation needed
        return g.reshape(self.shape)


class _ScatterRows(Function):
    """Packed ``(N, *)`` -> padded ``shape = (A, C, *)`` filled with ``value``: the inverse of ``_GatherRows``."""

    def __init__(self, rows: np.ndarray, shape: tuple[int, ...], value: Any) -> None:
        self.rows, self.shape, self.value = rows, shape, value

    def forward(self, data: Any) -> Any:
        xp = get_array_module(data)
        self.rows = xp.asarray(self.rows)
        out = xp.full((self.shape[0] * self.shape[1],) + self.shape[2:], self.value, dtype=data.dtype)
        out[self.rows] = data
        return out.reshape(self.shape)

    def backward(self, gy: Any) -> Any:
        return gy.reshape((-1,) + gy.shape[2:])[self.rows]


def _host_lengths(lengths: Any, op: str) -> np.ndarray:
    if isinstance(lengths, Tensor):
        lengths = to_device(lengths.array, CPU)
    array = np.asarray(lengths)
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iuf"):
        raise ArgumentTypeError(f"{op}: lengths must be a 1-D list or tensor of ints, got "
                                f"{array.ndim}-D {array.dtype} values")
    return array.astype(np.int64)


def _batch_sizes_of(lengths: np.ndarray) -> np.ndarray:
    """``batch_sizes[t]``: how many of the (sorted, positive) ``lengths`` exceed ``t``."""
    return (lengths[None, :] > np.arange(int(lengths.max()))[:, None]).sum(axis=1).astype(np.int64)


def pack_padded_sequence(input: Tensor, lengths: Any, batch_first: bool = False,  # noqa: A002
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` if ``batch_first``) of sequences of ``lengths`` (B,).

    With ``enforce_sorted`` the lengths must be in decreasing order; otherwise the batch is sorted here
    and ``sorted_indices`` / ``unsorted_indices`` record the permutation.
    """
    lengths = _host_lengths(lengths, "pack_padded_sequence")
    if input.ndim < 2:
        raise ShapeError(f"pack_padded_sequence: input must be at least 2-D (T, B, *), got shape {tuple(input.shape)}")
    batch, steps = (input.shape[0], input.shape[1]) if batch_first else (input.shape[1], input.shape[0])
    if lengths.size != batch:
        raise ShapeError(f"pack_padded_sequence: expected `len(lengths)` to be equal to batch_size, but got "
                         f"{lengths.size} (batch_size={batch})")
    if (lengths <= 0).any():
        raise ArgumentError("pack_padded_sequence: length of all samples has to be greater than 0, but found an "
                            "element in 'lengths' that is <= 0; drop empty sequences before packing")
    if enforce_sorted:
        if (np.diff(lengths) > 0).any():
            raise ArgumentError("pack_padded_sequence: `lengths` array must be sorted in decreasing order when "
                                "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                                "pack_padded_sequence and/or pack_sequence to sidestep this requirement")
        order = None
    else:
        order = np.argsort(-lengths, kind="stable")
        lengths = lengths[order]
    if lengths[0] > steps:
        raise ShapeError(f"pack_padded_sequence: a sequence length of {lengths[0]} exceeds the input's {steps} time "
                         f"steps (input shape {tuple(input.shape)}, batch_first={batch_first})")
    batch_sizes = _batch_sizes_of(lengths)
    data = _GatherRows(_packed_rows(batch_sizes, order, batch, steps, batch_first))(input)
    sorted_indices = None if order is None else Tensor(order.astype(np.int64), device=input.device)
    return PackedSequence(data, Tensor(batch_sizes), sorted_indices, None)


def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False, padding_value: float = 0.0,
                        total_length: int | None = None) -> tuple[Tensor, Tensor]:
    """The inverse of ``pack_padded_sequence``: ``(padded (T, B, *) or (B, T, *), lengths (B,) int64)``,
    in the batch's original order. ``total_length`` pads to that many steps (at least the longest).
    """
    batch_sizes = to_device(sequence.batch_sizes.array, CPU).astype(np.int64)
    steps = batch_sizes.size
    if total_length is not None:
        if total_length < steps:
            raise ArgumentError(f"pad_packed_sequence: expected total_length to be at least the length of the longest "
                                f"sequence in input, but got total_length={total_length} and max sequence length "
                                f"being {steps}")
        steps = int(total_length)
    batch = int(batch_sizes[0])
    unsorted = None if sequence.unsorted_indices is None else to_device(sequence.unsorted_indices.array, CPU)
    order = None if unsorted is None else np.argsort(unsorted)  # sorted position -> batch position
    data = sequence.data
    shape = ((batch, steps) if batch_first else (steps, batch)) + tuple(data.shape[1:])
    rows = _packed_rows(batch_sizes, order, batch, steps, batch_first)
    padded = _ScatterRows(rows, shape, padding_value)(data)
    lengths = (batch_sizes[None, :] > np.arange(batch)[:, None]).sum(axis=1).astype(np.int64)
    if unsorted is not None:
        lengths = lengths[unsorted]
    return padded, Tensor(lengths)


class _PadSequence(Function):
    """``B`` tensors ``(L_i, *)`` -> ``(max L, B, *)`` (``(B, max L, *)`` if batch-first) filled with ``value``."""

    def __init__(self, batch_first: bool, value: Any, left: bool) -> None:
        self.batch_first, self.value, self.left = batch_first, value, left

    def _index(self, b: int, length: int, steps: int) -> tuple:
        time = slice(steps - length, steps) if self.left else slice(0, length)
        return (b, time) if self.batch_first else (time, b)

    def forward(self, *seqs: Any) -> Any:
        xp = get_array_module(seqs[0])
        self.lengths = [s.shape[0] for s in seqs]
        self.steps = max(self.lengths)
        batch, rest = len(seqs), seqs[0].shape[1:]
        shape = ((batch, self.steps) if self.batch_first else (self.steps, batch)) + rest
        out = xp.full(shape, self.value, dtype=seqs[0].dtype)
        for b, s in enumerate(seqs):
            out[self._index(b, s.shape[0], self.steps)] = s
        return out

    def backward(self, gy: Any) -> tuple[Any, ...]:
        return tuple(gy[self._index(b, n, self.steps)] for b, n in enumerate(self.lengths))


def pad_sequence(sequences: Iterable[Tensor], batch_first: bool = False, padding_value: float = 0.0,
                 padding_side: str = "right") -> Tensor:
    """Stack sequences ``(L_i, *)`` into ``(max L, B, *)`` (``(B, max L, *)`` if ``batch_first``), padding
    each on the ``padding_side`` ('right' or 'left') with ``padding_value``.
    """
    if not isinstance(sequences, Iterable):
        raise ArgumentTypeError(f"pad_sequence: expected an iterable of tensors, got {type(sequences).__name__}")
    seqs = tuple(sequences)
    if not seqs:
        raise ArgumentError("pad_sequence: received an empty list of sequences; pass at least one tensor")
    if padding_side not in ("left", "right"):
        raise ArgumentError(f"pad_sequence: padding_side must be 'left' or 'right', got {padding_side!r}")
    first = seqs[0]
    for s in seqs:
        if not isinstance(s, Tensor):
            raise ArgumentTypeError(f"pad_sequence: expected a sequence of Tensors, found a {type(s).__name__}")
        if s.ndim == 0 or s.shape[1:] != first.shape[1:]:
            raise ShapeError(f"pad_sequence: every sequence must be (L, *) with the same trailing dims; got shapes "
                             f"{tuple(first.shape)} and {tuple(s.shape)}")
        if s.dtype != first.dtype:
            raise DTypeError(f"pad_sequence: all sequences must have one dtype, got {first.dtype} and {s.dtype}")
    return _PadSequence(batch_first, padding_value, padding_side == "left")(*seqs)


def unpad_sequence(padded_sequences: Tensor, lengths: Any, batch_first: bool = False) -> list[Tensor]:
    """The inverse of ``pad_sequence``: ``(T, B, *)`` (or ``(B, T, *)``) and ``lengths (B,)`` -> ``B`` tensors
    ``(L_i, *)``."""
    lengths = _host_lengths(lengths, "unpad_sequence")
    batch = padded_sequences.shape[0 if batch_first else 1]
    if lengths.size != batch:
        raise ShapeError(f"unpad_sequence: got {lengths.size} lengths for a batch of {batch}")
    return [getitem(padded_sequences, (b, slice(0, int(n))) if batch_first else (slice(0, int(n)), b))
            for b, n in enumerate(lengths)]


def pack_sequence(sequences: Iterable[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of sequences ``(L_i, *)`` (longest first unless ``enforce_sorted=False``)."""
    seqs = list(sequences)
    return pack_padded_sequence(pad_sequence(seqs), [s.shape[0] for s in seqs], enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """The inverse of ``pack_sequence``: the list of sequences ``(L_i, *)`` in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
