"""Pooling: max_pool1d/2d, avg_pool2d, adaptive_avg_pool2d, adaptive_max_pool2d (PyTorch semantics).

The loops live in ``hubkit.kernels``. Max pooling records which kernel position won only when a gradient
(or ``return_indices``) needs it; the indices it returns are PyTorch's flat ``h*W + w`` positions.
"""

from __future__ import annotations

from typing import Any

from hubkit import kernels
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ShapeError
from hubkit.kernels.shapes import pool_out_size
from hubkit.tensor import Tensor

IntPair = int | tuple[int, int]
Pair = tuple[int, int]


def _pair(value: Any, name: str, op: str, minimum: int) -> Pair:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ArgumentError(f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def _single(value: Any, name: str, op: str, minimum: int) -> int:
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(v, int) or v < minimum:
        raise ArgumentError(f"{op}: {name} must be an int >= {minimum} (or a 1-tuple), got {value!r}")
    return v


def _batched(op: str, x: Tensor, spatial: int) -> tuple[Tensor, bool]:
    """Accept (N, C, *spatial) or unbatched (C, *spatial); return a batched tensor and whether to squeeze."""
    if x.ndim == spatial + 1:
        return x.unsqueeze(0), True
    if x.ndim == spatial + 2:
        return x, False
    raise ShapeError(
        f"{op}: expected a {spatial + 2}-d (N, C, ...) or {spatial + 1}-d unbatched input, got shape {tuple(x.shape)}"
    )


def _pool_args(op: str, x: Tensor, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
               ceil_mode: bool) -> tuple[Pair, Pair, Pair, Pair]:  # fmt: skip
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride_ = kernel if stride is None or stride == () or stride == [] else _pair(stride, "stride", op, 1)
    pad = _pair(padding, "padding", op, 0)
    dil = _pair(dilation, "dilation", op, 1)
    for axis in range(2):
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


def max_pool2d(
    input: Tensor,  # noqa: A002  (PyTorch's name)
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
    geometry = _pool_args("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPool2d(*geometry, bool(ceil_mode), bool(return_indices))(x)
    if unbatched:
        return tuple(o.squeeze(0) for o in out) if return_indices else out.squeeze(0)
    return out


def max_pool1d(
    input: Tensor,  # noqa: A002
    kernel_size: int | tuple[int],
    stride: int | tuple[int] | None = None,
    padding: int | tuple[int] = 0,
    dilation: int | tuple[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """1-d max pooling, ``torch.nn.functional.max_pool1d``: (N, C, L) or (C, L) -> (N, C, OL); indices
    (with ``return_indices``) are positions along L."""
    op = "max_pool1d"
    x, unbatched = _batched(op, input, 1)
    k = _single(kernel_size, "kernel_size", op, 1)
    s = k if stride is None or stride == () else _single(stride, "stride", op, 1)
    p = _single(padding, "padding", op, 0)
    d = _single(dilation, "dilation", op, 1)
    out = max_pool2d(x.unsqueeze(2), (1, k), (1, s), (0, p), (1, d), ceil_mode, return_indices)
    outs = out if return_indices else (out,)
    # with height 1, the flat index h*W + w is the position along L
    outs = tuple(o.squeeze(2) for o in outs)
    if unbatched:
        outs = tuple(o.squeeze(0) for o in outs)
    return outs if return_indices else outs[0]


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
    kernel, stride_, pad, _ = _pool_args(op, x, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and (not isinstance(divisor_override, int) or divisor_override <= 0):
        raise ArgumentError(f"{op}: divisor_override must be a positive int or None, got {divisor_override!r}")
    y = AvgPool2d(kernel, stride_, pad, bool(ceil_mode), bool(count_include_pad), divisor_override)(x)
    return y.squeeze(0) if unbatched else y


def _adaptive_size(op: str, x: Tensor, output_size: Any) -> Pair:
    size = (output_size, output_size) if output_size is None or isinstance(output_size, int) else tuple(output_size)
    if len(size) != 2:
        raise ArgumentError(f"{op}: output_size must be an int, None or a pair, got {output_size!r}")
    out = tuple(x.shape[2 + i] if s is None else s for i, s in enumerate(size))
    if not all(isinstance(s, int) and s >= 1 for s in out):
        raise ArgumentError(f"{op}: output_size entries must be positive ints (or None), got {output_size!r}")
    if x.shape[2] == 0 or x.shape[3] == 0:
        raise ShapeError(f"{op}: input {tuple(x.shape)} has an empty spatial dimension")
    return out  # type: ignore[return-value]


def adaptive_avg_pool2d(input: Tensor, output_size: int | None | tuple[int | None, int | None]) -> Tensor:  # noqa: A002
    """Adaptive average pooling, ``torch.nn.functional.adaptive_avg_pool2d``: (N, C, H, W) or (C, H, W)
    -> (N, C, OH, OW); window ``i`` covers ``floor(i*H/OH)`` to ``ceil((i+1)*H/OH)``. ``None`` keeps a
    dimension's input size."""
    x, unbatched = _batched("adaptive_avg_pool2d", input, 2)
    y = AdaptiveAvgPool2d(_adaptive_size("adaptive_avg_pool2d", x, output_size))(x)
    return y.squeeze(0) if unbatched else y


def adaptive_max_pool2d(
    input: Tensor,  # noqa: A002
    output_size: int | None | tuple[int | None, int | None],
    return_indices: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Adaptive max pooling, ``torch.nn.functional.adaptive_max_pool2d``: (N, C, H, W) or (C, H, W)
    -> (N, C, OH, OW) [and int64 flat indices ``h*W + w``]."""
    x, unbatched = _batched("adaptive_max_pool2d", input, 2)
    out = AdaptiveMaxPool2d(_adaptive_size("adaptive_max_pool2d", x, output_size), bool(return_indices))(x)
    if unbatched:
        return tuple(o.squeeze(0) for o in out) if return_indices else out.squeeze(0)
    return out
