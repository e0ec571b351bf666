"""A parsed torch checkpoint: the unpickled object plus its storages, turned into numpy arrays.

The three torch readers (zip, legacy stream, legacy tar) differ only in where a storage's bytes live;
each hands :class:`TorchArchive` a function that returns a root storage's bytes. Everything about
turning a :class:`TensorRef` into an array (bounds, strides, byte order, bfloat16, conj/neg views,
converted per storage so that no view is ever expanded) is here, once, and so is :class:`TensorData`,
the form a tensor takes between the files and the engine in both directions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint._torch_pickle import BFLOAT16, AttributeRecord, Global, StorageRef, TensorRef

_MAX_DEPTH = 200  # containers nested deeper than this are no training checkpoint; stop before Python's limit


@dataclass(eq=False)
class TensorData:
    """One tensor as the checkpoint layer sees it: host memory plus what torch records about it.

    ``array`` has the tensor's shape, strides and dtype. ``location`` is the device torch names
    (``"cpu"``, ``"cuda:0"``). When loading, ``storage`` is the ``(nbytes,)`` uint8 storage that
    ``array`` views (``None`` when ``array`` is a copy), so that tensors sharing a storage in the
    file can share memory again on any device; it is ignored when saving.
    """

    array: np.ndarray
    location: str = "cpu"
    requires_grad: bool = False
    parameter: bool = False
    storage: np.ndarray | None = None


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
        self._converted: dict[tuple, np.ndarray] = {}  # (storage, conversion) -> converted elements

    def root_bytes(self, ref: StorageRef) -> np.ndarray:
        """The bytes of the root storage behind ``ref`` (itself, or the base of a legacy view), loaded once."""
        root = ref.base if ref.base is not None else ref
        raw = self._roots.get(root.key)
        if raw is None:
            raw = self._fetch_root(root)
            self._roots[root.key] = raw
        return raw

    def storage_bytes(self, ref: StorageRef) -> np.ndarray:
        """``(ref.nbytes,)`` uint8, loaded once per storage so tied tensors share memory."""
        raw = self.root_bytes(ref)
        if ref.base is None:
            return raw
        start = ref.offset * ref.dtype.itemsize
        if start + ref.nbytes > len(raw):
            raise CheckpointError(f"{self.path}: storage view {ref.key!r} covers bytes {start}.."
                                  f"{start + ref.nbytes} of storage {ref.base.key!r}, which has {len(raw)}")
        return raw[start : start + ref.nbytes]

    def array(self, ref: TensorRef, name: str, *, bfloat16: str = "float32") -> np.ndarray:
        """The tensor as an ndarray: a view of its storage (see :meth:`view`)."""
        return self.view(ref, name, bfloat16=bfloat16)[0]

    def view(self, ref: TensorRef, name: str, *, bfloat16: str = "float32") -> tuple[np.ndarray, np.ndarray]:
        """``(array, storage)``: the tensor as a strided view of its storage, and that storage as
        ``(nbytes,)`` uint8.

        The view is never expanded. Big-endian bytes, the conj/neg bits and bfloat16 widened to float32
        are applied to the *storage* (once per storage and conversion, so tied tensors stay tied), which
        the file holds byte for byte: a stride-0 view of one element with the neg bit stays one element,
        as torch keeps it lazy, instead of becoming gigabytes.
        """
        dtype = ref.dtype
        itemsize = dtype.itemsize
        numel = math.prod(ref.shape)
        if max((numel, ref.offset, *ref.shape, *ref.stride)) * itemsize >= 2**62:
            raise CheckpointError(f"{self.path}: tensor {name!r} claims shape {ref.shape}, stride {ref.stride}, "
                                  f"offset {ref.offset}: more than any memory holds; the file is corrupted")
        widen = dtype is BFLOAT16 and bfloat16 == "float32"
        out_dtype = np.dtype(np.float32) if widen else dtype.storage
        if numel == 0:
            return np.zeros(ref.shape, dtype=out_dtype), np.zeros(0, np.uint8)
        raw = self.storage_bytes(ref.storage)
        available = len(raw) // itemsize
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride))
        if last >= available:
            raise CheckpointError(
                f"{self.path}: tensor {name!r} (shape {ref.shape}, stride {ref.stride}, offset "
                f"{ref.offset}) reaches element {last} but its storage {ref.storage.key!r} holds "
                f"{available} {dtype.name} elements; the file is corrupted"
            )
        elements, converted = self._elements(ref, raw, available, widen)
        arr = np.ndarray(ref.shape, dtype=elements.dtype, buffer=elements, offset=ref.offset * elements.itemsize,
                         strides=tuple(s * elements.itemsize for s in ref.stride))
        return arr, elements.view(np.uint8) if converted else self.root_bytes(ref.storage)

    def _elements(self, ref: TensorRef, raw: np.ndarray, count: int, widen: bool) -> tuple[np.ndarray, bool]:
        """``(elements, converted)``: the storage as ``(count,)`` elements of the tensor's dtype, converted
        (a copy) when the tensor needs it, else a view of ``raw``."""
        dtype = ref.dtype
        swap = self.big_endian and dtype.itemsize > 1
        layout = dtype.storage.newbyteorder(">") if swap else dtype.storage
        elements = np.ndarray((count,), dtype=layout, buffer=raw)
        if not (swap or ref.conj or ref.neg or widen):
            return elements, False
        key = (id(ref.storage), dtype.name, swap, ref.conj, ref.neg, widen)
        done = self._converted.get(key)
        if done is None:
            done = elements.astype(dtype.storage) if swap else elements.copy()
            if ref.conj and done.dtype.kind == "c":
                np.conjugate(done, out=done)
            if ref.neg and dtype is BFLOAT16:  # bit patterns: flip the sign bit
                np.bitwise_xor(done, np.uint16(0x8000), out=done)
            elif ref.neg:
                np.negative(done, out=done)
            if widen:
                done = widen_bfloat16(done)
            self._converted[key] = done
        return done, True

    def materialize(self, tensor: Callable[[TensorData], Any] | None = None, *, bfloat16: str = "float32") -> Any:
        """The checkpoint's object with every tensor as a :class:`TensorData`, or as what ``tensor(data)``
        makes of it (called once per tensor object), in torch's own structure.

        Dicts, OrderedDicts, lists, tuples, sets and scalars come back as they were pickled (a
        ``torch.Size`` as a tuple, an allowlisted attribute-bag instance as an ``AttributeRecord``); one
        pickled object (memo) gives one output object, so a tensor
        stored twice under two keys is the same :class:`TensorData` twice. A torch dtype used as a
        value becomes the numpy dtype hubkit uses for it (bfloat16 as float32, as its tensors are).
        """
        done: dict[int, Any] = {}

        def walk(obj: Any, trail: str, depth: int) -> Any:
            if depth > _MAX_DEPTH:
                raise CheckpointError(f"{self.path}: containers are nested more than {_MAX_DEPTH} deep at "
                                      f"{trail or 'the top'}; the file is not a training checkpoint")
            if isinstance(obj, str | bytes | int | float | type(None)):
                return obj
            key = id(obj)
            if key in done:
                return done[key]
            if isinstance(obj, TensorRef):
                array, storage = self.view(obj, trail or "the object", bfloat16=bfloat16)
                out = TensorData(array, obj.storage.location, obj.requires_grad, obj.parameter,
                                 storage if storage.size else None)
                if tensor is not None:
                    out = tensor(out)
            elif isinstance(obj, dict):
                out = type(obj)()
                done[key] = out  # before the children, so a container holding itself stays finite
                for k, v in obj.items():
                    out[k] = walk(v, f"{trail}[{k!r}]", depth + 1)
            elif isinstance(obj, list):
                out = []
                done[key] = out
                out.extend(walk(v, f"{trail}[{i}]", depth + 1) for i, v in enumerate(obj))
            elif isinstance(obj, tuple):
                out = tuple(walk(v, f"{trail}[{i}]", depth + 1) for i, v in enumerate(obj))
            elif isinstance(obj, AttributeRecord):
                out = AttributeRecord(obj.qualname)
                done[key] = out
                for k, v in obj.attributes.items():
                    out.attributes[k] = walk(v, f"{trail}.{k}", depth + 1)
            elif isinstance(obj, set | frozenset):
                out = obj  # the machine admits only scalar members
            elif isinstance(obj, Global) and obj.kind == "dtype":
                out = np.dtype("float32") if obj.dtype is BFLOAT16 else obj.dtype.storage.newbyteorder("=")
            elif isinstance(obj, StorageRef):
                raise CheckpointError(f"{self.path}: {trail or 'the object'} is a bare torch storage, not a tensor; "
                                      "hubkit loads tensors only (torch.save the tensor instead)")
            else:
                what = obj.qualname if isinstance(obj, Global) else type(obj).__name__
                raise CheckpointError(f"{self.path}: {trail or 'the object'} is {what} used as a value, which "
                                      "hubkit cannot return; save tensors, numbers, strings and containers")
            done[key] = out
            return out

        return walk(self.obj, "", 0)
