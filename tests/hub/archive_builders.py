"""Build archives for the extraction tests, honest and hostile, without any tool but the standard library."""

from __future__ import annotations

import gzip
import io
import tarfile
import zipfile
from pathlib import Path


def make_tar(path: Path, members: list[tuple], mode: str = "w:gz") -> Path:
    """members: ("file", name, bytes[, mode]) | ("dir", name) | ("sym", name, target) | ("hard", name, target)
    | ("chr", name) | ("fifo", name)."""
    with tarfile.open(path, mode) as tf:
        for kind, name, *rest in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = rest[0]
                info.size = len(data)
                if len(rest) > 1:
                    info.mode = rest[1]
                tf.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "hard"):
                info.linkname = rest[0]
            if kind == "dir":
                info.mode = 0o755
            tf.addfile(info)
    return path


def make_zip(path: Path, members: list[tuple]) -> Path:
    """members: (name, bytes) or (name, bytes, unix_mode)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, *mode in members:
            info = zipfile.ZipInfo(name)
            if mode:
                info.external_attr = mode[0] << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def long_name_tar_gz(path: Path, name_bytes: int) -> Path:
    """A tar.gz whose one member has a GNU long name of ``name_bytes`` bytes (a header tarfile reads whole)."""
    header = tarfile.TarInfo("././@LongLink")
    header.type = tarfile.GNUTYPE_LONGNAME
    header.size = name_bytes
    member = tarfile.TarInfo("x")
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(header.tobuf(format=tarfile.GNU_FORMAT))
        block = b"a" * (1 << 20)
        for start in range(0, name_bytes, len(block)):
            out.write(block[: name_bytes - start])
        out.write(b"\0" * (-name_bytes % 512))
        out.write(member.tobuf(format=tarfile.GNU_FORMAT) + b"\0" * 1024)
    return path


def many_members_tar_gz(path: Path, count: int) -> Path:
    """A tar.gz of ``count`` empty members of one name: each costs 512 bytes of tar, a few bytes of gzip."""
    header = tarfile.TarInfo("empty").tobuf(format=tarfile.GNU_FORMAT)
    path.write_bytes(gzip.compress(header * count + b"\0" * 1024))
    return path
