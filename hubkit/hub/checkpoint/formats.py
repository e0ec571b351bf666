"""Checkpoint files without torch: read and write PyTorch, safetensors and npz state dicts.

    state = load_checkpoint("resnet18-f37072fd.pth")        # {name: ndarray}
    save_checkpoint(state, "resnet18.safetensors")
    ckpt = load_object("checkpoint.pt")                      # the whole object, TensorData for tensors
    save_object({"epoch": 3, "w": TensorData(array)}, "checkpoint.pt")

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
import io
import logging
import os
import struct
import tarfile
import tempfile
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError, CheckpointError
from hubkit.hub.checkpoint import _zip
from hubkit.hub.checkpoint._filebuf import FileBuffer
from hubkit.hub.checkpoint._npz import read_npz, write_npz
from hubkit.hub.checkpoint._safetensors import WRITABLE, looks_like_safetensors, read_safetensors, write_safetensors
from hubkit.hub.checkpoint._torch_archive import TensorData, TorchArchive
from hubkit.hub.checkpoint._torch_legacy import is_legacy_stream, is_tar, read_legacy_stream, read_legacy_tar
from hubkit.hub.checkpoint._torch_pickle import AttributeRecord, TensorRef
from hubkit.hub.checkpoint._torch_zip import archive_name, read_torch_zip, write_torch_zip

__all__ = ["AttributeRecord", "TensorData", "checkpoint_format", "load_checkpoint", "load_object", "save_checkpoint",
           "save_object"]

logger = logging.getLogger("hubkit.hub.formats")

Format = Literal["torch", "torch-legacy", "torch-tar", "safetensors", "npz"]
SaveFormat = Literal["safetensors", "torch", "npz"]

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
    mmap: bool = False,
    key: str | Sequence[str] | None = None,
    bfloat16: Literal["float32", "uint16"] = "float32",
) -> dict[str, np.ndarray]:
    """Read a state dict ``{name: ndarray}`` from a torch, safetensors or npz checkpoint.

    Args:
        path: the checkpoint file; its format is detected from its first bytes.
        mmap: ``False`` (the default, as ``torch.load``'s) reads every tensor into its own memory.
            ``True`` maps the file and returns views into it (copy-on-write: writing to an array never
            changes the file), so loading costs no tensor reads (4-5x faster, and no memory until a
            tensor is used) — but only for files nothing rewrites in place: a file truncated or
            overwritten while mapped (``torch.save`` to the same path does exactly that during
            training) kills the process with SIGBUS when a tensor is next read. Files hubkit writes
            (``fetch``'s cache, ``hubkit.save``) are only ever replaced by an atomic rename, which is
            safe. Storages that big-endian files, the conj/neg bits or bfloat16 widened to float32
            need converted are copies either way.
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
                return _read_flat(buf, fmt, zip_entries, bfloat16)
            archive = _read_torch(buf, fmt, zip_entries)
            refs = _select_state_dict(archive.obj, key, buf.path)
            return {name: archive.array(ref, name, bfloat16=bfloat16) for name, ref in refs.items()}
        except CheckpointError:
            raise
        except _PARSE_ERRORS as e:
            raise _malformed(buf, fmt, e) from e


def load_object(
    source: str | os.PathLike | BinaryIO,
    *,
    mmap: bool = False,
    tensor: Callable[[TensorData], Any] | None = None,
) -> Any:
    """Read the whole object a checkpoint holds, as ``torch.load(weights_only=True)`` does.

    Args:
        source: a path, or a binary file object read from its current position to the end.
        mmap: as for :func:`load_checkpoint` (paths only); ``False`` gives every storage its own memory.
        tensor: called once per tensor with its :class:`TensorData`; its result takes the tensor's
            place (the engine makes Tensors here). By default the TensorData stays.

    Returns:
        For torch files, the pickled object with its structure (dict, OrderedDict, list, tuple, str,
        int, float, bool, None, :class:`AttributeRecord`; see :meth:`TorchArchive.materialize`) and a
        :class:`TensorData` where each tensor was; tensors that shared a storage share memory, one tensor
        stored under two keys is one object. For safetensors and npz files, a dict ``{name: TensorData}``.
        bfloat16 becomes float32.

    Raises:
        UnsafeCheckpointError: a torch pickle names a global outside the allowlist (never run).
        CheckpointNotFoundError: the path names no file.
        CheckpointError: the file is truncated, garbled or in no supported format.
    """
    if _is_file_object(source):
        if mmap:
            raise ArgumentError("mmap=True needs a file path; a file object cannot be memory-mapped (pass the "
                                "path, or drop mmap=)")
        data = source.read()
        if not isinstance(data, bytes | bytearray):
            raise ArgumentTypeError(f"the file object gave {type(data).__name__}, not bytes; open the file in "
                                    "binary mode ('rb')")
        name = getattr(source, "name", None)
        buf = FileBuffer.from_bytes(bytes(data), name if isinstance(name, str) else "<file object>")
    else:
        buf = FileBuffer(source, mmap=mmap)
    def make(data: TensorData) -> Any:
        if tensor is None:
            return data
        try:
            return tensor(data)
        except Exception as e:  # the caller's error, not a damaged file: let it through unchanged
            raise _CallerError(e) from e

    with buf:
        fmt = "checkpoint"
        try:
            fmt, zip_entries = _sniff(buf)
            logger.debug("%s: reading the whole object as %s (mmap=%s)", buf.path, fmt, mmap)
            if fmt in ("safetensors", "npz"):
                return {name: make(TensorData(array)) for name, array in _read_flat(buf, fmt, zip_entries).items()}
            return _read_torch(buf, fmt, zip_entries).materialize(make)
        except _CallerError as e:
            raise e.error from None
        except CheckpointError:
            raise
        except _PARSE_ERRORS as e:
            raise _malformed(buf, fmt, e) from e


class _CallerError(Exception):
    """Carries an exception raised by :func:`load_object`'s ``tensor`` callback past the parse-error handling."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def save_checkpoint(
    state: Mapping[str, np.ndarray],
    path: str | os.PathLike | BinaryIO,
    *,
    format: SaveFormat = "safetensors",
) -> None:
    """Write ``{name: ndarray}`` to ``path`` atomically (a temp file renamed into place), or into a
    binary file object.

    Formats: ``"safetensors"``; ``"torch"``, a zip that ``torch.load(path, weights_only=True)``
    reads back as an OrderedDict of tensors, arrays sharing memory sharing one storage; ``"npz"``,
    uncompressed and 64-byte aligned so that :func:`load_checkpoint` maps it without copies.
    Arrays of any shape and strides are accepted; big-endian arrays are written little-endian.
    """
    arrays = _check_state(state)
    if format not in ("safetensors", "torch", "npz"):
        raise CheckpointError(f"format={format!r}: expected 'safetensors', 'torch' or 'npz'")
    if format == "torch":
        save_object(OrderedDict((name, TensorData(array)) for name, array in arrays.items()), path)
        return
    _check_dtypes(arrays, format)

    def write(out: BinaryIO, tmp: str | None) -> None:
        if format == "npz":
            write_npz(arrays, out)
        else:
            write_safetensors(arrays, out, tmp)

    _write_to(path, write)
    logger.debug("wrote %d tensors to %s as %s", len(arrays), _describe_target(path), format)


def save_object(obj: Any, path: str | os.PathLike | BinaryIO) -> None:
    """Write ``obj`` in torch's zip format, atomically to a path or straight into a binary file object.

    ``obj`` holds dicts, OrderedDicts, lists, tuples, str, int, float, bool, None, numpy dtypes and
    :class:`TensorData` (see ``_torch_zip.check_object``); ``torch.load(path, weights_only=True)``
    returns the same structure with torch tensors, and :func:`load_object` with TensorData again.
    Nothing is written when ``obj`` holds anything else (the check runs before the first byte).
    """
    name = "archive" if _is_file_object(path) else archive_name(Path(path).stem)  # torch's names

    def write(out: BinaryIO, tmp: str | None) -> None:
        write_torch_zip(obj, out, name=name)

    _write_to(path, write)
    logger.debug("wrote an object to %s in torch format", _describe_target(path))


def _is_file_object(target: Any) -> bool:
    return not isinstance(target, str | bytes | os.PathLike) and (callable(getattr(target, "read", None))
                                                                  or callable(getattr(target, "write", None)))


def _describe_target(target: Any) -> str:
    return "a file object" if _is_file_object(target) else os.fspath(target)


def _write_to(target: str | os.PathLike | BinaryIO, write: Callable[[BinaryIO, str | None], None]) -> None:
    """Run ``write(out, tmp_path)``: for a path into a temp file that is fsynced and renamed into place
    (so the name never holds half a file); for a file object into the object itself, through memory
    when it is not seekable or not at its start (zip offsets and 64-byte alignment count from there)."""
    if _is_file_object(target):
        try:
            direct = target.seekable() and target.tell() == 0
        except (AttributeError, OSError, ValueError):
            direct = False
        if direct:
            write(target, None)
            return
        staging = io.BytesIO()
        write(staging, None)
        target.write(staging.getbuffer())
        return
    target = Path(target)
    if not target.parent.is_dir():
        raise CheckpointError(f"cannot save to {target}: the folder {target.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "r+b") as out:
            write(out, tmp)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_flat(buf: FileBuffer, fmt: Format, zip_entries: tuple, bfloat16: str = "float32") -> dict[str, np.ndarray]:
    return read_safetensors(buf, bfloat16) if fmt == "safetensors" else read_npz(buf, *zip_entries)


def _read_torch(buf: FileBuffer, fmt: Format, zip_entries: tuple) -> TorchArchive:
    if fmt == "torch":
        return read_torch_zip(buf, *zip_entries)
    if fmt == "torch-legacy":
        return read_legacy_stream(buf)
    return read_legacy_tar(buf)


def _malformed(buf: FileBuffer, fmt: str, e: BaseException) -> CheckpointError:
    return CheckpointError(f"{buf.path}: malformed {fmt} file ({type(e).__name__}: {e}); the file is truncated or "
                           "corrupted, download it again")


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
    if looks_like_safetensors(head, buf.size):
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
        ok = plain in WRITABLE if format == "safetensors" else plain.kind in "biufc"
        if not ok:
            raise CheckpointError(f"cannot save {name!r} as {format}: dtype {array.dtype} is not supported; "
                                  "convert it to a float, int, uint or bool dtype")
