"""Creation ops beyond ``hubkit/tensor.py``'s factories: logspace, range, empty_strided, asarray,
frombuffer, tril_indices/triu_indices, the window functions (hann, hamming, blackman, bartlett,
kaiser), and the random samplers (normal, bernoulli, multinomial, poisson, randint_like) with the
in-place samplers of Tensor (``bernoulli_``, ``exponential_``, ...).

Random draws come from ``hubkit.random``'s generators (the global one unless ``generator`` is given)
on the host, so a seeded run is reproducible on every device.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from hubkit._backend import Device, to_device
from hubkit.errors import ArgumentError, ShapeError
from hubkit.random import Generator, get_rng
from hubkit.tensor import Tensor, _as_dtype, _shape_of, empty, get_default_device, get_default_dtype, tensor


def _place(array: np.ndarray, device: Any, requires_grad: bool) -> Tensor:
    device = device if device is not None else get_default_device()
    out = Tensor._make(to_device(array, Device(device)))
    if requires_grad:
        out.requires_grad_(True)
    return out


def _float_dtype(dtype: Any) -> np.dtype:
    return _as_dtype(dtype) or get_default_dtype()


def logspace(start: float, end: float, steps: int, base: float = 10.0, *, dtype: Any = None, device: Any = None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` points ``base ** linspace(start, end, steps)``."""
    return _place(np.logspace(start, end, steps, base=base).astype(_float_dtype(dtype)), device, requires_grad)


def range(start: float, end: float | None = None, step: float = 1, *, dtype: Any = None,  # noqa: A001
          device: Any = None, requires_grad: bool = False) -> Tensor:
    """``start, start + step, ..., end`` with ``end`` included (PyTorch's deprecated ``torch.range``; use arange)."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ArgumentError("range: step must be nonzero")
    count = builtins.int(math.floor((end - start) / step)) + 1
    values = start + step * np.arange(builtins.max(count, 0))
    return _place(values.astype(_float_dtype(dtype)), device, requires_grad)


def empty_strided(size: Sequence[int], stride: Sequence[int], *, dtype: Any = None, device: Any = None,
                  requires_grad: bool = False) -> Tensor:
    """An uninitialized tensor of ``size``. hubkit tensors own contiguous arrays, so ``stride`` only has to
    describe a valid layout; the result is laid out contiguously."""
    if len(size) != len(stride):
        raise ShapeError(f"empty_strided: size {tuple(size)} and stride {tuple(stride)} must have the same length")
    return empty(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def asarray(obj: Any, *, dtype: Any = None, device: Any = None, copy: bool | None = None,
            requires_grad: bool = False) -> Tensor:
    """A tensor from ``obj`` sharing its memory when possible (``copy=True`` forces a copy, ``False`` forbids one)."""
    if copy:
        out = tensor(obj, dtype=dtype, device=device)
    else:
        src = obj.array if isinstance(obj, Tensor) else obj
        target = _as_dtype(dtype)
        array = np.asarray(src) if not hasattr(src, "__cuda_array_interface__") else src
        if target is not None and array.dtype != target:
            if copy is False:
                raise ArgumentError(f"asarray: copy=False but converting {array.dtype} to {target} needs a copy")
            array = array.astype(target)
        if isinstance(obj, (list, tuple, builtins.float, builtins.int)) and target is None:
            return tensor(obj, device=device, requires_grad=requires_grad)
        out = Tensor._make(array if device is None else to_device(array, Device(device)))
    if requires_grad:
        out.requires_grad_(True)
    return out


def frombuffer(buffer: Any, *, dtype: Any, count: int = -1, offset: int = 0, requires_grad: bool = False) -> Tensor:
    """A 1-d tensor over the bytes of a Python buffer (shared memory, like ``numpy.frombuffer``)."""
    out = Tensor._make(np.frombuffer(buffer, dtype=_as_dtype(dtype), count=count, offset=offset))
    if requires_grad:
        out.requires_grad_(True)
    return out


def _triangle_indices(rows: Any, cols: Any, device: Any, dtype: Any) -> Tensor:
    return _place(np.stack([rows, cols]).astype(_as_dtype(dtype) or np.int64), device, False)


def tril_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None) -> Tensor:
    """``(2, N)``: the row and column indices of the lower triangle (from diagonal ``offset``), row by row."""
    r, c = np.tril_indices(row, offset, col)
    return _triangle_indices(r, c, device, dtype)


def triu_indices(row: int, col: int, offset: int = 0, *, dtype: Any = None, device: Any = None) -> Tensor:
    """``(2, N)``: the row and column indices of the upper triangle (from diagonal ``offset``), row by row."""
    r, c = np.triu_indices(row, offset, col)
    return _triangle_indices(r, c, device, dtype)


# ---------------------------------------------------------------- window functions


def _window(name: str, length: int, periodic: bool, make: Any, dtype: Any, device: Any,
            requires_grad: bool) -> Tensor:
    if length < 0:
        raise ArgumentError(f"{name}: window_length must be non-negative, got {length}")
    if length <= 1:
        values = np.ones(length)
    else:  # a periodic window is the symmetric one of length + 1 without its last point
        values = make(length + 1)[:-1] if periodic else make(length)
    return _place(values.astype(_float_dtype(dtype)), device, requires_grad)


def hann_window(window_length: int, periodic: bool = True, *, dtype: Any = None, device: Any = None,
                requires_grad: bool = False) -> Tensor:
    """The Hann window ``0.5 - 0.5 cos(2 pi n / (N - 1))`` (periodic: as if of length N + 1)."""
    return _window("hann_window", window_length, periodic, np.hanning, dtype, device, requires_grad)


def hamming_window(window_length: int, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, *,
                   dtype: Any = None, device: Any = None, requires_grad: bool = False) -> Tensor:
    """The Hamming window ``alpha - beta cos(2 pi n / (N - 1))``."""
    def make(n: int) -> np.ndarray:
        return alpha - beta * np.cos(2 * np.pi * np.arange(n) / (n - 1))

    return _window("hamming_window", window_length, periodic, make, dtype, device, requires_grad)


def blackman_window(window_length: int, periodic: bool = True, *, dtype: Any = None, device: Any = None,
                    requires_grad: bool = False) -> Tensor:
    """The Blackman window."""
    return _window("blackman_window", window_length, periodic, np.blackman, dtype, device, requires_grad)


def bartlett_window(window_length: int, periodic: bool = True, *, dtype: Any = None, device: Any = None,
                    requires_grad: bool = False) -> Tensor:
    """The Bartlett (triangular) window."""
    return _window("bartlett_window", window_length, periodic, np.bartlett, dtype, device, requires_grad)


def kaiser_window(window_length: int, periodic: bool = True, beta: float = 12.0, *, dtype: Any = None,
                  device: Any = None, requires_grad: bool = False) -> Tensor:
    """The Kaiser window with shape parameter ``beta``."""
    return _window("kaiser_window", window_length, periodic, lambda n: np.kaiser(n, beta), dtype, device,
                   requires_grad)


# ---------------------------------------------------------------- random sampling


def _like(values: np.ndarray, ref: Tensor | None, dtype: Any = None, device: Any = None) -> Tensor:
    """Host samples cast to the reference tensor's dtype and moved to its device."""
    target = _as_dtype(dtype) or (ref.dtype if ref is not None else get_default_dtype())
    where = device if device is not None else (ref.device if ref is not None else get_default_device())
    return Tensor._make(to_device(np.asarray(values).astype(target), Device(where)))


def _host(t: Any) -> Any:
    return np.asarray(to_device(t.array, Device("cpu"))) if isinstance(t, Tensor) else t


def normal(mean: Any = 0.0, std: Any = 1.0, size: Sequence[int] | None = None, *,
           generator: Generator | None = None, dtype: Any = None, device: Any = None,
           requires_grad: bool = False) -> Tensor:
    """Normal samples with elementwise ``mean`` and ``std`` (numbers or tensors, broadcast), or of ``size``."""
    ref = mean if isinstance(mean, Tensor) else std if isinstance(std, Tensor) else None
    m, s = _host(mean), _host(std)
    if np.any(np.asarray(s) < 0):
        raise ArgumentError("normal: std must be non-negative")
    shape = tuple(_shape_of((tuple(size),))) if size is not None else np.broadcast_shapes(np.shape(m), np.shape(s))
    out = _like(get_rng(generator).normal(m, s, size=shape), ref, dtype, device)
    if requires_grad:
        out.requires_grad_(True)
    return out


def bernoulli(input: Tensor, p: float | None = None, *, generator: Generator | None = None) -> Tensor:  # noqa: A002
    """0/1 samples, 1 with probability ``input`` elementwise (or the number ``p``); ``input``'s dtype."""
    probs = _host(input) if p is None else np.full(input.shape, p)
    if np.any((probs < 0) | (probs > 1)):
        raise ArgumentError("bernoulli: probabilities must be in [0, 1]")
    return _like(get_rng(generator).random(input.shape) < probs, input)


def poisson(input: Tensor, generator: Generator | None = None) -> Tensor:  # noqa: A002
    """Poisson samples with rates ``input`` elementwise; ``input``'s dtype."""
    rates = _host(input)
    if np.any(rates < 0):
        raise ArgumentError("poisson: rates must be non-negative")
    return _like(get_rng(generator).poisson(rates), input)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False, *,  # noqa: A002
                generator: Generator | None = None) -> Tensor:
    """``num_samples`` category indices per row, drawn with probabilities proportional to the rows of
    ``input`` ``(k,)`` or ``(n, k)``; int64, ``(num_samples,)`` or ``(n, num_samples)``."""
    weights = _host(input).astype(np.float64)
    if weights.ndim not in (1, 2):
        raise ShapeError(f"multinomial: expects a 1-d or 2-d tensor of weights, got shape {tuple(input.shape)}")
    rows = weights.reshape(-1, weights.shape[-1])
    if np.any(rows < 0) or np.any(~np.isfinite(rows)) or np.any(rows.sum(axis=1) <= 0):
        raise ArgumentError("multinomial: weights must be finite, non-negative and sum to more than 0")
    if not replacement and num_samples > int((rows > 0).sum(axis=1).min()):
        raise ArgumentError(f"multinomial: cannot draw {num_samples} samples without replacement from rows with "
                            "fewer non-zero weights")
    rng = get_rng(generator)
    draws = np.stack([rng.choice(rows.shape[1], size=num_samples, replace=replacement, p=r / r.sum())
                      for r in rows])
    out = draws.reshape(weights.shape[:-1] + (num_samples,)).astype(np.int64)
    return Tensor._make(to_device(out, input.device))


def randint_like(input: Tensor, low: int = 0, high: int | None = None, *, generator: Generator | None = None,  # noqa: A002
                 dtype: Any = None, device: Any = None) -> Tensor:
    """Integers in [low, high) (or [0, low) when high is omitted) shaped like ``input``, in its dtype."""
    if high is None:
        low, high = 0, low
    return _like(get_rng(generator).integers(low, high, size=input.shape), input, dtype, device)


# in-place samplers of Tensor (bound as ``t.exponential_()`` etc. by the op table): each returns the new
# values shaped and typed like ``t``, and the table's in-place wrapper writes them into it


def exponential(input: Tensor, lambd: float = 1.0, *, generator: Generator | None = None) -> Tensor:  # noqa: A002
    return _like(get_rng(generator).exponential(1 / lambd, size=input.shape), input)


def cauchy(input: Tensor, median: float = 0.0, sigma: float = 1.0, *,  # noqa: A002
           generator: Generator | None = None) -> Tensor:
    return _like(median + sigma * get_rng(generator).standard_cauchy(size=input.shape), input)


def geometric(input: Tensor, p: float, *, generator: Generator | None = None) -> Tensor:  # noqa: A002
    return _like(get_rng(generator).geometric(p, size=input.shape), input)


def log_normal(input: Tensor, mean: float = 1.0, std: float = 2.0, *,  # noqa: A002
               generator: Generator | None = None) -> Tensor:
    return _like(get_rng(generator).lognormal(mean, std, size=input.shape), input)


def random(input: Tensor, from_: int = 0, to: int | None = None, *,  # noqa: A002
           generator: Generator | None = None) -> Tensor:
    """Integers in [from, to); without ``to``, in [0, 2**mantissa] for floats or the dtype's range for ints."""
    if to is None:
        if input.dtype.kind == "f":
            to = 2 ** (np.finfo(input.dtype).nmant + 1) + 1
        elif input.dtype.kind == "b":
            to = 2
        else:
            to = builtins.int(np.iinfo(input.dtype).max) + 1
    return _like(get_rng(generator).integers(from_, to, size=input.shape), input)


def bernoulli_sample(input: Tensor, p: Any = 0.5, *, generator: Generator | None = None) -> Tensor:  # noqa: A002
    """``t.bernoulli_(p)``: 0/1 samples shaped like ``t``, 1 with probability ``p`` (a number or a tensor)."""
    probs = np.broadcast_to(_host(p), input.shape)
    return _like(get_rng(generator).random(input.shape) < probs, input)
