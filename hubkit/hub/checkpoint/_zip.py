"""Zip containers for checkpoints (torch zip files, npz): checked reads and 64-byte-aligned writes.

The central directory is parsed by :mod:`zipfile`; record data is reached through the local header,
so an uncompressed record comes back as a view of the (memory-mapped) file, never a copy. Records
compressed by other tools are inflated with their declared size as a hard cap.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint._filebuf import FileBuffer

ALIGNMENT = 64  # torch's kFieldAlignment: every record's data starts at a multiple of 64
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length
_ZIP_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
               struct.error, NotImplementedError, KeyError, IndexError, UnicodeDecodeError, OverflowError)


def open_zip(buf: FileBuffer) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """Parse the central directory; returns the archive and its entries by name (no duplicates)."""
    try:
        zf = zipfile.ZipFile(buf.file)
        infos = zf.infolist()
    except _ZIP_ERRORS as e:
        raise CheckpointError(f"{buf.path}: the zip container is damaged ({e}); the file is truncated "
                              "or corrupted, download it again") from e
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if info.filename in entries:
            raise CheckpointError(f"{buf.path}: the zip container holds {info.filename!r} twice; a valid "
                                  "checkpoint never does, the file was tampered with or corrupted")
        entries[info.filename] = info
    return zf, entries


def member_array(buf: FileBuffer, zf: zipfile.ZipFile, info: zipfile.ZipInfo, nbytes: int) -> np.ndarray:
    """The ``(nbytes,)`` uint8 contents of one member, which must hold exactly ``nbytes`` bytes."""
    what = f"zip member {info.filename!r}"
    if info.file_size != nbytes:
        raise CheckpointError(f"{buf.path}: {what} holds {info.file_size} bytes, expected {nbytes}; the file "
                              "is corrupted")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != nbytes:
            raise CheckpointError(f"{buf.path}: {what} is stored with {info.compress_size} bytes, expected "
                                  f"{nbytes}; the file is corrupted")
        return buf.array(data_offset(buf, info), nbytes, what)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise CheckpointError(f"{buf.path}: {what} uses zip compression method {info.compress_type}; only "
                              "stored and deflated members are read")
    try:
        with zf.open(info) as member:
            data = bytearray(member.read(nbytes + 1))
    except _ZIP_ERRORS as e:
        raise CheckpointError(f"{buf.path}: {what} cannot be inflated ({e}); the file is corrupted") from e
    if len(data) != nbytes:
        raise CheckpointError(f"{buf.path}: {what} inflates to {len(data)} bytes, expected {nbytes}")
    return np.frombuffer(data, dtype=np.uint8)


def member_bytes(buf: FileBuffer, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes:
    """A small member (metadata) as bytes; refuses members larger than ``limit``."""
    _check_limit(buf, info, limit)
    return member_array(buf, zf, info, info.file_size).tobytes()


def member_data(buf: FileBuffer, zf: zipfile.ZipFile, info: zipfile.ZipInfo, *, limit: int) -> bytes | Inflating:
    """A member read front to back (a pickle): its bytes when stored, else an :class:`Inflating` view that
    inflates only as far as it is read, so a damaged pickle fails after its first megabyte, not after
    inflating all it declares. Refuses members larger than ``limit``."""
    _check_limit(buf, info, limit)
    if info.compress_type != zipfile.ZIP_DEFLATED:
        return member_array(buf, zf, info, info.file_size).tobytes()
    try:
        return Inflating(zf.open(info), info.file_size, f"{buf.path}: zip member {info.filename!r}")
    except _ZIP_ERRORS as e:
        raise CheckpointError(f"{buf.path}: zip member {info.filename!r} cannot be inflated ({e}); the file is "
                              "corrupted") from e


def _check_limit(buf: FileBuffer, info: zipfile.ZipInfo, limit: int) -> None:
    if info.file_size > limit:
        raise CheckpointError(f"{buf.path}: zip member {info.filename!r} declares {info.file_size} bytes, "
                              f"more than the {limit} this member may hold; the file is corrupted")


class Inflating:
    """The bytes of a deflated member as a sequence (``len``, ``[i]``, ``[a:b]``), inflated on demand."""

    _STEP = 1 << 20

    def __init__(self, member: BinaryIO, size: int, what: str) -> None:
        self._member = member
        self._size = size
        self._what = what
        self._done = bytearray()

    def __len__(self) -> int:
        return self._size

    def _need(self, end: int) -> None:
        end = min(end, self._size)
        while len(self._done) < end:
            try:
                chunk = self._member.read(max(self._STEP, end - len(self._done)))
            except _ZIP_ERRORS as e:
                raise CheckpointError(f"{self._what} cannot be inflated ({e}); the file is corrupted") from e
            if not chunk:
                raise CheckpointError(f"{self._what} inflates to {len(self._done)} bytes, it declares {self._size}; "
                                      "the file is corrupted")
            self._done += chunk

    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, slice):
            self._need(index.stop if index.stop is not None else self._size)
            return bytes(self._done[index])
        self._need(index + 1)
        return self._done[index]

    def close(self) -> None:
        self._member.close()


def data_offset(buf: FileBuffer, info: zipfile.ZipInfo) -> int:
    """Where a member's data starts: after its local header, whose lengths may differ from the directory's."""
    header = buf.read(info.header_offset, _LOCAL_HEADER.size, f"the local header of {info.filename!r}")
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(header)
    if signature != b"PK\x03\x04":
        raise CheckpointError(f"{buf.path}: zip member {info.filename!r} has no local header at byte "
                              f"{info.header_offset}; the file is corrupted")
    return info.header_offset + _LOCAL_HEADER.size + name_len + extra_len


def write_aligned(zf: zipfile.ZipFile, fileobj: BinaryIO, name: str, nbytes: int,
                  chunks: Iterable[bytes | memoryview]) -> None:
    """Append one stored member whose data starts at a multiple of :data:`ALIGNMENT`.

    The padding goes into the local header's extra field as torch's writer does it: id ``FB``, a
    little-endian length, then ``Z`` bytes.
    """
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = nbytes
    # zipfile adds a 20-byte zip64 extra field to the local header under this same condition
    zip64 = nbytes * 1.05 > zipfile.ZIP64_LIMIT
    start = fileobj.tell()
    header = _LOCAL_HEADER.size + len(name.encode("utf-8")) + 4 + (20 if zip64 else 0)
    pad = -(start + header) % ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
    with zf.open(info, mode="w", force_zip64=zip64) as out:
        for chunk in chunks:
            out.write(chunk)
