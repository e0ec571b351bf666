"""Lazy modules (nn.LazyLinear, LazyConv*, LazyConvTranspose*, LazyBatchNorm*, LazyInstanceNorm*) and
UninitializedParameter: shapes inferred at the first forward, the class becoming the eager one, optimizers
built before the first forward, state dicts before and after, and torch's outputs once weights are copied."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError, ShapeError, StateDictError
from hubkit.nn.parameter import UninitializedBuffer, UninitializedParameter, is_lazy

# (lazy class name, constructor args, kwargs, input shape, eager class name)
CASES = [
    ("LazyLinear", (5,), {}, (3, 4), "Linear"),
    ("LazyLinear", (2,), {"bias": False}, (2, 3, 6), "Linear"),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 8), "Conv1d"),
    ("LazyConv2d", (4, 3), {"stride": 2, "groups": 2}, (2, 6, 7, 7), "Conv2d"),
    ("LazyConv2d", (3, 2), {"bias": False}, (3, 6, 6), "Conv2d"),
    ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 4), "Conv3d"),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 3, 5), "ConvTranspose1d"),
    ("LazyConvTranspose2d", (4, 3), {"groups": 2, "output_padding": 1, "stride": 2}, (2, 4, 5, 5),
     "ConvTranspose2d"),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 3, 3, 3), "ConvTranspose3d"),
    ("LazyBatchNorm1d", (), {}, (4, 3), "BatchNorm1d"),
    ("LazyBatchNorm2d", (), {"momentum": 0.2}, (4, 3, 5, 5), "BatchNorm2d"),
    ("LazyBatchNorm3d", (), {"affine": False}, (2, 3, 2, 3, 3), "BatchNorm3d"),
    ("LazyInstanceNorm1d", (), {}, (2, 3, 7), "InstanceNorm1d"),
    ("LazyInstanceNorm2d", (), {"track_running_stats": False}, (2, 3, 4, 4), "InstanceNorm2d"),
    ("LazyInstanceNorm3d", (), {"affine": False}, (2, 3, 3, 3, 3), "InstanceNorm3d"),
]


def _input(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name, args, kwargs, shape, eager", CASES)
def test_first_forward_materializes_and_becomes_the_eager_module(name, args, kwargs, shape, eager):
    m = getattr(nn, name)(*args, **kwargs)
    assert m.has_uninitialized_params()
    lazy = [k for k, v in m.state_dict().items() if is_lazy(v)]
    assert lazy and all(isinstance(m.state_dict()[k], (UninitializedParameter, UninitializedBuffer)) for k in lazy)
    params = list(m.parameters())
    y = m(hubkit.tensor(_input(shape), dtype=hubkit.float32))
    assert type(m) is getattr(nn, eager)
    assert not hasattr(m, "_initialize_hook")
    assert [p is q for p, q in zip(params, m.parameters())] == [True] * len(params)  # the same objects
    assert all(type(p) is nn.Parameter for p in m.parameters())
    assert not any(is_lazy(v) for v in m.state_dict().values())
    assert y.dtype == hubkit.float32
    again = m(hubkit.tensor(_input(shape, 1), dtype=hubkit.float32))
    assert again.shape == y.shape


def test_inferred_sizes_and_reprs():
    m = nn.LazyLinear(3)
    assert repr(m) == "LazyLinear(in_features=0, out_features=3, bias=True)"
    m(hubkit.ones(2, 4))
    assert repr(m) == "Linear(in_features=4, out_features=3, bias=True)" and m.weight.shape == (3, 4)
    c = nn.LazyConvTranspose2d(4, 3, groups=2)
    assert repr(c) == "LazyConvTranspose2d(0, 4, kernel_size=(3, 3), stride=(1, 1), groups=2)"
    c(hubkit.ones(1, 2, 5, 5))
    assert c.in_channels == 2 and c.weight.shape == (2, 2, 3, 3)
    b = nn.LazyBatchNorm2d()
    assert repr(b).startswith("LazyBatchNorm2d(0, eps=1e-05")
    b(hubkit.randn(2, 3, 4, 4))
    assert b.num_features == 3 and b.running_mean.shape == (3,) and b.num_batches_tracked.item() == 1
    i = nn.LazyInstanceNorm1d()
    assert i.affine and i.track_running_stats  # torch's lazy defaults, unlike InstanceNorm1d's
    i(hubkit.randn(3, 7))  # unbatched (C, L): C from dim 0
    assert i.num_features == 3 and i.weight.shape == (3,)


def test_uninitialized_parameter_behaviour():
    p = UninitializedParameter(dtype=hubkit.float64)
    assert repr(p) == "<UninitializedParameter>" and p.requires_grad and p.dtype == hubkit.float64
    with pytest.raises(ShapeError, match="Can't access the shape of an uninitialized parameter"):
        p.shape  # noqa: B018
    assert repr(copy.deepcopy(p)) == "<UninitializedParameter>"
    restored = pickle.loads(pickle.dumps(p))
    assert isinstance(restored, UninitializedParameter) and restored.dtype == hubkit.float64
    p.materialize((2, 3))
    assert type(p) is nn.Parameter and p.shape == (2, 3) and p.dtype == hubkit.float64
    b = UninitializedBuffer()
    b.materialize((4,), dtype=hubkit.float64)
    assert type(b) is hubkit.Tensor and b.shape == (4,) and b.dtype == hubkit.float64 and not b.requires_grad


def test_dtype_set_before_the_first_forward_is_kept():
    m = nn.Sequential(nn.LazyLinear(4), nn.ReLU(), nn.LazyLinear(2)).double()
    m(hubkit.randn(3, 5, dtype=hubkit.float64))
    assert all(p.dtype == hubkit.float64 for p in m.parameters())
    m = nn.LazyConv2d(2, 3, dtype=hubkit.float64)
    m(hubkit.randn(1, 3, 4, 4, dtype=hubkit.float64))
    assert m.weight.dtype == hubkit.float64


def test_optimizer_created_before_the_first_forward_updates_the_materialized_parameters():
    m = nn.Sequential(nn.LazyLinear(4), nn.Tanh(), nn.LazyLinear(1))
    opt = hubkit.optim.Adam(m.parameters(), lr=0.05)
    x, y = hubkit.randn(16, 3), hubkit.randn(16, 1)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((m(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert opt.state[m[0].weight]["exp_avg"].shape == (4, 3)


def test_state_dict_round_trips():
    trained = nn.LazyLinear(3)
    trained(hubkit.ones(2, 4))
    fresh = nn.LazyLinear(3)
    result = fresh.load_state_dict(trained.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert type(fresh) is nn.LazyLinear and fresh.weight.shape == (3, 4)  # lazy class until it runs
    np.testing.assert_array_equal(fresh.weight.numpy(), trained.weight.numpy())
    out = fresh(hubkit.ones(2, 4))
    assert type(fresh) is nn.Linear and fresh.in_features == 4
    np.testing.assert_array_equal(out.detach().numpy(), trained(hubkit.ones(2, 4)).detach().numpy())
    # lazy into lazy: nothing to load, nothing missing
    other = nn.LazyLinear(3)
    assert other.load_state_dict(nn.LazyLinear(3).state_dict()).missing_keys == []
    assert other.has_uninitialized_params()
    # uninitialized into initialized: a shape error, as in torch
    with pytest.raises(StateDictError, match="size mismatch for weight"):
        trained.load_state_dict(nn.LazyLinear(3).state_dict())


def test_lazy_norm_and_conv_load_then_run():
    bn = nn.LazyBatchNorm1d()
    source = nn.BatchNorm1d(3)
    source.running_mean.array[...] = [1.0, 2.0, 3.0]
    bn.load_state_dict(source.state_dict())
    bn.eval()
    bn(hubkit.randn(4, 3))
    assert type(bn) is nn.BatchNorm1d and bn.num_features == 3
    assert bn.running_mean.tolist() == [1.0, 2.0, 3.0]
    conv = nn.LazyConv2d(4, 3, groups=2)
    conv.load_state_dict(nn.Conv2d(6, 4, 3, groups=2).state_dict())
    conv(hubkit.randn(1, 6, 5, 5))
    assert conv.in_channels == 6


def test_deepcopy_before_the_first_forward_gives_an_independent_lazy_module():
    m = nn.LazyLinear(2)
    twin = copy.deepcopy(m)
    m(hubkit.ones(1, 3))
    assert type(twin) is nn.LazyLinear and twin.has_uninitialized_params()
    twin(hubkit.ones(1, 5))
    assert twin.weight.shape == (2, 5) and m.weight.shape == (2, 3)


def test_bad_inputs():
    with pytest.raises(ShapeError, match=r"Expected 3D \(unbatched\) or 4D \(batched\) input to LazyConv2d"):
        nn.LazyConv2d(2, 3)(hubkit.ones(2, 3))
    with pytest.raises(ArgumentError, match="in_channels \\(3\\) of the input must be divisible by groups \\(2\\)"):
        nn.LazyConv2d(4, 3, groups=2)(hubkit.ones(1, 3, 5, 5))
    with pytest.raises(ArgumentError, match="out_channels \\(3\\) must be divisible by groups \\(2\\)"):
        nn.LazyConv1d(3, 3, groups=2)


@pytest.mark.parity
@pytest.mark.parametrize("name, args, kwargs, shape, eager", CASES)
def test_matches_torch_after_copying_the_materialized_weights(name, args, kwargs, shape, eager):
    import torch

    x = _input(shape)
    h = getattr(nn, name)(*args, **kwargs).double()
    t = getattr(torch.nn, name)(*args, **kwargs).double()
    with hubkit.no_grad():
        h(hubkit.tensor(x))
    with torch.no_grad():
        t(torch.from_numpy(x))
    assert type(t).__name__ == type(h).__name__ == eager
    assert list(h.state_dict()) == list(t.state_dict())
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in h.state_dict().items()})
    hx, tx = hubkit.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()
    hy, ty = h(hx), t(tx)
    np.testing.assert_allclose(hy.detach().numpy(), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    w = np.random.default_rng(5).standard_normal(hy.shape)
    (hy * hubkit.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (k, hp), (_, tp) in zip(h.named_parameters(), t.named_parameters()):
        np.testing.assert_allclose(hp.grad.numpy(), tp.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)


@pytest.mark.parity
def test_optimizer_before_dry_run_trains_like_torch():
    import torch

    def build(lib):
        return lib.nn.Sequential(lib.nn.LazyLinear(6), lib.nn.Tanh(), lib.nn.LazyLinear(2)).double()

    h, t = build(hubkit), build(torch)
    h_opt = hubkit.optim.SGD(h.parameters(), lr=0.1, momentum=0.9)
    t_opt = torch.optim.SGD(t.parameters(), lr=0.1, momentum=0.9)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    with hubkit.no_grad():
        h(hubkit.tensor(x))  # the dry run
    with torch.no_grad():
        t(torch.from_numpy(x))
    t.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in h.state_dict().items()})
    for _ in range(10):
        for model, opt, lib in ((h, h_opt, hubkit), (t, t_opt, torch)):
            opt.zero_grad()
            ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
            opt.step()
    for (k, hp), (_, tp) in zip(h.state_dict().items(), t.state_dict().items()):
        np.testing.assert_allclose(hp.numpy(), tp.numpy(), rtol=1e-5, atol=1e-8, err_msg=k)
