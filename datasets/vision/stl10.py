"""STL-10 (96x96 RGB, 10 classes + 100,000 unlabeled images) from the binary release.

On disk: ``root/stl10_binary.tar.gz`` extracts to ``root/stl10_binary/`` (torchvision's layout). The
``.bin`` files are already flat uint8 arrays, so they are memory-mapped directly (no decoded copy);
each is checked against upstream's md5 once and remembered by size and mtime.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, DatasetError
from hubkit.hub import Resource

from .._dataset import VisionDataset, check_choice
from .._files import RawFile, archive_members
from .._registry import register_dataset

__all__ = ["STL10"]

_IMAGE_BYTES = 3 * 96 * 96


def _map_images(path: Path) -> np.ndarray:
    """``(N, 3, 96, 96)`` uint8 view of a ``*_X.bin`` file (stored column-major, so H and W are swapped back)."""
    size = path.stat().st_size
    if size == 0 or size % _IMAGE_BYTES:
        raise DatasetError(
            f"{path} has {size} bytes, not a positive multiple of {_IMAGE_BYTES} (one 3x96x96 image); it is "
            "truncated or corrupted. Delete it and pass download=True to extract it again."
        )
    images = np.memmap(path, dtype=np.uint8, mode="r").reshape(-1, 3, 96, 96)
    return images.transpose(0, 1, 3, 2)


def _read_labels(path: Path, count: int) -> np.ndarray:
    labels = np.fromfile(path, dtype=np.uint8).astype(np.int64) - 1  # stored 1-based
    if len(labels) != count:
        raise DatasetError(f"{path}: {len(labels)} labels for {count} images; the files do not belong together")
    return labels


@register_dataset
class STL10(VisionDataset):
    """STL-10: ``STL10(root=None, split="train", folds=None, transform=None, target_transform=None, download=False)``.

    ``split`` is ``train`` (5,000), ``train+unlabeled``, ``unlabeled`` (100,000) or ``test`` (8,000);
    ``folds`` in 0..9 keeps one of the ten predefined 1,000-image training folds. ``data`` is
    ``(N, 3, 96, 96)`` uint8, ``labels`` ``(N,)`` int64 with -1 for unlabeled images; ``ds[i]`` is
    ``(image (96, 96, 3) uint8 ndarray, target int)``.
    """

    base_folder = "stl10_binary"
    resources: tuple[Resource, ...] = (
        Resource(url="http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
                 md5="91f7769df0f17e558f3565bffb0c7dfb", size=2640397119),
    )
    class_names_file = "class_names.txt"
    folds_list_file = "fold_indices.txt"
    train_list = [
        ["train_X.bin", "918c2871b30a85fa023e0c44e0bee87f"],
        ["train_y.bin", "5a34089d4802c674881badbb80307741"],
        ["unlabeled_X.bin", "5242ba1fed5e4be9e1e742405eb56ca4"],
    ]
    test_list = [["test_X.bin", "7f263ba9f9e0b06b93213547f721ac82"], ["test_y.bin", "36f9794fa4beb8a2c72628de14fa638e"]]
    splits = ("train", "train+unlabeled", "unlabeled", "test")

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        folds: int | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        download: bool = False,
    ) -> None:
        super().__init__(root, transform=transform, target_transform=target_transform)
        self.split = check_choice(split, "split", self.splits)
        self.folds = self._verify_folds(folds)
        folder = self.root / self.base_folder
        wanted = {
            "train": self.train_list[:2],
            "train+unlabeled": self.train_list,
            "unlabeled": self.train_list[2:],
            "test": self.test_list,
        }[self.split]
        members = [(folder / name, md5) for name, md5 in wanted]
        archive_members("STL10", RawFile(self.resources[0], self.root), self.root, members, download)

        parts: list[np.ndarray] = []
        labels: list[np.ndarray] = []
        if self.split in ("train", "train+unlabeled", "test"):
            x_name, y_name = (self.test_list if self.split == "test" else self.train_list)[0][0], wanted[1][0]
            images = _map_images(folder / x_name)
            targets = _read_labels(folder / y_name, len(images))
            if self.folds is not None and self.split != "test":
                idx = self._fold_indices(folder)
                images, targets = images[idx], targets[idx]
            parts.append(images)
            labels.append(targets)
        if self.split in ("train+unlabeled", "unlabeled"):
            unlabeled = _map_images(folder / "unlabeled_X.bin")
            parts.append(unlabeled)
            labels.append(np.full(len(unlabeled), -1, dtype=np.int64))
        self._parts = parts
        self._offsets = np.cumsum([0] + [len(p) for p in parts])
        self.labels: np.ndarray = np.concatenate(labels)

        class_file = folder / self.class_names_file
        if class_file.is_file():
            self.classes = class_file.read_text().splitlines()

    @property
    def data(self) -> np.ndarray:
        """All images as one ``(N, 3, 96, 96)`` uint8 array (a copy when unlabeled images are appended)."""
        return self._parts[0] if len(self._parts) == 1 else np.concatenate(self._parts)

    @property
    def class_to_idx(self) -> dict[str, int]:
        return {c: i for i, c in enumerate(getattr(self, "classes", []))}

    @staticmethod
    def _verify_folds(folds: int | None) -> int | None:
        if folds is None:
            return None
        if not isinstance(folds, int) or isinstance(folds, bool):
            raise ArgumentError(f"Expected type None or int for argument folds, but got type {type(folds).__name__}.")
        if folds not in range(10):
            raise ArgumentError(f"Value for argument folds should be in the range [0, 10), but got {folds}.")
        return folds

    def _fold_indices(self, folder: Path) -> np.ndarray:
        path = folder / self.folds_list_file
        if not path.is_file():
            raise DatasetError(f"STL10: folds={self.folds} needs {path}, which is missing; extract the archive again")
        lines = path.read_text().splitlines()
        if len(lines) <= self.folds:
            raise DatasetError(f"{path} has {len(lines)} folds, fold {self.folds} was asked for")
        return np.array(lines[self.folds].split(), dtype=np.int64)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(image (96, 96, 3) uint8 ndarray, target int)``; target is -1 for unlabeled images."""
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        part = int(np.searchsorted(self._offsets, i, side="right")) - 1
        img = self._parts[part][i - self._offsets[part]]
        return self._apply(np.ascontiguousarray(img.transpose(1, 2, 0)), int(self.labels[i]))

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def extra_repr(self) -> str:
        return f"Split: {self.split}"
