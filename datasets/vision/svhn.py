"""SVHN (Street View House Numbers, cropped digits) from the MATLAB ``.mat`` files; needs scipy.

On disk: ``root/{train,test,extra}_32x32.mat`` (torchvision's layout); decoded arrays are cached under
``root/hubkit-cache/``, so scipy is only needed the first time a split is read.
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
from .._dataset import ArrayDataset, check_choice, require
from .._files import RawFile, locate, resource_filename
from .._registry import register_dataset

__all__ = ["SVHN"]

_BASE = "http://ufldl.stanford.edu/housenumbers/"


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data (N, 3, 32, 32) uint8, labels (N,) int64)`` from an SVHN ``.mat`` file, label 10 mapped to 0."""
    sio = require("scipy.io", "Reading SVHN's .mat files", "scipy")
    try:
        mat = sio.loadmat(str(path))
    except (ValueError, OSError, TypeError) as exc:
        raise DatasetError(
            f"{path} is not a readable MATLAB file ({exc}); it is truncated or corrupted. Delete it and "
            "construct SVHN again with download=True."
        ) from exc
    if "X" not in mat or "y" not in mat:
        raise DatasetError(f"{path}: expected MATLAB variables 'X' and 'y', found {sorted(mat)}")
    x, y = mat["X"], mat["y"]
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or y.size != x.shape[3]:
        raise DatasetError(f"{path}: expected X of shape (32, 32, 3, N) and N labels, found {x.shape}, {y.shape}")
    labels = y.astype(np.int64).reshape(-1)
    labels[labels == 10] = 0  # SVHN labels the digit 0 as class 10
    return np.ascontiguousarray(np.transpose(x, (3, 2, 0, 1)), dtype=np.uint8), labels


@register_dataset
class SVHN(ArrayDataset):
    """SVHN: ``SVHN(root=None, split="train", transform=None, target_transform=None, download=False)``.

    ``split`` is ``train`` (73,257), ``test`` (26,032) or ``extra`` (531,131). ``data`` is
    ``(N, 3, 32, 32)`` uint8 and ``labels`` ``(N,)`` int64 as in torchvision; ``ds[i]`` is
    ``(image (32, 32, 3) uint8 ndarray, target int)``.
    """

    resources: tuple[Resource, ...] = (
        Resource(url=_BASE + "train_32x32.mat", md5="e26dedcc434d2e4c54c9b2d4a06d8373"),
        Resource(url=_BASE + "test_32x32.mat", md5="eb5a983be6a315427106f1b164d9cef3"),
        Resource(url=_BASE + "extra_32x32.mat", md5="a93ce644f1a588dc4d68dda5feec44a7"),
    )
    splits = ("train", "test", "extra")
    classes = [str(d) for d in range(10)]
    _targets_attr = "labels"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = check_choice(split, "split", self.splits)
        res = next(r for r in self.resources if resource_filename(r) == f"{split}_32x32.mat")
        self.filename = resource_filename(res)

        def decode() -> tuple[dict[str, np.ndarray], dict[str, Any], list[Path]]:
            (path,) = locate("SVHN", [RawFile(res, self.root)], download)
            data, labels = read_svhn_mat(path)
            return {"data": data, "labels": labels}, {}, [path]

        arrays, _ = cached_arrays(ArrayCache(self.root / CACHE_FOLDER, f"SVHN-{split}", ("data", "labels")), decode)
        self.data: np.ndarray = arrays["data"]
        self.labels: np.ndarray = arrays["labels"]

    def _image(self, index: int) -> np.ndarray:
        """``(32, 32, 3)``: the stored ``(3, 32, 32)`` image as HWC, as torchvision's PIL image is."""
        return np.ascontiguousarray(np.transpose(self.data[index], (1, 2, 0)))

    def extra_repr(self) -> str:
        return f"Split: {self.split}"
