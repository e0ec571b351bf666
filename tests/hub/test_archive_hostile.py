"""extract against hostile archives and a user's own files (issue 13, items 1, 3, 4 and 6).

Nothing the archive did not create is deleted; no link of the finished tree leads outside it; headers,
member counts and path depths are bounded by what the archive's size justifies; every refusal is an
ArchiveError that says why.
"""

from __future__ import annotations

import os
import tarfile
import tracemalloc

import pytest
from archive_builders import long_name_tar_gz, make_tar, many_members_tar_gz

import hubkit.hub.transport.archive as archive_mod
from hubkit.errors import ArchiveError
from hubkit.hub import extract

# ---------------------------------------------------------------- item 1: never delete what the user owns


@pytest.mark.parametrize("member", [("file", "a", b"from the archive"), ("sym", "a", "b")])
def test_a_member_named_like_a_users_directory_is_refused_not_rmtree_d(tmp_path, member):
    dest = tmp_path / "data"
    (dest / "a").mkdir(parents=True)
    (dest / "a" / "mine.txt").write_text("the user's work")
    arc = make_tar(tmp_path / "x.tar", [("file", "b", b"b"), member], "w")
    with pytest.raises(ArchiveError, match="would replace the directory .* not empty"):
        extract(arc, dest)
    assert (dest / "a" / "mine.txt").read_text() == "the user's work"
    assert sorted(p.name for p in dest.iterdir()) == ["a"]  # refused before anything moved


def test_a_file_member_still_replaces_an_empty_directory_and_other_files(tmp_path):
    dest = tmp_path / "data"
    (dest / "a").mkdir(parents=True)
    (dest / "c").write_text("old")
    arc = make_tar(tmp_path / "x.tar", [("file", "a", b"new a"), ("file", "c", b"new c")], "w")
    extract(arc, dest)
    assert (dest / "a").read_bytes() == b"new a" and (dest / "c").read_bytes() == b"new c"


# ---------------------------------------------------------------- item 3: links stay inside


def test_a_duplicate_symlink_cannot_re_point_an_earlier_link_outside(tmp_path):
    depth = 40
    deep = "/".join(f"d{i}" for i in range(depth))
    members = [("dir", deep), ("sym", "p", deep),
               # checked now: p/../../(40 times)etc/passwd stays inside, at <dest>/etc/passwd ...
               ("sym", "a", "p/" + "../" * depth + "etc/passwd"),
               # ... until p is re-pointed one level deep: then a climbs 39 levels above the target
               ("sym", "p", "d0")]
    arc = make_tar(tmp_path / "x.tar", members, "w")
    with pytest.raises(ArchiveError, match="appears twice"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- item 4: bounded by the input


def test_a_huge_long_name_header_is_refused_before_it_is_read(tmp_path):
    arc = long_name_tar_gz(tmp_path / "x.tar.gz", 64 << 20)
    assert arc.stat().st_size < 1 << 20  # 64 MiB of header in a file under a megabyte
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match="long-name or pax header declares 67108864 bytes"):
            extract(arc, tmp_path / "out")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20


def test_many_empty_members_are_refused_by_what_the_archive_size_justifies(tmp_path, monkeypatch):
    # the floor under the size-derived cap is 10,000 members; a lower one keeps this test fast
    monkeypatch.setattr(archive_mod, "MIN_MEMBERS_CAP", 1000, raising=False)
    arc = many_members_tar_gz(tmp_path / "x.tar.gz", 2000)
    assert arc.stat().st_size < 3 * 2000  # a few bytes of gzip per member
    with pytest.raises(ArchiveError, match="more than 1000 members"):
        extract(arc, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    small = many_members_tar_gz(tmp_path / "ok.tar.gz", 100)  # a trusted archive may pass its own cap
    assert (extract(small, tmp_path / "ok", max_members=100) / "empty").is_file()


# ---------------------------------------------------------------- item 6: every failure an ArchiveError


def test_a_path_thousands_of_levels_deep_is_refused(tmp_path):
    arc = make_tar(tmp_path / "deep.tar", [("file", "a/" * 3000 + "f", b"x")], "w")
    with pytest.raises(ArchiveError, match="3000 directories deep"):
        extract(arc, tmp_path / "out")


@pytest.mark.parametrize("name", ["empty.gz", "empty.tar.gz", "empty.zip"])
def test_an_empty_archive_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(ArchiveError, match="empty"):
        extract(tmp_path / name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_truncated_gz_is_an_archive_error(tmp_path):
    import gzip

    (tmp_path / "t.gz").write_bytes(gzip.compress(os.urandom(10_000))[:-100])
    with pytest.raises(ArchiveError, match="not a valid gz file or is truncated"):
        extract(tmp_path / "t.gz", tmp_path / "out")


def test_the_bounded_reader_still_reads_pax_headers_of_honest_archives(tmp_path):
    path = tmp_path / "pax.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
        info = tarfile.TarInfo("é" * 120)  # a non-ASCII name longer than 100 bytes needs a pax header
        tf.addfile(info)
    assert (extract(path, tmp_path / "out") / ("é" * 120)).is_file()
