"""Files other tools already downloaded, reused read-only: the Hugging Face cache and torch.hub's checkpoints.

    path = find("https://huggingface.co/org/name/resolve/<commit>/model.safetensors", expect)   # or None

Where they live (each tool's own rules; nothing here writes there):

- **Hugging Face** (huggingface_hub): ``$HF_HUB_CACHE``, else ``$HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else
  ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``. A repo is ``models--ORG--NAME/`` (datasets:
  ``datasets--``) holding ``refs/<branch>`` (a commit id), ``blobs/<etag>`` (the content, named by its etag: the
  sha256 of a Git LFS file, the git blob id of any other) and ``snapshots/<commit>/<path>`` (links into ``blobs``).
- **torch.hub**: ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``, else ``$XDG_CACHE_HOME/torch/hub/...``, else
  ``~/.cache/torch/hub/checkpoints/...``.

A file there is used only once its content is verified: against the hash the caller expects (a registry's sha256 or
torch.hub's file-name prefix) and, for a Hugging Face blob, against its own name (its sha256 or git blob id). The
outcome is remembered in hubkit's home (``external/``) with the file's stat fingerprint, so the next use costs one
``stat`` instead of a re-hash; nothing is ever written into the other tools' caches. ``HUBKIT_NO_EXTERNAL_CACHES=1``
turns the lookup off.

Pure I/O: no engine, no network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hubkit.errors import DownloadError
from hubkit.hub.transport.cache import check_relative_name, env_flag, fingerprint, home_dir, write_json_atomic
from hubkit.hub.transport.verify import HASH_CHUNK, Expect, open_regular

__all__ = [
    "HubFile", "find", "git_blob_sha1", "hf_cached_file", "hf_endpoint", "hf_home", "hf_hub_cache", "hf_snapshot_files",
    "is_commit", "parse_hub_url", "repo_folder_name", "torch_hub_dir", "verified",
]

logger = logging.getLogger("hubkit.hub.external")

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_TYPES = ("model", "dataset", "space")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _xdg_cache() -> Path:
    xdg = os.environ.get("XDG_CACHE_HOME")
    return Path(xdg).expanduser() if xdg else Path.home() / ".cache"


def hf_home() -> Path:
    """``$HF_HOME``, else ``<XDG cache>/huggingface`` (where huggingface_hub keeps its cache and token file)."""
    home = os.environ.get("HF_HOME")
    return Path(home).expanduser() if home else _xdg_cache() / "huggingface"


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache directory, as huggingface_hub computes it (see the module docstring)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name)
        if value:
            return Path(value).expanduser()
    return hf_home() / "hub"


def torch_hub_dir() -> Path:
    """torch.hub's directory (``torch.hub.get_dir()``): ``$TORCH_HOME/hub``, else ``<XDG cache>/torch/hub``."""
    home = os.environ.get("TORCH_HOME")
    return (Path(home).expanduser() if home else _xdg_cache() / "torch") / "hub"


def hf_endpoint() -> str:
    """``$HF_ENDPOINT`` without its trailing ``/``, else ``https://huggingface.co``."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/") or DEFAULT_ENDPOINT


def is_commit(revision: str) -> bool:
    """Whether ``revision`` is a full 40-hex commit id (branches and tags are resolved to one)."""
    return bool(_COMMIT.match(revision))


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    """``"models--ORG--NAME"``: the folder of a repo in the Hugging Face cache (and in hubkit's records)."""
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


# ---------------------------------------------------------------- resolve URLs


@dataclass(frozen=True)
class HubFile:
    """One file of a Hugging Face repo at one revision, as a resolve URL names it."""

    repo_type: str
    repo_id: str
    revision: str
    filename: str


def _hub_hosts() -> set[str]:
    hosts = {"huggingface.co"}
    with contextlib.suppress(ValueError):
        host = urlsplit(hf_endpoint()).netloc.lower()
        if host:
            hosts.add(host)
    return hosts


def parse_hub_url(url: str) -> HubFile | None:
    """The repo file behind ``{endpoint}/[datasets/|spaces/]ORG/NAME/resolve/REV/PATH`` (on huggingface.co or the
    ``HF_ENDPOINT`` host), or ``None`` for any other URL. ``REV`` is unquoted (``refs%2Fpr%2F1`` -> ``refs/pr/1``)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or parts.netloc.lower() not in _hub_hosts() or parts.query:
        return None
    segments = parts.path.strip("/").split("/")
    repo_type = "model"
    if segments and segments[0] in ("datasets", "spaces"):
        repo_type = segments.pop(0)[:-1]
    if "resolve" not in segments:
        return None
    at = segments.index("resolve")
    if at not in (1, 2) or len(segments) < at + 3:
        return None
    repo_id = "/".join(segments[:at])
    revision = unquote(segments[at + 1])
    filename = "/".join(unquote(s) for s in segments[at + 2 :])
    try:
        check_relative_name(filename, what="file name")
    except DownloadError:
        return None
    return HubFile(repo_type, repo_id, revision, filename)


# ---------------------------------------------------------------- the Hugging Face cache


@dataclass(frozen=True)
class CachedFile:
    """A file found in the Hugging Face cache: its snapshot ``path``, the ``commit`` and the blob's ``etag`` (its
    name in ``blobs/``; ``None`` where the snapshot holds a copy instead of a link)."""

    path: Path
    commit: str
    etag: str | None


def _repo_root(repo_id: str, repo_type: str, root: Path | None) -> Path:
    return (hf_hub_cache() if root is None else root) / repo_folder_name(repo_id, repo_type)


def hf_cached_commit(repo_id: str, revision: str, repo_type: str = "model", root: Path | None = None) -> str | None:
    """The commit the Hugging Face cache (``root``, default :func:`hf_hub_cache`) records for ``revision``
    (``refs/<revision>``), or ``revision`` itself when it is a commit id; ``None`` when the cache does not know it."""
    if is_commit(revision):
        return revision
    try:
        parts = check_relative_name(revision, what="revision")
        text = _repo_root(repo_id, repo_type, root).joinpath("refs", *parts).read_text(encoding="ascii").strip()
    except (DownloadError, OSError, UnicodeDecodeError):
        return None
    return text if is_commit(text) else None


def hf_cached_file(repo_id: str, filename: str, revision: str, repo_type: str = "model",
                   root: Path | None = None) -> CachedFile | None:
    """Where the Hugging Face cache (``root``, default :func:`hf_hub_cache`) holds ``filename`` of ``repo_id`` at
    ``revision`` (a commit, or a branch or tag its ``refs/`` knows), or ``None``. Read-only: nothing is created or
    changed."""
    commit = hf_cached_commit(repo_id, revision, repo_type, root)
    if commit is None:
        return None
    try:
        parts = check_relative_name(filename, what="file name")
    except DownloadError:
        return None
    repo = _repo_root(repo_id, repo_type, root)
    snap = repo.joinpath("snapshots", commit, *parts)
    if not snap.is_file():
        return None
    etag = None
    if snap.is_symlink():
        with contextlib.suppress(OSError):
            target = snap.resolve(strict=True)
            if target.parent == (repo / "blobs").resolve():
                etag = target.name
    return CachedFile(snap, commit, etag)


def hf_snapshot_files(repo_id: str, commit: str, repo_type: str = "model", root: Path | None = None) -> list[str]:
    """The files (``/``-separated relative paths) the Hugging Face cache holds for ``commit``; ``[]`` when none.
    Dot-files (hubkit's own records beside files it stored in a ``cache_dir``) are left out."""
    snap = _repo_root(repo_id, repo_type, root) / "snapshots" / commit
    if not snap.is_dir():
        return []
    out = []
    for dirpath, dirnames, filenames in os.walk(snap):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.startswith(".") and path.is_file():
                out.append(path.relative_to(snap).as_posix())
    return out


# ---------------------------------------------------------------- verification, remembered


def git_blob_sha1(data_or_path: bytes | Path) -> str:
    """Git's blob id of some content: sha1 of ``b"blob <size>\\0"`` + the bytes (what the Hub publishes as the
    ETag of a file not stored in Git LFS)."""
    if isinstance(data_or_path, bytes):
        h = hashlib.sha1(b"blob %d\0" % len(data_or_path))
        h.update(data_or_path)
        return h.hexdigest()
    return _hash_external(Path(data_or_path), ("git-sha1",))["git-sha1"]


def _hash_external(path: Path, algorithms: tuple[str, ...]) -> dict[str, str]:
    """sha256 / md5 / git-sha1 of a file in one read (opening regular files only)."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        hashers = {a: hashlib.sha1(b"blob %d\0" % size) if a == "git-sha1" else hashlib.new(a) for a in algorithms}
        buf = bytearray(HASH_CHUNK)
        view = memoryview(buf)
        while n := f.readinto(buf):
            for h in hashers.values():
                h.update(view[:n])
    return {a: h.hexdigest() for a, h in hashers.items()}


def _record_path(path: Path) -> Path:
    key = hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:32]
    return home_dir() / "external" / f"{key}.json"


def _known_digests(path: Path, st: os.stat_result) -> dict[str, str]:
    """Digests remembered for ``path`` at its current fingerprint, else ``{}``."""
    try:
        data = json.loads(_record_path(path).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("path") != os.path.abspath(path) or data.get("fingerprint") != \
            fingerprint(st) or not isinstance(data.get("digests"), dict):  # fmt: skip
        return {}
    return {k: v for k, v in data["digests"].items() if isinstance(k, str) and isinstance(v, str)}


def verified(path: Path, expect: Expect, *, etag: str | None = None, git_sha1: str | None = None) -> bool:
    """Whether the external file ``path`` passes ``expect``, has the git blob id ``git_sha1`` when given, and
    matches ``etag`` when that is a sha256 (64 hex) or a git blob id (40 hex). Hashes at most once per version of
    the file (remembered under ``<home>/external/``). A file nothing can be checked against is not trusted."""
    if etag is not None and not (_SHA256.match(etag) or _COMMIT.match(etag)):
        etag = None
    if not (expect.sha256 or expect.sha256_prefix or expect.md5 or git_sha1 or etag):
        return False
    try:
        st = os.stat(path)
    except OSError:
        return False
    if expect.size is not None and st.st_size != expect.size:
        logger.warning("%s has %d bytes, expected %d; not using it", path, st.st_size, expect.size)
        return False
    wanted = {"sha256"}
    if expect.md5:
        wanted.add("md5")
    if git_sha1 or (etag is not None and len(etag) == 40):
        wanted.add("git-sha1")
    digests = _known_digests(path, st)
    missing = tuple(sorted(wanted - set(digests)))
    if missing:
        logger.info("verifying %s (%s)", path, ", ".join(missing))
        try:
            digests.update(_hash_external(path, missing))
        except OSError as e:
            logger.warning("cannot read %s: %s", path, e)
            return False
        with contextlib.suppress(OSError):  # remembering is an optimisation: a read-only home just re-hashes
            record = _record_path(path)
            record.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(record, {"path": os.path.abspath(path), "fingerprint": fingerprint(st),
                                       "digests": digests})
    problems = []
    problem = expect.problem(st.st_size, digests)
    if problem:
        problems.append(problem)
    if git_sha1 and digests.get("git-sha1") != git_sha1:
        problems.append(f"git blob id {digests.get('git-sha1')}, expected {git_sha1}")
    if etag is not None and digests.get("sha256" if len(etag) == 64 else "git-sha1") != etag:
        problems.append(f"its content does not match its blob name {etag}")
    if problems:
        logger.warning("not using %s: %s", path, "; ".join(problems))
        return False
    return True


# ---------------------------------------------------------------- the lookup fetch makes


def find(url: str, expect: Expect) -> Path | None:
    """A verified copy of ``url``'s content in another tool's cache, or ``None``.

    A Hugging Face resolve URL is looked up in the Hugging Face cache (at its commit, or at the commit the cache
    records for its branch); a URL whose content has a known sha256 (or sha256 prefix) also in torch.hub's
    checkpoints, under the URL's file name.
    """
    if env_flag("HUBKIT_NO_EXTERNAL_CACHES"):
        return None
    hub = parse_hub_url(url)
    if hub is not None:
        cached = hf_cached_file(hub.repo_id, hub.filename, hub.revision, hub.repo_type)
        if cached is not None and verified(cached.path, expect, etag=cached.etag):
            logger.info("using %s from the Hugging Face cache for %s", cached.path, url)
            return cached.path
    if expect.sha256 or expect.sha256_prefix:
        name = posixpath.basename(unquote(urlsplit(url).path))
        if name and name not in (".", ".."):
            candidate = torch_hub_dir() / "checkpoints" / name
            if candidate.is_file() and verified(candidate, expect):
                logger.info("using %s from the torch.hub cache for %s", candidate, url)
                return candidate
    return None
