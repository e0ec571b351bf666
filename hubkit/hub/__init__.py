"""The hub: downloads (``fetch``, ``fetch_many``), safe extraction (``extract``), the cache, checkpoints.

    from hubkit.hub import fetch, fetch_many, extract, cache_dir, Resource

Names are resolved on first use (PEP 562), so ``import hubkit.hub.formats`` or ``import hubkit.hub``
does not import requests, tqdm or filelock. ``fetch`` is implemented in ``hubkit.hub.download``: a
submodule named ``fetch`` would replace the function of that name on this package once imported.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it
_LAZY_ATTRS: dict[str, str] = {
    "fetch": "hubkit.hub.download",
    "fetch_many": "hubkit.hub.download",
    "Resource": "hubkit.hub.download",
    "extract": "hubkit.hub.archive",
    "cache_dir": "hubkit.hub.cache",
    "load_checkpoint": "hubkit.hub.formats",
    "save_checkpoint": "hubkit.hub.formats",
    "checkpoint_format": "hubkit.hub.formats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubkit.hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRS))


__all__ = ["Resource", "cache_dir", "checkpoint_format", "extract", "fetch", "fetch_many", "load_checkpoint",
           "save_checkpoint"]
