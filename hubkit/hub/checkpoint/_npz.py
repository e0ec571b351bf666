"""npz files (``numpy.savez``): every member a ``.npy`` array; read as views of stored members, never
unpickled; written uncompressed and 64-byte aligned so that reading them back maps without copies."""

from __future__ import annotations

import io
import math
import zipfile
from typing import Any

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint import _zip
from hubkit.hub.checkpoint._filebuf import FileBuffer


def read_npz(buf: FileBuffer, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for member, info in entries.items():
        what = f"npz member {member!r}"
        stored = info.compress_type == zipfile.ZIP_STORED
        if stored:
            offset = _zip.data_offset(buf, info)
            head = buf.read(offset, min(info.file_size, 1 << 16), what)
        else:
            whole = _zip.member_array(buf, zf, info, info.file_size)
            head = whole[: 1 << 16].tobytes()
        shape, fortran, dtype, header_len = _npy_header(head, f"{buf.path}: {what}")
        nbytes = math.prod(shape) * dtype.itemsize
        if header_len + nbytes != info.file_size:
            raise CheckpointError(f"{buf.path}: {what} has {info.file_size - header_len} data bytes, its header "
                                  f"says {nbytes}; the file is truncated or corrupted")
        raw = buf.array(offset + header_len, nbytes, what) if stored else whole[header_len:]
        order = "F" if fortran else "C"
        array = np.ndarray(shape, dtype=dtype, buffer=raw, order=order) if nbytes else np.zeros(shape, dtype)
        if not dtype.isnative:
            array = array.astype(dtype.newbyteorder("="))
        out[member[: -len(".npy")]] = array
    return out


def _npy_header(head: bytes, where: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    from numpy.lib import format as npy

    stream = io.BytesIO(head)
    try:
        version = npy.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npy.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npy.read_array_header_2_0(stream)
        else:
            raise CheckpointError(f"{where}: .npy format version {version} is not supported")
    except CheckpointError:
        raise
    except Exception as e:  # numpy parses the header with tokenize + literal_eval: any error is possible
        raise CheckpointError(f"{where}: damaged .npy header ({type(e).__name__}: {e})") from e
    if dtype.kind not in "biufc" or dtype.hasobject:
        raise CheckpointError(f"{where}: dtype {dtype} is not a numeric tensor dtype (object arrays are "
                              "never unpickled)")
    return shape, fortran, dtype, stream.tell()


def write_npz(arrays: dict[str, np.ndarray], out: Any) -> None:
    from numpy.lib import format as npy

    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            array = array.astype(array.dtype, order="C", copy=False)  # keeps 0-d arrays 0-d
            header = io.BytesIO()
            npy.write_array_header_1_0(header, npy.header_data_from_array_1_0(array))
            data = array.reshape(-1).view(np.uint8)
            _zip.write_aligned(zf, out, f"{name}.npy", header.tell() + data.nbytes,
                               [header.getvalue(), memoryview(data)])
