"""hub.extract: formats, atomic staging and markers, and refusal of every malicious archive shape."""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from archive_builders import make_tar, make_zip

import hubkit.hub.transport.archive as archive_mod
from hubkit.errors import ArchiveError
from hubkit.hub import extract


def tree(root: Path) -> dict[str, bytes | str]:
    """Every path under root (links as their target), for asserting nothing else was written."""
    out: dict[str, bytes | str] = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            out[rel] = "-> " + os.readlink(p)
        elif p.is_file():
            out[rel] = p.read_bytes()
        else:
            out[rel] = "dir"
    return out


# ---------------------------------------------------------------- formats


@pytest.mark.parametrize("mode, suffix", [("w:gz", ".tar.gz"), ("w:bz2", ".tar.bz2"), ("w:xz", ".tar.xz"),
                                          ("w", ".tar"), ("w:gz", ".tgz")])
def test_tar_formats_extract_files_dirs_and_inner_links(tmp_path, mode, suffix):
    arc = make_tar(tmp_path / f"a{suffix}", [
        ("dir", "pkg"), ("file", "pkg/a.txt", b"alpha"), ("file", "./pkg/sub/b.bin", b"\x00\x01"),
        ("sym", "pkg/link", "a.txt"), ("hard", "pkg/hard", "pkg/a.txt"),
    ], mode)
    out = extract(arc, tmp_path / "out")
    assert out == tmp_path / "out"
    assert (out / "pkg/a.txt").read_bytes() == b"alpha" and (out / "pkg/sub/b.bin").read_bytes() == b"\x00\x01"
    assert os.readlink(out / "pkg/link") == "a.txt" and (out / "pkg/hard").read_bytes() == b"alpha"
    assert (out / f".hubkit-extracted-a{suffix}.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".extracting")] == []


def test_zip_extracts_with_permissions(tmp_path):
    arc = make_zip(tmp_path / "z.zip", [("d/", b""), ("d/run.sh", b"#!/bin/sh\n", 0o100755), ("x.txt", b"x")])
    out = extract(arc, tmp_path / "out")
    assert (out / "d/run.sh").read_bytes() == b"#!/bin/sh\n" and (out / "x.txt").read_bytes() == b"x"
    assert os.stat(out / "d/run.sh").st_mode & 0o111


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_single_file_compressions_return_the_decompressed_file(tmp_path, suffix, compress):
    payload = os.urandom(3000) * 5
    arc = tmp_path / f"train-images-idx3-ubyte{suffix}"
    arc.write_bytes(compress(payload))
    out = extract(arc, tmp_path / "raw")
    assert out == tmp_path / "raw" / "train-images-idx3-ubyte" and out.read_bytes() == payload


def test_format_is_sniffed_when_the_name_has_no_suffix(tmp_path):
    tgz = make_tar(tmp_path / "blob1", [("file", "a.txt", b"t")])
    z = make_zip(tmp_path / "blob2", [("b.txt", b"z")])
    assert (extract(tgz, tmp_path / "o1") / "a.txt").read_bytes() == b"t"
    assert (extract(z, tmp_path / "o2") / "b.txt").read_bytes() == b"z"
    (tmp_path / "blob3").write_bytes(gzip.compress(b"plain"))
    assert extract(tmp_path / "blob3", tmp_path / "o3").read_bytes() == b"plain"


def test_unknown_format_and_bad_format_argument_are_explained(tmp_path):
    (tmp_path / "x.dat").write_bytes(b"just bytes")
    with pytest.raises(ArchiveError, match="Cannot tell the format"):
        extract(tmp_path / "x.dat", tmp_path / "o")
    with pytest.raises(ArchiveError, match="Unknown archive format 'rar'"):
        extract(tmp_path / "x.dat", tmp_path / "o", format="rar")
    with pytest.raises(ArchiveError, match="Cannot extract"):
        extract(tmp_path / "missing.zip", tmp_path / "o")


def test_second_call_is_a_no_op_and_a_changed_archive_is_re_extracted(tmp_path, monkeypatch):
    arc = make_tar(tmp_path / "a.tar.gz", [("file", "v.txt", b"one")])
    out = extract(arc, tmp_path / "out")
    calls = []
    real = archive_mod._extract_tar
    monkeypatch.setattr(archive_mod, "_extract_tar", lambda *a: calls.append(1) or real(*a))
    extract(arc, tmp_path / "out")
    assert calls == []
    make_tar(arc, [("file", "v.txt", b"two")])
    os.utime(arc, ns=(time.time_ns(), time.time_ns() + 10**9))
    extract(arc, tmp_path / "out")
    assert calls == [1] and (out / "v.txt").read_bytes() == b"two"


def test_extracting_into_an_existing_directory_merges_and_keeps_other_files(tmp_path):
    dest = tmp_path / "root"
    (dest / "keep").mkdir(parents=True)
    (dest / "keep" / "mine.txt").write_text("user file")
    (dest / "data").mkdir()
    (dest / "data" / "old.bin").write_bytes(b"old")
    arc = make_tar(tmp_path / "a.tar", [("file", "data/new.bin", b"new"), ("file", "top.txt", b"t")], "w")
    extract(arc, dest)
    assert (dest / "keep" / "mine.txt").read_text() == "user file"
    assert (dest / "data" / "old.bin").read_bytes() == b"old" and (dest / "data" / "new.bin").read_bytes() == b"new"
    assert (dest / ".hubkit-extracted-a.tar.json").exists()


def test_corrupted_archives_raise_and_leave_nothing(tmp_path):
    good = make_tar(tmp_path / "g.tar.gz", [("file", f"f{i}", os.urandom(20000)) for i in range(5)])
    (tmp_path / "t.tar.gz").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ArchiveError, match="corrupted or truncated|not a readable"):
        extract(tmp_path / "t.tar.gz", tmp_path / "out")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ArchiveError):
        extract(tmp_path / "bad.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".extracting")] == []


# ---------------------------------------------------------------- malicious archives


MALICIOUS_TARS = {
    "dotdot": [("file", "../evil.txt", b"pwned")],
    "nested_dotdot": [("file", "ok/../../evil.txt", b"pwned")],
    "absolute": [("file", "/tmp/hubkit-evil-absolute.txt", b"pwned")],
    "windows_drive": [("file", "C:\\evil.txt", b"pwned")],
    "windows_drive_relative": [("file", "D:evil.txt", b"pwned")],
    "unc": [("file", "\\\\host\\share\\evil.txt", b"pwned")],
    "backslash_dotdot": [("file", "..\\evil.txt", b"pwned")],
    "symlink_escape": [("sym", "link", "../outside"), ("file", "link/evil.txt", b"pwned")],
    "symlink_absolute": [("sym", "passwd", "/etc/passwd")],
    "symlink_to_root": [("sym", "root", ".")],
    "symlink_in_subdir_to_root": [("dir", "sub"), ("sym", "sub/up", "..")],
    "link_dotdot_through_link": [("sym", "here", "."), ("file", "here/../evil.txt", b"pwned")],
    "hardlink_name_escape": [("file", "a.txt", b"x"), ("hard", "../evil.txt", "a.txt")],
    "hardlink_target_escape": [("hard", "h", "../outside/secret.txt")],
    "hardlink_absolute": [("hard", "h", "/etc/passwd")],
    "device": [("chr", "dev0")],
    "fifo": [("fifo", "pipe")],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TARS))
def test_malicious_tar_is_refused_with_nothing_written_outside(tmp_path, case):
    work = tmp_path / "work"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    work.mkdir()
    arc = make_tar(work / "evil.tar.gz", [("file", "fine.txt", b"ok"), *MALICIOUS_TARS[case]])
    before = tree(tmp_path)
    with pytest.raises(ArchiveError, match="Refusing|Unsafe"):
        extract(arc, work / "dest")
    assert tree(tmp_path) == before  # no dest, no staging, nothing outside
    assert not Path("/tmp/hubkit-evil-absolute.txt").exists()


MALICIOUS_ZIPS = {
    "dotdot": [("../evil.txt", b"pwned")],
    "absolute": [("/tmp/hubkit-evil-zip.txt", b"pwned")],
    "windows_drive": [("C:/evil.txt", b"pwned")],
    "backslash": [("..\\evil.txt", b"pwned")],
    "symlink": [("link", b"../../outside", 0o120777)],
    "fifo": [("pipe", b"", 0o010644)],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_ZIPS))
def test_malicious_zip_is_refused_with_nothing_written(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    arc = make_zip(work / "evil.zip", [("fine.txt", b"ok"), *MALICIOUS_ZIPS[case]])
    before = tree(tmp_path)
    with pytest.raises(ArchiveError, match="Refusing|Unsafe"):
        extract(arc, work / "dest")
    assert tree(tmp_path) == before


def test_zip_bomb_is_refused_by_the_expanded_size_cap(tmp_path):
    arc = make_zip(tmp_path / "bomb.zip", [(f"z{i}", b"\0" * 5_000_000) for i in range(4)])
    assert arc.stat().st_size < 200_000
    with pytest.raises(ArchiveError, match="max_bytes"):
        extract(arc, tmp_path / "out", max_bytes=10_000_000)
    assert not (tmp_path / "out").exists()


def test_default_cap_is_a_ratio_of_the_archive_size(tmp_path, monkeypatch):
    monkeypatch.setattr(archive_mod, "MIN_BYTES_CAP", 1_000_000)
    arc = make_zip(tmp_path / "bomb.zip", [("z", b"\0" * 20_000_000)])
    with pytest.raises(ArchiveError, match="zip bomb"):
        extract(arc, tmp_path / "out")


def test_gz_and_tar_bombs_are_refused_while_streaming(tmp_path):
    gz = tmp_path / "bomb.gz"
    gz.write_bytes(gzip.compress(b"\0" * 8_000_000))
    with pytest.raises(ArchiveError, match="max_bytes"):
        extract(gz, tmp_path / "o1", max_bytes=1_000_000)
    tgz = make_tar(tmp_path / "bomb.tar.gz", [("file", f"f{i}", b"\0" * 1_000_000) for i in range(5)])
    with pytest.raises(ArchiveError, match="max_bytes"):
        extract(tgz, tmp_path / "o2", max_bytes=3_000_000)
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


def test_member_count_cap(tmp_path):
    arc = make_tar(tmp_path / "many.tar", [("file", f"f{i}", b"") for i in range(20)], "w")
    with pytest.raises(ArchiveError, match="max_members"):
        extract(arc, tmp_path / "out", max_members=10)
    z = make_zip(tmp_path / "many.zip", [(f"f{i}", b"") for i in range(20)])
    with pytest.raises(ArchiveError, match="max_members"):
        extract(z, tmp_path / "out", max_members=10)


def test_setuid_bits_are_dropped(tmp_path):
    arc = make_tar(tmp_path / "s.tar", [("file", "tool", b"#!/bin/sh\n", 0o4777)], "w")
    out = extract(arc, tmp_path / "out")
    mode = os.stat(out / "tool").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID) and not mode & 0o002


def test_two_archive_symlink_chain_cannot_write_through_a_planted_link(tmp_path):
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    outside.mkdir()
    # Archive A may not plant a link that escapes...
    a_bad = make_tar(tmp_path / "a_bad.tar", [("sym", "x", "../outside")], "w")
    with pytest.raises(ArchiveError):
        extract(a_bad, dest)
    # ...and a link that stays inside is replaced, not followed, when archive B writes below its name.
    a = make_tar(tmp_path / "a.tar", [("dir", "sub"), ("sym", "x", "sub")], "w")
    extract(a, dest)
    b = make_tar(tmp_path / "b.tar", [("file", "x/authorized_keys", b"ssh-rsa attacker")], "w")
    extract(b, dest)
    assert not (dest / "x").is_symlink() and (dest / "x" / "authorized_keys").read_bytes() == b"ssh-rsa attacker"
    assert list((dest / "sub").iterdir()) == [] and list(outside.iterdir()) == []


def test_destination_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "dest").write_text("a file")
    arc = make_tar(tmp_path / "a.tar", [("file", "f", b"x")], "w")
    with pytest.raises(ArchiveError, match="not a directory"):
        extract(arc, tmp_path / "dest")


# ---------------------------------------------------------------- crashes


KILLABLE = r"""
import sys, time
from pathlib import Path
import hubkit.hub.transport.archive as archive_mod
from hubkit.hub.transport import _progress

class Stall(_progress.Progress):
    n = 0
    def update(self, n):
        Stall.n += n
        if Stall.n == 3:
            Path(sys.argv[3]).touch()
            time.sleep(60)

archive_mod._progress.file_progress = lambda *a, **k: Stall()
archive_mod.extract(sys.argv[1], sys.argv[2])
"""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigkill_mid_extract_leaves_nothing_trusted_and_next_run_redoes_it(tmp_path):
    arc = make_tar(tmp_path / "a.tar.gz", [("file", f"f{i}.bin", bytes([i]) * 1000) for i in range(6)])
    dest = tmp_path / "dest"
    flag = tmp_path / "halfway"
    proc = subprocess.Popen([sys.executable, "-c", KILLABLE, str(arc), str(dest), str(flag)], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not flag.exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() else "slow"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert not dest.exists()  # the half-extracted tree is only in staging
    [staging] = [p for p in tmp_path.iterdir() if p.name.endswith(".extracting")]
    assert len(list(staging.iterdir())) == 3
    out = extract(arc, dest)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [f"f{i}.bin" for i in range(6)]
    assert not staging.exists()  # the dead writer's staging was cleaned up
