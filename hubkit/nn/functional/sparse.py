"""Embedding lookup: rows of a weight matrix picked by integer indices, singly or reduced in bags."""

from __future__ import annotations

from typing import Any

from hubkit._backend import get_array_module, scatter_add
from hubkit.autograd import Function, no_grad
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError
from hubkit.tensor import Tensor


def _scatter_add_rows(target: Any, index: Any, rows: Any) -> None:
    """``target[index[i]] += rows[i]`` for a contiguous 2-d ``target``, repeated indices accumulating.

    Done as one 1-d scatter: numpy's ``add.at`` has a fast path only for 1-d operands (5120 rows of 64
    into a 10000-row table: 0.41 ms flattened, 2.28 ms row-wise).
    """
    xp = get_array_module(target)
    width = target.shape[1]
    flat = (index[:, None] * width + xp.arange(width)).reshape(-1)
    scatter_add(target.reshape(-1), flat, rows.reshape(-1))


class Embedding(Function):
    """``y = weight[index]``; the weight's gradient sums the rows of ``gy`` that share an index."""

    def __init__(self, index: Any, padding_idx: int | None, scale_grad_by_freq: bool) -> None:
        self.index, self.padding_idx, self.scale_grad_by_freq = index, padding_idx, scale_grad_by_freq

    def forward(self, weight: Any) -> Any:
        self.weight_shape = weight.shape
        return get_array_module(weight).take(weight, self.index, axis=0)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        flat = self.index.reshape(-1)
        rows = gy.reshape(flat.size, self.weight_shape[1])
        if self.scale_grad_by_freq:
            counts = xp.bincount(flat, minlength=self.weight_shape[0])
            rows = rows / counts[flat][:, None].astype(gy.dtype)
        gw = xp.zeros(self.weight_shape, dtype=gy.dtype)
        _scatter_add_rows(gw, flat, rows)
        if self.padding_idx is not None:
            gw[self.padding_idx] = 0
        return gw


def _renorm_rows(weight: Tensor, index: Any, max_norm: float, norm_type: float) -> None:
    """Rescale, in place, the looked-up rows whose ``norm_type``-norm exceeds ``max_norm`` (as PyTorch does)."""
    xp = weight._xp
    rows = xp.unique(index.reshape(-1))
    w = weight.array[rows]
    norms = (xp.abs(w) ** norm_type).sum(axis=1) ** (1.0 / norm_type)
    scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0).astype(w.dtype)
    with no_grad():
        weight.array[rows] = w * scale[:, None]


def embedding(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Look up rows of ``weight``: ``input: (*)`` integer indices, ``weight: (num_embeddings, dim)``
    -> ``(*, dim)``.

    ``padding_idx``: that row gets no gradient. ``max_norm``: looked-up rows with a larger norm
    are rescaled in place first. ``scale_grad_by_freq``: divide each row's gradient by how often
    its index occurs in ``input``.
    """
    if sparse:
        raise ArgumentError("embedding: sparse gradients are not supported; pass sparse=False (gradients are dense)")
    if weight.ndim != 2:
        raise ShapeError(f"embedding: weight must be 2-d (num_embeddings, embedding_dim), got {tuple(weight.shape)}")
    index = weight._xp.asarray(input.array if isinstance(input, Tensor) else input)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"embedding: indices must be an integer tensor, got {index.dtype}")
    num = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexOutOfRangeError(f"embedding: index {bad} is out of range for a weight with {num} rows")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ArgumentError(f"embedding: padding_idx {padding_idx} must be within [-{num}, {num})")
        padding_idx %= num
    if max_norm is not None:
        _renorm_rows(weight, index, max_norm, norm_type)
    return Embedding(index, padding_idx, scale_grad_by_freq)(weight)


_BAG_MODES = ("sum", "mean", "max")


class EmbeddingBag(Function):
    """Rows of ``weight`` gathered by ``index`` and reduced per bag (sum, mean or max) -> (bags, dim).

    One fused node: gathering per bag as separate ops would record O(bags) nodes. ``bag_of[i]`` is the bag
    of ``index[i]`` (entries equal to padding_idx were dropped before); ``kept`` says which entries of
    ``per_sample_weights`` they were.
    """

    def __init__(self, index: Any, bag_of: Any, kept: Any, num_bags: int, mode: str, freq: Any) -> None:
        self.index, self.bag_of, self.kept, self.freq = index, bag_of, kept, freq
        self.num_bags, self.mode = num_bags, mode

    def forward(self, weight: Any, per_sample_weights: Any) -> Any:
        xp = get_array_module(weight)
        self.weight_shape = weight.shape
        rows = xp.take(weight, self.index, axis=0)
        dim = weight.shape[1]
        self.counts = xp.bincount(self.bag_of, minlength=self.num_bags)
        if self.mode == "max":
            return self._max_forward(xp, rows)
        if per_sample_weights is not None:
            self.psw = per_sample_weights[self.kept]
            if self.needs_input_grad[1]:
                self.rows = rows
            rows = rows * self.psw[:, None]
        out = xp.zeros((self.num_bags, dim), dtype=weight.dtype)
        _scatter_add_rows(out, self.bag_of, rows)
        if self.mode == "mean":
            out /= xp.maximum(self.counts, 1)[:, None].astype(out.dtype)
        return out

    def _max_forward(self, xp: Any, rows: Any) -> Any:
        # one dense (bags, longest bag, dim) block filled with -inf: max and first-argmax per bag in two calls
        first = xp.cumsum(self.counts) - self.counts
        slot = xp.arange(self.index.size) - first[self.bag_of]
        longest = max(int(self.counts.max()) if self.counts.size else 0, 1)
        dense = xp.full((self.num_bags, longest, rows.shape[1]), -xp.inf, dtype=rows.dtype)
        dense[self.bag_of, slot] = rows
        rows_of = xp.zeros((self.num_bags, longest), dtype=self.index.dtype)
        rows_of[self.bag_of, slot] = self.index
        winner = dense.argmax(axis=1)  # (bags, dim)
        self.winner_rows = xp.take_along_axis(rows_of, winner, axis=1)
        nonempty = (self.counts > 0)[:, None]
        return xp.where(nonempty, dense.max(axis=1), rows.dtype.type(0))

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        gw = gpsw = None
        if self.mode == "max":
            gw = xp.zeros(self.weight_shape, dtype=gy.dtype)
            nonempty = self.counts > 0
            dim = self.weight_shape[1]
            flat = (self.winner_rows[nonempty] * dim + xp.arange(dim)).reshape(-1)
            scatter_add(gw.reshape(-1), flat, gy[nonempty].reshape(-1))
            return gw, None
        g_rows = xp.take(gy, self.bag_of, axis=0)
        if self.mode == "mean":
            g_rows = g_rows / xp.maximum(self.counts, 1)[self.bag_of][:, None].astype(gy.dtype)
        if self.needs_input_grad[1]:
            gpsw = xp.zeros(self.kept.shape, dtype=gy.dtype)
            gpsw[self.kept] = (g_rows * self.rows).sum(axis=1)
        if self.needs_input_grad[0]:
            if hasattr(self, "psw"):
                g_rows = g_rows * self.psw[:, None]
            if self.freq is not None:
                g_rows = g_rows / self.freq[self.index][:, None].astype(gy.dtype)
            gw = xp.zeros(self.weight_shape, dtype=gy.dtype)
            _scatter_add_rows(gw, self.index, g_rows)
        return gw, gpsw


def _bag_layout(op: str, xp: Any, index: Any, offsets: Any, include_last_offset: bool) -> tuple[Any, int, int]:
    """``(bag of each index entry, number of bags, entries used)`` from torch's offsets convention."""
    offsets = xp.asarray(offsets.array if isinstance(offsets, Tensor) else offsets)
    if offsets.ndim != 1:
        raise ShapeError(f"{op}: offsets has to be a 1D Tensor, got shape {tuple(offsets.shape)}")
    if offsets.dtype.kind not in "iu":
        raise DTypeError(f"{op}: offsets must be an integer tensor, got {offsets.dtype}")
    n = index.size
    if offsets.size and int(offsets[0]) != 0:
        raise ArgumentError(f"{op}: offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to "
                            f"start from position 0; got {int(offsets[0])}")
    if offsets.size and (int(offsets[-1]) > n or bool((offsets[1:] < offsets[:-1]).any())):
        raise ArgumentError(f"{op}: offsets must be non-decreasing and at most the input's length {n}, got "
                            f"{offsets.tolist()}")
    if include_last_offset:
        if offsets.size == 0:
            raise ArgumentError(f"{op}: include_last_offset=True needs at least one offset (the end)")
        starts, end = offsets[:-1], int(offsets[-1])
    else:
        starts, end = offsets, n
    bag_of = xp.searchsorted(starts, xp.arange(end), side="right") - 1
    return bag_of, int(starts.size), end


def embedding_bag(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, means or maxes of bags of embeddings, ``torch.nn.functional.embedding_bag`` -> ``(bags, dim)``.

    ``input`` is ``(B, N)`` (B bags of N indices; ``offsets`` must be None) or 1-d with ``offsets``
    (the start of each bag; with ``include_last_offset`` the last entry is the end of the last bag).
    ``per_sample_weights`` (the shape of ``input``, ``mode='sum'`` only) scales each looked-up row.
    Entries equal to ``padding_idx`` are left out (and out of the mean's count); an empty bag gives zeros.
    """
    op = "embedding_bag"
    if sparse:
        raise ArgumentError(f"{op}: sparse gradients are not supported; pass sparse=False (gradients are dense)")
    if mode not in _BAG_MODES:
        raise ArgumentError(f"{op}: mode has to be one of sum, mean or max, got {mode!r}")
    if mode == "max" and scale_grad_by_freq:
        raise ArgumentError(f"{op}: max mode does not support scaling the gradient by the frequency")
    if weight.ndim != 2:
        raise ShapeError(f"{op}: weight has to be a 2D Tensor (num_embeddings, embedding_dim), got shape "
                         f"{tuple(weight.shape)}")
    xp = weight._xp
    index = xp.asarray(input.array if isinstance(input, Tensor) else input)
    if index.dtype.kind not in "iu":
        raise DTypeError(f"{op}: indices must be an integer tensor, got {index.dtype}")
    if per_sample_weights is not None:
        if tuple(per_sample_weights.shape) != tuple(index.shape):
            raise ShapeError(f"{op}: if per_sample_weights ({tuple(per_sample_weights.shape)}) is not None, then it "
                             f"must have the same shape as the input ({tuple(index.shape)})")
        if mode != "sum":
            raise ArgumentError(f"{op}: per_sample_weights is only supported for mode='sum' (got mode='{mode}')")
        if per_sample_weights.dtype != weight.dtype:
            raise DTypeError(f"{op}: per_sample_weights dtype {per_sample_weights.dtype} and weight dtype "
                             f"{weight.dtype} differ; cast one with .to()")
    if index.ndim == 2:
        if offsets is not None:
            raise ArgumentError(f"{op}: if input is 2D, then offsets has to be None, as input is treated as a "
                                "mini-batch of fixed length sequences")
        bags, length = index.shape
        index = index.reshape(-1)
        bag_of, end = xp.repeat(xp.arange(bags), length), bags * length
    elif index.ndim == 1:
        if offsets is None:
            raise ArgumentError(f"{op}: offsets has to be a 1D Tensor but got None (needed for a 1D input)")
        bag_of, bags, end = _bag_layout(op, xp, index, offsets, include_last_offset)
    else:
        raise ShapeError(f"{op}: input has to be 1D or 2D Tensor, but got shape {tuple(index.shape)}")
    num = weight.shape[0]
    if index.size and (int(index.min()) < 0 or int(index.max()) >= num):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise IndexOutOfRangeError(f"{op}: index {bad} is out of range for a weight with {num} rows")
    if padding_idx is not None:
        if not -num <= padding_idx < num:
            raise ArgumentError(f"{op}: padding_idx {padding_idx} must be within [-{num}, {num})")
        padding_idx %= num
    used = index[:end]
    kept = used != padding_idx if padding_idx is not None else xp.ones(end, dtype=bool)
    if end < index.size:
        kept = xp.concatenate([kept, xp.zeros(index.size - end, dtype=bool)])
    if max_norm is not None:
        _renorm_rows(weight, used, max_norm, norm_type)
    freq = xp.bincount(index[kept], minlength=num) if scale_grad_by_freq else None
    psw = None if per_sample_weights is None else per_sample_weights.reshape(-1)
    fn = EmbeddingBag(index[kept], bag_of[kept[:end]], kept, bags, mode, freq)
    return fn(weight, psw)
