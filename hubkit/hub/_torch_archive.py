"""A parsed torch checkpoint: the unpickled object plus its storages, turned into numpy arrays.

The three torch readers (zip, legacy stream, legacy tar) differ only in where a storage's bytes live;
each hands :class:`TorchArchive` a function that returns a root storage's bytes. Everything about
turning a :class:`TensorRef` into an array (bounds, strides, byte order, bfloat16, conj/neg views)
is here, once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub._torch_pickle import BFLOAT16, StorageRef, TensorRef


def widen_bfloat16(bits: np.ndarray) -> np.ndarray:
    """bfloat16 bit patterns ``(...,)`` uint16 -> the same values as float32 (exact)."""
    return (bits.astype(np.uint32) << 16).view(np.float32)


class TorchArchive:
    """``obj`` is the checkpoint's object tree with :class:`TensorRef` where tensors were."""

    def __init__(self, obj: Any, fetch_root: Callable[[StorageRef], np.ndarray], *, path: str,
                 big_endian: bool = False) -> None:
        self.obj = obj
        self.path = path
        self.big_endian = big_endian
        self._fetch_root = fetch_root
        self._roots: dict[str, np.ndarray] = {}

    def storage_bytes(self, ref: StorageRef) -> np.ndarray:
        """``(ref.nbytes,)`` uint8, loaded once per storage so tied tensors share memory."""
        root = ref.base if ref.base is not None else ref
        raw = self._roots.get(root.key)
        if raw is None:
            raw = self._fetch_root(root)
            self._roots[root.key] = raw
        if ref.base is None:
            return raw
        start = ref.offset * ref.dtype.itemsize
        if start + ref.nbytes > len(raw):
            raise CheckpointError(f"{self.path}: storage view {ref.key!r} covers bytes {start}.."
                                  f"{start + ref.nbytes} of storage {root.key!r}, which has {len(raw)}")
        return raw[start : start + ref.nbytes]

    def array(self, ref: TensorRef, name: str, *, bfloat16: str = "float32") -> np.ndarray:
        """The tensor as an ndarray: a view of its storage where possible, else a copy.

        Copies are made for big-endian files, conj/neg views and bfloat16 widened to float32.
        """
        raw = self.storage_bytes(ref.storage)
        dtype = ref.dtype
        itemsize = dtype.itemsize
        layout = dtype.storage.newbyteorder(">") if self.big_endian and itemsize > 1 else dtype.storage
        numel = math.prod(ref.shape)
        if max((numel, ref.offset, *ref.shape, *ref.stride)) * itemsize >= 2**62:
            raise CheckpointError(f"{self.path}: tensor {name!r} claims shape {ref.shape}, stride {ref.stride}, "
                                  f"offset {ref.offset}: more than any memory holds; the file is corrupted")
        if numel == 0:
            arr = np.zeros(ref.shape, dtype=dtype.storage)
        else:
            available = len(raw) // itemsize
            last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
            if last >= available:
                raise CheckpointError(
                    f"{self.path}: tensor {name!r} (shape {ref.shape}, stride {ref.stride}, offset "
                    f"{ref.offset}) reaches element {last} but its storage {ref.storage.key!r} holds "
                    f"{available} {dtype.name} elements; the file is corrupted"
                )
            arr = np.ndarray(ref.shape, dtype=layout, buffer=raw, offset=ref.offset * itemsize,
                             strides=tuple(s * itemsize for s in ref.stride))
            if layout is not dtype.storage:
                arr = arr.astype(dtype.storage)
        if ref.conj:
            arr = np.conj(arr)
        if ref.neg:
            arr = np.negative(arr)
        if dtype is BFLOAT16 and bfloat16 == "float32":
            arr = widen_bfloat16(arr)
        return arr
