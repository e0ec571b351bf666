"""HTTP transport for ``fetch``: bounded waits, classified failures, careful redirects, bytes as served.

- One ``requests.Session`` per thread (sessions are not thread-safe), so proxies, CA bundles and
  ``.netrc`` follow requests' own environment variables.
- Every wait has a bound (``SETTINGS``): a ``(connect, read)`` timeout on every request (the read timeout
  is the stall watchdog), a minimum speed over a window (a server trickling one byte a second fails
  instead of holding the download forever), an optional total deadline, a cap on ``Retry-After`` (a
  longer one fails the source at once rather than sleeping), and a bounded retry budget.
- Redirects are followed by hand: an ``https`` URL is never redirected to anything but ``https``, and
  each hop is a fresh request, so ``Authorization`` (from URL credentials or ``.netrc``) is only ever
  sent to the host it belongs to.
- Failures become ``TransferError`` with ``retryable`` set per the retry policy: dropped connections,
  timeouts, dropped bodies, 408/425/429/5xx retry; 401/403/404/410 and other 4xx, TLS errors, bad
  redirects, malformed headers and name-resolution failures (no network: retrying cannot help, and the
  error says how to work offline) do not.
- Bodies are read as served, never content-decoded, with at most one system call per read, so every byte
  that arrived before a reset or a timeout reaches the file and the retry resumes after it.

requests is imported on first use, never at module import.
"""

from __future__ import annotations

import email.utils
import errno
import http.client
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from hubkit.errors import HubkitError

RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
# A read into a pooled buffer stops filling it when less than this is left, so that every socket read
# asks for more than the socket file's 8 KiB readahead buffer and lands directly in the pooled buffer.
_MIN_READ = 64 << 10


def _env_seconds(name: str) -> float | None:
    value = os.environ.get(name, "").strip()
    try:
        seconds = float(value) if value else None
    except ValueError:
        seconds = None
    return seconds if seconds is not None and seconds > 0 else None


@dataclass
class HttpSettings:
    """Timeouts, speed floor, deadline and the retry budget; one place, honoured by every request.

    ``min_speed`` (bytes/s, 0 disables) is averaged over ``speed_window`` seconds, like curl's
    ``--speed-limit/--speed-time``. ``deadline`` bounds one ``fetch`` (all sources, attempts and waits), in
    seconds; ``None`` reads ``HUBKIT_DOWNLOAD_DEADLINE``, and without it the speed floor is the bound.
    """

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 300.0
    max_redirects: int = 10
    min_speed: float = 1024.0
    speed_window: float = 30.0
    deadline: float | None = None


SETTINGS = HttpSettings()


def deadline_from_now() -> float | None:
    """The ``time.monotonic()`` instant by which a fetch starting now must end, or ``None``."""
    seconds = SETTINGS.deadline if SETTINGS.deadline is not None else _env_seconds("HUBKIT_DOWNLOAD_DEADLINE")
    return time.monotonic() + seconds if seconds else None


class TransferError(Exception):
    """One failed attempt at one URL: why, and whether trying again can help.

    ``network`` marks failures that mean "no network here" (a host name that does not resolve, an
    unreachable network), for which the final error explains how to work offline.
    """

    def __init__(
        self,
        reason: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        integrity: bool = False,
        network: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.integrity = integrity
        self.network = network


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
    """``Retry-After`` as seconds from now; accepts ASCII delta-seconds and HTTP dates, else ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        return max(when.timestamp() - time.time(), 0.0)
    except (OverflowError, OSError, ValueError):
        return None


def header_int(value: str | None, name: str) -> int | None:
    """A byte count from a header (``Content-Length``); ``None`` when absent.

    Only ASCII digits count (``int()`` also takes other scripts' digits and ``str.isdigit`` passes
    superscripts that ``int()`` then refuses); anything else is a non-retryable ``TransferError``.
    """
    if value is None:
        return None
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise TransferError(f"the server sent a malformed {name} header {value[:80]!r}", retryable=False)
    return int(text)


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


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port (credentials for one may be sent to the other)."""
    try:
        return _origin(a) == _origin(b)
    except ValueError:
        return False


def _causes(e: BaseException) -> list[BaseException]:
    """``e``, what caused it, and urllib3's ``reason``s, outermost first (bounded, cycle-safe)."""
    out: list[BaseException] = []
    todo: list[BaseException | None] = [e]
    while todo and len(out) < 16:
        c = todo.pop()
        if c is None or any(c is o for o in out):
            continue
        out.append(c)
        todo.extend([getattr(c, "reason", None) if isinstance(getattr(c, "reason", None), BaseException) else None,
                     c.__context__, c.__cause__, *(a for a in c.args if isinstance(a, BaseException))])
    return out


def _no_network(e: BaseException) -> str | None:
    """Why ``e`` means there is no network (a name that does not resolve, an unreachable network), or None."""
    for c in _causes(e):
        if isinstance(c, socket.gaierror) or type(c).__name__ == "NameResolutionError":
            return "the host name does not resolve"
        if isinstance(c, OSError) and c.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "the network is unreachable"
    return None


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
            offline = _no_network(e)
            if offline is not None:
                host = urlsplit(current).hostname
                raise TransferError(f"cannot connect to {host}: {offline} ({_short(e)})", retryable=False,
                                    network=True) from e
            raise TransferError(f"connection failed: {_short(e)}", retryable=True) from e
        except (requests.exceptions.RequestException, ValueError, UnicodeError) as e:
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
        try:
            target = urljoin(current, location)
            scheme = urlsplit(target).scheme
            _origin(target)
        except ValueError as e:
            raise TransferError(f"refused redirect to {location[:200]!r}: {e}", retryable=False) from None
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
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        if retry_after is not None and retry_after > SETTINGS.retry_after_max:
            raise TransferError(
                f"{reason}: the server asks to retry after {retry_after:.0f} s, longer than hubkit waits "
                f"({SETTINGS.retry_after_max:.0f} s); try again later, or use another mirror",
                retryable=False, status=status,
            )
        raise TransferError(reason, retryable=True, status=status, retry_after=retry_after)
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


def _raw_reader(resp: Any) -> Callable[[memoryview], int]:
    """``read(view) -> n``: the body as served (no content decoding), at most one socket read per call.

    http.client's own ``readinto`` loops until the buffer is full, so a reset or a timeout in the
    middle of a 1 MiB read loses everything read so far; one ``readinto1`` per call hands every byte
    over as soon as it arrived.
    """
    hr = getattr(resp.raw, "_fp", None)
    if isinstance(hr, http.client.HTTPResponse):
        fp = hr.fp
        if hr.chunked or not hasattr(fp, "readinto1"):
            def read_chunks(view: memoryview) -> int:
                data = hr.read1(len(view))
                view[: len(data)] = data
                return len(data)

            return read_chunks
        first = [True]

        def read(view: memoryview) -> int:
            if hr.fp is None or hr.length == 0:
                return 0
            if first[0]:  # what header parsing read ahead: take it alone, without a socket read
                first[0] = False
                view = view[: max(1, len(fp.peek()))]
            if hr.length is not None:
                view = view[: hr.length]
            n = fp.readinto1(view)
            if hr.length is not None:
                hr.length -= n
            return n

        return read
    if hr is not None and callable(getattr(hr, "readinto", None)):  # an in-memory body (test doubles)
        return hr.readinto

    def read_any(view: memoryview) -> int:
        data = resp.raw.read(len(view), decode_content=False)
        view[: len(data)] = data
        return len(data)

    return read_any


class _Pace:
    """Fails a body that misses the deadline or stays under ``SETTINGS.min_speed`` for a whole window."""

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.start = time.monotonic()
        self.count = 0

    def check(self, n: int) -> None:
        now = time.monotonic()
        if self.deadline is not None and now > self.deadline:
            raise TransferError("the download ran past its deadline (SETTINGS.deadline / HUBKIT_DOWNLOAD_DEADLINE)",
                                retryable=False)
        self.count += n
        elapsed = now - self.start
        if elapsed >= SETTINGS.speed_window:
            speed = self.count / elapsed
            if speed < SETTINGS.min_speed:
                raise TransferError(f"too slow: {speed:.0f} bytes/s over the last {elapsed:.0f} s, under the minimum "
                                    f"of {SETTINGS.min_speed:.0f} bytes/s", retryable=False)
            self.start, self.count = now, 0


def stream_body(resp: Any, sink: BodySink, progress: ProgressSink, *, limit: int | None = None,
                deadline: float | None = None) -> int:
    """Read the body into buffers borrowed from ``sink`` and ``put`` each filled one; returns bytes read.

    ``limit`` bounds the body (the bytes still expected under ``size=``): a longer body, announced or not
    (chunked, or delimited by the connection closing), fails as an integrity error as soon as it is longer.
    ``deadline`` is a ``time.monotonic()`` instant. A body cut short, a reset or a stalled read raises a
    retryable ``TransferError``, after every byte received has been put.
    """
    import requests
    import urllib3

    read = _raw_reader(resp)
    pace = _Pace(deadline)
    got = 0
    try:
        while True:
            buf = sink.borrow()
            filled = 0
            try:
                while filled < len(buf) and (filled == 0 or len(buf) - filled >= _MIN_READ):
                    n = read(buf[filled:])
                    if not n:
                        break
                    filled += n
                    if limit is not None and got + filled > limit:
                        raise TransferError(f"the body is longer than the {limit} bytes expected (size=)",
                                            retryable=False, integrity=True)
                    pace.check(n)
            except BaseException:
                if filled:
                    sink.put(buf, filled)
                    got += filled
                    progress.update(filled)
                else:
                    sink.give_back(buf)
                raise
            if not filled:
                sink.give_back(buf)
                break
            sink.put(buf, filled)
            got += filled
            progress.update(filled)
    except (HubkitError, TransferError):  # the sink failed (disk full), or a limit: never a transport retry
        raise
    except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError,
            requests.exceptions.RequestException, ValueError) as e:
        what = "stalled (read timeout)" if isinstance(e, TimeoutError) or "timed out" in str(e) else _short(e)
        raise TransferError(f"transfer broke after {got} bytes: {what}", retryable=True) from e
    return got


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text if len(text) <= 300 else text[:297] + "..."
