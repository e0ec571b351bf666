"""The op-test harness: float64 gradient checks and forward/backward comparison with PyTorch.

    from opcheck import gradcheck, compare_with_torch

    gradcheck(lambda x, w: F.linear(x, w), [x, w])            # raw numpy inputs
    compare_with_torch(lambda m, x: m.relu(x), [x])            # m is hubkit.nn.functional or torch

``gradcheck`` compares autograd's gradient of ``sum(r * f(inputs))`` (``r`` a fixed random
projection, so every output element matters) with central differences in float64.
``compare_with_torch`` runs the same lambda once with ``hubkit.nn.functional`` and once with
``torch.nn.functional`` (both passed as ``m``; ``m.tensor``-style helpers are not needed because
the inputs are converted for you) and compares outputs and input gradients.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import hubkit
from hubkit import Tensor


def rng_for(name: str) -> np.random.Generator:
    """A generator seeded from a test case's name: stable across runs, different between cases."""
    return np.random.default_rng(zlib.crc32(name.encode()))


def tie_free(shape: Sequence[int], seed: int = 0, dtype: Any = np.float64) -> np.ndarray:
    """Distinct values spaced well apart (a shuffled arange), for max/argmax-like ops."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    values = (rng.permutation(n) - n / 2) * 0.1
    return values.reshape(shape).astype(dtype)


def _outputs(result: Any) -> list[Tensor]:
    if isinstance(result, Tensor):
        return [result]
    return [r for r in result if isinstance(r, Tensor) and r.dtype.kind == "f"]


def _projection(outs: list[Tensor], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return [rng.standard_normal(o.shape) for o in outs]


def _loss_value(fn: Callable, arrays: list[Any], proj: list[np.ndarray]) -> float:
    with hubkit.no_grad():
        outs = _outputs(fn(*[hubkit.from_numpy(a) if isinstance(a, np.ndarray) else a for a in arrays]))
    return float(sum((o.numpy().astype(np.float64) * p).sum() for o, p in zip(outs, proj)))


def gradcheck(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    wrt: Sequence[int] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    seed: int = 0,
) -> None:
    """Assert that autograd's input gradients of ``fn`` match float64 central differences.

    ``inputs`` are numpy arrays (floating ones are cast to float64 and checked) or anything else
    (passed through as is). ``wrt`` limits the check to some input positions.
    """
    arrays = [np.array(a, dtype=np.float64) if isinstance(a, (np.ndarray, np.generic)) and a.dtype.kind == "f"
              else np.asarray(a) if isinstance(a, np.generic) else a for a in inputs]
    positions = [i for i, a in enumerate(arrays) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    if wrt is not None:
        positions = [i for i in positions if i in wrt]
    assert positions, "gradcheck: no floating-point numpy input to check"
    tensors = [hubkit.tensor(a, requires_grad=i in positions) if isinstance(a, np.ndarray) else a
               for i, a in enumerate(arrays)]
    outs = _outputs(fn(*tensors))
    assert outs, "gradcheck: fn returned no floating-point tensor"
    for o in outs:
        assert o.dtype == np.float64, f"gradcheck: output dtype {o.dtype}, expected float64 (no silent downcast)"
    proj = _projection(outs, seed)
    loss = None
    for o, p in zip(outs, proj):
        if o.requires_grad:
            term = (o * hubkit.from_numpy(p)).sum()
            loss = term if loss is None else loss + term
    if loss is not None:
        loss.backward()
    for i in positions:
        grad = tensors[i].grad
        analytic = np.zeros_like(arrays[i]) if grad is None else grad.numpy()
        assert analytic.shape == arrays[i].shape, f"input {i}: grad shape {analytic.shape} != {arrays[i].shape}"
        numeric = np.zeros_like(arrays[i])
        flat = arrays[i].reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            up = _loss_value(fn, arrays, proj)
            flat[k] = orig - eps
            down = _loss_value(fn, arrays, proj)
            flat[k] = orig
            numeric.reshape(-1)[k] = (up - down) / (2 * eps)
        np.testing.assert_allclose(analytic, numeric, atol=atol, rtol=rtol,
                                   err_msg=f"gradient of input {i} differs from central differences")


def _to_torch(a: Any, dtype: Any, requires_grad: bool) -> Any:
    import torch

    if isinstance(a, np.ndarray):
        t = torch.from_numpy(a.astype(dtype) if a.dtype.kind == "f" else a.copy())
        return t.requires_grad_(requires_grad and a.dtype.kind == "f")
    return a


def compare_with_torch(
    fn: Callable[..., Any],
    inputs: Sequence[Any],
    *,
    dtype: Any = np.float64,
    torch_fn: Callable[..., Any] | None = None,
    atol: float | None = None,
    rtol: float | None = None,
    seed: int = 0,
    check_backward: bool = True,
    wrt: Sequence[int] | None = None,
) -> None:
    """Run ``fn(F, *inputs)`` with hubkit's and torch's functional modules and compare.

    ``fn`` gets the functional module first (``hubkit.nn.functional`` or ``torch.nn.functional``
    with torch's top-level ops reachable through it via ``getattr`` fallback), then the inputs as
    tensors of that framework. Pass ``torch_fn`` when the two calls must differ. Tolerances
    default to 1e-5 relative in float64 and 1e-4 in float32. ``wrt`` limits which floating-point
    inputs require (and have their) gradients compared; by default all of them.
    """
    import torch
    import torch.nn.functional as TF

    import hubkit.nn.functional as HF

    if rtol is None:
        rtol = 1e-5 if np.dtype(dtype) == np.float64 else 1e-4
    if atol is None:
        atol = 1e-7 if np.dtype(dtype) == np.float64 else 1e-5

    class _TorchNS:
        def __getattr__(self, name: str) -> Any:
            return getattr(TF, name) if hasattr(TF, name) else getattr(torch, name)

    inputs = [np.asarray(a) if isinstance(a, np.generic) else a for a in inputs]
    grad_at = [wrt is None or i in wrt for i in range(len(inputs))]
    h_in = [hubkit.tensor(a.astype(dtype) if a.dtype.kind == "f" else a, requires_grad=a.dtype.kind == "f" and g)
            if isinstance(a, np.ndarray) else a for a, g in zip(inputs, grad_at)]
    t_in = [_to_torch(a, dtype, g) for a, g in zip(inputs, grad_at)]
    h_out = _outputs(fn(HF, *h_in))
    t_res = (torch_fn or fn)(_TorchNS(), *t_in)
    t_out = [t_res] if isinstance(t_res, torch.Tensor) else [r for r in t_res if r.is_floating_point()]
    assert len(h_out) == len(t_out), f"{len(h_out)} outputs vs torch's {len(t_out)}"
    for h, t in zip(h_out, t_out):
        assert tuple(h.shape) == tuple(t.shape), f"shape {tuple(h.shape)} vs torch's {tuple(t.shape)}"
        assert h.dtype == np.dtype(str(t.dtype).replace("torch.", "")), f"dtype {h.dtype} vs torch's {t.dtype}"
        np.testing.assert_allclose(h.numpy(), t.detach().numpy(), atol=atol, rtol=rtol, err_msg="forward differs")
    if not check_backward:
        return
    proj = _projection(h_out, seed)
    terms_h = [(o * hubkit.from_numpy(p.astype(o.dtype))).sum() for o, p in zip(h_out, proj) if o.requires_grad]
    terms_t = [(o * torch.from_numpy(p.astype(o.detach().numpy().dtype))).sum()
               for o, p in zip(t_out, proj) if o.requires_grad]
    if not terms_h:
        return
    h_loss = terms_h[0]
    for term in terms_h[1:]:
        h_loss = h_loss + term
    h_loss.backward()
    sum(terms_t).backward()
    for i, (h, t) in enumerate(zip(h_in, t_in)):
        if isinstance(h, Tensor) and h.requires_grad:
            hg = np.zeros(h.shape) if h.grad is None else h.grad.numpy()
            tg = np.zeros(h.shape) if t.grad is None else t.grad.numpy()
            np.testing.assert_allclose(hg, tg, atol=atol * 10, rtol=rtol * 10,
                                       err_msg=f"gradient of input {i} differs from torch's")
