"""IDX files (LeCun's format, ``libidx/idx-io.lsh``), plain, ``.gz`` or ``.xz``, read within what the file justifies.

An IDX file is ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 dimensions, then the big-endian payload.
The header is read and judged before any payload is: the shape the caller expects, the exact size of a
plain file, and, for a compressed file, what its size can hold at all. So a header claiming a billion
images, or dimensions whose product overflows int64, is refused at once, a gzip bomb is never inflated,
and a stream longer than its header says is cut off at the first byte too many.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import lzma
import math
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub.transport.verify import Expect

from .._files import check_file

__all__ = ["content_problem", "read_idx"]

# IDX type codes; payloads are big-endian.
IDX_DTYPES = {8: np.dtype(np.uint8), 9: np.dtype(np.int8), 11: np.dtype(">i2"), 12: np.dtype(">i4"),
              13: np.dtype(">f4"), 14: np.dtype(">f8")}
# Deflate cannot expand one byte into more than 1032; an xz file is held to the same bound, which real IDX
# data stays far below (MNIST's images compress about 5:1). A header claiming more is refused unread.
MAX_RATIO = 1032
_CHUNK = 1 << 20
_GZIP, _XZ = b"\x1f\x8b", b"\xfd7zXZ\x00"
_FIX = "Replace it with the original file (download=True fetches a verified one)."


def _shape_text(shape: tuple[int | None, ...], dtype: np.dtype | None) -> str:
    dims = ", ".join("N" if d is None else str(d) for d in shape)
    return f"{dtype.name if dtype is not None else 'an array'} of shape ({dims}{',' if len(shape) == 1 else ''})"


class IdxReader:
    """An open IDX file whose header was read and judged: ``dtype``, ``dims``, ``header`` (its bytes) and
    ``payload`` (bytes of data it claims); :meth:`chunks` yields the data, checking it is exactly that long.

    ``shape`` is what the caller expects, ``None`` for any size along an axis, e.g. ``(None, 28, 28)``;
    ``dtype`` the expected (big-endian) element type. Raises DatasetError naming the file and the sizes.
    """

    def __init__(self, path: str | os.PathLike[str], shape: tuple[int | None, ...] | None = None,
                 dtype: np.dtype | None = None) -> None:
        self.path = Path(path)
        size = self.path.stat().st_size
        with contextlib.ExitStack() as stack:  # closes the file only if the header is refused
            raw = stack.enter_context(open(self.path, "rb"))
            magic = raw.read(6)
            raw.seek(0)
            self.compressed = magic[:2] == _GZIP or magic == _XZ
            self._f: BinaryIO = raw
            if magic[:2] == _GZIP:
                self._f = stack.enter_context(gzip.GzipFile(fileobj=raw))
            elif magic == _XZ:
                self._f = stack.enter_context(lzma.LZMAFile(raw))
            self._read_header(size, shape, None if dtype is None else np.dtype(dtype))
            self._files = stack.pop_all()

    def _read_header(self, size: int, shape: tuple[int | None, ...] | None, dtype: np.dtype | None) -> None:
        head = self._read(4)
        if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in IDX_DTYPES or not 1 <= head[3] <= 4:
            raise DatasetError(
                f"{self.path} is not an IDX file: expected a header 00 00 <type 8..14> <ndim 1..4>, found "
                f"{head.hex(' ') or 'an empty file'}. {_FIX}"
            )
        self.dtype, nd = IDX_DTYPES[head[2]], head[3]
        dims_raw = self._read(4 * nd)
        if len(dims_raw) < 4 * nd:
            raise DatasetError(f"{self.path} is truncated inside its IDX header. {_FIX}")
        self.header = head + dims_raw
        self.dims = struct.unpack(f">{nd}I", dims_raw)
        self.payload = math.prod(self.dims) * self.dtype.itemsize  # Python ints: no int64 overflow
        claim = f"its IDX header claims {self.dtype.name} data of shape {self.dims} ({self.payload} bytes)"
        expected = f"; expected {_shape_text(shape, dtype)}" if shape is not None else ""
        if (shape is not None and (nd != len(shape) or any(e is not None and d != e for d, e in zip(self.dims, shape)))
                or dtype is not None and dtype != self.dtype):
            raise DatasetError(f"{self.path}: {claim}{expected or f'; expected {dtype.name} data'}. {_FIX}")
        if not self.compressed and len(self.header) + self.payload != size:
            raise DatasetError(f"{self.path}: {claim}, but the file holds {size - len(self.header)} bytes of data"
                               f"{expected}. It is truncated or corrupted. {_FIX}")
        if self.compressed and self.payload > MAX_RATIO * size:
            raise DatasetError(f"{self.path}: {claim}, more than a compressed file of {size} bytes can hold (at most "
                               f"{MAX_RATIO} times its size){expected}. The file is corrupted or hostile. {_FIX}")

    def _read(self, n: int) -> bytes:
        try:
            return self._f.read(n)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise DatasetError(f"{self.path} is not a valid compressed file ({exc}); it is truncated or corrupted. "
                               f"{_FIX}") from exc

    def chunks(self) -> Iterator[bytes]:
        """The payload in chunks of at most 1 MiB; DatasetError when it is shorter or longer than claimed."""
        left = self.payload
        while left:
            chunk = self._read(min(_CHUNK, left))
            if not chunk:
                raise DatasetError(f"{self.path}: the IDX data ends after {self.payload - left} of the "
                                   f"{self.payload} bytes its header claims; it is truncated or corrupted. {_FIX}")
            left -= len(chunk)
            yield chunk
        if self._read(1):
            raise DatasetError(f"{self.path} holds more than its header claims ({self.payload} bytes of data for "
                               f"shape {self.dims}); it is corrupted. {_FIX}")

    def __enter__(self) -> IdxReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._files.close()


def read_idx(path: str | os.PathLike[str], *, shape: tuple[int | None, ...] | None = None,
             dtype: np.dtype | None = None) -> np.ndarray:
    """Read an IDX file (plain, ``.gz`` or ``.xz``) into an array of native byte order.

    Shape is the file's own: ``(N, H, W)`` for images, ``(N,)`` for labels, ``(N, K)`` for QMNIST labels;
    ``shape``/``dtype`` (see :class:`IdxReader`) are checked against the header before anything else is
    read. Raises DatasetError when the header is not IDX, not what was expected, or not what the file holds.
    """
    with IdxReader(path, shape, dtype) as reader:
        buf = np.empty(reader.payload, np.uint8)
        pos = 0
        for chunk in reader.chunks():
            buf[pos:pos + len(chunk)] = np.frombuffer(chunk, np.uint8)
            pos += len(chunk)
    arr = buf.view(reader.dtype).reshape(reader.dims)
    return arr.astype(reader.dtype.newbyteorder("="), copy=False) if reader.dtype.itemsize > 1 else arr


def content_problem(path: Path, content: Expect | None, shape: tuple[int | None, ...],
                    dtype: np.dtype) -> str | None:
    """What is wrong with what ``path`` holds once decompressed, or None: checked against ``content`` (the
    decompressed file's sha256 and size) when it is known, else by its IDX structure alone.

    A plain file with known content goes through the hub's ``verify_file`` (its sidecar makes the next
    check free); a compressed one is inflated once, within the bounds its header passed.
    """
    try:
        with IdxReader(path, shape, dtype) as reader:
            if not reader.compressed:
                return check_file(path, content) if content is not None else None
            total = len(reader.header) + reader.payload
            if content is not None and total != content.size:
                return (f"{path} holds {total} bytes once decompressed (IDX shape {reader.dims}), expected "
                        f"{content.size}")
            digest = hashlib.sha256(reader.header)
            for chunk in reader.chunks():
                digest.update(chunk)
    except DatasetError as exc:
        return str(exc)
    if content is not None and digest.hexdigest() != content.sha256:
        return f"{path} holds other contents: sha256 {digest.hexdigest()} once decompressed, expected {content.sha256}"
    return None
