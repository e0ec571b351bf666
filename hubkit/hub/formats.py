"""Checkpoint files without torch: read and write PyTorch, safetensors and npz state dicts.

    state = load_checkpoint("resnet18-f37072fd.pth")        # {name: ndarray}, memory-mapped
    save_checkpoint(state, "resnet18.safetensors")

:func:`load_checkpoint` sniffs the format from the file's bytes, never its name:

==================  ===========================================  =================================
format              first bytes                                  written by
==================  ===========================================  =================================
``torch``           ``PK\\x03\\x04`` and ``<name>/data.pkl``      ``torch.save`` since torch 1.6
``torch-legacy``    pickle of the magic number 0x1950a86a20...   torch < 1.6, or
                                                                 ``_use_new_zipfile_serialization=False``
``torch-tar``       a tar header (``ustar`` at byte 257)         torch < 0.4
``safetensors``     u64 header length, then ``{``                Hugging Face ``safetensors``
``npz``             ``PK\\x03\\x04`` and ``*.npy`` members        ``numpy.savez``, hubkit
==================  ===========================================  =================================

The torch readers run a data-only pickle machine with an allowlist (see ``_torch_pickle``): a file
that names anything else raises :class:`UnsafeCheckpointError` and nothing from it is imported or
called. Every other problem with a file raises :class:`CheckpointError` naming the file.

This module moves bytes and numpy arrays only; it never imports the engine or torch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from hubkit.errors import CheckpointError
from hubkit.hub import _zip
from hubkit.hub._filebuf import FileBuffer
from hubkit.hub._torch_archive import widen_bfloat16
from hubkit.hub._torch_legacy import is_legacy_stream, is_tar, read_legacy_stream, read_legacy_tar
from hubkit.hub._torch_pickle import TensorRef
from hubkit.hub._torch_zip import archive_name, read_torch_zip, torch_dtype, write_torch_zip

__all__ = ["checkpoint_format", "load_checkpoint", "save_checkpoint"]

logger = logging.getLogger("hubkit.hub.formats")

Format = Literal["torch", "torch-legacy", "torch-tar", "safetensors", "npz"]
SaveFormat = Literal["safetensors", "torch", "npz"]

_SAFETENSORS_HEADER_LIMIT = 100_000_000  # the safetensors reference reader's MAX_HEADER_SIZE
_SAFETENSORS_DTYPES = {
    "BOOL": "?", "U8": "u1", "I8": "i1", "U16": "<u2", "I16": "<i2", "F16": "<f2", "BF16": "<u2",
    "U32": "<u4", "I32": "<i4", "F32": "<f4", "U64": "<u8", "I64": "<i8", "F64": "<f8", "C64": "<c8",
}
_SAFETENSORS_WRITABLE = {np.dtype(code) for name, code in _SAFETENSORS_DTYPES.items() if name != "BF16"}
# Anything the parsers could raise on a damaged file that is not already a CheckpointError.
_PARSE_ERRORS = (IndexError, KeyError, ValueError, TypeError, OverflowError, MemoryError, RecursionError,
                 struct.error, UnicodeDecodeError, zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error,
                 tarfile.TarError, EOFError, NotImplementedError)


# ---------------------------------------------------------------- public API


def checkpoint_format(path: str | os.PathLike) -> Format:
    """The format of the checkpoint at ``path``, judged from its bytes (see the module table)."""
    with FileBuffer(path, mmap=False) as buf:
        return _sniff(buf)[0]


def load_checkpoint(
    path: str | os.PathLike,
    *,
    mmap: bool = True,
    key: str | Sequence[str] | None = None,
    bfloat16: Literal["float32", "uint16"] = "float32",
) -> dict[str, np.ndarray]:
    """Read a state dict ``{name: ndarray}`` from a torch, safetensors or npz checkpoint.

    Args:
        path: the checkpoint file; its format is detected from its first bytes.
        mmap: map the file and return views into it (copy-on-write: writing to an array never
            changes the file), so loading costs no tensor reads; ``False`` reads every tensor
            into its own memory. Big-endian torch files, conj/neg views and bfloat16 widened
            to float32 are always copies.
        key: for torch files that wrap the state dict in a bigger container (``{"epoch": 3,
            "state_dict": {...}}``), the key to unwrap, or a sequence of keys for deeper nesting.
        bfloat16: ``"float32"`` returns bfloat16 tensors as float32 (exact); ``"uint16"`` returns
            their raw bit patterns without a copy.

    Returns:
        ``{name: ndarray}`` in file order, each array with the tensor's shape, strides and dtype
        (float64/32/16, int64/32/16/8, uint8/16/32/64, bool, complex64/128). Tensors that shared a
        storage in the file share memory.

    Raises:
        UnsafeCheckpointError: a torch pickle names a global outside the allowlist (never run).
        CheckpointError: the file is missing, truncated, garbled, in no supported format, or holds
            a container whose state dict must be chosen with ``key=``.
    """
    if bfloat16 not in ("float32", "uint16"):
        raise CheckpointError(f"bfloat16={bfloat16!r}: expected 'float32' or 'uint16'")
    with FileBuffer(path, mmap=mmap) as buf:
        fmt = "checkpoint"
        try:
            fmt, zip_entries = _sniff(buf)
            logger.debug("%s: reading as %s (mmap=%s)", buf.path, fmt, mmap)
            if fmt in ("safetensors", "npz"):
                if key is not None:
                    raise CheckpointError(f"{buf.path}: key={key!r} was given but a {fmt} file is a flat "
                                          "{name: tensor} mapping with nothing to unwrap; drop key=")
                if fmt == "safetensors":
                    return _read_safetensors(buf, bfloat16)
                return _read_npz(buf, *zip_entries)
            if fmt == "torch":
                archive = read_torch_zip(buf, *zip_entries)
            elif fmt == "torch-legacy":
                archive = read_legacy_stream(buf)
            else:
                archive = read_legacy_tar(buf)
            refs = _select_state_dict(archive.obj, key, buf.path)
            return {name: archive.array(ref, name, bfloat16=bfloat16) for name, ref in refs.items()}
        except CheckpointError:
            raise
        except _PARSE_ERRORS as e:
            raise CheckpointError(f"{buf.path}: malformed {fmt} file ({type(e).__name__}: {e}); the file is "
                                  "truncated or corrupted, download it again") from e


def save_checkpoint(
    state: Mapping[str, np.ndarray],
    path: str | os.PathLike,
    *,
    format: SaveFormat = "safetensors",
) -> None:
    """Write ``{name: ndarray}`` to ``path`` atomically (a temp file renamed into place).

    Formats: ``"safetensors"``; ``"torch"``, a zip that ``torch.load(path, weights_only=True)``
    reads back as an OrderedDict of tensors, arrays sharing memory sharing one storage; ``"npz"``,
    uncompressed and 64-byte aligned so that :func:`load_checkpoint` maps it without copies.
    Arrays of any shape and strides are accepted; big-endian arrays are written little-endian.
    """
    arrays = _check_state(state)
    target = Path(path)
    if format not in ("safetensors", "torch", "npz"):
        raise CheckpointError(f"format={format!r}: expected 'safetensors', 'torch' or 'npz'")
    if format == "torch":
        for name, array in arrays.items():
            torch_dtype(array, name)
    else:
        _check_dtypes(arrays, format)
    if not target.parent.is_dir():
        raise CheckpointError(f"cannot save to {target}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "r+b") as out:
            if format == "torch":
                write_torch_zip(arrays, out, name=archive_name(target.stem))
            elif format == "npz":
                _write_npz(arrays, out)
            else:
                _write_safetensors(arrays, tmp)  # the package writes by path, into the same file
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    logger.debug("wrote %d tensors to %s as %s", len(arrays), target, format)


# ---------------------------------------------------------------- sniffing


def _sniff(buf: FileBuffer) -> tuple[Format, tuple]:
    if buf.size == 0:
        raise CheckpointError(f"{buf.path}: the file is empty; download it again")
    head = buf.read(0, min(buf.size, 512), "the file header")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        zf, entries = _zip.open_zip(buf)
        names = list(entries)
        if names and "/" in names[0] and f"{names[0].split('/', 1)[0]}/data.pkl" in entries:
            return "torch", (zf, entries)
        if all(name.endswith(".npy") for name in names):
            return "npz", (zf, entries)
        hint = (" It looks like a TorchScript archive (torch.jit.save): load it with torch.jit.load and save "
                "its state_dict() with torch.save." if any(n.endswith("/constants.pkl") for n in names) else "")
        raise CheckpointError(f"{buf.path}: a zip file that is neither a torch checkpoint (no <name>/data.pkl) "
                              f"nor an npz (members not all *.npy): {names[:5]}.{hint}")
    if is_tar(head):
        return "torch-tar", ()
    if is_legacy_stream(head):
        return "torch-legacy", ()
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if head[8:9] == b"{" and header_len <= _SAFETENSORS_HEADER_LIMIT and 8 + header_len <= buf.size:
            return "safetensors", ()
    raise CheckpointError(f"{buf.path}: not a checkpoint hubkit reads (torch zip, torch legacy, safetensors, "
                          f"npz); {_guess(head)}")


def _guess(head: bytes) -> str:
    lowered = head[:256].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "it is an HTML page, probably an error page saved instead of the file; check the URL"
    if lowered.startswith(b"version https://git-lfs"):
        return "it is a Git LFS pointer, not the file; fetch the real file with git lfs pull"
    if head[:6] == b"\x93NUMPY":
        return "it is a single .npy array, not a state dict; load it with numpy.load"
    if head[:1] == b"\x80":
        return "it is a plain pickle, not torch.save output; hubkit does not unpickle arbitrary objects"
    return f"the first bytes are {head[:16]!r}"


# ---------------------------------------------------------------- torch containers


def _select_state_dict(obj: Any, key: str | Sequence[str] | None, path: str) -> dict[str, TensorRef]:
    """Find the ``{name: tensor}`` mapping, unwrapping ``key`` (a key or a path of keys)."""
    trail: list[str] = []
    for part in ([] if key is None else [key] if isinstance(key, str) else list(key)):
        if not isinstance(obj, dict) or part not in obj:
            where = f" under {trail}" if trail else ""
            keys = _key_list(obj) if isinstance(obj, dict) else f"a {type(obj).__name__}, not a dict"
            raise CheckpointError(f"{path}: key {part!r} not found{where}; the container holds {keys}")
        obj = obj[part]
        trail.append(part)
    if isinstance(obj, TensorRef):
        raise CheckpointError(f"{path}: holds a single tensor, not a state dict; save a dict {{name: tensor}}")
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, expected a dict of tensors (a state dict)")
    others = [k for k, v in obj.items() if not isinstance(v, TensorRef)]
    if others:
        candidates = [k for k, v in obj.items() if isinstance(v, dict) and v
                      and all(isinstance(t, TensorRef) for t in v.values())]
        hint = (f"; the state dict is probably under key={candidates[0]!r}" if len(candidates) == 1 else
                f"; entries holding tensors: {candidates}" if candidates else "")
        raise CheckpointError(f"{path}: holds a container, not a flat state dict: keys {_key_list(obj)}, of "
                              f"which {_key_list(others)} are not tensors. Pass key= to choose the state "
                              f"dict{hint}")
    bad = [k for k in obj if not isinstance(k, str)]
    if bad:
        raise CheckpointError(f"{path}: state dict keys must be strings, found {_key_list(bad)}")
    return obj


def _key_list(keys: Any, limit: int = 12) -> str:
    keys = list(keys)
    shown = ", ".join(repr(k)[:60] for k in keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)} keys)"


# ---------------------------------------------------------------- safetensors


def _read_safetensors(buf: FileBuffer, bfloat16: str) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError, safe_open

    try:  # the reference reader's checks: header size, JSON, dtypes, offsets contiguous, full coverage
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
        code = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if code is None:
            raise CheckpointError(f"{buf.path}: tensor {name!r} has dtype {entry['dtype']}, which numpy cannot "
                                  f"hold; hubkit reads {', '.join(_SAFETENSORS_DTYPES)}")
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


def _write_safetensors(arrays: dict[str, np.ndarray], path: str) -> None:
    from safetensors.numpy import save_file

    contiguous = {name: a.astype(a.dtype.newbyteorder("<"), order="C", copy=False) for name, a in arrays.items()}
    # "pt" because the names and layouts are PyTorch's; transformers refuses files without it
    save_file(contiguous, path, metadata={"format": "pt"})


# ---------------------------------------------------------------- npz


def _read_npz(buf: FileBuffer, zf: zipfile.ZipFile, entries: dict[str, zipfile.ZipInfo]) -> dict[str, np.ndarray]:
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
    import io

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


def _write_npz(arrays: dict[str, np.ndarray], out: Any) -> None:
    import io

    from numpy.lib import format as npy

    with zipfile.ZipFile(out, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            array = array.astype(array.dtype, order="C", copy=False)  # keeps 0-d arrays 0-d
            header = io.BytesIO()
            npy.write_array_header_1_0(header, npy.header_data_from_array_1_0(array))
            data = array.reshape(-1).view(np.uint8)
            _zip.write_aligned(zf, out, f"{name}.npy", header.tell() + data.nbytes,
                               [header.getvalue(), memoryview(data)])


# ---------------------------------------------------------------- checks


def _check_state(state: Any) -> dict[str, np.ndarray]:
    if not isinstance(state, Mapping):
        raise CheckpointError(f"expected a mapping {{name: ndarray}} to save, found a {type(state).__name__}")
    arrays: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str):
            raise CheckpointError(f"state dict keys must be strings, found {name!r}")
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"cannot save {name!r}: expected a numpy array, found a {type(value).__name__} "
                                  "(hubkit.save converts tensors for you)")
        arrays[name] = value
    return arrays


def _check_dtypes(arrays: dict[str, np.ndarray], format: str) -> None:
    for name, array in arrays.items():
        plain = array.dtype.newbyteorder("<")
        ok = plain in _SAFETENSORS_WRITABLE if format == "safetensors" else plain.kind in "biufc"
        if not ok:
            raise CheckpointError(f"cannot save {name!r} as {format}: dtype {array.dtype} is not supported; "
                                  "convert it to a float, int, uint or bool dtype")
