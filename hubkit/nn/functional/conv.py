"""Convolutions and their building blocks (PyTorch's signatures and semantics): conv1d/2d/3d,
conv_transpose1d/2d/3d, unfold (im2col) and fold (col2im).

The arithmetic lives in ``hubkit.kernels``: the tuned 2-d kernels (im2col + one GEMM on the CPU,
ElementwiseKernels + cuBLAS on the GPU) serve the 1-d and 2-d ops, ``kernels.nd`` (numpy and cupy alike)
the 3-d ones. These Functions only check arguments, pick what backward needs and route the gradients:
the input gradient of a convolution is a transposed convolution and vice versa.
"""

from __future__ import annotations

from typing import Any

from hubkit import kernels
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.kernels import nd
from hubkit.kernels.shapes import conv_out_size, conv_transpose_out_size, same_padding
from hubkit.tensor import Tensor

IntPair = int | tuple[int, int]
IntTriple = int | tuple[int, int, int]


def _ntuple(value: Any, n: int, name: str, op: str, minimum: int) -> tuple[int, ...]:
    """``value`` as ``n`` ints >= ``minimum`` (an int is repeated; a sequence must have ``n`` entries)."""
    if type(value) is int:  # the common cases first: this runs several times per convolution call
        if value >= minimum:
            return (value,) * n
    elif type(value) is tuple and len(value) == n:
        for v in value:
            if type(v) is not int or v < minimum:
                break
        else:
            return value
    values = (value,) * n if isinstance(value, int) else tuple(value) if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != n or not all(isinstance(v, int) and v >= minimum for v in values):
        raise ArgumentError(f"{op}: {name} must be an int >= {minimum} or {n} of them, got {value!r}")
    return values


def _pair(value: Any, name: str, op: str, minimum: int) -> tuple[int, int]:
    return _ntuple(value, 2, name, op, minimum)


def _single(value: Any, name: str, op: str, minimum: int) -> int:
    return _ntuple(value, 1, name, op, minimum)[0]


def _check_operands(op: str, x: Tensor, w: Tensor, b: Tensor | None, groups: int, transposed: bool,
                    dims: int = 2) -> None:  # fmt: skip
    if x.ndim != dims + 2 or w.ndim != dims + 2:
        layout = ("N", "C") + ("D", "H", "W")[3 - dims :]
        raise ShapeError(
            f"{op}: expected a {dims + 2}-d input ({', '.join(layout)}) (or {dims + 1}-d unbatched) and a "
            f"{dims + 2}-d weight, got input {tuple(x.shape)} and weight {tuple(w.shape)}"
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
            kernel = "K" if dims == 1 else ", ".join("K" + a for a in ("D", "H", "W")[3 - dims :])
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} has {c} channels but weight {tuple(w.shape)} expects {in_ch} "
                f"(weight is (C_in, C_out/groups, {kernel}), divisible by groups={groups})"
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


def _resolve_padding(padding: Any, kernel: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...],
                     op: str) -> tuple[tuple[int, int], ...]:  # fmt: skip
    dims = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * dims
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ArgumentError(f"{op}: padding='same' is not supported for strided convolutions (stride={stride})")
            return tuple(same_padding(k, d) for k, d in zip(kernel, dilation))
        raise ArgumentError(f"{op}: padding must be 'same', 'valid', an int or {dims} ints, got {padding!r}")
    return tuple((p, p) for p in _ntuple(padding, dims, "padding", op, 0))


def _check_output_size(op: str, x: Tensor, w: Tensor, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...],
                       dilation: tuple[int, ...]) -> None:  # fmt: skip
    for axis, (size, k, (p0, p1), d) in enumerate(zip(x.shape[2:], w.shape[2:], pads, dilation)):
        if size + p0 + p1 < d * (k - 1) + 1:  # no output position: conv_out_size(...) < 1
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} is too small for weight {tuple(w.shape)} along axis {axis + 2}: "
                f"padded size {size + p0 + p1} < dilated kernel size {d * (k - 1) + 1}"
            )


def _transposed_output_size(op: str, x: Tensor, w: Tensor, stride: tuple[int, ...], padding: tuple[int, ...],
                            output_padding: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:  # fmt: skip
    out = []
    for axis in range(len(stride)):
        if output_padding[axis] >= max(stride[axis], dilation[axis]):
            raise ArgumentError(
                f"{op}: output padding must be smaller than either stride or dilation, got output_padding "
                f"{output_padding}, stride {stride} and dilation {dilation}"
            )
        size = conv_transpose_out_size(x.shape[2 + axis], w.shape[2 + axis], stride[axis], padding[axis],
                                       output_padding[axis], dilation[axis])  # fmt: skip
        if size < 1:
            raise ShapeError(
                f"{op}: input {tuple(x.shape)} with weight {tuple(w.shape)} and padding {padding} gives an empty "
                f"output (size {size} along axis {axis + 2}); reduce the padding"
            )
        out.append(size)
    return tuple(out)


class Conv2d(Function):
    """``x`` (N, C, H, W), ``w`` (OC, C/groups, KH, KW), ``b`` (OC,) or None -> (N, OC, OH, OW)."""

    def __init__(self, stride: tuple[int, int], pads: tuple[tuple[int, int], tuple[int, int]],
                 dilation: tuple[int, int], groups: int) -> None:  # fmt: skip
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        need_w = self.needs_input_grad[1]
        self.w = w if self.needs_input_grad[0] else None
        self.in_hw = x.shape[2:]
        self.w_shape = w.shape
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
        gx, gw = kernels.conv2d_backward(self.x, gy, self.w, self.w_shape, self.in_hw, self.stride, self.pads,
                                         self.dilation, self.groups, self.columns, need_x, need_w)  # fmt: skip
        gb = kernels.bias_grad(gy) if need_b else None
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
            gb = kernels.bias_grad(gy)
        return gx, gw, gb


class ConvNd(Function):
    """``x`` (N, C, *S), ``w`` (OC, C/groups, *K), ``b`` (OC,) or None -> (N, OC, *O), on ``kernels.nd``."""

    def __init__(self, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...], dilation: tuple[int, ...],
                 groups: int) -> None:  # fmt: skip
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        self.in_size, self.kernel = x.shape[2:], w.shape[2:]
        return nd.conv(x, w, b, self.stride, self.pads, self.dilation, self.groups)

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        need_x, need_w, need_b = self.needs_input_grad
        args = (self.stride, self.pads, self.dilation, self.groups)
        gx = nd.conv_grad_input(gy, self.w, self.in_size, *args) if need_x else None
        gw = nd.conv_grad_weight(self.x, gy, self.kernel, *args) if need_w else None
        gb = kernels.bias_grad(gy) if need_b else None
        return gx, gw, gb


class ConvTransposeNd(Function):
    """``x`` (N, C_in, *S), ``w`` (C_in, C_out/groups, *K), ``b`` (C_out,) or None -> (N, C_out, *O): the
    adjoint of :class:`ConvNd` (plus bias)."""

    def __init__(self, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...], dilation: tuple[int, ...],
                 groups: int, out_size: tuple[int, ...]) -> None:  # fmt: skip
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.out_size = out_size

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        self.in_size, self.kernel = x.shape[2:], w.shape[2:]
        y = nd.conv_grad_input(x, w, self.out_size, self.stride, self.pads, self.dilation, self.groups)
        if b is not None:
            y += b.reshape((1, -1) + (1,) * len(self.out_size))
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        need_x, need_w, need_b = self.needs_input_grad
        args = (self.stride, self.pads, self.dilation, self.groups)
        gx = gw = gb = None
        if need_x:
            gx = nd.conv(gy, self.w, None, *args)
            # output_padding below the dilation can leave one extra position per axis; it saw no input
            gx = gx[(slice(None), slice(None)) + tuple(slice(0, n) for n in self.in_size)]
        if need_w:
            gw = nd.conv_grad_weight(gy, self.x, self.kernel, *args)
        if need_b:
            gb = kernels.bias_grad(gy)
        return gx, gw, gb


def _batched(op: str, input: Tensor, dims: int) -> tuple[Tensor, bool]:  # noqa: A002
    """(N, C, *S) as it is, or unbatched (C, *S) with a batch of one added (and whether to drop it)."""
    if input.ndim == dims + 1:
        return input.unsqueeze(0), True
    if input.ndim != dims + 2:
        raise ShapeError(f"{op}: expected a {dims + 2}-d batched or {dims + 1}-d unbatched input, got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    return input, False


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
    op = "conv2d"
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    _check_operands(op, x, weight, bias, groups, transposed=False)
    stride_ = _pair(stride, "stride", op, 1)
    dilation_ = _pair(dilation, "dilation", op, 1)
    pads = _resolve_padding(padding, tuple(weight.shape[2:]), stride_, dilation_, op)
    _check_output_size(op, x, weight, stride_, pads, dilation_)
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


def conv3d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntTriple = 1,
    padding: IntTriple | str = 0,
    dilation: IntTriple = 1,
    groups: int = 1,
) -> Tensor:
    """3-d cross-correlation, ``torch.nn.functional.conv3d``.

    ``input`` (N, C, D, H, W) or unbatched (C, D, H, W); ``weight`` (OC, C/groups, KD, KH, KW); ``bias``
    (OC,) -> (N, OC, OD, OH, OW), each size ``(size + 2*pad - dilation*(k-1) - 1) // stride + 1``.
    ``padding`` is an int, three ints, ``"valid"`` or ``"same"`` (stride 1 only).
    """
    op = "conv3d"
    x, unbatched = _batched(op, input, 3)
    _check_operands(op, x, weight, bias, groups, transposed=False, dims=3)
    stride_ = _ntuple(stride, 3, "stride", op, 1)
    dilation_ = _ntuple(dilation, 3, "dilation", op, 1)
    pads = _resolve_padding(padding, tuple(weight.shape[2:]), stride_, dilation_, op)
    _check_output_size(op, x, weight, stride_, pads, dilation_)
    y = ConvNd(stride_, pads, dilation_, groups)(x, weight, bias)
    return y.squeeze(0) if unbatched else y


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
    out_hw = _transposed_output_size(op, x, weight, stride_, pad, out_pad, dilation_)
    pads = ((pad[0], pad[0]), (pad[1], pad[1]))
    y = ConvTranspose2d(stride_, pads, dilation_, groups, out_hw)(x, weight, bias)
    return y.squeeze(0) if unbatched else y


def conv_transpose1d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int] = 1,
    padding: int | tuple[int] = 0,
    output_padding: int | tuple[int] = 0,
    groups: int = 1,
    dilation: int | tuple[int] = 1,
) -> Tensor:
    """Transposed 1-d convolution, ``torch.nn.functional.conv_transpose1d``: ``input`` (N, C_in, L) or
    (C_in, L), ``weight`` (C_in, C_out/groups, K), ``bias`` (C_out,) -> (N, C_out, OL) with
    ``OL = (L-1)*stride - 2*padding + dilation*(K-1) + output_padding + 1``. Runs as a conv_transpose2d over
    a height-1 image."""
    op = "conv_transpose1d"
    if input.ndim not in (2, 3) or weight.ndim != 3:
        raise ShapeError(
            f"{op}: expected input (N, C_in, L) or (C_in, L) and weight (C_in, C_out/groups, K), got input "
            f"{tuple(input.shape)} and weight {tuple(weight.shape)}"
        )
    s = _single(stride, "stride", op, 1)
    p = _single(padding, "padding", op, 0)
    o = _single(output_padding, "output_padding", op, 0)
    d = _single(dilation, "dilation", op, 1)
    if o >= max(s, d):
        raise ArgumentError(f"{op}: output padding must be smaller than either stride or dilation, got "
                            f"output_padding {o}, stride {s} and dilation {d}")  # fmt: skip
    y = conv_transpose2d(input.unsqueeze(-2), weight.unsqueeze(-2), bias, (1, s), (0, p), (0, o), groups, (1, d))
    return y.squeeze(-2)


def conv_transpose3d(
    input: Tensor,  # noqa: A002
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntTriple = 1,
    padding: IntTriple = 0,
    output_padding: IntTriple = 0,
    groups: int = 1,
    dilation: IntTriple = 1,
) -> Tensor:
    """Transposed 3-d convolution, ``torch.nn.functional.conv_transpose3d``.

    ``input`` (N, C_in, D, H, W) or (C_in, D, H, W); ``weight`` (C_in, C_out/groups, KD, KH, KW); ``bias``
    (C_out,) -> (N, C_out, OD, OH, OW), each ``(size-1)*stride - 2*padding + dilation*(k-1) + output_padding
    + 1``.
    """
    op = "conv_transpose3d"
    x, unbatched = _batched(op, input, 3)
    _check_operands(op, x, weight, bias, groups, transposed=True, dims=3)
    stride_ = _ntuple(stride, 3, "stride", op, 1)
    dilation_ = _ntuple(dilation, 3, "dilation", op, 1)
    pad = _ntuple(padding, 3, "padding", op, 0)
    out_pad = _ntuple(output_padding, 3, "output_padding", op, 0)
    out_size = _transposed_output_size(op, x, weight, stride_, pad, out_pad, dilation_)
    y = ConvTransposeNd(stride_, tuple((p, p) for p in pad), dilation_, groups, out_size)(x, weight, bias)
    return y.squeeze(0) if unbatched else y


# ---------------------------------------------------------------- unfold / fold (im2col / col2im)


class Unfold(Function):
    """``x`` (N, C, H, W) -> blocks (N, C*KH*KW, L), ``L = OH*OW``; rows ordered ``(c, ky, kx)``."""

    def __init__(self, kernel: tuple[int, int], dilation: tuple[int, int], padding: tuple[int, int],
                 stride: tuple[int, int]) -> None:  # fmt: skip
        self.args = (kernel, stride, ((padding[0], padding[0]), (padding[1], padding[1])), dilation)

    def forward(self, x: Any) -> Any:
        self.x_shape = x.shape
        col = kernels.im2col(x, *self.args)
        return col.reshape(col.shape[0], x.shape[0], -1).transpose(1, 0, 2).copy()

    def backward(self, gy: Any) -> Any:
        col = gy.transpose(1, 0, 2).reshape(gy.shape[1], -1)
        return kernels.col2im(col, self.x_shape, *self.args)


class Fold(Function):
    """Blocks (N, C*KH*KW, L) -> ``x`` (N, C, H, W), summing where blocks overlap: the adjoint of :class:`Unfold`."""

    def __init__(self, out_hw: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int],
                 padding: tuple[int, int], stride: tuple[int, int]) -> None:  # fmt: skip
        self.out_hw = out_hw
        self.args = (kernel, stride, ((padding[0], padding[0]), (padding[1], padding[1])), dilation)

    def forward(self, blocks: Any) -> Any:
        n, rows = blocks.shape[:2]
        kernel = self.args[0]
        x_shape = (n, rows // (kernel[0] * kernel[1])) + self.out_hw
        return kernels.col2im(blocks.transpose(1, 0, 2).reshape(rows, -1), x_shape, *self.args)

    def backward(self, gy: Any) -> Any:
        col = kernels.im2col(gy, *self.args)
        return col.reshape(col.shape[0], gy.shape[0], -1).transpose(1, 0, 2).copy()


def _block_counts(op: str, size: tuple[int, int], kernel: tuple[int, int], dilation: tuple[int, int],
                  padding: tuple[int, int], stride: tuple[int, int]) -> tuple[int, int]:  # fmt: skip
    counts = tuple(conv_out_size(n, k, s, p, p, d) for n, k, s, p, d in zip(size, kernel, stride, padding, dilation))
    if min(counts) < 1:
        raise ShapeError(
            f"{op}: spatial size {size} with kernel_size={kernel}, dilation={dilation}, padding={padding} holds no "
            f"complete block (block counts {counts}); use a larger input or more padding"
        )
    return counts


def unfold(
    input: Tensor,  # noqa: A002
    kernel_size: IntPair,
    dilation: IntPair = 1,
    padding: IntPair = 0,
    stride: IntPair = 1,
) -> Tensor:
    """Sliding local blocks, ``torch.nn.functional.unfold`` (im2col): (N, C, H, W) or (C, H, W)
    -> (N, C*KH*KW, L) with ``L`` the number of block positions ``OH*OW`` (row-major)."""
    op = "unfold"
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: expected a 4-d (N, C, H, W) or 3-d (C, H, W) input, got shape {tuple(input.shape)}")
    x = input.unsqueeze(0) if input.ndim == 3 else input
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    dil, pad, st = _pair(dilation, "dilation", op, 1), _pair(padding, "padding", op, 0), _pair(stride, "stride", op, 1)
    _block_counts(op, tuple(x.shape[2:]), kernel, dil, pad, st)
    y = Unfold(kernel, dil, pad, st)(x)
    return y.squeeze(0) if input.ndim == 3 else y


def fold(
    input: Tensor,  # noqa: A002
    output_size: IntPair,
    kernel_size: IntPair,
    dilation: IntPair = 1,
    padding: IntPair = 0,
    stride: IntPair = 1,
) -> Tensor:
    """Sum sliding local blocks into an image, ``torch.nn.functional.fold`` (col2im): (N, C*KH*KW, L) or
    (C*KH*KW, L) -> (N, C, *output_size); ``L`` must be the number of block positions in the output."""
    op = "fold"
    if input.ndim not in (2, 3):
        raise ShapeError(f"{op}: expected a 3-d (N, C*KH*KW, L) or 2-d (C*KH*KW, L) input, got shape "
                         f"{tuple(input.shape)}")  # fmt: skip
    x = input.unsqueeze(0) if input.ndim == 2 else input
    size = _pair(output_size, "output_size", op, 1)
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    dil, pad, st = _pair(dilation, "dilation", op, 1), _pair(padding, "padding", op, 0), _pair(stride, "stride", op, 1)
    if x.shape[1] % (kernel[0] * kernel[1]):
        raise ShapeError(f"{op}: input dim 1 ({x.shape[1]}) must be divisible by the product of kernel_size "
                         f"{kernel}, got input {tuple(input.shape)}")  # fmt: skip
    counts = _block_counts(op, size, kernel, dil, pad, st)
    if x.shape[2] != counts[0] * counts[1]:
        raise ShapeError(
            f"{op}: output_size={size}, kernel_size={kernel}, dilation={dil}, padding={pad}, stride={st} hold "
            f"{counts[0]} * {counts[1]} = {counts[0] * counts[1]} blocks, but input dim 2 is {x.shape[2]}"
        )
    y = Fold(size, kernel, dil, pad, st)(x)
    return y.squeeze(0) if input.ndim == 2 else y
