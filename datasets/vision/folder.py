"""DatasetFolder and ImageFolder: ``root/<class>/**/<file>`` trees, torchvision's rules and order.

Classes are the sorted sub-folder names of ``root``; samples are collected class by class, each class's
folder walked in sorted order (links followed), files sorted by name. Images are decoded with Pillow
(imported on first use) into ``(H, W, 3)`` uint8 ndarrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError

from .._dataset import VisionDataset, require
from .._roots import resolve_root

__all__ = [
    "IMG_EXTENSIONS",
    "DatasetFolder",
    "ImageFolder",
    "default_loader",
    "find_classes",
    "has_file_allowed_extension",
    "is_image_file",
    "make_dataset",
    "pil_loader",
]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def has_file_allowed_extension(filename: str, extensions: str | tuple[str, ...]) -> bool:
    """Whether ``filename`` ends (case-insensitively) with one of ``extensions``."""
    return filename.lower().endswith(extensions if isinstance(extensions, str) else tuple(extensions))


def is_image_file(filename: str) -> bool:
    """Whether ``filename`` has one of :data:`IMG_EXTENSIONS`."""
    return has_file_allowed_extension(filename, IMG_EXTENSIONS)


def find_classes(directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
    """Sorted sub-folder names of ``directory`` and their indices."""
    try:
        classes = sorted(entry.name for entry in os.scandir(directory) if entry.is_dir())
    except FileNotFoundError as exc:
        raise DatasetNotFoundError(f"The folder {directory} does not exist; expected root/<class>/<files>") from exc
    if not classes:
        raise DatasetNotFoundError(
            f"Couldn't find any class folder in {directory}: expected one sub-folder per class holding its files."
        )
    return classes, {name: i for i, name in enumerate(classes)}


def make_dataset(
    directory: str | os.PathLike[str],
    class_to_idx: dict[str, int] | None = None,
    extensions: str | tuple[str, ...] | None = None,
    is_valid_file: Callable[[str], bool] | None = None,
    allow_empty: bool = False,
) -> list[tuple[str, int]]:
    """``[(path, class_index), ...]`` for the files under ``directory/<class>/`` (torchvision's order).

    Exactly one of ``extensions`` and ``is_valid_file`` selects the files. Raises DatasetNotFoundError
    when a class has no file, unless ``allow_empty``.
    """
    directory = os.path.expanduser(directory)
    if class_to_idx is None:
        _, class_to_idx = find_classes(directory)
    elif not class_to_idx:
        raise ArgumentError("'class_to_idx' must have at least one entry to collect any samples.")
    if (extensions is None) == (is_valid_file is None):
        raise ArgumentError("Exactly one of extensions and is_valid_file must be given, found both or neither")
    if extensions is not None:
        exts = extensions

        def is_valid_file(path: str) -> bool:
            return has_file_allowed_extension(path, exts)

    instances = []
    available = set()
    for target_class in sorted(class_to_idx):
        class_index = class_to_idx[target_class]
        target_dir = os.path.join(directory, target_class)
        if not os.path.isdir(target_dir):
            continue
        for folder, _, fnames in sorted(os.walk(target_dir, followlinks=True)):
            for fname in sorted(fnames):
                path = os.path.join(folder, fname)
                if is_valid_file(path):
                    instances.append((path, class_index))
                    available.add(target_class)
    empty = set(class_to_idx) - available
    if empty and not allow_empty:
        msg = f"Found no valid file for the classes {', '.join(sorted(empty))}. "
        if extensions is not None:
            msg += "Supported extensions are: " + (extensions if isinstance(extensions, str) else ", ".join(extensions))
        raise DatasetNotFoundError(msg + " Pass allow_empty=True to accept empty classes.")
    return instances


def pil_loader(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode an image file with Pillow into an ``(H, W, 3)`` uint8 RGB ndarray.

    Pillow's decompression-bomb guard stays on: an image declaring more than twice
    ``PIL.Image.MAX_IMAGE_PIXELS`` pixels is refused before it is decoded.
    """
    image_mod = require("PIL.Image", "Decoding image files", "vision")
    try:
        with open(path, "rb") as f:
            img = image_mod.open(f)
            return np.asarray(img.convert("RGB"))
    except image_mod.DecompressionBombError as exc:
        raise DatasetError(
            f"{path}: refusing to decode the image ({exc}). A file this small declaring that many pixels is "
            "corrupted or a decompression bomb; if the image is genuine and trusted, raise the limit with "
            "PIL.Image.MAX_IMAGE_PIXELS = <pixels> before reading it."
        ) from exc
    except (OSError, SyntaxError) as exc:  # Pillow raises these for truncated / unknown files
        raise DatasetError(f"{path}: cannot decode the image ({exc}); the file is corrupted or not an image") from exc


default_loader = pil_loader


class DatasetFolder(VisionDataset):
    """Samples from ``root/<class>/**/<file>``; ``ds[i]`` is ``(loader(path), class_index)``.

    ``DatasetFolder(root, loader, extensions=None, transform=None, target_transform=None,
    is_valid_file=None, allow_empty=False)`` as in torchvision. Attributes: ``classes``, ``class_to_idx``,
    ``samples`` (``[(path, class_index)]``), ``targets``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        loader: Callable[[str], Any],
        extensions: tuple[str, ...] | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        if root is None:
            raise ArgumentError(f"{type(self).__name__} needs root, the folder holding one sub-folder per class")
        super().__init__(resolve_root(root), transform=transform, target_transform=target_transform)
        classes, class_to_idx = self.find_classes(self.root)
        samples = self.make_dataset(self.root, class_to_idx, extensions, is_valid_file, allow_empty)
        self.loader = loader
        self.extensions = extensions
        self.classes = classes
        self.class_to_idx = class_to_idx
        self.samples = samples
        self.targets = [s[1] for s in samples]

    @staticmethod
    def make_dataset(
        directory: str | os.PathLike[str],
        class_to_idx: dict[str, int],
        extensions: tuple[str, ...] | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> list[tuple[str, int]]:
        """See :func:`make_dataset`; ``class_to_idx`` is required here (overridable by subclasses)."""
        if class_to_idx is None:
            raise ArgumentError("The class_to_idx parameter cannot be None.")
        return make_dataset(directory, class_to_idx, extensions, is_valid_file, allow_empty)

    def find_classes(self, directory: str | os.PathLike[str]) -> tuple[list[str], dict[str, int]]:
        """``(classes, class_to_idx)`` for ``directory``; override to change what counts as a class."""
        return find_classes(directory)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        """``(loader(path), class_index)``, after ``transform``/``target_transform``."""
        path, target = self.samples[index]
        return self._apply(self.loader(path), target)

    def __len__(self) -> int:
        return len(self.samples)


class ImageFolder(DatasetFolder):
    """Images in ``root/<class>/**/<image>``; ``ds[i]`` is ``((H, W, 3) uint8 ndarray, class_index)``.

    ``ImageFolder(root, transform=None, target_transform=None, loader=default_loader, is_valid_file=None,
    allow_empty=False)``; files are selected by :data:`IMG_EXTENSIONS` unless ``is_valid_file`` is given.
    ``imgs`` is an alias of ``samples``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Path,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        loader: Callable[[str], Any] = default_loader,
        is_valid_file: Callable[[str], bool] | None = None,
        allow_empty: bool = False,
    ) -> None:
        super().__init__(
            root,
            loader,
            IMG_EXTENSIONS if is_valid_file is None else None,
            transform=transform,
            target_transform=target_transform,
            is_valid_file=is_valid_file,
            allow_empty=allow_empty,
        )
        self.imgs = self.samples
