"""hub.fetch under concurrency and crashes: many processes and threads, a lock that does nothing, SIGKILL."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import hubkit.hub.transport.download as dl
from hubkit.hub import fetch

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals and fork-free subprocesses")

WORKER = r"""
import contextlib, hashlib, sys, time
from pathlib import Path
import hubkit.hub.transport.download as dl
url, sha256, no_lock, ready, go = sys.argv[1:6]
if no_lock == "1":  # a filesystem where locking silently does nothing (Lustre, some NFS)
    dl.file_lock = lambda final: contextlib.nullcontext()
Path(ready).touch()
while not Path(go).exists():
    time.sleep(0.01)
path = dl.fetch(url, sha256=sha256)
print(hashlib.sha256(path.read_bytes()).hexdigest(), path)
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_workers(n: int, url: str, digest: str, no_lock: bool, tmp_path: Path) -> list[str]:
    go = tmp_path / "go"
    procs = []
    for i in range(n):
        ready = tmp_path / f"ready{i}"
        args = [sys.executable, "-c", WORKER, url, digest, "1" if no_lock else "0", str(ready), str(go)]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(n)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.02)
    go.touch()  # all start fetching at once
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outputs.append(out.split()[0])
    return outputs


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith((".partial", ".partial.json", ".tmp"))]


def test_eight_processes_make_one_download_and_all_get_verified_bytes(http_server, tmp_path):
    data = os.urandom(2_000_000)
    url = http_server.add("/big.bin", data, rate=4_000_000)
    digests = run_workers(8, url, sha(data), no_lock=False, tmp_path=tmp_path)
    assert digests == [sha(data)] * 8
    assert http_server.count("/big.bin") == 1
    final = dl._target_path(url, None, None)
    assert final.read_bytes() == data and leftovers(final.parent) == []


def test_eight_processes_with_a_no_op_lock_still_never_corrupt_the_cache(http_server, tmp_path):
    data = os.urandom(2_000_000)
    url = http_server.add("/big.bin", data, rate=4_000_000)
    digests = run_workers(8, url, sha(data), no_lock=True, tmp_path=tmp_path)
    assert digests == [sha(data)] * 8
    assert http_server.count("/big.bin") >= 2  # the lock really was off: several downloads raced
    final = dl._target_path(url, None, None)
    assert final.read_bytes() == data and leftovers(final.parent) == []
    assert fetch(url, sha256=sha(data)) == final


def test_threads_fetching_one_file_share_one_download(http_server):
    data = os.urandom(1_000_000)
    url = http_server.add("/t.bin", data, rate=5_000_000)
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: fetch(url, sha256=sha(data)), range(8)))
    assert len(set(paths)) == 1 and paths[0].read_bytes() == data
    assert http_server.count("/t.bin") == 1


def test_threads_with_a_no_op_lock_all_get_verified_bytes(http_server, monkeypatch):
    import contextlib

    monkeypatch.setattr(dl, "file_lock", lambda final: contextlib.nullcontext())
    data = os.urandom(1_000_000)
    url = http_server.add("/t.bin", data, rate=5_000_000)
    with ThreadPoolExecutor(6) as pool:
        paths = list(pool.map(lambda _: fetch(url, sha256=sha(data)), range(6)))
    assert all(p.read_bytes() == data for p in paths)
    assert leftovers(paths[0].parent) == []


def test_sigkill_mid_download_then_resume_finishes_with_the_right_hash(http_server, tmp_path):
    data = os.urandom(4_000_000)
    url = http_server.add("/k.bin", data, rate=1_500_000)
    final = dl._target_path(url, None, None)
    code = f"from hubkit.hub import fetch; fetch({url!r}, sha256={sha(data)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    partial = None
    while partial is None:
        assert time.monotonic() < deadline and proc.poll() is None, "the download did not start"
        found = [p for p in final.parent.glob(".k.bin.*.partial")] if final.parent.exists() else []
        if found and found[0].stat().st_size >= 1 << 20:
            partial = found[0]
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not final.exists()
    kept = partial.stat().st_size
    http_server.add("/k.bin", data)  # same bytes, same ETag, no throttle
    assert fetch(url, sha256=sha(data)).read_bytes() == data
    last = http_server.requests_for("/k.bin")[-1]
    assert last.headers["Range"] == f"bytes={kept}-" and last.status == 206
    assert last.headers["If-Range"] == '"' + hashlib.sha1(data).hexdigest() + '"'
    assert leftovers(final.parent) == []


def test_partial_of_a_live_writer_is_never_taken_over(http_server, monkeypatch):
    """A partial whose owner is still running (here: this process, token active) is left alone."""
    import hubkit.hub.transport.cache as cache_mod

    data = os.urandom(100_000)
    url = http_server.add("/l.bin", data)
    final = dl._target_path(url, None, None)
    final.parent.mkdir(parents=True)
    token = cache_mod.new_owner_token()
    try:
        alive = cache_mod.partial_path(final, token)
        alive.write_bytes(b"in progress")
        alive.with_name(alive.name + ".json").write_text(f'{{"url": "{url}", "etag": "\\"x\\""}}')
        assert fetch(url, sha256=sha(data)).read_bytes() == data
        assert alive.read_bytes() == b"in progress"
        assert http_server.requests_for("/l.bin")[0].headers.get("Range") is None
    finally:
        cache_mod.release_owner_token(token)
