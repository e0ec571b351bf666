"""Download progress: one tqdm bar per file, or one shared bar for ``fetch_many``; silent by default off a tty.

Bars are on when ``progress=True``; off when ``progress=False`` or ``HUBKIT_NO_PROGRESS=1``; with
``progress=None`` they follow whether stderr is a terminal. tqdm is imported only when a bar is drawn.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from hubkit.hub.transport.cache import env_flag


def progress_enabled(progress: bool | None) -> bool:
    if progress is False or env_flag("HUBKIT_NO_PROGRESS"):
        return False
    if progress is True:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """What a download reports to: ``start`` once the size is known, ``update`` per chunk, ``close`` at end."""

    def start(self, total: int | None, initial: int = 0) -> None:
        pass

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


class _FileBar(Progress):
    def __init__(self, desc: str, unit: str) -> None:
        self._desc = desc
        self._unit = unit
        self._bar: Any = None

    def start(self, total: int | None, initial: int = 0) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            scaled = self._unit == "B"
            self._bar = tqdm(
                total=total, initial=initial, desc=self._desc, unit=self._unit, unit_scale=scaled,
                unit_divisor=1024 if scaled else 1000, file=sys.stderr, dynamic_ncols=True, leave=False,
            )
        else:  # a restart or a resume within the same call
            self._bar.reset(total=total)
            self._bar.update(initial)

    def update(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def file_progress(desc: str, progress: bool | None, unit: str = "B") -> Progress:
    """A bar for one file (``desc`` is its name) counting ``unit`` (bytes by default), or a silent reporter."""
    return _FileBar(desc, unit) if progress_enabled(progress) else Progress()


class SharedBar:
    """One bar over many files, fed from several threads; each file reports through ``child(size)``."""

    def __init__(self, n_files: int, known_total: int, progress: bool | None) -> None:
        self._lock = threading.Lock()
        self._bar: Any = None
        if progress_enabled(progress):
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=known_total or None, desc=f"{n_files} files", unit="B", unit_scale=True,
                unit_divisor=1024, file=sys.stderr, dynamic_ncols=True,
            )

    def _add(self, total_delta: int, n: int) -> None:
        if self._bar is None:
            return
        with self._lock:
            if total_delta:
                self._bar.total = (self._bar.total or 0) + total_delta
                self._bar.refresh()
            if n:
                self._bar.update(n)

    def child(self, declared_size: int | None) -> Progress:
        return _SharedChild(self, declared_size)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _SharedChild(Progress):
    """One file's view of a SharedBar: adds its size to the total unless it was declared up front."""

    def __init__(self, shared: SharedBar, declared: int | None) -> None:
        self._shared = shared
        self._declared = declared
        self._counted_total = 0
        self._done = 0

    def start(self, total: int | None, initial: int = 0) -> None:
        delta = 0
        if self._declared is None and total is not None:
            delta = total - self._counted_total
            self._counted_total = total
        self._shared._add(delta, initial - self._done)
        self._done = initial

    def update(self, n: int) -> None:
        self._done += n
        self._shared._add(0, n)

    def skip(self) -> None:
        """The file was already cached: count its declared size as done."""
        if self._declared:
            self._shared._add(0, self._declared - self._done)
            self._done = self._declared
