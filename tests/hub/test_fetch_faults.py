"""hub.fetch under faults: resume, Range/If-Range edge cases, retries, stalls, redirects, disk-full, HTML pages,
and hostile servers (issue 13): a resumed download is one version of one file, every byte that arrived before
a reset or a timeout is kept, ``size=`` bounds a body the server does not announce, every wait has a bound,
and every failure is a HubkitError whose message says what to do.

A real server (the ``http_server`` fixture) serves the bytes; ``responses`` covers what a loopback server
cannot (https origins, gzip encodings).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import socket
import threading

import pytest
import responses
from httpserver import Fault, HTTPTestServer

import hubkit.hub.transport._http as http_mod
import hubkit.hub.transport._writer as writer_mod
import hubkit.hub.transport.cache as cache_mod
import hubkit.hub.transport.download as dl
from hubkit.errors import CacheError, DownloadError, IntegrityError
from hubkit.hub import fetch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def data() -> bytes:
    return os.urandom(1_500_000)


@pytest.fixture
def sleeps(monkeypatch) -> list[float]:
    """Record backoff waits instead of sleeping; reads time out after 0.5 s."""
    waits: list[float] = []
    monkeypatch.setattr(http_mod, "sleep", waits.append)
    monkeypatch.setattr(http_mod.SETTINGS, "read_timeout", 0.5)
    return waits


def partials(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".partial"))


def ranges(server, path) -> list[tuple[str | None, str | None, int]]:
    return [(r.headers.get("Range"), r.headers.get("If-Range"), r.status) for r in server.requests_for(path)]


# ---------------------------------------------------------------- resume


def test_drop_after_n_bytes_resumes_with_range_and_if_range(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(drop_after=400_000))
    path = fetch(url, sha256=sha(data))
    assert path.read_bytes() == data
    (r1, ir1, s1), (r2, ir2, s2) = ranges(http_server, "/f.bin")
    assert (r1, ir1, s1) == (None, None, 200)
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    assert r2 is not None and r2.startswith("bytes=") and ir2 == etag and s2 == 206
    resumed_from = int(re.match(r"bytes=(\d+)-", r2).group(1))
    assert 0 < resumed_from <= 400_000
    assert len(sleeps) == 1


def test_interrupted_run_leaves_partial_that_next_run_resumes(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(drop_after=1_100_000))
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 1)
    with pytest.raises(DownloadError, match="1100000 of 1500000|broke after"):
        fetch(url, sha256=sha(data))
    final = dl._target_path(url, None, None)
    assert not final.exists()
    [name] = partials(final.parent)
    kept = (final.parent / name).stat().st_size
    assert kept == 1_100_000  # every byte that arrived was kept
    record = json.loads((final.parent / (name + ".json")).read_text())
    assert record["url"] == url and record["etag"]
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin")[-1] == (f"bytes={kept}-", record["etag"], 206)
    assert partials(final.parent) == []


def test_ctrl_c_keeps_partial_for_the_next_call_in_the_same_process(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    calls = {"n": 0}
    real = cache_mod.write_all

    def interrupt_on_second_chunk(fd, view):
        calls["n"] += len(view) > 4096  # body chunks, not the small resume record
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(fd, view)

    monkeypatch.setattr(cache_mod, "write_all", interrupt_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        fetch(url, sha256=sha(data))
    monkeypatch.setattr(cache_mod, "write_all", real)
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin")[-1][0] == "bytes=1048576-"


def test_200_answer_to_range_request_restarts_cleanly(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(drop_after=1_100_000), Fault(ignore_range=True))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert [s for *_, s in ranges(http_server, "/f.bin")] == [200, 200]
    assert ranges(http_server, "/f.bin")[1][0] is not None  # it asked for a range and got the whole file


def _plant_partial(final, content: bytes, record: dict) -> None:
    """A partial left by a writer that died (pid 2**22+1 cannot be alive)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    token = f"{cache_mod._HOST}~{2**22 + 1}~deadbeef00"
    p = cache_mod.partial_path(final, token)
    p.write_bytes(content)
    p.with_name(p.name + ".json").write_text(json.dumps(record))


def test_416_for_a_complete_partial_is_verified_without_a_body(http_server, data):
    url = http_server.add("/f.bin", data)
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    final = dl._target_path(url, None, None)
    _plant_partial(final, data, {"url": url, "etag": etag, "total": len(data), "encoding": "identity"})
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin") == [(f"bytes={len(data)}-", etag, 416)]
    assert partials(final.parent) == []


def test_416_for_an_overlong_partial_restarts(http_server, data):
    url = http_server.add("/f.bin", data)
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    final = dl._target_path(url, None, None)
    _plant_partial(final, data + b"junk", {"url": url, "etag": etag, "total": None, "encoding": "identity"})
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert [s for *_, s in ranges(http_server, "/f.bin")] == [416, 200]


def test_spliced_partial_is_caught_by_the_hash(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    final = dl._target_path(url, None, None)
    _plant_partial(final, b"X" * 1000, {"url": url, "etag": etag, "total": len(data), "encoding": "identity"})
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        fetch(url, sha256=sha(data))
    assert not final.exists() and partials(final.parent) == []
    assert fetch(url, sha256=sha(data)).read_bytes() == data  # the bad partial is gone: a clean restart


def test_changed_etag_between_runs_restarts_with_new_content(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(drop_after=1_100_000))
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 1)
    with pytest.raises(DownloadError):
        fetch(url)
    new = os.urandom(900_000)
    http_server.add("/f.bin", new)  # upstream changed: new ETag
    assert fetch(url, sha256=sha(new)).read_bytes() == new
    last = http_server.requests_for("/f.bin")[-1]
    assert last.headers["If-Range"] == '"' + hashlib.sha1(data).hexdigest() + '"' and last.status == 200


def test_partial_without_strong_validator_restarts(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data, etag='W/"weak"')
    final = dl._target_path(url, None, None)
    _plant_partial(final, data[:1000], {"url": url, "etag": 'W/"weak"', "last_modified": None, "total": len(data)})
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin") == [(None, None, 200)]


def test_short_body_under_correct_content_length_is_retried_and_resumed(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(body=data[:1_200_000], content_length=len(data)))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin")[1][0] == "bytes=1200000-"


def test_short_body_without_expected_hash_is_not_committed(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(body=data[:1000], content_length=len(data), times=None))
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 2)
    with pytest.raises(DownloadError, match="1000 of 1500000|broke after"):
        fetch(url)
    assert not dl._target_path(url, None, None).exists()


# ---------------------------------------------------------------- wrong bytes


def test_same_size_wrong_bytes_fall_through_to_the_next_mirror(http_server, data, sleeps):
    bad = bytearray(data)
    bad[-1] ^= 1
    url = http_server.add("/p/f.bin", bytes(bad))
    mirror = http_server.add("/m/f.bin", data)
    assert fetch(url, sha256=sha(data), mirrors=(mirror,)).read_bytes() == data
    assert http_server.count("/p/f.bin") == 1  # a hash mismatch is not retried on the same source


def test_html_error_page_with_200_is_caught_and_named(http_server, data):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(html=True))
    with pytest.raises(IntegrityError) as exc:
        fetch(url, sha256=sha(data))
    assert "HTML page" in str(exc.value) and "text/html" in str(exc.value)
    assert not dl._target_path(url, None, None).exists()


def test_announced_size_mismatch_fails_before_the_body(http_server, data):
    url = http_server.add("/f.bin", data)
    with pytest.raises(IntegrityError, match="announces 1500000 bytes, expected 10"):
        fetch(url, size=10)
    final = dl._target_path(url, None, None)
    assert partials(final.parent) == [] and not final.exists()


# ---------------------------------------------------------------- retries


def test_503_and_429_with_retry_after_are_honoured_then_succeed(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(status=503, retry_after="3"), Fault(status=429, retry_after="7"))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert sleeps == [3.0, 7.0]
    assert http_server.count("/f.bin") == 3


def test_retry_after_http_date_and_cap(monkeypatch):
    assert http_mod.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert http_mod.parse_retry_after("junk") is None
    monkeypatch.setattr(http_mod.SETTINGS, "retry_after_max", 60.0)
    assert http_mod.backoff_delay(1, 3600.0) == 60.0
    delays = [http_mod.backoff_delay(a, None) for a in (1, 2, 3, 10)]
    assert 0.5 <= delays[0] <= 1 and 1 <= delays[1] <= 2 and 2 <= delays[2] <= 4
    assert delays[3] <= http_mod.SETTINGS.backoff_max


def test_persistent_503_gives_up_after_the_budget(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(status=503, times=None))
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 4)
    with pytest.raises(DownloadError, match=r"503.*gave up after 4 attempts"):
        fetch(url)
    assert http_server.count("/f.bin") == 4 and len(sleeps) == 3


@pytest.mark.parametrize("status", [401, 403, 404])
def test_client_errors_are_not_retried(http_server, data, sleeps, status):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(status=status, times=None))
    with pytest.raises(DownloadError, match=str(status)):
        fetch(url)
    assert http_server.count("/f.bin") == 1 and sleeps == []


def test_stalled_body_times_out_and_is_retried(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(stall_after=200_000, stall_seconds=10))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert http_server.count("/f.bin") == 2 and len(sleeps) == 1


def test_connection_refused_is_retried_then_reported(sleeps, monkeypatch):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 2)
    with pytest.raises(DownloadError, match="connection failed"):
        fetch(f"http://127.0.0.1:{port}/f.bin")
    assert len(sleeps) == 1


# ---------------------------------------------------------------- redirects


def test_cross_host_redirect_does_not_forward_credentials(http_server, data):
    with HTTPTestServer() as other:
        target = other.add("/real/f.bin", data).replace("127.0.0.1", "localhost")
        http_server.add("/f.bin", b"")
        http_server.fail("/f.bin", Fault(redirect_to=target, times=None))
        url = f"http://user:secret@127.0.0.1:{http_server.port}/f.bin"
        assert fetch(url, sha256=sha(data)).read_bytes() == data
        assert http_server.requests_for("/f.bin")[0].headers.get("Authorization", "").startswith("Basic ")
        assert other.requests_for("/real/f.bin")[0].headers.get("Authorization") is None


def test_same_origin_relative_redirect_is_followed(http_server, data):
    http_server.add("/old.bin", b"")
    http_server.fail("/old.bin", Fault(redirect_to="/new.bin", redirect_status=301))
    http_server.add("/new.bin", data)
    assert fetch(http_server.url("/old.bin"), sha256=sha(data)).read_bytes() == data


@responses.activate
def test_https_is_never_downgraded_by_a_redirect():
    responses.add(responses.GET, "https://secure.example/f.bin", status=302,
                  headers={"Location": "http://secure.example/f.bin"})
    responses.add(responses.GET, "http://secure.example/f.bin", body=b"plain")
    with pytest.raises(DownloadError, match="never downgrades https"):
        fetch("https://secure.example/f.bin")
    assert [c.request.url for c in responses.calls] == ["https://secure.example/f.bin"]


@responses.activate
def test_redirect_loop_is_bounded(monkeypatch):
    monkeypatch.setattr(http_mod.SETTINGS, "max_redirects", 3)
    responses.add(responses.GET, "https://loop.example/a", status=302, headers={"Location": "/a"})
    with pytest.raises(DownloadError, match="more than 3 redirects"):
        fetch("https://loop.example/a")
    assert len(responses.calls) == 4


@responses.activate
def test_gzip_content_encoding_on_a_gz_file_keeps_the_bytes_as_served(sleeps):
    payload = os.urandom(20_000) + b"\0" * 200_000
    body = gzip.compress(payload)  # a .gz file that the server also labels Content-Encoding: gzip (S3 does)
    responses.add(responses.GET, "https://cdn.example/w.gz", body=body,
                  headers={"Content-Encoding": "gzip", "Content-Length": str(len(body))})
    path = fetch("https://cdn.example/w.gz", sha256=sha(body), size=len(body))
    assert path.read_bytes() == body  # as curl and wget save it, not decoded


@responses.activate
def test_a_hash_of_the_decoded_bytes_is_refused_and_the_encoding_named(sleeps):
    payload = b"weights" * 1000
    body = gzip.compress(payload)
    responses.add(responses.GET, "https://cdn.example/w.bin", body=body, headers={"Content-Encoding": "gzip"})
    with pytest.raises(IntegrityError, match="Content-Encoding: gzip"):
        fetch("https://cdn.example/w.bin", sha256=sha(payload))


@responses.activate
def test_responses_404_then_mirror(sleeps):
    responses.add(responses.GET, "https://a.example/f.bin", status=404)
    responses.add(responses.GET, "https://b.example/f.bin", body=b"ok!")
    assert fetch("https://a.example/f.bin", mirrors=("https://b.example/f.bin",)).read_bytes() == b"ok!"
    assert [c.request.url for c in responses.calls] == ["https://a.example/f.bin", "https://b.example/f.bin"]


# ---------------------------------------------------------------- disk space


def test_enospc_mid_download_leaves_no_partial_and_raises_cache_error(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    real = cache_mod.write_all
    calls = {"n": 0}

    def disk_full_on_second_chunk(fd, view):
        calls["n"] += len(view) > 4096  # body chunks, not the small resume record
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, view)

    monkeypatch.setattr(cache_mod, "write_all", disk_full_on_second_chunk)
    with pytest.raises(CacheError, match="No space left"):
        fetch(url, sha256=sha(data), mirrors=(http_server.add("/m/f.bin", data),))
    final = dl._target_path(url, None, None)
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []
    assert http_server.count("/m/f.bin") == 0  # a full local disk is not the source's fault


def test_free_space_is_checked_before_the_first_byte(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    monkeypatch.setattr(writer_mod, "free_bytes", lambda directory: 1000)
    writes = []
    real = cache_mod.write_all
    monkeypatch.setattr(cache_mod, "write_all", lambda fd, view: writes.append(len(view)) if len(view) > 4096 else (
        real(fd, view)))  # body chunks are recorded, not written; small records are written
    with pytest.raises(CacheError, match=r"needs 1500000 bytes.*1000 are free"):
        fetch(url, sha256=sha(data))
    final = dl._target_path(url, None, None)
    assert writes == [] and not final.exists() and partials(final.parent) == []


# ---------------------------------------------------------------- item 2: one version of one file


def test_206_for_another_version_restarts_instead_of_splicing(http_server, data, sleeps, monkeypatch):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(drop_after=700_000))
    monkeypatch.setattr(http_mod.SETTINGS, "max_attempts", 1)
    with pytest.raises(DownloadError):
        fetch(url)
    new = os.urandom(len(data))  # upstream changed, same size; a cache in between ignores If-Range
    http_server.add("/f.bin", new)
    http_server.fail("/f.bin", Fault(ignore_if_range=True))
    assert fetch(url, sha256=sha(new)).read_bytes() == new
    old_etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    second, third = ranges(http_server, "/f.bin")[1:]
    assert second[1] == old_etag and second[2] == 206  # the spliced answer came, and was not appended
    assert third == (None, None, 200)


def test_transfer_encoding_overrides_content_length(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(chunked=True, headers={"Content-Length": "10"}))
    assert fetch(url, sha256=sha(data), size=len(data)).read_bytes() == data


def test_bytes_received_before_a_reset_are_kept_and_the_retry_resumes_after_them(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(reset_after=300_000))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    (first, _, _), (second, if_range, status) = ranges(http_server, "/f.bin")
    assert first is None and second is not None and status == 206
    resumed_from = int(re.match(r"bytes=(\d+)-", second).group(1))
    assert 0 < resumed_from <= 300_000


def test_bytes_received_before_a_read_timeout_are_kept(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(stall_after=200_000, stall_seconds=10))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert ranges(http_server, "/f.bin")[1][0] == "bytes=200000-"


# ---------------------------------------------------------------- item 4: size= bounds every body


def test_size_bounds_a_chunked_body_that_never_announces_its_length(http_server, sleeps):
    url = http_server.add("/endless.bin", bytes(64 << 20))
    http_server.fail("/endless.bin", Fault(chunked=True))
    with pytest.raises(IntegrityError, match="longer than the 1000 bytes expected"):
        fetch(url, size=1000)
    assert http_server.requests_for("/endless.bin")[0].sent < 16 << 20  # cut off, not read to the end
    final = dl._target_path(url, None, None)
    assert not final.exists() and [p for p in final.parent.iterdir() if p.name.endswith(".partial")] == []


# ---------------------------------------------------------------- item 5: every wait has a bound


def test_a_trickling_server_fails_on_the_minimum_speed_and_is_not_retried(http_server, sleeps, monkeypatch):
    url = http_server.add("/slow.bin", os.urandom(3000), rate=300)
    monkeypatch.setattr(http_mod.SETTINGS, "min_speed", 10_000)
    monkeypatch.setattr(http_mod.SETTINGS, "speed_window", 0.3)
    with pytest.raises(DownloadError, match="too slow"):
        fetch(url)
    assert http_server.count("/slow.bin") == 1


def test_a_download_ends_at_its_deadline(http_server, sleeps, monkeypatch):
    url = http_server.add("/slow.bin", os.urandom(50_000), rate=5000)
    monkeypatch.setenv("HUBKIT_DOWNLOAD_DEADLINE", "0.5")
    with pytest.raises(DownloadError, match="deadline"):
        fetch(url)


def test_retry_after_beyond_the_cap_fails_the_source_instead_of_sleeping(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(status=503, retry_after="999999999", times=None))
    with pytest.raises(DownloadError, match="retry after 999999999 s"):
        fetch(url)
    assert sleeps == [] and http_server.count("/f.bin") == 1


def test_a_host_that_does_not_resolve_fails_at_once_and_says_how_to_work_offline(monkeypatch, sleeps):
    looked_up = []

    def no_dns(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(DownloadError) as exc:
        fetch("https://files.example.org/weights.bin")
    message = str(exc.value)
    assert "HUBKIT_OFFLINE=1" in message and "hubkit mirror sync" in message and "does not resolve" in message
    assert sleeps == [] and len(looked_up) == 1


def test_a_fifo_at_a_file_mirror_path_is_skipped_not_waited_on(http_server, tmp_path, monkeypatch):

    payload = b"the real file"
    url = http_server.add("/d/f.bin", payload)
    mirror = tmp_path / "mirror"
    fifo = mirror.joinpath(*cache_mod.url_relpath(url).split("/"))
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    monkeypatch.setenv("HUBKIT_MIRROR", mirror.as_uri())
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["path"] = fetch(url, sha256=sha(payload))
        except BaseException as e:  # reported below
            outcome["error"] = e

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # blocked in open(): give it a writer so the thread ends, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(10)
        pytest.fail("fetch blocked opening a FIFO in the mirror")
    assert "error" not in outcome, outcome.get("error")
    assert outcome["path"].read_bytes() == payload


# ---------------------------------------------------------------- item 6: every failure a HubkitError


def test_non_ascii_digits_in_content_length_are_a_download_error(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(headers={"Content-Length": "1\u00b2", "Connection": "close"}))
    with pytest.raises(DownloadError, match="malformed Content-Length"):
        fetch(url)


def test_non_ascii_digits_in_content_range_are_a_download_error(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    etag = '"' + hashlib.sha1(data).hexdigest() + '"'
    _plant_partial(dl._target_path(url, None, None), data[:1000],
                   {"url": url, "etag": etag, "total": len(data), "encoding": "identity"})
    http_server.fail("/f.bin", Fault(headers={"Content-Range": f"bytes \u00b9000-{len(data) - 1}/{len(data)}"}))
    with pytest.raises(DownloadError, match="malformed Content-Range"):
        fetch(url)


def test_non_ascii_digits_in_retry_after_are_ignored(http_server, data, sleeps):
    url = http_server.add("/f.bin", data)
    http_server.fail("/f.bin", Fault(status=503, retry_after="\u00b2"))
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert len(sleeps) == 1 and sleeps[0] <= http_mod.SETTINGS.backoff_base  # plain backoff, not the header


def test_enospc_while_writing_the_resume_record_is_a_cache_error(http_server, data, disk_full_after):
    url = http_server.add("/f.bin", data)
    disk_full_after(0)
    with pytest.raises(CacheError, match="No space left"):
        fetch(url, sha256=sha(data))
    final = dl._target_path(url, None, None)
    assert not final.exists() and [p for p in final.parent.iterdir() if p.name.endswith(".partial")] == []
