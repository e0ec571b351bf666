"""A local server that answers like the Hugging Face Hub, for hubkit.hub.hf tests (no internet).

    with FakeHub() as hub:
        commit = hub.add_repo("org/name", {"config.json": b"{}", "model.safetensors": big})   # -> 40-hex commit
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        hub.requests                      # [(method, path, headers)] seen by the Hub
        hub.cdn                           # an HTTPTestServer on another port: the LFS "CDN" (faults, request log)

What it answers (the behaviour huggingface_hub relies on; see shared/reference/anchors-wave2.md section 4):

- ``HEAD``/``GET /{repo}/resolve/{revision}/{path}``: ``X-Repo-Commit`` (the commit the revision names). A file
  at or above ``lfs_threshold`` bytes (or named in ``lfs=``) is a Git LFS file: a ``302`` to
  ``{cdn}/{sha256}`` with ``X-Linked-Etag: "<sha256>"`` and ``X-Linked-Size``; any other file is served directly
  with ``ETag: "<git blob id>"``.
- ``GET /api/models/{repo}[/revision/{revision}]``: ``{"id", "sha", "siblings": [{"rfilename", "size", "blobId",
  "lfs": {"sha256", "size", "pointerSize"}}]}``.
- ``tampered[(repo, file)] = bytes``: a ``GET`` of that (non-LFS) file serves these bytes under the file's own
  ``ETag`` (a corrupting proxy); the LFS CDN takes ``httpserver`` faults (``hub.cdn.fail(...)``).
- Errors as the Hub sends them (``X-Error-Code``): an unknown repo 404 ``RepoNotFound``, revision 404
  ``RevisionNotFound``, file 404 ``EntryNotFound``. A gated repo answers 401 (``GatedRepo``) without an accepted
  ``Authorization: Bearer`` token and 403 (``GatedRepo``) to a token that was not granted access.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from dataclasses import dataclass, field
from email.message import Message
from urllib.parse import unquote, urlsplit

from httpserver import HTTPTestServer


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    lfs: set[str] = field(default_factory=set)


class FakeHub:
    """A threaded Hub on 127.0.0.1 plus its CDN (an ``HTTPTestServer`` on another port)."""

    def __init__(self, *, lfs_threshold: int = 1024, granted: tuple[str, ...] = ("hf_granted",),
                 known: tuple[str, ...] = ("hf_denied",)) -> None:
        self.lfs_threshold = lfs_threshold
        self.granted = set(granted)  # tokens with access to gated repos
        self.known = set(known) | self.granted  # valid tokens (others are "invalid credentials")
        self.repos: dict[str, _Repo] = {}
        self.tampered: dict[tuple[str, str], bytes] = {}  # (repo, file) -> bytes a GET serves instead of the file
        self.requests: list[tuple[str, str, Message]] = []
        self._lock = threading.Lock()
        self.cdn = HTTPTestServer()
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ content

    def add_repo(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main", gated: bool = False,
                 lfs: tuple[str, ...] = ()) -> str:
        """Create (or push to) ``repo_id``: ``files`` become the new commit of ``branch``; returns the commit id."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, _Repo())
            repo.gated = repo.gated or gated
            repo.lfs.update(lfs)
            commit = hashlib.sha1(f"{repo_id}:{len(repo.commits)}:{sorted(files)}".encode()).hexdigest()
            repo.commits[commit] = dict(files)
            repo.refs[branch] = commit
        for name, data in files.items():
            if self._is_lfs(repo, name, data):
                self.cdn.add("/" + hashlib.sha256(data).hexdigest(), data)
        return commit

    def _is_lfs(self, repo: _Repo, name: str, data: bytes) -> bool:
        return name in repo.lfs or len(data) >= self.lfs_threshold

    def count(self, method: str, fragment: str) -> int:
        """Requests to the Hub with this method whose path contains ``fragment``."""
        with self._lock:
            return sum(1 for m, p, _ in self.requests if m == method and fragment in p)

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self.cdn.close()

    def __enter__(self) -> FakeHub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ answers (server threads)

    def _access(self, repo: _Repo, headers: Message) -> tuple[int, dict[str, str]] | None:
        auth = headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        if token is not None and token not in self.known:
            return 401, {"X-Error-Message": "Invalid credentials in Authorization header"}
        if not repo.gated or token in self.granted:
            return None
        if token is None:
            return 401, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this model is restricted. You "
                         "must have access to it and be authenticated to access it. Please log in."}
        return 403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this model is restricted and you are "
                     "not in the authorized list."}

    def _commit(self, repo: _Repo, revision: str) -> str | None:
        if revision in repo.commits:
            return revision
        return repo.refs.get(revision)

    def answer(self, method: str, raw_path: str, headers: Message) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self.requests.append((method, raw_path, headers))
        path = urlsplit(raw_path).path
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "models"]:
            return self._api(parts[2:], headers)
        if "resolve" in parts:
            at = parts.index("resolve")
            return self._resolve("/".join(parts[:at]), parts[at + 1:], method, headers)
        return 404, {}, b"not found"

    def _repo(self, repo_id: str) -> _Repo | None:
        with self._lock:
            return self.repos.get(repo_id)

    def _api(self, parts: list[str], headers: Message) -> tuple[int, dict[str, str], bytes]:
        if "revision" in parts:
            at = parts.index("revision")
            repo_id, revision = "/".join(parts[:at]), "/".join(parts[at + 1:])
        else:
            repo_id, revision = "/".join(parts), "main"
        repo = self._repo(repo_id)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b"{}"
        denied = self._access(repo, headers)
        if denied:
            return denied[0], denied[1], b"{}"
        commit = self._commit(repo, revision)
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"{}"
        siblings = []
        for name, data in sorted(repo.commits[commit].items()):
            row = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
            if self._is_lfs(repo, name, data):
                row["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
            siblings.append(row)
        body = json.dumps({"id": repo_id, "sha": commit, "private": False, "gated": "manual" if repo.gated else False,
                           "siblings": siblings}).encode()
        return 200, {"Content-Type": "application/json"}, body

    def _resolve(self, repo_id: str, rest: list[str], method: str, headers: Message) -> tuple[int, dict[str, str],
                                                                                             bytes]:
        repo = self._repo(repo_id)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound"}, b"Repository not found"
        denied = self._access(repo, headers)
        if denied:
            return denied[0], denied[1], b"denied"
        if len(rest) < 2:
            return 404, {"X-Error-Code": "EntryNotFound"}, b"Entry not found"
        commit = self._commit(repo, rest[0])
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"Revision not found"
        name = "/".join(rest[1:])
        data = repo.commits[commit].get(name)
        if data is None:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, b"Entry not found"
        if self._is_lfs(repo, name, data):
            sha = hashlib.sha256(data).hexdigest()
            return 302, {"Location": self.cdn.url("/" + sha), "X-Repo-Commit": commit,
                         "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data)),
                         "ETag": f'"{git_blob_sha1(b"pointer " + sha.encode())}"'}, b""
        served = self.tampered.get((repo_id, name), data) if method == "GET" else data
        return 200, {"X-Repo-Commit": commit, "ETag": f'"{git_blob_sha1(data)}"',
                     "Content-Type": "application/octet-stream"}, served


def _handler(hub: FakeHub) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self, head: bool) -> None:
            status, headers, body = hub.answer(self.command, self.path, self.headers)
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head and body:
                self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

    return Handler
