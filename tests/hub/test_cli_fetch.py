"""The ``hubkit`` CLI: fetch, cache ls/verify/prune/rm/dir, mirror sync, and how errors are reported."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import hubkit.cli as cli
import hubkit.hub.transport.cache as cache_mod
from hubkit.errors import HubkitError
from hubkit.hub import fetch


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_fetch_prints_the_cached_path(http_server, capsys):
    data = os.urandom(10_000)
    url = http_server.add("/d/f.bin", data)
    assert cli.main(["fetch", url, "--sha256", sha(data), "--no-progress"]) == 0
    path = capsys.readouterr().out.strip()
    assert Path(path).read_bytes() == data


def test_fetch_into_dest_with_mirror(http_server, capsys, tmp_path):
    data = b"payload"
    url = http_server.url("/missing.bin")
    mirror = http_server.add("/m/missing.bin", data)
    assert cli.main(["fetch", url, "--mirror", mirror, "--dest", str(tmp_path), "--sha256", sha(data)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "missing.bin")


def test_errors_print_one_message_and_exit_1_without_traceback(http_server, capsys):
    url = http_server.add("/f.bin", b"abc")
    assert cli.main(["fetch", url, "--sha256", "0" * 64]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hubkit: error:") and "sha256 mismatch" in err and "Traceback" not in err


def test_console_script_error_exit_code_and_stderr(http_server):
    url = http_server.add("/f.bin", b"abc")
    proc = subprocess.run([sys.executable, "-m", "hubkit.cli", "fetch", url, "--sha256", "bad"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "sha256 must be a hex digest" in proc.stderr and "Traceback" not in proc.stderr


def test_usage_errors_exit_2(capsys):
    assert cli.main([]) == 2
    assert cli.main(["cache"]) == 2
    assert cli.main(["no-such-command"]) == 2


def test_cache_ls_lists_entries_as_text_and_json(http_server, capsys):
    data = os.urandom(2048)
    url = http_server.add("/a/b.bin", data)
    fetch(url)
    assert cli.main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert f"127.0.0.1_{http_server.port}/a/b.bin" in out and sha(data)[:12] in out and "1 file(s)" in out
    assert cli.main(["cache", "ls", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["url"] == url and rows[0]["sha256"] == sha(data) and rows[0]["size"] == 2048


def test_cache_verify_reports_corruption_and_delete_removes_it(http_server, capsys):
    good, bad = os.urandom(1000), os.urandom(1000)
    fetch(http_server.add("/good.bin", good))
    path = fetch(http_server.add("/bad.bin", bad))
    path.write_bytes(bytes(1000))  # same size, wrong bytes
    assert cli.main(["cache", "verify"]) == 1
    out = capsys.readouterr().out
    assert "CORRUPT" in out and "bad.bin" in out and "ok" in out
    assert cli.main(["cache", "verify", "--delete"]) == 1
    assert not path.exists()
    assert cli.main(["cache", "verify"]) == 0


def test_cache_verify_records_files_without_sidecar(tmp_path, capsys):
    root = cache_mod.files_dir() / "example.org"
    root.mkdir(parents=True)
    (root / "copied.bin").write_bytes(b"copied in by hand")
    assert cli.main(["cache", "verify"]) == 0
    assert "RECORDED" in capsys.readouterr().out
    assert cache_mod.read_record(root / "copied.bin").sha256 == sha(b"copied in by hand")


def test_cache_prune_removes_abandoned_partials_and_orphans(http_server, capsys):
    path = fetch(http_server.add("/f.bin", b"data"))
    dead = f"{cache_mod._HOST}~{2**22 + 1}~0123456789"
    partial = cache_mod.partial_path(path.with_name("g.bin"), dead)
    partial.write_bytes(b"half")
    partial.with_name(partial.name + ".json").write_text("{}")
    orphan_sidecar = cache_mod.sidecar_path(path.with_name("gone.bin"))
    orphan_sidecar.write_text("{}")
    live = cache_mod.new_owner_token()
    try:
        live_partial = cache_mod.partial_path(path.with_name("h.bin"), live)
        live_partial.write_bytes(b"in progress")
        assert cli.main(["cache", "prune", "--dry-run"]) == 0
        assert partial.exists()
        assert cli.main(["cache", "prune"]) == 0
        assert not partial.exists() and not orphan_sidecar.exists()
        assert live_partial.exists() and path.exists() and cache_mod.sidecar_path(path).exists()
    finally:
        cache_mod.release_owner_token(live)
    assert "removed" in capsys.readouterr().out


def _age(path: Path, days: float) -> None:
    """Make ``path``'s last use ``days`` ago (the sidecar's mtime is the use stamp)."""
    stamp = cache_mod.sidecar_path(path)
    t = stamp.stat().st_mtime - days * 86400
    os.utime(stamp, (t, t))


def test_cache_prune_max_size_evicts_least_recently_used_first(http_server, capsys):
    paths = {name: fetch(http_server.add(f"/lru/{name}.bin", os.urandom(1000))) for name in "abcd"}
    for name, days in zip("abcd", (3, 1, 4, 2)):  # least recently used: c, a, d, b
        _age(paths[name], days)
    fetch(http_server.url("/lru/c.bin"))  # a cached hit: c is now the most recently used
    assert http_server.count("/lru/c.bin") == 1
    assert cli.main(["cache", "prune", "--max-size", "2000", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would remove" in out and all(p.exists() for p in paths.values())
    assert cli.main(["cache", "prune", "--max-size", "2K"]) == 0
    out = capsys.readouterr().out
    assert [p.exists() for p in paths.values()] == [False, True, True, False]  # a and d went, 2000 bytes kept
    assert "least recently used" in out and "2 item(s)" in out
    assert not cache_mod.sidecar_path(paths["a"]).exists()


def test_cache_prune_unused_for_days(http_server, capsys):
    old = fetch(http_server.add("/u/old.bin", b"old"))
    new = fetch(http_server.add("/u/new.bin", b"new"))
    _age(old, 40)
    assert cli.main(["cache", "prune", "--unused-for", "30"]) == 0
    assert not old.exists() and new.exists()
    for bad in (["--max-size", "lots"], ["--unused-for", "-1"]):
        assert cli.main(["cache", "prune", *bad]) == 2  # usage error
    err = capsys.readouterr().err
    assert "expected a size like 500M or 20G, got 'lots'" in err and "expected a number of days" in err


def test_cached_hits_refresh_the_use_stamp_at_most_hourly_and_only_where_writable(http_server):
    path = fetch(http_server.add("/stamp.bin", b"x"))
    stamp = cache_mod.sidecar_path(path)
    _age(path, 1)
    before = stamp.stat().st_mtime
    fetch(http_server.url("/stamp.bin"))
    refreshed = stamp.stat().st_mtime
    assert refreshed > before + 3600
    os.utime(stamp, (refreshed - 60, refreshed - 60))  # used a minute ago: no new stamp
    fetch(http_server.url("/stamp.bin"))
    assert stamp.stat().st_mtime == refreshed - 60


def test_the_download_cache_carries_a_cachedir_tag(http_server):
    path = fetch(http_server.add("/t/f.bin", b"f"))
    tag = cache_mod.files_dir() / "CACHEDIR.TAG"
    assert tag.read_text().startswith("Signature: 8a477f597d28d172789f06886806bc55")
    assert "CACHEDIR.TAG" not in [e.relpath for e in cache_mod.iter_entries()]
    assert path.exists()


def test_evict_rejects_negative_limits():
    from hubkit.errors import CacheError

    with pytest.raises(CacheError, match="max_bytes"):
        cache_mod.evict(max_bytes=-1)
    with pytest.raises(CacheError, match="unused_for_s"):
        cache_mod.evict(unused_for_s=-5)


def test_cache_rm_by_glob_and_by_url(http_server, capsys):
    a = fetch(http_server.add("/x/a.bin", b"a"))
    b_url = http_server.add("/x/b.bin", b"b")
    b = fetch(b_url)
    assert cli.main(["cache", "rm", "*/x/a.bin"]) == 0
    assert not a.exists() and not cache_mod.sidecar_path(a).exists() and b.exists()
    assert cli.main(["cache", "rm", b_url]) == 0
    assert not b.exists()
    assert cli.main(["cache", "rm", "nothing*"]) == 1
    assert "No cached file matches" in capsys.readouterr().err


def test_cache_dir_prints_hubkit_home(capsys, _isolated_hubkit_home):
    assert cli.main(["cache", "dir"]) == 0
    assert capsys.readouterr().out.strip() == str(_isolated_hubkit_home)


def test_mirror_sync_builds_a_mirror_usable_offline(http_server, tmp_path, monkeypatch, capsys):
    data = os.urandom(5000)
    url = http_server.add("/ds/train.bin", data)
    mirror = tmp_path / "mirror"
    assert cli.main(["mirror", "sync", str(mirror), url, "--no-progress"]) == 0
    copied = mirror / f"127.0.0.1_{http_server.port}" / "ds" / "train.bin"
    assert copied.read_bytes() == data
    assert cli.main(["mirror", "sync", str(mirror), url]) == 0  # idempotent, no new download
    assert http_server.count("/ds/train.bin") == 1
    # A fresh machine: empty cache, offline, the mirror as file://
    monkeypatch.setenv("HUBKIT_HOME", str(tmp_path / "fresh"))
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    monkeypatch.setenv("HUBKIT_MIRROR", mirror.as_uri())
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    assert http_server.count("/ds/train.bin") == 1


def test_mirror_sync_unknown_name_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["mirror", "sync", str(tmp_path), "no-such-dataset"]) == 1
    assert "Unknown name 'no-such-dataset'" in capsys.readouterr().err
    with pytest.raises(HubkitError):
        cli.resources_for_name("no-such-dataset")


def test_subcommands_are_registered_through_the_extension_list(monkeypatch, capsys):
    def add_hello(sub):
        sub.add_parser("hello").set_defaults(func=lambda args: print("hi") or 0)

    monkeypatch.setattr(cli, "SUBCOMMANDS", [*cli.SUBCOMMANDS, add_hello])
    assert cli.main(["hello"]) == 0 and capsys.readouterr().out == "hi\n"
