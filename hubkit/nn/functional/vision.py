"""Vision ops: interpolate (every PyTorch mode) and its upsample aliases, pixel_shuffle/unshuffle,
channel_shuffle, one_hot.

Nearest and bilinear resizing of images run on the tuned 2-d kernels; every other mode is a separable
linear map (``pooling.Resample`` with one ``kernels.nd.Taps`` per axis), and ``area`` is adaptive
average pooling, as in PyTorch.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from hubkit import kernels
from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from hubkit.kernels import nd
from hubkit.nn.functional.pooling import (
    Resample,
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_avg_pool3d,
)
from hubkit.ops.shape import permute, reshape
from hubkit.tensor import Tensor

Scales = tuple[float | None, float | None]

_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area", "lanczos")
# the input rank each interpolating mode needs (the others take 3-, 4- or 5-d input)
_MODE_NDIM = {"linear": 3, "bilinear": 4, "bicubic": 4, "lanczos": 4, "trilinear": 5}


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
    """Output spatial size and the scale each axis samples with (None: recomputed from the sizes)."""
    dims = len(spatial)
    if (size is None) == (scale_factor is None):
        raise ArgumentError(f"{op}: give exactly one of size and scale_factor (got size={size!r}, "
                            f"scale_factor={scale_factor!r})")  # fmt: skip
    if size is not None:
        if recompute_scale_factor:
            raise ArgumentError(f"{op}: recompute_scale_factor is not meaningful with an explicit size; leave it None")
        out = (size,) * dims if isinstance(size, numbers.Integral) else tuple(size)
        if len(out) != dims:
            raise ArgumentError(f"{op}: size must be an int or {dims} of them for an input with {dims} spatial "
                                f"dims {spatial}, got {size!r}")  # fmt: skip
        if not all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in out):
            raise ArgumentTypeError(f"{op}: size must hold ints, got {size!r}")
        if not all(s >= 1 for s in out):
            raise ArgumentError(f"{op}: size must be positive, got {size!r}")
        return tuple(int(s) for s in out), (None,) * dims
    scales = (scale_factor,) * dims if isinstance(scale_factor, numbers.Real) else tuple(scale_factor)
    if len(scales) != dims or not all(isinstance(s, numbers.Real) and s > 0 for s in scales):
        raise ArgumentError(f"{op}: scale_factor must be a positive number or {dims} of them for an input with "
                            f"{dims} spatial dims {spatial}, got {scale_factor!r}")  # fmt: skip
    out = tuple(math.floor(n * float(s)) for n, s in zip(spatial, scales))
    if not all(o >= 1 for o in out):
        raise ShapeError(f"{op}: input spatial size {spatial} with scale_factor {scale_factor!r} gives an empty output")
    # PyTorch samples with the given scale unless asked to recompute it from the rounded sizes
    return out, ((None,) * dims if recompute_scale_factor else tuple(float(s) for s in scales))


def _check_mode(op: str, input: Tensor, mode: str, align_corners: bool | None, antialias: bool) -> None:  # noqa: A002
    if mode not in _MODES:
        raise ArgumentError(f"{op}: mode must be one of {', '.join(_MODES)}; got {mode!r}")
    if mode in ("nearest", "nearest-exact", "area") and align_corners is not None:
        raise ArgumentError(f"{op}: align_corners only applies to the interpolating modes linear, bilinear, bicubic "
                            f"and trilinear, not mode={mode!r}; leave it None")  # fmt: skip
    if input.ndim not in (3, 4, 5):
        raise ShapeError(f"{op}: expected a 3-d (N, C, L), 4-d (N, C, H, W) or 5-d (N, C, D, H, W) input, got "
                         f"{tuple(input.shape)}")  # fmt: skip
    need = _MODE_NDIM.get(mode)
    if need is not None and input.ndim != need:
        raise ShapeError(f"{op}: mode={mode!r} expects a {need}-d input, got {tuple(input.shape)}")
    if antialias and mode not in ("bilinear", "bicubic", "lanczos"):
        raise ArgumentError(f"{op}: antialias applies to the bilinear, bicubic and lanczos modes (4-d input), not "
                            f"mode={mode!r}")  # fmt: skip
    if mode == "lanczos" and (align_corners or not antialias):
        raise ArgumentError(f"{op}: mode='lanczos' needs antialias=True and align_corners False or None")
    if mode not in ("nearest", "nearest-exact") and input.dtype.kind != "f":
        raise DTypeError(f"{op}: mode={mode!r} needs a floating-point input, got {input.dtype}; convert with .float()")


def interpolate(
    input: Tensor,  # noqa: A002  (PyTorch's name)
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize, ``torch.nn.functional.interpolate``: (N, C, *S) -> (N, C, *size) or
    (N, C, *floor(S * scale_factor)), with S of 1, 2 or 3 dims.

    ``mode``: ``nearest`` (source ``floor(i * in/out)``), ``nearest-exact`` (``floor((i + 0.5) * in/out)``),
    ``linear`` (3-d input), ``bilinear`` (4-d), ``bicubic`` (4-d; Keys' cubic with a = -0.75, borders
    clamped), ``trilinear`` (5-d), ``area`` (adaptive average pooling), ``lanczos`` (4-d, antialias only).
    ``align_corners`` (interpolating modes) maps the corner pixel centres onto each other; False (the
    default) samples at ``(i + 0.5) * in/out - 0.5``. ``antialias`` (bilinear, bicubic) widens the filter
    when shrinking so every input pixel counts, as PIL does. Given ``scale_factor``, the sampling uses it
    unless ``recompute_scale_factor`` asks for ``in/out`` from the rounded sizes.
    """
    op = "interpolate"
    _check_mode(op, input, mode, align_corners, antialias)
    spatial = tuple(input.shape[2:])
    if mode == "area":
        recompute_scale_factor = recompute_scale_factor if size is not None else True
    out, scales = _output_size(op, spatial, size, scale_factor, recompute_scale_factor)
    corners = bool(align_corners)
    dims = len(spatial)
    if mode == "area":
        return (adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d)[dims - 1](input, out)
    if mode == "nearest" and dims == 1:  # a height-1 image
        return UpsampleNearest2d((1, out[0]), (None, scales[0]))(input.unsqueeze(2)).squeeze(2)
    if mode == "nearest" and dims == 2:
        return UpsampleNearest2d((out[0], out[1]), (scales[0], scales[1]))(input)
    if mode == "bilinear" and not antialias:
        return UpsampleBilinear2d((out[0], out[1]), corners, (scales[0], scales[1]))(input)
    axes = list(zip(spatial, out, scales))
    if mode == "nearest":
        tables = tuple(nd.nearest_taps(n, o, s) for n, o, s in axes)
    elif mode == "nearest-exact":
        tables = tuple(nd.nearest_exact_taps(n, o, s) for n, o, s in axes)
    elif antialias:
        tables = tuple(nd.antialias_taps(n, o, corners, s, mode) for n, o, s in axes)
    elif mode == "bicubic":
        tables = tuple(nd.cubic_taps(n, o, corners, s) for n, o, s in axes)
    else:  # linear, trilinear
        tables = tuple(nd.linear_taps(n, o, corners, s) for n, o, s in axes)
    return Resample(tables)(input)


def upsample(
    input: Tensor,  # noqa: A002
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """``torch.nn.functional.upsample``, the older name of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def upsample_nearest(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:  # noqa: A002
    """``torch.nn.functional.upsample_nearest``: :func:`interpolate` with ``mode="nearest"``."""
    return interpolate(input, size, scale_factor, mode="nearest")


def upsample_bilinear(input: Tensor, size: Any = None, scale_factor: Any = None) -> Tensor:  # noqa: A002
    """``torch.nn.functional.upsample_bilinear``: :func:`interpolate` with ``mode="bilinear"`` and
    ``align_corners=True`` (as PyTorch's)."""
    return interpolate(input, size, scale_factor, mode="bilinear", align_corners=True)


# ---------------------------------------------------------------- rearrangements


def _factor(op: str, name: str, value: Any) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise ArgumentError(f"{op}: {name} must be a positive int, got {value!r}")
    return int(value)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:  # noqa: A002
    """``torch.nn.functional.pixel_shuffle``: (*, C*r*r, H, W) -> (*, C, H*r, W*r), channel ``c*r*r + i*r + j``
    becoming the pixel offset ``(i, j)`` of channel ``c``."""
    op = "pixel_shuffle"
    r = _factor(op, "upscale_factor", upscale_factor)
    if input.ndim < 3:
        raise ShapeError(f"{op}: expected an input with at least 3 dims (*, C, H, W), got {tuple(input.shape)}")
    *batch, c, h, w = input.shape
    if c % (r * r):
        raise ShapeError(f"{op}: the channel dim ({c}) of input {tuple(input.shape)} must be divisible by "
                         f"upscale_factor**2 = {r * r}")  # fmt: skip
    b = len(batch)
    x = reshape(input, *batch, c // (r * r), r, r, h, w)
    x = permute(x, *range(b), b, b + 3, b + 1, b + 4, b + 2)
    return reshape(x, *batch, c // (r * r), h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:  # noqa: A002
    """``torch.nn.functional.pixel_unshuffle``, the inverse of :func:`pixel_shuffle`: (*, C, H*r, W*r)
    -> (*, C*r*r, H, W)."""
    op = "pixel_unshuffle"
    r = _factor(op, "downscale_factor", downscale_factor)
    if input.ndim < 3:
        raise ShapeError(f"{op}: expected an input with at least 3 dims (*, C, H, W), got {tuple(input.shape)}")
    *batch, c, h, w = input.shape
    if h % r or w % r:
        raise ShapeError(f"{op}: height {h} and width {w} of input {tuple(input.shape)} must be divisible by "
                         f"downscale_factor {r}")  # fmt: skip
    b = len(batch)
    x = reshape(input, *batch, c, h // r, r, w // r, r)
    x = permute(x, *range(b), b, b + 2, b + 4, b + 1, b + 3)
    return reshape(x, *batch, c * r * r, h // r, w // r)


def channel_shuffle(input: Tensor, groups: int) -> Tensor:  # noqa: A002
    """``torch.nn.functional.channel_shuffle`` (ShuffleNet): (N, C, *) with the channels, seen as a
    (groups, C/groups) grid, transposed."""
    op = "channel_shuffle"
    g = _factor(op, "groups", groups)
    if input.ndim < 3:
        raise ShapeError(f"{op}: expected an input with more than 2 dims (N, C, *), got {tuple(input.shape)}")
    n, c, *rest = input.shape
    if c % g:
        raise ShapeError(f"{op}: the number of channels ({c}) must be divisible by groups ({g})")
    x = reshape(input, n, g, c // g, *rest)
    x = permute(x, 0, 2, 1, *range(3, x.ndim))
    return reshape(x, n, c, *rest)


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
