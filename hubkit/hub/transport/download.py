"""Verified, resumable, mirrored, offline-capable downloads that are safe under concurrency.

    from hubkit.hub import fetch, fetch_many, Resource
    path = fetch("https://host/data/train.bin", sha256="9f86d0...")     # -> <cache>/files/host/data/train.bin

What ``fetch`` promises:

- **Only verified bytes at the final name.** Bytes stream into a per-writer temp file next to the
  target (same volume), hashed as they arrive (``_writer``); size and hash are checked (``verify``), the
  file is fsynced and ``os.replace``d into place. A mismatch deletes the temp file and moves on to the
  next source. The bytes are the ones served: a ``Content-Encoding`` is kept, as curl and wget keep it.
- **Cached hits are free.** A sidecar records url, sha256 (always, even for md5-only or prefix-only
  requests), size, ETag and the stat fingerprint; a hit compares the fingerprint and opens no socket
  and re-hashes nothing. A changed fingerprint triggers one re-hash. ``hubkit cache verify`` re-hashes
  everything.
- **Resume across runs, one version of one file.** An interrupted download (dropped connection, reset,
  timeout, Ctrl-C, SIGKILL) keeps every byte that arrived and its validators; the next attempt sends
  ``Range`` + ``If-Range``, and appends only to an answer for the same version (``_resume``).
- **Bounded.** ``size=`` bounds the body even when the server announces no length; every wait has a
  bound (timeouts, a minimum speed, an optional deadline, a capped ``Retry-After``; see ``_http``);
  retries back off with jitter on timeouts, dropped connections, 408/425/429/5xx, never on
  401/403/404 or a host name that does not resolve; the retry budget resets whenever bytes arrive.
- **One download for many callers.** ``cache.file_lock`` makes concurrent threads and processes wait
  for the first downloader; correctness does not depend on the lock (unique temp names, atomic rename),
  so a lock that silently does nothing (some network filesystems) only costs bandwidth.
- **Offline.** ``HUBKIT_OFFLINE=1`` or ``offline=True`` uses the cache and ``file://`` sources only and
  never opens a socket (requests is not even imported); a miss raises ``OfflineError``.
- **Other tools' caches.** A file the Hugging Face cache or torch.hub's checkpoints already hold is used where it
  is, read-only, once its content is verified (``external``), instead of being downloaded again.
- **Safety.** URLs are validated before use (a host is a directory of the cache and of mirrors, so it can
  never be ``..``); https is never downgraded by a redirect; credentials are not sent to another origin;
  free space is checked before the first byte; a full disk leaves no partial behind; only regular files
  are read from ``file://`` sources.

Sources are tried in this order, each until it succeeds or fails for good:
1. every ``HUBKIT_MIRROR`` base (comma-separated ``http(s)://`` or ``file://`` URLs), as
   ``<base>/<host>/<path>`` — the local, trusted mirrors first;
2. for a ``https://huggingface.co/...`` URL, the same path on ``HF_ENDPOINT`` when that names another server;
3. the primary ``url``;
4. ``mirrors``, in the order given (registries list upstream mirrors from most to least healthy).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

from hubkit.errors import CacheError, DownloadError, HubkitError, IntegrityError, OfflineError
from hubkit.hub.transport import _http, _progress, external
from hubkit.hub.transport._resume import claim_partial, if_range, judge
from hubkit.hub.transport._writer import Writer, check_space, fsync_dir
from hubkit.hub.transport.cache import (
    Record,
    check_writable_dir,
    disk_error,
    env_flag,
    file_lock,
    files_dir,
    iter_partials,
    mark_used,
    new_owner_token,
    parse_url,
    partial_is_abandoned,
    partial_path,
    release_owner_token,
    remove_partial,
    tag_cache_dir,
    url_relpath,
    write_json_atomic,
    write_record,
)
from hubkit.hub.transport.verify import Expect, open_regular, verify_file

__all__ = ["Resource", "copy_into", "fetch", "fetch_many"]

logger = logging.getLogger("hubkit.hub.download")

_MAX_RESTARTS = 3


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
        Expect.of(self.sha256, self.md5, self.sha256_prefix, self.size)  # validates


@dataclass
class _SourceFailure(Exception):
    url: str
    reason: str
    integrity: bool = False
    network: bool = False


# ---------------------------------------------------------------- public API


def fetch(
    url: str | Resource,
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
    headers: Mapping[str, str] | None = None,
    check: Callable[[Path], str | None] | None = None,
) -> Path:
    """Return a local path to the verified content of ``url``, downloading it only when needed.

    Args:
        url: ``http(s)://`` or ``file://`` URL of the file, or a :class:`Resource` (a registry row: its url,
            checks, mirrors and filename are used, and the keyword arguments that repeat them are refused).
        sha256, md5, sha256_prefix, size: checks the bytes must pass before they are committed (any
            subset; with none, the file is committed as received and its sha256 recorded). ``size`` also
            bounds the transfer: a longer body is cut off and refused as soon as it is longer.
        mirrors: alternative full URLs, tried after ``HUBKIT_MIRROR`` bases and the primary URL, in order.
        dest: ``None`` caches at ``<cache_dir()>/files/<host>/<path>``; a directory writes
            ``dest/<filename>`` with the same verification, sidecar and locking.
        filename: file name to use instead of the URL's last path segment.
        progress: ``True``/``False`` force the bar on/off; ``None`` shows it when stderr is a terminal.
        offline: ``None`` reads ``HUBKIT_OFFLINE``; ``True`` serves from the cache and ``file://`` sources only.
        headers: extra request headers (``Authorization``) for the primary URL's own server: never sent to
            mirrors, nor to another host a redirect leads to.
        check: ``check(path) -> problem or None``, run on the complete bytes of a download before they are
            committed (``hubkit.hub.hf`` checks git blob ids with it); a problem fails that source like a hash
            mismatch. Not run on a cached hit.

    Returns:
        The path of the verified file: in the cache (or ``dest``), or, without ``dest``, where the Hugging Face
        cache or torch.hub's checkpoints already hold the same verified content (see ``external``).

    Raises:
        IntegrityError: every source failed and at least one delivered bytes that failed a check.
        DownloadError: a malformed URL, or every source failed (the message lists each URL and why).
        OfflineError: offline and neither cached nor on a ``file://`` source.
        CacheError: the target is not writable, is a directory, or the disk is full.
    """
    if isinstance(url, Resource):
        given = [k for k, v in (("sha256", sha256), ("md5", md5), ("sha256_prefix", sha256_prefix), ("size", size),
                                ("mirrors", mirrors), ("filename", filename)) if v]
        if given:
            raise DownloadError(f"fetch(Resource(...)) takes its checks from the resource; drop {', '.join(given)}= "
                                "or put them in the Resource.")
        r = url
        url, sha256, md5, sha256_prefix, size, mirrors, filename = (r.url, r.sha256, r.md5, r.sha256_prefix, r.size,
                                                                    r.mirrors, r.filename)
    if isinstance(mirrors, str):
        raise DownloadError(f"mirrors must be a sequence of URLs, got the string {mirrors!r}; wrap it: (url,).")
    expect = Expect.of(sha256, md5, sha256_prefix, size)
    final = _target_path(url, dest, filename)
    reporter = _progress.file_progress(final.name, progress)
    try:
        return _fetch(url, expect, tuple(mirrors), final, filename, _resolve_offline(offline), reporter,
                      headers=headers, check=check, external_ok=dest is None)
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
        expect = Expect.of(r.sha256, r.md5, r.sha256_prefix, r.size)
        final = _target_path(r.url, dest, r.filename)
        path = _fetch(r.url, expect, r.mirrors, final, r.filename, offline, child, external_ok=dest is None)
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
    expect = Expect.of(sha256, None, None, None)
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
    rel = url_relpath(url, filename)  # validates the URL
    if dest is None:
        return files_dir().joinpath(*rel.split("/"))
    return Path(dest).expanduser() / rel.rsplit("/", 1)[1]


def _mirror_bases() -> list[str]:
    bases = []
    for raw in os.environ.get("HUBKIT_MIRROR", "").split(","):
        base = raw.strip().rstrip("/")
        if not base:
            continue
        try:
            parse_url(base, what="HUBKIT_MIRROR entry")
        except DownloadError as e:
            raise DownloadError(f"{e} HUBKIT_MIRROR holds comma-separated base URLs such as "
                                "file:///srv/hubkit-mirror or https://mirror.example/hubkit.") from None
        bases.append(base)
    return bases


def _hf_endpoint_source(url: str) -> str | None:
    """``url`` on ``HF_ENDPOINT`` when it is a huggingface.co URL and the endpoint is another server."""
    endpoint = external.hf_endpoint()
    prefix = external.DEFAULT_ENDPOINT + "/"
    if endpoint == external.DEFAULT_ENDPOINT or not url.startswith(prefix):
        return None
    return endpoint + "/" + url[len(prefix):]


def _sources(url: str, mirrors: Sequence[str], filename: str | None) -> list[str]:
    out: list[str] = []
    if not _is_file_url(url):
        rel = quote(url_relpath(url, filename))
        out.extend(f"{base}/{rel}" for base in _mirror_bases())
        endpoint = _hf_endpoint_source(url)
        if endpoint is not None:
            parse_url(endpoint, what="HF_ENDPOINT URL")
            out.append(endpoint)
    out.append(url)
    for mirror in mirrors:
        parse_url(mirror, what="mirror URL")
        out.append(mirror)
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------- the fetch itself


def _fetch(
    url: str,
    expect: Expect,
    mirrors: Sequence[str],
    final: Path,
    filename: str | None,
    offline: bool,
    reporter: _progress.Progress,
    *,
    headers: Mapping[str, str] | None = None,
    check: Callable[[Path], str | None] | None = None,
    external_ok: bool = False,
) -> Path:
    if final.is_dir():
        raise CacheError(f"Cannot store {url} at {final}: that path is a directory (files of another URL live "
                         "under it). Pass filename= (or dest=) to store this file under another name.")
    deadline = _http.deadline_from_now()
    # A hit is answered before anything is written or locked: read-only caches work.
    if _cached(final, expect):
        return final
    if external_ok and not os.path.lexists(final):
        found = external.find(url, expect)
        if found is not None:
            return found
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
    with file_lock(final):
        if _cached(final, expect):  # another process finished it while we waited
            return final
        failures: list[_SourceFailure] = []
        for src in sources:
            try:
                if _is_file_url(src):
                    _copy_file_source(src, final, expect, reporter, check)
                else:
                    own = headers if headers and _http.same_origin(src, url) else None
                    _download(src, final, expect, reporter, deadline, own, check)
                return final
            except _SourceFailure as f:
                logger.info("could not fetch %s: %s", f.url, f.reason)
                failures.append(f)
    raise _combined_error(url, final, expect, failures, offline)


def _combined_error(
    url: str, final: Path, expect: Expect, failures: list[_SourceFailure], offline: bool
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
    if any(f.network for f in failures):
        return DownloadError(
            head + "This machine seems to have no network. Set HUBKIT_OFFLINE=1 to use only files already in the "
            "cache (and file:// mirrors) without trying the network; to bring files here, run `hubkit mirror sync "
            "DIR NAME_OR_URL...` on a machine with network, copy DIR over and set HUBKIT_MIRROR=file:///path/to/DIR."
        )
    return DownloadError(
        head + "Check your network and proxy settings, or set HUBKIT_MIRROR to a mirror that has the file."
    )


def _cached(final: Path, expect: Expect) -> bool:
    """Whether ``final`` already holds content that passes ``expect``; re-hashes only on a changed fingerprint."""
    if not os.path.lexists(final):
        return False
    problem = verify_file(final, expect)
    if problem is not None:
        logger.warning("cached %s does not match (%s); fetching again", final, problem)
        return False
    mark_used(final)
    return True


# ---------------------------------------------------------------- committing verified bytes


def _commit(writer: Writer, final: Path, src: str, etag: str | None, last_modified: str | None) -> None:
    digests = writer.digests()
    fp = writer.finish()
    os.replace(writer.path, final)
    fsync_dir(final.parent)
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


def _check_content(writer: Writer, expect: Expect, src: str, content_type: str = "", encoding: str = "",
                   check: Callable[[Path], str | None] | None = None) -> None:
    problem = expect.problem(writer.size, writer.digests())
    if problem is None and check is not None:  # every byte is in the file: put() writes before it hashes
        problem = check(writer.path)
    if problem is None:
        return
    head = writer.head.lstrip().lower()
    if content_type.lower().startswith("text/html") or head.startswith((b"<!doctype html", b"<html")):
        problem += (
            " — the server sent an HTML page (Content-Type "
            f"{content_type or 'unknown'}), probably an error, quota or login page, not the file"
        )
    elif encoding not in ("", "identity"):
        problem += (f" — the server sent the file with Content-Encoding: {encoding}; hubkit keeps bytes as served "
                    "(as curl and wget do), so the expected hash must be that of the encoded file")
    writer.discard()
    raise _SourceFailure(src, problem, integrity=True)


def _copy_file_source(src: str, final: Path, expect: Expect, reporter: _progress.Progress,
                      check: Callable[[Path], str | None] | None = None) -> None:
    path = _file_url_path(src)
    token = new_owner_token()
    writer = Writer(partial_path(final, token), expect.algorithms)
    try:
        with open_regular(path) as f:
            total = os.fstat(f.fileno()).st_size
            if expect.size is not None and total != expect.size:
                raise _SourceFailure(src, f"size mismatch: expected {expect.size} bytes, found {total}", True)
            check_space(final.parent, total)
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
        _check_content(writer, expect, src, check=check)
        _commit(writer, final, src, None, None)
    except OSError as e:
        if isinstance(e, HubkitError):
            raise
        raise _SourceFailure(src, f"cannot read {path}: {e.strerror or e}") from None
    finally:
        if writer.fd >= 0:  # interrupted mid-copy: a local copy is cheap to redo, keep nothing
            writer.discard()
        release_owner_token(token)


# ---------------------------------------------------------------- HTTP downloads


def _download(src: str, final: Path, expect: Expect, reporter: _progress.Progress, deadline: float | None,
              headers: Mapping[str, str] | None = None, check: Callable[[Path], str | None] | None = None) -> None:
    """Download ``src`` into ``final`` with retries and resume; raises ``_SourceFailure`` when it gives up.

    A partial that holds bytes and validators is kept when the source fails for a transport reason (or
    the call is interrupted), so the next call resumes it; bytes that failed a check are deleted.
    """
    token = new_owner_token()
    path, validators = claim_partial(final, src, token)
    writer = Writer(path, expect.algorithms)
    state = {"validators": validators, "content_type": "", "encoding": "", "headers": dict(headers or {})}
    try:
        if path.exists():
            writer.open()
        _transfer(src, final, writer, state, expect, reporter, deadline)
        total = state["validators"].get("total")
        if total is not None and writer.size != total:
            raise _SourceFailure(src, f"got {writer.size} bytes, the server announced {total}")
        _check_content(writer, expect, src, state["content_type"], state["encoding"], check)
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


def _transfer(src: str, final: Path, writer: Writer, state: dict, expect: Expect, reporter: _progress.Progress,
              deadline: float | None) -> None:
    """Run attempts until the body is complete, with backoff between failed attempts.

    The budget of ``SETTINGS.max_attempts`` resets whenever an attempt got further than any before it.
    """
    attempt = restarts = 0
    furthest = writer.size
    while True:
        attempt += 1
        try:
            if _attempt(src, final, writer, state, expect, reporter, deadline) == "done":
                return
            restarts += 1
            attempt -= 1
            if restarts > _MAX_RESTARTS:
                raise _SourceFailure(src, f"the server kept answering inconsistently ({restarts} restarts)")
        except _http.TransferError as e:
            if writer.size > furthest:
                furthest = writer.size
                attempt = 1
            if e.integrity or not e.retryable or attempt >= _http.SETTINGS.max_attempts:
                tries = f" (gave up after {attempt} attempts)" if attempt > 1 and not e.integrity else ""
                raise _SourceFailure(src, e.reason + tries, integrity=e.integrity, network=e.network) from None
            delay = _http.backoff_delay(attempt, e.retry_after)
            if deadline is not None and time.monotonic() + delay > deadline:
                raise _SourceFailure(src, f"{e.reason}; no time left to retry before the deadline") from None
            logger.info("%s: %s; retrying in %.1fs", src, e.reason, delay)
            _http.sleep(delay)


def _attempt(src: str, final: Path, writer: Writer, state: dict, expect: Expect, reporter: _progress.Progress,
             deadline: float | None) -> str:
    """One request: ``"done"`` once the body is in, ``"restart"`` when the partial had to be dropped.

    ``state["validators"]`` is updated (and written beside the partial) before the first body byte, so
    a later attempt or run can resume with ``If-Range``.
    """
    validators = state["validators"]
    offset = writer.size
    headers = {**state["headers"], "Accept-Encoding": "identity"}
    sent = None
    if offset:
        sent = if_range(validators)
        if sent is None:
            logger.info("%s: the partial download has no strong validator; starting over", src)
            writer.truncate()
            offset = 0
        else:
            headers["Range"] = f"bytes={offset}-"
            headers["If-Range"] = sent
    resp = _http.open_stream(src, headers)
    with contextlib.closing(resp):
        h = resp.headers
        answer = judge(resp.status_code, h, offset, validators, sent, expect.size)
        if answer.action == "done":
            state["validators"] = dict(validators or {}, total=offset)  # the partial is already complete
            return "done"
        if answer.action == "restart" or (answer.action == "fresh" and offset):
            logger.info("%s: %s; starting over", src, answer.reason)
            writer.truncate()
            if answer.action == "restart":
                return "restart"
            offset = 0
        total = answer.total
        if expect.size is not None and total is not None and total != expect.size:
            raise _http.TransferError(
                f"size mismatch: the server announces {total} bytes, expected {expect.size}",
                retryable=False, integrity=True,
            )
        check_space(final.parent, (total if total is not None else (expect.size or 0)) - offset)
        encoding = h.get("Content-Encoding", "identity").strip().lower() or "identity"
        new_validators = {"url": src, "etag": h.get("ETag"), "last_modified": h.get("Last-Modified"),
                          "total": total, "encoding": encoding}
        if new_validators != validators or writer.fd < 0:
            record = writer.path.with_name(writer.path.name + ".json")
            try:
                write_json_atomic(record, new_validators)
            except OSError as e:
                raise disk_error(e, record.parent, "the resume record of a download") from e
        state.update(validators=new_validators, content_type=h.get("Content-Type", ""), encoding=encoding)
        if writer.fd < 0:
            writer.open()
        reporter.start(total, initial=offset)
        limit = expect.size - offset if expect.size is not None else None
        _http.stream_body(resp, writer, reporter, limit=limit, deadline=deadline)
        if total is not None and writer.size < total:
            raise _http.TransferError(f"connection closed after {writer.size} of {total} bytes", retryable=True)
        return "done"
