"""Storage for labelled text datasets: UTF-8 texts in one byte blob plus offsets, cached as ``.npy``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

__all__ = ["TextClassificationDataset", "pack_texts"]


def pack_texts(labels: Sequence[int], texts: Sequence[str]) -> dict[str, np.ndarray]:
    """``{"labels": (N,) int64, "offsets": (N + 1,) int64, "blob": (bytes,) uint8}`` for the cache."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
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
        start, end = int(self._offsets[i]), int(self._offsets[i + 1])
        return int(self.labels[i]), bytes(self._blob[start:end]).decode("utf-8")

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self) -> Iterator[tuple[int, str]]:
        for i in range(len(self)):
            yield self[i]

    def __repr__(self) -> str:
        return f"{self.name}(split={self.split!r}, samples={len(self)})"
