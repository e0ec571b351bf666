"""PyTorch's pre-1.6 checkpoint formats: the magic-number stream and the older tar archive.

Stream (torch < 1.6, or ``_use_new_zipfile_serialization=False``): five pickles back to back — the
magic number, the protocol version 1001, ``sys_info``, the object (storages as 6-tuple persistent ids
``('storage', class, key, location, numel, view_metadata)``), the list of storage keys — then, per key
in that order, an int64 element count and the raw storage bytes.

Tar (torch < 0.4): members ``storages`` (count; per storage a pickled ``(key, location, class)``, an
int64 count and the bytes; then a pickled list of views), ``tensors`` (count; per tensor a pickled
``(key, storage_key, class)``, int32 ndim, 4 padding bytes, sizes, strides, offset as int64) and
``pickle`` (the object, whose persistent ids are tensor keys).
"""

from __future__ import annotations

import struct
import tarfile
from typing import Any

import numpy as np

from hubkit.errors import CheckpointError, UnsafeCheckpointError
from hubkit.hub.checkpoint._filebuf import FileBuffer
from hubkit.hub.checkpoint._torch_archive import TorchArchive
from hubkit.hub.checkpoint._torch_pickle import Global, StorageRef, TensorRef, refuse_global, unpickle
from hubkit.hub.checkpoint._torch_zip import check_location, check_storage_class

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


def _no_persistent_ids(where: str):
    def load(pid: Any) -> Any:
        raise CheckpointError(f"{where}: unexpected persistent id in a header pickle")

    return load


def _refuse_module(where: str, pid: tuple) -> UnsafeCheckpointError:
    cls = pid[1] if len(pid) > 1 else None
    name = cls.qualname if isinstance(cls, Global) else "a pickled module class"
    return refuse_global(where, name, " as a pickled nn.Module (persistent id 'module')")


def is_legacy_stream(head: bytes) -> bool:
    """True when ``head`` starts with a pickle of torch's magic number (any protocol >= 2)."""
    magic = b"\x8a\x0a" + MAGIC_NUMBER.to_bytes(10, "little")
    return head[:1] == b"\x80" and magic in head[:32]


def read_legacy_stream(buf: FileBuffer) -> TorchArchive:
    data = buf.data
    header = f"{buf.path}: legacy header"
    no_ids = _no_persistent_ids(header)
    magic, pos = unpickle(data, 0, persistent_load=no_ids, where=header)
    if magic != MAGIC_NUMBER:
        raise CheckpointError(f"{buf.path}: the magic number is {magic!r}, not torch's; the file is corrupted")
    version, pos = unpickle(data, pos, persistent_load=no_ids, where=header)
    if version != PROTOCOL_VERSION:
        raise CheckpointError(f"{buf.path}: legacy protocol version {version!r}, expected {PROTOCOL_VERSION}")
    sys_info, pos = unpickle(data, pos, persistent_load=no_ids, where=header)
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    where = f"{buf.path}: legacy pickle"
    roots: dict[str, StorageRef] = {}
    views: dict[str, StorageRef] = {}

    def persistent_load(pid: Any) -> StorageRef:
        if isinstance(pid, tuple) and pid and pid[0] == "module":
            raise _refuse_module(where, pid)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            shape = f"a {len(pid)}-tuple" if isinstance(pid, tuple) else f"of type {type(pid).__name__}"
            raise CheckpointError(f"{where}: a persistent id is {shape}, not the 6-tuple ('storage', class, key, "
                                  "location, numel, view) torch writes in legacy files")
        _, storage_type, key, location, numel, view = pid
        dtype = check_storage_class(storage_type, where).dtype
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise CheckpointError(f"{where}: malformed storage id (key {key!r}, numel {numel!r})")
        check_location(location, where)
        root = roots.setdefault(key, StorageRef(key, dtype, numel, location=location))
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3 and isinstance(view[0], str)
                and all(type(v) is int and v >= 0 for v in view[1:])):
            raise CheckpointError(f"{where}: malformed storage view metadata for storage {key!r}")
        view_key, offset, size = view
        return views.setdefault(view_key, StorageRef(view_key, dtype, size, base=root, offset=offset,
                                                       location=root.location))

    obj, pos = unpickle(data, pos, persistent_load=persistent_load, where=where)
    keys, pos = unpickle(data, pos, persistent_load=no_ids, where=header)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise CheckpointError(f"{buf.path}: the legacy storage key list is malformed")
    order = "<" if little else ">"
    blocks: dict[str, tuple[int, int]] = {}
    for key in keys:
        ref = roots.get(key)
        if ref is None:
            raise CheckpointError(f"{buf.path}: storage {key!r} is listed but never used by the pickle")
        (count,) = struct.unpack(order + "q", buf.read(pos, 8, f"the size of storage {key!r}"))
        if count != ref.numel:
            raise CheckpointError(f"{buf.path}: storage {key!r} has {count} elements on disk, the pickle says "
                                  f"{ref.numel}; the file is corrupted")
        buf.check_range(pos + 8, ref.nbytes, f"storage {key!r}")
        blocks[key] = (pos + 8, ref.nbytes)
        pos += 8 + ref.nbytes

    def fetch_root(ref: StorageRef) -> np.ndarray:
        if ref.key not in blocks:
            raise CheckpointError(f"{buf.path}: storage {ref.key!r} is used but has no data in the file")
        offset, nbytes = blocks[ref.key]
        return buf.array(offset, nbytes, f"storage {ref.key!r}")

    return TorchArchive(obj, fetch_root, path=buf.path, big_endian=not little)


def is_tar(head: bytes) -> bool:
    return head[257:262] == b"ustar"


def read_legacy_tar(buf: FileBuffer) -> TorchArchive:
    try:
        with tarfile.open(fileobj=buf.file, mode="r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
    except (tarfile.TarError, EOFError, OSError, ValueError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{buf.path}: the legacy tar container is damaged ({e})") from e
    spans = {}
    for name in ("storages", "tensors", "pickle"):
        member = members.get(name)
        if member is None or not member.isfile():
            raise CheckpointError(f"{buf.path}: a legacy torch tar needs a '{name}' file member; found "
                                  f"{sorted(members)[:8]}")
        buf.check_range(member.offset_data, member.size, f"tar member {name!r}")
        spans[name] = (member.offset_data, member.offset_data + member.size)

    reader = _TarMember(buf, "storages", *spans["storages"])
    storages: dict[Any, StorageRef] = {}
    blocks: dict[str, tuple[int, int]] = {}
    for _ in range(reader.count()):
        entry = reader.pickle()
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise reader.fail("a storage header is not (key, location, class)")
        key, location, storage_type = entry
        dtype = check_storage_class(storage_type, reader.where).dtype
        check_location(location, reader.where)
        numel = reader.int64()
        if not isinstance(key, int | str) or key in storages or numel < 0:
            raise reader.fail(f"malformed or repeated storage {key!r}")
        ref = StorageRef(str(key), dtype, numel, location=location)
        blocks[ref.key] = (reader.pos, ref.nbytes)
        reader.skip(ref.nbytes)
        storages[key] = ref
    view_list = reader.pickle()
    if not isinstance(view_list, list):
        raise reader.fail("the storage view list is not a list")
    for view in view_list:
        if not (isinstance(view, tuple) and len(view) == 4 and isinstance(view[0], int | str)
                and isinstance(view[1], int | str) and view[1] in storages
                and all(type(v) is int and v >= 0 for v in view[2:])):
            raise reader.fail("a storage view is not (key, root key, offset, numel)")
        target, root_key, offset, numel = view
        root = storages[root_key]
        storages[target] = StorageRef(str(target), root.dtype, numel, base=root, offset=offset,
                                      location=root.location)

    reader = _TarMember(buf, "tensors", *spans["tensors"])
    tensors: dict[int, TensorRef] = {}
    for _ in range(reader.count()):
        entry = reader.pickle()
        if not (isinstance(entry, tuple) and len(entry) == 3 and type(entry[0]) is int):
            raise reader.fail("a tensor header is not (key, storage key, class)")
        key, storage_key, _tensor_class = entry
        storage = storages.get(storage_key)
        if storage is None:
            raise reader.fail(f"tensor {key} uses unknown storage {storage_key!r}")
        (ndim,) = struct.unpack("<i", reader.take(4))
        if not 0 <= ndim <= 32:
            raise reader.fail(f"tensor {key} has {ndim} dimensions")
        reader.skip(4)
        shape = struct.unpack(f"<{ndim}q", reader.take(8 * ndim))
        stride = struct.unpack(f"<{ndim}q", reader.take(8 * ndim))
        offset = reader.int64()
        if min((*shape, *stride, 0)) < 0:
            raise reader.fail(f"tensor {key} has a negative size or stride")
        tensors[key] = TensorRef(storage, offset, shape, stride, storage.dtype)

    where = f"{buf.path}: tar member 'pickle'"

    def persistent_load(pid: Any) -> TensorRef:
        if isinstance(pid, tuple):
            raise _refuse_module(where, (None, *pid))
        if isinstance(pid, str) and pid.isdigit() and int(pid) in tensors:
            return tensors[int(pid)]
        raise CheckpointError(f"{where}: persistent id {str(pid)[:40]!r} names no tensor in the file")

    start, end = spans["pickle"]
    obj, _ = unpickle(buf.read(start, end - start, "tar member 'pickle'"), 0,
                      persistent_load=persistent_load, where=where)

    def fetch_root(ref: StorageRef) -> np.ndarray:
        offset, nbytes = blocks[ref.key]
        return buf.array(offset, nbytes, f"storage {ref.key!r}")

    return TorchArchive(obj, fetch_root, path=buf.path)


class _TarMember:
    """Sequential reads inside one tar member's data, never past its end."""

    def __init__(self, buf: FileBuffer, name: str, start: int, end: int) -> None:
        self.buf, self.pos, self.end = buf, start, end
        self.where = f"{buf.path}: tar member {name!r}"

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {what}; the file is corrupted")

    def skip(self, n: int) -> None:
        if self.pos + n > self.end:
            raise self.fail(f"needs {n} more bytes than the member holds")
        self.pos += n

    def take(self, n: int) -> bytes:
        start = self.pos
        self.skip(n)
        return self.buf.read(start, n, self.where)

    def int64(self) -> int:
        return struct.unpack("<q", self.take(8))[0]

    def pickle(self) -> Any:
        value, self.pos = unpickle(self.buf.data, self.pos, end=self.end,
                                   persistent_load=_no_persistent_ids(self.where), where=self.where)
        return value

    def count(self) -> int:
        n = self.pickle()
        if type(n) is not int or not 0 <= n <= self.end - self.pos:
            raise self.fail(f"the entry count is {n!r}")
        return n
