"""Shared pytest configuration: markers that skip cleanly when their requirements are absent."""

from __future__ import annotations

import importlib.util

import pytest


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _has_gpu() -> bool:
    if not _has("cupy"):
        return False
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    no_torch = pytest.mark.skip(reason="parity test: install the parity extra (torch, torchvision)")
    no_gpu = pytest.mark.skip(reason="gpu test: needs cupy and a CUDA device")
    torch_ok = None
    gpu_ok = None
    for item in items:
        if "parity" in item.keywords:
            if torch_ok is None:
                torch_ok = _has("torch")
            if not torch_ok:
                item.add_marker(no_torch)
        if "gpu" in item.keywords:
            if gpu_ok is None:
                gpu_ok = _has_gpu()
            if not gpu_ok:
                item.add_marker(no_gpu)


@pytest.fixture(autouse=True)
def _isolated_hubkit_home(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache so nothing leaks between tests or into ~/.cache."""
    home = tmp_path_factory.mktemp("hubkit_home")
    monkeypatch.setenv("HUBKIT_HOME", str(home))
    monkeypatch.setenv("HUBKIT_NO_PROGRESS", "1")
    monkeypatch.delenv("HUBKIT_OFFLINE", raising=False)
    monkeypatch.delenv("HUBKIT_MIRROR", raising=False)
    # Other tools' caches, which fetch reuses: empty ones of the test's own, never the user's ~/.cache.
    monkeypatch.setenv("HF_HOME", str(home / "_hf_home"))
    monkeypatch.setenv("TORCH_HOME", str(home / "_torch_home"))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT",
                 "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HUBKIT_NO_EXTERNAL_CACHES"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(autouse=True)
def _fp32_convolutions_in_gpu_tests(request, monkeypatch):
    """GPU tests compare with the CPU at float32 tolerances, so their cuDNN convolutions run in FP32, as
    torch's own test suite does; the TF32 default has its own tests (tests/kernels/test_cudnn.py)."""
    if request.node.get_closest_marker("gpu") is not None and request.node.get_closest_marker("tf32") is None:
        import hubkit.backends.cudnn

        monkeypatch.setattr(hubkit.backends.cudnn, "allow_tf32", False)


@pytest.fixture
def http_server():
    """A real threaded HTTP/1.1 server on 127.0.0.1 (ephemeral port) with Range, ETag and injectable faults.

    ``url = http_server.add("/path/file.bin", data)`` serves bytes; ``http_server.fail(path, Fault(...))``
    queues faults; ``http_server.count(path)`` and ``http_server.requests_for(path)`` show what arrived.
    The full API is in the docstring of tests/httpserver.py (``from httpserver import Fault, HTTPTestServer``).
    """
    from httpserver import HTTPTestServer

    with HTTPTestServer() as server:
        yield server
