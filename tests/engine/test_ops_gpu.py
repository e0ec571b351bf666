"""Every table-driven op case of test_ops_*.py on a CUDA device (cupy) gives the CPU's values and gradients.
Skipped without a GPU. Tensors the cases build inside (index tensors, masks) land on the GPU through
``set_default_device``."""

import numpy as np
import pytest
from opcases import case_ids, rng_for
from test_linalg_namespace import CASES as LINALG_NAMESPACE
from test_ops_linalg_more import CASES as LINALG
from test_ops_pointwise import CASES as POINTWISE
from test_ops_reduction_more import CASES as REDUCTION
from test_ops_shape_more import CASES as SHAPE

import hubkit

pytestmark = pytest.mark.gpu

CASES = POINTWISE + REDUCTION + SHAPE + LINALG + LINALG_NAMESPACE


def _run(fn, arrays, device):
    hubkit.set_default_device(device)
    try:
        xs = [hubkit.tensor(a, device=device, requires_grad=a.dtype.kind == "f") for a in arrays]
        result = fn(hubkit, *xs)
        outs = [result] if isinstance(result, hubkit.Tensor) else [r for r in result if isinstance(r, hubkit.Tensor)]
        outs = [o for o in outs if o.dtype.kind == "f"]
        loss = None
        for k, o in enumerate(outs):
            if o.requires_grad:
                weights = hubkit.tensor(np.random.default_rng(k).standard_normal(o.shape), device=device)
                term = (o * weights).sum()
                loss = term if loss is None else loss + term
        if loss is not None:
            loss.backward()
        return [o.detach().cpu().numpy() for o in outs], [None if x.grad is None else x.grad.cpu().numpy()
                                                         for x in xs]
    finally:
        hubkit.set_default_device(None)


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=case_ids(CASES))
def test_cuda_matches_cpu(name, fn, make):
    made = make(rng_for(name))
    arrays = [np.asarray(made)] if isinstance(made, np.ndarray) else [np.asarray(a) for a in made]
    cpu_out, cpu_grad = _run(fn, arrays, "cpu")
    gpu_out, gpu_grad = _run(fn, arrays, "cuda")
    for a, b in zip(cpu_out, gpu_out):
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10, err_msg=f"{name}: forward differs on CUDA")
    for a, b in zip(cpu_grad, gpu_grad):
        if a is None:
            assert b is None
        else:
            np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-10, err_msg=f"{name}: gradient differs on CUDA")
