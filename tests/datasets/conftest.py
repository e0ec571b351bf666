"""Fixtures for the dataset tests: a local HTTP server and guards that prove nothing is redone."""

from __future__ import annotations

import pytest
from httpserver import HTTPTestServer


@pytest.fixture
def server():
    """A real HTTP server on 127.0.0.1 serving in-memory files (tests/httpserver.py)."""
    with HTTPTestServer() as srv:
        yield srv


@pytest.fixture
def forbid(monkeypatch):
    """``forbid("module.attr", ...)``: make those callables raise, to prove a code path is not taken."""

    def _forbid(*targets: str) -> None:
        for target in targets:
            def boom(*args, _t=target, **kwargs):
                raise AssertionError(f"{_t} was called, but the cached data should have been used")

            monkeypatch.setattr(target, boom)

    return _forbid
