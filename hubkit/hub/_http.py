"""HTTP transport for ``hub.fetch``: timeouts on every request, classified failures, careful redirects.

- One ``requests.Session`` per thread (sessions are not thread-safe), so proxies, CA bundles and
  ``.netrc`` follow requests' own environment variables.
- Every request carries a ``(connect, read)`` timeout from ``SETTINGS``; the read timeout is also the
  stall watchdog for a body that stops arriving.
- Redirects are followed by hand: an ``https`` URL is never redirected to anything but ``https``, and
  each hop is a fresh request, so ``Authorization`` (from URL credentials or ``.netrc``) is only ever
  sent to the host it belongs to.
- Failures become ``TransferError`` with ``retryable`` set per the retry policy: connection errors,
  timeouts, dropped bodies, 408/425/429/5xx retry (``Retry-After`` honoured); 401/403/404/410 and other
  4xx, TLS errors and bad redirects do not.

requests is imported on first use, never at module import.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from hubkit.errors import HubkitError

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
READ_CHUNK = 1 << 20


@dataclass
class HttpSettings:
    """Timeouts and the retry budget; one place, honoured by every request."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    max_redirects: int = 10


SETTINGS = HttpSettings()


class TransferError(Exception):
    """One failed attempt at one URL: why, and whether trying again can help."""

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        integrity: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.integrity = integrity


def sleep(seconds: float) -> None:
    """Wait between attempts (a seam tests replace to record waits without waiting)."""
    time.sleep(seconds)


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Seconds to wait before attempt ``attempt + 1``: ``Retry-After`` when given, else capped
    exponential backoff ``base * 2**(attempt-1)`` with jitter in its upper half."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), SETTINGS.retry_after_max)
    ceiling = min(SETTINGS.backoff_max, SETTINGS.backoff_base * 2 ** max(attempt - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now; accepts delta-seconds and HTTP dates."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(when.timestamp() - time.time(), 0.0)


_local = threading.local()


def _session() -> Any:
    s = getattr(_local, "session", None)
    if s is None:
        import requests

        s = requests.Session()
        s.headers["User-Agent"] = "hubkit"
        _local.session = s
    return s


def _origin(url: str) -> tuple[str, str, int | None]:
    p = urlsplit(url)
    port = p.port or {"http": 80, "https": 443}.get(p.scheme)
    return p.scheme, (p.hostname or "").lower(), port


def open_stream(url: str, headers: dict[str, str]) -> Any:
    """GET ``url`` with a streamed body, following redirects safely; returns the final response.

    The caller reads and closes the response. Raises ``TransferError`` for transport failures and for
    error statuses (see ``check_status``); 200, 206 and 416 are returned for the caller to interpret.
    """
    import requests

    current = url
    sent = dict(headers)
    for _ in range(SETTINGS.max_redirects + 1):
        try:
            resp = _session().get(
                current,
                headers=sent,
                stream=True,
                allow_redirects=False,
                timeout=(SETTINGS.connect_timeout, SETTINGS.read_timeout),
            )
        except requests.exceptions.SSLError as e:
            raise TransferError(f"TLS error: {e}", retryable=False) from e
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            raise TransferError(f"connection failed: {_short(e)}", retryable=True) from e
        except requests.exceptions.RequestException as e:
            raise TransferError(f"request failed: {_short(e)}", retryable=False) from e
        if resp.status_code not in REDIRECT_STATUS:
            if resp.status_code not in (200, 206, 416):
                resp.close()
                check_status(resp)
            return resp
        location = resp.headers.get("Location")
        resp.close()
        if not location:
            raise TransferError(f"HTTP {resp.status_code} redirect without a Location header", retryable=False)
        target = urljoin(current, location)
        scheme = urlsplit(target).scheme
        if urlsplit(current).scheme == "https" and scheme != "https":
            raise TransferError(
                f"refused redirect from https to {target}: hubkit never downgrades https", retryable=False
            )
        if scheme not in ("http", "https"):
            raise TransferError(f"refused redirect to {target}: not an http(s) URL", retryable=False)
        if _origin(target) != _origin(current):
            for h in ("Authorization", "Proxy-Authorization", "Cookie"):
                sent.pop(h, None)
        current = target
    raise TransferError(f"more than {SETTINGS.max_redirects} redirects", retryable=False)


def check_status(resp: Any) -> None:
    """Raise ``TransferError`` for an error status, classified for the retry policy."""
    status = resp.status_code
    reason = f"HTTP {status} {resp.reason or ''}".rstrip()
    if status in RETRY_STATUS or 500 <= status < 600:
        raise TransferError(
            reason, retryable=True, status=status, retry_after=parse_retry_after(resp.headers.get("Retry-After"))
        )
    if status in (401, 403):
        reason += " (the server wants credentials: put them in ~/.netrc, or use a mirror)"
    raise TransferError(reason, retryable=False, status=status)


class BodySink(Protocol):
    """Where ``stream_body`` puts the bytes: pooled buffers are borrowed, filled, then handed over."""

    def borrow(self) -> memoryview: ...

    def give_back(self, buf: memoryview) -> None: ...

    def put(self, buf: memoryview, n: int) -> None: ...


class ProgressSink(Protocol):
    def update(self, n: int) -> None: ...


def stream_body(resp: Any, sink: BodySink, progress: ProgressSink) -> int:
    """Read the body into buffers borrowed from ``sink`` and ``put`` each filled one; returns bytes read.

    Reads go straight from the socket into the buffer (``readinto`` on the underlying
    ``http.client`` response) when the body is not content-encoded, which avoids a copy per chunk;
    otherwise urllib3 decodes and the decoded bytes are copied in. A body cut short, a reset or a
    stalled read raises a retryable ``TransferError``.
    """
    import requests
    import urllib3

    raw = resp.raw
    encoding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    fp = getattr(raw, "_fp", None)
    direct = encoding in ("", "identity") and hasattr(fp, "readinto")
    got = 0
    try:
        while True:
            if direct:
                buf = sink.borrow()
                try:
                    n = fp.readinto(buf)
                except BaseException:
                    sink.give_back(buf)
                    raise
                if not n:
                    sink.give_back(buf)
                    break
                sink.put(buf, n)
            else:
                data = raw.read(READ_CHUNK, decode_content=True)
                if not data:
                    break
                n = len(data)
                for start in range(0, n, READ_CHUNK):
                    piece = data[start : start + READ_CHUNK]
                    buf = sink.borrow()
                    buf[: len(piece)] = piece
                    sink.put(buf, len(piece))
            got += n
            progress.update(n)
    except HubkitError:  # the sink failed (disk full): not a transfer problem, never retried
        raise
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError,
            requests.exceptions.RequestException) as e:
        what = "stalled (read timeout)" if isinstance(e, TimeoutError) or "timed out" in str(e) else _short(e)
        raise TransferError(f"transfer broke after {got} bytes: {what}", retryable=True) from e
    return got


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
