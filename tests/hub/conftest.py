"""Fixtures shared by the hub tests: a disk that fills up."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest


@pytest.fixture
def disk_full_after(monkeypatch):
    """``disk_full_after(n)``: from now on, writes fail with ENOSPC once ``n`` bytes have been written.

    A size-capped writer: ``os.write`` (every write of hubkit's downloads and records goes through it)
    and ``Path.write_text``/``write_bytes`` (for code that writes records with them) share the budget.
    """

    def cap(limit: int) -> None:
        used = [0]
        real_write, real_text, real_bytes = os.write, Path.write_text, Path.write_bytes

        def charge(n: int) -> None:
            if used[0] + n > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            used[0] += n

        def write(fd, data):
            charge(len(memoryview(data)))
            return real_write(fd, data)

        def write_text(self, text, *args, **kwargs):
            charge(len(text.encode()))
            return real_text(self, text, *args, **kwargs)

        def write_bytes(self, data):
            charge(len(memoryview(data)))
            return real_bytes(self, data)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(Path, "write_text", write_text)
        monkeypatch.setattr(Path, "write_bytes", write_bytes)

    return cap
