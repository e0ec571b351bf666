"""The Hugging Face Hub client (hubkit.hub.hf) against a local server that answers like the Hub (hfhub.FakeHub):
revision pinning, LFS sha256 and git blob id checks, the CDN redirect, gated repos, resume, offline use, and the reuse
of a pre-filled Hugging Face cache and torch.hub checkpoint cache with no socket opened."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
from hfhub import FakeHub, git_blob_sha1
from httpserver import Fault

import hubkit
from hubkit.errors import (
    ArgumentError,
    DownloadError,
    EntryNotFoundError,
    GatedRepoError,
    IntegrityError,
    OfflineError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from hubkit.hub import api, hf_hub_download, registry
from hubkit.hub.checkpoint.formats import save_checkpoint
from hubkit.hub.hf import hf_hub_url
from hubkit.hub.transport import _http

BIG = bytes(range(256)) * 40  # 10,240 bytes: an LFS file (the fake Hub's threshold is 1,024)
CONFIG = b'{"hidden_size": 16}'


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        yield server


@pytest.fixture
def no_sockets(monkeypatch):
    """Fail on any socket creation: the answer must come from the caches and records alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(autouse=True)
def _no_waiting(monkeypatch):
    monkeypatch.setattr(_http, "sleep", lambda seconds: None)


def _hub_requests(hub) -> list[tuple[str, str]]:
    return [(m, p) for m, p, _ in hub.requests]


# ---------------------------------------------------------------- download, pin, verify


def test_download_resolves_the_branch_once_and_pins_it(hub, tmp_path):
    first = hub.add_repo("org/model", {"config.json": CONFIG, "model.safetensors": BIG})
    path = hf_hub_download("org/model", "config.json")
    assert isinstance(path, str) and Path(path).read_bytes() == CONFIG
    assert f"/resolve/{first}/" in path.replace(os.sep, "/")
    assert _hub_requests(hub)[0] == ("HEAD", "/org/model/resolve/main/config.json")
    weights = hf_hub_download("org/model", "model.safetensors")
    assert Path(weights).read_bytes() == BIG

    hub.add_repo("org/model", {"config.json": b'{"hidden_size": 32}', "model.safetensors": BIG})  # upstream moves on
    seen = len(hub.requests)
    assert Path(hf_hub_download("org/model", "config.json")).read_bytes() == CONFIG  # still the pinned commit
    assert Path(hf_hub_download("org/model", "model.safetensors")).read_bytes() == BIG
    assert len(hub.requests) == seen  # cached files of a pinned commit: not one request
    assert Path(hf_hub_download("org/model", "config.json", force_download=True)).read_bytes() == b'{"hidden_size": 32}'
    assert Path(hf_hub_download("org/model", "config.json")).read_bytes() == b'{"hidden_size": 32}'  # re-pinned
    assert Path(hf_hub_download("org/model", "config.json", revision=first)).read_bytes() == CONFIG


def test_a_commit_needs_no_resolution_and_subfolders_and_tags_work(hub):
    commit = hub.add_repo("org/st", {"1_Pooling/config.json": b"{}", "README.md": b"# hi"}, branch="v1.0")
    path = hf_hub_download("org/st", "config.json", subfolder="1_Pooling", revision=commit)
    assert Path(path).read_bytes() == b"{}" and path.replace(os.sep, "/").endswith(f"{commit}/1_Pooling/config.json")
    assert all(f"/resolve/{commit}/" in p for _, p in _hub_requests(hub))
    assert Path(hf_hub_download("org/st", "README.md", revision="v1.0")).read_bytes() == b"# hi"
    url = hf_hub_url("org/st", "a b.txt", revision="refs/pr/1")
    assert url == f"{hub.endpoint}/org/st/resolve/refs%2Fpr%2F1/a%20b.txt"
    assert hf_hub_url("org/data", "x.csv", repo_type="dataset").startswith(f"{hub.endpoint}/datasets/org/data/")


def test_lfs_files_come_from_the_cdn_verified_and_without_the_token(hub, monkeypatch):
    hub.add_repo("org/gated", {"config.json": CONFIG, "model.safetensors": BIG}, gated=True)
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    path = hf_hub_download("org/gated", "model.safetensors")
    assert Path(path).read_bytes() == BIG
    assert all(h.get("Authorization") == "Bearer hf_granted" for _, _, h in hub.requests)
    cdn = hub.cdn.requests_for("/" + hashlib.sha256(BIG).hexdigest())
    assert len(cdn) == 1 and cdn[0].headers.get("Authorization") is None  # never forwarded to another host
    assert Path(hf_hub_download("org/gated", "config.json", token="hf_granted")).read_bytes() == CONFIG


def test_gated_repos_say_to_set_hf_token_or_accept_the_terms(hub, monkeypatch):
    hub.add_repo("org/gated", {"config.json": CONFIG}, gated=True)
    with pytest.raises(GatedRepoError, match="HF_TOKEN") as e:
        hf_hub_download("org/gated", "config.json")
    assert "accept its terms" in str(e.value) and "401" in str(e.value)
    with pytest.raises(GatedRepoError, match="accept its terms"):
        hf_hub_download("org/gated", "config.json", token="hf_denied")  # logged in, not granted: 403
    monkeypatch.setenv("HF_TOKEN", "hf_typo")
    with pytest.raises(GatedRepoError, match="invalid"):
        hf_hub_download("org/gated", "config.json")
    assert isinstance(e.value, PermissionError) and isinstance(e.value, DownloadError)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(GatedRepoError, match="none is set"):
        hf_hub_download("org/gated", "config.json", token=True)


def test_missing_repos_revisions_and_files_are_clear_errors(hub):
    hub.add_repo("org/model", {"config.json": CONFIG})
    with pytest.raises(RepositoryNotFoundError, match="no repo 'org/nothing'"):
        hf_hub_download("org/nothing", "config.json")
    with pytest.raises(RevisionNotFoundError, match="no branch, tag or commit 'v9'"):
        hf_hub_download("org/model", "config.json", revision="v9")
    with pytest.raises(EntryNotFoundError, match="not found"):
        hf_hub_download("org/model", "model.safetensors")
    with pytest.raises(ArgumentError, match="not a Hugging Face repo id"):
        hf_hub_download("org/model/extra", "config.json")
    with pytest.raises(ArgumentError, match="repo_type"):
        hf_hub_download("org/model", "config.json", repo_type="weights")
    with pytest.raises(ArgumentError, match="'..' segment"):
        hf_hub_download("org/model", "../config.json")


def test_lfs_bytes_that_do_not_match_the_published_sha256_are_refused(hub):
    hub.add_repo("org/model", {"model.safetensors": BIG})
    hub.cdn.fail("/" + hashlib.sha256(BIG).hexdigest(), Fault(body=BIG[::-1], times=None))
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        hf_hub_download("org/model", "model.safetensors")
    hub.cdn.clear_faults("/" + hashlib.sha256(BIG).hexdigest())
    assert Path(hf_hub_download("org/model", "model.safetensors")).read_bytes() == BIG


def test_small_files_are_checked_against_their_git_blob_id(hub):
    hub.add_repo("org/model", {"config.json": CONFIG})
    hub.tampered[("org/model", "config.json")] = b'{"hidden_size": 99}'  # same size, other bytes
    with pytest.raises(IntegrityError, match="git blob id mismatch"):
        hf_hub_download("org/model", "config.json")
    del hub.tampered[("org/model", "config.json")]
    path = Path(hf_hub_download("org/model", "config.json"))
    assert path.read_bytes() == CONFIG and git_blob_sha1(CONFIG) == hashlib.sha1(b"blob 19\0" + CONFIG).hexdigest()


def test_an_interrupted_download_resumes_in_the_next_run(hub, monkeypatch):
    hub.add_repo("org/model", {"model.safetensors": BIG})
    cdn_path = "/" + hashlib.sha256(BIG).hexdigest()
    hub.cdn.fail(cdn_path, Fault(drop_after=4000, times=None))
    monkeypatch.setattr(_http.SETTINGS, "max_attempts", 1)
    with pytest.raises(DownloadError):
        hf_hub_download("org/model", "model.safetensors")
    hub.cdn.clear_faults(cdn_path)
    path = hf_hub_download("org/model", "model.safetensors")
    assert Path(path).read_bytes() == BIG
    last = hub.cdn.requests_for(cdn_path)[-1]
    assert last.headers.get("Range") == "bytes=4000-" and last.sent == len(BIG) - 4000


def test_offline_uses_only_the_cache_and_records(hub, monkeypatch):
    hub.add_repo("org/model", {"config.json": CONFIG, "model.safetensors": BIG})
    online = hf_hub_download("org/model", "model.safetensors")
    for flag in ("HF_HUB_OFFLINE", "HUBKIT_OFFLINE"):
        with monkeypatch.context() as m:
            m.setenv(flag, "1")
            m.setattr(socket, "socket", lambda *a, **k: pytest.fail("a socket was opened"))
            assert hf_hub_download("org/model", "model.safetensors") == online
            with pytest.raises(OfflineError, match="offline"):
                hf_hub_download("org/model", "config.json")  # never downloaded
            with pytest.raises(OfflineError, match="resolving org/other@main"):
                hf_hub_download("org/other", "config.json")
    assert hf_hub_download("org/model", "model.safetensors", local_files_only=True) == online


def test_mirrors_serve_the_pinned_files(hub, monkeypatch, tmp_path):
    commit = hub.add_repo("org/model", {"config.json": CONFIG})
    host = hub.endpoint.split("://", 1)[1].replace(":", "_")
    mirror = tmp_path / "mirror" / host / "org" / "model" / "resolve" / commit
    mirror.mkdir(parents=True)
    (mirror / "config.json").write_bytes(CONFIG)
    monkeypatch.setenv("HUBKIT_MIRROR", (tmp_path / "mirror").as_uri())
    assert Path(hf_hub_download("org/model", "config.json", revision=commit)).read_bytes() == CONFIG
    assert hub.count("GET", "/resolve/") == 0  # the HEAD for the metadata, the bytes from the mirror


def test_the_token_goes_to_the_hub_only_never_to_a_mirror(hub, monkeypatch, http_server):
    commit = hub.add_repo("org/gated", {"config.json": CONFIG}, gated=True)
    host = hub.endpoint.split("://", 1)[1].replace(":", "_")
    http_server.add(f"/mirror/{host}/org/gated/resolve/{commit}/config.json", CONFIG)
    monkeypatch.setenv("HUBKIT_MIRROR", http_server.url("/mirror"))
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert Path(hf_hub_download("org/gated", "config.json")).read_bytes() == CONFIG
    mirrored = http_server.requests_for(f"/mirror/{host}/org/gated/resolve/{commit}/config.json")
    assert len(mirrored) == 1 and mirrored[0].headers.get("Authorization") is None
    assert hub.count("HEAD", "/resolve/") == 1 and hub.count("GET", "/resolve/") == 0


def test_hf_endpoint_serves_huggingface_co_urls_of_the_registry(http_server, monkeypatch):
    from hubkit.hub import fetch

    url = "https://huggingface.co/org/model/resolve/" + "c" * 40 + "/tokenizer.json"
    http_server.add("/org/model/resolve/" + "c" * 40 + "/tokenizer.json", CONFIG)
    monkeypatch.setenv("HF_ENDPOINT", http_server.base_url + "/")
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only(socket.getaddrinfo))
    path = fetch(url, sha256=hashlib.sha256(CONFIG).hexdigest())
    assert path.read_bytes() == CONFIG and "huggingface.co" in path.parts  # cached under the upstream URL


def _loopback_only(real):
    def resolve(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise AssertionError(f"DNS lookup of {host} attempted")
        return real(host, *args, **kwargs)

    return resolve


def test_cache_dir_is_a_hugging_face_layout_cache(hub, tmp_path):
    commit = hub.add_repo("org/model", {"config.json": CONFIG})
    path = Path(hf_hub_download("org/model", "config.json", cache_dir=tmp_path / "hf"))
    assert path == tmp_path / "hf" / "models--org--model" / "snapshots" / commit / "config.json"
    assert (tmp_path / "hf" / "models--org--model" / "refs" / "main").read_text() == commit
    local = Path(hf_hub_download("org/model", "config.json", local_dir=tmp_path / "plain"))
    assert local == tmp_path / "plain" / "config.json" and local.read_bytes() == CONFIG


# ---------------------------------------------------------------- other tools' caches, no socket


def _fill_hf_cache(root: Path, repo_id: str, commit: str, files: dict[str, bytes], *, branch: str = "main") -> Path:
    """Write ``files`` into a Hugging Face cache as huggingface_hub does: blobs named by etag, relative links."""
    repo = root / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / branch).write_text(commit)
    for name, data in files.items():
        etag = hashlib.sha256(data).hexdigest() if len(data) >= 1024 else git_blob_sha1(data)
        blob = repo / "blobs" / etag
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    return repo


def test_a_prefilled_hugging_face_cache_answers_without_a_socket(no_sockets, monkeypatch):
    commit = "a" * 40
    root = Path(os.environ["HF_HOME"]) / "hub"
    repo = _fill_hf_cache(root, "org/model", commit, {"config.json": CONFIG, "model.safetensors": BIG})
    before = {p: p.stat().st_mtime_ns for p in repo.rglob("*")}
    path = hf_hub_download("org/model", "model.safetensors")
    assert Path(path) == repo / "snapshots" / commit / "model.safetensors"
    assert Path(hf_hub_download("org/model", "config.json", revision=commit)).read_bytes() == CONFIG
    assert {p: p.stat().st_mtime_ns for p in repo.rglob("*")} == before  # read-only: nothing written there


def test_a_corrupted_hugging_face_blob_is_not_used(hub, monkeypatch):
    commit = hub.add_repo("org/model", {"model.safetensors": BIG})
    repo = _fill_hf_cache(Path(os.environ["HF_HOME"]) / "hub", "org/model", commit, {"model.safetensors": BIG})
    blob = repo / "blobs" / hashlib.sha256(BIG).hexdigest()
    blob.write_bytes(BIG[::-1])  # content no longer matches its name
    with monkeypatch.context() as m:
        m.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(OfflineError):
            hf_hub_download("org/model", "model.safetensors")
    path = Path(hf_hub_download("org/model", "model.safetensors"))  # online: downloaded into hubkit's cache
    assert path.read_bytes() == BIG and not path.is_relative_to(repo) and blob.read_bytes() == BIG[::-1]


def _tiny_checkpoint(tmp_path: Path, name: str) -> bytes:
    hubkit.manual_seed(1)
    model = hubkit.load(name)
    save_checkpoint({k: np.array(v.numpy()) for k, v in model.state_dict().items()}, tmp_path / "c.pth",
                    format="torch")  # fmt: skip
    return (tmp_path / "c.pth").read_bytes()


def _point_at(monkeypatch, name: str, data: bytes) -> str:
    """``name``'s DEFAULT tag, kept at its upstream URL, with the hash of ``data``: returns the URL's file name."""
    api._ensure_zoo()
    entry = registry.get_entry(name)
    tags = tuple(dataclasses.replace(w, sha256=None, size=None, sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
                 if w.tag == entry.default else w for w in entry.weights)  # fmt: skip
    monkeypatch.setitem(registry._REGISTRY, name, dataclasses.replace(entry, weights=tags))
    return entry.weight(entry.default).filename


@pytest.mark.parametrize("where", ["TORCH_HOME", "default"])
def test_registry_weights_come_from_the_torch_hub_cache_without_a_socket(tmp_path, monkeypatch, where):
    data = _tiny_checkpoint(tmp_path, "resnet18")
    filename = _point_at(monkeypatch, "resnet18", data)
    assert filename == "resnet18-f37072fd.pth"
    if where == "TORCH_HOME":
        checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    else:  # ~/.cache/torch/hub/checkpoints, torch.hub's default
        monkeypatch.delenv("TORCH_HOME")
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        checkpoints = tmp_path / "home" / ".cache" / "torch" / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / filename).write_bytes(data)
    monkeypatch.setattr(socket, "socket", lambda *a, **k: pytest.fail("a socket was opened"))
    model = hubkit.load("resnet18", pretrained=True)
    assert not model.training
    np.testing.assert_array_equal(model.conv1.weight.numpy(), hubkit.load(str(checkpoints / filename))
                                  ["conv1.weight"].numpy())  # fmt: skip
    assert not list((Path(os.environ["HUBKIT_HOME"]) / "files").rglob("*.pth"))  # used in place, not copied
    assert (checkpoints / filename).read_bytes() == data


def test_a_torch_hub_file_with_another_hash_is_not_used(tmp_path, monkeypatch):
    data = _tiny_checkpoint(tmp_path, "resnet18")
    filename = _point_at(monkeypatch, "resnet18", data)
    checkpoints = Path(os.environ["TORCH_HOME"]) / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / filename).write_bytes(data[:-1] + b"x")
    monkeypatch.setenv("HUBKIT_OFFLINE", "1")
    with pytest.raises(OfflineError, match="not cached"):
        hubkit.load("resnet18", pretrained=True)
    monkeypatch.setenv("HUBKIT_NO_EXTERNAL_CACHES", "1")
    (checkpoints / filename).write_bytes(data)
    with pytest.raises(OfflineError):
        hubkit.load("resnet18", pretrained=True)


def test_registry_text_weights_come_from_a_prefilled_hugging_face_cache(tmp_path, monkeypatch, no_sockets):
    from hfmodels import bert_files

    from hubkit.hub.registry import ExtraFile
    from hubkit.zoo.text.bert import BertConfig, SentenceEncoder

    files, source = bert_files(sentence=True)
    api._ensure_zoo()
    entry = registry.get_entry("all-MiniLM-L6-v2")
    tag = entry.weight(entry.default)
    weights, tokenizer = files["model.safetensors"], files["tokenizer.json"]
    new_tag = dataclasses.replace(tag, sha256=hashlib.sha256(weights).hexdigest(), size=len(weights), files=(
        ExtraFile("tokenizer.json", tag.file("tokenizer.json").url, hashlib.sha256(tokenizer).hexdigest(),
                  len(tokenizer)),))  # fmt: skip
    tiny = BertConfig.from_dict(json.loads(files["config.json"]))
    monkeypatch.setitem(registry._REGISTRY, "all-minilm-l6-v2", dataclasses.replace(
        entry, weights=(new_tag,), builder=lambda **kw: SentenceEncoder(tiny, max_seq_length=24, **kw)))  # fmt: skip
    commit = tag.url.split("/resolve/")[1].split("/")[0]
    _fill_hf_cache(Path(os.environ["HF_HOME"]) / "hub", "sentence-transformers/all-MiniLM-L6-v2", commit,
                   {"model.safetensors": weights, "tokenizer.json": tokenizer})  # fmt: skip
    model = hubkit.load("all-MiniLM-L6-v2", pretrained=True)
    source.tokenizer = model.tokenizer
    np.testing.assert_allclose(model.encode(["hello world", "a cat"]), source.encode(["hello world", "a cat"]),
                               rtol=1e-6, atol=1e-7)  # fmt: skip


# ---------------------------------------------------------------- hubkit.load("hf:...")


def test_load_hf_downloads_only_the_files_it_needs_and_then_works_offline(hub, monkeypatch):
    from hfmodels import bert_files

    files, source = bert_files(sentence=True)
    files["onnx/model.onnx"] = b"\0" * 2048
    files["README.md"] = b"# tiny"
    commit = hub.add_repo("org/tiny-st", files)
    model = hubkit.load("hf:org/tiny-st")
    assert type(model).__name__ == "SentenceEncoder" and model.max_seq_length == 24
    got = [p.split(f"/resolve/{commit}/", 1)[1] for m, p in _hub_requests(hub) if m == "GET" and "/resolve/" in p]
    assert "onnx/model.onnx" not in got and "README.md" not in got and "model.safetensors" in got
    assert _hub_requests(hub)[0] == ("GET", "/api/models/org/tiny-st/revision/main?blobs=true")
    source.tokenizer = model.tokenizer
    np.testing.assert_allclose(model.encode(["the cat sat", "hello"]), source.encode(["the cat sat", "hello"]),
                               rtol=1e-6, atol=1e-7)  # fmt: skip
    hub.add_repo("org/tiny-st", {"config.json": b"{}"})  # a push after the first load changes nothing
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "socket", lambda *a, **k: pytest.fail("a socket was opened"))
    again = hubkit.load("hf:org/tiny-st")
    np.testing.assert_array_equal(again.encode(["the cat sat"]), model.encode(["the cat sat"]))


def test_load_hf_takes_a_revision_and_a_token(hub, monkeypatch):
    from hfmodels import gpt2_files

    files, source = gpt2_files()
    commit = hub.add_repo("org/gpt", files, gated=True)
    hub.add_repo("org/gpt", {"config.json": b'{"model_type": "t5"}'})
    with pytest.raises(GatedRepoError, match="HF_TOKEN"):
        hubkit.load("hf:org/gpt", revision=commit)
    model = hubkit.load("hf:org/gpt", revision=commit, token="hf_granted")
    ids = np.array([[5, 9, 13]])
    np.testing.assert_array_equal(model(ids).logits.numpy(), source(ids).logits.numpy())
    with pytest.raises(ArgumentError, match="t5.*bert, distilbert, roberta, gpt2, wav2vec2"):
        hubkit.load("hf:org/gpt", token="hf_granted")


def test_load_hf_from_a_prefilled_hugging_face_cache_opens_no_socket(no_sockets):
    from hfmodels import wav2vec2_files

    files, source = wav2vec2_files()
    commit = "b" * 40
    _fill_hf_cache(Path(os.environ["HF_HOME"]) / "hub", "org/asr", commit, files)
    model = hubkit.load("hf:org/asr")
    x = np.random.default_rng(0).standard_normal(1200).astype(np.float32)
    np.testing.assert_array_equal(model(x).numpy(), source(x).numpy())


def test_hf_names_and_arguments_are_checked(hub):
    with pytest.raises(ArgumentError, match="not a Hugging Face repo id"):
        hubkit.load("hf:not a repo")
    with pytest.raises(ArgumentError, match="pretrained="):
        hubkit.load("hf:org/x", pretrained=True)
    with pytest.raises(ArgumentError, match="num_classes="):
        hubkit.load("hf:org/x", num_classes=3)
    with pytest.raises(ArgumentError, match="revision= and token= are for Hugging Face repos"):
        hubkit.load("resnet18", revision="main")
    with pytest.raises(RepositoryNotFoundError):
        hubkit.load("hf:org/x")
