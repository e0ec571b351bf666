"""hub.fetch: verification, the cache and its sidecar, dest/filename, offline mode, mirrors, the API surface."""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from httpserver import Fault

import hubkit.hub.transport._writer as writer_mod
import hubkit.hub.transport.cache as cache_mod
import hubkit.hub.transport.download as dl
import hubkit.hub.transport.verify as verify_mod
from hubkit.errors import DownloadError, HubkitError, IntegrityError, OfflineError
from hubkit.hub import Resource, cache_dir, fetch, fetch_many


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def data() -> bytes:
    return os.urandom(300_000)


@pytest.fixture
def no_network(monkeypatch):
    """Any socket creation fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def no_hashing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the file was re-hashed")

    monkeypatch.setattr(verify_mod, "hash_file", refuse)


# ---------------------------------------------------------------- basics


def test_fetch_caches_verified_file_at_host_path(http_server, data, _isolated_hubkit_home):
    url = http_server.add("/data/sub/train.bin", data)
    path = fetch(url, sha256=sha(data), size=len(data))
    assert path == _isolated_hubkit_home / "files" / f"127.0.0.1_{http_server.port}" / "data" / "sub" / "train.bin"
    assert path.read_bytes() == data
    record = json.loads((path.parent / ".train.bin.hubkit.json").read_text())
    assert record["sha256"] == sha(data) and record["size"] == len(data) and record["url"] == url
    assert record["etag"] == '"' + hashlib.sha1(data).hexdigest() + '"'
    leftovers = [p.name for p in path.parent.iterdir() if p.name.endswith((".partial", ".partial.json"))]
    assert leftovers == []


def test_request_asks_for_identity_encoding(http_server, data):
    url = http_server.add("/f.bin", data)
    fetch(url)
    assert http_server.requests_for("/f.bin")[0].headers["Accept-Encoding"] == "identity"


def test_cache_dir_follows_hubkit_home(_isolated_hubkit_home, monkeypatch, tmp_path):
    assert cache_dir() == _isolated_hubkit_home
    monkeypatch.delenv("HUBKIT_HOME")
    import platformdirs

    assert cache_dir() == Path(platformdirs.user_cache_dir("hubkit"))


def test_cached_hit_opens_no_socket_and_does_not_rehash(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    first = fetch(url, sha256=sha(data))

    def refuse(*a, **k):
        raise AssertionError("network or hashing used for a cached hit")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(verify_mod, "hash_file", refuse)
    assert fetch(url, sha256=sha(data)) == first
    assert fetch(url) == first
    assert http_server.count("/f.bin") == 1


def test_changed_fingerprint_triggers_rehash_and_refetch_of_corrupted_file(http_server, data):
    url = http_server.add("/f.bin", data)
    path = fetch(url, sha256=sha(data))
    corrupted = bytearray(data)
    corrupted[1000] ^= 0xFF
    path.write_bytes(bytes(corrupted))  # same size, new mtime: the fingerprint changes
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert http_server.count("/f.bin") == 2


def test_touched_but_intact_file_is_rehashed_once_and_not_refetched(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    path = fetch(url, sha256=sha(data))
    os.utime(path, ns=(1, 1))
    calls = []
    real = verify_mod.hash_file
    monkeypatch.setattr(verify_mod, "hash_file", lambda *a, **k: calls.append(a) or real(*a, **k))
    fetch(url, sha256=sha(data))
    fetch(url, sha256=sha(data))
    assert len(calls) == 1  # the second hit trusts the refreshed fingerprint
    assert http_server.count("/f.bin") == 1


def test_md5_only_and_prefix_only_entries_record_full_sha256(http_server, data):
    url = http_server.add("/a.bin", data)
    path = fetch(url, md5=hashlib.md5(data).hexdigest())
    record = json.loads((path.parent / ".a.bin.hubkit.json").read_text())
    assert record["sha256"] == sha(data) and record["md5"] == hashlib.md5(data).hexdigest()
    url2 = http_server.add("/b.bin", data)
    path2 = fetch(url2, sha256_prefix=sha(data)[:8])
    assert json.loads((path2.parent / ".b.bin.hubkit.json").read_text())["sha256"] == sha(data)


def test_sha256_prefix_mismatch_is_an_integrity_error(http_server, data):
    url = http_server.add("/a.bin", data)
    with pytest.raises(IntegrityError, match="starting 00000000"):
        fetch(url, sha256_prefix="00000000" if not sha(data).startswith("00000000") else "11111111")


def test_md5_requested_on_sha_only_record_hashes_once(http_server, data):
    url = http_server.add("/a.bin", data)
    fetch(url, sha256=sha(data))
    path = fetch(url, md5=hashlib.md5(data).hexdigest())
    assert json.loads((path.parent / ".a.bin.hubkit.json").read_text())["md5"] == hashlib.md5(data).hexdigest()
    assert http_server.count("/a.bin") == 1


def test_wrong_hash_in_cache_request_refetches(http_server, data):
    url = http_server.add("/a.bin", data)
    fetch(url)
    new = os.urandom(1000)
    http_server.add("/a.bin", new)
    assert fetch(url, sha256=sha(new)).read_bytes() == new


def test_dest_and_filename_write_into_directory_with_sidecar(http_server, data, tmp_path):
    url = http_server.add("/dl/archive.tar.gz", data)
    path = fetch(url, sha256=sha(data), dest=tmp_path / "out", filename="renamed.tgz")
    assert path == tmp_path / "out" / "renamed.tgz" and path.read_bytes() == data
    assert (tmp_path / "out" / ".renamed.tgz.hubkit.json").exists()
    assert fetch(url, sha256=sha(data), dest=tmp_path / "out", filename="renamed.tgz") == path
    assert http_server.count("/dl/archive.tar.gz") == 1


def test_dest_with_existing_matching_file_is_used_without_download(http_server, data, tmp_path):
    url = http_server.add("/x.bin", data)
    (tmp_path / "x.bin").write_bytes(data)  # e.g. an existing torchvision tree
    assert fetch(url, sha256=sha(data), dest=tmp_path).read_bytes() == data
    assert http_server.count("/x.bin") == 0


def test_query_string_urls_get_distinct_cache_files(http_server):
    a = fetch(http_server.add("/uc", b"A") + "?id=1", filename="a.bin")
    http_server.add("/uc", b"B")
    b = fetch(http_server.url("/uc") + "?id=2", filename="a.bin")
    assert a != b and a.read_bytes() == b"A" and b.read_bytes() == b"B"


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sha256": "abc"}, "sha256 must be a hex digest of 64"),
        ({"md5": "z" * 32}, "md5 must be a hex digest of 32"),
        ({"size": -1}, "size must be a non-negative int"),
        ({"filename": "../evil"}, "Unsafe filename"),
        ({"filename": "a/b"}, "single file name"),
        ({"filename": "C:evil"}, "Windows drive"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(HubkitError, match=match):
        fetch("http://127.0.0.1:9/f.bin", **kwargs)


@pytest.mark.parametrize("url", ["ftp://host/f", "host/f", "http:///nohost/f", "http://host/"])
def test_unusable_urls_are_refused(url):
    with pytest.raises(DownloadError):
        fetch(url)


def test_url_path_with_dotdot_cannot_escape_cache(_isolated_hubkit_home):
    with pytest.raises(DownloadError, match=r"'\.\.'"):
        fetch("http://127.0.0.1:9/a/%2e%2e/%2e%2e/etc/passwd")


def test_hubkit_hub_import_does_not_import_requests():
    code = ("import sys, hubkit.hub, hubkit.hub.transport.cache; "
            "assert 'requests' not in sys.modules, 'requests imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- mirrors


def test_mirror_order_env_bases_then_primary_then_mirrors(http_server, data, monkeypatch):
    primary = http_server.add("/up/f.bin", data)
    rel = f"127.0.0.1_{http_server.port}/up/f.bin"
    http_server.add(f"/m1/{rel}", b"x" * len(data))  # env mirror 1: same size, wrong bytes
    # env mirror 2 (/m2/...) does not exist: 404
    http_server.fail("/up/f.bin", Fault(status=404, times=None))
    http_server.add("/alt1/f.bin", os.urandom(len(data)))  # explicit mirror 1: wrong bytes
    good = http_server.add("/alt2/f.bin", data)
    monkeypatch.setenv("HUBKIT_MIRROR", f"{http_server.url('/m1')}, {http_server.url('/m2')}/")
    path = fetch(primary, sha256=sha(data), mirrors=(http_server.url("/alt1/f.bin"), good))
    assert path.read_bytes() == data
    order = [r.path for r in http_server.requests]
    assert order == [f"/m1/{rel}", f"/m2/{rel}", "/up/f.bin", "/alt1/f.bin", "/alt2/f.bin"]


def test_all_sources_failing_names_each_url_and_hashes(http_server, data):
    primary = http_server.add("/p/f.bin", b"y" * len(data))
    mirror = http_server.url("/missing/f.bin")
    with pytest.raises(IntegrityError) as exc:
        fetch(primary, sha256=sha(data), mirrors=(mirror,))
    msg = str(exc.value)
    assert primary in msg and mirror in msg and "404" in msg
    assert sha(data) in msg and sha(b"y" * len(data)) in msg
    assert http_server.count("/missing/f.bin") == 1  # 404 is not retried


def test_file_mirror_base_serves_offline_with_no_socket(data, tmp_path, monkeypatch, no_network):
    url = "https://example.org/ds/train.bin"
    mirror = tmp_path / "mirror"
    (mirror / "example.org" / "ds").mkdir(parents=True)
    (mirror / "example.org" / "ds" / "train.bin").write_bytes(data)
    monkeypatch.setenv("HUBKIT_MIRROR", mirror.as_uri())
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    path = fetch(url, sha256=sha(data))
    assert path.read_bytes() == data and path == dl._target_path(url, None, None)


def test_file_url_primary_is_copied_and_verified(tmp_path, data):
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    path = fetch(src.as_uri(), sha256=sha(data), dest=tmp_path / "out")
    assert path.read_bytes() == data
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        fetch(src.as_uri(), sha256="0" * 64, dest=tmp_path / "out2")
    assert not (tmp_path / "out2" / "src.bin").exists()


def test_bad_mirror_env_value_is_explained(monkeypatch):
    monkeypatch.setenv("HUBKIT_MIRROR", "ftp://nope")
    with pytest.raises(DownloadError, match="HUBKIT_MIRROR"):
        fetch("http://127.0.0.1:9/f.bin")


# ---------------------------------------------------------------- offline


def test_offline_serves_cached_hit_with_sockets_patched(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    fetch(url, sha256=sha(data))
    monkeypatch.setattr(socket, "socket", lambda *a, **k: pytest.fail("socket opened"))
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    assert fetch(url, sha256=sha(data)).read_bytes() == data


def test_offline_miss_raises_offline_error_without_any_socket(no_network):
    code = (
        "import sys\n"
        "from hubkit.hub import fetch\n"
        "from hubkit.errors import OfflineError\n"
        "try:\n"
        "    fetch('https://example.org/a/b.bin', offline=True)\n"
        "except OfflineError as e:\n"
        "    assert 'https://example.org/a/b.bin' in str(e), e\n"
        "    assert 'requests' not in sys.modules, 'requests was imported offline'\n"
        "else:\n"
        "    raise SystemExit('no OfflineError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=dict(os.environ))
    with pytest.raises(OfflineError, match="HUBKIT_MIRROR"):
        fetch("https://example.org/a/b.bin", offline=True)


def test_offline_fetch_many_lists_every_missing_file(no_network, monkeypatch):
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    with pytest.raises(OfflineError) as exc:
        fetch_many([Resource("https://example.org/a.bin"), {"url": "https://example.org/b.bin"}])
    assert "a.bin" in str(exc.value) and "b.bin" in str(exc.value)


# ---------------------------------------------------------------- read-only cache


def make_read_only(monkeypatch) -> list[str]:
    """Make write-ish filesystem calls fail with EROFS, as on a read-only mount (the tests run as root, so
    permission bits cannot do this). Returns the list of attempted writes."""
    attempts: list[str] = []

    def erofs(what) -> OSError:
        attempts.append(str(what))
        return OSError(errno.EROFS, "Read-only file system", str(what))

    real_os_open, real_open, real_io_open = os.open, builtins.open, io.open
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    def os_open(path, flags, *a, **k):
        if flags & write_flags:
            raise erofs(path)
        return real_os_open(path, flags, *a, **k)

    def make_open(real):
        def opener(file, mode="r", *a, **k):
            if isinstance(mode, str) and any(c in mode for c in "wax+"):
                raise erofs(file)
            return real(file, mode, *a, **k)

        return opener

    def refuse(name):
        def f(*a, **k):
            raise erofs(f"{name}{a}")

        return f

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", make_open(real_open))
    monkeypatch.setattr(io, "open", make_open(real_io_open))
    for name in ("replace", "rename", "mkdir", "makedirs", "unlink", "utime", "ftruncate"):
        monkeypatch.setattr(os, name, refuse(name))
    return attempts


def test_read_only_cache_with_file_present_is_a_hit_without_writes(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    path = fetch(url, sha256=sha(data))
    http_server.reset_log()
    attempts = make_read_only(monkeypatch)
    assert fetch(url, sha256=sha(data)) == path
    assert fetch(url) == path
    assert attempts == [] and http_server.requests == []


def test_read_only_cache_file_without_sidecar_is_hashed_and_served(http_server, data, monkeypatch):
    url = http_server.add("/f.bin", data)
    path = fetch(url, sha256=sha(data))
    (path.parent / ".f.bin.hubkit.json").unlink()
    http_server.reset_log()
    attempts = make_read_only(monkeypatch)
    assert fetch(url, sha256=sha(data)) == path
    assert http_server.requests == []
    assert attempts and all("hubkit.json" in a for a in attempts)  # only the best-effort sidecar write


def test_unwritable_cache_dir_gives_cache_error(monkeypatch, tmp_path, http_server, data):
    url = http_server.add("/f.bin", data)
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HUBKIT_HOME", str(blocker))
    with pytest.raises(HubkitError, match="HUBKIT_HOME"):
        fetch(url)


# ---------------------------------------------------------------- fetch_many


def test_fetch_many_returns_paths_in_order_and_accepts_dicts(http_server):
    blobs = [os.urandom(50_000 + i) for i in range(6)]
    reqs = [Resource(http_server.add(f"/m/{i}.bin", b), sha256=sha(b), size=len(b)) for i, b in enumerate(blobs)]
    reqs[2] = {"url": reqs[2].url, "sha256": reqs[2].sha256}
    paths = fetch_many(reqs, max_workers=3)
    assert [p.read_bytes() for p in paths] == blobs
    assert fetch_many(reqs) == paths


def test_fetch_many_attempts_every_file_then_reports_all_failures(http_server, data):
    ok = http_server.add("/ok.bin", data)
    reqs = [Resource(http_server.url("/gone1.bin")), Resource(ok, sha256=sha(data)),
            Resource(http_server.url("/gone2.bin"))]
    with pytest.raises(DownloadError) as exc:
        fetch_many(reqs)
    assert "gone1.bin" in str(exc.value) and "gone2.bin" in str(exc.value) and "2 of 3" in str(exc.value)
    assert http_server.count("/ok.bin") == 1


def test_fetch_many_rejects_malformed_requests():
    with pytest.raises(DownloadError, match="unknown keys"):
        fetch_many([{"url": "http://h/x", "sha": "x"}])
    with pytest.raises(DownloadError, match="Resource or a dict"):
        fetch_many(["http://h/x"])


def test_resource_is_frozen_data_and_validates():
    r = Resource("http://h/x.bin", sha256="A" * 64, mirrors=["http://m/x.bin"])
    assert r.mirrors == ("http://m/x.bin",)
    with pytest.raises(AttributeError):
        r.url = "other"  # type: ignore[misc]
    with pytest.raises(DownloadError):
        Resource("http://h/x.bin", sha256="nothex")


def test_progress_bar_shows_when_forced_and_env_turns_it_off(http_server, data, capsys, monkeypatch):
    monkeypatch.delenv("HUBKIT_NO_PROGRESS")
    url = http_server.add("/p.bin", data)
    fetch(url, progress=True)
    assert "p.bin" in capsys.readouterr().err
    url2 = http_server.add("/q.bin", data)
    fetch(url2, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("HUBKIT_NO_PROGRESS", "1")
    fetch(http_server.add("/r.bin", data), progress=True)
    assert capsys.readouterr().err == ""


def test_cache_module_rejects_windows_and_posix_escapes():
    for bad in ["../x", "/etc/x", "C:\\x", "D:x", "\\\\host\\s\\x", "a/../../b", "a\\b", ""]:
        with pytest.raises(HubkitError):
            cache_mod.check_relative_name(bad, what="name")
    assert cache_mod.check_relative_name("./a//b/c.txt", what="name") == ["a", "b", "c.txt"]


def test_fetch_many_draws_one_combined_bar(http_server, capsys, monkeypatch):
    monkeypatch.delenv("HUBKIT_NO_PROGRESS")
    blobs = [os.urandom(20_000) for _ in range(3)]
    reqs = [Resource(http_server.add(f"/c/{i}.bin", b)) for i, b in enumerate(blobs)]
    fetch_many(reqs, progress=True)
    err = capsys.readouterr().err
    assert "3 files" in err and "0.bin" not in err  # one bar for all, not one per file


# ---------------------------------------------------------------- flush-behind


@pytest.mark.skipif(writer_mod.sync_range is None, reason="sync_file_range is Linux-only")
def test_flush_behind_writes_back_each_step_and_drops_the_one_before(http_server, monkeypatch):
    step = 1 << 16
    data = os.urandom(5 * step + 123)
    url = http_server.add("/big.bin", data)
    monkeypatch.setattr(writer_mod, "WRITEBACK_STEP", step)
    monkeypatch.setattr(writer_mod, "READ_CHUNK", step // 4)  # several writes per step
    calls, dropped = [], []
    real_range, real_fadvise = writer_mod.sync_range, os.posix_fadvise

    def spy_range(fd, offset, nbytes, flags):
        calls.append((offset, nbytes, flags))
        return real_range(fd, offset, nbytes, flags)

    def spy_fadvise(fd, offset, nbytes, advice):
        if advice == os.POSIX_FADV_DONTNEED:
            dropped.append((offset, nbytes))
        return real_fadvise(fd, offset, nbytes, advice)

    monkeypatch.setattr(writer_mod, "sync_range", spy_range)
    monkeypatch.setattr(writer_mod.os, "posix_fadvise", spy_fadvise)
    path = fetch(url, sha256=sha(data))
    assert path.read_bytes() == data
    started = [(o, n) for o, n, f in calls if f == writer_mod._SYNC_RANGE_START]
    waited = [(o, n) for o, n, f in calls if f == writer_mod._SYNC_RANGE_WAIT]
    assert started == [(i * step, step) for i in range(5)]
    assert waited == dropped == [(i * step, step) for i in range(4)]


@pytest.mark.parametrize("broken", ["missing", "failing"])
def test_flush_behind_is_advisory(http_server, monkeypatch, broken):
    step = 1 << 16
    data = os.urandom(3 * step + 7)
    url = http_server.add("/big.bin", data)
    monkeypatch.setattr(writer_mod, "WRITEBACK_STEP", step)
    if broken == "missing":  # a platform without sync_file_range
        monkeypatch.setattr(writer_mod, "sync_range", None)
    else:
        monkeypatch.setattr(writer_mod, "sync_range", lambda fd, offset, nbytes, flags: -1)

        def refuse(*args):
            raise OSError(errno.EINVAL, "fadvise refused")

        monkeypatch.setattr(writer_mod.os, "posix_fadvise", refuse)
    assert fetch(url, sha256=sha(data)).read_bytes() == data
