"""Safe, atomic archive extraction: tar (plain, gz, bz2, xz), zip, and single-file gz/bz2/xz.

    from hubkit.hub import extract
    root = extract(fetch(url, sha256=...), data_dir / "cifar-10")      # -> the directory, ready to read

Guarantees:

- **Atomic.** Members are extracted into a fresh staging directory beside ``dest`` (same volume), which is
  renamed into place when ``dest`` does not exist yet, or merged into it entry by entry when it does. A
  completion marker (``dest/.hubkit-extracted-<archive name>.json``, holding the archive's size and
  mtime; :func:`is_extracted` reads it) is written last; without it ``dest`` is never trusted, and a
  staging directory is never reused, so a crash at any point leaves either nothing or a directory the
  next call redoes.
- **Never deletes what it did not create.** Merging into an existing ``dest`` replaces files and links of
  the same name, like tar; a member whose name is a non-empty directory of the user's is refused before
  anything moves (GNU tar refuses too), never ``rmtree``-d.
- **Safe.** Refused, with nothing written outside ``dest``: absolute, drive and UNC names, ``..``
  segments and backslashes (POSIX and Windows rules); names more than ``MAX_DEPTH`` directories deep;
  symlinks and hard links whose name or target resolves outside the target (checked with ``realpath``
  after earlier members are in place, so ``link/../x`` through an in-archive link is caught); a second
  member of the same name as a link (re-pointing a link changes where earlier links lead), and the
  links of the finished tree are checked once more; device files and FIFOs; symlinks in zip files.
  tar extraction also applies Python's ``filter='data'`` (which drops setuid bits and ownership).
- **Bounded by the input.** At most ``max_bytes`` expanded bytes (``MAX_RATIO`` times the archive, and
  never below ``MIN_BYTES_CAP``), counting tar headers too; at most ``max_members`` members (one per
  ``BYTES_PER_MEMBER`` archive bytes, and never below ``MIN_MEMBERS_CAP``: a few kilobytes of gzip can
  hold millions of empty members); GNU long-name and pax headers of at most ``MAX_HEADER_BYTES``.
- **Idempotent.** A second call with the same archive finds the marker and returns at once.
"""

from __future__ import annotations

import bz2
import contextlib
import json
import logging
import lzma
import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from hubkit.errors import ArchiveError
from hubkit.hub.transport import _progress
from hubkit.hub.transport.cache import check_relative_name, new_owner_token, owner_is_gone, release_owner_token

__all__ = ["extract", "is_extracted"]

logger = logging.getLogger("hubkit.hub.archive")

MAX_MEMBERS = 10_000_000
# Default cap on members: one per this many archive bytes, never below MIN_MEMBERS_CAP. A real member
# costs far more (a tar header alone is 512 bytes before compression); empty members with equal headers
# gzip to a few bytes each, and extracting each costs ~50 us.
BYTES_PER_MEMBER = 32
MIN_MEMBERS_CAP = 10_000
# Default cap on expanded bytes: this many times the archive's size, and never below MIN_BYTES_CAP.
MAX_RATIO = 200
MIN_BYTES_CAP = 1 << 30
MAX_HEADER_BYTES = 1 << 20  # a GNU long name or pax header; real ones are a few hundred bytes
MAX_DEPTH = 256  # directories in a member name; os.makedirs recurses once per level
MAX_NAME_BYTES = 4000  # under Linux's PATH_MAX once joined to the target
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
    max_members: int | None = None,
    progress: bool | None = None,
    force: bool = False,
) -> Path:
    """Extract ``archive`` into the directory ``dest`` safely and atomically.

    Args:
        archive: path of a tar, tar.gz/tgz, tar.bz2, tar.xz, zip, or single-file gz/bz2/xz file.
        dest: directory to extract into (created; may already exist and hold other files).
        format: one of ``FORMATS``; ``None`` goes by the file name, then by the leading magic bytes.
        max_bytes: refuse archives expanding to more bytes; ``None`` = ``max(MAX_RATIO * archive size,
            MIN_BYTES_CAP)``.
        max_members: refuse archives with more members; ``None`` = ``max(archive size // BYTES_PER_MEMBER,
            MIN_MEMBERS_CAP)``, at most ``MAX_MEMBERS``.
        progress: ``True``/``False`` force a bar over members on/off; ``None`` follows the terminal.
        force: extract again even when ``dest`` holds a finished extraction of this archive (a member
            was found missing or damaged since).

    Returns:
        ``dest`` for tar and zip archives; for single-file gz/bz2/xz, the decompressed file
        ``dest/<archive name without its suffix>``.

    Raises:
        ArchiveError: the archive is empty, malformed, of an unknown format, unsafe, over a cap, or would
            replace a non-empty directory in ``dest``.
    """
    archive = Path(archive)
    dest = Path(dest).expanduser()
    try:
        st = archive.stat()
    except OSError as e:
        raise ArchiveError(f"Cannot extract {archive}: {e.strerror or e}.") from None
    if not stat.S_ISREG(st.st_mode):
        raise ArchiveError(f"Cannot extract {archive}: it is not a regular file.")
    if st.st_size == 0:
        raise ArchiveError(f"Cannot extract {archive}: the file is empty (0 bytes), so it is no archive; download it "
                           "again.")
    fmt = _detect(archive, format)
    cap = max_bytes if max_bytes is not None else max(MAX_RATIO * st.st_size, MIN_BYTES_CAP)
    members_cap = max_members if max_members is not None else min(MAX_MEMBERS, max(
        st.st_size // BYTES_PER_MEMBER, MIN_MEMBERS_CAP))
    stamp = _stamp(archive, st, fmt)
    marker = _marker(archive, dest)
    result = dest / _single_name(archive, fmt) if fmt in _SINGLE else dest
    if not force and _marker_matches(marker, stamp) and result.exists():
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
                _extract_tar(archive, _TAR_MODES[fmt], staging, cap, members_cap, reporter)
            elif fmt == "zip":
                _extract_zip(archive, staging, cap, members_cap, reporter)
            else:
                _decompress(archive, fmt, staging / result.name, cap)
        finally:
            reporter.close()
        (staging / marker.name).write_text(json.dumps(stamp))
        _commit(staging, dest, marker.name, archive)
        logger.info("extracted %s into %s", archive, dest)
        return result
    except OSError as e:
        raise ArchiveError(f"Extracting {archive} into {dest} failed: {e.strerror or e}.") from e
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        release_owner_token(token)


def is_extracted(archive: str | os.PathLike, dest: str | os.PathLike) -> bool:
    """Whether ``dest`` holds a finished extraction of ``archive`` as it is now (its marker matches the
    archive's size and mtime)."""
    archive = Path(archive)
    try:
        st = archive.stat()
        fmt = _detect(archive, None)
    except (OSError, ArchiveError):
        return False
    return _marker_matches(_marker(archive, Path(dest)), _stamp(archive, st, fmt))


def _marker(archive: Path, dest: Path) -> Path:
    return dest / f".hubkit-extracted-{archive.name}.json"


def _stamp(archive: Path, st: os.stat_result, fmt: str) -> dict:
    return {"archive": archive.name, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "format": fmt}


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
        with tarfile.open(archive, "r|*", tarinfo=BoundedTarInfo) as tf:
            return tf.next() is not None
    except (tarfile.TarError, OSError, EOFError, ArchiveError, zlib.error, lzma.LZMAError):
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


def _is_real_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink()


def _commit(staging: Path, dest: Path, marker_name: str, archive: Path) -> None:
    """Rename ``staging`` to ``dest`` when possible, else move its entries in; the marker goes last.

    Every move is planned (and every conflict refused) before the first one, so a refusal leaves ``dest``
    as it was.
    """
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
    moves: list[tuple[Path, Path]] = []
    for dirpath, dirnames, filenames in os.walk(staging):
        rel = os.path.relpath(dirpath, staging)
        target_dir = dest if rel == "." else dest / rel
        if not _inside(root, os.path.realpath(target_dir)):
            raise ArchiveError(f"Refusing to merge into {target_dir}: it resolves outside {dest}.")
        for name in list(dirnames):
            src, dst = Path(dirpath) / name, target_dir / name
            if src.is_symlink() or not _is_real_dir(dst):
                moves.append((src, dst))
                dirnames.remove(name)  # moved as a whole
        moves.extend((Path(dirpath) / name, target_dir / name) for name in filenames
                     if Path(dirpath) / name != marker)
    for _, dst in moves:
        if _is_real_dir(dst) and any(os.scandir(dst)):
            raise ArchiveError(
                f"Refusing to extract {archive.name} into {dest}: its member {dst.relative_to(dest).as_posix()!r} "
                f"would replace the directory {dst}, which is not empty (GNU tar refuses too). Move that directory "
                "away, or extract into an empty folder."
            )
    for src, dst in moves:
        if _is_real_dir(dst):
            dst.rmdir()  # empty, checked above
        elif dst.is_symlink() or dst.exists():
            dst.unlink()
        os.replace(src, dst)
    os.replace(marker, dest / marker_name)


def _inside(root: str, path: str) -> bool:
    return path == root or os.path.commonpath([root, path]) == root


# ---------------------------------------------------------------- member checks


def _is_root_name(name: str) -> bool:
    return not name.startswith("/") and all(p in ("", ".") for p in name.split("/"))


def _member_parts(name: str) -> list[str]:
    parts = check_relative_name(name, what="archive member name", error=ArchiveError)
    if len(parts) - 1 > MAX_DEPTH or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise ArchiveError(f"Refusing archive member {name[:120]!r}...: it is {len(parts) - 1} directories deep "
                           f"({len(name)} characters), more than a file system holds (at most {MAX_DEPTH} levels "
                           f"and {MAX_NAME_BYTES} bytes).")
    return parts


def _check_member_path(staging: Path, root: str, name: str) -> Path:
    target = staging.joinpath(*_member_parts(name))
    if not _inside(root, os.path.realpath(target.parent)):
        raise ArchiveError(f"Refusing archive member {name!r}: it would be written outside the target directory.")
    return target


def _check_link(staging: Path, root: str, member: tarfile.TarInfo) -> None:
    name, link = member.name, member.linkname
    if member.issym():
        if not link or link.startswith(("/", "\\")) or "\\" in link or (len(link) > 1 and link[1] == ":"):
            raise ArchiveError(f"Refusing symlink {name!r} -> {link!r}: absolute link targets are not allowed.")
        parent = staging.joinpath(*_member_parts(name)).parent
        resolved = os.path.realpath(os.path.join(parent, link))
    else:
        parts = check_relative_name(link, what=f"hard link target of {name!r}", error=ArchiveError)
        resolved = os.path.realpath(staging.joinpath(*parts))
    if not _inside(root, resolved) or resolved == root:
        kind = "symlink" if member.issym() else "hard link"
        raise ArchiveError(f"Refusing {kind} {name!r} -> {link!r}: it points outside the target directory.")


def _check_final_links(staging: Path, root: str, archive: Path) -> None:
    """Every symlink of the finished tree still resolves inside it (a later member may re-point an earlier
    link's path, e.g. by replacing a directory a link climbs out of)."""
    for dirpath, dirnames, filenames in os.walk(staging):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                resolved = os.path.realpath(path)
                if not _inside(root, resolved) or resolved == root:
                    rel = os.path.relpath(path, staging)
                    raise ArchiveError(f"Refusing {archive}: once extracted, the link {rel!r} leads outside the "
                                       "target directory.")


class BoundedTarInfo(tarfile.TarInfo):
    """A ``TarInfo`` that refuses GNU long-name/long-link and pax headers over ``MAX_HEADER_BYTES``
    before tarfile reads them into memory (a few kilobytes of gzip can declare hundreds of megabytes)."""

    def _proc_member(self, tarfile_: tarfile.TarFile) -> tarfile.TarInfo:
        header_types = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                        tarfile.SOLARIS_XHDTYPE)
        if self.type in header_types and self.size > MAX_HEADER_BYTES:
            raise ArchiveError(f"Refusing the tar archive: a long-name or pax header declares {self.size} bytes, more "
                               f"than the {MAX_HEADER_BYTES} any real one needs; the archive is corrupted or hostile.")
        return super()._proc_member(tarfile_)


def _tar_members(tf: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
    while True:
        try:
            member = tf.next()
        except (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError) as e:
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
    names: dict[str, bool] = {}  # extracted member name -> whether it is a link
    with _open_tar(archive, mode) as tf:
        reporter.start(None)
        for member in _tar_members(tf):
            count += 1
            if count > max_members:
                raise ArchiveError(f"Refusing {archive}: more than {max_members} members (max_members; pass a "
                                   "larger one if the archive is trusted).")
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                raise ArchiveError(
                    f"Refusing {archive}: member {member.name!r} is a device file, FIFO or other special file."
                )
            if member.isdir() and _is_root_name(member.name):
                continue  # "./": the target directory itself
            _check_member_path(staging, root, member.name)
            is_link = member.issym() or member.islnk()
            key = "/".join(_member_parts(member.name))
            if key in names and (is_link or names[key]):
                raise ArchiveError(f"Refusing {archive}: member {member.name!r} appears twice and one of them is a "
                                   "link; a second link of the same name can re-point where earlier links lead.")
            if is_link:
                _check_link(staging, root, member)
            names[key] = is_link
            total += member.size if member.isreg() else 0
            if max(total, tf.offset) > cap:
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
            except (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError) as e:
                raise ArchiveError(f"The tar archive {archive} is corrupted or truncated: {e}.") from None
            reporter.update(1)
    if any(names.values()):
        _check_final_links(staging, root, archive)


def _open_tar(archive: Path, mode: str) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, mode, tarinfo=BoundedTarInfo)
    except (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError) as e:
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
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ArchiveError(f"{archive} is not a readable zip archive: {e}.") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > max_members:
            raise ArchiveError(f"Refusing {archive}: {len(infos)} members, more than {max_members} (max_members; pass "
                               "a larger one if the archive is trusted).")
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
                except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, zlib.error) as e:
                    raise ArchiveError(f"The zip archive {archive} is corrupted or unsupported: {e}.") from None
                mode = (info.external_attr >> 16) & 0o755
                if mode:
                    os.chmod(target, mode | 0o600)
            reporter.update(1)


def _decompress(archive: Path, fmt: str, out: Path, cap: int) -> None:
    import gzip

    opener = {"gz": gzip.open, "bz2": bz2.open, "xz": lzma.open}[fmt]
    try:
        with opener(archive, "rb") as src, open(out, "wb") as dst:
            _copy_capped(src.read, dst, 0, cap, archive)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:
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
