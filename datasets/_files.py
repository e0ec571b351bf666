"""A dataset's raw files: declared as ``hub.Resource`` data, found on disk or fetched, checked by the hub.

- **Found or fetched.** A file already on disk (a torchvision tree included) is checked once (the hub's
  ``verify_file``, whose sidecar makes later checks free) and used; a missing one is fetched with
  ``hub.fetch`` when ``download=True``; otherwise ``DatasetNotFoundError`` says which file to put where.
- **Never deleted.** A file that fails its check belongs to the user until proven otherwise: without
  ``download`` it is reported and left as it is; with ``download`` it is renamed to
  ``<name>.hubkit-mismatch-<time>`` only once a replacement is being fetched, and put back if none can be
  (offline, a network error), so a failed attempt leaves the folder as it was.
- **Archives** are unpacked with ``hub.extract`` (atomic, bounded, never trusting a tree without its
  completion marker; ``is_extracted`` reads that marker).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from hubkit.errors import DatasetError, DatasetNotFoundError, HubkitError
from hubkit.hub import Resource
from hubkit.hub.transport.archive import extract, is_extracted
from hubkit.hub.transport.download import fetch
from hubkit.hub.transport.verify import Expect, verify_file

from ._roots import writable_folder

__all__ = [
    "RawFile",
    "archive_members",
    "check_file",
    "describe_resource",
    "extracted_folder",
    "locate",
    "not_found",
    "resource_filename",
    "set_aside",
    "unpack",
]

log = logging.getLogger("hubkit.datasets")

MISMATCH_TAG = ".hubkit-mismatch-"


def resource_filename(res: Resource) -> str:
    """The local file name of a resource: its ``filename`` or the last segment of its URL path."""
    return res.filename or os.path.basename(urlsplit(res.url).path)


def describe_resource(res: Resource) -> str:
    """One line for error messages: file name, URL(s) and the expected checksum."""
    urls = " or ".join([res.url, *res.mirrors])
    sums = ", ".join(f"{k} {v}" for k, v in (("md5", res.md5), ("sha256", res.sha256)) if v)
    return f"{resource_filename(res)} (from {urls}{'; ' + sums if sums else ''})"


def check_file(path: Path, expect: Expect, url: str = "") -> str | None:
    """``None`` when ``path`` passes ``expect`` (the hub's one check), else what is wrong, naming the file.

    With nothing to check (a resource whose publisher gives no checksum) the file is used as it is and no
    sidecar is written: a sidecar would pin a file the user put there by hand (see ``STSB``).
    """
    if expect == Expect():
        return None if path.is_file() else f"{path} is not a regular file"
    problem = verify_file(path, expect, url=url)
    if problem is None or str(path) in problem:
        return problem
    return f"{path}: {problem}"


def not_found(dataset: str, missing: Sequence[tuple[Path, Resource | None]], hint: str = "") -> DatasetNotFoundError:
    """The error for missing files: pass ``download=True``, or put each file at its path by hand."""
    lines = [f"{dataset}: dataset not found. Pass download=True to download it, or put these files in place:"]
    for path, res in missing:
        lines.append(f"  {path}" + (f"  <- {describe_resource(res)}" if res is not None else ""))
    if hint:
        lines.append(hint)
    return DatasetNotFoundError("\n".join(lines))


class RawFile:
    """A raw file a dataset reads: its resource, the folder it belongs in, and other forms it may take.

    ``alternates`` are other paths holding the same content in a form torchvision leaves behind (e.g. the
    decompressed ``train-images-idx3-ubyte`` next to the ``.gz``). ``check(path)`` judges a file by what it
    holds (``None`` when acceptable, else the problem): it is applied to an alternate, and to a file at the
    resource's own path whose bytes differ from the download (e.g. the same contents compressed again).
    """

    def __init__(
        self,
        res: Resource,
        folder: Path,
        alternates: Sequence[Path] = (),
        check: Callable[[Path], str | None] | None = None,
    ) -> None:
        self.res = res
        self.folder = Path(folder)
        self.alternates = [Path(p) for p in alternates]
        self.check = check

    @property
    def path(self) -> Path:
        return self.folder / resource_filename(self.res)

    @property
    def expect(self) -> Expect:
        return Expect.of(self.res.sha256, self.res.md5, self.res.sha256_prefix, self.res.size)

    def find(self) -> tuple[Path | None, str | None]:
        """``(path on disk or None, None if usable else the problem)``; the resource's own path comes first."""
        if os.path.lexists(self.path):
            problem = check_file(self.path, self.expect, self.res.url)
            if problem is not None and self.check is not None and self.check(self.path) is None:
                log.info("%s; it holds the expected contents all the same, so it is used", problem)
                problem = None
            return self.path, problem
        for alt in self.alternates:
            if alt.is_file():
                return alt, self.check(alt) if self.check is not None else None
        return None, None


def locate(
    dataset: str, files: Sequence[RawFile], download: bool, hint: str = "", progress: bool | None = None
) -> list[Path]:
    """Paths of ``files`` on disk, checked; with ``download``, fetches the missing and mismatching ones.

    Without ``download``: DatasetNotFoundError listing every missing file (URL and checksum), or
    DatasetError for a file that fails its check (left in place).
    """
    found: list[tuple[RawFile, Path | None, str | None]] = [(f, *f.find()) for f in files]
    if not download:
        bad = [(f, path, problem) for f, path, problem in found if problem is not None]
        if bad:
            f, path, problem = bad[0]
            raise DatasetError(
                f"{dataset}: {problem}. The file was left in place. Pass download=True to download a verified "
                f"copy ({describe_resource(f.res)}; a file of yours at {f.path} is kept, renamed to "
                f"{f.path.name}{MISMATCH_TAG}<time>), or put the right file there yourself."
            )
        missing = [(f.path, f.res) for f, path, _ in found if path is None]
        if missing:
            raise not_found(dataset, missing, hint)
    out = []
    for f, path, problem in found:
        if path is not None and problem is None:
            out.append(path)
        elif path is not None and path == f.path:
            out.append(_replace(dataset, f, problem, progress))
        else:
            if path is not None:
                log.warning("%s: %s; it is left in place and %s is downloaded to be read instead",
                            dataset, problem, f.path)
            out.append(_fetch(dataset, f, progress))
    return out


def _fetch(dataset: str, f: RawFile, progress: bool | None) -> Path:
    """Fetch ``f`` into its folder through ``hub.fetch`` (mirrors, resume, verification included)."""
    writable_folder(f.folder, dataset)
    log.info("downloading %s into %s", f.res.url, f.folder)
    res = f.res
    return Path(fetch(res.url, sha256=res.sha256, md5=res.md5, sha256_prefix=res.sha256_prefix, size=res.size,
                      mirrors=tuple(res.mirrors), dest=f.folder, filename=resource_filename(res), progress=progress))


def _replace(dataset: str, f: RawFile, problem: str | None, progress: bool | None) -> Path:
    """Fetch a verified copy of ``f`` whose path holds a mismatching file; that file is kept beside it."""
    aside = set_aside(f.path, dataset)
    try:
        path = _fetch(dataset, f, progress)
    except HubkitError as exc:
        with contextlib.suppress(OSError):
            if not os.path.lexists(f.path):
                os.rename(aside, f.path)
        where = "left in place" if os.path.lexists(f.path) and not os.path.lexists(aside) else f"kept as {aside}"
        raise DatasetError(
            f"{dataset}: {problem}, and no verified copy could be downloaded, so the file was {where}. Put the right "
            f"file there ({describe_resource(f.res)}) or fix what stopped the download:\n{exc}"
        ) from exc
    log.warning("%s: %s. It was renamed to %s and a verified download took its place; delete %s once you no "
                "longer need it.", dataset, problem, aside, aside.name)
    return path


def set_aside(path: Path, dataset: str) -> Path:
    """Rename ``path`` to ``<name>.hubkit-mismatch-<time>`` (never over another file); returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        aside = path.with_name(f"{path.name}{MISMATCH_TAG}{stamp}" + (f"-{n}" if n else ""))
        if os.path.lexists(aside):
            continue
        try:
            os.rename(path, aside)
        except OSError as exc:
            raise DatasetError(f"{dataset}: {path} does not match and cannot be renamed to make room for a verified "
                               f"copy ({exc.strerror or exc}); replace it yourself, or pass root= a folder you may "
                               "write to.") from exc
        return aside
    raise DatasetError(f"{dataset}: too many files named {path.name}{MISMATCH_TAG}{stamp}*; delete some of them")


# ---------------------------------------------------------------- archives


def unpack(archive: Path, dest: Path, dataset: str, *, force: bool = False) -> Path:
    """``hub.extract(archive, dest)``: a no-op when ``dest`` holds a finished extraction, unless ``force``."""
    writable_folder(dest, dataset)
    log.info("extracting %s into %s", archive, dest)
    return extract(archive, dest, force=force)


def extracted_folder(dataset: str, archive: RawFile, dest: Path, produced: Path, download: bool) -> Path:
    """Make sure ``produced`` (a folder that ``archive`` unpacks into ``dest``) is complete; return it.

    A folder already there is used as it is (a torchaudio/torchvision tree) unless the archive sits next to
    it without a finished extraction recorded, i.e. an extraction was interrupted; then it is extracted again.
    """
    have_archive = archive.path.is_file()
    if produced.is_dir() and (not have_archive or is_extracted(archive.path, dest)):
        return produced
    if not have_archive and not download:
        raise not_found(dataset, [(archive.path, archive.res)], hint=f"(or the extracted folder {produced})")
    (path,) = locate(dataset, [archive], download)
    unpack(path, dest, dataset)
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
    archive is taken from disk or downloaded (``download=True``) and extracted again; a member that failed
    its check is first renamed to ``<name>.hubkit-mismatch-<time>``. ``members`` are ``(path, md5 or None)``.
    """

    def problems() -> tuple[list[Path], list[tuple[Path, str]]]:
        missing, corrupt = [], []
        for path, md5 in members:
            if not path.is_file():
                missing.append(path)
            elif md5 and (problem := check_file(path, Expect.of(md5=md5))) is not None:
                corrupt.append((path, problem))
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
            f"{dataset}: extracted files do not match their checksums: {'; '.join(p for _, p in corrupt)}. They "
            f"were left in place. Pass download=True to download and extract {resource_filename(archive.res)} "
            f"again (they are kept, renamed to <name>{MISMATCH_TAG}<time>), or replace them yourself."
        )
    (path,) = locate(dataset, [archive], download)
    for member, problem in corrupt:
        aside = set_aside(member, dataset)
        log.warning("%s: %s; renamed to %s before extracting %s again", dataset, problem, aside, path.name)
    unpack(path, dest, dataset, force=True)
    missing, corrupt = problems()
    if missing or corrupt:
        what = [f"{p} is missing" for p in missing] + [p for _, p in corrupt]
        raise DatasetError(
            f"{dataset}: after extracting {path}: {'; '.join(what)}. The archive does not hold the expected "
            "files; delete it and download it again."
        )
    return [p for p, _ in members]
