"""default_collate and default_convert: PyTorch's batching rules with hubkit Tensors."""

from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import hubkit
from hubkit.data import default_collate, default_convert
from hubkit.errors import ArgumentTypeError, ShapeError
from hubkit.tensor import Tensor

Point = namedtuple("Point", ["x", "y"])


def test_python_numbers_become_int64_float64_and_bool_tensors():
    assert default_collate([1, 2, 3]).dtype == np.int64
    floats = default_collate([1.5, 2.0])
    assert isinstance(floats, Tensor) and floats.dtype == np.float64
    assert default_collate([True, False]).dtype == np.bool_


def test_arrays_and_numpy_scalars_keep_their_dtype_and_stack_on_a_new_first_axis():
    batch = default_collate([np.full((2, 3), i, dtype=np.uint8) for i in range(4)])
    assert batch.shape == (4, 2, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch.numpy()[:, 0, 0], [0, 1, 2, 3])
    assert default_collate([np.float32(1), np.float32(2)]).dtype == np.float32
    assert default_collate([np.int32(1)]).dtype == np.int32


def test_tensors_are_stacked():
    batch = default_collate([hubkit.from_numpy(np.ones(3, dtype=np.float32) * i) for i in range(2)])
    assert isinstance(batch, Tensor)
    np.testing.assert_array_equal(batch.numpy(), [[0, 0, 0], [1, 1, 1]])


def test_containers_are_collated_per_field():
    pairs = default_collate([(np.zeros(2), 1), (np.ones(2), 2)])
    assert isinstance(pairs, list) and len(pairs) == 2  # tuples become lists, as in PyTorch
    np.testing.assert_array_equal(pairs[1].numpy(), [1, 2])
    lists = default_collate([[1, 2], [3, 4]])
    np.testing.assert_array_equal(lists[0].numpy(), [1, 3])
    dicts = default_collate([{"a": 1, "name": "x"}, {"a": 2, "name": "y"}])
    assert dicts["name"] == ["x", "y"]
    np.testing.assert_array_equal(dicts["a"].numpy(), [1, 2])
    points = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(points, Point)
    np.testing.assert_array_equal(points.x.numpy(), [1, 3])
    assert points.y.dtype == np.float64


def test_ragged_batches_raise_shape_errors_that_name_the_shapes():
    with pytest.raises(ShapeError, match=r"\(2,\), \(3,\)"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(ShapeError, match="equal size"):
        default_collate([[1, 2], [3]])


def test_unsupported_elements_raise_a_type_error_suggesting_collate_fn():
    with pytest.raises(ArgumentTypeError, match="collate_fn"):
        default_collate([object()])
    with pytest.raises(ArgumentTypeError, match="<U1"):
        default_collate([np.array(["a"])])
    with pytest.raises(TypeError):  # still a TypeError for code written against PyTorch
        default_collate([object()])


def test_default_convert_wraps_arrays_and_leaves_python_values():
    out = default_convert([np.float32(1), 2, np.array([1, 2]), "s"])
    assert isinstance(out[0], Tensor) and out[0].dtype == np.float32
    assert out[1] == 2 and out[3] == "s"
    arr = np.arange(3)
    converted = default_convert({"x": arr})["x"]
    assert isinstance(converted, Tensor)
    converted.numpy()[0] = 42
    assert arr[0] == 42  # no copy
    assert isinstance(default_convert((arr,)), list)


@pytest.mark.parity
def test_default_collate_matches_torch_on_a_nested_batch():
    import torch
    from torch.utils.data import default_collate as torch_collate

    rng = np.random.default_rng(0)
    batch = [
        {
            "image": rng.integers(0, 255, (3, 4, 4), dtype=np.uint8),
            "label": int(rng.integers(10)),
            "score": float(rng.random()),
            "flags": [True, False],
            "pair": (np.float32(rng.random()), rng.random(2)),
        }
        for _ in range(5)
    ]

    def compare(ours, theirs):
        if isinstance(theirs, torch.Tensor):
            assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
            np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
        elif isinstance(theirs, dict):
            assert ours.keys() == theirs.keys()
            for k in theirs:
                compare(ours[k], theirs[k])
        else:
            assert type(ours) is type(theirs) and len(ours) == len(theirs)
            for a, b in zip(ours, theirs):
                compare(a, b)

    compare(default_collate(batch), torch_collate(batch))
