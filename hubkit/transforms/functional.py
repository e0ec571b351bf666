"""The functions behind the transforms, with torchvision.transforms.functional's names and arguments.

Each takes an image in any of the three forms (``(H, W[, C])`` ndarray, ``(..., C, H, W)`` hubkit
Tensor, PIL image; see ``hubkit.transforms``) and returns the form it was given:

    from hubkit.transforms import functional as F
    x = F.normalize(F.to_tensor(F.center_crop(F.resize(img, 256), 224)), mean, std)
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
from hubkit.tensor import Tensor, from_numpy
from hubkit.transforms._resample import (
    cast_back,
    resize_reference,
    resize_uint8_hwc,
    resize_uint8_planes,
    work_dtype,
)

__all__ = [
    "InterpolationMode",
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
    # convert (and transpose) first, then divide in place: the float32 division runs on contiguous
    # memory, 1.4x faster on a 1080p image than dividing the strided uint8 view (same values)
    out = np.empty(chw.shape, dtype=np.float32)
    np.copyto(out, chw)
    np.divide(out, np.float32(255), out=out)
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
    filters when shrinking, as PIL does. Float images keep their dtype; integer results are computed in
    float32 and rounded half to even, as torchvision's float arithmetic (``torchvision.transforms``
    on tensors) does, to within one level. torchvision v2 and PIL store the first of the two passes
    as uint8: bilinear results still agree within one level, bicubic ones on high-contrast images
    (where the filter overshoots 0..255) can differ by tens of levels, as v1 and v2 do.
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
    antialias = bool(antialias) and mode != "nearest"
    if chw.dtype == np.uint8 and mode != "nearest":
        # banded float32 GEMMs, within one level of the reference arithmetic and 10-40x faster on
        # photos (1080p -> 224: 2.9 ms instead of 118; 500x375 -> 256: 0.65 ms instead of 6.6)
        if isinstance(img, np.ndarray):
            return resize_uint8_hwc(img, out_size, mode, antialias)
        return back(resize_uint8_planes(chw, out_size, mode, antialias))
    return back(resize_reference(chw, out_size, mode, antialias))


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
    work = work_dtype(dtype)
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
    return back(cast_back(out, dtype, rounding=True))


# ---------------------------------------------------------------- colour


def _gray_chw(chw: np.ndarray) -> np.ndarray:
    if chw.shape[-3] == 1:
        return chw.copy()
    if chw.shape[-3] != 3:
        raise ShapeError(f"grayscale conversion expects 1 or 3 channels, got {chw.shape[-3]}")
    work = work_dtype(chw.dtype)
    r, g, b = (chw[..., i, :, :].astype(work) for i in range(3))
    gray = work.type(0.2989) * r + work.type(0.587) * g + work.type(0.114) * b
    return cast_back(gray, chw.dtype, rounding=False)[..., None, :, :]


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
    work = work_dtype(img1.dtype)
    mixed = work.type(ratio) * img1.astype(work) + work.type(1.0 - ratio) * img2.astype(work)
    np.clip(mixed, 0, bound, out=mixed)
    return cast_back(mixed, img1.dtype, rounding=False)


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
    work = work_dtype(chw.dtype)
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
    work = work_dtype(dtype)
    rgb = chw.astype(work) / work.type(bound) if dtype.kind != "f" else chw
    hsv = _rgb_to_hsv(rgb)
    hsv[..., 0, :, :] = (hsv[..., 0, :, :] + work.type(hue_factor)) % 1.0
    out = _hsv_to_rgb(hsv)
    if dtype.kind != "f":
        # torchvision's float -> uint8 conversion: multiply by 256 - 1e-3, then truncate
        out = cast_back(out * work.type(bound + 1.0 - 1e-3), dtype, rounding=False)
    return back(out)

