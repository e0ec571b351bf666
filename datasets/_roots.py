"""Where datasets live: the data directory, the default root, and roots given by the user.

``root=None`` means ``<data_dir()>/datasets``. ``data_dir()`` is ``$HUBKIT_HOME`` when it is set (the hub's
one reading of the variable, ``hub.transport.cache.data_home``), else the platform's user data directory,
where datasets have always lived.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from hubkit.errors import ArgumentError, DatasetError
from hubkit.hub.transport.cache import data_home

__all__ = ["data_dir", "default_root", "resolve_root", "writable_folder"]


def data_dir() -> Path:
    """hubkit's data directory: ``$HUBKIT_HOME`` when set, else ``platformdirs.user_data_dir("hubkit")``."""
    return data_home()


def default_root() -> Path:
    """Where datasets go when ``root=None``: ``<data dir>/datasets``."""
    return data_dir() / "datasets"


def resolve_root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` as a Path (``~`` expanded); ``None`` -> :func:`default_root`.

    Raises ArgumentError for something that is not a path, and DatasetError when the path is an existing
    file: every dataset keeps a folder there.
    """
    if root is None:
        path = default_root()
    elif isinstance(root, str | os.PathLike):
        path = Path(root).expanduser()
    else:
        raise ArgumentError(f"root must be a path (str or os.PathLike) or None, found {type(root).__name__}")
    if path.exists() and not path.is_dir():
        raise DatasetError(
            f"The dataset root {path} is a file, not a folder. Pass root= a folder (it is created when missing), "
            "or move that file away."
        )
    return path


def writable_folder(folder: Path, dataset: str) -> Path:
    """Create ``folder`` (and parents) for ``dataset`` to write in, or raise DatasetError saying what to pass.

    Only called before a write (a download, an extraction): a read-only tree that already holds a prepared
    dataset is read as it is.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise DatasetError(
            f"{dataset}: cannot create the folder {folder}: {blocker} is a file. Move that file away, or pass "
            "root= another folder."
        ) from None
    except OSError as exc:
        raise DatasetError(
            f"{dataset}: cannot create the folder {folder}: {exc.strerror or exc}. Pass root= a folder you may "
            "write to (or set HUBKIT_HOME for the default root)."
        ) from exc
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatasetError(
            f"{dataset}: cannot write into {folder}: {os.strerror(errno.EACCES)}. Pass root= a folder you may "
            "write to (or set HUBKIT_HOME for the default root)."
        )
    return folder
