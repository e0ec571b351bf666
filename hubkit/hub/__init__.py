"""The hub: downloads (``fetch``, ``fetch_many``), safe extraction (``extract``), the cache, checkpoints.

    from hubkit.hub import fetch, fetch_many, extract, cache_dir, Resource, load_checkpoint

Layout: ``transport/`` moves bytes (downloads, verification, the cache, archives), ``checkpoint/`` reads
and writes checkpoint files, ``registry`` is the table of models and weights (filled by ``@register_model``),
``api`` is what users call (``hubkit.load``, ``list_models``, ``model_info``, ``get_weights``) and
``torchvision_api`` spells it as torchvision does (``get_model``, ``get_model_weights``, ``get_weight``), ``hf`` is
the Hugging Face Hub client (``hf_hub_download``: pinned revisions, LFS hashes, gated repos); the task pipelines
(``predict``, ``embed``, ``transcribe``) live in ``hubkit.tasks``.

Names are resolved on first use (PEP 562), so ``import hubkit.hub`` does not import requests, tqdm,
filelock or numpy. ``fetch`` is implemented in ``hubkit.hub.transport.download``.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> module that defines it
_LAZY_ATTRS: dict[str, str] = {
    "fetch": "hubkit.hub.transport.download",
    "fetch_many": "hubkit.hub.transport.download",
    "Resource": "hubkit.hub.transport.download",
    "extract": "hubkit.hub.transport.archive",
    "cache_dir": "hubkit.hub.transport.cache",
    "hf_hub_download": "hubkit.hub.hf",
    "hf_hub_url": "hubkit.hub.hf",
    "load_checkpoint": "hubkit.hub.checkpoint.formats",
    "save_checkpoint": "hubkit.hub.checkpoint.formats",
    "checkpoint_format": "hubkit.hub.checkpoint.formats",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY_ATTRS:
        value = getattr(importlib.import_module(_LAZY_ATTRS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hubkit.hub' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_ATTRS))


__all__ = ["Resource", "cache_dir", "checkpoint_format", "extract", "fetch", "fetch_many", "hf_hub_download",
           "hf_hub_url", "load_checkpoint", "save_checkpoint"]
