"""The on-disk cache: where files live, what the sidecars hold, and how a cached file is trusted.

Layout (the same one a mirror serves, so a cache directory can be copied or served as a mirror)::

    <cache_dir()>/files/<host>/<path>                  verified bytes, only ever written by os.replace
    <cache_dir()>/files/<host>/.<name>.hubkit.json     sidecar: url, sha256, md5, size, etag, fingerprint
    <cache_dir()>/files/<host>/.<name>.lock            the download lock (never deleted while in use)
    <cache_dir()>/files/<host>/.<name>.<owner>.partial        a download in progress (or interrupted)
    <cache_dir()>/files/<host>/.<name>.<owner>.partial.json   its resume validators (url, etag, size)

``<host>`` is the URL's host name, with ``_<port>`` appended when the URL names a port. A file fetched
with ``dest=DIR`` gets the same dot-files beside it in ``DIR``.

A cached file is trusted without re-hashing when its stat fingerprint ``(size, mtime_ns, inode)`` is the
one recorded in its sidecar at commit time; any other fingerprint (the file was edited, copied, restored
from a backup) makes the next use re-hash it once and re-record it.

This module does no network I/O and imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hubkit.errors import CacheError, DownloadError, HubkitError

logger = logging.getLogger("hubkit.hub.cache")

SIDECAR_SUFFIX = ".hubkit.json"
PARTIAL_SUFFIX = ".partial"
LOCK_SUFFIX = ".lock"
HASH_CHUNK = 1 << 20
# A partial owned by another host counts as abandoned once nobody has written to it for this long.
FOREIGN_PARTIAL_STALE_S = 3600.0

_TRUE = {"1", "true", "yes", "on"}


def cache_dir() -> Path:
    """The cache root: ``$HUBKIT_HOME`` if set, else ``platformdirs.user_cache_dir("hubkit")``.

    The directory is not created here; writers create what they need.
    """
    home = os.environ.get("HUBKIT_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("hubkit"))


def files_dir() -> Path:
    """``<cache_dir()>/files``, the root of the mirror-shaped file tree."""
    return cache_dir() / "files"


# https://bford.info/cachedir/: backup and sync tools that honour it skip the tagged directory.
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by hubkit.\n"
    "# Its contents are downloads that hubkit can fetch again: 'hubkit cache dir' shows where, 'hubkit cache' cleans.\n"
)


def tag_cache_dir(root: Path | None = None) -> None:
    """Put a ``CACHEDIR.TAG`` in the download cache root (``files_dir()``) if it has none; best effort."""
    root = files_dir() if root is None else root
    tag = root / "CACHEDIR.TAG"
    if tag.exists():
        return
    with contextlib.suppress(OSError):
        write_text_atomic(tag, CACHEDIR_TAG)


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


# ---------------------------------------------------------------- names and paths

_WIN_DRIVE = re.compile(r"^[A-Za-z]:")


def check_relative_name(name: str, *, what: str, error: type[HubkitError] = DownloadError) -> list[str]:
    """Split a relative path into safe segments, or raise ``error`` naming ``what``.

    Refused under both POSIX and Windows rules: absolute paths (``/x``, ``\\x``), drive and
    drive-relative paths (``C:\\x``, ``D:x``), UNC paths (``\\\\host\\share``), ``..`` segments, backslashes
    and NUL bytes. Empty and ``.`` segments are dropped. Returns the segments, at least one.
    """
    problem = None
    if not name:
        problem = "it is empty"
    elif "\x00" in name:
        problem = "it contains a NUL byte"
    elif name.startswith(("/", "\\")):
        problem = "it is an absolute path"
    elif _WIN_DRIVE.match(name):
        problem = "it starts with a Windows drive"
    elif "\\" in name:
        problem = "it contains a backslash (a path separator on Windows)"
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if problem is None and ".." in parts:
        problem = "it contains a '..' segment"
    if problem is None and not parts:
        problem = "it names no file"
    if problem is not None:
        raise error(f"Unsafe {what} {name!r}: {problem}. Expected a relative path below the target directory.")
    return parts


def url_host_dir(url: str) -> str:
    """The ``<host>`` directory for ``url``: host name, plus ``_<port>`` when the URL names a port."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        return "_local"
    host = (parts.hostname or "").lower().replace(":", "_")
    if not host:
        raise DownloadError(f"Cannot download {url!r}: the URL has no host. Expected http(s)://host/path.")
    try:
        port = parts.port
    except ValueError as e:
        raise DownloadError(f"Cannot download {url!r}: {e}.") from None
    return f"{host}_{port}" if port is not None else host


def url_relpath(url: str, filename: str | None = None) -> str:
    """The mirror/cache-relative path ``<host>/<path>`` of ``url`` (POSIX separators).

    ``filename`` replaces the URL's last path segment. A query string, when present, is kept apart by a
    ``q-<hash>`` directory in front of the file name, so ``?id=1`` and ``?id=2`` never share a file.
    """
    parts = urlsplit(url)
    segments = [unquote(s) for s in parts.path.split("/")]
    segments = [s for s in segments if s not in ("", ".")]
    if filename is not None:
        name_parts = check_relative_name(filename, what="filename")
        if len(name_parts) != 1:
            raise DownloadError(f"filename {filename!r} must be a single file name, without directories.")
        segments = [*segments[:-1], name_parts[0]] if segments else name_parts
    if not segments:
        raise DownloadError(
            f"Cannot tell a file name from {url!r}: its path is empty. Pass filename='name.ext'."
        )
    if parts.query:
        tag = "q-" + hashlib.sha256(parts.query.encode()).hexdigest()[:12]
        segments = [*segments[:-1], tag, segments[-1]]
    rel = "/".join(segments)
    check_relative_name(rel, what=f"path in URL {url!r}")
    return url_host_dir(url) + "/" + rel


def sidecar_path(final: Path) -> Path:
    return final.with_name("." + final.name + SIDECAR_SUFFIX)


def lock_path(final: Path) -> Path:
    return final.with_name("." + final.name + LOCK_SUFFIX)


def is_internal_name(name: str) -> bool:
    """Whether a directory entry is hubkit bookkeeping (sidecar, lock, partial), not cached content."""
    return name.startswith(".") and name.endswith((SIDECAR_SUFFIX, LOCK_SUFFIX, PARTIAL_SUFFIX, ".partial.json"))


# ---------------------------------------------------------------- sidecar records


@dataclass
class Record:
    """What the sidecar of a committed file says about it."""

    url: str
    sha256: str
    size: int
    fingerprint: list[int]
    md5: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    fetched_at: float = field(default_factory=time.time)


def fingerprint(st: os.stat_result) -> list[int]:
    """``[size, mtime_ns, inode]``: cheap to read, changes when the file is rewritten, copied or restored."""
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def read_record(final: Path) -> Record | None:
    """The sidecar of ``final``, or ``None`` when it is missing or unreadable (the file is then re-hashed)."""
    try:
        data = json.loads(sidecar_path(final).read_text())
        return Record(**{k: data[k] for k in Record.__dataclass_fields__ if k in data})
    except (OSError, ValueError, TypeError):
        return None


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` through a unique temp file and ``os.replace`` so readers never see half a file."""
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a unique temp file and ``os.replace`` so readers never see half a file."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True))


def write_record(final: Path, record: Record) -> None:
    write_json_atomic(sidecar_path(final), asdict(record))


def hash_file(path: Path, algorithms: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a file's content, one read for all ``algorithms``."""
    hashers = {a: hashlib.new(a) for a in algorithms}
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            for h in hashers.values():
                h.update(view[:n])
    return {a: h.hexdigest() for a, h in hashers.items()}


# ---------------------------------------------------------------- writers and their temp files

_HOST = re.sub(r"[^A-Za-z0-9]", "_", socket.gethostname())[:40] or "host"
_active_tokens: set[str] = set()
_active_lock = threading.Lock()


def new_owner_token() -> str:
    """A name part unique to this writer: ``<host>~<pid>~<random>``; registered as active until released."""
    token = f"{_HOST}~{os.getpid()}~{uuid.uuid4().hex[:10]}"
    with _active_lock:
        _active_tokens.add(token)
    return token


def release_owner_token(token: str) -> None:
    with _active_lock:
        _active_tokens.discard(token)


def owner_is_gone(token: str, mtime: float) -> bool:
    """Whether the writer that owns ``token`` can no longer touch its files.

    Same host: its process has exited, or it is this process and no call here holds the token (an
    earlier call was interrupted). Other host: nothing was written for ``FOREIGN_PARTIAL_STALE_S``.
    """
    host, _, rest = token.partition("~")
    pid_text, _, _ = rest.partition("~")
    if host != _HOST or not pid_text.isdigit():
        return time.time() - mtime > FOREIGN_PARTIAL_STALE_S
    pid = int(pid_text)
    if pid == os.getpid():
        with _active_lock:
            return token not in _active_tokens
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class Partial:
    """An interrupted or running download of ``final``: its bytes and its resume record."""

    path: Path
    token: str
    record: dict | None

    @property
    def record_path(self) -> Path:
        return self.path.with_name(self.path.name + ".json")


def partial_path(final: Path, token: str) -> Path:
    return final.with_name(f".{final.name}.{token}{PARTIAL_SUFFIX}")


def iter_partials(final: Path) -> Iterator[Partial]:
    """Partials of ``final`` in its directory, with their resume records when readable."""
    prefix = f".{final.name}."
    try:
        entries = list(os.scandir(final.parent))
    except OSError:
        return
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(PARTIAL_SUFFIX)):
            continue
        token = name[len(prefix) : -len(PARTIAL_SUFFIX)]
        if "~" not in token:
            continue
        path = Path(entry.path)
        try:
            record = json.loads(path.with_name(name + ".json").read_text())
        except (OSError, ValueError):
            record = None
        yield Partial(path, token, record)


def remove_partial(path: Path) -> None:
    """Delete a partial and its resume record; missing files are fine."""
    for p in (path, path.with_name(path.name + ".json")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def partial_is_abandoned(p: Partial) -> bool:
    try:
        mtime = p.path.stat().st_mtime
    except FileNotFoundError:
        return False
    return owner_is_gone(p.token, mtime)


# ---------------------------------------------------------------- walking the cache


@dataclass
class Entry:
    """One committed file under a cache or mirror root."""

    path: Path
    relpath: str
    size: int
    record: Record | None


# A cached hit refreshes its "last used" stamp (the sidecar's mtime) at most this often: one stat per hit,
# one utime an hour, so eviction can go by use without a write on every hit.
USE_STAMP_EVERY_S = 3600.0


def mark_used(final: Path) -> None:
    """Record that ``final`` was just served from the cache (for ``evict``); silent on a read-only cache."""
    side = sidecar_path(final)
    with contextlib.suppress(OSError):
        if time.time() - side.stat().st_mtime > USE_STAMP_EVERY_S:
            os.utime(side)


def last_used(entry: Entry) -> float:
    """When ``entry`` was last downloaded or served from the cache (within ``USE_STAMP_EVERY_S``)."""
    for path in (sidecar_path(entry.path), entry.path):
        with contextlib.suppress(OSError):
            return path.stat().st_mtime
    return 0.0


def iter_entries(root: Path | None = None) -> Iterator[Entry]:
    """Committed files under ``root`` (default: ``files_dir()``), skipping hubkit's own dot-files."""
    root = files_dir() if root is None else root
    if not root.is_dir():
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        top = Path(dirpath) == root
        for name in sorted(filenames):
            if is_internal_name(name) or (name.startswith(".") and ".tmp" in name) or (top and name == "CACHEDIR.TAG"):
                continue
            path = Path(dirpath) / name
            try:
                size = path.stat().st_size
            except OSError:
                continue
            yield Entry(path, path.relative_to(root).as_posix(), size, read_record(path))


def check_writable_dir(directory: Path) -> None:
    """Create ``directory`` (and parents) or raise ``CacheError`` saying how to fix it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CacheError(
            f"Cannot create the download directory {directory}: {e.strerror or e}. "
            "Set HUBKIT_HOME to a writable directory, or pass dest= a writable folder."
        ) from e
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CacheError(
            f"The download directory {directory} is not writable. "
            "Set HUBKIT_HOME to a writable directory, or pass dest= a writable folder."
        )


# ---------------------------------------------------------------- administration (hubkit cache ...)


@dataclass
class Verified:
    """The outcome of re-hashing one entry: ``status`` is "ok", "corrupt" or "recorded" (had no sidecar)."""

    entry: Entry
    status: str
    detail: str = ""


def verify_entries(root: Path | None = None) -> Iterator[Verified]:
    """Re-hash every committed file under ``root`` and compare with its sidecar.

    A file that matches gets its fingerprint refreshed (so later hits skip hashing again); a file
    without a sidecar gets one ("recorded"); a mismatch is reported as "corrupt" and left in place.
    """
    for entry in iter_entries(root):
        rec = entry.record
        algorithms = ("sha256", "md5") if rec is not None and rec.md5 else ("sha256",)
        try:
            digests = hash_file(entry.path, algorithms)
            st = entry.path.stat()
        except OSError as e:
            yield Verified(entry, "corrupt", f"cannot read: {e.strerror or e}")
            continue
        if rec is None:
            new = Record(url="", sha256=digests["sha256"], size=st.st_size, fingerprint=fingerprint(st))
            with contextlib.suppress(OSError):
                write_record(entry.path, new)
            yield Verified(entry, "recorded", f"sha256 {digests['sha256']}")
            continue
        problems = []
        if st.st_size != rec.size:
            problems.append(f"size {st.st_size}, recorded {rec.size}")
        for alg in algorithms:
            if digests[alg] != getattr(rec, alg):
                problems.append(f"{alg} {digests[alg]}, recorded {getattr(rec, alg)}")
        if problems:
            yield Verified(entry, "corrupt", "; ".join(problems))
            continue
        if rec.fingerprint != fingerprint(st):
            rec.fingerprint = fingerprint(st)
            with contextlib.suppress(OSError):
                write_record(entry.path, rec)
        yield Verified(entry, "ok")


def prune(root: Path | None = None, *, dry_run: bool = False, tmp_age_s: float = 3600.0) -> list[tuple[Path, int]]:
    """Remove leftovers under ``root``; returns ``(path, bytes)`` for each removed (or, dry run, removable) item.

    Leftovers: partial downloads whose writer is gone (and their resume records), resume records without
    a partial, sidecars and locks of files that no longer exist, temp files older than ``tmp_age_s``, and
    interrupted extraction staging directories.
    """
    import shutil

    root = files_dir() if root is None else root
    removed: list[tuple[Path, int]] = []

    def drop(path: Path, size: int) -> None:
        removed.append((path, size))
        if dry_run:
            return
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    if not root.is_dir():
        return removed
    now = time.time()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in list(dirnames):
            if name.startswith(".") and name.endswith(".extracting"):
                token = name[1:-len(".extracting")].rsplit(".", 1)[-1]
                path = here / name
                if "~" in token and owner_is_gone(token, path.stat().st_mtime):
                    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                    drop(path, size)
                dirnames.remove(name)
        names = set(filenames)
        for name in sorted(filenames):
            path = here / name
            try:
                st = path.stat()
            except OSError:
                continue
            if not name.startswith("."):
                continue
            if name.endswith(PARTIAL_SUFFIX):
                token = name[: -len(PARTIAL_SUFFIX)].rsplit(".", 1)[-1]
                if "~" in token and owner_is_gone(token, st.st_mtime):
                    drop(path, st.st_size)
                    if name + ".json" in names:
                        drop(here / (name + ".json"), 0)
            elif name.endswith(".partial.json"):
                if name[: -len(".json")] not in names:
                    drop(path, st.st_size)
            elif name.endswith(SIDECAR_SUFFIX):
                if name[1 : -len(SIDECAR_SUFFIX)] not in names:
                    drop(path, st.st_size)
            elif name.endswith(LOCK_SUFFIX):
                target = name[1 : -len(LOCK_SUFFIX)]
                has_partial = any(n.startswith(f".{target}.") and n.endswith(PARTIAL_SUFFIX) for n in names)
                if target not in names and not has_partial:
                    drop(path, 0)
            elif name.endswith(".tmp") and now - st.st_mtime > tmp_age_s:
                drop(path, st.st_size)
    return removed


def _remove_entry(entry: Entry) -> None:
    """Delete a committed file with its sidecar, lock and partials."""
    for p in iter_partials(entry.path):
        remove_partial(p.path)
    for path in (entry.path, sidecar_path(entry.path), lock_path(entry.path)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_entries(patterns: list[str], root: Path | None = None) -> list[Entry]:
    """Delete committed files whose cache path or recorded URL matches any glob in ``patterns``.

    The file, its sidecar, lock and partials all go. Returns the removed entries.
    """
    import fnmatch

    removed = []
    for entry in list(iter_entries(root)):
        url = entry.record.url if entry.record else ""
        if not any(fnmatch.fnmatchcase(entry.relpath, p) or (url and fnmatch.fnmatchcase(url, p)) for p in patterns):
            continue
        _remove_entry(entry)
        removed.append(entry)
    return removed


def evict(
    *,
    max_bytes: int | None = None,
    unused_for_s: float | None = None,
    root: Path | None = None,
    dry_run: bool = False,
) -> list[Entry]:
    """Delete the least recently used committed files: first every file unused for more than
    ``unused_for_s`` seconds, then the oldest-used ones until the files total at most ``max_bytes``.

    "Used" means downloaded or served as a cached hit (see ``mark_used``). A process that already has a file
    open keeps reading it on POSIX systems; a file that cannot be deleted is skipped. Returns the entries
    removed (or, with ``dry_run``, that would be).
    """
    if max_bytes is not None and max_bytes < 0:
        raise CacheError(f"max_bytes must be 0 or more, got {max_bytes}")
    if unused_for_s is not None and unused_for_s < 0:
        raise CacheError(f"unused_for_s must be 0 or more, got {unused_for_s}")
    entries = sorted(iter_entries(root), key=lambda e: (last_used(e), e.relpath))
    total = sum(e.size for e in entries)
    now = time.time()
    removed = []
    for entry in entries:
        stale = unused_for_s is not None and now - last_used(entry) > unused_for_s
        if not stale and (max_bytes is None or total <= max_bytes):
            continue
        if not dry_run:
            try:
                _remove_entry(entry)
            except OSError as e:  # e.g. open in another process on Windows
                logger.warning("could not evict %s: %s", entry.path, e)
                continue
        total -= entry.size
        removed.append(entry)
    return removed
