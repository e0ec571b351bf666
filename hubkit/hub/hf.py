"""The Hugging Face Hub over HTTP, on top of ``fetch``: ``hf_hub_download`` with pinned revisions and gated repos.

    from hubkit.hub import hf_hub_download
    path = hf_hub_download("sentence-transformers/all-MiniLM-L6-v2", "config.json")          # huggingface_hub's call
    path = hf_hub_download("openai-community/gpt2", "model.safetensors", revision="607a30d7...")

What it adds to huggingface_hub's behaviour:

- **Pinned revisions.** A branch or tag (``"main"``, the default) is resolved to a commit once, from the ``HEAD``
  answer's ``X-Repo-Commit`` (or the model info API's ``sha``), and recorded: later calls use that commit, with no
  network at all once their files are cached, so a model does not change under a program when upstream pushes.
  ``force_download=True`` resolves the branch again (and downloads the file again). A commit id is used as is.
- **Verified content.** Files in Git LFS are checked against the sha256 the Hub publishes for them
  (``X-Linked-Etag``, the LFS object id) and their size (``X-Linked-Size``); other files against their git blob id
  (the ``ETag``) before they are committed. What was learned about a file at a commit is recorded too.
- **Every ``fetch`` guarantee**: resume across runs, retries, ``HUBKIT_MIRROR`` mirrors (the mirror copy of a file is
  ``<base>/<endpoint host>/ORG/NAME/resolve/<commit>/<path>``), one download for many processes, atomic commits.
- **Other caches.** A file the Hugging Face cache already holds (``HF_HUB_CACHE`` / ``HF_HOME`` layout: refs,
  snapshots, blobs) is used where it is, read-only, once its content matches its blob name (see
  ``transport.external``); a branch the cache's ``refs/`` knows needs no network either.
- **Access.** ``token=`` or ``HF_TOKEN`` (also ``HUGGING_FACE_HUB_TOKEN``, and the token file ``$HF_HOME/token``) is
  sent as ``Authorization: Bearer`` to the endpoint only, never to the CDN a download is redirected to, nor to a
  mirror. A 401/403 raises :class:`~hubkit.errors.GatedRepoError` saying to set ``HF_TOKEN`` or accept the repo's
  terms on the website. ``HF_ENDPOINT`` replaces ``https://huggingface.co``.
- **Offline.** ``HUBKIT_OFFLINE=1``, ``HF_HUB_OFFLINE=1`` (or ``TRANSFORMERS_OFFLINE=1``) or
  ``local_files_only=True``: only the caches and records; no socket is opened.

Records live in ``<hubkit home>/hf/<models--ORG--NAME>/``: ``refs/<revision>`` (the commit),
``files/<commit>/<path>.json`` (size, sha256 or git blob id) and ``trees/<commit>.json`` (the repo's file list at that
commit, for ``hf:`` loading).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hubkit.errors import (
    ArgumentError,
    ArgumentTypeError,
    DownloadError,
    EntryNotFoundError,
    GatedRepoError,
    HubkitError,
    IntegrityError,
    OfflineError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from hubkit.hub.transport import _http, external
from hubkit.hub.transport.cache import (
    check_relative_name,
    env_flag,
    files_dir,
    home_dir,
    read_record,
    url_relpath,
    write_bytes_atomic,
)
from hubkit.hub.transport.verify import Expect

__all__ = ["HubRepo", "RepoFiles", "hf_hub_download", "hf_hub_url", "hf_offline", "hf_token", "split_hf_name"]

logger = logging.getLogger("hubkit.hub.hf")

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
_REPO_ID = re.compile(rf"^(?:{_NAME}/)?{_NAME}$")
_TOKEN_FILE_HINT = "https://huggingface.co/settings/tokens"


# ---------------------------------------------------------------- names, settings


def _check_repo(repo_id: Any, repo_type: Any) -> None:
    if not isinstance(repo_id, str):
        raise ArgumentTypeError(f"repo_id must be a str like 'sentence-transformers/all-MiniLM-L6-v2', got "
                                f"{type(repo_id).__name__}")
    if not _REPO_ID.match(repo_id) or "--" in repo_id or ".." in repo_id:
        raise ArgumentError(f"{repo_id!r} is not a Hugging Face repo id: expected 'ORG/NAME' (or 'NAME'), letters, "
                            "digits, '-', '_' and '.', without '--' or '..', e.g. "
                            "'sentence-transformers/all-MiniLM-L6-v2'")
    if repo_type not in external.REPO_TYPES:
        raise ArgumentError(f"repo_type must be one of {list(external.REPO_TYPES)}, got {repo_type!r}")


def _check_revision(revision: Any) -> str:
    if revision is None:
        return "main"
    if not isinstance(revision, str) or not revision.strip():
        raise ArgumentError(f"revision must be a branch, tag or commit id (a non-empty str), got {revision!r}")
    check_relative_name(revision, what="revision", error=ArgumentError)
    return revision


def split_hf_name(name: str) -> str:
    """``"hf:ORG/NAME"`` -> ``"ORG/NAME"`` (validated); raises :class:`ArgumentError` for anything else."""
    if not isinstance(name, str) or not name.startswith("hf:"):
        raise ArgumentError(f"expected 'hf:ORG/NAME', got {name!r}")
    repo_id = name[3:].strip()
    _check_repo(repo_id, "model")
    return repo_id


def hf_token(token: str | bool | None = None) -> str | None:
    """The access token to send: ``token`` when a str; none when ``False``; else ``HF_TOKEN`` (or
    ``HUGGING_FACE_HUB_TOKEN``), else the token file (``HF_TOKEN_PATH``, default ``$HF_HOME/token``). ``True``
    requires one."""
    if isinstance(token, str):
        return token.strip() or None
    if token is False:
        return None
    if token is not None and token is not True:
        raise ArgumentTypeError(f"token must be a str, True, False or None, got {type(token).__name__}")
    found = None
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        value = os.environ.get(name, "").strip()
        if value:
            found = value
            break
    if found is None:
        path = Path(os.environ.get("HF_TOKEN_PATH") or external.hf_home() / "token").expanduser()
        with contextlib.suppress(OSError, UnicodeDecodeError):
            found = path.read_text(encoding="utf-8").strip() or None
    if token is True and found is None:
        raise GatedRepoError(f"token=True asks for a Hugging Face token, and none is set: set HF_TOKEN to an access "
                             f"token from {_TOKEN_FILE_HINT}, or pass token='hf_...'.")
    return found


def hf_offline(local_files_only: bool = False) -> bool:
    """Whether to stay off the network: ``local_files_only``, ``HUBKIT_OFFLINE``, ``HF_HUB_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE``."""
    return bool(local_files_only) or any(env_flag(v) for v in ("HUBKIT_OFFLINE", "HF_HUB_OFFLINE",
                                                               "TRANSFORMERS_OFFLINE"))


def hf_hub_url(repo_id: str, filename: str, *, subfolder: str | None = None, repo_type: str = "model",
               revision: str | None = None, endpoint: str | None = None) -> str:
    """``{endpoint}/[datasets/|spaces/]{repo_id}/resolve/{revision}/{filename}`` (huggingface_hub's
    ``hf_hub_url``): the revision quoted with no safe character, the file name keeping its ``/``."""
    _check_repo(repo_id, repo_type)
    revision = _check_revision(revision)
    path = _file_path(filename, subfolder)
    prefix = "" if repo_type == "model" else f"{repo_type}s/"
    base = (endpoint or external.hf_endpoint()).rstrip("/")
    return f"{base}/{prefix}{repo_id}/resolve/{quote(revision, safe='')}/{quote(path, safe='/')}"


def _file_path(filename: Any, subfolder: str | None) -> str:
    if not isinstance(filename, str):
        raise ArgumentTypeError(f"filename must be a str like 'config.json', got {type(filename).__name__}")
    if subfolder:
        filename = f"{subfolder.strip('/')}/{filename}"
    return "/".join(check_relative_name(filename, what="file name", error=ArgumentError))


# ---------------------------------------------------------------- what is known about a file


@dataclass(frozen=True)
class FileMeta:
    """A file at a commit: ``size`` in bytes; ``sha256`` for Git LFS files (the LFS object id) or, for any file,
    the sha256 hubkit measured when it downloaded and verified it; ``git_sha1``: the git blob id of a file kept in
    git itself."""

    size: int | None = None
    sha256: str | None = None
    git_sha1: str | None = None
    lfs: bool = False

    @classmethod
    def from_json(cls, data: Any) -> FileMeta | None:
        if not isinstance(data, dict):
            return None
        size = data.get("size")
        sha = data.get("sha256")
        git = data.get("git_sha1")
        if (size is not None and (type(size) is not int or size < 0)) or not _hex_or_none(sha, 64) or \
                not _hex_or_none(git, 40):  # fmt: skip
            return None
        return cls(size, sha, git, bool(data.get("lfs")))


def _hex_or_none(value: Any, length: int) -> bool:
    return value is None or (isinstance(value, str) and len(value) == length and
                             all(c in "0123456789abcdef" for c in value))


def _normalize_etag(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower() or None


# ---------------------------------------------------------------- records


class _Records:
    """hubkit's records of one repo: refs, file metadata and file lists, under ``<home>/hf/<repo folder>``."""

    def __init__(self, repo_id: str, repo_type: str) -> None:
        self.root = home_dir() / "hf" / external.repo_folder_name(repo_id, repo_type)

    def _write(self, path: Path, data: bytes) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, data)
        except OSError as e:  # a read-only home: works, but the revision is resolved again next time
            logger.warning("cannot record %s: %s", path, e)

    def ref(self, revision: str) -> str | None:
        try:
            text = (self.root / "refs" / quote(revision, safe="")).read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return text if external.is_commit(text) else None

    def set_ref(self, revision: str, commit: str) -> None:
        self._write(self.root / "refs" / quote(revision, safe=""), commit.encode("ascii"))

    def _meta_path(self, commit: str, path: str) -> Path:
        return self.root.joinpath("files", commit, *path.split("/")).with_name(path.rsplit("/", 1)[-1] + ".json")

    def meta(self, commit: str, path: str) -> FileMeta | None:
        try:
            return FileMeta.from_json(json.loads(self._meta_path(commit, path).read_bytes()))
        except (OSError, ValueError):
            return None

    def set_meta(self, commit: str, path: str, meta: FileMeta) -> None:
        self._write(self._meta_path(commit, path), json.dumps(asdict(meta), sort_keys=True).encode())

    def tree(self, commit: str) -> dict[str, FileMeta] | None:
        try:
            data = json.loads((self.root / "trees" / f"{commit}.json").read_bytes())
        except (OSError, ValueError):
            return None
        files = data.get("files") if isinstance(data, dict) else None
        if not isinstance(files, dict):
            return None
        out = {k: FileMeta.from_json(v) for k, v in files.items() if isinstance(k, str)}
        return {k: v for k, v in out.items() if v is not None}

    def set_tree(self, commit: str, files: Mapping[str, FileMeta]) -> None:
        data = {"files": {k: asdict(v) for k, v in sorted(files.items())}}
        self._write(self.root / "trees" / f"{commit}.json", json.dumps(data, indent=1).encode())


# ---------------------------------------------------------------- talking to the Hub


def _error_for(resp: Any, what: str, repo_id: str, revision: str, token_sent: bool, endpoint: str) -> HubkitError:
    """The hubkit error for an error answer of the Hub (its ``X-Error-Code`` / ``X-Error-Message`` read as
    huggingface_hub reads them)."""
    status = resp.status_code
    code = resp.headers.get("X-Error-Code", "")
    message = resp.headers.get("X-Error-Message", "")
    page = f"{endpoint}/{repo_id}"
    said = f" (the Hub says: {message})" if message else ""
    if status == 401 or (status == 403 and code == "GatedRepo"):
        if status == 403:
            return GatedRepoError(
                f"{what}: access to {repo_id} is restricted{said}. The account of your token has not been granted "
                f"access: open {page} while logged in, accept its terms (approval may take a while), then retry.")
        if message == "Invalid credentials in Authorization header":
            return GatedRepoError(f"{what}: the Hub refused the token (HF_TOKEN or token=) as invalid. Create a new "
                                  f"one at {_TOKEN_FILE_HINT} and set HF_TOKEN to it.")
        if token_sent:
            return GatedRepoError(
                f"{what}: HTTP 401 even with a token: {repo_id} is private or gated (or does not exist){said}. Check "
                f"that the account of the token (HF_TOKEN or token=) may read it: for a gated repo, accept its terms "
                f"on {page}.")
        return GatedRepoError(
            f"{what}: HTTP 401: {repo_id} is private or gated, or does not exist{said}, and no token was sent. For a "
            f"gated model, accept its terms on {page}, create an access token at {_TOKEN_FILE_HINT} and set "
            "HF_TOKEN to it (or pass token='hf_...').")
    if status == 403:
        return GatedRepoError(f"{what}: HTTP 403 forbidden{said}. Check the token (HF_TOKEN) and your access to "
                              f"{page}.")
    if status == 404:
        if code == "RepoNotFound":
            return RepositoryNotFoundError(f"{what}: no repo {repo_id!r} on {endpoint}{said}; check "
                                           "the spelling (ORG/NAME), or set HF_TOKEN if it is private.")
        if code == "RevisionNotFound":
            return RevisionNotFoundError(f"{what}: {repo_id} has no branch, tag or commit {revision!r}{said}; see "
                                         f"{page}/tree/main for its branches.")
        return EntryNotFoundError(f"{what}: not found (HTTP 404){said}. Check the file name and the revision "
                                  f"{revision!r}; the files are listed at {page}/tree/{quote(revision, safe='')}.")
    return DownloadError(f"{what}: HTTP {status} {resp.reason or ''}{said}".rstrip())


def _request(method: str, url: str, *, token: str | None, what: str, repo_id: str, revision: str,
             endpoint: str) -> Any:
    """One Hub request (``HEAD`` of a resolve URL, ``GET`` of an API URL), with ``_http``'s timeouts and retry policy.

    Redirects: relative ones (a renamed repo, on the same server) are followed; an absolute one (a Git LFS file's
    CDN) is returned as the answer, as the Hub's metadata is on it. Errors become the hubkit errors of
    :func:`_error_for`; transport failures a :class:`DownloadError`.
    """
    import requests

    headers = {"Accept-Encoding": "identity"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    attempt = 0
    current = url
    redirects = 0
    while True:
        attempt += 1
        try:
            resp = _http._session().request(method, current, headers=headers, allow_redirects=False,
                                            timeout=(_http.SETTINGS.connect_timeout, _http.SETTINGS.read_timeout))
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
            offline = _http._no_network(e)
            if offline is not None or attempt >= _http.SETTINGS.max_attempts:
                hint = (" This machine seems to have no network: set HF_HUB_OFFLINE=1 (or HUBKIT_OFFLINE=1) to use "
                        "only cached files." if offline else "")
                raise DownloadError(f"{what}: cannot reach {endpoint}: {_http._short(e)}.{hint}") \
                    from None
            _http.sleep(_http.backoff_delay(attempt, None))
            continue
        except requests.exceptions.RequestException as e:
            raise DownloadError(f"{what}: the request failed: {_http._short(e)}") from None
        status = resp.status_code
        if status in _http.REDIRECT_STATUS:
            location = resp.headers.get("Location", "")
            resp.close()
            if location.startswith("/") and not location.startswith("//") and redirects < _http.SETTINGS.max_redirects:
                redirects += 1
                current = _origin_of(current) + location
                continue
            return resp
        if status in _http.RETRY_STATUS and attempt < _http.SETTINGS.max_attempts:
            resp.close()
            _http.sleep(_http.backoff_delay(attempt, _http.parse_retry_after(resp.headers.get("Retry-After"))))
            continue
        if status >= 400:
            resp.close()
            raise _error_for(resp, what, repo_id, revision, token is not None, endpoint)
        return resp


def _origin_of(url: str) -> str:
    from urllib.parse import urlsplit

    p = urlsplit(url)
    return f"{p.scheme}://{p.netloc}"


def _head_meta(url: str, *, token: str | None, what: str, repo_id: str, revision: str,
               endpoint: str) -> tuple[str | None, FileMeta]:
    """``HEAD`` a resolve URL: (the commit it resolved to, what the Hub says about the file)."""
    resp = _request("HEAD", url, token=token, what=what, repo_id=repo_id, revision=revision, endpoint=endpoint)
    h = resp.headers
    resp.close()
    commit = (h.get("X-Repo-Commit") or "").strip().lower() or None
    if commit is not None and not external.is_commit(commit):
        commit = None
    etag = _normalize_etag(h.get("X-Linked-Etag") or h.get("ETag"))
    size_text = h.get("X-Linked-Size")
    if size_text is None and resp.status_code not in _http.REDIRECT_STATUS:
        size_text = h.get("Content-Length")
    size = None
    with contextlib.suppress(_http.TransferError):
        size = _http.header_int(size_text, "X-Linked-Size")
    if etag is not None and len(etag) == 64 and _hex_or_none(etag, 64):
        return commit, FileMeta(size=size, sha256=etag, lfs=True)
    if etag is not None and len(etag) == 40 and _hex_or_none(etag, 40):
        return commit, FileMeta(size=size, git_sha1=etag)
    return commit, FileMeta(size=size)


def _model_info(repo_id: str, revision: str, repo_type: str, *, token: str | None,
                endpoint: str) -> tuple[str, dict[str, FileMeta]]:
    """``GET /api/{type}s/{repo}/revision/{rev}?blobs=true``: the commit and every file with its metadata."""
    url = f"{endpoint}/api/{repo_type}s/{repo_id}/revision/{quote(revision, safe='')}?blobs=true"
    what = f"listing the files of {repo_id}@{revision}"
    resp = _request("GET", url, token=token, what=what, repo_id=repo_id, revision=revision, endpoint=endpoint)
    try:
        info = resp.json()
    except ValueError:
        raise DownloadError(f"{what}: the answer of {url} is not JSON; is HF_ENDPOINT a Hugging Face Hub?") from None
    finally:
        resp.close()
    commit = info.get("sha") if isinstance(info, dict) else None
    if not isinstance(commit, str) or not external.is_commit(commit):
        raise DownloadError(f"{what}: the answer of {url} names no commit ('sha'); is HF_ENDPOINT a Hugging Face Hub?")
    files: dict[str, FileMeta] = {}
    for sibling in info.get("siblings") or []:
        if not isinstance(sibling, dict) or not isinstance(sibling.get("rfilename"), str):
            continue
        lfs = sibling.get("lfs")
        size = sibling.get("size") if type(sibling.get("size")) is int else None
        blob = sibling.get("blobId")
        if isinstance(lfs, dict) and _hex_or_none(lfs.get("sha256"), 64) and lfs.get("sha256"):
            lfs_size = lfs.get("size") if type(lfs.get("size")) is int else size
            files[sibling["rfilename"]] = FileMeta(size=lfs_size, sha256=lfs["sha256"], lfs=True)
        else:
            git = blob if isinstance(blob, str) and _hex_or_none(blob, 40) else None
            files[sibling["rfilename"]] = FileMeta(size=size, git_sha1=git)
    return commit, files


# ---------------------------------------------------------------- one repo at one commit


class HubRepo:
    """A Hugging Face repo at one commit: resolves the revision once (records, then the Hugging Face cache, then the
    network), and gets its files verified (:meth:`file`). What ``hf_hub_download`` and ``hubkit.load("hf:...")``
    share.
    """

    def __init__(self, repo_id: str, revision: str | None = None, *, repo_type: str = "model",
                 token: str | bool | None = None, local_files_only: bool = False, cache_dir: str | os.PathLike | None
                 = None, local_dir: str | os.PathLike | None = None, force_download: bool = False,
                 progress: bool | None = None, endpoint: str | None = None) -> None:  # fmt: skip
        _check_repo(repo_id, repo_type)
        if cache_dir is not None and local_dir is not None:
            raise ArgumentError("cache_dir= and local_dir= both say where to store files; pass one of them")
        self.endpoint = (endpoint or external.hf_endpoint()).strip().rstrip("/")
        self.local_dir = Path(local_dir).expanduser() if local_dir is not None else None
        self.repo_id, self.repo_type = repo_id, repo_type
        self.revision = _check_revision(revision)
        self.offline = hf_offline(local_files_only)
        self.token = None if self.offline and token is not True else hf_token(token)
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else None
        self.force = bool(force_download)
        self.progress = progress
        self.records = _Records(repo_id, repo_type)
        self._commit: str | None = None
        self._tree: dict[str, FileMeta] | None = None

    @property
    def hf_root(self) -> Path:
        """The Hugging Face-layout cache looked in: ``cache_dir``, else ``HF_HUB_CACHE`` / ``HF_HOME``."""
        return self.cache_dir if self.cache_dir is not None else external.hf_hub_cache()

    def describe(self) -> str:
        rev = self.revision if self._commit is None or self._commit == self.revision else \
            f"{self.revision} = {self._commit[:12]}"  # fmt: skip
        return f"{self.repo_id}@{rev}"

    def _offline_error(self, what: str) -> OfflineError:
        return OfflineError(
            f"{what}: offline (HF_HUB_OFFLINE, HUBKIT_OFFLINE or local_files_only=True) and it is in neither hubkit's "
            f"records ({self.records.root}) nor the Hugging Face cache ({self.hf_root}). Run once with the network, "
            "or set HUBKIT_MIRROR to a file:// mirror that has it.")

    # -------------------------------------------------------------- the commit

    def _known_commit(self) -> str | None:
        if external.is_commit(self.revision):
            return self.revision
        if self.force:
            return None
        commit = self.records.ref(self.revision)
        if commit is None:
            commit = external.hf_cached_commit(self.repo_id, self.revision, self.repo_type, self.hf_root)
            if commit is not None:
                logger.info("%s: %s is %s in the Hugging Face cache", self.repo_id, self.revision, commit)
                self.records.set_ref(self.revision, commit)
        return commit

    def _pin(self, commit: str) -> None:
        if commit != self.revision:
            logger.info("%s: pinned %s to commit %s", self.repo_id, self.revision, commit)
            self.records.set_ref(self.revision, commit)
        self._commit = commit

    def commit(self) -> str:
        """The commit this repo is read at (the network is used only the first time a branch is asked for)."""
        if self._commit is None:
            commit = self._known_commit()
            if commit is None:
                if self.offline:
                    raise self._offline_error(f"resolving {self.repo_id}@{self.revision}")
                commit, files = _model_info(self.repo_id, self.revision, self.repo_type, token=self.token,
                                            endpoint=self.endpoint)
                self.records.set_tree(commit, files)
                self._tree = files
                self._pin(commit)
            self._commit = commit
        return self._commit

    # -------------------------------------------------------------- the files

    def tree(self) -> dict[str, FileMeta]:
        """Every file of the repo at its commit with what is known of it: recorded, else listed by the Hub (one
        request), else, offline or when a Hugging Face cache snapshot holds a loadable model (a ``config.json``
        and weights), the files that snapshot and hubkit's cache hold."""
        if self._tree is not None:
            return self._tree
        commit = self.commit()
        tree = self.records.tree(commit)
        if tree is None:
            local = self._local_files(commit)
            loadable = "config.json" in local and any(n.endswith((".safetensors", ".bin")) for n in local)
            if self.offline or (loadable and not self.force):
                tree = local
            else:
                _, tree = _model_info(self.repo_id, commit, self.repo_type, token=self.token, endpoint=self.endpoint)
                self.records.set_tree(commit, tree)
        self._tree = tree
        return tree

    def _local_files(self, commit: str) -> dict[str, FileMeta]:
        names = set(external.hf_snapshot_files(self.repo_id, commit, self.repo_type, self.hf_root))
        mine = files_dir().joinpath(*url_relpath(self._url("x", commit)).split("/")[:-1])
        if self.cache_dir is None and mine.is_dir():
            for dirpath, _, filenames in os.walk(mine):
                for name in filenames:
                    if not name.startswith("."):
                        names.add((Path(dirpath) / name).relative_to(mine).as_posix())
        return {name: self.records.meta(commit, name) or FileMeta() for name in sorted(names)}

    def _url(self, path: str, commit: str) -> str:
        return hf_hub_url(self.repo_id, path, repo_type=self.repo_type, revision=commit, endpoint=self.endpoint)

    def file(self, path: str) -> Path:
        """The verified local copy of ``path`` at this repo's commit (see the module docstring for where it comes
        from). Raises :class:`EntryNotFoundError` when the repo has no such file."""
        path = _file_path(path, None)
        what = f"{self.describe()}: {path}"
        commit = self._known_commit() if self._commit is None else self._commit
        meta = None
        if commit is not None:
            self._commit = commit
            meta = self.records.meta(commit, path)
            if meta is None and self._tree is not None:
                if path not in self._tree and not self.offline:
                    raise EntryNotFoundError(f"{what}: {self.repo_id} has no such file at commit {commit}; it has "
                                             f"{', '.join(sorted(self._tree)) or 'no files'}.")
                meta = self._tree.get(path)
            if not self.force:
                found = self._from_hf_cache(commit, path, meta)
                if found is not None:
                    return found
        if meta is None or meta.size is None:
            if self.offline:
                if commit is None:
                    raise self._offline_error(f"resolving {self.repo_id}@{self.revision}")
                return self._fetch(commit, path, meta or FileMeta(), what)  # hubkit's cache, or an offline error
            head_rev = commit or self.revision
            url = self._url(path, head_rev)
            found_commit, head = _head_meta(url, token=self.token, what=f"{what} (HEAD {url})", repo_id=self.repo_id,
                                            revision=head_rev, endpoint=self.endpoint)
            if commit is None:
                commit = found_commit or self.commit()
                self._pin(commit)
            meta = _merge(meta, head)
            self.records.set_meta(commit, path, meta)
            if not self.force:
                found = self._from_hf_cache(commit, path, meta)
                if found is not None:
                    return found
        return self._fetch(commit, path, meta, what)

    def _from_hf_cache(self, commit: str, path: str, meta: FileMeta | None) -> Path | None:
        cached = external.hf_cached_file(self.repo_id, path, commit, self.repo_type, self.hf_root)
        if cached is None or env_flag("HUBKIT_NO_EXTERNAL_CACHES") and self.cache_dir is None:
            return None
        meta = meta or FileMeta()
        expect = Expect.of(sha256=meta.sha256, size=meta.size)
        if external.verified(cached.path, expect, etag=cached.etag, git_sha1=meta.git_sha1):
            logger.info("%s: using %s from the Hugging Face cache", self.repo_id, cached.path)
            return cached.path
        return None

    def _fetch(self, commit: str, path: str, meta: FileMeta, what: str) -> Path:
        from hubkit.hub.transport.download import fetch

        url = self._url(path, commit)
        dest = None
        if self.cache_dir is not None:
            dest = self.cache_dir.joinpath(external.repo_folder_name(self.repo_id, self.repo_type), "snapshots",
                                           commit, *path.split("/")[:-1])
        elif self.local_dir is not None:
            dest = self.local_dir.joinpath(*path.split("/")[:-1])
        final = (dest / path.rsplit("/", 1)[-1]) if dest is not None else \
            files_dir().joinpath(*url_relpath(url).split("/"))  # fmt: skip
        if self.force:
            _drop_cached(final)
        check = None
        if meta.git_sha1 and not meta.sha256:
            expected = meta.git_sha1

            def check(p: Path) -> str | None:
                try:
                    got = external.git_blob_sha1(p)
                except OSError as e:
                    return f"cannot read the download: {e}"
                return None if got == expected else f"git blob id mismatch: expected {expected}, got {got}"

        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            local = fetch(url, sha256=meta.sha256, size=meta.size, dest=dest, progress=self.progress,
                          offline=self.offline, headers=headers, check=check)
        except OfflineError:
            raise self._offline_error(what) from None
        except DownloadError as e:
            if isinstance(e, IntegrityError):
                raise
            raise _refine(e, what, self) from None
        if not meta.sha256 and local == final:  # remember the measured sha256: later checks need no git hash
            record = read_record(local)
            if record is not None and record.size == (meta.size if meta.size is not None else record.size):
                self.records.set_meta(commit, path, FileMeta(size=record.size, sha256=record.sha256,
                                                             git_sha1=meta.git_sha1, lfs=meta.lfs))
        if self.cache_dir is not None and not external.is_commit(self.revision):
            with contextlib.suppress(OSError):  # the cache_dir is a Hugging Face cache: give it the ref too
                ref = self.cache_dir.joinpath(external.repo_folder_name(self.repo_id, self.repo_type), "refs",
                                              *self.revision.split("/"))
                ref.parent.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(ref, commit.encode("ascii"))
        return local


class RepoFiles:
    """A :class:`HubRepo`'s files as ``hubkit.zoo.hf`` reads a model folder: ``has`` looks at the repo's file list,
    ``get`` fetches (or finds) and verifies one file."""

    mappable = True  # every cache involved replaces files by renaming only

    def __init__(self, repo: HubRepo) -> None:
        self.repo = repo
        repo.tree()
        self.where = f"hf:{repo.describe()}"

    def has(self, name: str) -> bool:
        return name in self.repo.tree()

    def get(self, name: str) -> Path | None:
        return self.repo.file(name) if self.has(name) else None


def _merge(old: FileMeta | None, new: FileMeta) -> FileMeta:
    if old is None:
        return new
    return FileMeta(size=new.size if new.size is not None else old.size, sha256=new.sha256 or old.sha256,
                    git_sha1=new.git_sha1 or old.git_sha1, lfs=new.lfs or old.lfs)


def _drop_cached(final: Path) -> None:
    from hubkit.hub.transport.cache import sidecar_path

    for p in (final, sidecar_path(final)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _refine(e: DownloadError, what: str, repo: HubRepo) -> DownloadError:
    """fetch's error, with the Hub's meaning of 401/403/404 when the download itself was refused."""
    text = str(e)
    if "HTTP 401" in text or "HTTP 403" in text:
        return GatedRepoError(f"{what}: the download was refused ({text.splitlines()[-1].strip()}). Set HF_TOKEN to "
                              f"an access token ({_TOKEN_FILE_HINT}) and accept the repo's terms on "
                              f"{repo.endpoint}/{repo.repo_id}.\n{text}")
    if "HTTP 404" in text:
        return EntryNotFoundError(f"{what}: not found.\n{text}")
    return DownloadError(f"{what}:\n{text}")


# ---------------------------------------------------------------- the public call


def hf_hub_download(
    repo_id: str,
    filename: str,
    *,
    subfolder: str | None = None,
    repo_type: str | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    endpoint: str | None = None,
    progress: bool | None = None,
) -> str:
    """Download a file of a Hugging Face repo (or find it cached) and return its local path, as huggingface_hub's
    ``hf_hub_download`` does.

    Args:
        repo_id: ``"ORG/NAME"`` (or a legacy ``"NAME"``).
        filename: the file's path in the repo (``"config.json"``, ``"1_Pooling/config.json"``).
        subfolder: a folder of the repo ``filename`` is in.
        repo_type: ``"model"`` (``None``), ``"dataset"`` or ``"space"``.
        revision: a branch, tag or commit id (default ``"main"``). A branch or tag is resolved to a commit once and
            recorded; later calls keep that commit (see the module docstring).
        cache_dir: a cache folder in the Hugging Face layout to use instead of ``HF_HUB_CACHE``: looked in first,
            and downloads are stored in it (``<repo folder>/snapshots/<commit>/<file>``, ``refs/<revision>``)
            instead of in hubkit's cache.
        local_dir: a plain folder to store the file in, at its path in the repo (``local_dir/1_Pooling/config.json``),
            with hubkit's dot-file records beside it.
        local_files_only: no network: only the caches and records (as ``HF_HUB_OFFLINE=1``).
        token: an access token (str), ``False`` for none, ``None`` for ``HF_TOKEN`` or the token file, ``True`` to
            require one.
        force_download: resolve the revision again and download the file again even when cached.
        endpoint: the Hub's address, instead of ``HF_ENDPOINT`` / ``https://huggingface.co``.
        progress: a download bar on/off; ``None`` shows it when stderr is a terminal.

    Returns:
        The path of the verified file (a str, as huggingface_hub returns).

    Raises:
        GatedRepoError: 401/403: private or gated repo, no or bad token, terms not accepted.
        RepositoryNotFoundError / RevisionNotFoundError / EntryNotFoundError: no such repo, revision or file.
        IntegrityError: the bytes do not match the sha256 or git blob id the Hub published.
        OfflineError: offline and not cached. DownloadError: the network failed.
    """
    repo = HubRepo(repo_id, revision, repo_type=repo_type or "model", token=token, local_files_only=local_files_only,
                   cache_dir=cache_dir, local_dir=local_dir, force_download=force_download, progress=progress,
                   endpoint=endpoint)
    path = _file_path(filename, subfolder)
    start = time.monotonic()
    local = repo.file(path)
    logger.debug("%s: %s in %.2fs", repo.describe(), path, time.monotonic() - start)
    return str(local)
