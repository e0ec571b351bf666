"""Many short strings stored as one UTF-8 byte blob plus offsets, so a dataset's text caches as two ``.npy`` arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["pack_strings", "unpack_string"]


def pack_strings(strings: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets (N + 1,) int64, blob (bytes,) uint8)``: string ``i`` is ``blob[offsets[i]:offsets[i + 1]]``."""
    encoded = [s.encode("utf-8") for s in strings]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    blob = np.frombuffer(b"".join(encoded), dtype=np.uint8) if encoded else np.zeros(0, np.uint8)
    return offsets, blob


def unpack_string(offsets: np.ndarray, blob: np.ndarray, i: int) -> str:
    """String ``i`` of a :func:`pack_strings` pair (works on memory-mapped arrays)."""
    return bytes(blob[int(offsets[i]):int(offsets[i + 1])]).decode("utf-8")
