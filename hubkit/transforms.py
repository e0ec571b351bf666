"""Image transforms with torchvision's names, arguments and arithmetic, written on numpy.

Images come in three forms, and each transform returns the form it was given:

- **ndarrays** ``(H, W)`` or ``(H, W, C)`` (what ``hubkit.datasets`` return), any dtype, uint8 usually
  (an ``(H, W, C)`` input stays 3-d: ``Grayscale()`` of ``(H, W, 3)`` is ``(H, W, 1)``);
- **hubkit Tensors** ``(..., C, H, W)`` (on the CPU), as torchvision takes torch tensors;
- **PIL images**, when Pillow is installed (palette and binary images are converted to ``RGB``/``L``).

``ToTensor`` / ``PILToTensor`` turn ndarrays and PIL images into ``(C, H, W)`` Tensors; ``Normalize``
takes float Tensors only, as in torchvision. The pixel arithmetic follows torchvision's tensor path
(``resize`` with antialiasing, ``rotate`` through a sampling grid, colour adjustments that truncate
to uint8), so results match torchvision on tensors to within one uint8 level (see the parity tests).
PIL images are resized and rotated by PIL itself, as torchvision does; the other operations use the
tensor arithmetic on them too (colour adjustments may then differ from torchvision's PIL path by
rounding).

Random transforms draw from hubkit's global generator (``hubkit.manual_seed``); in DataLoader
workers that generator is seeded per worker.

    from hubkit import transforms as T
    preprocess = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                            T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError, DeviceError, ShapeError
from hubkit.random import get_rng
from hubkit.tensor import Tensor, from_numpy

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Grayscale",
    "InterpolationMode",
    "Lambda",
    "Normalize",
    "PILToTensor",
    "Pad",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomResizedCrop",
    "RandomRotation",
    "RandomVerticalFlip",
    "Resize",
    "ToTensor",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_hue",
    "adjust_saturation",
    "center_crop",
    "crop",
    "get_dimensions",
    "hflip",
    "normalize",
    "pad",
    "pil_to_tensor",
    "resize",
    "resized_crop",
    "rgb_to_grayscale",
    "rotate",
    "to_tensor",
    "vflip",
]


class InterpolationMode(Enum):
    """How pixels between samples are computed (torchvision's enum values)."""

    NEAREST = "nearest"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"


def _interpolation(mode: Any, allowed: tuple[str, ...]) -> str:
    name = getattr(mode, "value", mode)
    if name not in allowed:
        raise ArgumentError(f"interpolation must be one of {allowed} (or InterpolationMode), got {mode!r}")
    return name


# ---------------------------------------------------------------- image containers


def _is_pil(img: Any) -> bool:
    pil = sys.modules.get("PIL.Image")  # an image exists only if Pillow was imported already
    return pil is not None and isinstance(img, pil.Image)


def _pil_to_array(img: Any) -> np.ndarray:
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    return np.asarray(img)


def _to_chw(img: Any, what: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """A ``(..., C, H, W)`` view of ``img`` and a function turning a result back into ``img``'s form."""
    if isinstance(img, Tensor):
        arr = img.array
        if not isinstance(arr, np.ndarray):
            raise DeviceError(
                f"{what} runs on the CPU, got a tensor on {img.device}; apply transforms before moving "
                f"the batch to the GPU"
            )
        if arr.ndim < 2:
            raise ShapeError(f"{what} expects a tensor image of shape (..., C, H, W) or (H, W), got {arr.shape}")
        if arr.ndim == 2:
            return arr[None], lambda out: from_numpy(np.ascontiguousarray(out[0]))
        return arr, lambda out: from_numpy(np.ascontiguousarray(out))
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            return img[None], lambda out: np.ascontiguousarray(out[0])
        if img.ndim == 3:
            if img.shape[0] <= 4 < img.shape[2]:
                # (3, 375, 500) read as (H, W, C) would be a 3-pixel-high image with 500 channels, and a
                # resize of it could ask for tens of GB: the caller almost surely has a (C, H, W) array.
                raise ShapeError(
                    f"{what}: ndarray images are (H, W, C) like PIL and ToTensor's input, and {img.shape} looks "
                    f"like (C, H, W); pass img.transpose(1, 2, 0), or hubkit.from_numpy(img) to treat it as a "
                    f"(C, H, W) tensor image"
                )
            return img.transpose(2, 0, 1), lambda out: np.ascontiguousarray(out.transpose(1, 2, 0))
        raise ShapeError(f"{what} expects an ndarray image of shape (H, W) or (H, W, C), got {img.shape}")
    if _is_pil(img):
        from PIL import Image

        arr = _pil_to_array(img)
        if arr.ndim == 2:
            return arr[None], lambda out: Image.fromarray(np.ascontiguousarray(out[0]))
        return arr.transpose(2, 0, 1), lambda out: Image.fromarray(np.ascontiguousarray(
            out[0] if out.shape[0] == 1 else out.transpose(1, 2, 0)))  # one channel: an "L" image
    raise ArgumentTypeError(
        f"{what} expects an image: an (H, W[, C]) ndarray, a (..., C, H, W) hubkit Tensor or a PIL image; "
        f"got {type(img).__name__}"
    )


def get_dimensions(img: Any) -> list[int]:
    """``[channels, height, width]`` of an image in any of the three forms."""
    chw, _ = _to_chw(img, "get_dimensions")
    return [int(chw.shape[-3]), int(chw.shape[-2]), int(chw.shape[-1])]


def _max_value(dtype: np.dtype) -> float:
    if dtype == np.uint8:
        return 255.0
    if dtype.kind == "f":
        return 1.0
    raise ArgumentTypeError(f"colour adjustments support uint8 and float images, got dtype {dtype}")


def _cast_back(result: np.ndarray, dtype: np.dtype, rounding: bool) -> np.ndarray:
    """Float result -> ``dtype``: integer images are rounded half to even (or truncated) and clipped."""
    if dtype.kind == "f":
        return result.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    if rounding:
        result = np.rint(result)
    return np.clip(result, info.min, info.max).astype(dtype)


def _work_dtype(dtype: np.dtype) -> np.dtype:
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


# ---------------------------------------------------------------- conversion


def to_tensor(pic: Any) -> Tensor:
    """An ndarray ``(H, W[, C])`` or PIL image -> Tensor ``(C, H, W)``; uint8 becomes float32 in ``[0, 1]``.

    Other dtypes keep their values and dtype (torchvision's rule).
    """
    if isinstance(pic, np.ndarray):
        arr = pic
    elif _is_pil(pic):
        arr = np.asarray(pic.convert("RGB") if pic.mode == "P" else pic)
        if pic.mode == "1":
            arr = arr.astype(np.uint8) * 255
    elif isinstance(pic, Tensor):
        raise ArgumentTypeError("to_tensor expects an ndarray or a PIL image, got a Tensor (it is one already)")
    else:
        raise ArgumentTypeError(f"to_tensor expects an ndarray or a PIL image, got {type(pic).__name__}")
    if arr.ndim == 2:
        chw = arr[None]
    elif arr.ndim == 3:
        chw = arr.transpose(2, 0, 1)
    else:
        raise ShapeError(f"to_tensor expects a 2-d (H, W) or 3-d (H, W, C) image, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        return from_numpy(np.ascontiguousarray(chw))
    out = np.empty(chw.shape, dtype=np.float32)
    np.divide(chw, 255, out=out, dtype=np.float32)
    return from_numpy(out)


def pil_to_tensor(pic: Any) -> Tensor:
    """A PIL image or ndarray ``(H, W[, C])`` -> Tensor ``(C, H, W)`` with the same dtype and values."""
    if isinstance(pic, Tensor):
        raise ArgumentTypeError("pil_to_tensor expects a PIL image or an ndarray, got a Tensor")
    if not (_is_pil(pic) or isinstance(pic, np.ndarray)):
        raise ArgumentTypeError(f"pil_to_tensor expects a PIL image or an ndarray, got {type(pic).__name__}")
    chw, _ = _to_chw(pic, "pil_to_tensor")
    return from_numpy(np.ascontiguousarray(chw))


def normalize(tensor: Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> Tensor:
    """``(tensor - mean[c]) / std[c]`` per channel; ``tensor: (..., C, H, W)`` float -> same shape."""
    if not isinstance(tensor, Tensor):
        raise ArgumentTypeError(
            f"normalize expects a float Tensor (..., C, H, W), got {type(tensor).__name__}; apply ToTensor first"
        )
    arr = tensor.array
    if arr.dtype.kind != "f":
        raise ArgumentTypeError(f"normalize expects a float tensor, got dtype {arr.dtype}; apply ToTensor first")
    if arr.ndim < 3:
        raise ShapeError(f"normalize expects a tensor image of shape (..., C, H, W), got {tuple(arr.shape)}")
    xp = tensor._xp
    m = xp.asarray(mean, dtype=arr.dtype).reshape(-1, 1, 1)
    s = xp.asarray(std, dtype=arr.dtype).reshape(-1, 1, 1)
    _check_std(s)
    return _normalize_arrays(tensor, m, s, inplace, xp)


def _check_std(std: Any) -> None:
    if bool((std == 0).any()):
        raise ArgumentError(f"std evaluated to zero after conversion to {std.dtype}: {std.ravel().tolist()}")


def _normalize_arrays(tensor: Tensor, mean: Any, std: Any, inplace: bool, xp: Any = np) -> Tensor:
    arr = tensor.array
    if mean.shape[0] not in (1, arr.shape[-3]) or std.shape[0] not in (1, arr.shape[-3]):
        raise ShapeError(
            f"normalize got {mean.shape[0]} means and {std.shape[0]} stds for an image with "
            f"{arr.shape[-3]} channels; give one value per channel (or one for all)"
        )
    if inplace:
        xp.subtract(arr, mean, out=arr)
        xp.divide(arr, std, out=arr)
        return tensor
    out = xp.subtract(arr, mean)
    xp.divide(out, std, out=out)
    return Tensor._make(out)


# ---------------------------------------------------------------- geometry: resize


def _compute_resized_output_size(height: int, width: int, size: Sequence[int], max_size: int | None) -> list[int]:
    if len(size) == 2:
        return [int(size[0]), int(size[1])]
    requested = int(size[0])
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = requested, int(requested * long / short)
    if max_size is not None:
        if max_size <= requested:
            raise ArgumentError(
                f"max_size = {max_size} must be strictly greater than the requested size for the smaller "
                f"edge, {requested}"
            )
        if new_long > max_size:
            new_short, new_long = int(max_size * new_short / new_long), max_size
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return [new_h, new_w]


def _check_size(size: Any, what: str) -> list[int]:
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        return [int(size)]
    if isinstance(size, Sequence) and len(size) in (1, 2) and all(isinstance(s, numbers.Integral) for s in size):
        return [int(s) for s in size]
    raise ArgumentError(f"{what} size must be an int or a sequence of 1 or 2 ints, got {size!r}")


def _cubic(x: np.ndarray, a: float) -> np.ndarray:
    """The cubic convolution kernel (Keys), ``a = -0.5`` (PIL, antialiased) or ``-0.75`` (plain bicubic)."""
    x = np.abs(x)
    near = ((a + 2) * x - (a + 3)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1, near, np.where(x < 2, far, 0.0))


def _taps(in_size: int, out_size: int, mode: str, antialias: bool) -> tuple[np.ndarray, np.ndarray]:
    """Source indices ``(out_size, K)`` and weights ``(out_size, K)`` that resample one axis.

    Antialiased bilinear/bicubic is the separable filter of PIL and PyTorch's ``antialias=True``:
    the filter is stretched by the scale when shrinking, and the weights of each output pixel are
    normalised to sum to one. Without antialiasing the taps are PyTorch's ``interpolate`` ones with
    ``align_corners=False`` (edge indices clamped).
    """
    scale = in_size / out_size
    i = np.arange(out_size, dtype=np.float64)
    if mode == "nearest":
        # PyTorch's "nearest": floor(i * scale) computed in float32, as its kernel does
        idx = np.floor(i.astype(np.float32) * np.float32(in_size / out_size)).astype(np.int64)
        return np.minimum(idx, in_size - 1)[:, None], np.ones((out_size, 1))
    if antialias:
        half = 1.0 if mode == "bilinear" else 2.0
        support = half * scale if scale >= 1.0 else half
        inv = 1.0 / scale if scale >= 1.0 else 1.0
        center = scale * (i + 0.5)
        xmin = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
        xmax = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64)
        k = int((xmax - xmin).max())
        j = np.arange(k)
        x = (j[None, :] + xmin[:, None] - center[:, None] + 0.5) * inv
        w = np.maximum(0.0, 1.0 - np.abs(x)) if mode == "bilinear" else _cubic(x, -0.5)
        w = np.where(j[None, :] < (xmax - xmin)[:, None], w, 0.0)
        total = w.sum(axis=1, keepdims=True)
        w = np.divide(w, total, out=np.zeros_like(w), where=total != 0)
        return np.minimum(xmin[:, None] + j[None, :], in_size - 1), w
    src = scale * (i + 0.5) - 0.5
    if mode == "bilinear":
        src = np.maximum(src, 0.0)
        i0 = np.floor(src).astype(np.int64)
        frac = src - i0
        i1 = np.minimum(i0 + 1, in_size - 1)
        return np.stack([i0, i1], axis=1), np.stack([1.0 - frac, frac], axis=1)
    i0 = np.floor(src).astype(np.int64)
    t = src - i0
    offsets = np.arange(-1, 3)
    idx = np.clip(i0[:, None] + offsets[None, :], 0, in_size - 1)
    return idx, _cubic(t[:, None] - offsets[None, :], -0.75)


def _resample(arr: np.ndarray, axis: int, out_size: int, mode: str, antialias: bool) -> np.ndarray:
    in_size = arr.shape[axis]
    if in_size == out_size and mode == "nearest":
        return arr
    idx, w = _taps(in_size, out_size, mode, antialias)
    shape = [1] * arr.ndim
    shape[axis] = out_size
    out = None
    for k in range(idx.shape[1]):
        term = np.take(arr, idx[:, k], axis=axis)
        if mode != "nearest":
            term *= w[:, k].astype(arr.dtype).reshape(shape)
        out = term if out is None else np.add(out, term, out=out)
    return out


def _resize_chw(chw: np.ndarray, size: list[int], mode: str, antialias: bool) -> np.ndarray:
    dtype = chw.dtype
    if mode == "nearest":
        out = _resample(_resample(chw, -1, size[1], mode, False), -2, size[0], mode, False)
        return np.ascontiguousarray(out)
    work = chw.astype(_work_dtype(dtype), copy=False)
    out = _resample(_resample(work, -1, size[1], mode, antialias), -2, size[0], mode, antialias)
    return _cast_back(out, dtype, rounding=True)  # clips bicubic's overshoot for integer images


def resize(
    img: Any,
    size: int | Sequence[int],
    interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
    max_size: int | None = None,
    antialias: bool | None = True,
) -> Any:
    """Resize to ``size``: an int (or ``[int]``) sets the shorter side keeping the aspect ratio
    (the longer side capped at ``max_size``), ``(h, w)`` sets both. ``(..., C, H, W) -> (..., C, h, w)``.

    ``interpolation`` is nearest, bilinear or bicubic; ``antialias`` (bilinear and bicubic) low-pass
    filters when shrinking, as PIL does. uint8 results are rounded to the nearest integer.
    """
    mode = _interpolation(interpolation, ("nearest", "bilinear", "bicubic"))
    size = _check_size(size, "resize")
    if max_size is not None and len(size) != 1:
        raise ArgumentError("max_size applies only when size is one number (the shorter side); pass one or the other")
    chw, back = _to_chw(img, "resize")
    height, width = chw.shape[-2:]
    out_size = _compute_resized_output_size(height, width, size, max_size)
    if out_size == [height, width]:
        return img
    if min(out_size) <= 0:
        raise ArgumentError(f"resize to {out_size} from {[height, width]}: every output side must be at least 1")
    if _is_pil(img):
        # as torchvision does: PIL images are resized by PIL (always antialiased)
        return img.resize((out_size[1], out_size[0]), _pil_filter(mode))
    return back(_resize_chw(chw, out_size, mode, bool(antialias) and mode != "nearest"))


def _pil_filter(mode: str) -> int:
    from PIL import Image

    return {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}[mode]


# ---------------------------------------------------------------- geometry: crop, pad, flip


def _fill_values(fill: Any, channels: int, dtype: np.dtype) -> np.ndarray:
    values = np.asarray([fill] if isinstance(fill, numbers.Number) else list(fill), dtype=np.float64)
    if values.size not in (1, channels):
        raise ArgumentError(
            f"fill has {values.size} values for an image with {channels} channels; give one number or one per channel"
        )
    return np.broadcast_to(values, (channels,)).astype(dtype)


def _parse_padding(padding: Any) -> tuple[int, int, int, int]:
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool):
        p = int(padding)
        return p, p, p, p
    if isinstance(padding, Sequence) and all(isinstance(p, numbers.Integral) for p in padding):
        if len(padding) == 1:
            return (int(padding[0]),) * 4  # type: ignore[return-value]
        if len(padding) == 2:
            return int(padding[0]), int(padding[1]), int(padding[0]), int(padding[1])
        if len(padding) == 4:
            return int(padding[0]), int(padding[1]), int(padding[2]), int(padding[3])
    raise ArgumentError(
        f"padding must be an int or a sequence of 1, 2 (left/right, top/bottom) or 4 (left, top, right, bottom) "
        f"ints, got {padding!r}"
    )


_PAD_MODES = {"constant": "constant", "edge": "edge", "reflect": "reflect", "symmetric": "symmetric"}


def _pad_chw(chw: np.ndarray, ltrb: tuple[int, int, int, int], fill: Any, mode: str) -> np.ndarray:
    left, top, right, bottom = ltrb
    # Negative padding crops that border, as in torchvision.
    h, w = chw.shape[-2:]
    chw = chw[..., max(-top, 0) : h - max(-bottom, 0), max(-left, 0) : w - max(-right, 0)]
    left, top, right, bottom = (max(p, 0) for p in ltrb)
    if not (left or top or right or bottom):
        return chw
    widths = [(0, 0)] * (chw.ndim - 2) + [(top, bottom), (left, right)]
    if mode != "constant":
        if mode == "reflect" and (max(top, bottom) >= chw.shape[-2] or max(left, right) >= chw.shape[-1]):
            raise ArgumentError(
                f"reflect padding must be smaller than the image side it reflects: padding {ltrb} for an image "
                f"of {chw.shape[-2]}x{chw.shape[-1]}; use padding_mode='symmetric' or 'edge'"
            )
        return np.pad(chw, widths, mode=_PAD_MODES[mode])
    values = _fill_values(fill, chw.shape[-3], chw.dtype)
    out = np.empty(chw.shape[:-2] + (chw.shape[-2] + top + bottom, chw.shape[-1] + left + right), chw.dtype)
    out[...] = values.reshape(-1, 1, 1)
    out[..., top : top + chw.shape[-2], left : left + chw.shape[-1]] = chw
    return out


def pad(img: Any, padding: int | Sequence[int], fill: Any = 0, padding_mode: str = "constant") -> Any:
    """Pad each border: ``padding`` is one int, ``(left/right, top/bottom)`` or ``(left, top, right, bottom)``.

    ``padding_mode``: ``constant`` (with ``fill``, a number or one per channel), ``edge``,
    ``reflect`` (mirror without repeating the edge) or ``symmetric`` (with). Negative padding crops.
    ``(..., C, H, W) -> (..., C, H + top + bottom, W + left + right)``.
    """
    if padding_mode not in _PAD_MODES:
        raise ArgumentError(f"padding_mode must be one of {tuple(_PAD_MODES)}, got {padding_mode!r}")
    chw, back = _to_chw(img, "pad")
    return back(_pad_chw(chw, _parse_padding(padding), fill, padding_mode))


def _crop_chw(chw: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    h, w = chw.shape[-2:]
    right, bottom = left + width, top + height
    if left < 0 or top < 0 or right > w or bottom > h:
        # torchvision pads with zeros where the box leaves the image
        box = chw[..., max(top, 0) : min(bottom, h), max(left, 0) : min(right, w)]
        ltrb = (max(-left, 0), max(-top, 0), max(right - w, 0), max(bottom - h, 0))
        return _pad_chw(box, ltrb, 0, "constant")
    return chw[..., top:bottom, left:right]


def crop(img: Any, top: int, left: int, height: int, width: int) -> Any:
    """The ``height x width`` box whose top-left corner is ``(top, left)``; outside the image is zero."""
    chw, back = _to_chw(img, "crop")
    return back(_crop_chw(chw, int(top), int(left), int(height), int(width)))


def center_crop(img: Any, output_size: int | Sequence[int]) -> Any:
    """The central ``(h, w)`` box (an int means square); a box larger than the image is zero-padded."""
    size = _check_size(output_size, "center_crop")
    th, tw = (size[0], size[0]) if len(size) == 1 else size
    chw, back = _to_chw(img, "center_crop")
    h, w = chw.shape[-2:]
    if th > h or tw > w:
        ltrb = ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0,
                (tw - w + 1) // 2 if tw > w else 0, (th - h + 1) // 2 if th > h else 0)
        chw = _pad_chw(chw, ltrb, 0, "constant")
        h, w = chw.shape[-2:]
        if (h, w) == (th, tw):
            return back(chw)
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return back(_crop_chw(chw, top, left, th, tw))


def resized_crop(
    img: Any,
    top: int,
    left: int,
    height: int,
    width: int,
    size: int | Sequence[int],
    interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
    antialias: bool | None = True,
) -> Any:
    """``crop`` then ``resize`` to ``size``."""
    return resize(crop(img, top, left, height, width), size, interpolation, antialias=antialias)


def hflip(img: Any) -> Any:
    """Mirror left-right: ``(..., C, H, W) -> (..., C, H, W)``."""
    chw, back = _to_chw(img, "hflip")
    return back(chw[..., ::-1])


def vflip(img: Any) -> Any:
    """Mirror top-bottom: ``(..., C, H, W) -> (..., C, H, W)``."""
    chw, back = _to_chw(img, "vflip")
    return back(chw[..., ::-1, :])


# ---------------------------------------------------------------- geometry: rotate


def _inverse_rotation_matrix(center: Sequence[float], angle: float) -> list[float]:
    """Output pixel -> input pixel, about ``center`` (relative to the image centre), ``angle`` in degrees."""
    rot = math.radians(angle)
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    cx, cy = center
    matrix[2] += matrix[0] * (-cx) + matrix[1] * (-cy)
    matrix[5] += matrix[3] * (-cx) + matrix[4] * (-cy)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def _expanded_size(matrix: list[float], w: int, h: int) -> tuple[int, int]:
    pts = np.array([[-0.5 * w, -0.5 * h, 1.0], [-0.5 * w, 0.5 * h, 1.0], [0.5 * w, 0.5 * h, 1.0],
                    [0.5 * w, -0.5 * h, 1.0]], dtype=np.float32)
    theta = np.asarray(matrix, dtype=np.float32).reshape(2, 3)
    new = pts @ theta.T
    lo = new.min(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
    hi = new.max(axis=0) + np.array([w * 0.5, h * 0.5], dtype=np.float32)
    tol = np.float32(1e-4)
    cmax = np.ceil(np.trunc(hi / tol) * tol)
    cmin = np.floor(np.trunc(lo / tol) * tol)
    size = cmax - cmin
    return int(size[0]), int(size[1])


def _sample_grid(chw: np.ndarray, gx: np.ndarray, gy: np.ndarray, mode: str) -> np.ndarray:
    """``grid_sample(align_corners=False, padding_mode='zeros')`` at input pixel coordinates ``(gx, gy)``."""
    h, w = chw.shape[-2:]
    out = np.zeros(chw.shape[:-2] + gx.shape, dtype=chw.dtype)
    if mode == "nearest":
        ix, iy = np.rint(gx).astype(np.int64), np.rint(gy).astype(np.int64)
        ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
        out[..., ok] = chw[..., iy[ok], ix[ok]]
        return out
    x0, y0 = np.floor(gx), np.floor(gy)
    fx, fy = (gx - x0).astype(chw.dtype), (gy - y0).astype(chw.dtype)
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xs, ys = x0 + dx, y0 + dy
            ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
            out[..., ok] += chw[..., ys[ok], xs[ok]] * (wx * wy)[ok]
    return out


def rotate(
    img: Any,
    angle: float,
    interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
    expand: bool = False,
    center: Sequence[float] | None = None,
    fill: Any = None,
) -> Any:
    """Rotate counter-clockwise by ``angle`` degrees about ``center`` (``(x, y)`` pixels; default the middle).

    ``expand`` grows the output to hold the whole rotated image; pixels from outside the input are
    ``fill`` (a number or one per channel; zero when ``None``). ``interpolation``: nearest or bilinear.
    """
    mode = _interpolation(interpolation, ("nearest", "bilinear"))
    chw, back = _to_chw(img, "rotate")
    if _is_pil(img):
        # as torchvision does: PIL images are rotated by PIL
        fills = _fill_values(0 if fill is None else fill, chw.shape[-3], np.float64)
        fillcolor = fills.tolist() if img.mode == "F" else [int(v) for v in fills]
        fillcolor = fillcolor[0] if len(fillcolor) == 1 else tuple(fillcolor)
        return img.rotate(angle, _pil_filter(mode), expand, center, fillcolor=fillcolor)
    dtype = chw.dtype
    h, w = chw.shape[-2:]
    center_f = [0.0, 0.0] if center is None else [float(c) - s * 0.5 for c, s in zip(center, (w, h))]
    matrix = _inverse_rotation_matrix(center_f, -angle)
    ow, oh = _expanded_size(matrix, w, h) if expand else (w, h)
    work = _work_dtype(dtype)
    # torchvision's affine grid: output pixel centres relative to the output centre, mapped by
    # theta scaled to grid_sample's normalised [-1, 1] coordinates, then back to input pixels.
    theta = np.asarray(matrix, dtype=work).reshape(2, 3) / np.array([[0.5 * w], [0.5 * h]], dtype=work)
    xs = np.linspace(-ow * 0.5 + 0.5, ow * 0.5 - 0.5, ow, dtype=work)
    ys = np.linspace(-oh * 0.5 + 0.5, oh * 0.5 - 0.5, oh, dtype=work)[:, None]
    nx = xs * theta[0, 0] + ys * theta[0, 1] + theta[0, 2]
    ny = xs * theta[1, 0] + ys * theta[1, 1] + theta[1, 2]
    gx = ((nx + 1) * w - 1) / 2
    gy = ((ny + 1) * h - 1) / 2
    src = chw.astype(work, copy=False)
    out = _sample_grid(src, gx, gy, mode)
    if fill is not None:
        mask = _sample_grid(np.ones((1, h, w), dtype=work), gx, gy, mode)
        fills = _fill_values(fill, chw.shape[-3], work).reshape(-1, 1, 1)
        if mode == "nearest":
            out = np.where(mask < 0.5, fills, out)
        else:
            out = out * mask + (1.0 - mask) * fills
    return back(_cast_back(out, dtype, rounding=True))


# ---------------------------------------------------------------- colour


def _gray_chw(chw: np.ndarray) -> np.ndarray:
    if chw.shape[-3] == 1:
        return chw.copy()
    if chw.shape[-3] != 3:
        raise ShapeError(f"grayscale conversion expects 1 or 3 channels, got {chw.shape[-3]}")
    work = _work_dtype(chw.dtype)
    r, g, b = (chw[..., i, :, :].astype(work) for i in range(3))
    gray = work.type(0.2989) * r + work.type(0.587) * g + work.type(0.114) * b
    return _cast_back(gray, chw.dtype, rounding=False)[..., None, :, :]


def rgb_to_grayscale(img: Any, num_output_channels: int = 1) -> Any:
    """Luma ``0.2989 R + 0.587 G + 0.114 B`` (truncated for integer images), as 1 or 3 channels."""
    if num_output_channels not in (1, 3):
        raise ArgumentError(f"num_output_channels must be 1 or 3, got {num_output_channels}")
    chw, back = _to_chw(img, "rgb_to_grayscale")
    gray = _gray_chw(chw)
    if num_output_channels == 3:
        gray = np.broadcast_to(gray, gray.shape[:-3] + (3,) + gray.shape[-2:])
    return back(gray)


def _blend(img1: np.ndarray, img2: np.ndarray, ratio: float) -> np.ndarray:
    bound = _max_value(img1.dtype)
    work = _work_dtype(img1.dtype)
    mixed = work.type(ratio) * img1.astype(work) + work.type(1.0 - ratio) * img2.astype(work)
    np.clip(mixed, 0, bound, out=mixed)
    return _cast_back(mixed, img1.dtype, rounding=False)


def _check_factor(name: str, factor: float) -> None:
    if factor < 0:
        raise ArgumentError(f"{name} must be non-negative, got {factor}")


def adjust_brightness(img: Any, brightness_factor: float) -> Any:
    """Scale intensities by ``brightness_factor`` (0 gives black, 1 the original), clipped to the range."""
    _check_factor("brightness_factor", brightness_factor)
    chw, back = _to_chw(img, "adjust_brightness")
    return back(_blend(chw, np.zeros_like(chw), brightness_factor))


def adjust_contrast(img: Any, contrast_factor: float) -> Any:
    """Blend with the image's mean grey level (0 gives flat grey, 1 the original)."""
    _check_factor("contrast_factor", contrast_factor)
    chw, back = _to_chw(img, "adjust_contrast")
    work = _work_dtype(chw.dtype)
    gray = _gray_chw(chw) if chw.shape[-3] == 3 else chw
    mean = gray.astype(np.float64).mean(axis=(-3, -2, -1), keepdims=True).astype(work)
    return back(_blend(chw, mean, contrast_factor))


def adjust_saturation(img: Any, saturation_factor: float) -> Any:
    """Blend with the grayscale image (0 gives grey, 1 the original); 1-channel images are returned as is."""
    _check_factor("saturation_factor", saturation_factor)
    chw, back = _to_chw(img, "adjust_saturation")
    if chw.shape[-3] == 1:
        return img
    return back(_blend(chw, _gray_chw(chw), saturation_factor))


def _rgb_to_hsv(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0, :, :], rgb[..., 1, :, :], rgb[..., 2, :, :]
    maxc, minc = rgb.max(axis=-3), rgb.min(axis=-3)
    eqc = maxc == minc
    cr = maxc - minc
    ones = np.ones_like(maxc)
    s = cr / np.where(eqc, ones, maxc)
    cr_div = np.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / cr_div, (maxc - g) / cr_div, (maxc - b) / cr_div
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = np.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0).astype(rgb.dtype)
    return np.stack((h, s, maxc), axis=-3)


def _hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    h, s, v = hsv[..., 0, :, :], hsv[..., 1, :, :], hsv[..., 2, :, :]
    i = np.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int32) % 6
    p = np.clip(v * (1.0 - s), 0.0, 1.0)
    q = np.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = np.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    choices = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = np.empty(hsv.shape, dtype=hsv.dtype)
    for c in range(3):
        out[..., c, :, :] = np.choose(i, [choice[c] for choice in choices])
    return out


def adjust_hue(img: Any, hue_factor: float) -> Any:
    """Rotate the hue by ``hue_factor`` turns (in ``[-0.5, 0.5]``); 1-channel images are returned as is."""
    if not -0.5 <= hue_factor <= 0.5:
        raise ArgumentError(f"hue_factor must lie in [-0.5, 0.5], got {hue_factor}")
    chw, back = _to_chw(img, "adjust_hue")
    if chw.shape[-3] == 1:
        return img
    if chw.shape[-3] != 3:
        raise ShapeError(f"adjust_hue expects 1 or 3 channels, got {chw.shape[-3]}")
    dtype = chw.dtype
    bound = _max_value(dtype)
    work = _work_dtype(dtype)
    rgb = chw.astype(work) / work.type(bound) if dtype.kind != "f" else chw
    hsv = _rgb_to_hsv(rgb)
    hsv[..., 0, :, :] = (hsv[..., 0, :, :] + work.type(hue_factor)) % 1.0
    out = _hsv_to_rgb(hsv)
    if dtype.kind != "f":
        # torchvision's float -> uint8 conversion: multiply by 256 - 1e-3, then truncate
        out = _cast_back(out * work.type(bound + 1.0 - 1e-3), dtype, rounding=False)
    return back(out)


# ---------------------------------------------------------------- transform classes


class Compose:
    """Apply ``transforms`` one after another."""

    def __init__(self, transforms: Sequence[Callable[[Any], Any]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, img: Any) -> Any:
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class Lambda:
    """Wrap a function as a transform."""

    def __init__(self, lambd: Callable[[Any], Any]) -> None:
        if not callable(lambd):
            raise ArgumentTypeError(f"Lambda expects a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img: Any) -> Any:
        return self.lambd(img)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ToTensor:
    """ndarray ``(H, W[, C])`` / PIL image -> Tensor ``(C, H, W)``; uint8 scaled to float32 ``[0, 1]``."""

    def __call__(self, pic: Any) -> Tensor:
        return to_tensor(pic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PILToTensor:
    """PIL image / ndarray ``(H, W[, C])`` -> Tensor ``(C, H, W)`` without rescaling (uint8 stays uint8)."""

    def __call__(self, pic: Any) -> Tensor:
        return pil_to_tensor(pic)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normalize:
    """``(x - mean[c]) / std[c]`` for a float Tensor ``(..., C, H, W)``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], inplace: bool = False) -> None:
        self.mean = list(mean) if isinstance(mean, Sequence) else [float(mean)]
        self.std = list(std) if isinstance(std, Sequence) else [float(std)]
        self.inplace = inplace
        self._cache: dict[Any, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, tensor: Tensor) -> Tensor:
        arr = getattr(tensor, "data", None)
        if isinstance(tensor, Tensor) and isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.ndim >= 3:
            # the per-sample hot path: mean and std are converted once per dtype
            pair = self._cache.get(arr.dtype)
            if pair is None:
                pair = (np.asarray(self.mean, dtype=arr.dtype).reshape(-1, 1, 1),
                        np.asarray(self.std, dtype=arr.dtype).reshape(-1, 1, 1))
                _check_std(pair[1])
                self._cache[arr.dtype] = pair
            return _normalize_arrays(tensor, pair[0], pair[1], self.inplace)
        return normalize(tensor, self.mean, self.std, self.inplace)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean}, std={self.std})"


class Resize:
    """Resize: ``size`` int = shorter side (aspect kept), ``(h, w)`` = exact. See ``resize``."""

    def __init__(
        self,
        size: int | Sequence[int],
        interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
        max_size: int | None = None,
        antialias: bool | None = True,
    ) -> None:
        self.size = _check_size(size, "Resize")
        self.interpolation = _interpolation(interpolation, ("nearest", "bilinear", "bicubic"))
        self.max_size = max_size
        self.antialias = antialias

    def __call__(self, img: Any) -> Any:
        return resize(img, self.size, self.interpolation, self.max_size, self.antialias)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, interpolation={self.interpolation}, "
                f"max_size={self.max_size}, antialias={self.antialias})")


def _pair(size: int | Sequence[int], what: str) -> tuple[int, int]:
    s = _check_size(size, what)
    return (s[0], s[0]) if len(s) == 1 else (s[0], s[1])


class CenterCrop:
    """The central ``size`` box (int: square); zero-padded when the image is smaller."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size, "CenterCrop")

    def __call__(self, img: Any) -> Any:
        return center_crop(img, self.size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size})"


class Pad:
    """Pad the borders; see ``pad`` for ``padding``, ``fill`` and ``padding_mode``."""

    def __init__(self, padding: int | Sequence[int], fill: Any = 0, padding_mode: str = "constant") -> None:
        _parse_padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ArgumentError(f"padding_mode must be one of {tuple(_PAD_MODES)}, got {padding_mode!r}")
        self.padding, self.fill, self.padding_mode = padding, fill, padding_mode

    def __call__(self, img: Any) -> Any:
        return pad(img, self.padding, self.fill, self.padding_mode)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode})"


class RandomCrop:
    """A random ``size`` box, after optional ``padding`` (and padding up to ``size`` if ``pad_if_needed``)."""

    def __init__(
        self,
        size: int | Sequence[int],
        padding: int | Sequence[int] | None = None,
        pad_if_needed: bool = False,
        fill: Any = 0,
        padding_mode: str = "constant",
    ) -> None:
        self.size = _pair(size, "RandomCrop")
        if padding is not None:
            _parse_padding(padding)
        if padding_mode not in _PAD_MODES:
            raise ArgumentError(f"padding_mode must be one of {tuple(_PAD_MODES)}, got {padding_mode!r}")
        self.padding, self.pad_if_needed, self.fill, self.padding_mode = padding, pad_if_needed, fill, padding_mode

    @staticmethod
    def get_params(img: Any, output_size: tuple[int, int]) -> tuple[int, int, int, int]:
        """``(top, left, height, width)`` of a uniformly random ``output_size`` box inside ``img``."""
        _, h, w = get_dimensions(img)
        th, tw = output_size
        if h < th or w < tw:
            raise ArgumentError(
                f"RandomCrop size {(th, tw)} is larger than the image {(h, w)}; pass pad_if_needed=True or padding"
            )
        if (h, w) == (th, tw):
            return 0, 0, h, w
        rng = get_rng()
        return int(rng.integers(0, h - th + 1)), int(rng.integers(0, w - tw + 1)), th, tw

    def __call__(self, img: Any) -> Any:
        if self.padding is not None:
            img = pad(img, self.padding, self.fill, self.padding_mode)
        _, h, w = get_dimensions(img)
        th, tw = self.size
        if self.pad_if_needed and w < tw:
            img = pad(img, [tw - w, 0], self.fill, self.padding_mode)
        if self.pad_if_needed and h < th:
            img = pad(img, [0, th - h], self.fill, self.padding_mode)
        return crop(img, *self.get_params(img, self.size))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, padding={self.padding})"


class RandomResizedCrop:
    """A random box of random area (``scale`` of the image) and aspect ``ratio``, resized to ``size``."""

    def __init__(
        self,
        size: int | Sequence[int],
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0),
        interpolation: InterpolationMode | str = InterpolationMode.BILINEAR,
        antialias: bool | None = True,
    ) -> None:
        self.size = _pair(size, "RandomResizedCrop")
        if scale[0] > scale[1] or ratio[0] > ratio[1]:
            raise ArgumentError(f"scale and ratio must be (min, max) ranges, got scale={scale}, ratio={ratio}")
        self.scale, self.ratio = tuple(scale), tuple(ratio)
        self.interpolation = _interpolation(interpolation, ("nearest", "bilinear", "bicubic"))
        self.antialias = antialias

    @staticmethod
    def get_params(img: Any, scale: Sequence[float], ratio: Sequence[float]) -> tuple[int, int, int, int]:
        """``(top, left, height, width)``: up to 10 random tries, then a central crop (torchvision's rule)."""
        _, height, width = get_dimensions(img)
        area = height * width
        rng = get_rng()
        log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
        for _ in range(10):
            target_area = area * rng.uniform(scale[0], scale[1])
            aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
            w = int(round(math.sqrt(target_area * aspect)))
            h = int(round(math.sqrt(target_area / aspect)))
            if 0 < w <= width and 0 < h <= height:
                return int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1)), h, w
        in_ratio = width / height
        if in_ratio < min(ratio):
            w, h = width, int(round(width / min(ratio)))
        elif in_ratio > max(ratio):
            h, w = height, int(round(height * max(ratio)))
        else:
            w, h = width, height
        return (height - h) // 2, (width - w) // 2, h, w

    def __call__(self, img: Any) -> Any:
        top, left, h, w = self.get_params(img, self.scale, self.ratio)
        return resized_crop(img, top, left, h, w, self.size, self.interpolation, self.antialias)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, scale={self.scale}, ratio={self.ratio})"


def _check_probability(p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ArgumentError(f"p must be a probability in [0, 1], got {p}")
    return float(p)


class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _check_probability(p)

    def __call__(self, img: Any) -> Any:
        return hflip(img) if get_rng().random() < self.p else img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


class RandomVerticalFlip:
    """Mirror top-bottom with probability ``p``."""

    def __init__(self, p: float = 0.5) -> None:
        self.p = _check_probability(p)

    def __call__(self, img: Any) -> Any:
        return vflip(img) if get_rng().random() < self.p else img

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p})"


def _jitter_range(name: str, value: Any, center: float, bound: tuple[float, float], clip_first: bool):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ArgumentError(f"{name} must be non-negative when it is one number, got {value}")
        value = [center - float(value), center + float(value)]
        if clip_first:
            value[0] = max(value[0], 0.0)
    elif isinstance(value, Sequence) and len(value) == 2:
        value = [float(value[0]), float(value[1])]
    else:
        raise ArgumentError(f"{name} must be a number or a (min, max) pair, got {value!r}")
    if not bound[0] <= value[0] <= value[1] <= bound[1]:
        raise ArgumentError(f"{name} range must lie within {list(bound)} with min <= max, got {value}")
    return None if value[0] == value[1] == center else tuple(value)


class ColorJitter:
    """Random brightness, contrast, saturation and hue changes, applied in a random order.

    Each factor is a number ``x`` (range ``[max(0, 1 - x), 1 + x]``; hue: ``[-x, x]`` with
    ``x <= 0.5``) or a ``(min, max)`` range.
    """

    def __init__(self, brightness: Any = 0, contrast: Any = 0, saturation: Any = 0, hue: Any = 0) -> None:
        self.brightness = _jitter_range("brightness", brightness, 1.0, (0.0, float("inf")), True)
        self.contrast = _jitter_range("contrast", contrast, 1.0, (0.0, float("inf")), True)
        self.saturation = _jitter_range("saturation", saturation, 1.0, (0.0, float("inf")), True)
        self.hue = _jitter_range("hue", hue, 0.0, (-0.5, 0.5), False)

    @staticmethod
    def get_params(brightness: Any, contrast: Any, saturation: Any, hue: Any) -> tuple:
        """``(order, b, c, s, h)``: a permutation of the four adjustments and a factor each (``None``: skip)."""
        rng = get_rng()
        order = rng.permutation(4).tolist()
        ranges = (brightness, contrast, saturation, hue)
        factors = [None if r is None else float(rng.uniform(r[0], r[1])) for r in ranges]
        return (order, *factors)

    def __call__(self, img: Any) -> Any:
        order, *factors = self.get_params(self.brightness, self.contrast, self.saturation, self.hue)
        adjust = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
        for k in order:
            if factors[k] is not None:
                img = adjust[k](img, factors[k])
        return img

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class RandomRotation:
    """Rotate by an angle drawn uniformly from ``degrees`` (a number ``d`` means ``(-d, d)``); see ``rotate``."""

    def __init__(
        self,
        degrees: float | Sequence[float],
        interpolation: InterpolationMode | str = InterpolationMode.NEAREST,
        expand: bool = False,
        center: Sequence[float] | None = None,
        fill: Any = 0,
    ) -> None:
        if isinstance(degrees, numbers.Number):
            if degrees < 0:
                raise ArgumentError(f"degrees must be non-negative when it is one number, got {degrees}")
            degrees = (-float(degrees), float(degrees))
        elif not (isinstance(degrees, Sequence) and len(degrees) == 2):
            raise ArgumentError(f"degrees must be a number or a (min, max) pair, got {degrees!r}")
        self.degrees = (float(degrees[0]), float(degrees[1]))
        self.interpolation = _interpolation(interpolation, ("nearest", "bilinear"))
        self.expand, self.center = expand, center
        self.fill = 0 if fill is None else fill

    @staticmethod
    def get_params(degrees: Sequence[float]) -> float:
        """An angle drawn uniformly from ``[degrees[0], degrees[1]]``."""
        return float(get_rng().uniform(degrees[0], degrees[1]))

    def __call__(self, img: Any) -> Any:
        angle = self.get_params(self.degrees)
        return rotate(img, angle, self.interpolation, self.expand, self.center, self.fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(degrees={self.degrees}, interpolation={self.interpolation})"


class Grayscale:
    """Convert to grayscale with 1 or 3 output channels."""

    def __init__(self, num_output_channels: int = 1) -> None:
        if num_output_channels not in (1, 3):
            raise ArgumentError(f"num_output_channels must be 1 or 3, got {num_output_channels}")
        self.num_output_channels = num_output_channels

    def __call__(self, img: Any) -> Any:
        return rgb_to_grayscale(img, self.num_output_channels)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_output_channels={self.num_output_channels})"
