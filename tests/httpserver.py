"""A real threaded HTTP/1.1 server on 127.0.0.1 for download tests, with injectable faults.

Use it through the ``http_server`` pytest fixture (tests/conftest.py), or as a context manager::

    def test_something(http_server):
        url = http_server.add("/data/train.bin", b"payload")      # -> "http://127.0.0.1:PORT/data/train.bin"
        http_server.fail("/data/train.bin", Fault(drop_after=3))   # the next request is cut after 3 bytes
        ...
        assert http_server.count("/data/train.bin") == 2           # requests that reached this path
        first = http_server.requests_for("/data/train.bin")[0]     # a Recorded(method, path, headers, status)
        assert first.headers.get("Range") is None

    with HTTPTestServer() as other:                                  # a second origin (another port)
        ...

Files
    ``add(path, data, *, etag=None, content_type=..., last_modified=None, rate=None) -> url`` serves bytes
    from memory; ``add_file(path, file_path, ...)`` serves a file from disk (with ``sendfile`` when no fault
    applies, for benchmarks). Adding a path again replaces its content, and its ETag changes with it (the
    default ETag is a strong tag derived from the content), which is how "the file changed upstream" is
    simulated. ``rate`` throttles the body to about that many bytes per second. ``remove(path)`` makes it
    404.

Protocol
    GET and HEAD; ``Content-Length``, strong ``ETag``, ``Last-Modified``, ``Accept-Ranges: bytes``;
    ``Range: bytes=a-b | a- | -n`` answered with 206 and ``Content-Range``; ``If-Range`` holding a
    different ETag/date answers 200 with the full body; a range starting past the end answers 416 with
    ``Content-Range: bytes */SIZE``. Unknown paths answer 404.

Faults (``Fault`` fields, queued per path with ``fail(path, *faults)``; each request to the path consumes
one use of the first queued fault, ``times=None`` keeps a fault forever)
    ``status`` (+ ``retry_after``, ``body``): answer that status instead of the file;
    ``drop_after=N``: send the headers and N body bytes, then close the connection;
    ``stall_after=N`` (+ ``stall_seconds``): send N bytes, then go silent;
    ``ignore_range``: answer 200 with the full body even to a Range request;
    ``body``: send these bytes instead of the file's (with a 200 and the file's headers; the
    Content-Length is the body's unless ``content_length`` overrides it — a short body under a correct
    Content-Length is ``body=data[:k], content_length=len(data)``);
    ``html``: answer 200 with an HTML error page and ``Content-Type: text/html``;
    ``redirect_to``: answer ``redirect_status`` (302) with ``Location`` set to this URL;
    ``etag``: send this ETag instead of the file's;
    ``reset_after=N``: send the headers and N body bytes, then reset the connection (TCP RST);
    ``chunked``: send the body with ``Transfer-Encoding: chunked`` and no ``Content-Length``;
    ``ignore_if_range``: answer a Range request with 206 even when its ``If-Range`` names another version
    (a broken server or cache);
    ``headers``: extra response headers, overriding the server's own (a value of ``None`` drops one).

Request log
    ``requests`` (all, in arrival order), ``requests_for(path)``, ``count(path)``, ``reset_log()``.
    Each ``Recorded`` has ``method``, ``path``, ``headers`` (a case-insensitive copy), ``status`` and ``sent``
    (body bytes written to the socket).

``rate`` below 1 KiB/s sends the body a few bytes at a time (a trickling server).

Run ``python tests/httpserver.py DIR`` to serve a directory from disk (prints ``PORT <n>``; used by
bench/download.py so the server does not share a process, and a GIL, with the client it measures).
"""

from __future__ import annotations

import contextlib
import email.utils
import hashlib
import http.server
import os
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

_CHUNK = 1 << 20


@dataclass
class Fault:
    """One injected misbehaviour; see the module docstring for what each field does."""

    status: int | None = None
    retry_after: str | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = 30.0
    ignore_range: bool = False
    body: bytes | None = None
    content_length: int | None = None
    html: bool = False
    redirect_to: str | None = None
    redirect_status: int = 302
    etag: str | None = None
    reset_after: int | None = None
    chunked: bool = False
    ignore_if_range: bool = False
    headers: dict[str, str | None] = field(default_factory=dict)
    times: int | None = 1


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: Message
    status: int = 0
    sent: int = 0


@dataclass
class _Entry:
    data: bytes | None
    file_path: Path | None
    size: int
    etag: str
    last_modified: str
    content_type: str
    rate: float | None
    faults: list[Fault] = field(default_factory=list)


class _QuietHTTPServer(http.server.ThreadingHTTPServer):
    """Clients that hang up mid-request are part of the fault tests, not server errors worth a traceback."""

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            super().handle_error(request, client_address)


class HTTPTestServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) serving in-memory or on-disk files."""

    def __init__(self) -> None:
        self._files: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[Recorded] = []
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port: int = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, name="http-test-server", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ files

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base_url + _norm(path)

    def add(
        self,
        path: str,
        data: bytes,
        *,
        etag: str | None = None,
        content_type: str = "application/octet-stream",
        last_modified: float | None = None,
        rate: float | None = None,
    ) -> str:
        """Serve ``data`` at ``path`` (replacing any earlier content); returns its URL."""
        tag = etag if etag is not None else '"' + hashlib.sha1(data).hexdigest() + '"'
        self._put(path, _Entry(data, None, len(data), tag, _http_date(last_modified), content_type, rate))
        return self.url(path)

    def add_file(
        self,
        path: str,
        file_path: str | os.PathLike,
        *,
        etag: str | None = None,
        content_type: str = "application/octet-stream",
        rate: float | None = None,
    ) -> str:
        """Serve the file at ``file_path`` (read from disk on every request); returns its URL."""
        file_path = Path(file_path)
        st = file_path.stat()
        tag = etag if etag is not None else f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
        self._put(path, _Entry(None, file_path, st.st_size, tag, _http_date(st.st_mtime), content_type, rate))
        return self.url(path)

    def remove(self, path: str) -> None:
        """Stop serving ``path`` (it answers 404 from now on)."""
        with self._lock:
            self._files.pop(_norm(path), None)

    def fail(self, path: str, *faults: Fault) -> None:
        """Queue faults for the next requests to ``path`` (the path may be added before or after)."""
        with self._lock:
            entry = self._files.get(_norm(path))
            if entry is None:
                raise KeyError(f"add {path!r} before queueing faults for it")
            entry.faults.extend(faults)

    def clear_faults(self, path: str) -> None:
        with self._lock:
            self._files[_norm(path)].faults.clear()

    def _put(self, path: str, entry: _Entry) -> None:
        with self._lock:
            old = self._files.get(_norm(path))
            if old is not None:
                entry.faults = old.faults
            self._files[_norm(path)] = entry

    # ------------------------------------------------------------------ log

    def requests_for(self, path: str) -> list[Recorded]:
        """Requests that asked for ``path`` (query string ignored), in arrival order."""
        p = _norm(path)
        with self._lock:
            return [r for r in self.requests if r.path == p]

    def count(self, path: str, method: str = "GET") -> int:
        """How many ``method`` requests reached ``path``."""
        return sum(1 for r in self.requests_for(path) if r.method == method)

    def reset_log(self) -> None:
        with self._lock:
            self.requests.clear()

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> HTTPTestServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ request handling (server threads)

    def _take(self, path: str) -> tuple[_Entry | None, Fault | None]:
        with self._lock:
            entry = self._files.get(path)
            if entry is None or not entry.faults:
                return entry, None
            fault = entry.faults[0]
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    entry.faults.pop(0)
            return entry, fault

    def _record(self, rec: Recorded) -> None:
        with self._lock:
            self.requests.append(rec)


def _norm(path: str) -> str:
    path = path.split("?", 1)[0]
    return path if path.startswith("/") else "/" + path


def _http_date(ts: float | None) -> str:
    return email.utils.formatdate(ts if ts is not None else time.time() - 3600, usegmt=True)


def _parse_range(value: str, size: int) -> tuple[int, int] | None | str:
    """``(start, end_inclusive)``, ``None`` when the header is unusable, ``"416"`` when unsatisfiable."""
    if not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = value[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(size - n, 0), size - 1) if n > 0 and size > 0 else "416"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size:
        return "416"
    return start, min(end, size - 1)


def _make_handler(server: HTTPTestServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _reply(self, rec: Recorded, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            rec.status = status
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body and self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            path = _norm(self.path)
            rec = Recorded(self.command, path, self.headers)
            server._record(rec)
            entry, fault = server._take(path)
            if entry is None:
                self._reply(rec, 404, {"Content-Type": "text/plain"}, b"not found\n")
                return
            fault = fault or Fault(times=None)
            if fault.redirect_to is not None:
                self._reply(rec, fault.redirect_status, {"Location": fault.redirect_to})
                return
            if fault.status is not None:
                headers = {"Content-Type": "text/plain"}
                if fault.retry_after is not None:
                    headers["Retry-After"] = fault.retry_after
                headers.update({k: v for k, v in fault.headers.items() if v is not None})
                self._reply(rec, fault.status, headers, fault.body or f"error {fault.status}\n".encode())
                return
            if fault.html:
                page = b"<!DOCTYPE html><html><body><h1>Quota exceeded</h1>Try again later.</body></html>\n"
                self._reply(rec, 200, {"Content-Type": "text/html; charset=utf-8"}, page)
                return

            etag = fault.etag if fault.etag is not None else entry.etag
            status, start, end = 200, 0, entry.size - 1
            rng = self.headers.get("Range")
            if rng and not fault.ignore_range and fault.body is None:
                if_range = self.headers.get("If-Range")
                if if_range is None or if_range in (etag, entry.last_modified) or fault.ignore_if_range:
                    parsed = _parse_range(rng, entry.size)
                    if parsed == "416":
                        rec.status = 416
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{entry.size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if parsed is not None:
                        status, (start, end) = 206, parsed
            if fault.body is not None:
                body_len = len(fault.body)
                length = fault.content_length if fault.content_length is not None else body_len
            else:
                body_len = length = end - start + 1
            rec.status = status
            self.send_response(status)
            headers = {"Content-Type": entry.content_type, "Content-Length": str(length), "ETag": etag,
                       "Last-Modified": entry.last_modified, "Accept-Ranges": "bytes"}
            if status == 206:
                headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
            if fault.chunked:
                del headers["Content-Length"]
                headers["Transfer-Encoding"] = "chunked"
            cut = next((c for c in (fault.drop_after, fault.stall_after, fault.reset_after) if c is not None), None)
            if cut is not None or fault.body is not None:
                headers["Connection"] = "close"
                self.close_connection = True
            headers.update(fault.headers)
            for key, value in headers.items():
                if value is not None:
                    self.send_header(key, value)
            self.end_headers()
            if head:
                return
            limit = body_len if cut is None else min(cut, body_len)
            if fault.chunked:
                self._send_chunked(rec, entry, fault.body, start, limit)
            else:
                self._send_body(rec, entry, fault.body, start, limit)
            if fault.stall_after is not None:
                server._stop.wait(fault.stall_seconds)
            if fault.reset_after is not None:
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()  # with a zero linger time: RST, not FIN
                return
            if cut is not None or fault.body is not None:
                self.wfile.flush()
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)

        def _send_chunked(self, rec: Recorded, entry: _Entry, override: bytes | None, start: int,
                          count: int) -> None:
            data = memoryview(override if override is not None else entry.data)[start : start + count]
            try:
                for pos in range(0, len(data), _CHUNK):
                    piece = data[pos : pos + _CHUNK]
                    self.wfile.write(b"%x\r\n" % len(piece) + bytes(piece) + b"\r\n")
                    rec.sent += len(piece)
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _send_body(self, rec: Recorded, entry: _Entry, override: bytes | None, start: int, count: int) -> None:
            try:
                if override is not None:
                    self.wfile.write(override[:count])
                    rec.sent += min(count, len(override))
                elif entry.file_path is not None and entry.rate is None:
                    self.wfile.flush()
                    with open(entry.file_path, "rb") as f:
                        rec.sent += self.connection.sendfile(f, start, count)
                elif entry.file_path is not None:
                    with open(entry.file_path, "rb") as f:
                        f.seek(start)
                        self._write_throttled(rec, lambda n: f.read(n), count, entry.rate)
                else:
                    view = memoryview(entry.data)[start : start + count]
                    pos = 0

                    def take(n: int) -> memoryview:
                        nonlocal pos
                        piece = view[pos : pos + n]
                        pos += len(piece)
                        return piece

                    self._write_throttled(rec, take, count, entry.rate)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _write_throttled(self, rec: Recorded, take, count: int, rate: float | None) -> None:
            step = _CHUNK if rate is None else max(16, min(_CHUNK, int(rate / 20)))
            sent = 0
            while sent < count and not server._stop.is_set():
                piece = take(min(step, count - sent))
                if not piece:
                    break
                self.wfile.write(piece)
                sent += len(piece)
                rec.sent += len(piece)
                if rate is not None:
                    self.wfile.flush()
                    time.sleep(len(piece) / rate)

    return Handler


def _serve_directory(root: Path) -> None:
    with HTTPTestServer() as srv:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                srv.add_file("/" + p.relative_to(root).as_posix(), p)
        print(f"PORT {srv.port}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            sys.stdin.read()  # serve until the parent closes our stdin


if __name__ == "__main__":
    _serve_directory(Path(sys.argv[1]))
