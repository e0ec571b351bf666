"""The on-disk cache: where files live, what the sidecars hold, one home directory and one file lock.

Layout (``files/`` is the same tree a mirror serves, so it can be copied or served as a mirror)::

    <home_dir()>/files/<host>/<path>                  verified bytes, only ever written by os.replace
    <home_dir()>/files/<host>/.<name>.hubkit.json     sidecar: url, sha256, md5, size, etag, fingerprint
    <home_dir()>/files/<host>/.<name>.<owner>.partial        a download in progress (or interrupted)
    <home_dir()>/files/<host>/.<name>.<owner>.partial.json   its resume validators (url, etag, size)
    <home_dir()>/locks/<key>.lock                     the lock of one target path (never deleted)

``<host>`` is the URL's host name, with ``_<port>`` appended when the URL names a port. A file fetched
with ``dest=DIR`` gets the same dot-files beside it in ``DIR``; its lock still lives in ``locks/``, so a
mirror or a dataset folder never holds a lock file.

A cached file is trusted without re-hashing when its stat fingerprint ``(size, mtime_ns, inode)`` is the
one recorded in its sidecar at commit time; any other fingerprint (the file was edited, copied, restored
from a backup) makes the next use re-hash it once and re-record it (``verify.verify_file``).

This module does no network I/O and imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import SplitResult, unquote, urlsplit

from hubkit.errors import CacheError, DownloadError, HubkitError

logger = logging.getLogger("hubkit.hub.cache")

SIDECAR_SUFFIX = ".hubkit.json"
PARTIAL_SUFFIX = ".partial"
# Before locks moved to <home>/locks/, each file had its lock beside it: caches written then still hold
# these. They are bookkeeping (never listed as content) and ``prune`` removes them.
OLD_LOCK_SUFFIX = ".lock"
# A partial owned by another host counts as abandoned once nobody has written to it for this long.
FOREIGN_PARTIAL_STALE_S = 3600.0
LOCK_LOG_EVERY_S = 15.0

_TRUE = {"1", "true", "yes", "on"}


def home_dir() -> Path:
    """hubkit's one home: ``$HUBKIT_HOME`` if set, else ``platformdirs.user_cache_dir("hubkit")``.

    Downloads live in ``files/``, locks in ``locks/``. Nothing is created here; writers create what they
    need. Datasets read the same variable through :func:`data_home`.
    """
    return _home("user_cache_dir")


def data_home() -> Path:
    """Where datasets live (``<data_home()>/datasets``): ``$HUBKIT_HOME`` if set, the same folder as
    :func:`home_dir`; else ``platformdirs.user_data_dir("hubkit")``.

    The defaults differ on purpose: a prepared dataset is data a user keeps, not a cache that cleaners may
    wipe, and datasets have always lived there (moving the default would hide users' data from them).
    """
    return _home("user_data_dir")


def _home(platform_default: str) -> Path:
    """The one reader of ``$HUBKIT_HOME``; without it, ``platformdirs.<platform_default>("hubkit")``."""
    home = os.environ.get("HUBKIT_HOME")
    if home:
        return Path(home).expanduser()
    import platformdirs

    return Path(getattr(platformdirs, platform_default)("hubkit"))


def cache_dir() -> Path:
    """The download cache root, the same directory as :func:`home_dir` (``hubkit cache dir`` prints it)."""
    return home_dir()


def files_dir() -> Path:
    """``<home_dir()>/files``, the root of the mirror-shaped file tree."""
    return home_dir() / "files"


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
        write_bytes_atomic(tag, CACHEDIR_TAG.encode())


def env_flag(name: str) -> bool:
    """Whether the environment variable ``name`` is set to a true value (1, true, yes, on)."""
    return os.environ.get(name, "").strip().lower() in _TRUE


# ---------------------------------------------------------------- names, URLs and paths

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


def parse_url(url: str, *, what: str = "URL") -> SplitResult:
    """Split and validate a download URL: ``http(s)://host[:port]/path`` or ``file://[localhost]/path``.

    Refused with a :class:`DownloadError` that says what to fix: text that is not valid Unicode (a lone
    surrogate, from undecodable bytes), a malformed IPv6 literal or port, any other scheme, and a host
    that is not a DNS name or an IP address (``..``, ``.``, empty labels, ``%``, ``/``): the host becomes
    a directory of the cache and of ``file://`` mirrors, so it must never climb out of them.
    """
    fix = "Pass a URL like https://host/path/file.bin (percent-encode anything that is not plain text)."
    if not isinstance(url, str) or not url:
        raise DownloadError(f"{what} must be a non-empty string, got {url!r}. {fix}")
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        raise DownloadError(f"{what} {url!r} is not valid text (it holds a lone surrogate, from bytes that are not "
                            f"UTF-8). {fix}") from None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:  # "Invalid IPv6 URL", "Port out of range", ...
        raise DownloadError(f"{what} {url!r} is malformed: {e}. {fix}") from None
    if parts.scheme not in ("http", "https", "file"):
        raise DownloadError(f"{what} {url!r} is not an http://, https:// or file:// URL. {fix}")
    host = parts.hostname or ""
    if parts.scheme == "file":
        if host not in ("", "localhost"):
            raise DownloadError(f"{what} {url!r} names the host {host!r}; a file:// URL is local: file:///path.")
        return parts
    if not _valid_host(host):
        raise DownloadError(f"{what} {url!r} has the host {host or '(none)'!r}, which is not a DNS name or an IP "
                            f"address. {fix}")
    if port == 0:
        raise DownloadError(f"{what} {url!r} names port 0. {fix}")
    return parts


def _valid_host(host: str) -> bool:
    if not host:
        return False
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return True
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return all(label and len(label) <= 63 and not label.startswith("-") and not label.endswith("-")
               and all(c.isalnum() or c in "-_" for c in label) for label in labels)


def url_host_dir(url: str) -> str:
    """The ``<host>`` directory for ``url``: host name, plus ``_<port>`` when the URL names a port."""
    parts = parse_url(url)
    if parts.scheme == "file":
        return "_local"
    host = parts.hostname.lower().replace(":", "_")
    return f"{host}_{parts.port}" if parts.port is not None else host


def url_relpath(url: str, filename: str | None = None) -> str:
    """The mirror/cache-relative path ``<host>/<path>`` of ``url`` (POSIX separators).

    ``filename`` replaces the URL's last path segment. A query string, when present, is kept apart by a
    ``q-<hash>`` directory in front of the file name, so ``?id=1`` and ``?id=2`` never share a file.
    """
    host = url_host_dir(url)
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
    return host + "/" + rel


def sidecar_path(final: Path) -> Path:
    return final.with_name("." + final.name + SIDECAR_SUFFIX)


def is_internal_name(name: str) -> bool:
    """Whether a directory entry is hubkit bookkeeping (sidecar, partial, old lock), not cached content."""
    return name.startswith(".") and name.endswith((SIDECAR_SUFFIX, PARTIAL_SUFFIX, ".partial.json", OLD_LOCK_SUFFIX))


# ---------------------------------------------------------------- writing small files

def write_all(fd: int, data: memoryview | bytes) -> None:
    """Write every byte of ``data`` to ``fd``: the one place hubkit's downloads and records reach ``os.write``."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` through a unique temp file and ``os.replace`` so readers never see half a file.

    Raises ``OSError`` (a full disk included); the temp file never outlives a failure.
    """
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a unique temp file and ``os.replace`` so readers never see half a file."""
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())


def disk_error(e: OSError, where: Path, what: str) -> CacheError:
    """The :class:`CacheError` for an ``OSError`` while writing ``what`` in ``where``, with the fix."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(f"No space left on the device holding {where} while writing {what}. Free some space, or "
                          "set HUBKIT_HOME (or dest=) to a larger disk.")
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return CacheError(f"Cannot write {what} in {where}: {e.strerror or e} (a read-only cache?). Set HUBKIT_HOME "
                          "to a writable directory, or pass dest= a writable folder.")
    return CacheError(f"Cannot write {what} in {where}: {e.strerror or e}.")


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


_HEX = frozenset("0123456789abcdef")


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX


def _record_from(data: object) -> Record | None:
    """A :class:`Record` from parsed JSON, or ``None`` when any field has the wrong type or shape."""
    if not isinstance(data, dict):
        return None

    def is_int(v: object) -> bool:
        return type(v) is int and v >= 0

    def optional_str(key: str) -> bool:
        return data.get(key) is None or isinstance(data.get(key), str)

    fp = data.get("fingerprint")
    ok = (isinstance(data.get("url"), str) and _is_hex(data.get("sha256"), 64) and is_int(data.get("size"))
          and isinstance(fp, list) and len(fp) == 3 and all(is_int(v) for v in fp)
          and (data.get("md5") is None or _is_hex(data.get("md5"), 32))
          and optional_str("etag") and optional_str("last_modified")
          and isinstance(data.get("fetched_at", 0.0), int | float) and not isinstance(data.get("fetched_at"), bool))
    if not ok:
        return None
    return Record(**{k: data[k] for k in Record.__dataclass_fields__ if k in data})


def read_record(final: Path) -> Record | None:
    """The sidecar of ``final``, or ``None`` when it is missing, unreadable or ill-typed (the file is then
    re-hashed and the sidecar rewritten)."""
    try:
        data = json.loads(sidecar_path(final).read_bytes())
    except (OSError, ValueError):
        return None
    record = _record_from(data)
    if record is None:
        logger.info("ignoring the ill-formed sidecar of %s", final)
    return record


def write_record(final: Path, record: Record) -> None:
    write_json_atomic(sidecar_path(final), asdict(record))


# ---------------------------------------------------------------- writers, their temp files and the lock

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
    if host != _HOST or not (pid_text.isascii() and pid_text.isdigit()):
        return time.time() - mtime > FOREIGN_PARTIAL_STALE_S
    pid = int(pid_text)
    if pid == os.getpid():
        with _active_lock:
            return token not in _active_tokens
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


def lock_path(target: Path) -> Path:
    """The lock file of ``target``: ``<home_dir()>/locks/<hash of its absolute path>.lock``."""
    key = hashlib.sha256(os.fsencode(os.path.abspath(target))).hexdigest()[:32]
    return home_dir() / "locks" / f"{key}.lock"


@contextlib.contextmanager
def file_lock(target: Path) -> Iterator[bool]:
    """Hold the inter-process lock of ``target`` (a file being downloaded, a folder being prepared).

    Waits while another process holds it, logging every ``LOCK_LOG_EVERY_S``. Yields whether the lock is
    held: where it cannot be taken (a read-only home, a filesystem without locks) the caller goes on
    without it, so correctness must never depend on it (writers use unique temp names and atomic
    renames; the lock only saves duplicate work). Lock files are never deleted: deleting one while a
    process waits on it would let a third process lock a different file of the same name.
    """
    import filelock

    path = lock_path(target)
    lock = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = filelock.FileLock(str(path))
    except OSError as e:
        logger.warning("cannot lock %s (%s); going on without the lock", target, e)
    held = False
    while lock is not None and not held:
        try:
            lock.acquire(timeout=LOCK_LOG_EVERY_S)
            held = True
        except filelock.Timeout:
            logger.info("waiting for another process working on %s", target)
        except (NotImplementedError, OSError) as e:
            logger.warning("cannot lock %s (%s); going on without the lock", target, e)
            break
    try:
        yield held
    finally:
        if held:
            with contextlib.suppress(OSError):
                lock.release()


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
            record = json.loads(path.with_name(name + ".json").read_bytes())
        except (OSError, ValueError):
            record = None
        yield Partial(path, token, record if isinstance(record, dict) else None)


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
    except FileExistsError:
        raise CacheError(f"Cannot create the download directory {directory}: a file of that name (or above it) is "
                         "in the way. Remove it, or pass dest= another folder.") from None
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


def prune(root: Path | None = None, *, dry_run: bool = False, tmp_age_s: float = 3600.0) -> list[tuple[Path, int]]:
    """Remove leftovers under ``root``; returns ``(path, bytes)`` for each removed (or, dry run, removable) item.

    Leftovers: partial downloads whose writer is gone (and their resume records), resume records without
    a partial, sidecars of files that no longer exist, lock files that earlier versions kept beside each
    file, temp files older than ``tmp_age_s``, and interrupted extraction staging directories.
    """
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
            elif name.endswith(OLD_LOCK_SUFFIX):
                drop(path, 0)
            elif name.endswith(".tmp") and now - st.st_mtime > tmp_age_s:
                drop(path, st.st_size)
    return removed


def _remove_entry(entry: Entry) -> None:
    """Delete a committed file with its sidecar and partials; raises ``CacheError`` when it cannot."""
    try:
        for p in iter_partials(entry.path):
            remove_partial(p.path)
        for path in (entry.path, sidecar_path(entry.path)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    except OSError as e:
        raise CacheError(f"Cannot remove {entry.path}: {e.strerror or e}. The cache at {entry.path.parent} is "
                         "read-only for this user; run as a user who may write there, or point HUBKIT_HOME at "
                         "your own cache.") from e


def remove_entries(patterns: list[str], root: Path | None = None) -> list[Entry]:
    """Delete committed files whose cache path or recorded URL matches any glob in ``patterns``.

    The file, its sidecar and partials all go. Returns the removed entries; raises ``CacheError`` (after
    removing what it could) when a file cannot be deleted.
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
            except CacheError as e:  # e.g. open in another process on Windows, or a read-only cache
                logger.warning("could not evict %s: %s", entry.path, e)
                continue
        total -= entry.size
        removed.append(entry)
    return removed
