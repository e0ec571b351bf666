"""``default_collate`` and ``default_convert``: turning a list of samples into one batch.

The rules are PyTorch's, with hubkit Tensors in place of torch tensors:

=========================  =====================================================
sample element             batched as
=========================  =====================================================
Tensor ``(*S)``            Tensor ``(B, *S)`` (stacked on the tensors' device)
ndarray ``(*S)``           Tensor ``(B, *S)``, same dtype
numpy scalar               Tensor ``(B,)``, same dtype
``bool``                   Tensor ``(B,)`` bool
``int``                    Tensor ``(B,)`` int64
``float``                  Tensor ``(B,)`` float64 (as PyTorch does)
``str`` / ``bytes``        list of the ``B`` values
mapping                    same mapping type, each key collated
namedtuple                 same namedtuple type, each field collated
tuple                      **list** of the collated positions (PyTorch's choice)
other sequence             same sequence type (or list), each position collated
=========================  =====================================================
"""

from __future__ import annotations

import collections.abc
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.errors import ArgumentTypeError, ShapeError
from hubkit.tensor import Tensor, from_numpy


def _wrap(arr: Any) -> Tensor:
    return from_numpy(arr) if isinstance(arr, np.ndarray) else Tensor(arr)


def _unsupported(found: Any) -> ArgumentTypeError:
    return ArgumentTypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {found}. Pass a collate_fn to the DataLoader to batch other types"
    )


def _stack(arrays: list, what: str) -> Any:
    first = arrays[0]
    for a in arrays:
        if a.shape != first.shape:
            shapes = sorted({tuple(x.shape) for x in arrays})
            raise ShapeError(
                f"default_collate: every {what} in a batch must have the same shape to be stacked, "
                f"found shapes {shapes[:4]}{' ...' if len(shapes) > 4 else ''}; resize or pad the samples "
                f"(e.g. with a transform) or pass a collate_fn that handles ragged samples"
            )
    xp = get_array_module(first)
    return xp.stack(arrays)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: list) -> Any:
    """Collate ``batch``, a list of ``B`` samples with the same structure, into one batched sample.

    ``[(x_i: (C, H, W) array, y_i: int)] * B -> [x: Tensor (B, C, H, W), y: Tensor (B,) int64]``
    (see the module docstring for every rule). Raises ``ShapeError`` when arrays or sequences in
    the batch have different sizes and ``ArgumentTypeError`` for element types it cannot batch.
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _wrap(_stack([b.array for b in batch], "tensor"))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUSV":
            raise _unsupported(f"an ndarray of dtype {elem.dtype}")
        return from_numpy(_stack([np.asarray(b) for b in batch], "array"))
    if isinstance(elem, np.generic):
        if elem.dtype.kind in "OUSV":
            raise _unsupported(f"a numpy scalar of dtype {elem.dtype}")
        return from_numpy(np.array(batch))
    if isinstance(elem, bool):
        return from_numpy(np.array(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return from_numpy(np.array(batch, dtype=np.int64))
    if isinstance(elem, float):
        return from_numpy(np.array(batch, dtype=np.float64))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:  # a mapping type whose constructor takes something else
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(field)) for field in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        size = len(elem)
        if any(len(s) != size for s in batch):
            raise ShapeError(
                f"default_collate: each element in list of batch should be of equal size, found lengths "
                f"{sorted({len(s) for s in batch})}; pass a collate_fn that handles variable-length samples"
            )
        columns = [default_collate(list(col)) for col in zip(*batch)]
        if isinstance(elem, tuple):
            return columns
        try:
            return type(elem)(columns)
        except TypeError:  # a sequence type that cannot be built from a list
            return columns
    raise _unsupported(type(elem))


def default_convert(data: Any) -> Any:
    """What the ``DataLoader`` applies to each sample when batching is off (``batch_size=None``).

    ndarrays and numpy scalars become Tensors (same dtype, no copy for arrays); mappings,
    namedtuples and sequences are converted element by element; everything else is returned as is.
    """
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if data.dtype.kind in "OUSV" else from_numpy(data)
    if isinstance(data, np.generic):
        return data if data.dtype.kind in "OUSV" else from_numpy(np.asarray(data))
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data
