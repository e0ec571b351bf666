"""Verified, resumable, mirrored, offline-capable downloads that are safe under concurrency.

    from hubkit.hub import fetch, fetch_many, Resource
    path = fetch("https://host/data/train.bin", sha256="9f86d0...")     # -> <cache>/files/host/data/train.bin

What ``fetch`` promises:

- **Only verified bytes at the final name.** Bytes stream into a per-writer temp file next to the
  target (same volume), hashed as they arrive; size and hash are checked, the file is fsynced and
  ``os.replace``d into place. A mismatch deletes the temp file and moves on to the next source.
- **Cached hits are free.** A sidecar records url, sha256 (always, even for md5-only or prefix-only
  requests), size, ETag and the stat fingerprint; a hit compares the fingerprint and opens no socket
  and re-hashes nothing. A changed fingerprint triggers one re-hash. ``hubkit cache verify`` re-hashes
  everything.
- **Resume across runs.** An interrupted download (dropped connection, Ctrl-C, SIGKILL) keeps its
  partial file and validators; the next attempt sends ``Range`` + ``If-Range``. A 200 answer restarts
  from zero, a 416 re-checks the partial, a changed ETag restarts.
- **Retries** with backoff and jitter on timeouts, dropped connections, 408/425/429/5xx (``Retry-After``
  honoured), never on 401/403/404; the retry budget resets whenever bytes arrive. See ``_http``.
- **One download for many callers.** A file lock per target makes concurrent threads and processes
  wait for the first downloader; correctness does not depend on the lock (unique temp names, atomic
  rename), so a lock that silently does nothing (some network filesystems) only costs bandwidth.
- **Offline.** ``HUBKIT_OFFLINE=1`` or ``offline=True`` uses the cache and ``file://`` sources only and
  never opens a socket (requests is not even imported); a miss raises ``OfflineError``.
- **Safety.** https is never downgraded by a redirect; credentials are not sent to another origin;
  free space is checked before the first byte; a full disk leaves no partial behind.

Sources are tried in this order, each until it succeeds or fails for good:
1. every ``HUBKIT_MIRROR`` base (comma-separated ``http(s)://`` or ``file://`` URLs), as
   ``<base>/<host>/<path>`` — the local, trusted mirrors first;
2. the primary ``url``;
3. ``mirrors``, in the order given (registries list upstream mirrors from most to least healthy).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import queue
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

from hubkit.errors import CacheError, DownloadError, HubkitError, IntegrityError, OfflineError
from hubkit.hub import _http, _progress
from hubkit.hub.cache import (
    HASH_CHUNK,
    Record,
    check_writable_dir,
    env_flag,
    files_dir,
    fingerprint,
    hash_file,
    iter_partials,
    lock_path,
    mark_used,
    new_owner_token,
    partial_is_abandoned,
    partial_path,
    read_record,
    release_owner_token,
    remove_partial,
    tag_cache_dir,
    url_relpath,
    write_json_atomic,
    write_record,
)

__all__ = ["Resource", "copy_into", "fetch", "fetch_many"]

logger = logging.getLogger("hubkit.hub.download")

# Keep this much free beyond the file itself, so a download never fills a disk to the last byte.
DISK_MARGIN = 16 << 20
LOCK_LOG_EVERY_S = 15.0
_MAX_RESTARTS = 3
_HASH_BUFFERS = 4
_HEX = set("0123456789abcdef")
# Flush-behind (Linux): every WRITEBACK_STEP freshly written bytes, start their writeback to disk, wait for
# the step before it to be on disk and drop those pages from the page cache. The fsync before the commit
# then finds almost nothing left to write, dirty memory stays under two steps, and the page cache recycles
# the same few pages instead of taking 1 GiB of fresh ones per GiB downloaded (on a VM, first-touch pages
# cost 2-4x the kernel time: bench/RESULTS.md). The committed file is read back from disk by its first
# reader. 0 disables.
WRITEBACK_STEP = 8 << 20


# ---------------------------------------------------------------- what to fetch


@dataclass(frozen=True)
class Resource:
    """One downloadable file, declared as data (the rows of dataset and model tables).

    ``url`` is the primary source; ``mirrors`` are full alternative URLs tried after it, in order.
    Any of ``sha256`` (64 hex), ``md5`` (32 hex), ``sha256_prefix`` (torch.hub-style leading hex digits)
    and ``size`` (bytes) is checked before the file is committed. ``filename`` overrides the name taken
    from the URL.
    """

    url: str
    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None
    mirrors: tuple[str, ...] = ()
    filename: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.url, str) or not self.url:
            raise DownloadError(f"Resource.url must be a non-empty URL string, got {self.url!r}.")
        if isinstance(self.mirrors, str):
            raise DownloadError(f"Resource.mirrors must be a sequence of URLs, got the string {self.mirrors!r}.")
        object.__setattr__(self, "mirrors", tuple(self.mirrors))
        _Expect.of(self.sha256, self.md5, self.sha256_prefix, self.size)  # validates


@dataclass(frozen=True)
class _Expect:
    """The checks a download must pass; hashes are lower-case hex."""

    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, sha256: str | None, md5: str | None, sha256_prefix: str | None, size: int | None) -> _Expect:
        def hexdigest(name: str, value: str | None, lengths: range) -> str | None:
            if value is None:
                return None
            v = value.strip().lower() if isinstance(value, str) else value
            if not isinstance(v, str) or len(v) not in lengths or not set(v) <= _HEX:
                raise DownloadError(
                    f"{name} must be a hex digest of {lengths.start}"
                    + (f"-{lengths.stop - 1}" if len(lengths) > 1 else "")
                    + f" characters, got {value!r}."
                )
            return v

        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise DownloadError(f"size must be a non-negative int (bytes), got {size!r}.")
        return cls(
            hexdigest("sha256", sha256, range(64, 65)),
            hexdigest("md5", md5, range(32, 33)),
            hexdigest("sha256_prefix", sha256_prefix, range(1, 65)),
            size,
        )

    @property
    def algorithms(self) -> tuple[str, ...]:
        return ("sha256", "md5") if self.md5 else ("sha256",)

    def problem(self, size: int, digests: dict[str, str]) -> str | None:
        """What is wrong with content of ``size`` bytes and these digests, or ``None`` when it passes."""
        if self.size is not None and size != self.size:
            return f"size mismatch: expected {self.size} bytes, got {size}"
        if self.sha256 and digests.get("sha256") != self.sha256:
            return f"sha256 mismatch: expected {self.sha256}, got {digests.get('sha256')}"
        if self.sha256_prefix and not digests.get("sha256", "").startswith(self.sha256_prefix):
            return f"sha256 mismatch: expected a hash starting {self.sha256_prefix}, got {digests.get('sha256')}"
        if self.md5 and digests.get("md5") != self.md5:
            return f"md5 mismatch: expected {self.md5}, got {digests.get('md5')}"
        return None

    def describe(self) -> str:
        parts = []
        if self.sha256:
            parts.append(f"sha256 {self.sha256}")
        elif self.sha256_prefix:
            parts.append(f"sha256 {self.sha256_prefix}...")
        if self.md5:
            parts.append(f"md5 {self.md5}")
        if self.size is not None:
            parts.append(f"{self.size} bytes")
        return ", ".join(parts) if parts else "no hash given"


@dataclass
class _SourceFailure(Exception):
    url: str
    reason: str
    integrity: bool = False


# ---------------------------------------------------------------- public API


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    sha256_prefix: str | None = None,
    size: int | None = None,
    mirrors: Sequence[str] = (),
    dest: str | os.PathLike | None = None,
    filename: str | None = None,
    progress: bool | None = None,
    offline: bool | None = None,
) -> Path:
    """Return a local path to the verified content of ``url``, downloading it only when needed.

    Args:
        url: ``http(s)://`` or ``file://`` URL of the file.
        sha256, md5, sha256_prefix, size: checks the bytes must pass before they are committed (any
            subset; with none, the file is committed as received and its sha256 recorded).
        mirrors: alternative full URLs, tried after ``HUBKIT_MIRROR`` bases and the primary URL, in order.
        dest: ``None`` caches at ``<cache_dir()>/files/<host>/<path>``; a directory writes
            ``dest/<filename>`` with the same verification, sidecar and locking.
        filename: file name to use instead of the URL's last path segment.
        progress: ``True``/``False`` force the bar on/off; ``None`` shows it when stderr is a terminal.
        offline: ``None`` reads ``HUBKIT_OFFLINE``; ``True`` serves from the cache and ``file://`` sources only.

    Returns:
        The path of the verified file.

    Raises:
        IntegrityError: every source failed and at least one delivered bytes that failed a check.
        DownloadError: every source failed (the message lists each URL and why).
        OfflineError: offline and neither cached nor on a ``file://`` source.
        CacheError: the target directory is not writable or the disk is full.
    """
    if isinstance(mirrors, str):
        raise DownloadError(f"mirrors must be a sequence of URLs, got the string {mirrors!r}; wrap it: (url,).")
    expect = _Expect.of(sha256, md5, sha256_prefix, size)
    final = _target_path(url, dest, filename)
    reporter = _progress.file_progress(final.name, progress)
    try:
        return _fetch(url, expect, tuple(mirrors), final, filename, _resolve_offline(offline), reporter)
    finally:
        reporter.close()


def fetch_many(
    requests: Sequence[Resource | dict],
    *,
    max_workers: int = 4,
    progress: bool | None = None,
    dest: str | os.PathLike | None = None,
) -> list[Path]:
    """Fetch several files in parallel threads with one combined progress bar.

    ``requests`` holds ``Resource`` objects or dicts of ``Resource`` fields. Returns the paths in the
    same order. Every file is attempted even when some fail; then the failure is raised (several
    failures are combined into one error listing each file, an ``OfflineError`` when all are offline
    misses).
    """
    resources = [_as_resource(r, i) for i, r in enumerate(requests)]
    if not resources:
        return []
    offline = _resolve_offline(None)
    known = sum(r.size or 0 for r in resources)
    bar = _progress.SharedBar(len(resources), known, progress)

    def one(r: Resource) -> Path:
        child = bar.child(r.size)
        expect = _Expect.of(r.sha256, r.md5, r.sha256_prefix, r.size)
        final = _target_path(r.url, dest, r.filename)
        path = _fetch(r.url, expect, r.mirrors, final, r.filename, offline, child)
        child.skip()
        return path

    try:
        with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(resources)))) as pool:
            futures = [pool.submit(one, r) for r in resources]
            outcomes: list[Path | BaseException] = []
            for f in futures:
                try:
                    outcomes.append(f.result())
                except HubkitError as e:
                    outcomes.append(e)
    finally:
        bar.close()
    errors = [(r, e) for r, e in zip(resources, outcomes) if isinstance(e, BaseException)]
    if len(errors) == 1:
        raise errors[0][1]
    if errors:
        kind = OfflineError if all(isinstance(e, OfflineError) for _, e in errors) else (
            IntegrityError if any(isinstance(e, IntegrityError) for _, e in errors) else DownloadError
        )
        detail = "\n".join(f"* {r.url}:\n  {str(e).replace(chr(10), chr(10) + '  ')}" for r, e in errors)
        raise kind(f"{len(errors)} of {len(resources)} files could not be fetched:\n{detail}")
    return [p for p in outcomes if isinstance(p, Path)]


def copy_into(path: str | os.PathLike, final: str | os.PathLike, *, sha256: str | None = None) -> Path:
    """Copy a local file to ``final`` with fetch's guarantees (verified, atomic, sidecar, lock).

    Used by ``hubkit mirror sync`` to place cached files into a mirror tree. A ``final`` that already
    holds the right content is left alone. Returns ``final``.
    """
    final = Path(final)
    expect = _Expect.of(sha256, None, None, None)
    return _fetch(Path(path).resolve().as_uri(), expect, (), final, None, False, _progress.Progress())


# ---------------------------------------------------------------- resolution


def _as_resource(r: Resource | dict, index: int) -> Resource:
    if isinstance(r, Resource):
        return r
    if isinstance(r, dict):
        allowed = {f.name for f in fields(Resource)}
        unknown = sorted(set(r) - allowed)
        if unknown or "url" not in r:
            raise DownloadError(
                f"fetch_many request #{index} is not a valid resource: "
                + (f"unknown keys {unknown}; " if unknown else "missing 'url'; ")
                + f"expected keys among {sorted(allowed)}."
            )
        return Resource(**r)
    raise DownloadError(f"fetch_many request #{index} must be a Resource or a dict, got {type(r).__name__}.")


def _resolve_offline(offline: bool | None) -> bool:
    return env_flag("HUBKIT_OFFLINE") if offline is None else bool(offline)


def _is_file_url(url: str) -> bool:
    return url.startswith("file:")


def _file_url_path(url: str) -> Path:
    return Path(url2pathname(unquote(urlsplit(url).path)))


def _target_path(url: str, dest: str | os.PathLike | None, filename: str | None) -> Path:
    scheme = urlsplit(url).scheme
    if scheme not in ("http", "https", "file"):
        raise DownloadError(f"Cannot download {url!r}: expected an http://, https:// or file:// URL.")
    rel = url_relpath(url, filename)
    if dest is None:
        return files_dir().joinpath(*rel.split("/"))
    return Path(dest).expanduser() / rel.rsplit("/", 1)[1]


def _mirror_bases() -> list[str]:
    bases = []
    for raw in os.environ.get("HUBKIT_MIRROR", "").split(","):
        base = raw.strip().rstrip("/")
        if not base:
            continue
        if urlsplit(base).scheme not in ("http", "https", "file"):
            raise DownloadError(
                f"HUBKIT_MIRROR entry {raw.strip()!r} is not an http://, https:// or file:// URL. "
                "Expected comma-separated base URLs such as file:///srv/hubkit-mirror."
            )
        bases.append(base)
    return bases


def _sources(url: str, mirrors: Sequence[str], filename: str | None) -> list[str]:
    out: list[str] = []
    if not _is_file_url(url):
        rel = quote(url_relpath(url, filename))
        out.extend(f"{base}/{rel}" for base in _mirror_bases())
    out.append(url)
    out.extend(mirrors)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- the fetch itself


def _fetch(
    url: str,
    expect: _Expect,
    mirrors: Sequence[str],
    final: Path,
    filename: str | None,
    offline: bool,
    reporter: _progress.Progress,
) -> Path:
    # A hit is answered before anything is written or locked: read-only caches work.
    if _cached(final, expect):
        return final
    sources = _sources(url, mirrors, filename)
    if offline:
        local = [s for s in sources if _is_file_url(s)]
        if not local:
            raise OfflineError(
                f"Offline mode is on (HUBKIT_OFFLINE or offline=True) and {url} is not cached at {final} "
                f"({expect.describe()}); no file:// mirror is configured. Run once online to cache it, "
                "or set HUBKIT_MIRROR=file:///path/to/mirror."
            )
        sources = local
    check_writable_dir(final.parent)
    if final.is_relative_to(files_dir()):
        tag_cache_dir()
    with _download_lock(final):
        if _cached(final, expect):  # another process finished it while we waited
            return final
        failures: list[_SourceFailure] = []
        for src in sources:
            try:
                if _is_file_url(src):
                    _copy_file_source(src, final, expect, reporter)
                else:
                    _download(src, final, expect, reporter)
                return final
            except _SourceFailure as f:
                logger.info("could not fetch %s: %s", f.url, f.reason)
                failures.append(f)
    raise _combined_error(url, final, expect, failures, offline)


def _combined_error(
    url: str, final: Path, expect: _Expect, failures: list[_SourceFailure], offline: bool
) -> DownloadError:
    lines = "\n".join(f"  - {f.url}: {f.reason}" for f in failures)
    head = f"Could not fetch {final.name} ({expect.describe()}) from any of {len(failures)} source(s):\n{lines}\n"
    if offline:
        return OfflineError(
            head + f"Offline mode is on and {url} is not cached at {final}. Run once online, or fix the "
            "file:// mirror."
        )
    if any(f.integrity for f in failures):
        return IntegrityError(
            head + "The bytes received do not match the expected hash/size. If the file changed upstream, "
            "update its hash; otherwise set HUBKIT_MIRROR to a mirror with the right file."
        )
    return DownloadError(
        head + "Check your network and proxy settings, or set HUBKIT_MIRROR to a mirror that has the file."
    )


def _cached(final: Path, expect: _Expect) -> bool:
    """Whether ``final`` already holds content that passes ``expect``; re-hashes only on a changed fingerprint."""
    try:
        st = final.stat()
    except OSError:
        return False
    if expect.size is not None and st.st_size != expect.size:
        logger.info("cached %s has %d bytes, expected %d; fetching again", final, st.st_size, expect.size)
        return False
    record = read_record(final)
    trusted = record is not None and record.fingerprint == fingerprint(st) and bool(record.sha256)
    digests: dict[str, str] = {}
    if trusted:
        digests["sha256"] = record.sha256
        if record.md5:
            digests["md5"] = record.md5
    missing = [a for a in expect.algorithms if a not in digests]
    if missing:
        logger.info("hashing %s (%s)", final, "no sidecar" if record is None else "changed since it was cached")
        digests.update(hash_file(final, tuple(dict.fromkeys(["sha256", *missing]))))
    problem = expect.problem(st.st_size, digests)
    if problem is not None:
        logger.warning("cached %s does not match (%s); fetching again", final, problem)
        return False
    if missing:
        url = record.url if record is not None else ""
        new = Record(url=url, sha256=digests["sha256"], md5=digests.get("md5"), size=st.st_size,
                     fingerprint=fingerprint(st),
                     etag=record.etag if record else None, last_modified=record.last_modified if record else None)
        with contextlib.suppress(OSError):  # a read-only cache still serves the hit
            write_record(final, new)
    else:
        mark_used(final)
    return True


@contextlib.contextmanager
def _download_lock(final: Path) -> Iterator[None]:
    """Hold the per-file download lock; waits (logging every ``LOCK_LOG_EVERY_S``) while another holds it.

    Where the filesystem cannot lock, continues without: correctness never depends on this lock.
    """
    import filelock

    lock = filelock.FileLock(str(lock_path(final)))
    held = False
    while not held:
        try:
            lock.acquire(timeout=LOCK_LOG_EVERY_S)
            held = True
        except filelock.Timeout:
            logger.info("waiting for another download of %s to finish", final)
        except (NotImplementedError, OSError) as e:
            logger.warning("cannot lock %s (%s); downloading without the lock", final, e)
            break
    try:
        yield
    finally:
        if held:
            with contextlib.suppress(OSError):
                lock.release()


def _free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    """libc's ``sync_file_range(fd, offset, nbytes, flags)``, or None where it does not exist."""
    if not sys.platform.startswith("linux") or not hasattr(os, "posix_fadvise"):
        return None
    try:
        import ctypes

        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int
    return call


_SYNC_RANGE_START = 2  # SYNC_FILE_RANGE_WRITE
_SYNC_RANGE_WAIT = 7  # SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER
_sync_range = _sync_file_range()


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class _Writer:
    """Appends to one partial file and hashes what it holds, on a helper thread.

    Chunks travel in pooled buffers: ``borrow`` one, fill it, ``put`` it. ``put`` writes to disk at
    once (so ``size`` is what the file holds and a full disk fails the caller) and queues the buffer
    for hashing; the hashing thread gives it back to the pool. Hashing thus overlaps the next network
    read and disk write (hashlib and socket reads release the GIL), which on a busy 2-core machine
    halves the time of a verified download. Everything that reads the hash state drains the queue first.
    """

    path: Path
    algorithms: tuple[str, ...]
    fd: int = -1
    size: int = 0
    head: bytes = b""
    hashers: dict = field(default_factory=dict)
    _flush_start: int = 0  # [_flush_start, _flush_end): writeback started, pages still cached
    _flush_end: int = 0
    _pool: queue.Queue | None = None
    _todo: queue.Queue | None = None
    _thread: threading.Thread | None = None

    def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self.size = self._flush_start = self._flush_end = os.fstat(self.fd).st_size
        self.hashers = {a: hashlib.new(a) for a in self.algorithms}
        if self.size:  # resuming: hash what is already there
            with open(self.path, "rb", buffering=0) as f:
                buf = bytearray(HASH_CHUNK)
                view = memoryview(buf)
                done = 0
                while done < self.size and (n := f.readinto(buf)):
                    n = min(n, self.size - done)
                    if done == 0:
                        self.head = bytes(view[: min(n, 512)])
                    for h in self.hashers.values():
                        h.update(view[:n])
                    done += n

    def borrow(self) -> memoryview:
        """A free buffer of ``_http.READ_CHUNK`` bytes (waits while all are queued for hashing)."""
        if self._thread is None:
            self._pool, self._todo = queue.Queue(), queue.Queue()
            for _ in range(_HASH_BUFFERS):
                self._pool.put(memoryview(bytearray(_http.READ_CHUNK)))
            self._thread = threading.Thread(target=self._hash_loop, name="hubkit-hash", daemon=True)
            self._thread.start()
        return self._pool.get()

    def give_back(self, buf: memoryview) -> None:
        self._pool.put(buf)

    def put(self, buf: memoryview, n: int) -> None:
        """Append ``buf[:n]`` to the file now and hash it soon; ``buf`` belongs to the writer afterwards."""
        data = buf[:n]
        try:
            _write_all(self.fd, data)
        except OSError as e:
            self.give_back(buf)
            self.discard()
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise CacheError(
                    f"No space left on the device holding {self.path.parent} after {self.size} bytes; the partial "
                    "file was removed. Free some space or set HUBKIT_HOME (or dest=) to a larger disk."
                ) from e
            raise CacheError(f"Cannot write {self.path}: {e.strerror or e}. The partial file was removed.") from e
        if self.size < 512:
            self.head += bytes(data[: 512 - self.size])
        self.size += n
        self._todo.put((buf, n))
        if WRITEBACK_STEP and _sync_range and self.size - self._flush_end >= WRITEBACK_STEP:
            self._flush_behind()

    def _flush_behind(self) -> None:
        """Start writing the newest step to disk; wait for the step before it and drop its cached pages.
        Advisory all through: whatever fails here, the fsync in ``finish`` still makes the file durable."""
        fd, start, end = self.fd, self._flush_start, self._flush_end
        _sync_range(fd, end, self.size - end, _SYNC_RANGE_START)
        if end > start:
            _sync_range(fd, start, end - start, _SYNC_RANGE_WAIT)
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)
        self._flush_start, self._flush_end = end, self.size

    def _hash_loop(self) -> None:
        while (item := self._todo.get()) is not None:
            buf, n = item
            view = buf[:n]
            for h in self.hashers.values():
                h.update(view)
            self._pool.put(buf)
            self._todo.task_done()
        self._todo.task_done()

    def drain(self) -> None:
        """Wait until every chunk put so far is hashed."""
        if self._thread is not None:
            self._todo.join()

    def truncate(self) -> None:
        self.drain()
        os.ftruncate(self.fd, 0)
        self.size = self._flush_start = self._flush_end = 0
        self.head = b""
        self.hashers = {a: hashlib.new(a) for a in self.algorithms}

    def digests(self) -> dict[str, str]:
        self.drain()
        return {a: h.hexdigest() for a, h in self.hashers.items()}

    def finish(self) -> list[int]:
        """fsync and close; returns the fingerprint the committed file will have."""
        os.fsync(self.fd)
        fp = fingerprint(os.fstat(self.fd))
        self.close()
        return fp

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join()
            self._thread = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def discard(self) -> None:
        self.close()
        remove_partial(self.path)


def _commit(writer: _Writer, final: Path, src: str, etag: str | None, last_modified: str | None) -> None:
    digests = writer.digests()
    fp = writer.finish()
    os.replace(writer.path, final)
    _fsync_dir(final.parent)
    record = Record(url=src, sha256=digests["sha256"], md5=digests.get("md5"), size=writer.size,
                    fingerprint=fp, etag=etag, last_modified=last_modified)
    try:
        write_record(final, record)
    except OSError as e:  # the file is committed and valid; the next hit will re-hash and retry the sidecar
        logger.warning("could not write the sidecar of %s: %s", final, e)
    remove_partial(writer.path)
    for p in iter_partials(final):
        if partial_is_abandoned(p):
            remove_partial(p.path)


def _verify(writer: _Writer, expect: _Expect, src: str, content_type: str = "") -> None:
    problem = expect.problem(writer.size, writer.digests())
    if problem is None:
        return
    head = writer.head.lstrip().lower()
    if content_type.lower().startswith("text/html") or head.startswith((b"<!doctype html", b"<html")):
        problem += (
            " — the server sent an HTML page (Content-Type "
            f"{content_type or 'unknown'}), probably an error, quota or login page, not the file"
        )
    writer.discard()
    raise _SourceFailure(src, problem, integrity=True)


def _copy_file_source(src: str, final: Path, expect: _Expect, reporter: _progress.Progress) -> None:
    path = _file_url_path(src)
    token = new_owner_token()
    writer = _Writer(partial_path(final, token), expect.algorithms)
    try:
        with open(path, "rb", buffering=0) as f:
            total = os.fstat(f.fileno()).st_size
            if expect.size is not None and total != expect.size:
                raise _SourceFailure(src, f"size mismatch: expected {expect.size} bytes, found {total}", True)
            _check_space(final.parent, total)
            writer.open()
            reporter.start(total)
            while True:
                buf = writer.borrow()
                n = f.readinto(buf)
                if not n:
                    writer.give_back(buf)
                    break
                writer.put(buf, n)
                reporter.update(n)
        _verify(writer, expect, src)
        _commit(writer, final, src, None, None)
    except OSError as e:
        if isinstance(e, HubkitError):
            raise
        raise _SourceFailure(src, f"cannot read {path}: {e.strerror or e}") from None
    finally:
        if writer.fd >= 0:  # interrupted mid-copy: a local copy is cheap to redo, keep nothing
            writer.discard()
        release_owner_token(token)


def _check_space(directory: Path, needed: int) -> None:
    if needed <= 0:
        return
    free = _free_bytes(directory)
    if free < needed + DISK_MARGIN:
        raise CacheError(
            f"Not enough free space in {directory}: the download needs {needed} bytes (+{DISK_MARGIN >> 20} MiB "
            f"margin) and {free} are free. Free some space or set HUBKIT_HOME (or dest=) to a larger disk."
        )


def _claim_partial(final: Path, src: str, token: str) -> tuple[Path, dict | None]:
    """Take over an abandoned partial of ``final`` downloaded from ``src``, or name a fresh one.

    The take-over is an atomic rename, so two writers can never end up appending to the same file, even
    when the lock does nothing.
    """
    mine = partial_path(final, token)
    for p in iter_partials(final):
        if p.record is None or p.record.get("url") != src or not partial_is_abandoned(p):
            continue
        try:
            os.rename(p.path, mine)
        except OSError:
            continue  # someone else claimed it first
        with contextlib.suppress(OSError):
            write_json_atomic(mine.with_name(mine.name + ".json"), p.record)
        with contextlib.suppress(FileNotFoundError):
            p.record_path.unlink()
        logger.info("resuming %s from %s (%d bytes already there)", src, mine.name, mine.stat().st_size)
        return mine, p.record
    return mine, None


def _if_range(validators: dict | None) -> str | None:
    """A validator fit for ``If-Range``: a strong ETag, else Last-Modified; ``None`` when there is neither."""
    if not validators:
        return None
    etag = validators.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return validators.get("last_modified") or None


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``bytes a-b/N`` or ``bytes */N``; ``None`` parts when absent."""
    if not value or not value.startswith("bytes "):
        return None, None
    span, _, total = value[6:].partition("/")
    start_text = span.split("-", 1)[0]
    start = int(start_text) if start_text.isdigit() else None
    return start, int(total) if total.isdigit() else None


def _download(src: str, final: Path, expect: _Expect, reporter: _progress.Progress) -> None:
    """Download ``src`` into ``final`` with retries and resume; raises ``_SourceFailure`` when it gives up.

    A partial that holds bytes and validators is kept when the source fails for a transport reason (or
    the call is interrupted), so the next call resumes it; bytes that failed a check are deleted.
    """
    token = new_owner_token()
    path, validators = _claim_partial(final, src, token)
    writer = _Writer(path, expect.algorithms)
    state = {"validators": validators, "content_type": ""}
    try:
        if path.exists():
            writer.open()
        _transfer(src, final, writer, state, expect, reporter)
        total = state["validators"].get("total")
        if total is not None and writer.size != total:
            raise _SourceFailure(src, f"got {writer.size} bytes, the server announced {total}")
        _verify(writer, expect, src, state["content_type"])
        _commit(writer, final, src, state["validators"].get("etag"), state["validators"].get("last_modified"))
    except _SourceFailure as f:
        if f.integrity:
            writer.discard()
        raise
    finally:
        writer.close()
        if writer.size == 0:
            remove_partial(path)
        release_owner_token(token)


def _transfer(
    src: str, final: Path, writer: _Writer, state: dict, expect: _Expect, reporter: _progress.Progress
) -> None:
    """Run attempts until the body is complete, with backoff between failed attempts.

    The budget of ``SETTINGS.max_attempts`` resets whenever an attempt got further than any before it.
    """
    attempt = restarts = 0
    furthest = writer.size
    while True:
        attempt += 1
        try:
            if _attempt(src, final, writer, state, expect, reporter) == "done":
                return
            restarts += 1
            attempt -= 1
            if restarts > _MAX_RESTARTS:
                raise _SourceFailure(src, f"the server kept answering inconsistently ({restarts} restarts)")
        except _http.TransferError as e:
            if writer.size > furthest:
                furthest = writer.size
                attempt = 1
            if e.integrity:
                raise _SourceFailure(src, e.reason, integrity=True) from None
            if not e.retryable or attempt >= _http.SETTINGS.max_attempts:
                tries = f" (gave up after {attempt} attempts)" if attempt > 1 else ""
                raise _SourceFailure(src, e.reason + tries) from None
            delay = _http.backoff_delay(attempt, e.retry_after)
            logger.info("%s: %s; retrying in %.1fs", src, e.reason, delay)
            _http.sleep(delay)


def _attempt(
    src: str,
    final: Path,
    writer: _Writer,
    state: dict,
    expect: _Expect,
    reporter: _progress.Progress,
) -> str:
    """One request: ``"done"`` once the body is in, ``"restart"`` when the partial had to be dropped.

    ``state["validators"]`` is updated (and written beside the partial) before the first body byte, so
    a later attempt or run can resume with ``If-Range``.
    """
    validators = state["validators"]
    offset = writer.size
    headers = {"Accept-Encoding": "identity"}
    if offset:
        validator = _if_range(validators)
        if validator is None or (validators or {}).get("encoding", "identity") != "identity":
            logger.info("%s: the partial download has no strong validator; starting over", src)
            writer.truncate()
            offset = 0
        else:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = validator
    resp = _http.open_stream(src, headers)
    with contextlib.closing(resp):
        status = resp.status_code
        h = resp.headers
        encoding = h.get("Content-Encoding", "identity").strip().lower() or "identity"
        if status == 416:
            _, total = _content_range(h.get("Content-Range"))
            if offset and (total == offset or (total is None and expect.size == offset)):
                state["validators"] = dict(validators or {}, total=offset)  # the partial is already complete
                return "done"
            logger.info("%s: 416 for a partial of %d bytes (file has %s); starting over", src, offset, total)
            writer.truncate()
            return "restart"
        if status == 206:
            start, total = _content_range(h.get("Content-Range"))
            if start != offset or encoding != "identity":
                logger.info("%s: 206 for the wrong range (%s); starting over", src, h.get("Content-Range"))
                writer.truncate()
                return "restart"
            if total is not None and validators and validators.get("total") not in (None, total):
                writer.truncate()
                return "restart"
        else:  # 200: the whole file, whatever we asked for
            if offset:
                logger.info("%s: answered 200 to a Range request (file changed or ranges ignored); "
                            "starting over", src)
                writer.truncate()
                offset = 0
            length = h.get("Content-Length")
            total = int(length) if encoding == "identity" and length and length.isdigit() else None
        if expect.size is not None and total is not None and total != expect.size:
            raise _http.TransferError(
                f"size mismatch: the server announces {total} bytes, expected {expect.size}",
                retryable=False, integrity=True,
            )
        _check_space(final.parent, (total if total is not None else (expect.size or 0)) - offset)
        new_validators = {"url": src, "etag": h.get("ETag"), "last_modified": h.get("Last-Modified"),
                          "total": total, "encoding": encoding}
        if new_validators != validators or writer.fd < 0:
            write_json_atomic(writer.path.with_name(writer.path.name + ".json"), new_validators)
        state["validators"] = new_validators
        state["content_type"] = h.get("Content-Type", "")
        if writer.fd < 0:
            writer.open()
        reporter.start(total, initial=offset)
        _http.stream_body(resp, writer, reporter)
        if total is not None and writer.size < total:
            raise _http.TransferError(f"connection closed after {writer.size} of {total} bytes", retryable=True)
        return "done"
