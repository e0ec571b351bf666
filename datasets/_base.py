"""The machinery every hubkit dataset shares.

- where data lives: ``root=None`` means ``<hubkit data dir>/datasets``;
- resources as data: each dataset class lists ``hubkit.hub.Resource`` entries (URL, mirrors, md5, sha256, size);
- getting raw files: a file already on disk (a torchvision tree included) is verified once and used, a missing
  one is downloaded through ``hub.fetch`` when ``download=True``, and otherwise ``DatasetNotFoundError`` says
  which file to put where;
- archives are unpacked with ``hub.extract`` and a marker written last, so a half-extracted tree is redone;
- decoded arrays are cached as ``.npy`` with a manifest (size, sha256, stat fingerprint) and memory-mapped
  on later constructions; a truncated or altered cache is detected and re-derived, never trusted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from hubkit.errors import ArgumentError, DatasetError, DatasetNotFoundError, MissingDependencyError
from hubkit.hub.transport.cache import Record, fingerprint, read_record, write_json_atomic, write_record
from hubkit.hub.transport.verify import hash_file

if TYPE_CHECKING:
    from hubkit.hub import Resource

log = logging.getLogger("hubkit.datasets")

CACHE_FOLDER = "hubkit-cache"
_CACHE_FORMAT = 1


# ---------------------------------------------------------------- where data lives


def data_dir() -> Path:
    """hubkit's data directory: ``$HUBKIT_HOME`` when set, else ``platformdirs.user_data_dir("hubkit")``."""
    home = os.environ.get("HUBKIT_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("hubkit"))


def default_root() -> Path:
    """Where datasets go when ``root=None``: ``<data dir>/datasets``."""
    return data_dir() / "datasets"


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` as an absolute-ish Path (``~`` expanded); ``None`` -> :func:`default_root`."""
    if root is None:
        return default_root()
    if not isinstance(root, str | os.PathLike):
        raise ArgumentError(f"root must be a path (str or os.PathLike) or None, found {type(root).__name__}")
    return Path(root).expanduser()


def require(module: str, purpose: str, extra: str) -> Any:
    """Import an optional dependency or raise :class:`MissingDependencyError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the optional package {module.split('.')[0]!r}, which is not installed. "
            f"Install it with `pip install hubkit[{extra}]` (or `pip install {module.split('.')[0]}`)."
        ) from exc


def check_choice(value: Any, arg: str, valid: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``valid``, else raise ArgumentError naming the valid values."""
    valid = tuple(valid)
    if value not in valid:
        raise ArgumentError(
            f"Unknown value {value!r} for argument {arg}. Valid values are {', '.join(map(repr, valid))}."
        )
    return value


# ---------------------------------------------------------------- base class


class StandardTransform:
    """Applies ``transform`` to the input and ``target_transform`` to the target (torchvision's helper)."""

    def __init__(self, transform: Callable | None = None, target_transform: Callable | None = None) -> None:
        self.transform = transform
        self.target_transform = target_transform

    def __call__(self, input: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            input = self.transform(input)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return input, target

    def __repr__(self) -> str:
        body = [type(self).__name__]
        if self.transform is not None:
            body += _indent_repr(self.transform, "Transform: ")
        if self.target_transform is not None:
            body += _indent_repr(self.target_transform, "Target transform: ")
        return "\n".join(body)


def _indent_repr(obj: Any, head: str) -> list[str]:
    lines = repr(obj).splitlines()
    return [head + lines[0]] + [" " * len(head) + line for line in lines[1:]]


class VisionDataset:
    """Base of the map-style datasets: ``root``, ``transform``/``target_transform`` or joint ``transforms``.

    Subclasses implement ``__getitem__`` and ``__len__`` and may override ``extra_repr``.
    """

    _repr_indent = 4

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        transforms: Callable | None = None,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
    ) -> None:
        self.root = resolve_root(root)
        has_separate = transform is not None or target_transform is not None
        if transforms is not None and has_separate:
            raise ArgumentError(
                "Only transforms or transform/target_transform can be passed as argument, found both"
            )
        self.transform = transform
        self.target_transform = target_transform
        if has_separate:
            transforms = StandardTransform(transform, target_transform)
        self.transforms = transforms

    def _apply(self, sample: Any, target: Any) -> tuple[Any, Any]:
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target

    def __getitem__(self, index: int) -> Any:  # pragma: no cover - every dataset overrides it
        raise TypeError(f"{type(self).__name__} does not implement __getitem__")

    def __len__(self) -> int:  # pragma: no cover - every dataset overrides it
        raise TypeError(f"{type(self).__name__} does not implement __len__")

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        body = [f"Number of datapoints: {len(self)}", f"Root location: {self.root}"]
        body += self.extra_repr().splitlines()
        if self.transforms is not None:
            body += repr(self.transforms).splitlines()
        return "\n".join(["Dataset " + type(self).__name__] + [" " * self._repr_indent + b for b in body])


# ---------------------------------------------------------------- resources and raw files


def resource_filename(res: Resource) -> str:
    """The local file name of a resource: its ``filename`` or the last segment of its URL path."""
    return res.filename or os.path.basename(urlsplit(res.url).path)


def _stat_key(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _expected(res: Resource) -> dict[str, str]:
    out = {}
    if res.md5:
        out["md5"] = res.md5.lower()
    if res.sha256:
        out["sha256"] = res.sha256.lower()
    return out


def file_matches(path: Path, res: Resource) -> tuple[bool, str]:
    """Whether ``path`` holds the resource's bytes (see :func:`verify_file`). Returns ``(ok, why_not)``."""
    return verify_file(
        path, size=res.size, md5=res.md5, sha256=res.sha256, sha256_prefix=res.sha256_prefix, url=res.url
    )


def verify_file(
    path: Path,
    *,
    size: int | None = None,
    md5: str | None = None,
    sha256: str | None = None,
    sha256_prefix: str | None = None,
    url: str = "",
) -> tuple[bool, str]:
    """Whether ``path`` has the given size and md5/sha256/sha256 prefix. Returns ``(ok, why_not)``.

    Uses the hub's sidecar (``.<name>.hubkit.json``, written by ``hub.fetch`` too): a file whose stat
    fingerprint matches its sidecar is not re-hashed; otherwise it is hashed once and the sidecar
    (re)written when the check passes.
    """
    st = path.stat()
    if size is not None and st.st_size != size:
        return False, f"{path} has {st.st_size} bytes, expected {size}"
    expected = {k: v.lower() for k, v in (("md5", md5), ("sha256", sha256)) if v}
    prefix = (sha256_prefix or "").lower()
    if prefix and "sha256" not in expected:
        expected["sha256"] = ""  # computed, then compared by prefix
    if not expected:
        return True, ""
    record = read_record(path)
    digests: dict[str, str] = {}
    if record is not None and record.sha256 and record.fingerprint == fingerprint(st):
        digests["sha256"] = record.sha256
        if record.md5:
            digests["md5"] = record.md5
    if all(k in digests for k in expected):
        return _compare(path, expected, prefix, digests)
    log.info("verifying %s", path)
    digests = hash_file(path, tuple(dict.fromkeys(["sha256", *expected])))
    ok, why = _compare(path, expected, prefix, digests)
    if ok:
        rec = Record(url=url or (record.url if record else ""), sha256=digests["sha256"], md5=digests.get("md5"),
                     size=st.st_size, fingerprint=fingerprint(st))
        try:
            write_record(path, rec)
        except OSError as exc:  # a read-only tree is still usable, it is just re-hashed next time
            log.debug("cannot record verification of %s: %s", path, exc)
    return ok, why


def _compare(path: Path, expected: dict[str, str], prefix: str, found: dict[str, str]) -> tuple[bool, str]:
    for name, want in expected.items():
        got = found[name]
        if name == "sha256" and not want:
            if not got.startswith(prefix):
                return False, f"{path} has sha256 {got}, expected one starting with {prefix}"
        elif got != want:
            return False, f"{path} has {name} {got}, expected {want}"
    return True, ""


def download_resource(res: Resource, folder: Path, progress: bool | None = None) -> Path:
    """Fetch ``res`` into ``folder`` through ``hub.fetch`` (mirrors, resume, verification included)."""
    from hubkit.hub import fetch

    folder.mkdir(parents=True, exist_ok=True)
    name = resource_filename(res)
    log.info("downloading %s into %s", res.url, folder)
    path = Path(
        fetch(
            res.url,
            sha256=res.sha256,
            md5=res.md5,
            sha256_prefix=res.sha256_prefix,
            size=res.size,
            mirrors=tuple(res.mirrors),
            dest=folder,
            filename=name,
            progress=progress,
        )
    )
    return path


def describe_resource(res: Resource) -> str:
    """One line for error messages: file name, URL(s) and the expected checksum."""
    urls = " or ".join([res.url, *res.mirrors])
    sums = ", ".join(f"{k} {v}" for k, v in _expected(res).items())
    return f"{resource_filename(res)} (from {urls}{'; ' + sums if sums else ''})"


def not_found(dataset: str, missing: Sequence[tuple[Path, Resource | None]], hint: str = "") -> DatasetNotFoundError:
    """The error for missing files: pass ``download=True``, or put each file at its path by hand."""
    lines = [f"{dataset}: dataset not found. Pass download=True to download it, or put these files in place:"]
    for path, res in missing:
        lines.append(f"  {path}" + (f"  <- {describe_resource(res)}" if res is not None else ""))
    if hint:
        lines.append(hint)
    return DatasetNotFoundError("\n".join(lines))


class RawFile:
    """A raw file a dataset reads: the resource, the folder it belongs in, and accepted pre-existing forms.

    ``alternates`` are other paths that hold the same content in a form torchvision leaves behind
    (e.g. the decompressed ``train-images-idx3-ubyte`` next to the ``.gz``); they carry no checksum,
    so the parser's structural checks are what guard them.
    """

    def __init__(self, res: Resource, folder: Path, alternates: Sequence[Path] = ()) -> None:
        self.res = res
        self.folder = Path(folder)
        self.alternates = [Path(p) for p in alternates]

    @property
    def path(self) -> Path:
        return self.folder / resource_filename(self.res)

    def existing(self) -> Path | None:
        """The path of a usable copy already on disk, or None."""
        if self.path.is_file():
            return self.path
        for alt in self.alternates:
            if alt.is_file():
                return alt
        return None


def locate(
    dataset: str, files: Sequence[RawFile], download: bool, hint: str = "", progress: bool | None = None
) -> list[Path]:
    """Paths of ``files`` on disk, verified; downloads the missing/corrupted ones when ``download``.

    Raises DatasetNotFoundError listing every missing file (with URL and checksum) when ``download`` is
    False, and DatasetError when a file on disk does not match its recorded size/hash.
    """
    found: list[Path | None] = []
    missing: list[tuple[Path, Resource]] = []
    for f in files:
        path = f.existing()
        if path is not None and path == f.path:
            ok, why = file_matches(path, f.res)
            if not ok:
                if not download:
                    raise DatasetError(
                        f"{dataset}: {why}. The file is corrupted or incomplete; delete it and pass "
                        f"download=True to fetch it again ({describe_resource(f.res)})."
                    )
                log.warning("%s: %s; downloading it again", dataset, why)
                path.unlink()
                path = None
        if path is None:
            missing.append((f.path, f.res))
        found.append(path)
    if missing and not download:
        raise not_found(dataset, missing, hint)
    out = []
    for f, path in zip(files, found):
        out.append(path if path is not None else download_resource(f.res, f.folder, progress))
    return out


# ---------------------------------------------------------------- archives


def _marker(dest: Path, archive: Path) -> Path:
    return dest / f".hubkit-extracted-{archive.name}.json"


def is_extracted(dest: Path, archive_name: str) -> bool:
    """Whether hubkit finished extracting ``archive_name`` into ``dest`` (its marker exists)."""
    return _marker(dest, Path(archive_name)).is_file()


def extract_once(archive: Path, dest: Path, *, format: str | None = None, force: bool = False) -> Path:
    """Extract ``archive`` into ``dest`` with ``hub.extract`` unless a completed extraction is recorded.

    The marker is written after the last member, so an interrupted extraction is simply redone;
    ``force=True`` extracts again regardless (used when an extracted file turned out corrupted).
    """
    marker = _marker(dest, archive)
    size, mtime = _stat_key(archive)
    info = _read_json(marker)
    if not force and isinstance(info, dict) and info.get("archive_size") == size:
        return dest
    from hubkit.hub import extract

    log.info("extracting %s into %s", archive, dest)
    dest.mkdir(parents=True, exist_ok=True)
    extract(archive, dest, format=format)
    write_json_atomic(marker, {"archive": archive.name, "archive_size": size, "archive_mtime_ns": mtime})
    return dest


def extracted_folder(dataset: str, archive: RawFile, dest: Path, produced: Path, download: bool) -> Path:
    """Make sure ``produced`` (a folder that ``archive`` unpacks into ``dest``) is complete; return it.

    A folder already there is used as it is (a torchaudio/torchvision tree) unless the archive sits next to
    it without hubkit's completion marker, i.e. an extraction was interrupted; then it is extracted again.
    """
    have_archive = archive.path.is_file()
    if produced.is_dir() and (not have_archive or is_extracted(dest, archive.path.name)):
        return produced
    if not have_archive and not download:
        raise not_found(dataset, [(archive.path, archive.res)], hint=f"(or the extracted folder {produced})")
    (path,) = locate(dataset, [archive], download)
    extract_once(path, dest)
    if not produced.is_dir():
        raise DatasetError(
            f"{dataset}: {path} was extracted into {dest} but did not produce {produced}; the archive is not the "
            "expected one. Delete it and download it again."
        )
    return produced


def archive_members(
    dataset: str,
    archive: RawFile,
    dest: Path,
    members: Sequence[tuple[Path, str | None]],
    download: bool,
) -> list[Path]:
    """Paths of files that come out of ``archive`` (extracted into ``dest``), each checked against its md5.

    Files already in place and matching (a torchvision tree included) are used as they are. Otherwise the
    archive is taken from disk or downloaded (``download=True``), extracted, and the files checked again.
    ``members`` are ``(path, md5 or None)``; raises DatasetNotFoundError / DatasetError with what to do.
    """

    def problems() -> tuple[list[Path], list[str]]:
        missing, corrupt = [], []
        for path, md5 in members:
            if not path.is_file():
                missing.append(path)
            elif md5:
                ok, why = verify_file(path, md5=md5)
                if not ok:
                    corrupt.append(why)
        return missing, corrupt

    missing, corrupt = problems()
    if not missing and not corrupt:
        return [p for p, _ in members]
    if not archive.path.is_file() and not download:
        if not corrupt:
            raise not_found(
                dataset, [(archive.path, archive.res)],
                hint=f"(or its extracted files: {', '.join(str(p) for p, _ in members)})",
            )
        raise DatasetError(
            f"{dataset}: extracted files do not match their checksums: {'; '.join(corrupt)}. Pass "
            f"download=True to download and extract {resource_filename(archive.res)} again, or replace them."
        )
    (path,) = locate(dataset, [archive], download)
    extract_once(path, dest, force=bool(corrupt))
    missing, corrupt = problems()
    if missing or corrupt:
        what = [f"{p} is missing" for p in missing] + corrupt
        raise DatasetError(
            f"{dataset}: after extracting {path}: {'; '.join(what)}. The archive does not hold the expected "
            "files; delete it and download it again."
        )
    return [p for p, _ in members]


# ---------------------------------------------------------------- locking


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An inter-process lock on ``folder`` (so DDP ranks or parallel jobs prepare a dataset once)."""
    import filelock

    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(folder / ".hubkit.lock"))
    try:
        lock.acquire()
    except OSError as exc:  # read-only trees can still be read; only writes need the lock
        log.debug("no lock on %s (%s); continuing without it", folder, exc)
        yield
        return
    try:
        yield
    finally:
        lock.release()


# ---------------------------------------------------------------- decoded-array cache


class ArrayCache:
    """Decoded arrays of one dataset split, stored as ``<folder>/<tag>.<key>.npy`` plus ``<tag>.json``.

    The manifest (written last) records each array's dtype, shape, byte size, sha256 and stat fingerprint,
    the stat fingerprints of the raw files it was derived from, and small metadata (e.g. class names).
    :meth:`load` returns memory-mapped read-only arrays, or None when anything does not match — a
    truncated file (size), a modified file (fingerprint changed and sha256 differs), a raw source that
    changed since — after logging why.
    """

    def __init__(self, folder: Path, tag: str) -> None:
        self.folder = Path(folder)
        self.tag = tag

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.tag}.json"

    def _array_path(self, key: str) -> Path:
        return self.folder / f"{self.tag}.{key}.npy"

    def load(self) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """``(arrays, meta)`` memory-mapped from disk, or None if the cache is absent or not trustworthy."""
        info = _read_json(self.manifest)
        if info is None:
            if self.manifest.exists():
                log.warning("%s: unreadable cache manifest; re-deriving", self.manifest)
            return None
        if not isinstance(info, dict) or info.get("format") != _CACHE_FORMAT:
            log.warning("%s: unknown cache format; re-deriving", self.manifest)
            return None
        for rel, (size, mtime) in info.get("sources", {}).items():
            src = self.folder / rel
            if src.exists() and _stat_key(src) != (size, mtime):
                log.info("%s: raw file %s changed since the cache was built; re-deriving", self.tag, src)
                return None
        arrays: dict[str, np.ndarray] = {}
        refreshed = False
        for key, rec in info.get("arrays", {}).items():
            path = self._array_path(key)
            problem = self._check_array_file(path, rec)
            if problem == "rehashed":
                refreshed = True
            elif problem:
                log.warning("%s: %s; re-deriving the cache", self.tag, problem)
                return None
            try:
                arr = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
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
        return arrays, info.get("meta", {})

    @staticmethod
    def _check_array_file(path: Path, rec: dict[str, Any]) -> str:
        if not path.is_file():
            return f"{path} is missing"
        size, mtime = _stat_key(path)
        if size != rec["size"]:
            return f"{path} has {size} bytes, expected {rec['size']} (truncated or overwritten)"
        if mtime != rec["mtime_ns"]:
            digest = hash_file(path, ("sha256",))["sha256"]
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
        records = {}
        for key, arr in arrays.items():
            arr = np.ascontiguousarray(arr)
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
            records[key] = {
                "dtype": str(arr.dtype),
                "shape": list(arr.shape),
                "size": size,
                "mtime_ns": mtime,
                "sha256": digest.hexdigest(),
            }
        src = {}
        for p in sources:
            p = Path(p)
            if p.exists():
                src[os.path.relpath(p, self.folder)] = list(_stat_key(p))
        payload = {"format": _CACHE_FORMAT, "tag": self.tag, "arrays": records, "sources": src,
                   "meta": meta or {}}
        write_json_atomic(self.manifest, payload)
        loaded = self.load()
        if loaded is None:  # pragma: no cover - only if the disk changes under us
            raise DatasetError(f"{self.tag}: the cache just written to {self.folder} cannot be read back")
        return loaded


def cached_arrays(
    cache: ArrayCache,
    build: Callable[[], tuple[dict[str, np.ndarray], dict[str, Any], Sequence[Path]]],
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The cached arrays of ``cache``, or ``build()`` them (under a folder lock) and cache them.

    ``build`` returns ``(arrays, meta, source_paths)``; it is called at most once per process and only
    when no trustworthy cache exists.
    """
    loaded = cache.load()
    if loaded is not None:
        return loaded
    with folder_lock(cache.folder):
        loaded = cache.load()  # another process may have built it while we waited
        if loaded is not None:
            return loaded
        arrays, meta, sources = build()
        try:
            return cache.save(arrays, meta, sources)
        except OSError as exc:
            log.warning("%s: cannot write the decoded cache in %s (%s); using the arrays in memory",
                        cache.tag, cache.folder, exc)
            return arrays, meta
