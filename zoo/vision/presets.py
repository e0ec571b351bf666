"""The inference preprocessing of torchvision's classification weights (``ImageClassification``).

``get_weights("resnet50").transforms()`` returns one of these, configured from the weight tag's
registry entry (``image_classification`` is the factory the vision zoo sets on its tags), so quoted
accuracies stay reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit import transforms as T
from hubkit.errors import ArgumentTypeError
from hubkit.hub.registry import WeightTag
from hubkit.tensor import Tensor, from_numpy


class ImageClassification:
    """Resize the shorter side to ``resize_size``, center-crop ``crop_size``, scale to [0, 1], normalize.

    Accepts a PIL image (resized by PIL, as torchvision does), an ``(H, W, C)`` uint8 ndarray, or a
    ``(C, H, W)`` / ``(N, C, H, W)`` Tensor (uint8 in 0..255 or float in 0..1; resized with
    torchvision's antialiased tensor arithmetic). Returns a float32 Tensor ``(3, crop, crop)`` or
    ``(N, 3, crop, crop)``. Grayscale and RGBA inputs are converted to RGB first.
    """

    def __init__(
        self,
        *,
        crop_size: int,
        resize_size: int = 256,
        mean: Sequence[float] = (0.485, 0.456, 0.406),
        std: Sequence[float] = (0.229, 0.224, 0.225),
        interpolation: str | T.InterpolationMode = "bilinear",
        antialias: bool = True,
    ) -> None:
        self.crop_size = [int(crop_size)]
        self.resize_size = [int(resize_size)]
        self.mean = list(mean)
        self.std = list(std)
        self.interpolation = T.InterpolationMode(getattr(interpolation, "value", interpolation))
        self.antialias = antialias

    def __call__(self, img: Any) -> Tensor:
        img = _rgb(img)
        img = T.resize(img, self.resize_size, interpolation=self.interpolation, antialias=self.antialias)
        img = T.center_crop(img, self.crop_size)
        if not isinstance(img, Tensor):
            img = T.pil_to_tensor(img)
        arr = img.array
        if arr.dtype == np.uint8:
            arr = arr.astype(np.float32) / np.float32(255.0)
        elif arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        return T.normalize(from_numpy(np.ascontiguousarray(arr)), self.mean, self.std)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(crop_size={self.crop_size}, resize_size={self.resize_size}, mean={self.mean}, "
            f"std={self.std}, interpolation={self.interpolation.value}, antialias={self.antialias})"
        )

    def describe(self) -> str:
        """One paragraph saying what the preprocessing does, for ``hubkit info``."""
        return (
            f"Images are resized to resize_size={self.resize_size} using {self.interpolation.value} interpolation, "
            f"followed by a central crop of crop_size={self.crop_size}. The values are rescaled to [0.0, 1.0] "
            f"and normalized using mean={self.mean} and std={self.std}."
        )


def image_classification(tag: WeightTag) -> ImageClassification:
    """The transforms factory of image-classification weight tags (``tag.transforms()``): the tag's
    ``Preprocessing`` as an :class:`ImageClassification`."""
    p = tag.preprocessing
    return ImageClassification(crop_size=p.crop_size, resize_size=p.resize_size, mean=p.mean, std=p.std,
                               interpolation=p.interpolation, antialias=p.antialias)


def _rgb(img: Any) -> Any:
    """Convert PIL images in other modes, and 2-d / 4-channel ndarrays, to 3-channel RGB."""
    if isinstance(img, Tensor):
        return img
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            return np.repeat(img[:, :, None], 3, axis=2)
        if img.ndim == 3 and img.shape[2] == 4:
            return img[:, :, :3]
        if img.ndim == 3 and img.shape[2] == 1:
            return np.repeat(img, 3, axis=2)
        return img
    if hasattr(img, "mode") and hasattr(img, "convert"):
        return img if img.mode == "RGB" else img.convert("RGB")
    raise ArgumentTypeError(
        f"ImageClassification expects a PIL image, an (H, W, C) ndarray or a (C, H, W) Tensor, got {type(img).__name__}"
    )
