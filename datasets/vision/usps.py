"""USPS handwritten digits (16x16 grayscale) from LIBSVM's bzip2-compressed text files.

On disk: ``root/usps.bz2`` and ``root/usps.t.bz2`` (torchvision's layout); decoded arrays are cached
under ``root/hubkit-cache/``.
"""

from __future__ import annotations

import bz2
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub import Resource

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import ArrayDataset
from .._files import RawFile, locate
from .._registry import register_dataset

__all__ = ["USPS", "read_libsvm"]

_BASE = "https://www.csie.ntu.edu.tw/~cjlin/libsvmtools/datasets/multiclass/"


def read_libsvm(path: Path, num_features: int) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, num_features) float32, labels (N,) int64)`` from a (bz2-compressed) LIBSVM file.

    Lines are ``label index:value ...`` with 1-based indices; absent features are 0, as LIBSVM defines.
    """
    try:
        text = bz2.decompress(path.read_bytes()) if path.suffix == ".bz2" else path.read_bytes()
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"{path} is not a valid bzip2 file ({exc}); delete it and download it again") from exc
    rows = text.decode("ascii", errors="replace").split("\n")
    rows = [r for r in rows if r.strip()]
    features = np.zeros((len(rows), num_features), dtype=np.float32)
    labels = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        label, *pairs = row.split()
        try:
            labels[i] = int(float(label))
            for pair in pairs:
                idx, _, value = pair.partition(":")
                features[i, int(idx) - 1] = float(value)
        except (ValueError, IndexError) as exc:
            raise DatasetError(
                f"{path}, line {i + 1}: not a LIBSVM line with {num_features} features: {row[:80]!r}"
            ) from exc
    return features, labels


@register_dataset
class USPS(ArrayDataset):
    """USPS: ``USPS(root=None, train=True, transform=None, target_transform=None, download=False)``.

    7,291 train / 2,007 test images. ``data`` is ``(N, 16, 16)`` uint8 (pixels in [-1, 1] mapped to
    ``(x + 1) / 2 * 255`` and truncated, as torchvision does), ``targets`` a list of ints 0..9;
    ``ds[i]`` is ``(image (16, 16) uint8 ndarray, target int)``.
    """

    resources: tuple[Resource, ...] = (
        Resource(url=_BASE + "usps.bz2", md5="ec16c51db3855ca6c91edd34d0e9b197"),
        Resource(url=_BASE + "usps.t.bz2", md5="8ea070ee2aca1ac39742fdd1ef5ed118"),
    )
    classes = [str(d) for d in range(10)]

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.train = train
        res = self.resources[0 if train else 1]

        def decode() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            (path,) = locate("USPS", [RawFile(res, self.root)], download)
            features, labels = read_libsvm(path, 256)
            images = ((features.reshape(-1, 16, 16) + 1) / 2 * 255).astype(np.uint8)
            return {"data": images, "targets": labels - 1}, {}, [path]

        split = "train" if train else "test"
        arrays, _ = cached_arrays(ArrayCache(self.root / CACHE_FOLDER, f"USPS-{split}", ("data", "targets")), decode)
        self.data: np.ndarray = arrays["data"]
        self.targets: list[int] = arrays["targets"].tolist()
