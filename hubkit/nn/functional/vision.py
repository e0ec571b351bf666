"""Vision helpers: interpolate (nearest, bilinear with align_corners) and one_hot."""

from __future__ import annotations

import math
from typing import Any

from hubkit import kernels
from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, DTypeError, ShapeError
from hubkit.tensor import Tensor

Scales = tuple[float | None, float | None]


class UpsampleNearest2d(Function):
    """``x`` (N, C, H, W) -> (N, C, OH, OW), PyTorch's ``mode="nearest"`` (source ``floor(i*scale)``)."""

    def __init__(self, out_hw: tuple[int, int], scales: Scales) -> None:
        self.out_hw, self.scales = out_hw, scales

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        return kernels.upsample_nearest2d(x, self.out_hw, self.scales)

    def backward(self, gy: Any) -> Any:
        return kernels.upsample_nearest2d_backward(gy, self.in_hw, self.scales)


class UpsampleBilinear2d(Function):
    """``x`` (N, C, H, W) -> (N, C, OH, OW), PyTorch's ``mode="bilinear"``."""

    def __init__(self, out_hw: tuple[int, int], align_corners: bool, scales: Scales) -> None:
        self.out_hw, self.align_corners, self.scales = out_hw, align_corners, scales

    def forward(self, x: Any) -> Any:
        self.in_hw = x.shape[2:]
        return kernels.upsample_bilinear2d(x, self.out_hw, self.align_corners, self.scales)

    def backward(self, gy: Any) -> Any:
        return kernels.upsample_bilinear2d_backward(gy, self.in_hw, self.align_corners, self.scales)


def _output_size(
    op: str, spatial: tuple[int, ...], size: Any, scale_factor: Any, recompute_scale_factor: bool | None
) -> tuple[tuple[int, ...], tuple[float | None, ...]]:
    dims = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ArgumentError(f"{op}: give exactly one of size and scale_factor (got size={size!r}, "
                            f"scale_factor={scale_factor!r})")  # fmt: skip
    if size is not None:
        out = (size,) * dims if isinstance(size, int) else tuple(size)
        if len(out) != dims or not all(isinstance(s, int) and s >= 1 for s in out):
            raise ArgumentError(f"{op}: size must be a positive int or {dims} of them for an input with {dims} "
                                f"spatial dims, got {size!r}")  # fmt: skip
        return out, (None,) * dims
    scales = (float(scale_factor),) * dims if isinstance(scale_factor, (int, float)) else tuple(scale_factor)
    if len(scales) != dims or not all(s > 0 for s in scales):
        raise ArgumentError(f"{op}: scale_factor must be a positive number or {dims} of them, got {scale_factor!r}")
    out = tuple(math.floor(n * s) for n, s in zip(spatial, scales))
    if not all(o >= 1 for o in out):
        raise ShapeError(f"{op}: input spatial size {spatial} with scale_factor {scale_factor!r} gives an empty output")
    # PyTorch samples with the given scale unless asked to recompute it from the rounded sizes
    return out, ((None,) * dims if recompute_scale_factor else tuple(float(s) for s in scales))


def interpolate(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
) -> Tensor:
    """Resize, ``torch.nn.functional.interpolate``.

    ``mode="nearest"``: input (N, C, L) or (N, C, H, W); ``mode="bilinear"``: input (N, C, H, W).
    Output (N, C, *size) or (N, C, *floor(in * scale_factor)). ``align_corners`` (bilinear only) maps the
    corner pixel centres onto each other; False (the default) samples at ``(i + 0.5) * in/out - 0.5``.
    """
    op = "interpolate"
    if mode not in ("nearest", "bilinear"):
        raise ArgumentError(f"{op}: mode must be 'nearest' or 'bilinear', got {mode!r}")
    if mode == "nearest" and align_corners is not None:
        raise ArgumentError(f"{op}: align_corners only applies to linear modes, not mode='nearest'; leave it None")
    if mode == "bilinear" and input.ndim != 4:
        raise ShapeError(f"{op}: mode='bilinear' expects a 4-d input (N, C, H, W), got {tuple(input.shape)}")
    if input.ndim not in (3, 4):
        raise ShapeError(f"{op}: mode='nearest' expects a 3-d (N, C, L) or 4-d (N, C, H, W) input, got "
                         f"{tuple(input.shape)}")  # fmt: skip
    out, scales = _output_size(op, tuple(input.shape[2:]), size, scale_factor, recompute_scale_factor)
    if input.ndim == 3:  # 1-d: resize a height-1 image
        y = UpsampleNearest2d((1, out[0]), (None, scales[0]))(input.unsqueeze(2))
        return y.squeeze(2)
    if mode == "nearest":
        return UpsampleNearest2d((out[0], out[1]), (scales[0], scales[1]))(input)
    return UpsampleBilinear2d((out[0], out[1]), bool(align_corners), (scales[0], scales[1]))(input)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """One-hot encoding, ``torch.nn.functional.one_hot``: int64 class indices (*) -> int64 (*, num_classes).

    ``num_classes=-1`` uses ``max(tensor) + 1``. Not differentiable (integer output).
    """
    data = tensor.array
    if data.dtype.kind not in "iu":
        raise DTypeError(f"one_hot: expected an integer (class index) tensor, got dtype {data.dtype}; "
                         "convert with .long()")  # fmt: skip
    xp = get_array_module(data)
    if data.size and int(data.min()) < 0:
        raise ArgumentError(f"one_hot: class indices must be non-negative, found {int(data.min())}")
    if num_classes == -1:
        if data.size == 0:
            raise ArgumentError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes")
        num_classes = int(data.max()) + 1
    elif data.size and int(data.max()) >= num_classes:
        raise ArgumentError(f"one_hot: class index {int(data.max())} is out of range for num_classes={num_classes}")
    out = xp.arange(num_classes, dtype=xp.int64) == data[..., None]
    return Tensor._make(out.astype(xp.int64))
