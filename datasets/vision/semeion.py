"""SEMEION handwritten digits (1,593 binary 16x16 images) from the UCI text file.

On disk: ``root/semeion.data`` (torchvision's layout); decoded arrays are cached under
``root/hubkit-cache/``. As in torchvision, ``download`` defaults to True for this dataset only.
"""

from __future__ import annotations

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

__all__ = ["SEMEION"]


def read_semeion(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 16, 16) uint8 in {0, 255}, labels (N,) int64)`` from ``semeion.data``.

    Each line holds 256 pixel values (0 or 1) followed by a one-hot block of 10 label columns.
    """
    try:
        table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise DatasetError(f"{path} is not SEMEION's text table ({exc}); delete it and download it again") from exc
    if table.shape[1] != 266:
        raise DatasetError(f"{path}: expected 266 columns (256 pixels + 10 one-hot labels), found {table.shape[1]}")
    onehot = table[:, 256:]
    if not np.all(onehot.sum(axis=1) == 1):
        bad = int(np.flatnonzero(onehot.sum(axis=1) != 1)[0]) + 1
        raise DatasetError(f"{path}, line {bad}: the 10 label columns are not one-hot")
    data = (table[:, :256] * 255).astype(np.uint8).reshape(-1, 16, 16)
    return data, np.argmax(onehot, axis=1).astype(np.int64)


@register_dataset
class SEMEION(ArrayDataset):
    """SEMEION: ``SEMEION(root=None, transform=None, target_transform=None, download=True)``.

    ``data`` is ``(1593, 16, 16)`` uint8, ``labels`` ``(1593,)`` int64; ``ds[i]`` is
    ``(image (16, 16) uint8 ndarray, target int)``.
    """

    resources: tuple[Resource, ...] = (
        Resource(url="http://archive.ics.uci.edu/ml/machine-learning-databases/semeion/semeion.data",
                 md5="cb545d371d2ce14ec121470795a77432"),
    )
    classes = [str(d) for d in range(10)]
    _targets_attr = "labels"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = True,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)

        def decode() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            (path,) = locate("SEMEION", [RawFile(self.resources[0], self.root)], download)
            data, labels = read_semeion(path)
            return {"data": data, "labels": labels}, {}, [path]

        arrays, _ = cached_arrays(ArrayCache(self.root / CACHE_FOLDER, "SEMEION", ("data", "labels")), decode)
        self.data: np.ndarray = arrays["data"]
        self.labels: np.ndarray = arrays["labels"]
