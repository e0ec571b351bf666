"""Storage for labelled text datasets: UTF-8 texts in one byte blob plus offsets, cached as ``.npy``."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .._array_cache import CACHE_FOLDER, ArrayCache, cached_arrays
from .._dataset import check_choice
from .._roots import resolve_root
from .._strings import pack_strings, unpack_string

__all__ = ["TEXT_KEYS", "TextClassificationDataset", "load_splits", "pack_texts"]

TEXT_KEYS = ("labels", "offsets", "blob")


def pack_texts(labels: Sequence[int], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"labels": (N,) int64, "offsets": (N + 1,) int64, "blob": (bytes,) uint8}`` for the cache."""
    offsets, blob = pack_strings(texts)
    return {"labels": np.asarray(labels, dtype=np.int64), "offsets": offsets, "blob": blob}


class TextClassificationDataset:
    """``ds[i]`` is ``(label int, text str)``, as torchtext's datapipes yield; also iterable and sized.

    The texts stay encoded in a memory-mapped blob and are decoded on access.
    """

    def __init__(self, name: str, split: str, arrays: dict[str, np.ndarray]) -> None:
        self.name = name
        self.split = split
        self.labels: np.ndarray = arrays["labels"]
        self._offsets = arrays["offsets"]
        self._blob = arrays["blob"]

    def __getitem__(self, index: int) -> tuple[int, str]:
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"index {index} is out of range for a dataset of {n} samples")
        return int(self.labels[i]), unpack_string(self._offsets, self._blob, i)

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"{self.name}(split={self.split!r}, samples={len(self)})"


def load_splits(
    name: str,
    root: str | os.PathLike[str] | None,
    split: str | tuple[str, ...],
    download: bool,
    read: Callable[[Path, str, bool], tuple[list[int], list[str], list[Path]]],
) -> TextClassificationDataset | tuple[TextClassificationDataset, ...]:
    """torchtext's convention: one dataset for a string ``split``, a tuple of them for a tuple of names.

    Each split is read from ``root/<name>`` by ``read(folder, split, download)`` -> ``(labels, texts, raw
    files)`` once, then served from ``root/<name>/hubkit-cache/``.
    """
    folder = resolve_root(root) / name
    names = (split,) if isinstance(split, str) else tuple(split)
    for one in names:
        check_choice(one, "split", ("train", "test"))

    def load(one: str) -> TextClassificationDataset:
        def build() -> tuple[dict[str, np.ndarray], dict, list[Path]]:
            labels, texts, sources = read(folder, one, download)
            return pack_texts(labels, texts), {}, sources

        arrays, _ = cached_arrays(ArrayCache(folder / CACHE_FOLDER, one, TEXT_KEYS), build)
        return TextClassificationDataset(name, one, arrays)

    out = tuple(load(one) for one in names)
    return out[0] if isinstance(split, str) else out
