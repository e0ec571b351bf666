"""Decoded arrays cached as ``.npy`` beside a dataset, memory-mapped on later constructions.

A cache is only a speed-up, so nothing in it is trusted: the manifest (written last) records each array's
dtype, shape, byte size, sha256 and stat fingerprint and the stat of the raw files it came from, and a
manifest that is missing, damaged or ill-typed, an array file that was truncated or altered, or a raw file
that changed since, all mean "decode again". A cache folder that cannot be written (read-only, or a file
in its place) only costs the speed-up: the arrays stay in memory and a warning says how to fix it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import DatasetError
from hubkit.hub.transport import verify
from hubkit.hub.transport.cache import file_lock, write_json_atomic

__all__ = ["CACHE_FOLDER", "ArrayCache", "cached_arrays"]

log = logging.getLogger("hubkit.datasets")

CACHE_FOLDER = "hubkit-cache"
_CACHE_FORMAT = 1
_HEX = frozenset("0123456789abcdef")

Built = tuple[dict[str, np.ndarray], dict[str, Any], Sequence[Path]]


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _is_count(v: Any) -> bool:
    return type(v) is int and v >= 0


def _record_problem(rec: Any) -> str | None:
    """What is ill-formed in one array's manifest record, or None."""
    if not isinstance(rec, dict):
        return "an array record is not an object"
    if not (isinstance(rec.get("dtype"), str) and isinstance(rec.get("shape"), list)
            and all(_is_count(d) for d in rec["shape"])):
        return "an array record has no valid dtype and shape"
    if not (_is_count(rec.get("size")) and type(rec.get("mtime_ns")) is int):
        return "an array record has no valid size and mtime"
    sha = rec.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and set(sha) <= _HEX):
        return "an array record has no valid sha256"
    return None


class ArrayCache:
    """Decoded arrays of one dataset split, stored as ``<folder>/<tag>.<key>.npy`` plus ``<tag>.json``.

    ``keys`` are the arrays the dataset reads and ``meta_keys`` the entries of its small metadata (e.g.
    class names); a manifest lacking any of them is not trusted. :meth:`load` returns memory-mapped
    read-only arrays, or None after logging why the cache cannot be used.
    """

    def __init__(self, folder: Path, tag: str, keys: Sequence[str], meta_keys: Sequence[str] = ()) -> None:
        self.folder = Path(folder)
        self.tag = tag
        self.keys = tuple(keys)
        self.meta_keys = tuple(meta_keys)

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.tag}.json"

    def _array_path(self, key: str) -> Path:
        return self.folder / f"{self.tag}.{key}.npy"

    def _manifest_problem(self, info: Any) -> str | None:
        if not isinstance(info, dict) or info.get("format") != _CACHE_FORMAT:
            return "unknown cache format"
        arrays, sources, meta = info.get("arrays"), info.get("sources"), info.get("meta")
        if not isinstance(arrays, dict) or not set(self.keys) <= set(arrays):
            return f"the manifest does not list the arrays {', '.join(self.keys)}"
        if not isinstance(meta, dict) or not set(self.meta_keys) <= set(meta):
            return "the manifest's metadata is damaged"
        if not isinstance(sources, dict) or not all(
                isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v) for v in sources.values()):
            return "the manifest's list of raw files is damaged"
        return next((p for p in map(_record_problem, (arrays[k] for k in self.keys)) if p), None)

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` memory-mapped from disk, or None if the cache is absent or not trustworthy."""
        try:
            info = json.loads(self.manifest.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            if os.path.lexists(self.manifest):
                log.warning("%s: unreadable cache manifest (%s); re-deriving", self.manifest, exc)
            return None
        problem = self._manifest_problem(info)
        if problem:
            log.warning("%s: %s; re-deriving the cache", self.manifest, problem)
            return None
        for rel, (size, mtime) in info["sources"].items():
            src = self.folder / rel
            if src.exists() and _stat_key(src) != (size, mtime):
                log.info("%s: raw file %s changed since the cache was built; re-deriving", self.tag, src)
                return None
        arrays: dict[str, np.ndarray] = {}
        refreshed = False
        for key in self.keys:
            rec, path = info["arrays"][key], self._array_path(key)
            problem = self._check_array_file(path, rec)
            if problem == "rehashed":
                refreshed = True
            elif problem:
                log.warning("%s: %s; re-deriving the cache", self.tag, problem)
                return None
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError, EOFError) as exc:
                log.warning("%s: cannot map %s (%s); re-deriving the cache", self.tag, path, exc)
                return None
            if str(arr.dtype) != rec["dtype"] or list(arr.shape) != rec["shape"]:
                log.warning("%s: %s holds %s%s, expected %s%s; re-deriving", self.tag, path, arr.dtype,
                            arr.shape, rec["dtype"], tuple(rec["shape"]))
                return None
            arrays[key] = arr
        if refreshed:
            with contextlib.suppress(OSError):
                write_json_atomic(self.manifest, info)
        return arrays, info["meta"]

    @staticmethod
    def _check_array_file(path: Path, rec: dict[str, Any]) -> str:
        if not path.is_file():
            return f"{path} is missing"
        size, mtime = _stat_key(path)
        if size != rec["size"]:
            return f"{path} has {size} bytes, expected {rec['size']} (truncated or overwritten)"
        if mtime != rec["mtime_ns"]:
            digest = verify.hash_file(path, ("sha256",))["sha256"]
            if digest != rec["sha256"]:
                return f"{path} has sha256 {digest}, expected {rec['sha256']} (modified after it was written)"
            rec["mtime_ns"] = mtime
            return "rehashed"
        return ""

    def save(
        self, arrays: dict[str, np.ndarray], meta: dict[str, Any] | None = None, sources: Sequence[Path] = ()
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Write ``arrays`` (atomically, manifest last) and return them memory-mapped."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.manifest.unlink()
        records = {key: self._write_array(key, np.ascontiguousarray(arr)) for key, arr in arrays.items()}
        src = {os.path.relpath(p, self.folder): list(_stat_key(Path(p))) for p in sources if Path(p).exists()}
        payload = {"format": _CACHE_FORMAT, "tag": self.tag, "arrays": records, "sources": src, "meta": meta or {}}
        write_json_atomic(self.manifest, payload)
        loaded = self.load()
        if loaded is None:  # pragma: no cover - only if the disk changes under us
            raise DatasetError(f"{self.tag}: the cache just written to {self.folder} cannot be read back")
        return loaded

    def _write_array(self, key: str, arr: np.ndarray) -> dict[str, Any]:
        path = self._array_path(key)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "w+b") as f:
                np.lib.format.write_array(f, arr, allow_pickle=False)  # header, then arr.tofile
                header_len = f.tell() - arr.nbytes
                f.seek(0)
                digest = hashlib.sha256(f.read(header_len))
            digest.update(arr.reshape(-1).view(np.uint8) if arr.size else b"")
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        size, mtime = _stat_key(path)
        return {"dtype": str(arr.dtype), "shape": list(arr.shape), "size": size, "mtime_ns": mtime,
                "sha256": digest.hexdigest()}


def cached_arrays(cache: ArrayCache, build: Callable[[], Built]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The cached arrays of ``cache``, or ``build()`` them (under the hub's lock on the folder) and cache them.

    ``build`` returns ``(arrays, meta, source_paths)``; it is called at most once per process and only
    when no trustworthy cache exists.
    """
    loaded = cache.load()
    if loaded is not None:
        return loaded
    with file_lock(cache.folder):
        loaded = cache.load()  # another process may have built it while we waited
        if loaded is not None:
            return loaded
        arrays, meta, sources = build()
        try:
            return cache.save(arrays, meta, sources)
        except OSError as exc:
            log.warning("%s: cannot write the decoded cache in %s (%s); the arrays are kept in memory, so the next "
                        "construction decodes the raw files again. Make %s a folder you may write to to keep them.",
                        cache.tag, cache.folder, exc.strerror or exc, cache.folder)
            return arrays, meta
