"""Safe, atomic archive extraction: tar (plain, gz, bz2, xz), zip, and single-file gz/bz2/xz.

    from hubkit.hub import extract
    root = extract(fetch(url, sha256=...), data_dir / "cifar-10")      # -> the directory, ready to read

Guarantees:

- **Atomic.** Members are extracted into a fresh staging directory beside ``dest`` (same volume), which is
  renamed into place when ``dest`` does not exist yet, or merged into it entry by entry when it does. A
  completion marker (``dest/.hubkit-extracted-<archive name>.json``, holding the archive's size and
  mtime) is written last; without it ``dest`` is never trusted, and a staging directory is never
  reused, so a crash at any point leaves either nothing or a directory the next call redoes.
- **Safe.** Refused, with nothing written outside ``dest``: absolute, drive and UNC names, ``..``
  segments and backslashes (POSIX and Windows rules); symlinks and hard links whose name or target
  resolves outside the target (checked with ``realpath`` after earlier members are in place, so
  ``link/../x`` through an in-archive link is caught); device files and FIFOs; symlinks in zip files;
  more than ``max_members`` members or more than ``max_bytes`` expanded bytes (zip bombs). tar
  extraction also applies Python's ``filter='data'`` (which drops setuid bits and ownership).
- **Idempotent.** A second call with the same archive finds the marker and returns at once.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

from hubkit.errors import ArchiveError
from hubkit.hub import _progress
from hubkit.hub.cache import check_relative_name, new_owner_token, owner_is_gone, release_owner_token

__all__ = ["extract"]

logger = logging.getLogger("hubkit.hub.archive")

MAX_MEMBERS = 10_000_000
# Default cap on expanded bytes: this many times the archive's size, and never below MIN_BYTES_CAP.
MAX_RATIO = 200
MIN_BYTES_CAP = 1 << 30
_CHUNK = 1 << 20

_TAR_MODES = {"tar": "r|", "tar.gz": "r|gz", "tar.bz2": "r|bz2", "tar.xz": "r|xz"}
_SINGLE = {"gz": ".gz", "bz2": ".bz2", "xz": ".xz"}
_SUFFIXES = [
    (".tar.gz", "tar.gz"), (".tgz", "tar.gz"), (".tar.bz2", "tar.bz2"), (".tbz2", "tar.bz2"),
    (".tbz", "tar.bz2"), (".tar.xz", "tar.xz"), (".txz", "tar.xz"), (".tar", "tar"), (".zip", "zip"),
    (".gz", "gz"), (".bz2", "bz2"), (".xz", "xz"),
]
FORMATS = tuple(sorted({f for _, f in _SUFFIXES}))


def extract(
    archive: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    format: str | None = None,
    max_bytes: int | None = None,
    max_members: int = MAX_MEMBERS,
    progress: bool | None = None,
) -> Path:
    """Extract ``archive`` into the directory ``dest`` safely and atomically.

    Args:
        archive: path of a tar, tar.gz/tgz, tar.bz2, tar.xz, zip, or single-file gz/bz2/xz file.
        dest: directory to extract into (created; may already exist and hold other files).
        format: one of ``FORMATS``; ``None`` goes by the file name, then by the leading magic bytes.
        max_bytes: refuse archives expanding to more bytes; ``None`` = ``max(MAX_RATIO * archive size,
            MIN_BYTES_CAP)``.
        max_members: refuse archives with more members.
        progress: ``True``/``False`` force a bar over members on/off; ``None`` follows the terminal.

    Returns:
        ``dest`` for tar and zip archives; for single-file gz/bz2/xz, the decompressed file
        ``dest/<archive name without its suffix>``.

    Raises:
        ArchiveError: the archive is malformed, of an unknown format, unsafe, or over a cap.
    """
    archive = Path(archive)
    dest = Path(dest).expanduser()
    try:
        st = archive.stat()
    except OSError as e:
        raise ArchiveError(f"Cannot extract {archive}: {e.strerror or e}.") from None
    fmt = _detect(archive, format)
    cap = max_bytes if max_bytes is not None else max(MAX_RATIO * st.st_size, MIN_BYTES_CAP)
    stamp = {"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "format": fmt}
    marker = dest / f".hubkit-extracted-{archive.name}.json"
    result = dest / _single_name(archive, fmt) if fmt in _SINGLE else dest
    if _marker_matches(marker, stamp) and result.exists():
        return result
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ArchiveError(f"Cannot create {dest.parent} to extract {archive} into: {e.strerror or e}.") from None
    _remove_stale_staging(dest)
    token = new_owner_token()
    staging = dest.parent / f".{dest.name}.{token}.extracting"
    try:
        staging.mkdir()
        reporter = _progress.file_progress(f"extracting {archive.name}", progress, unit="files")
        try:
            if fmt in _TAR_MODES:
                _extract_tar(archive, _TAR_MODES[fmt], staging, cap, max_members, reporter)
            elif fmt == "zip":
                _extract_zip(archive, staging, cap, max_members, reporter)
            else:
                _decompress(archive, fmt, staging / result.name, cap)
        finally:
            reporter.close()
        (staging / marker.name).write_text(json.dumps(stamp))
        _commit(staging, dest, marker.name)
        logger.info("extracted %s into %s", archive, dest)
        return result
    except OSError as e:
        raise ArchiveError(f"Extracting {archive} into {dest} failed: {e.strerror or e}.") from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        release_owner_token(token)


# ---------------------------------------------------------------- format detection


def _detect(archive: Path, format: str | None) -> str:
    if format is not None:
        fmt = format.lower().lstrip(".")
        fmt = {"tgz": "tar.gz", "tbz2": "tar.bz2", "txz": "tar.xz", "gzip": "gz", "bzip2": "bz2"}.get(fmt, fmt)
        if fmt not in FORMATS:
            raise ArchiveError(f"Unknown archive format {format!r}; expected one of {', '.join(FORMATS)}.")
        return fmt
    name = archive.name.lower()
    for suffix, fmt in _SUFFIXES:
        if name.endswith(suffix):
            return fmt
    with open(archive, "rb") as f:
        head = f.read(512)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head[257:262] == b"ustar":
        return "tar"
    for magic, fmt in ((b"\x1f\x8b", "tar.gz"), (b"BZh", "tar.bz2"), (b"\xfd7zXZ\x00", "tar.xz")):
        if head.startswith(magic):
            return fmt if _is_compressed_tar(archive) else fmt.split(".")[1]
    raise ArchiveError(
        f"Cannot tell the format of {archive}: its name has no known suffix and its first bytes are not a "
        f"tar, zip, gzip, bzip2 or xz header. Pass format= one of {', '.join(FORMATS)}."
    )


def _is_compressed_tar(archive: Path) -> bool:
    try:
        with tarfile.open(archive, "r|*") as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _single_name(archive: Path, fmt: str) -> str:
    name = archive.name
    suffix = _SINGLE[fmt]
    stem = name[: -len(suffix)] if name.lower().endswith(suffix) else name + ".out"
    check_relative_name(stem, what="decompressed file name", error=ArchiveError)
    return stem


# ---------------------------------------------------------------- staging and commit


def _marker_matches(marker: Path, stamp: dict) -> bool:
    try:
        return json.loads(marker.read_text()) == stamp
    except (OSError, ValueError):
        return False


def _remove_stale_staging(dest: Path) -> None:
    prefix, suffix = f".{dest.name}.", ".extracting"
    with contextlib.suppress(OSError):
        for entry in os.scandir(dest.parent):
            if entry.name.startswith(prefix) and entry.name.endswith(suffix):
                token = entry.name[len(prefix) : -len(suffix)]
                if "~" in token and owner_is_gone(token, entry.stat(follow_symlinks=False).st_mtime):
                    logger.info("removing an interrupted extraction %s", entry.path)
                    shutil.rmtree(entry.path, ignore_errors=True)


def _commit(staging: Path, dest: Path, marker_name: str) -> None:
    """Rename ``staging`` to ``dest`` when possible, else move its entries in; the marker goes last."""
    if not dest.exists() and not dest.is_symlink():
        try:
            os.rename(staging, dest)
            return
        except OSError:
            if not dest.exists():
                raise
    if dest.is_symlink() or not dest.is_dir():
        raise ArchiveError(f"Cannot extract into {dest}: it exists and is not a directory.")
    marker = staging / marker_name
    root = os.path.realpath(dest)
    for dirpath, dirnames, filenames in os.walk(staging):
        rel = os.path.relpath(dirpath, staging)
        target_dir = dest if rel == "." else dest / rel
        if not _inside(root, os.path.realpath(target_dir)):
            raise ArchiveError(f"Refusing to merge into {target_dir}: it resolves outside {dest}.")
        for name in list(dirnames):
            src = Path(dirpath) / name
            dst = target_dir / name
            if src.is_symlink() or not (dst.is_dir() and not dst.is_symlink()):
                _replace(src, dst)
                dirnames.remove(name)  # moved as a whole
        for name in filenames:
            src = Path(dirpath) / name
            if src != marker:
                _replace(src, target_dir / name)
    os.replace(marker, dest / marker_name)


def _replace(src: Path, dst: Path) -> None:
    """Put ``src`` at ``dst``, removing what is there first; never writes through a link at ``dst``."""
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    elif dst.is_symlink() or dst.exists():
        dst.unlink()
    os.replace(src, dst)


def _inside(root: str, path: str) -> bool:
    return path == root or os.path.commonpath([root, path]) == root


# ---------------------------------------------------------------- member checks


def _is_root_name(name: str) -> bool:
    return not name.startswith("/") and all(p in ("", ".") for p in name.split("/"))


def _check_member_path(staging: Path, root: str, name: str) -> Path:
    parts = check_relative_name(name, what="archive member name", error=ArchiveError)
    target = staging.joinpath(*parts)
    if not _inside(root, os.path.realpath(target.parent)):
        raise ArchiveError(f"Refusing archive member {name!r}: it would be written outside the target directory.")
    return target


def _check_link(staging: Path, root: str, member: tarfile.TarInfo) -> None:
    name, link = member.name, member.linkname
    if member.issym():
        if not link or link.startswith(("/", "\\")) or "\\" in link or (len(link) > 1 and link[1] == ":"):
            raise ArchiveError(f"Refusing symlink {name!r} -> {link!r}: absolute link targets are not allowed.")
        parent = staging.joinpath(*check_relative_name(name, what="archive member name", error=ArchiveError)).parent
        resolved = os.path.realpath(os.path.join(parent, link))
    else:
        parts = check_relative_name(link, what=f"hard link target of {name!r}", error=ArchiveError)
        resolved = os.path.realpath(staging.joinpath(*parts))
    if not _inside(root, resolved) or resolved == root:
        kind = "symlink" if member.issym() else "hard link"
        raise ArchiveError(f"Refusing {kind} {name!r} -> {link!r}: it points outside the target directory.")


def _tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tf.next()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ArchiveError(f"The tar archive is corrupted or truncated: {e}.") from None
        if member is None:
            return
        yield member


def _extract_tar(
    archive: Path, mode: str, staging: Path, cap: int, max_members: int, reporter: _progress.Progress
) -> None:
    root = os.path.realpath(staging)
    total = count = 0
    has_filter = hasattr(tarfile, "data_filter")
    with _open_tar(archive, mode) as tf:
        reporter.start(None)
        for member in _tar_members(tf):
            count += 1
            if count > max_members:
                raise ArchiveError(f"Refusing {archive}: more than {max_members} members (max_members).")
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                raise ArchiveError(
                    f"Refusing {archive}: member {member.name!r} is a device file, FIFO or other special file."
                )
            if member.isdir() and _is_root_name(member.name):
                continue  # "./": the target directory itself
            _check_member_path(staging, root, member.name)
            if member.issym() or member.islnk():
                _check_link(staging, root, member)
            total += member.size if member.isreg() else 0
            if total > cap:
                raise ArchiveError(
                    f"Refusing {archive}: it expands to more than {cap} bytes (max_bytes). Pass a larger "
                    "max_bytes if the archive is trusted."
                )
            try:
                if has_filter:
                    tf.extract(member, staging, set_attrs=True, filter="data")
                else:
                    tf.extract(_sanitized(member), staging, set_attrs=True)
            except tarfile.FilterError as e:
                raise ArchiveError(f"Refusing {archive}: {e}.") from None
            except (tarfile.TarError, EOFError) as e:
                raise ArchiveError(f"The tar archive {archive} is corrupted or truncated: {e}.") from None
            reporter.update(1)


def _open_tar(archive: Path, mode: str) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ArchiveError(f"{archive} is not a readable tar archive: {e}.") from None


def _sanitized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """Without ``filter='data'`` (old Pythons): no setuid/setgid/sticky bits, no group/other write."""
    member.mode &= 0o755
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    return member


def _extract_zip(archive: Path, staging: Path, cap: int, max_members: int, reporter: _progress.Progress) -> None:
    root = os.path.realpath(staging)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{archive} is not a readable zip archive: {e}.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise ArchiveError(f"Refusing {archive}: {len(infos)} members, more than {max_members} (max_members).")
        declared = 0
        for info in infos:
            kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip carries no Unix file type
            if kind == stat.S_IFLNK:
                raise ArchiveError(f"Refusing {archive}: member {info.filename!r} is a symbolic link.")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise ArchiveError(f"Refusing {archive}: member {info.filename!r} is a device file or FIFO.")
            if not (info.is_dir() and _is_root_name(info.filename)):
                _check_member_path(staging, root, info.filename)
            declared += info.file_size
        if declared > cap:
            raise ArchiveError(
                f"Refusing {archive}: it expands to {declared} bytes, more than {cap} (max_bytes; a zip bomb?)."
            )
        reporter.start(len(infos))
        written = 0
        for info in infos:
            if info.is_dir() and _is_root_name(info.filename):
                continue
            target = _check_member_path(staging, root, info.filename)
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as src, open(target, "wb") as out:
                        written = _copy_capped(src.read, out, written, cap, archive)
                except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as e:
                    raise ArchiveError(f"The zip archive {archive} is corrupted or unsupported: {e}.") from None
                mode = (info.external_attr >> 16) & 0o755
                if mode:
                    os.chmod(target, mode | 0o600)
            reporter.update(1)


def _decompress(archive: Path, fmt: str, out: Path, cap: int) -> None:
    import bz2
    import gzip
    import lzma

    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}[fmt]
    try:
        with opener(archive, "rb") as src, open(out, "wb") as dst:
            _copy_capped(src.read, dst, 0, cap, archive)
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise ArchiveError(f"{archive} is not a valid {fmt} file or is truncated: {e}.") from None


def _copy_capped(read: Callable[[int], bytes], out, written: int, cap: int, archive: Path) -> int:
    while chunk := read(_CHUNK):
        written += len(chunk)
        if written > cap:
            raise ArchiveError(
                f"Refusing {archive}: it expands to more than {cap} bytes (max_bytes; a decompression bomb?)."
            )
        out.write(chunk)
    return written
