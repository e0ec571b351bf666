"""The download writer: appends to one partial file, hashes on a helper thread, flushes behind itself.

Chunks travel in pooled buffers: ``borrow`` one, fill it, ``put`` it. ``put`` writes to disk at once (so
``size`` is what the file holds and a full disk fails the caller) and queues the buffer for hashing; the
hashing thread gives it back to the pool. Hashing thus overlaps the next network read and disk write
(hashlib and socket reads release the GIL), which on a busy 2-core machine halves the time of a verified
download. Everything that reads the hash state drains the queue first.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import queue
import shutil
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hubkit.errors import CacheError
from hubkit.hub.transport import cache
from hubkit.hub.transport.cache import fingerprint, remove_partial
from hubkit.hub.transport.verify import HASH_CHUNK

# Keep this much free beyond the file itself, so a download never fills a disk to the last byte.
DISK_MARGIN = 16 << 20
READ_CHUNK = 1 << 20
_HASH_BUFFERS = 4
# Flush-behind (Linux): every WRITEBACK_STEP freshly written bytes, start their writeback to disk, wait for
# the step before it to be on disk and drop those pages from the page cache. The fsync before the commit
# then finds almost nothing left to write, dirty memory stays under two steps, and the page cache recycles
# the same few pages instead of taking 1 GiB of fresh ones per GiB downloaded (on a VM, first-touch pages
# cost 2-4x the kernel time: bench/RESULTS.md). The committed file is read back from disk by its first
# reader. 0 disables.
WRITEBACK_STEP = 8 << 20


def free_bytes(directory: Path) -> int:
    return shutil.disk_usage(directory).free


def check_space(directory: Path, needed: int) -> None:
    """Refuse, before the first byte, a download that would leave less than ``DISK_MARGIN`` free."""
    if needed <= 0:
        return
    free = free_bytes(directory)
    if free < needed + DISK_MARGIN:
        raise CacheError(
            f"Not enough free space in {directory}: the download needs {needed} bytes (+{DISK_MARGIN >> 20} MiB "
            f"margin) and {free} are free. Free some space or set HUBKIT_HOME (or dest=) to a larger disk."
        )


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
sync_range = _sync_file_range()


def fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass
class Writer:
    """Appends to the partial file at ``path`` and hashes what it holds with ``algorithms``."""

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
        """A free buffer of ``READ_CHUNK`` bytes (waits while all are queued for hashing)."""
        if self._thread is None:
            self._pool, self._todo = queue.Queue(), queue.Queue()
            for _ in range(_HASH_BUFFERS):
                self._pool.put(memoryview(bytearray(READ_CHUNK)))
            self._thread = threading.Thread(target=self._hash_loop, name="hubkit-hash", daemon=True)
            self._thread.start()
        return self._pool.get()

    def give_back(self, buf: memoryview) -> None:
        self._pool.put(buf)

    def put(self, buf: memoryview, n: int) -> None:
        """Append ``buf[:n]`` to the file now and hash it soon; ``buf`` belongs to the writer afterwards."""
        data = buf[:n]
        try:
            cache.write_all(self.fd, data)
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
        if WRITEBACK_STEP and sync_range and self.size - self._flush_end >= WRITEBACK_STEP:
            self._flush_behind()

    def _flush_behind(self) -> None:
        """Start writing the newest whole steps to disk; wait for the range before them and drop its cached
        pages. Ranges end on multiples of ``WRITEBACK_STEP`` whatever the sizes of the writes were.
        Advisory all through: whatever fails here, the fsync in ``finish`` still makes the file durable."""
        fd, start, end = self.fd, self._flush_start, self._flush_end
        new_end = max(end, self.size - self.size % WRITEBACK_STEP)
        sync_range(fd, end, new_end - end, _SYNC_RANGE_START)
        if end > start:
            sync_range(fd, start, end - start, _SYNC_RANGE_WAIT)
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, start, end - start, os.POSIX_FADV_DONTNEED)
        self._flush_start, self._flush_end = end, new_end

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
