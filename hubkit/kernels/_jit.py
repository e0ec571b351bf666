"""The optional compiled CPU kernels: numba (the ``hubkit[numba]`` extra), loaded on first use.

``compiled()`` returns the module of compiled kernels (``_jit_kernels.py``) when numba is installed and not
turned off, else None; the CPU kernels then run their numpy code, which stays the reference every compiled
kernel is tested against (tests/kernels/test_compiled.py). Nothing here imports numba at ``import hubkit``
time: numba's own import takes about half a second, paid by the first kernel that asks.

The compiled kernels release the GIL (``nogil``) and run single-threaded: hubkit's thread pool splits the
work over images or channels as it does for the numpy kernels, so results stay bit-identical for any
thread count. Compilation is cached on disk (numba's ``cache=True``: beside the module, or in numba's
user cache directory when the package directory is read-only), so only the first process pays for it.

Jobs under ``MIN_WORK`` elements stay on numpy. ``HUBKIT_NUMBA=0`` (or ``set_enabled(False)``) keeps every
kernel on numpy.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from types import ModuleType

_ENV_VAR = "HUBKIT_NUMBA"
# Jobs smaller than this many elements stay on numpy: they gain nothing worth numba's import (half a second,
# and scipy with it) and first-call setup, so small scripts and tests never load numba.
MIN_WORK = 1 << 15
_lock = threading.Lock()
_enabled: bool | None = None  # None until first asked: then HUBKIT_NUMBA
_module: ModuleType | None = None
_load_failed = False

log = logging.getLogger("hubkit.kernels")


def available() -> bool:
    """Whether numba is installed (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """Whether the compiled kernels are used when numba is installed (``HUBKIT_NUMBA``, ``set_enabled``)."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(_ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")
    return _enabled


def set_enabled(flag: bool) -> None:
    """Use the compiled kernels (``True``, the default when numba is installed) or the numpy ones."""
    global _enabled
    _enabled = bool(flag)


def compiled(work: int | None = None) -> ModuleType | None:
    """The compiled kernel module, or None when numba is missing, turned off, or failed to load, or when the
    job is small: ``work`` (elements) below ``MIN_WORK``."""
    global _module, _load_failed
    if not enabled() or _load_failed or (work is not None and work < MIN_WORK):
        return None
    if _module is None:
        with _lock:
            if _module is None and not _load_failed:
                if not available():
                    _load_failed = True
                    return None
                try:
                    from hubkit.kernels import _jit_kernels
                except Exception as exc:  # noqa: BLE001  (a broken numba install must not break the engine)
                    log.warning("hubkit: numba is installed but its kernels failed to load (%s); using numpy", exc)
                    _load_failed = True
                    return None
                _module = _jit_kernels
    return _module
