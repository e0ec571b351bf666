"""Resuming a download: taking over an abandoned partial, and judging the server's answer to a Range request.

A partial is one version of one file or nothing: bytes are appended only after an answer that proves the
server sends the rest of the *same* representation (``206`` for the offset we asked, carrying the
validator we sent in ``If-Range``). Every other answer restarts from zero (RFC 9110 13.1.5, 14.4):

- ``200`` to a Range request: the file changed or ranges are not supported;
- ``206`` whose ``ETag`` / ``Last-Modified`` differs from the ``If-Range`` validator (a server that ignores
  ``If-Range`` would otherwise splice two versions), or whose range or total does not fit;
- ``416`` unless the partial is already the whole file.

Bytes are kept as served: a ``Content-Encoding`` is part of the representation (as curl and wget keep
it), so ranges and sizes count the encoded bytes. ``Transfer-Encoding`` overrides ``Content-Length``
(RFC 9112 6.3).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hubkit.hub.transport._http import TransferError, header_int
from hubkit.hub.transport.cache import iter_partials, partial_is_abandoned, partial_path, write_json_atomic

logger = logging.getLogger("hubkit.hub.download")


def _validators(record: dict | None) -> dict | None:
    """A partial's resume record with the expected types, or ``None`` (then the partial restarts)."""
    if not isinstance(record, dict) or not isinstance(record.get("url"), str):
        return None
    for key in ("etag", "last_modified", "encoding"):
        if record.get(key) is not None and not isinstance(record.get(key), str):
            return None
    total = record.get("total")
    if total is not None and (type(total) is not int or total < 0):
        return None
    return record


def claim_partial(final: Path, src: str, token: str) -> tuple[Path, dict | None]:
    """Take over an abandoned partial of ``final`` downloaded from ``src``, or name a fresh one.

    The take-over is an atomic rename, so two writers can never end up appending to the same file, even
    when the lock does nothing.
    """
    mine = partial_path(final, token)
    for p in iter_partials(final):
        record = _validators(p.record)
        if record is None or record["url"] != src or not partial_is_abandoned(p):
            continue
        try:
            os.rename(p.path, mine)
        except OSError:
            continue  # someone else claimed it first
        with contextlib.suppress(OSError):
            write_json_atomic(mine.with_name(mine.name + ".json"), record)
        with contextlib.suppress(FileNotFoundError):
            p.record_path.unlink()
        logger.info("resuming %s from %s (%d bytes already there)", src, mine.name, mine.stat().st_size)
        return mine, record
    return mine, None


def if_range(validators: dict | None) -> str | None:
    """A validator fit for ``If-Range``: a strong ETag, else Last-Modified; ``None`` when there is neither."""
    if not validators:
        return None
    etag = validators.get("etag")
    if etag and not etag.startswith("W/"):
        return etag
    return validators.get("last_modified") or None


def content_range(value: str | None) -> tuple[int | None, int | None]:
    """``(start, total)`` from ``bytes a-b/N`` or ``bytes */N``; ``None`` parts when absent.

    Raises a non-retryable :class:`TransferError` for a header that is present but malformed (digits
    other than ASCII ``0-9`` included).
    """
    if value is None:
        return None, None
    text = value.strip()
    span, slash, total_text = text[6:].partition("/") if text.startswith("bytes ") else ("", "", "")
    first, dash, last = span.partition("-")
    ok = slash and (span == "*" or (dash and _ascii_int(first) is not None and _ascii_int(last) is not None))
    total = None if total_text == "*" else _ascii_int(total_text)
    if not ok or (total is None and total_text != "*"):
        raise TransferError(f"the server sent a malformed Content-Range header {value[:80]!r}", retryable=False)
    return (None if span == "*" else int(first)), total


def _ascii_int(text: str) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() else None


@dataclass
class Answer:
    """What to do with a response: ``"resume"`` (append the body), ``"fresh"`` (drop the partial, then
    write the body), ``"done"`` (the partial is the whole file) or ``"restart"`` (drop it, ask again)."""

    action: str
    total: int | None
    reason: str = ""


def judge(status: int, headers: Mapping[str, str], offset: int, validators: dict | None, sent: str | None,
          expected_size: int | None) -> Answer:
    """Decide what a ``200``/``206``/``416`` answer means for a partial of ``offset`` bytes.

    ``sent`` is the ``If-Range`` validator sent with the request (``None`` without a Range request).
    """
    if status == 416:
        _, total = content_range(headers.get("Content-Range"))
        if offset and (total == offset or (total is None and expected_size == offset)):
            return Answer("done", offset)
        return Answer("restart", total, f"416 for a partial of {offset} bytes (the file has {total})")
    if status == 206:
        start, total = content_range(headers.get("Content-Range"))
        if start != offset:
            return Answer("restart", total, f"206 for the wrong range ({headers.get('Content-Range')})")
        if sent is not None:
            now = headers.get("ETag") if sent.startswith('"') else headers.get("Last-Modified")
            if now is not None and now != sent:
                return Answer("restart", total,
                              f"206 for another version of the file (If-Range {sent}, the answer carries {now})")
        known = (validators or {}).get("total")
        if total is not None and known is not None and known != total:
            return Answer("restart", total, f"206 for a file of {total} bytes, the partial's has {known}")
        return Answer("resume", total)
    # 200: the whole file, whatever was asked
    chunked = headers.get("Transfer-Encoding") is not None  # RFC 9112 6.3: it overrides Content-Length
    total = None if chunked else header_int(headers.get("Content-Length"), "Content-Length")
    return Answer("fresh", total, "answered 200 to a Range request (file changed or ranges ignored)" if offset else "")
