"""Random access to a checkpoint file: small reads for headers, array views for tensor data.

With ``mmap=True`` the file is mapped copy-on-write and :meth:`FileBuffer.array` returns views into
the mapping: no tensor byte is read until it is used, and writing to an array never changes the file
(PyTorch's ``torch.load(mmap=True)`` behaves the same). With ``mmap=False`` each call copies its
range into a fresh, independent array. :meth:`FileBuffer.from_bytes` wraps a file object's contents,
already read into memory, and copies like ``mmap=False``.
"""

from __future__ import annotations

import io
import mmap as _mmap
import os

import numpy as np

from hubkit.errors import CheckpointError, CheckpointNotFoundError


class FileBuffer:
    """A read-only window on one file; every read is bounds-checked against the file size."""

    def __init__(self, path: str | os.PathLike, *, mmap: bool) -> None:
        self.path = os.fspath(path)
        try:
            self.file = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError as e:
            raise CheckpointNotFoundError(f"{self.path}: no such file; check the path") from e
        except OSError as e:
            raise CheckpointError(f"{self.path}: cannot open the checkpoint ({e.strerror or e})") from e
        self.size = os.fstat(self.file.fileno()).st_size
        self._copy_on_write = mmap
        self._map: _mmap.mmap | None = None
        self._whole: np.ndarray | None = None
        self._bytes: bytes | None = None
        if self.size > 0:
            access = _mmap.ACCESS_COPY if mmap else _mmap.ACCESS_READ
            try:
                self._map = _mmap.mmap(self.file.fileno(), 0, access=access)
            except (OSError, ValueError) as e:
                raise CheckpointError(f"{self.path}: cannot map the file into memory ({e})") from e
            if mmap:
                self._whole = np.frombuffer(self._map, dtype=np.uint8)

    @classmethod
    def from_bytes(cls, data: bytes, name: str) -> FileBuffer:
        """A buffer over a file's contents already in memory (what a file object held); arrays are copies."""
        buf = cls.__new__(cls)
        buf.path = name
        buf.file = io.BytesIO(data)  # shares ``data``: BytesIO copies bytes only when written to
        buf.size = len(data)
        buf._copy_on_write = False
        buf._map = None
        buf._whole = None
        buf._bytes = data
        return buf

    @property
    def in_memory(self) -> bool:
        """True for :meth:`from_bytes` buffers, which have no path on disk."""
        return self._bytes is not None

    @property
    def data(self) -> _mmap.mmap | bytes:
        """The whole file as a sliceable, indexable bytes-like object (for the pickle machine)."""
        if self._map is not None:
            return self._map
        return self._bytes if self._bytes is not None else b""

    def check_range(self, offset: int, nbytes: int, what: str) -> None:
        if offset < 0 or nbytes < 0 or offset + nbytes > self.size:
            raise CheckpointError(
                f"{self.path}: {what} needs bytes {offset}..{offset + nbytes} but the file has "
                f"{self.size} bytes; the file is truncated or corrupted, download it again"
            )

    def read(self, offset: int, nbytes: int, what: str) -> bytes:
        """``nbytes`` bytes starting at ``offset`` as a new ``bytes`` object."""
        self.check_range(offset, nbytes, what)
        return self.data[offset : offset + nbytes]

    def array(self, offset: int, nbytes: int, what: str) -> np.ndarray:
        """``(nbytes,)`` uint8: a copy-on-write view of the file (mmap) or an independent copy."""
        self.check_range(offset, nbytes, what)
        if self._whole is not None:
            return self._whole[offset : offset + nbytes]
        if self._bytes is not None:
            return np.frombuffer(self._bytes, dtype=np.uint8, count=nbytes, offset=offset).copy()
        out = np.empty(nbytes, dtype=np.uint8)
        if nbytes:
            self.file.seek(offset)
            got = self.file.readinto(memoryview(out))
            if got != nbytes:
                raise CheckpointError(
                    f"{self.path}: {what}: read {got} of {nbytes} bytes; the file changed while reading"
                )
        return out

    def close(self) -> None:
        """Close the file. A copy-on-write map stays alive as long as arrays that view it do."""
        if self._map is not None and not self._copy_on_write:
            self._map.close()
        self._map = None
        self._whole = None
        self.file.close()

    def __enter__(self) -> FileBuffer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
