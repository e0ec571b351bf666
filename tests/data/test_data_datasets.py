"""Dataset, TensorDataset, Subset, ConcatDataset, ChainDataset and random_split."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.data import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from hubkit.errors import ArgumentError, ArgumentTypeError, HubkitError, ShapeError


class Range(Dataset):
    def __init__(self, n: int, offset: int = 0) -> None:
        self.n, self.offset = n, offset

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(i)
        return self.offset + i


class Stream(IterableDataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def test_tensor_dataset_returns_aligned_slices_of_tensors_and_arrays():
    x = hubkit.from_numpy(np.arange(12, dtype=np.float32).reshape(4, 3))
    y = np.array([10, 11, 12, 13])
    ds = TensorDataset(x, y)
    assert len(ds) == 4
    xi, yi = ds[2]
    np.testing.assert_array_equal(xi.numpy(), [6, 7, 8])
    assert yi == 12


def test_tensor_dataset_rejects_tensors_of_different_lengths():
    with pytest.raises(ShapeError, match=r"\[4, 3\]"):
        TensorDataset(np.zeros((4, 2)), np.zeros(3))
    with pytest.raises(ArgumentTypeError):
        TensorDataset(np.float32(1.0))
    with pytest.raises(ArgumentError):
        TensorDataset()


def test_subset_maps_indices_and_supports_getitems():
    sub = Subset(Range(10), [7, 2, 5])
    assert len(sub) == 3
    assert [sub[i] for i in range(3)] == [7, 2, 5]
    assert sub.__getitems__([2, 0]) == [5, 7]


def test_concat_dataset_indexes_across_parts_and_from_the_end():
    ds = ConcatDataset([Range(3), Range(0), Range(4, offset=100)])
    assert len(ds) == 7
    assert ds.cumulative_sizes == [3, 3, 7]
    assert [ds[i] for i in range(7)] == [0, 1, 2, 100, 101, 102, 103]
    assert ds[-1] == 103 and ds[-7] == 0
    with pytest.raises(IndexError):
        ds[7]
    with pytest.raises(IndexError):
        ds[-8]
    assert [x for x in Range(2) + Range(1, offset=5)] == [0, 1, 5]


def test_concat_dataset_rejects_empty_and_iterable_inputs():
    with pytest.raises(ArgumentError):
        ConcatDataset([])
    with pytest.raises(ArgumentTypeError, match="ChainDataset"):
        ConcatDataset([Stream([1])])


def test_iterable_datasets_chain_with_plus():
    chained = Stream([1, 2]) + Stream([3])
    assert isinstance(chained, ChainDataset)
    assert list(chained) == [1, 2, 3]
    assert len(chained) == 3


def test_random_split_by_counts_is_a_seeded_disjoint_cover():
    parts = random_split(Range(10), [3, 7], generator=hubkit.Generator(0))
    again = random_split(Range(10), [3, 7], generator=hubkit.Generator(0))
    assert [len(p) for p in parts] == [3, 7]
    items = [list(p) for p in parts]
    assert sorted(items[0] + items[1]) == list(range(10))
    assert items == [list(p) for p in again]
    other = random_split(Range(10), [3, 7], generator=hubkit.Generator(1))
    assert items != [list(p) for p in other]


def test_random_split_by_fractions_gives_remainder_round_robin():
    # floor(10 * 0.33) = 3 three times leaves 1 over, which goes to the first part (PyTorch's rule)
    parts = random_split(Range(10), [0.34, 0.33, 0.33], generator=hubkit.Generator(0))
    assert [len(p) for p in parts] == [4, 3, 3]


def test_random_split_with_wrong_total_says_what_it_expected():
    with pytest.raises(ArgumentError, match="sum to 9 but the dataset has 10") as info:
        random_split(Range(10), [4, 5])
    assert isinstance(info.value, HubkitError)
    with pytest.raises(ArgumentError):
        random_split(Range(10), [1.5, -0.5])


@pytest.mark.parity
def test_random_split_fraction_lengths_match_torch():
    import torch.utils.data as tud

    for n, fractions in [(10, [0.34, 0.33, 0.33]), (7, [0.5, 0.5]), (101, [0.8, 0.1, 0.1])]:
        ours = [len(p) for p in random_split(Range(n), fractions)]
        theirs = [len(p) for p in tud.random_split(range(n), fractions)]
        assert ours == theirs
