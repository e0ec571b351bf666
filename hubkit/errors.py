"""The exceptions hubkit raises for anything a user can cause.

Every error says what was expected, what was found, and what to do next. Catch
``HubkitError`` to handle them all. Where a Python built-in exception has the same
meaning (a bad shape is a ``ValueError``, a missing file is a ``FileNotFoundError``) the
hubkit class derives from it too, so code written for PyTorch or the standard library
keeps working.
"""

from __future__ import annotations


class HubkitError(Exception):
    """Base class of every error hubkit raises on purpose."""


# ---------------------------------------------------------------- engine


class DeviceError(HubkitError, RuntimeError):
    """A device was asked for that is not available (no cupy, no GPU, bad name)."""


class ShapeError(HubkitError, ValueError):
    """Operands of an op have shapes that do not fit together; names the op and both shapes."""


class DTypeError(HubkitError, TypeError):
    """An op got a dtype it does not support."""


class IndexOutOfRangeError(HubkitError, IndexError):
    """An index (in ``x[...]``, gather, embedding or a loss target) lies outside the dim it indexes."""


class GradError(HubkitError, RuntimeError):
    """Autograd was used in a way that cannot work (backward on a non-scalar without a gradient...)."""


class LinAlgError(HubkitError, RuntimeError):
    """A linear-algebra op got input it cannot work on (a singular matrix to invert...)."""


class UnsupportedError(HubkitError, AttributeError):
    """A PyTorch function, method or feature that hubkit does not provide; names it and says so."""


class StateDictError(HubkitError, RuntimeError):
    """``load_state_dict`` found missing, unexpected or shape-mismatched keys.

    Attributes ``missing``, ``unexpected`` and ``mismatched`` hold the offending keys
    (``mismatched`` as ``(key, expected_shape, found_shape)`` triples).
    """

    def __init__(
        self,
        message: str,
        *,
        missing: list[str] | None = None,
        unexpected: list[str] | None = None,
        mismatched: list[tuple[str, tuple, tuple]] | None = None,
    ) -> None:
        super().__init__(message)
        self.missing = list(missing or [])
        self.unexpected = list(unexpected or [])
        self.mismatched = list(mismatched or [])


# ---------------------------------------------------------------- downloads and cache


class DownloadError(HubkitError, OSError):
    """Every URL for a file failed; the message lists each URL tried and why it failed."""


class IntegrityError(DownloadError):
    """Bytes arrived (or sit in the cache) whose size or hash is not the expected one."""


class OfflineError(DownloadError):
    """Offline mode is on and a file is neither cached nor on a ``file://`` mirror."""


class GatedRepoError(DownloadError, PermissionError):
    """The Hugging Face Hub refused a repo (HTTP 401/403): it is private or gated and no token was sent, the token
    is invalid, or its terms were not accepted; says to set ``HF_TOKEN`` or accept the terms on the website."""


class RepositoryNotFoundError(DownloadError, FileNotFoundError):
    """The Hugging Face Hub has no repo of that id (or it is private and the token may not see it)."""


class RevisionNotFoundError(DownloadError, FileNotFoundError):
    """A Hugging Face repo has no branch, tag or commit of that name."""


class EntryNotFoundError(DownloadError, FileNotFoundError):
    """A Hugging Face repo has no file of that name at that revision."""


class CacheError(HubkitError, OSError):
    """The cache directory cannot be used (not writable, corrupted metadata, no space)."""


class ArchiveError(HubkitError, ValueError):
    """An archive is malformed, unsupported, or tries to write outside its target."""


# ---------------------------------------------------------------- checkpoints


class CheckpointError(HubkitError, ValueError):
    """A checkpoint file is truncated, garbled, or not in a format hubkit reads."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle in a checkpoint references a global outside the allowlist; nothing was executed."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint path (``hubkit.load("model.pt")``, ``load_checkpoint``) names no file."""


# ---------------------------------------------------------------- hub and datasets


class ModelNotFoundError(HubkitError, KeyError):
    """No model or weight tag of that name is registered; close matches are suggested."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetError(HubkitError, RuntimeError):
    """A dataset's files are missing or corrupted, or its arguments are invalid."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A dataset is not on disk and ``download=True`` was not given."""


# ---------------------------------------------------------------- data loading and transforms


class ArgumentError(HubkitError, ValueError):
    """An argument has a value that cannot work; names the argument, what is accepted and what was found."""


class ArgumentTypeError(HubkitError, TypeError):
    """An argument (or a sample handed to collate or a transform) has a type that is not supported."""


class AudioFileError(HubkitError, ValueError):
    """An audio file is missing, not a PCM WAV file the standard library reads, or truncated."""


class DataLoaderError(HubkitError, RuntimeError):
    """A DataLoader worker process died or timed out; the message names the worker and what to check."""


class MissingDependencyError(HubkitError, ImportError):
    """An optional package a feature needs (scipy, Pillow, ...) is not installed; says what to install."""


class TrainerError(HubkitError, RuntimeError):
    """The Trainer cannot go on: a model without ``training_step``, an empty loader, a metric a callback
    monitors that was never logged, a non-finite loss; the message names the step and the fix."""


class DistributedError(HubkitError, RuntimeError):
    """A collective could not complete: a rank failed, was killed or timed out, or the ranks disagree (a model
    whose shapes differ across ranks); the message names the operation, the ranks and what to check."""
