"""torchvision.utils' ``make_grid`` and ``save_image``: a batch of images as one picture."""

from __future__ import annotations

import io
import math
import os
import struct
import zlib
from typing import Any, BinaryIO

import numpy as np

from hubkit.errors import ArgumentError, ShapeError
from hubkit.ops.shape import stack
from hubkit.tensor import Tensor


def _as_batch(tensor: Tensor | list[Tensor]) -> Tensor:
    if isinstance(tensor, (list, tuple)):
        if not tensor:
            raise ArgumentError("make_grid: got an empty list of images")
        tensor = stack(list(tensor), dim=0)
    if not isinstance(tensor, Tensor):
        raise ArgumentError(f"make_grid expects a Tensor or a list of Tensors, got {type(tensor).__name__}")
    if tensor.ndim == 2:  # a single (H, W) image
        tensor = tensor.unsqueeze(0)
    if tensor.ndim == 3:  # a single (C, H, W) image
        tensor = tensor.unsqueeze(0)
    if tensor.ndim != 4:
        raise ShapeError(f"make_grid expects images of shape (B, C, H, W), (C, H, W) or (H, W), "
                         f"got {tuple(tensor.shape)}")
    if tensor.shape[1] == 1:  # grayscale to RGB, as torchvision does
        tensor = tensor.expand(-1, 3, -1, -1)
    return tensor


def _normalized(images: np.ndarray, value_range: tuple[float, float] | None, scale_each: bool) -> np.ndarray:
    images = images.astype(np.float32 if images.dtype != np.float64 else np.float64)
    if value_range is not None:
        low, high = value_range
        return np.clip((images - low) / max(high - low, 1e-5), 0, 1)
    if scale_each:
        low = images.min(axis=(1, 2, 3), keepdims=True)
        high = images.max(axis=(1, 2, 3), keepdims=True)
    else:
        low, high = images.min(), images.max()
    return np.clip((images - low) / np.maximum(high - low, 1e-5), 0, 1)


def make_grid(tensor: Tensor | list[Tensor], nrow: int = 8, padding: int = 2, normalize: bool = False,
              value_range: tuple[float, float] | None = None, scale_each: bool = False,
              pad_value: float = 0.0) -> Tensor:
    """Tile images ``(B, C, H, W)`` into one ``(C, rows*(H+padding)+padding, nrow*(W+padding)+padding)`` image.

    ``nrow`` images per row; one-channel images become three-channel. ``normalize`` shifts each
    grid (or each image with ``scale_each``) to [0, 1] by its min and max, or by ``value_range``.
    The result is a new tensor (not part of the autograd graph), like torchvision's.
    """
    batch = _as_batch(tensor)
    images = batch.detach().cpu().numpy()
    if normalize:
        images = _normalized(images, value_range, scale_each)
    n, c, h, w = images.shape
    if n == 1:
        return Tensor(np.ascontiguousarray(images[0]), device=batch.device)
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = h + padding, w + padding
    grid = np.full((c, rows * cell_h + padding, cols * cell_w + padding), pad_value, dtype=images.dtype)
    for k in range(n):
        r, q = divmod(k, cols)
        top, left = r * cell_h + padding, q * cell_w + padding
        grid[:, top:top + h, left:left + w] = images[k]
    return Tensor(grid, device=batch.device)


def _png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of an (H, W, 3) or (H, W) uint8 array: the format is simple enough to write without Pillow."""
    height, width = pixels.shape[:2]
    color_type = 2 if pixels.ndim == 3 else 0
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, -1)], axis=1)  # filter 0

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def save_image(tensor: Tensor | list[Tensor], fp: str | os.PathLike | BinaryIO, format: str | None = None,
               **kwargs: Any) -> None:
    """Write images (values in [0, 1]) to ``fp`` as one grid; ``kwargs`` go to :func:`make_grid`.

    PNG is written without extra packages; other formats (from ``format`` or the suffix) need
    Pillow (``pip install 'hubkit[vision]'``).
    """
    grid = make_grid(tensor, **kwargs).numpy()
    pixels = np.clip(grid * 255 + 0.5, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    kind = (format or (os.path.splitext(os.fspath(fp))[1][1:] if isinstance(fp, (str, os.PathLike)) else "png"))
    kind = kind.lower() or "png"
    try:
        from PIL import Image
    except ImportError:
        if kind != "png":
            raise ArgumentError(f"save_image: writing {kind!r} files needs Pillow (pip install 'hubkit[vision]'); "
                                "PNG works without it") from None
        data = _png_bytes(pixels)
    else:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG" if kind in ("jpg", "jpeg") else kind.upper())
        data = buffer.getvalue()
    if isinstance(fp, (str, os.PathLike)):
        with open(fp, "wb") as f:
            f.write(data)
    else:
        fp.write(data)
