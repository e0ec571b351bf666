"""Where fetch reads and writes (issue 13, items 3, 6 and 8): URLs are validated before they become paths,
nothing escapes the cache or a ``file://`` mirror, the cache's own files can be damaged or read-only, and
``mirror sync`` leaves only files and sidecars in the mirror."""

from __future__ import annotations

import errno
import hashlib
import json
import socket
from pathlib import Path

import pytest

import hubkit.cli as cli
import hubkit.hub.transport._http as http_mod
import hubkit.hub.transport.cache as cache_mod
from hubkit.errors import CacheError, DownloadError
from hubkit.hub import fetch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def no_network(monkeypatch) -> list[float]:
    """No name resolves and backoff waits are recorded, not slept: nothing here may reach the network."""
    waits: list[float] = []
    monkeypatch.setattr(http_mod, "sleep", waits.append)

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return waits


# ---------------------------------------------------------------- item 3: stay inside the roots


@pytest.mark.parametrize("url", [
    "http://../etc/passwd", "http://./x.bin", "http://a..b/x.bin", "http://-bad/x.bin", "http://a%2fb/x.bin",
    "http://[::1/x.bin", "http://[fe80::zz]/x.bin", "http://host:99999/x.bin", "http://host/\udc80.bin",
])
def test_urls_that_are_malformed_or_name_no_host_are_refused_with_a_fix(url, no_network):
    with pytest.raises(DownloadError, match="Pass a URL like"):
        fetch(url)
    assert not (cache_mod.home_dir() / "etc").exists()


def test_a_dotdot_host_never_reads_outside_a_file_mirror(tmp_path, monkeypatch):
    (tmp_path / "secret.txt").write_bytes(b"private")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("HUBKIT_MIRROR", mirror.as_uri())
    with pytest.raises(DownloadError, match="not a DNS name"):
        fetch("http://../secret.txt", offline=True)
    assert [p for p in cache_mod.home_dir().rglob("secret.txt")] == []


@pytest.mark.parametrize("base", ["http://[::1", "file:///srv/mirror\udc80", "http://../up"])
def test_a_malformed_hubkit_mirror_entry_is_refused_with_its_format(base, monkeypatch, no_network):
    monkeypatch.setenv("HUBKIT_MIRROR", base)
    with pytest.raises(DownloadError, match="HUBKIT_MIRROR holds comma-separated base URLs"):
        fetch("https://files.example.org/w.bin")


# ---------------------------------------------------------------- item 6: the cache's own files


def test_a_cache_path_that_is_a_directory_is_a_cache_error(http_server):
    url = http_server.add("/a", b"file a")
    http_server.add("/a/b", b"file a/b")
    fetch(url + "/b")  # <cache>/files/<host>/a is now a directory
    with pytest.raises(CacheError, match="is a directory.*filename="):
        fetch(url)


def test_an_ill_typed_sidecar_is_ignored_and_rewritten(http_server, capsys):
    data = b"payload" * 100
    url = http_server.add("/f.bin", data)
    path = fetch(url, sha256=sha(data))
    sidecar = cache_mod.sidecar_path(path)
    record = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**record, "sha256": 12345, "url": ["not", "a", "url"], "etag": 7}))
    assert fetch(url, sha256_prefix=sha(data)[:8]) == path  # re-hashed, not fetched again
    assert http_server.count("/f.bin") == 1
    assert json.loads(sidecar.read_text())["sha256"] == sha(data)
    sidecar.write_text(json.dumps({**record, "sha256": 12345}))
    assert cli.main(["cache", "ls"]) == 0
    assert "f.bin" in capsys.readouterr().out


def test_cache_rm_on_a_read_only_cache_is_a_cache_error_with_the_fix(http_server, monkeypatch, capsys):
    fetch(http_server.add("/f.bin", b"x"))

    def read_only(self, missing_ok=False):
        raise OSError(errno.EROFS, "Read-only file system", str(self))

    monkeypatch.setattr(Path, "unlink", read_only)
    assert cli.main(["cache", "rm", "*"]) == 1
    err = capsys.readouterr().err
    assert "hubkit: error:" in err and "read-only" in err and "HUBKIT_HOME" in err


# ---------------------------------------------------------------- item 8: mirror sync


def test_mirror_sync_leaves_no_lock_files_in_the_mirror(http_server, tmp_path, capsys):
    url = http_server.add("/d/f.bin", b"data")
    mirror = tmp_path / "mirror"
    assert cli.main(["mirror", "sync", str(mirror), url, "--no-progress"]) == 0
    names = [p.name for p in mirror.rglob("*")]
    assert "f.bin" in names
    assert [n for n in names if n.endswith(".lock")] == []


def test_lock_files_that_earlier_versions_left_beside_files_are_bookkeeping(http_server, capsys):
    path = fetch(http_server.add("/f.bin", b"data"))
    old_lock = path.with_name(f".{path.name}.lock")
    old_lock.touch()
    assert [e.path for e in cache_mod.iter_entries()] == [path]
    assert cli.main(["cache", "prune"]) == 0
    assert not old_lock.exists() and path.exists()
