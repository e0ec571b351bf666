"""The transform classes, with torchvision.transforms' names, arguments and reprs.

Each is a callable object configured once (``Resize(256)``) that applies a function of
``hubkit.transforms.functional`` to an image; the random ones draw their parameters from hubkit's
global generator (``hubkit.manual_seed``), seeded per worker in DataLoader workers.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.random import get_rng
from hubkit.tensor import Tensor
from hubkit.transforms.functional import (
    _PAD_MODES,
    InterpolationMode,
    _check_size,
    _check_std,
    _interpolation,
    _normalize_arrays,
    _parse_padding,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    center_crop,
    crop,
    get_dimensions,
    hflip,
    normalize,
    pad,
    pil_to_tensor,
    resize,
    resized_crop,
    rgb_to_grayscale,
    rotate,
    to_tensor,
    vflip,
)

__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "Grayscale",
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
]


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
        arr = tensor.array if isinstance(tensor, Tensor) else None
        if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.ndim >= 3:
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
