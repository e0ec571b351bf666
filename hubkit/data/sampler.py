"""Samplers: the order in which a ``DataLoader`` visits a map-style dataset's indices.

Each sampler is an iterable of indices (``BatchSampler``: of lists of indices) with PyTorch's
arguments and semantics. Randomness comes from a ``hubkit.Generator``; without one, a sampler
derives a fresh generator from hubkit's global one each time it is iterated, so
``hubkit.manual_seed(s)`` makes the whole run reproducible.
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

import numpy as np

from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.random import Generator, default_generator

T_co = TypeVar("T_co", covariant=True)

# Indices drawn with replacement are produced in chunks, so a sampler with a huge num_samples
# costs no memory up front.
_CHUNK = 4096


class Sampler(Generic[T_co]):
    """Base class: subclasses define ``__iter__`` (and ``__len__`` when the length is known)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        del data_source  # accepted for PyTorch compatibility; subclasses keep what they need


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ArgumentError(f"{name} must be a positive integer, got {value!r}")


def _fresh_rng(generator: Generator | None) -> np.random.Generator:
    """``generator``'s numpy generator, or a new one seeded from hubkit's global generator."""
    if generator is not None:
        return generator.numpy
    return np.random.Generator(np.random.PCG64(default_generator.randint_seed()))


class SequentialSampler(Sampler[int]):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random indices into ``data_source``.

    Without replacement: a random permutation (several back to back, the last one cut short, when
    ``num_samples > len(data_source)``). With replacement: ``num_samples`` independent uniform draws.
    ``num_samples`` defaults to ``len(data_source)``.
    """

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
    ) -> None:
        _check_bool("replacement", replacement)
        if num_samples is not None:
            _check_positive_int("num_samples", num_samples)
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator

    @property
    def num_samples(self) -> int:
        return len(self.data_source) if self._num_samples is None else int(self._num_samples)

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if n == 0:
            return
        rng = _fresh_rng(self.generator)
        remaining = self.num_samples
        if self.replacement:
            while remaining > 0:
                k = min(remaining, _CHUNK)
                yield from rng.integers(0, n, size=k).tolist()
                remaining -= k
        else:
            while remaining > 0:
                perm = rng.permutation(n).tolist()
                yield from perm[:remaining]
                remaining -= n

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a random order (a fresh permutation each iteration)."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng = _fresh_rng(self.generator)
        for i in rng.permutation(len(self.indices)).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices in ``[0, len(weights))``, index ``i`` drawn with probability ``weights[i] / sum``.

    ``weights: (N,)`` non-negative, need not sum to one. Without replacement an index is drawn at
    most once, so ``num_samples`` may not exceed the number of non-zero weights.
    """

    def __init__(
        self,
        weights: Sequence[float],
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        _check_positive_int("num_samples", num_samples)
        _check_bool("replacement", replacement)
        w = np.asarray(getattr(weights, "data", weights), dtype=np.float64)
        if w.ndim != 1:
            raise ArgumentError(
                f"WeightedRandomSampler weights must be a 1-d sequence, got an array of shape {w.shape}"
            )
        if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ArgumentError(
                "WeightedRandomSampler weights must be finite, non-negative and not all zero, "
                f"got {w.size} weights with min {w.min() if w.size else None} and sum {w.sum()}"
            )
        nonzero = int(np.count_nonzero(w))
        if not replacement and num_samples > nonzero:
            raise ArgumentError(
                f"WeightedRandomSampler without replacement can draw at most {nonzero} samples (the number "
                f"of non-zero weights), got num_samples={num_samples}; lower it or pass replacement=True"
            )
        self.weights = w
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        rng = _fresh_rng(self.generator)
        p = self.weights / self.weights.sum()
        yield from rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p).tolist()

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups the indices of ``sampler`` into lists of ``batch_size``.

    The last, shorter batch is kept unless ``drop_last``:
    ``list(BatchSampler(range(5), 2, False)) == [[0, 1], [2, 3], [4]]``.
    """

    def __init__(self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool) -> None:
        _check_positive_int("batch_size", batch_size)
        _check_bool("drop_last", drop_last)
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        it = iter(self.sampler)
        while True:
            batch = list(itertools.islice(it, self.batch_size))
            if not batch or (self.drop_last and len(batch) < self.batch_size):
                return
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


def _world_value(name: str, value: int | None, var: str) -> int:
    """``value``, else the initialized hubkit.distributed group's (rank or size), else the environment's."""
    if value is not None:
        return int(value)
    # hubkit.distributed sits above data: read it only when the program has imported it (no upward import)
    dist = sys.modules.get("hubkit.distributed")
    if dist is not None and dist.is_initialized():
        return dist.get_world_size() if var == "WORLD_SIZE" else dist.get_rank()
    env = os.environ.get(var)
    if env is None:
        raise ArgumentError(
            f"DistributedSampler needs {name}: pass {name}=..., call hubkit.distributed.init_process_group() "
            f"first, or set the {var} environment variable (hubkit run and torchrun set it)"
        )
    try:
        return int(env)
    except ValueError:
        raise ArgumentError(f"the {var} environment variable must be an integer, got {env!r}") from None


# torch's CPU randperm swaps with ``random() % (n - i)`` only below this size (TensorFactories.cpp)
_TORCH_RANDPERM_SMALL_N = (2**32 - 1) // 20


def torch_randperm(n: int, seed: int) -> list[int]:
    """``torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()``, without torch.

    torch seeds a standard 32-bit Mersenne Twister with the seed's low 32 bits (numpy's legacy
    ``MT19937`` seeding is the same ``init_genrand``), then runs a Fisher-Yates pass that swaps position
    ``i`` with ``i + random() % (n - i)``. DistributedSampler uses it so every rank of a hubkit job draws
    exactly the indices a torch job with the same seed and epoch would.
    """
    if n >= _TORCH_RANDPERM_SMALL_N:
        raise ArgumentError(f"a dataset of {n} items is past the size ({_TORCH_RANDPERM_SMALL_N}) up to which "
                            "hubkit reproduces torch's shuffled order; use shuffle=False or split the dataset")
    bits = np.random.MT19937()
    bits._legacy_seeding(seed & 0xFFFFFFFF)
    draws = bits.random_raw(max(n - 1, 0)).tolist()
    perm = list(range(n))
    for i in range(n - 1):
        j = i + draws[i] % (n - i)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


class DistributedSampler(Sampler[int]):
    """The share of a dataset's indices that one of ``num_replicas`` processes reads, exactly as torch's.

    Every replica gets ``num_samples = ceil(N / num_replicas)`` indices (``drop_last``: the tail
    that does not divide evenly is dropped instead of padded by wrapping around). With ``shuffle``
    the permutation is torch's ``randperm`` seeded by ``seed + epoch``, identical on every replica and
    equal to what torch draws; call ``set_epoch(e)`` before each epoch to reshuffle. Rank r reads
    positions ``r, r + num_replicas, ...`` of it. ``num_replicas`` and ``rank`` default to the initialized
    ``hubkit.distributed`` group's, else to the ``WORLD_SIZE`` and ``RANK`` environment variables.
    """

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        num_replicas = _world_value("num_replicas", num_replicas, "WORLD_SIZE")
        rank = _world_value("rank", rank, "RANK")
        if num_replicas <= 0:
            raise ArgumentError(f"num_replicas must be a positive integer, got {num_replicas}")
        if not 0 <= rank < num_replicas:
            raise ArgumentError(f"rank must lie in [0, {num_replicas - 1}] for {num_replicas} replicas, got {rank}")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = int(seed)
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            indices = torch_randperm(n, self.seed + self.epoch)
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[: self.total_size]
        else:
            pad = self.total_size - len(indices)
            if pad > 0:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use the permutation of ``seed + epoch`` (same on every replica)."""
        self.epoch = int(epoch)
