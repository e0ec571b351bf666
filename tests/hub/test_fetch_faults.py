"""hub.fetch under faults: resume, Range/If-Range edge cases, retries, stalls, redirects, disk-full, HTML pages.

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

import pytest
import responses
from httpserver import Fault, HTTPTestServer

import hubkit.hub._http as http_mod
import hubkit.hub.cache as cache_mod
import hubkit.hub.download as dl
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
    real = dl._write_all

    def interrupt_on_second_chunk(fd, view):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        real(fd, view)

    monkeypatch.setattr(dl, "_write_all", interrupt_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        fetch(url, sha256=sha(data))
    monkeypatch.setattr(dl, "_write_all", real)
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
def test_gzip_content_encoding_with_misleading_length_is_decoded_and_verified(sleeps):
    payload = os.urandom(20_000) + b"\0" * 200_000
    body = gzip.compress(payload)
    responses.add(responses.GET, "https://cdn.example/w.bin", body=body,
                  headers={"Content-Encoding": "gzip", "Content-Length": str(len(body))})
    path = fetch("https://cdn.example/w.bin", sha256=sha(payload), size=len(payload))
    assert path.read_bytes() == payload


@responses.activate
def test_responses_404_then_mirror(sleeps):
    responses.add(responses.GET, "https://a.example/f.bin", status=404)
    responses.add(responses.GET, "https://b.example/f.bin", body=b"ok!")
    assert fetch("https://a.example/f.bin", mirrors=("https://b.example/f.bin",)).read_bytes() == b"ok!"
    assert [c.request.url for c in responses.calls] == ["https://a.example/f.bin", "https://b.example/f.bin"]


# ---------------------------------------------------------------- disk space


def test_enospc_mid_download_leaves_no_partial_and_raises_cache_error(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    real = dl._write_all
    calls = {"n": 0}

    def disk_full_on_second_chunk(fd, view):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, view)

    monkeypatch.setattr(dl, "_write_all", disk_full_on_second_chunk)
    with pytest.raises(CacheError, match="No space left"):
        fetch(url, sha256=sha(data), mirrors=(http_server.add("/m/f.bin", data),))
    final = dl._target_path(url, None, None)
    assert not final.exists()
    assert [p.name for p in final.parent.iterdir() if not p.name.endswith(".lock")] == []
    assert http_server.count("/m/f.bin") == 0  # a full local disk is not the source's fault


def test_free_space_is_checked_before_the_first_byte(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    monkeypatch.setattr(dl, "_free_bytes", lambda directory: 1000)
    writes = []
    monkeypatch.setattr(dl, "_write_all", lambda fd, view: writes.append(len(view)))
    with pytest.raises(CacheError, match=r"needs 1500000 bytes.*1000 are free"):
        fetch(url, sha256=sha(data))
    final = dl._target_path(url, None, None)
    assert writes == [] and not final.exists() and partials(final.parent) == []
