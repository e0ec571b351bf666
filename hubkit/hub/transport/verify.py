"""Is this file the one we expect? One answer, used by downloads, datasets and ``hubkit cache verify``.

    expect = Expect.of(sha256="9f86d0...", md5=None, sha256_prefix=None, size=1234)
    problem = verify_file(path, expect)          # None when it passes, else what is wrong

A file whose stat fingerprint matches its sidecar (``cache.Record``) is trusted without re-hashing; any
other file is hashed once (every requested algorithm in one read) and its sidecar (re)written when it
passes, so the next check is free again. Only regular files are ever opened: a FIFO or a device at a
path would block or never end.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from hubkit.errors import DownloadError
from hubkit.hub.transport.cache import (
    Entry,
    Record,
    fingerprint,
    iter_entries,
    read_record,
    write_record,
)

__all__ = ["Expect", "Verified", "hash_file", "verify_entries", "verify_file"]

logger = logging.getLogger("hubkit.hub.verify")

HASH_CHUNK = 1 << 20
_HEX = set("0123456789abcdef")


@dataclass(frozen=True)
class Expect:
    """The checks content must pass; hashes are lower-case hex."""

    sha256: str | None = None
    md5: str | None = None
    sha256_prefix: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, sha256: str | None = None, md5: str | None = None, sha256_prefix: str | None = None,
           size: int | None = None) -> Expect:
        """Validated checks; raises :class:`DownloadError` for a malformed digest or size."""
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
        """What to hash: sha256 always (it is what sidecars record), md5 when asked for."""
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


def hash_file(path: Path, algorithms: tuple[str, ...] = ("sha256",)) -> dict[str, str]:
    """Hex digests of a regular file's content, one read for all ``algorithms``.

    Raises ``OSError`` when the file cannot be read or is not a regular file (opened without blocking,
    so a FIFO is refused instead of waited on).
    """
    hashers = {a: hashlib.new(a) for a in algorithms}
    buf = bytearray(HASH_CHUNK)
    view = memoryview(buf)
    with open_regular(path) as f:
        while n := f.readinto(buf):
            for h in hashers.values():
                h.update(view[:n])
    return {a: h.hexdigest() for a, h in hashers.items()}


def open_regular(path: Path):  # noqa: ANN201 - a raw binary file object
    """Open ``path`` for reading, unbuffered, refusing anything but a regular file with ``OSError``.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting for a writer; it changes
    nothing for regular files.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise OSError(f"{path} is {kind}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
    except BaseException:
        os.close(fd)
        raise


def verify_file(path: Path, expect: Expect, *, url: str = "") -> str | None:
    """``None`` when ``path`` is a regular file whose content passes ``expect``, else what is wrong.

    Trusts the sidecar when its fingerprint matches the file; otherwise hashes the file once and, when it
    passes, (re)writes the sidecar (with ``url``, or the one recorded before) so later checks are free.
    A read-only tree is fine: the record is then simply not written.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        return f"{path} cannot be read: {e.strerror or e}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file"
    if expect.size is not None and st.st_size != expect.size:
        return f"size mismatch: expected {expect.size} bytes, {path} has {st.st_size}"
    record = read_record(path)
    digests: dict[str, str] = {}
    if record is not None and record.fingerprint == fingerprint(st):
        digests["sha256"] = record.sha256
        if record.md5:
            digests["md5"] = record.md5
    missing = [a for a in expect.algorithms if a not in digests]
    if not missing:
        return expect.problem(st.st_size, digests)
    logger.info("hashing %s (%s)", path, "no sidecar" if record is None else "changed since it was recorded")
    try:
        digests.update(hash_file(path, tuple(dict.fromkeys(["sha256", *missing]))))
    except OSError as e:
        return f"{path} cannot be read: {e.strerror or e}"
    problem = expect.problem(st.st_size, digests)
    if problem is None:
        new = Record(url=url or (record.url if record else ""), sha256=digests["sha256"], md5=digests.get("md5"),
                     size=st.st_size, fingerprint=fingerprint(st), etag=record.etag if record else None,
                     last_modified=record.last_modified if record else None)
        with contextlib.suppress(OSError):
            write_record(path, new)
    return problem


# ---------------------------------------------------------------- hubkit cache verify


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
