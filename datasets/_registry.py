"""The table of downloadable datasets: every dataset registers itself with ``@register_dataset``.

What a registered dataset declares, on its class (or, for a torchtext-style function, on its module):

- ``resources``: every file it can download, as ``hub.Resource`` data;
- ``resource_folder(root)``: where those files go under a dataset root (default: ``root`` itself);
- ``download_files`` (optional): the file names ``download(name)`` fetches when ``resources`` lists more
  than the default configuration needs (e.g. every LibriSpeech subset);
- ``unverified_files`` (optional): files whose publisher gives no checksum.

The attributes are read when asked for, so a test that points ``resources`` at a local server is obeyed.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from hubkit.errors import ArgumentError

from ._files import RawFile, locate, resource_filename
from ._roots import resolve_root

if TYPE_CHECKING:
    from hubkit.hub import Resource

__all__ = ["canonical_name", "declaring", "download", "list_datasets", "register_dataset", "resource_folder",
           "resources"]

T = TypeVar("T", bound=Callable[..., Any])

_REGISTRY: dict[str, Any] = {}


def register_dataset(dataset: T) -> T:
    """Make ``dataset`` (a class, or a torchtext-style function) listed and downloadable under its name."""
    owner = dataset if isinstance(dataset, type) else sys.modules[dataset.__module__]
    if not hasattr(owner, "resources"):
        raise ArgumentError(f"{dataset.__name__} declares no resources, so it cannot be registered for download")
    _REGISTRY[dataset.__name__] = owner
    return dataset


def list_datasets() -> list[str]:
    """Names of the datasets hubkit can download, sorted case-insensitively."""
    return sorted(_REGISTRY, key=str.lower)


def canonical_name(name: str) -> str | None:
    """The registered spelling of a downloadable dataset name (case-insensitive), or None if unknown."""
    if not isinstance(name, str):
        return None
    return {n.lower(): n for n in _REGISTRY}.get(name.lower().replace("-", "_"))


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise ArgumentError(f"a dataset name must be a string, found {type(name).__name__}")
    found = canonical_name(name)
    if found is not None:
        return found
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ArgumentError(f"Unknown dataset {name!r}.{hint} Known datasets: {', '.join(list_datasets())}.")


def declaring(name: str) -> Any:
    """The class (or module) that declares the ``resources`` of dataset ``name``."""
    return _REGISTRY[_canonical(name)]


def resources(name: str) -> list[Resource]:
    """Every file the dataset ``name`` can download (all splits and versions), as ``hub.Resource``s."""
    return list(declaring(name).resources)


def resource_folder(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The folder under ``root`` where the dataset ``name`` keeps its downloaded files."""
    folder = getattr(declaring(name), "resource_folder", None)
    base = resolve_root(root)
    return Path(folder(base)) if folder is not None else base


def download(name: str, root: str | os.PathLike[str] | None = None, *, progress: bool | None = None) -> list[Path]:
    """Download (and verify) the files of dataset ``name`` into their place under ``root``; returns their paths.

    Files already there and matching their checksums are not fetched again; one that does not match is
    kept, renamed to ``<name>.hubkit-mismatch-<time>``. ``root=None`` is the default dataset root, so a
    later ``MNIST()`` (or ``MNIST(root)``) finds them without a network. ``progress`` forces the download
    bars on/off (default: on when stderr is a terminal).
    """
    canonical = _canonical(name)
    wanted = getattr(declaring(canonical), "download_files", None)
    files = [r for r in resources(canonical) if wanted is None or resource_filename(r) in wanted]
    folder = resource_folder(canonical, root)
    return locate(canonical, [RawFile(r, folder) for r in files], download=True, progress=progress)
