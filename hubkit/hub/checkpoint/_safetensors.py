"""safetensors files: read through the reference reader's checks, then as views of the file; written by
the ``safetensors`` package itself.

Format (huggingface/safetensors): a little-endian u64 header length N, N bytes of JSON (per tensor its
``dtype``, ``shape`` and ``data_offsets [begin, end)``, plus an optional string-only ``__metadata__``),
then the tensors' bytes, little-endian and C-ordered, back to back.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any, BinaryIO

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub.checkpoint._filebuf import FileBuffer
from hubkit.hub.checkpoint._torch_archive import widen_bfloat16

HEADER_LIMIT = 100_000_000  # the safetensors reference reader's MAX_HEADER_SIZE
DTYPES = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "BF16": "<u2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8", "C64": "<c8",
}
WRITABLE = {np.dtype(code) for name, code in DTYPES.items() if name != "BF16"}


def looks_like_safetensors(head: bytes, size: int) -> bool:
    """Whether a file of ``size`` bytes starting with ``head`` has a safetensors header."""
    if len(head) < 9:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and header_len <= HEADER_LIMIT and 8 + header_len <= size


def read_safetensors(buf: FileBuffer, bfloat16: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, deserialize, safe_open

    try:  # the reference reader's checks: header size, JSON, dtypes, offsets contiguous, full coverage
        if buf.in_memory:
            deserialize(buf.data)
        else:
            with safe_open(buf.path, framework="np"):
                pass
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{buf.path}: invalid safetensors file ({e}); the file is truncated or "
                              "corrupted, download it again") from e
    (header_len,) = struct.unpack("<Q", buf.read(0, 8, "the safetensors header size"))
    header = json.loads(buf.read(8, header_len, "the safetensors header").decode("utf-8"))
    start = 8 + header_len
    out: dict[str, np.ndarray] = {}
    for name, entry in sorted(header.items(), key=lambda item: _offset_key(item[1])):
        if name == "__metadata__":
            continue
        code = DTYPES.get(entry["dtype"])
        if code is None:
            raise CheckpointError(f"{buf.path}: tensor {name!r} has dtype {entry['dtype']}, which numpy cannot "
                                  f"hold; hubkit reads {', '.join(DTYPES)}")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        raw = buf.array(start + begin, end - begin, f"tensor {name!r}")
        array = np.ndarray(shape, dtype=code, buffer=raw) if math.prod(shape) else np.zeros(shape, code)
        if entry["dtype"] == "BF16" and bfloat16 == "float32":
            array = widen_bfloat16(array)
        out[name] = array
    return out


def _offset_key(entry: Any) -> int:
    return entry["data_offsets"][0] if isinstance(entry, dict) and "data_offsets" in entry else -1


def write_safetensors(arrays: dict[str, np.ndarray], out: BinaryIO, path: str | None) -> None:
    """Into the file at ``path`` (the package writes by path; ``out`` is that same file), else into ``out``."""
    from safetensors.numpy import save, save_file

    contiguous = {name: a.astype(a.dtype.newbyteorder("<"), order="C", copy=False) for name, a in arrays.items()}
    # "pt" because the names and layouts are PyTorch's; transformers refuses files without it
    if path is not None:
        save_file(contiguous, path, metadata={"format": "pt"})
    else:
        out.write(save(contiguous, metadata={"format": "pt"}))
