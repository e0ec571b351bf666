"""PyTorch's zip checkpoint format (``torch.save`` since 1.6): reader and writer.

Layout (pytorch docs, "Serialized file format for torch.save")::

    <name>/data.pkl          pickle of the object, each storage replaced by a persistent id
    <name>/byteorder         "little" or "big" (absent before torch 2.1: little)
    <name>/data/<key>        one uncompressed record per storage, 64-byte aligned
    <name>/version           "3\\n"

The persistent id of a storage is ``('storage', <storage class>, key, location, numel)``. The writer
emits what ``torch.save`` emits for dicts, OrderedDicts, lists, tuples, scalars and dense tensors
(Parameters as ``_rebuild_parameter``), so ``torch.load(path, weights_only=True)`` reads it back with
the same structure.
"""

from __future__ import annotations

import re
import struct
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint import _zip
from hubkit.hub.checkpoint._filebuf import FileBuffer
from hubkit.hub.checkpoint._torch_archive import TensorData, TorchArchive
from hubkit.hub.checkpoint._torch_pickle import (
    BOOL,
    COMPLEX64,
    COMPLEX128,
    FLOAT16,
    FLOAT32,
    FLOAT64,
    INT8,
    INT16,
    INT32,
    INT64,
    UINT8,
    UINT16,
    UINT32,
    UINT64,
    Global,
    StorageRef,
    TorchDType,
    unpickle,
)

_PICKLE_LIMIT = 1 << 31  # data.pkl larger than 2 GiB is not a real state dict
_LOCATION = re.compile(r"(cpu|cuda|mps|xpu|hpu|meta|privateuseone)(:\d+)?")


def check_location(location: Any, where: str) -> None:
    if not (isinstance(location, str) and _LOCATION.fullmatch(location)):
        raise CheckpointError(f"{where}: a storage location is {location!r}, expected 'cpu' or 'cuda:N'")


def check_storage_class(storage_type: Any, where: str) -> Global:
    if not (isinstance(storage_type, Global) and storage_type.kind == "storage"):
        name = storage_type.qualname if isinstance(storage_type, Global) else type(storage_type).__name__
        raise CheckpointError(f"{where}: a persistent id names {name}, not a torch storage class")
    return storage_type


def read_torch_zip(buf: FileBuffer, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]) -> TorchArchive:
    """Parse a torch zip checkpoint; storages are fetched (mapped or copied) on first use."""
    names = list(entries)
    prefix = names[0].split("/", 1)[0] if names and "/" in names[0] else None
    if prefix is None:
        raise CheckpointError(f"{buf.path}: a torch zip checkpoint keeps every record under one folder, but "
                              f"the first entry is {names[0] if names else 'missing'!r}")
    stray = [n for n in names if not n.startswith(prefix + "/")]
    if stray:
        raise CheckpointError(f"{buf.path}: entries outside the archive folder {prefix!r}: {stray[:5]}")
    pkl = entries.get(f"{prefix}/data.pkl")
    if pkl is None:
        raise CheckpointError(f"{buf.path}: the zip has no {prefix}/data.pkl, so it is not a torch.save "
                              "checkpoint")
    big_endian = False
    order = entries.get(f"{prefix}/byteorder")
    if order is not None:
        value = _zip.member_bytes(buf, zf, order, limit=16)
        if value not in (b"little", b"big"):
            raise CheckpointError(f"{buf.path}: {prefix}/byteorder is {value!r}, expected 'little' or 'big'")
        big_endian = value == b"big"
    where = f"{buf.path}: {prefix}/data.pkl"
    refs: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"{where}: persistent id {_describe_pid(pid)} is not a storage id "
                                  "('storage', class, key, location, numel)")
        _, storage_type, key, location, numel = pid
        storage_type = check_storage_class(storage_type, where)
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise CheckpointError(f"{where}: malformed storage id (key {key!r}, numel {numel!r})")
        check_location(location, where)
        if key not in refs:  # torch loads a key once and shares it, whatever later ids say
            refs[key] = StorageRef(key, storage_type.dtype, numel, untyped=storage_type.untyped, location=location)
        return refs[key]

    data = _zip.member_data(buf, zf, pkl, limit=_PICKLE_LIMIT)
    try:
        obj, _ = unpickle(data, 0, persistent_load=persistent_load, where=where)
    finally:
        if isinstance(data, _zip.Inflating):
            data.close()

    def fetch_root(ref: StorageRef) -> np.ndarray:
        info = entries.get(f"{prefix}/data/{ref.key}")
        if info is None:
            raise CheckpointError(f"{buf.path}: storage {ref.key!r} is used by the pickle but the record "
                                  f"{prefix}/data/{ref.key} is missing; the file is truncated or corrupted")
        return _zip.member_array(buf, zf, info, ref.nbytes)

    return TorchArchive(obj, fetch_root, path=buf.path, big_endian=big_endian)


def _describe_pid(pid: Any) -> str:
    if isinstance(pid, tuple) and pid and isinstance(pid[0], str):
        return f"({pid[0][:40]!r}, ...)"
    return f"of type {type(pid).__name__}"


# ---------------------------------------------------------------- writer

_STORAGE_NAMES = {FLOAT64: "DoubleStorage", FLOAT32: "FloatStorage", FLOAT16: "HalfStorage",
                  INT64: "LongStorage", INT32: "IntStorage", INT16: "ShortStorage", INT8: "CharStorage",
                  UINT8: "ByteStorage", BOOL: "BoolStorage", COMPLEX64: "ComplexFloatStorage",
                  COMPLEX128: "ComplexDoubleStorage"}
_NEW_DTYPES = (UINT16, UINT32, UINT64)  # torch saves these as UntypedStorage + _rebuild_tensor_v3
_BY_NUMPY = {d.storage: d for d in (*_STORAGE_NAMES, *_NEW_DTYPES)}


def torch_dtype(array: np.ndarray, name: str) -> TorchDType:
    dtype = _BY_NUMPY.get(array.dtype.newbyteorder("<"))
    if dtype is None:
        supported = ", ".join(sorted(str(d) for d in _BY_NUMPY))
        raise CheckpointError(f"cannot save {name!r}: dtype {array.dtype} has no torch equivalent; "
                              f"convert it to one of {supported}")
    return dtype


@dataclass
class _PlannedTensor:
    name: str
    storage: int
    dtype: TorchDType
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return tuple(reversed(strides))


def _root(array: np.ndarray) -> np.ndarray:
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _root_bytes(root: np.ndarray) -> np.ndarray | None:
    if root.flags.c_contiguous:
        return root.reshape(-1).view(np.uint8)
    if root.flags.f_contiguous:
        return root.T.reshape(-1).view(np.uint8)
    return None


def plan_storages(arrays: Mapping[str, np.ndarray]) -> tuple[list[np.ndarray], list[_PlannedTensor]]:
    """Decide which storages to write: ``(storage bytes list, tensors)``.

    Arrays that overlap in memory (tied weights, views of one buffer) share one storage holding the
    smallest byte range that covers them, as torch does; every other array gets its own contiguous
    storage of exactly its own bytes.
    """
    storages: list[np.ndarray] = []
    planned: list[_PlannedTensor] = []
    shareable: dict[tuple[int, np.dtype], list[tuple[int, int, str, np.ndarray]]] = {}
    roots: dict[int, np.ndarray] = {}
    for name, array in arrays.items():
        dtype = torch_dtype(array, name)
        if array.dtype != dtype.storage:
            array = array.astype(dtype.storage)
        root = _root(array)
        if array.size and _root_bytes(root) is not None and all(s >= 0 and s % dtype.itemsize == 0
                                                                 for s in array.strides):
            start = array.__array_interface__["data"][0] - root.__array_interface__["data"][0]
            end = start + (sum((n - 1) * s for n, s in zip(array.shape, array.strides)) + dtype.itemsize)
            roots[id(root)] = root
            shareable.setdefault((id(root), array.dtype), []).append((start, end, name, array))
            continue
        storages.append(_own_bytes(array))
        planned.append(_PlannedTensor(name, len(storages) - 1, dtype, 0, array.shape,
                                      _contiguous_strides(array.shape)))
    for (root_id, _), members in shareable.items():
        members.sort(key=lambda m: m[0])
        cluster, cluster_end = [members[0]], members[0][1]
        for member in members[1:]:
            if member[0] < cluster_end:
                cluster.append(member)
                cluster_end = max(cluster_end, member[1])
            else:
                _emit_cluster(cluster, roots[root_id], storages, planned)
                cluster, cluster_end = [member], member[1]
        _emit_cluster(cluster, roots[root_id], storages, planned)
    order = {name: i for i, name in enumerate(arrays)}
    planned.sort(key=lambda t: order[t.name])
    return storages, planned


def _own_bytes(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8)


def _emit_cluster(cluster: list, root: np.ndarray, storages: list, planned: list) -> None:
    """One storage for overlapping arrays (a byte range of their common buffer), else one each."""
    lo = cluster[0][0]
    itemsize = cluster[0][3].itemsize
    if len(cluster) == 1 or any((start - lo) % itemsize for start, *_ in cluster):
        for _, _, name, array in cluster:
            storages.append(_own_bytes(array))
            planned.append(_PlannedTensor(name, len(storages) - 1, torch_dtype(array, name), 0, array.shape,
                                          _contiguous_strides(array.shape)))
        return
    hi = max(end for _, end, _, _ in cluster)
    storages.append(_root_bytes(root)[lo:hi])
    for start, _, name, array in cluster:
        planned.append(_PlannedTensor(name, len(storages) - 1, torch_dtype(array, name), (start - lo) // itemsize,
                                      array.shape, tuple(s // itemsize for s in array.strides)))


class _PickleWriter:
    """Emits the protocol-2 opcodes ``torch.save`` writes for dicts, lists, tuples, scalars and tensors.

    Every dict, list, tuple and tensor is memoized by identity, as pickle does, so an object reached
    twice (the same tensor under two keys) is one object again after ``torch.load``.
    """

    def __init__(self, planned: dict[int, tuple[_PlannedTensor, int, str]]) -> None:
        self.out = bytearray(b"\x80\x02")
        self.memo: dict[Any, int] = {}
        self.planned = planned  # id(TensorData) -> (its plan, its storage's numel, its storage's location)

    def _memoized(self, key: Any) -> bool:
        index = self.memo.get(key)
        if index is not None:
            self.out += b"h" + bytes([index]) if index < 256 else b"j" + struct.pack("<I", index)
            return True
        return False

    def _put(self, key: Any) -> None:
        index = len(self.memo)
        self.memo[key] = index
        self.out += b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)

    def global_(self, module: str, name: str) -> None:
        if not self._memoized((module, name)):
            self.out += f"c{module}\n{name}\n".encode("ascii")
            self._put((module, name))

    def str_(self, text: str, *, memo: bool = False) -> None:
        if memo and self._memoized(text):
            return
        raw = text.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(raw)) + raw
        if memo:
            self._put(text)

    def int_(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)
        elif -(2**31) <= value < 2**31:
            self.out += b"J" + struct.pack("<i", value)
        else:
            raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
            head = b"\x8a" + bytes([len(raw)]) if len(raw) < 256 else b"\x8b" + struct.pack("<I", len(raw))
            self.out += head + raw

    def int_tuple(self, values: tuple[int, ...]) -> None:
        if len(values) > 3:
            self.out += b"("
        for v in values:
            self.int_(v)
        self.out += {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(values), b"t")

    def ordered_dict(self) -> None:
        self.global_("collections", "OrderedDict")
        self.out += b")R"

    def value(self, obj: Any) -> None:
        """Any object :func:`check_object` accepted."""
        if obj is None:
            self.out += b"N"
        elif obj is True or obj is False:
            self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self.int_(obj)
        elif isinstance(obj, float):
            self.out += b"G" + struct.pack(">d", obj)
        elif isinstance(obj, str):
            self.str_(obj)
        elif isinstance(obj, np.dtype):
            self.global_("torch", _BY_NUMPY[obj.newbyteorder("<")].name)
        elif self._memoized(("id", id(obj))):
            return
        elif isinstance(obj, TensorData):
            self.tensor(*self.planned[id(obj)], requires_grad=obj.requires_grad, parameter=obj.parameter)
            self._put(("id", id(obj)))
        elif isinstance(obj, dict):
            if type(obj) is dict:
                self.out += b"}"
            else:
                self.ordered_dict()
            self._put(("id", id(obj)))
            self._batched(list(obj.items()), b"u")
        elif isinstance(obj, list):
            self.out += b"]"
            self._put(("id", id(obj)))
            self._batched(obj, b"e")
        else:  # tuple
            if len(obj) > 3:
                self.out += b"("
            for item in obj:
                self.value(item)
            self.out += {0: b")", 1: b"\x85", 2: b"\x86", 3: b"\x87"}.get(len(obj), b"t")
            self._put(("id", id(obj)))

    def _batched(self, items: list, opcode: bytes) -> None:
        """SETITEMS / APPENDS in batches of 1000, as pickle does; the container is on the stack."""
        for start in range(0, len(items), 1000):
            self.out += b"("
            for item in items[start : start + 1000]:
                if opcode == b"u":
                    self.value(item[0])
                    self.value(item[1])
                else:
                    self.value(item)
            self.out += opcode

    def tensor(self, t: _PlannedTensor, numel: int, location: str, *, requires_grad: bool,
               parameter: bool) -> None:
        if parameter:  # nn.Parameter pickles as _rebuild_parameter(data, requires_grad, hooks)
            self.global_("torch._utils", "_rebuild_parameter")
            self.out += b"("
        v3 = t.dtype in _NEW_DTYPES
        self.global_("torch._utils", "_rebuild_tensor_v3" if v3 else "_rebuild_tensor_v2")
        self.out += b"(("
        self.str_("storage", memo=True)
        if v3:
            self.global_("torch.storage", "UntypedStorage")
        else:
            self.global_("torch", _STORAGE_NAMES[t.dtype])
        self.str_(str(t.storage))
        self.str_(location, memo=True)
        self.int_(numel)
        self.out += b"tQ"
        self.int_(t.offset)
        self.int_tuple(t.shape)
        self.int_tuple(t.stride)
        self.out += b"\x88" if requires_grad and not parameter else b"\x89"
        self.ordered_dict()  # backward_hooks
        if v3:
            self.global_("torch", t.dtype.name)
        self.out += b"tR"
        if parameter:
            self.out += b"\x88" if requires_grad else b"\x89"
            self.ordered_dict()
            self.out += b"tR"


_SCALARS = (str, int, float, type(None))  # bool is an int


def check_object(obj: Any) -> list[tuple[str, TensorData]]:
    """Check that ``obj`` holds only what ``torch.load(weights_only=True)`` reads back; its tensors.

    Accepted: dict (and OrderedDict), list, tuple, str, int, float, bool, None, numpy dtypes and
    :class:`TensorData`; dict keys are scalars or tuples of scalars. Returns each distinct tensor once,
    with where it sits (``"['state'][0]['exp_avg']"``), in the order :class:`_PickleWriter` meets them.
    """
    tensors: dict[int, tuple[str, TensorData]] = {}
    seen: set[int] = set()
    open_tuples: set[int] = set()

    def walk(value: Any, trail: str) -> None:
        where = trail or "the object"
        if isinstance(value, _SCALARS):
            return
        if isinstance(value, np.dtype | TensorData):
            dtype = value if isinstance(value, np.dtype) else value.array.dtype
            if dtype.newbyteorder("<") not in _BY_NUMPY:
                supported = ", ".join(sorted(str(d) for d in _BY_NUMPY))
                raise CheckpointError(f"cannot save {where}: dtype {dtype} has no torch equivalent; convert it "
                                      f"to one of {supported}")
            if isinstance(value, TensorData) and id(value) not in tensors:
                check_location(value.location, f"cannot save {where}")
                tensors[id(value)] = (where, value)
            return
        if isinstance(value, tuple):
            if id(value) in open_tuples:
                raise CheckpointError(f"cannot save {where}: a tuple that contains itself")
            open_tuples.add(id(value))
            for i, item in enumerate(value):
                walk(item, f"{trail}[{i}]")
            open_tuples.discard(id(value))
            return
        if not isinstance(value, dict | list):
            raise CheckpointError(
                f"cannot save {where}: a {type(value).__module__}.{type(value).__qualname__} is not something "
                "torch.load(weights_only=True) reads back. Save tensors, arrays, numbers, strings, None and "
                "dicts/lists/tuples of them; for an object with .state_dict() (a module, an optimizer, a "
                "scheduler) save obj.state_dict()")
        if id(value) in seen:
            return
        seen.add(id(value))
        if isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{trail}[{i}]")
            return
        for key, item in value.items():
            if not (isinstance(key, _SCALARS) or isinstance(key, tuple) and all(isinstance(k, _SCALARS) for k in key)):
                raise CheckpointError(f"cannot save {where}: the dict key {key!r} is a {type(key).__name__}; keys "
                                      "must be strings, numbers, None or tuples of them")
            walk(item, f"{trail}[{key!r}]")

    walk(obj, "")
    return list(tensors.values())


def _chunks(data: np.ndarray, size: int = 1 << 26) -> Iterator[memoryview]:
    view = memoryview(data)
    for start in range(0, len(view), size):
        yield view[start : start + size]


def archive_name(stem: str) -> str:
    """The folder inside the zip: the file's stem as torch uses it, made safe for any reader."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).strip(".")
    return cleaned or "archive"


def write_torch_zip(obj: Any, fileobj: BinaryIO, *, name: str) -> None:
    """Write ``obj`` (see :func:`check_object`) as a torch zip checkpoint to a seekable binary file object.

    Tensors that overlap in memory share one storage (see :func:`plan_storages`), each storage
    keeps the location of its tensors, and the archive folder is ``name``.
    """
    tensors = check_object(obj)
    leaf_by_name = {where: leaf for where, leaf in tensors}
    storages, planned = plan_storages({where: leaf.array for where, leaf in tensors})
    locations: dict[int, str] = {}
    by_leaf: dict[int, tuple[_PlannedTensor, int, str]] = {}
    for t in planned:
        leaf = leaf_by_name[t.name]
        location = locations.setdefault(t.storage, leaf.location)
        numel = len(storages[t.storage]) // (1 if t.dtype in _NEW_DTYPES else t.dtype.itemsize)
        by_leaf[id(leaf)] = (t, numel, location)
    writer = _PickleWriter(by_leaf)
    writer.value(obj)
    writer.out += b"."
    pickled = bytes(writer.out)
    with zipfile.ZipFile(fileobj, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        small = [("data.pkl", pickled), (".format_version", b"1"), (".storage_alignment", b"64"),
                 ("byteorder", b"little")]
        for record, data in small:
            _zip.write_aligned(zf, fileobj, f"{name}/{record}", len(data), [data])
        for key, data in enumerate(storages):
            _zip.write_aligned(zf, fileobj, f"{name}/data/{key}", data.nbytes, _chunks(data))
        _zip.write_aligned(zf, fileobj, f"{name}/version", 2, [b"3\n"])
