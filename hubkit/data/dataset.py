"""Datasets as PyTorch defines them: map-style (``__getitem__``/``__len__``) and iterable-style.

``Dataset`` and ``IterableDataset`` are the two protocols the ``DataLoader`` understands; the rest
compose them: ``TensorDataset`` slices aligned tensors, ``Subset`` picks indices, ``ConcatDataset``
and ``ChainDataset`` join datasets end to end, ``random_split`` cuts one into random disjoint parts.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from hubkit.errors import ArgumentError, ArgumentTypeError, ShapeError
from hubkit.random import Generator, default_generator

T_co = TypeVar("T_co", covariant=True)


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__()``.

    ``a + b`` is ``ConcatDataset([a, b])``. A subclass may also define ``__getitems__(indices)``
    returning a list of samples; the ``DataLoader`` then fetches a whole batch in one call.
    """

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """An iterable-style dataset: subclasses define ``__iter__()``, yielding samples.

    With ``num_workers > 0`` every worker iterates its own copy, so a dataset that should not be
    read twice splits the work itself using ``hubkit.data.get_worker_info()`` (``id`` and
    ``num_workers``) inside ``__iter__``. ``a + b`` is ``ChainDataset([a, b])``.
    """

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


def _first_dim(t: Any) -> int:
    shape = getattr(t, "shape", None)
    if shape is None or len(shape) == 0:
        raise ArgumentTypeError(
            f"TensorDataset expects tensors or arrays with at least one dimension, got {type(t).__name__}"
            f"{'' if shape is None else ' with shape ()'}; pass arrays whose first dimension indexes samples"
        )
    return int(shape[0])


class TensorDataset(Dataset[tuple]):
    """Samples are slices along the first dimension of tensors (or ndarrays) of equal length.

    ``TensorDataset(x, y)[i] == (x[i], y[i])`` for ``x: (N, ...)`` and ``y: (N, ...)``.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ArgumentError("TensorDataset needs at least one tensor, got none")
        sizes = [_first_dim(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ShapeError(
                f"TensorDataset needs tensors with the same first dimension (the number of samples), "
                f"got first dimensions {sizes}; slice or pad them to one length"
            )
        self.tensors = tensors

    def __getitem__(self, index: Any) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return _first_dim(self.tensors[0])


class Subset(Dataset[T_co]):
    """The samples of ``dataset`` at ``indices``, in that order: ``Subset(d, idx)[k] == d[idx[k]]``."""

    def __init__(self, dataset: Dataset[T_co], indices: Sequence[int]) -> None:
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx: int | list[int]) -> Any:
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices: list[int]) -> list:
        inner = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self) -> int:
        return len(self.indices)


class ConcatDataset(Dataset[T_co]):
    """Map-style datasets one after another; index ``i`` falls into the dataset whose range holds it.

    ``cumulative_sizes[k]`` is the total length of the first ``k + 1`` datasets.
    """

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ArgumentError("ConcatDataset needs at least one dataset, got an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise ArgumentTypeError(
                    f"ConcatDataset joins map-style datasets, got the IterableDataset {type(d).__name__}; "
                    f"use ChainDataset (or `+` on iterable datasets) to chain iterable ones"
                )
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        n = len(self)
        if idx < 0:
            if -idx > n:
                raise IndexError(f"index {idx} is out of range for a ConcatDataset of length {n}")
            idx += n
        if idx >= n:
            raise IndexError(f"index {idx} is out of range for a ConcatDataset of length {n}")
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after another (what ``a + b`` gives for iterable datasets)."""

    def __init__(self, datasets: Iterable[Dataset]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator:
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise ArgumentTypeError(
                    f"ChainDataset chains IterableDatasets, got the map-style {type(d).__name__}; "
                    f"use ConcatDataset for map-style datasets"
                )
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


def _lengths_from_fractions(lengths: Sequence[float], n: int) -> list[int]:
    if any(f < 0 or f > 1 for f in lengths):
        raise ArgumentError(f"random_split fractions must each lie in [0, 1], got {list(lengths)}")
    counts = [math.floor(n * f) for f in lengths]
    # Hand the samples lost to flooring out one at a time, round-robin, as PyTorch does.
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def random_split(
    dataset: Dataset[T_co],
    lengths: Sequence[int | float],
    generator: Generator | None = default_generator,
) -> list[Subset[T_co]]:
    """Split ``dataset`` into disjoint random ``Subset``s of the given lengths.

    ``lengths`` are either counts summing to ``len(dataset)`` or fractions summing to 1 (the
    remainder after flooring goes round-robin to the first parts). The permutation is drawn from
    ``generator`` (hubkit's global one by default), so a seeded generator gives the same split.
    """
    n = len(dataset)
    lengths = list(lengths)
    if not lengths:
        raise ArgumentError("random_split needs at least one length, got an empty sequence")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1 and not all(isinstance(x, int) for x in lengths):
        lengths = _lengths_from_fractions(lengths, n)
    if any(not float(x).is_integer() or x < 0 for x in lengths):
        raise ArgumentError(
            f"random_split lengths must be non-negative counts summing to {n} or fractions summing to 1, "
            f"got {lengths}"
        )
    lengths = [int(x) for x in lengths]
    if sum(lengths) != n:
        raise ArgumentError(
            f"random_split lengths sum to {sum(lengths)} but the dataset has {n} samples; "
            f"pass counts that sum to {n} or fractions that sum to 1"
        )
    rng = (generator or default_generator).numpy
    perm = rng.permutation(n).tolist()
    bounds = list(itertools.accumulate(lengths))
    return [Subset(dataset, perm[end - k : end]) for k, end in zip(lengths, bounds)]
