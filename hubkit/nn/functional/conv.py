"""Convolutions: conv1d, conv2d, conv_transpose2d (PyTorch's signatures and semantics).

The arithmetic lives in ``hubkit.kernels`` (im2col + one GEMM on the CPU, ElementwiseKernels + cuBLAS on
the GPU); these Functions only check arguments, pick what backward needs and route the gradients:
the input gradient of a convolution is a transposed convolution and vice versa.
"""

from __future__ import annotations

from typing import Any

from hubkit import kernels
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.kernels.shapes import conv_out_size, conv_transpose_out_size, same_padding
from hubkit.tensor import Tensor

IntPair = int | tuple[int, int]


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= minimum for v in pair):
        raise ArgumentError(f"{op}: {name} must be an int >= {minimum} or a pair of them, got {value!r}")
    return pair  # type: ignore[return-value]


def _single(value: Any, name: str, op: str, minimum: int) -> int:
    v = value[0] if isinstance(value, (tuple, list)) and len(value) == 1 else value
    if not isinstance(v, int) or v < minimum:
        raise ArgumentError(f"{op}: {name} must be an int >= {minimum} (or a 1-tuple), got {value!r}")
    return v


def _check_operands(op: str, x: Tensor, w: Tensor, b: Tensor | None, groups: int, transposed: bool) -> None:
    if x.ndim != 4 or w.ndim != 4:
        raise ShapeError(
            f"{op}: expected a 4-d input (N, C, H, W) and a 4-d weight, got input {tuple(x.shape)} and weight "
            f"{tuple(w.shape)}"
        )
    if not isinstance(groups, int) or groups < 1:
        raise ArgumentError(f"{op}: groups must be a positive int, got {groups!r}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise DTypeError(
            f"{op}: input, weight and bias must share a dtype, got {x.dtype}, {w.dtype}"
            f"{'' if b is None else ', ' + str(b.dtype)}: cast them with .to(dtype)"
        )
    c = x.shape[1]
    if transposed:
        in_ch, out_ch = w.shape[0], w.shape[1] * groups
        if in_ch != c or in_ch % groups:
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} has {c} channels but weight {tuple(w.shape)} expects {in_ch} "
                f"(weight is (C_in, C_out/groups, KH, KW), divisible by groups={groups})"
            )
    else:
        out_ch = w.shape[0]
        if w.shape[1] * groups != c or out_ch % groups:
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} has {c} channels but weight {tuple(w.shape)} with groups={groups} "
                f"expects {w.shape[1] * groups} (and out channels divisible by groups)"
            )
    if b is not None and tuple(b.shape) != (out_ch,):
        raise ShapeError(f"{op}: bias has shape {tuple(b.shape)}, expected ({out_ch},)")


def _resolve_padding(padding: Any, kernel: tuple[int, int], stride: tuple[int, int],
                     dilation: tuple[int, int], op: str) -> tuple[tuple[int, int], tuple[int, int]]:  # fmt: skip
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ArgumentError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            return (same_padding(kernel[0], dilation[0]), same_padding(kernel[1], dilation[1]))
        raise ArgumentError(f"{op}: padding must be 'same', 'valid', an int or a pair, got {padding!r}")
    ph, pw = _pair(padding, "padding", op, 0)
    return ((ph, ph), (pw, pw))


class Conv2d(Function):
    """``x`` (N, C, H, W), ``w`` (OC, C/groups, KH, KW), ``b`` (OC,) or None -> (N, OC, OH, OW)."""

    def __init__(self, stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]],
                 dilation: tuple[int, int], groups: int) -> None:  # fmt: skip
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        need_w = self.needs_input_grad[1]
        self.w = w if self.needs_input_grad[0] else None
        self.in_hw = x.shape[2:]
        self.kernel = w.shape[2:]
        args = (self.stride, self.pads, self.dilation, self.groups)
        if not need_w:
            self.x = self.columns = None
            return kernels.conv2d(x, w, b, *args)
        # the weight gradient reuses the forward's columns when the kernel kept them (small convs)
        y, self.columns = kernels.conv2d(x, w, b, *args, keep_columns=True)
        self.x = x if self.columns is None else None
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        need_x, need_w, need_b = self.needs_input_grad
        args = (self.stride, self.pads, self.dilation, self.groups)
        gx = kernels.conv2d_grad_input(gy, self.w, self.in_hw, *args) if need_x else None
        gw = kernels.conv2d_grad_weight(self.x, gy, self.kernel, *args, columns=self.columns) if need_w else None
        gb = gy.sum(axis=(0, 2, 3)) if need_b else None
        return gx, gw, gb


class ConvTranspose2d(Function):
    """``x`` (N, C_in, H, W), ``w`` (C_in, C_out/groups, KH, KW), ``b`` (C_out,) or None
    -> (N, C_out, OH, OW): the adjoint of :class:`Conv2d` (plus bias)."""

    def __init__(self, stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]],
                 dilation: tuple[int, int], groups: int, out_hw: tuple[int, int]) -> None:  # fmt: skip
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.out_hw = out_hw

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        self.in_hw = x.shape[2:]
        self.kernel = w.shape[2:]
        y = kernels.conv2d_grad_input(x, w, self.out_hw, self.stride, self.pads, self.dilation, self.groups)
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        need_x, need_w, need_b = self.needs_input_grad
        args = (self.stride, self.pads, self.dilation, self.groups)
        gx = gw = gb = None
        if need_x:
            gx = kernels.conv2d(gy, self.w, None, *args)
            # output_padding below the dilation can leave one extra row/column; it saw no input
            gx = gx[:, :, : self.in_hw[0], : self.in_hw[1]]
        if need_w:
            gw = kernels.conv2d_grad_weight(gy, self.x, self.kernel, *args)
        if need_b:
            gb = gy.sum(axis=(0, 2, 3))
        return gx, gw, gb


def conv2d(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair | str = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> Tensor:
    """2-d cross-correlation, ``torch.nn.functional.conv2d``.

    ``input`` (N, C, H, W) or unbatched (C, H, W); ``weight`` (OC, C/groups, KH, KW); ``bias`` (OC,)
    -> (N, OC, OH, OW) with ``OH = (H + 2*pad - dilation*(KH-1) - 1) // stride + 1``. ``padding`` is an
    int, a pair, ``"valid"`` (none) or ``"same"`` (output size = input size, stride 1 only; an odd total
    puts the extra pixel at the bottom/right, as PyTorch does).
    """
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    _check_operands("conv2d", x, weight, bias, groups, transposed=False)
    stride_ = _pair(stride, "stride", "conv2d", 1)
    dilation_ = _pair(dilation, "dilation", "conv2d", 1)
    kernel = tuple(weight.shape[2:])
    pads = _resolve_padding(padding, kernel, stride_, dilation_, "conv2d")
    for axis, (size, k, s, p, d) in enumerate(zip(x.shape[2:], kernel, stride_, pads, dilation_)):
        if conv_out_size(size, k, s, p[0], p[1], d) < 1:
            raise ShapeError(
                f"conv2d: input {tuple(input.shape)} is too small for weight {tuple(weight.shape)} along axis "
                f"{axis + 2}: padded size {size + p[0] + p[1]} < dilated kernel size {d * (k - 1) + 1}"
            )
    y = Conv2d(stride_, pads, dilation_, groups)(x, weight, bias)
    return y.squeeze(0) if unbatched else y


def conv1d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] | str = 0,
    dilation: int | tuple[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-d cross-correlation, ``torch.nn.functional.conv1d``: ``input`` (N, C, L) or (C, L), ``weight``
    (OC, C/groups, K), ``bias`` (OC,) -> (N, OC, OL). Runs as a conv2d over a height-1 image."""
    if input.ndim not in (2, 3) or weight.ndim != 3:
        raise ShapeError(
            f"conv1d: expected input (N, C, L) or (C, L) and weight (OC, C/groups, K), got input "
            f"{tuple(input.shape)} and weight {tuple(weight.shape)}"
        )
    s = _single(stride, "stride", "conv1d", 1)
    d = _single(dilation, "dilation", "conv1d", 1)
    pad: Any = padding if isinstance(padding, str) else (0, _single(padding, "padding", "conv1d", 0))
    y = conv2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), pad, (1, d), groups)
    return y.squeeze(-2)


def conv_transpose2d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    groups: int = 1,
    dilation: IntPair = 1,
) -> Tensor:
    """Transposed 2-d convolution, ``torch.nn.functional.conv_transpose2d``.

    ``input`` (N, C_in, H, W) or (C_in, H, W); ``weight`` (C_in, C_out/groups, KH, KW); ``bias`` (C_out,)
    -> (N, C_out, OH, OW) with ``OH = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``.
    """
    op = "conv_transpose2d"
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    _check_operands(op, x, weight, bias, groups, transposed=True)
    stride_ = _pair(stride, "stride", op, 1)
    dilation_ = _pair(dilation, "dilation", op, 1)
    pad = _pair(padding, "padding", op, 0)
    out_pad = _pair(output_padding, "output_padding", op, 0)
    out_hw = []
    for axis in range(2):
        if out_pad[axis] >= max(stride_[axis], dilation_[axis]):
            raise ArgumentError(
                f"{op}: output_padding {out_pad} must be smaller than either stride {stride_} or dilation "
                f"{dilation_} along each axis"
            )
        size = conv_transpose_out_size(
            x.shape[2 + axis], weight.shape[2 + axis], stride_[axis], pad[axis], out_pad[axis], dilation_[axis]
        )
        if size < 1:
            raise ShapeError(
                f"{op}: input {tuple(input.shape)} with weight {tuple(weight.shape)} and padding {pad} gives an "
                f"empty output (size {size} along axis {axis + 2}); reduce the padding"
            )
        out_hw.append(size)
    pads = ((pad[0], pad[0]), (pad[1], pad[1]))
    y = ConvTranspose2d(stride_, pads, dilation_, groups, (out_hw[0], out_hw[1]))(x, weight, bias)
    return y.squeeze(0) if unbatched else y
