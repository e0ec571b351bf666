"""Fixtures for the dataset tests: a local HTTP server and guards that prove nothing is redone."""

from __future__ import annotations

import pytest


@pytest.fixture
def server(http_server):
    """The shared local HTTP server of tests/conftest.py (real sockets on 127.0.0.1), under a short name."""
    return http_server


@pytest.fixture
def forbid(monkeypatch):
    """``forbid("module.attr", ...)``: make those callables raise, to prove a code path is not taken."""

    def _forbid(*targets: str) -> None:
        for target in targets:
            def boom(*args, _t=target, **kwargs):
                raise AssertionError(f"{_t} was called, but the cached data should have been used")

            monkeypatch.setattr(target, boom)

    return _forbid
