"""Pooling (PyTorch's signatures and semantics): max, average, adaptive, power-average (LP) pooling in
1, 2 and 3 dims, and max unpooling.

The loops live in ``hubkit.kernels``: the tuned 2-d kernels serve the 1-d and 2-d ops (1-d input runs as a
height-1 image), ``kernels.nd`` (numpy and cupy alike) the 3-d ones. Max pooling records which kernel
position won only when a gradient (or ``return_indices``) needs it; the indices it returns are PyTorch's
flat positions in each input plane (``h*W + w``, ``d*H*W + h*W + w``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from hubkit import kernels
from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.kernels import nd
from hubkit.kernels.shapes import pool_out_size
from hubkit.tensor import Tensor

IntPair = int | tuple[int, int]
IntTriple = int | tuple[int, int, int]
Pair = tuple[int, int]
Sizes = tuple[int, ...]


def _ntuple(value: Any, n: int, name: str, op: str, minimum: int) -> Sizes:
    values = (value,) * n if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != n or not all(isinstance(v, int) and v >= minimum for v in values):
        what = "an int" if n == 1 else f"an int or {n} of them"
        raise ArgumentError(f"{op}: {name} must be {what} >= {minimum}, got {value!r}")
    return values


def _batched(op: str, x: Tensor, spatial: int) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or unbatched (C, *spatial); return a batched tensor and whether to squeeze."""
    if x.ndim == spatial + 1:
        return x.unsqueeze(0), True
    if x.ndim == spatial + 2:
        return x, False
    raise ShapeError(
        f"{op}: expected a {spatial + 2}-d (N, C, ...) or {spatial + 1}-d unbatched input, got shape {tuple(x.shape)}"
    )


def _unbatch(out: Any, unbatched: bool, with_indices: bool) -> Any:
    if not unbatched:
        return out
    return tuple(o.squeeze(0) for o in out) if with_indices else out.squeeze(0)


def _pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool,
               dims: int) -> tuple[Sizes, Sizes, Sizes, Sizes]:  # fmt: skip
    """Validated (kernel, stride, padding, dilation) for pooling the last ``dims`` axes of batched ``x``."""
    kernel = _ntuple(kernel_size, dims, "kernel_size", op, 1)
    no_stride = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    stride_ = kernel if no_stride else _ntuple(stride, dims, "stride", op, 1)
    pad = _ntuple(padding, dims, "padding", op, 0)
    dil = _ntuple(dilation, dims, "dilation", op, 1)
    for axis in range(dims):
        if 2 * pad[axis] > dil[axis] * (kernel[axis] - 1) + 1:
            raise ArgumentError(
                f"{op}: padding {pad} must be at most half of the effective kernel size "
                f"(kernel_size {kernel}, dilation {dil})"
            )
        out = pool_out_size(x.shape[2 + axis], kernel[axis], stride_[axis], pad[axis], dil[axis], ceil_mode)
        if out < 1:
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} is too small for kernel_size {kernel} with padding {pad} and "
                f"dilation {dil} (output size {out} along axis {axis + 2})"
            )
    return kernel, stride_, pad, dil


def _divisor(op: str, divisor_override: Any) -> int | None:
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override <= 0):
        raise ArgumentError(f"{op}: divisor_override must be a positive int or None, got {divisor_override!r}")
    return divisor_override


# ---------------------------------------------------------------- Functions


class MaxPool2d(Function):
    """``x`` (N, C, H, W) -> ``y`` (N, C, OH, OW) [and int64 indices (N, C, OH, OW)]."""

    def __init__(self, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, ceil_mode: bool,
                 return_indices: bool) -> None:  # fmt: skip
        self.geometry = (kernel, stride, padding, dilation)
        self.ceil_mode = ceil_mode
        self.return_indices = return_indices

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        need_arg = self.needs_input_grad[0] or self.return_indices
        y, arg = kernels.max_pool2d(x, *self.geometry, self.ceil_mode, need_arg)
        self.argmax = arg if self.needs_input_grad[0] else None
        if self.return_indices:
            return y, kernels.max_pool2d_indices(arg, self.in_hw, *self.geometry)
        return y

    def backward(self, gy: Any, *unused_index_grad: Any) -> Any:
        return kernels.max_pool2d_backward(gy, self.argmax, self.in_hw, *self.geometry, self.ceil_mode)


class MaxPoolNd(Function):
    """``x`` (N, C, *S) -> ``y`` (N, C, *O) [and int64 flat indices], on ``kernels.nd``."""

    def __init__(self, kernel: Sizes, stride: Sizes, padding: Sizes, dilation: Sizes, ceil_mode: bool,
                 return_indices: bool) -> None:  # fmt: skip
        self.geometry = (kernel, stride, padding, dilation)
        self.ceil_mode = ceil_mode
        self.return_indices = return_indices

    def forward(self, x: Any) -> Any:
        self.in_size = x.shape[2:]
        need_arg = self.needs_input_grad[0] or self.return_indices
        y, arg = nd.max_pool(x, *self.geometry, self.ceil_mode, need_arg)
        self.argmax = arg if self.needs_input_grad[0] else None
        if self.return_indices:
            return y, nd.max_pool_indices(arg, self.in_size, *self.geometry)
        return y

    def backward(self, gy: Any, *unused_index_grad: Any) -> Any:
        return nd.max_pool_backward(gy, self.argmax, self.in_size, *self.geometry, self.ceil_mode)


class AvgPool2d(Function):
    """``x`` (N, C, H, W) -> (N, C, OH, OW)."""

    def __init__(self, kernel: Pair, stride: Pair, padding: Pair, ceil_mode: bool, count_include_pad: bool,
                 divisor_override: int | None) -> None:  # fmt: skip
        self.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        return kernels.avg_pool2d(x, *self.args)

    def backward(self, gy: Any) -> Any:
        return kernels.avg_pool2d_backward(gy, self.in_hw, *self.args)


class AvgPoolNd(Function):
    """``x`` (N, C, *S) -> (N, C, *O), on ``kernels.nd``."""

    def __init__(self, kernel: Sizes, stride: Sizes, padding: Sizes, ceil_mode: bool, count_include_pad: bool,
                 divisor_override: int | None) -> None:  # fmt: skip
        self.args = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)

    def forward(self, x: Any) -> Any:
        self.in_size = x.shape[2:]
        return nd.avg_pool(x, *self.args)

    def backward(self, gy: Any) -> Any:
        return nd.avg_pool_backward(gy, self.in_size, *self.args)


class AdaptiveAvgPool2d(Function):
    """``x`` (N, C, H, W) -> (N, C, OH, OW)."""

    def __init__(self, out_hw: Pair) -> None:
        self.out_hw = out_hw

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        return kernels.adaptive_avg_pool2d(x, self.out_hw)

    def backward(self, gy: Any) -> Any:
        return kernels.adaptive_avg_pool2d_backward(gy, self.in_hw)


class AdaptiveMaxPool2d(Function):
    """``x`` (N, C, H, W) -> ``y`` (N, C, OH, OW) [and int64 indices]."""

    def __init__(self, out_hw: Pair, return_indices: bool) -> None:
        self.out_hw = out_hw
        self.return_indices = return_indices

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        y, indices = kernels.adaptive_max_pool2d(x, self.out_hw)
        self.indices = indices if self.needs_input_grad[0] else None
        return (y, indices) if self.return_indices else y

    def backward(self, gy: Any, *unused_index_grad: Any) -> Any:
        return kernels.adaptive_max_pool2d_backward(gy, self.indices, self.in_hw)


class AdaptiveMaxPoolNd(Function):
    """``x`` (N, C, *S) -> ``y`` (N, C, *O) [and int64 flat indices], on ``kernels.nd``."""

    def __init__(self, out: Sizes, return_indices: bool) -> None:
        self.out = out
        self.return_indices = return_indices

    def forward(self, x: Any) -> Any:
        self.in_size = x.shape[2:]
        y, indices = nd.adaptive_max_pool(x, self.out)
        self.indices = indices if self.needs_input_grad[0] else None
        return (y, indices) if self.return_indices else y

    def backward(self, gy: Any, *unused_index_grad: Any) -> Any:
        return nd.adaptive_max_pool_backward(gy, self.indices, self.in_size)


class Resample(Function):
    """A separable linear map of the spatial axes, one ``kernels.nd.Taps`` per axis (None keeps an axis):
    ``x`` (N, C, *S) -> (N, C, *O). Adaptive average pooling in 3-d and most ``interpolate`` modes are one."""

    def __init__(self, tables: tuple[nd.Taps | None, ...]) -> None:
        self.tables = tables

    def forward(self, x: Any) -> Any:
        return nd.resample(x, self.tables)

    def backward(self, gy: Any) -> Any:
        return nd.resample_backward(gy, self.tables)


class MaxUnpool(Function):
    """``x`` (N, C, *I) and flat ``indices`` -> (N, C, *out), zeros except at the indices."""

    def __init__(self, indices: Any, out: Sizes) -> None:
        self.indices, self.out = indices, out

    def forward(self, x: Any) -> Any:
        return nd.max_unpool(x, self.indices, self.out)

    def backward(self, gy: Any) -> Any:
        return nd.max_unpool_backward(gy, self.indices)


class _LPRoot(Function):
    """``u ** (1/p)`` whose gradient is 0 where ``u == 0`` (PyTorch's lp_pool: "if the sum of all inputs to
    the power of p is zero, the gradient is set to zero"); a plain pow would give 0 * inf there."""

    def __init__(self, norm_type: float) -> None:
        self.p = norm_type

    def forward(self, u: Any) -> Any:
        self.u = u
        with np.errstate(invalid="ignore"):  # a negative sum (odd p) gives nan, silently as in PyTorch
            self.y = u ** u.dtype.type(1 / self.p)
        return self.y

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        nonzero = self.u != 0
        safe = xp.where(nonzero, self.u, self.u.dtype.type(1))
        return xp.where(nonzero, gy * (self.y / safe) * gy.dtype.type(1 / self.p), gy.dtype.type(0))


# ---------------------------------------------------------------- max pooling


def max_pool1d(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """1-d max pooling, ``torch.nn.functional.max_pool1d``: (N, C, L) or (C, L) -> (N, C, OL); indices
    (with ``return_indices``) are positions along L. Runs as a 2-d pool over a height-1 image."""
    op = "max_pool1d"
    x, unbatched = _batched(op, input, 1)
    (k,), (s,), (p,), (d,) = _pool_args(op, x, kernel_size, stride, padding, dilation, ceil_mode, 1)
    out = MaxPool2d((1, k), (1, s), (0, p), (1, d), bool(ceil_mode), bool(return_indices))(x.unsqueeze(2))
    # with height 1, the flat index h*W + w is the position along L
    out = tuple(o.squeeze(2) for o in out) if return_indices else out.squeeze(2)
    return _unbatch(out, unbatched, return_indices)


def max_pool2d(
    input: Tensor,  # noqa: A002
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """2-d max pooling, ``torch.nn.functional.max_pool2d``: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW).

    Padding is -inf (it never wins). ``stride`` defaults to ``kernel_size``. With ``ceil_mode`` the last
    window may overhang the input as long as it starts inside it. ``return_indices`` also returns int64
    flat indices ``h*W + w`` of each maximum (the first one on ties).
    """
    x, unbatched = _batched("max_pool2d", input, 2)
    geometry = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode, 2)
    out = MaxPool2d(*geometry, bool(ceil_mode), bool(return_indices))(x)
    return _unbatch(out, unbatched, return_indices)


def max_pool3d(
    input: Tensor,  # noqa: A002
    kernel_size: IntTriple,
    stride: IntTriple | None = None,
    padding: IntTriple = 0,
    dilation: IntTriple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """3-d max pooling, ``torch.nn.functional.max_pool3d``: (N, C, D, H, W) or (C, D, H, W)
    -> (N, C, OD, OH, OW) [and int64 flat indices ``d*H*W + h*W + w``, the first maximum on ties]."""
    x, unbatched = _batched("max_pool3d", input, 3)
    geometry = _pool_args("max_pool3d", x, kernel_size, stride, padding, dilation, ceil_mode, 3)
    out = MaxPoolNd(*geometry, bool(ceil_mode), bool(return_indices))(x)
    return _unbatch(out, unbatched, return_indices)


# ---------------------------------------------------------------- average pooling


def avg_pool1d(
    input: Tensor,  # noqa: A002
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """1-d average pooling, ``torch.nn.functional.avg_pool1d``: (N, C, L) or (C, L) -> (N, C, OL)."""
    op = "avg_pool1d"
    x, unbatched = _batched(op, input, 1)
    (k,), (s,), (p,), _ = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode, 1)
    y = AvgPool2d((1, k), (1, s), (0, p), bool(ceil_mode), bool(count_include_pad), None)(x.unsqueeze(2))
    return _unbatch(y.squeeze(2), unbatched, False)


def avg_pool2d(
    input: Tensor,  # noqa: A002
    kernel_size: IntPair,
    stride: IntPair | None = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """2-d average pooling, ``torch.nn.functional.avg_pool2d``: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW).

    The divisor is the window size clipped to the padded input (``count_include_pad=True``) or to the
    input itself (False), or ``divisor_override`` when given.
    """
    op = "avg_pool2d"
    x, unbatched = _batched(op, input, 2)
    kernel, stride_, pad, _ = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode, 2)
    divisor = _divisor(op, divisor_override)
    y = AvgPool2d(kernel, stride_, pad, bool(ceil_mode), bool(count_include_pad), divisor)(x)
    return _unbatch(y, unbatched, False)


def avg_pool3d(
    input: Tensor,  # noqa: A002
    kernel_size: IntTriple,
    stride: IntTriple | None = None,
    padding: IntTriple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """3-d average pooling, ``torch.nn.functional.avg_pool3d``: (N, C, D, H, W) or (C, D, H, W)
    -> (N, C, OD, OH, OW), with avg_pool2d's divisor rules."""
    op = "avg_pool3d"
    x, unbatched = _batched(op, input, 3)
    kernel, stride_, pad, _ = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode, 3)
    divisor = _divisor(op, divisor_override)
    y = AvgPoolNd(kernel, stride_, pad, bool(ceil_mode), bool(count_include_pad), divisor)(x)
    return _unbatch(y, unbatched, False)


# ---------------------------------------------------------------- adaptive pooling


def _adaptive_size(op: str, x: Tensor, output_size: Any, dims: int) -> Sizes:
    if output_size is None or isinstance(output_size, int):
        size: tuple = (output_size,) * dims
    elif isinstance(output_size, (tuple, list)):
        size = tuple(output_size)
    else:
        size = ()
    if len(size) != dims:
        raise ArgumentError(f"{op}: output_size must be an int, None or {dims} of them, got {output_size!r}")
    out = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))
    if not all(isinstance(s, int) and s >= 1 for s in out):
        raise ArgumentError(f"{op}: output_size entries must be positive ints (or None), got {output_size!r}")
    if 0 in x.shape[2:]:
        raise ShapeError(f"{op}: input {tuple(x.shape)} has an empty spatial dimension")
    return out


def adaptive_avg_pool1d(input: Tensor, output_size: int | tuple[int]) -> Tensor:  # noqa: A002
    """Adaptive average pooling, ``torch.nn.functional.adaptive_avg_pool1d``: (N, C, L) or (C, L)
    -> (N, C, output_size); window ``i`` covers ``floor(i*L/OL)`` to ``ceil((i+1)*L/OL)``."""
    op = "adaptive_avg_pool1d"
    x, unbatched = _batched(op, input, 1)
    (out,) = _adaptive_size(op, x, output_size, 1)
    y = AdaptiveAvgPool2d((1, out))(x.unsqueeze(2)).squeeze(2)
    return _unbatch(y, unbatched, False)


def adaptive_avg_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None]) -> Tensor:  # noqa: A002
    """Adaptive average pooling, ``torch.nn.functional.adaptive_avg_pool2d``: (N, C, H, W) or (C, H, W)
    -> (N, C, OH, OW); window ``i`` covers ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH)``. ``None`` keeps a
    dimension's input size."""
    x, unbatched = _batched("adaptive_avg_pool2d", input, 2)
    y = AdaptiveAvgPool2d(_adaptive_size("adaptive_avg_pool2d", x, output_size, 2))(x)
    return _unbatch(y, unbatched, False)


def adaptive_avg_pool3d(input: Tensor, output_size: int | None | tuple[int | None, ...]) -> Tensor:  # noqa: A002
    """Adaptive average pooling, ``torch.nn.functional.adaptive_avg_pool3d``: (N, C, D, H, W) or
    (C, D, H, W) -> (N, C, OD, OH, OW); a box mean is the mean along each axis in turn."""
    op = "adaptive_avg_pool3d"
    x, unbatched = _batched(op, input, 3)
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: expected a floating-point input, got {x.dtype}")
    out = _adaptive_size(op, x, output_size, 3)
    tables = tuple(None if n == o else nd.area_taps(n, o) for n, o in zip(x.shape[2:], out))
    return _unbatch(Resample(tables)(x), unbatched, False)


def adaptive_max_pool1d(
    input: Tensor,  # noqa: A002
    output_size: int | tuple[int],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool1d``: (N, C, L) or (C, L)
    -> (N, C, output_size) [and int64 positions along L]."""
    op = "adaptive_max_pool1d"
    x, unbatched = _batched(op, input, 1)
    (out,) = _adaptive_size(op, x, output_size, 1)
    res = AdaptiveMaxPool2d((1, out), bool(return_indices))(x.unsqueeze(2))
    res = tuple(r.squeeze(2) for r in res) if return_indices else res.squeeze(2)
    return _unbatch(res, unbatched, return_indices)


def adaptive_max_pool2d(
    input: Tensor,  # noqa: A002
    output_size: int | None | tuple[int | None, int | None],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool2d``: (N, C, H, W) or (C, H, W)
    -> (N, C, OH, OW) [and int64 flat indices ``h*W + w``]."""
    x, unbatched = _batched("adaptive_max_pool2d", input, 2)
    out = _adaptive_size("adaptive_max_pool2d", x, output_size, 2)
    res = AdaptiveMaxPool2d(out, bool(return_indices))(x)
    return _unbatch(res, unbatched, return_indices)


def adaptive_max_pool3d(
    input: Tensor,  # noqa: A002
    output_size: int | None | tuple[int | None, ...],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool3d``: (N, C, D, H, W) or (C, D, H, W)
    -> (N, C, OD, OH, OW) [and int64 flat indices ``d*H*W + h*W + w``, the first maximum on ties]."""
    x, unbatched = _batched("adaptive_max_pool3d", input, 3)
    out = _adaptive_size("adaptive_max_pool3d", x, output_size, 3)
    return _unbatch(AdaptiveMaxPoolNd(out, bool(return_indices))(x), unbatched, return_indices)


# ---------------------------------------------------------------- power-average (LP) pooling


def _lp_pool(op: str, input: Tensor, norm_type: float, kernel_size: Any, stride: Any, ceil_mode: bool,  # noqa: A002
             dims: int) -> Tensor:  # fmt: skip
    if not isinstance(norm_type, (int, float)) or isinstance(norm_type, bool) or norm_type == 0:
        raise ArgumentError(f"{op}: norm_type must be a non-zero number, got {norm_type!r}")
    pool = (max_pool1d, max_pool2d, max_pool3d)[dims - 1]
    if norm_type == math.inf:
        return pool(input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    if norm_type == -math.inf:
        return -pool(-input.abs(), kernel_size, stride, 0, 1, ceil_mode)
    kernel = _ntuple(kernel_size, dims, "kernel_size", op, 1)
    avg = (avg_pool1d, avg_pool2d, avg_pool3d)[dims - 1]
    # sum over the window = mean * window size; PyTorch writes sign(s) * relu(|s|), which is s itself
    # (its gradient being 1, or 0 where s == 0, what _LPRoot already gives)
    total = avg(input.pow(norm_type), kernel, stride, 0, ceil_mode) * math.prod(kernel)
    return _LPRoot(float(norm_type))(total)


def lp_pool1d(
    input: Tensor,  # noqa: A002
    norm_type: float,
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """Power-average pooling, ``torch.nn.functional.lp_pool1d``: ``(sum over the window of x**p) ** (1/p)``,
    (N, C, L) or (C, L) -> (N, C, OL); ``p = inf`` is max pooling of ``|x|``."""
    return _lp_pool("lp_pool1d", input, norm_type, kernel_size, stride, ceil_mode, 1)


def lp_pool2d(
    input: Tensor,  # noqa: A002
    norm_type: float,
    kernel_size: IntPair,
    stride: IntPair | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """Power-average pooling, ``torch.nn.functional.lp_pool2d``: (N, C, H, W) or (C, H, W) -> (N, C, OH, OW)."""
    return _lp_pool("lp_pool2d", input, norm_type, kernel_size, stride, ceil_mode, 2)


def lp_pool3d(
    input: Tensor,  # noqa: A002
    norm_type: float,
    kernel_size: IntTriple,
    stride: IntTriple | None = None,
    ceil_mode: bool = False,
) -> Tensor:
    """Power-average pooling, ``torch.nn.functional.lp_pool3d``: (N, C, D, H, W) or (C, D, H, W)
    -> (N, C, OD, OH, OW)."""
    return _lp_pool("lp_pool3d", input, norm_type, kernel_size, stride, ceil_mode, 3)


# ---------------------------------------------------------------- max unpooling


def _max_unpool(op: str, input: Tensor, indices: Tensor, kernel_size: Any, stride: Any, padding: Any,  # noqa: A002
                output_size: Any, dims: int) -> Tensor:  # fmt: skip
    x, unbatched = _batched(op, input, dims)
    if tuple(indices.shape) != tuple(input.shape):
        raise ShapeError(f"{op}: indices {tuple(indices.shape)} must have the input's shape {tuple(input.shape)}")
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"{op}: indices must be an integer tensor (from max_pool's return_indices), got "
                         f"{indices.dtype}")  # fmt: skip
    kernel = _ntuple(kernel_size, dims, "kernel_size", op, 1)
    stride_ = kernel if stride is None else _ntuple(stride, dims, "stride", op, 1)
    pad = _ntuple(padding, dims, "padding", op, 0)
    default = tuple((n - 1) * s + k - 2 * p for n, s, k, p in zip(x.shape[2:], stride_, kernel, pad))
    if output_size is None:
        out = default
    else:
        out = tuple(output_size)[-dims:] if len(tuple(output_size)) in (dims, dims + 2) else ()
        if len(out) != dims:
            raise ArgumentError(f"{op}: output_size must have {dims} or {dims + 2} entries, got {output_size!r}")
        for d, (size, base, s) in enumerate(zip(out, default, stride_)):
            if not base - s < size < base + s:
                raise ArgumentError(f"{op}: invalid output_size {tuple(out)} (dim {d} must be between {base - s} "
                                    f"and {base + s}, exclusive)")  # fmt: skip
    flat = indices.unsqueeze(0).array if unbatched else indices.array
    plane = math.prod(out)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= plane):
        raise ArgumentError(f"{op}: found an index outside the output plane of size {out} ({plane} positions): "
                            f"indices range from {int(flat.min())} to {int(flat.max())}")  # fmt: skip
    return _unbatch(MaxUnpool(flat.astype("int64", copy=False), out)(x), unbatched, False)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                 output_size: Any = None) -> Tensor:  # fmt: skip
    """Partial inverse of max_pool1d, ``torch.nn.functional.max_unpool1d``: ``input`` (N, C, L) or (C, L)
    placed at ``indices`` in zeros (N, C, OL), ``OL = (L-1)*stride - 2*padding + kernel_size`` unless
    ``output_size`` is given."""
    return _max_unpool("max_unpool1d", input, indices, kernel_size, stride, padding, output_size, 1)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                 output_size: Any = None) -> Tensor:  # fmt: skip
    """Partial inverse of max_pool2d, ``torch.nn.functional.max_unpool2d``: (N, C, H, W) or (C, H, W)
    -> (N, C, OH, OW), zeros except at the flat ``indices`` (``h*OW + w``)."""
    return _max_unpool("max_unpool2d", input, indices, kernel_size, stride, padding, output_size, 2)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                 output_size: Any = None) -> Tensor:  # fmt: skip
    """Partial inverse of max_pool3d, ``torch.nn.functional.max_unpool3d``: (N, C, D, H, W) or (C, D, H, W)
    -> (N, C, OD, OH, OW)."""
    return _max_unpool("max_unpool3d", input, indices, kernel_size, stride, padding, output_size, 3)


# ---------------------------------------------------------------- the *_with_indices forms
# torch.nn.functional's max_pool2d is max_pool2d_with_indices (or its output alone): these always return
# (output, indices), whatever ``return_indices`` says, as torch's do.


def max_pool1d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``max_pool1d`` -> ``(output, indices)``, each (N, C, OL)."""
    return max_pool1d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool2d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``max_pool2d`` -> ``(output, indices)``, each (N, C, OH, OW), indices flat ``h*W + w``."""
    return max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def max_pool3d_with_indices(input: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,  # noqa: A002
                            dilation: Any = 1, ceil_mode: bool = False,
                            return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``max_pool3d`` -> ``(output, indices)``, each (N, C, OD, OH, OW)."""
    return max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)


def adaptive_max_pool1d_with_indices(input: Tensor, output_size: Any,  # noqa: A002
                                     return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``adaptive_max_pool1d`` -> ``(output, indices)``."""
    return adaptive_max_pool1d(input, output_size, return_indices=True)


def adaptive_max_pool2d_with_indices(input: Tensor, output_size: Any,  # noqa: A002
                                     return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``adaptive_max_pool2d`` -> ``(output, indices)``."""
    return adaptive_max_pool2d(input, output_size, return_indices=True)


def adaptive_max_pool3d_with_indices(input: Tensor, output_size: Any,  # noqa: A002
                                     return_indices: bool = False) -> tuple[Tensor, Tensor]:
    """``adaptive_max_pool3d`` -> ``(output, indices)``."""
    return adaptive_max_pool3d(input, output_size, return_indices=True)
