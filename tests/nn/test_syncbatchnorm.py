"""SyncBatchNorm in one process: BatchNorm's state and behaviour without a process group or in a world of one,
convert_sync_batchnorm, errors, a float64 gradcheck of the synchronized op, and parity with torch.
(Jobs of 2 and 3 ranks: tests/distributed/test_dist_syncbn.py.)"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from opcheck import gradcheck

import hubkit
import hubkit.distributed as dist
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn.modules.syncbatchnorm import _SyncBatchNorm

RNG = np.random.default_rng(0)
# any number of dims >= 2, 6D included (no BatchNormXd takes it; F.batch_norm and SyncBatchNorm do)
SHAPES = [(4, 3), (3, 3, 5), (2, 3, 4, 3), (2, 3, 2, 3, 2), (2, 3, 2, 1, 2, 2)]


def _rand(*shape):
    return RNG.standard_normal(shape)


def _layer(channels, dtype=np.float64, **options):
    layer = nn.SyncBatchNorm(channels, dtype=dtype, **options)
    if layer.weight is not None:
        layer.weight.array[...] = RNG.uniform(0.5, 1.5, channels)
    if layer.bias is not None:
        layer.bias.array[...] = _rand(channels)
    return layer


def _assert_same_as_batch_norm(layer, shape, steps=2):
    """``layer`` trained ``steps`` steps and then evaluated gives what F.batch_norm gives with copies of its
    state: outputs, every gradient, running statistics and the batch counter."""
    ref = copy.deepcopy(layer, {id(layer.process_group): layer.process_group})  # a group is a handle: share it
    for _ in range(steps):
        x = _rand(*shape)
        g = hubkit.from_numpy(_rand(*shape))
        xs = hubkit.from_numpy(x).requires_grad_()
        xr = hubkit.from_numpy(x.copy()).requires_grad_()
        layer.zero_grad()
        ref.zero_grad()
        y = layer(xs)
        if ref.track_running_stats:
            ref.num_batches_tracked.array += 1
        factor = 1 / float(ref.num_batches_tracked.array) if ref.momentum is None else ref.momentum
        yr = F.batch_norm(xr, ref.running_mean, ref.running_var, ref.weight, ref.bias, True, factor, ref.eps)
        (y * g).sum().backward()
        (yr * g).sum().backward()
        np.testing.assert_allclose(y.numpy(), yr.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(xs.grad.numpy(), xr.grad.numpy(), rtol=1e-12, atol=1e-12)
        for p in ("weight", "bias"):
            if getattr(layer, p) is not None:
                np.testing.assert_allclose(getattr(layer, p).grad.numpy(), getattr(ref, p).grad.numpy(),
                                           rtol=1e-12, atol=1e-12)
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(layer.state_dict()[name].numpy(), value.numpy(), rtol=1e-12, atol=1e-12)
    layer.eval()
    x = hubkit.from_numpy(_rand(*shape))
    stats = (ref.running_mean, ref.running_var) if ref.track_running_stats else (None, None)
    expected = F.batch_norm(x, *stats, ref.weight, ref.bias, not ref.track_running_stats, 0.0, ref.eps)
    np.testing.assert_allclose(layer(x).numpy(), expected.numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- the module and its state


def test_parameters_buffers_keys_and_repr_are_batch_norms():
    layer = nn.SyncBatchNorm(4)
    assert list(layer.state_dict()) == list(nn.BatchNorm2d(4).state_dict())
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert layer.process_group is None and layer.momentum == 0.1 and layer.eps == 1e-5
    assert repr(layer) == ("SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=True, bias=True, "
                           "track_running_stats=True)")
    bare = nn.SyncBatchNorm(3, affine=False, track_running_stats=False)
    assert list(bare.state_dict()) == [] and bare.weight is None and bare.running_mean is None
    assert nn.SyncBatchNorm(3, bias=False).bias is None


def test_loads_a_batch_norm_checkpoint_by_key():
    source = nn.BatchNorm2d(3)
    source.running_mean.array[...] = [1, 2, 3]
    source.weight.array[...] = [4, 5, 6]
    target = nn.SyncBatchNorm(3)
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target.running_mean.numpy(), [1, 2, 3])
    np.testing.assert_array_equal(target.weight.numpy(), [4, 5, 6])


@pytest.mark.parametrize("shape", SHAPES)
def test_without_a_process_group_it_is_batch_norm_for_any_dims(shape):
    assert not dist.is_initialized()
    _assert_same_as_batch_norm(_layer(shape[1]), shape)


@pytest.mark.parametrize("options", [{"momentum": None}, {"affine": False}, {"track_running_stats": False},
                                     {"bias": False}])
def test_without_a_process_group_options_behave_as_in_batch_norm(options):
    _assert_same_as_batch_norm(_layer(3, **options), (4, 3, 2))


def test_bad_inputs_say_what_was_expected():
    layer = nn.SyncBatchNorm(3)
    with pytest.raises(ShapeError, match="at least 2D"):
        layer(hubkit.zeros(3))
    with pytest.raises(ShapeError, match="expected 3 channels"):
        layer(hubkit.zeros(2, 4, 5))
    with pytest.raises(ShapeError, match="non-zero"):
        nn.SyncBatchNorm(0)(hubkit.zeros(2, 0, 5))
    with pytest.raises(ShapeError, match="more than 1 value per channel"):
        layer(hubkit.zeros(1, 3))


# ---------------------------------------------------------------- convert_sync_batchnorm


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Sequential(nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4, momentum=None, bias=False), nn.InstanceNorm2d(4)),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 6), nn.BatchNorm1d(6, affine=False), nn.Linear(6, 2),
    )


def test_convert_sync_batchnorm_keeps_parameters_buffers_keys_and_outputs():
    hubkit.manual_seed(0)
    model = small_cnn()
    x = hubkit.randn(4, 1, 8, 8)
    model(x)  # moves the running statistics off their initial values
    model[3].eval()
    reference = copy.deepcopy(model)
    before = {name: (t.numpy().copy(), t) for name, t in model.state_dict(keep_vars=True).items()}
    params = list(model.parameters())
    group = object()
    converted = nn.SyncBatchNorm.convert_sync_batchnorm(model, process_group=group)
    assert converted is model
    for index in ("1", "3.1", "6"):
        layer = converted.get_submodule(index)
        assert type(layer) is nn.SyncBatchNorm and layer.process_group is group
    assert type(converted[3][2]) is nn.InstanceNorm2d
    assert converted[3][1].momentum is None and converted[3][1].bias is None and not converted[3][1].training
    assert converted[1].training and not converted[6].affine
    after = converted.state_dict(keep_vars=True)
    assert list(after) == list(before)
    for name, (value, tensor) in before.items():
        assert after[name] is tensor, name  # the same Parameter and buffer objects, as torch
        np.testing.assert_array_equal(after[name].numpy(), value)
    assert list(converted.parameters()) == params
    np.testing.assert_allclose(converted(x).numpy(), reference(x).numpy(), rtol=1e-6, atol=1e-6)
    for name, value in reference.state_dict().items():
        np.testing.assert_allclose(converted.state_dict()[name].numpy(), value.numpy(), rtol=1e-6, atol=1e-7)
    converted.eval()
    reference.eval()
    np.testing.assert_allclose(converted(x).numpy(), reference(x).numpy(), rtol=1e-6, atol=1e-6)


def test_convert_sync_batchnorm_of_a_batch_norm_returns_a_new_layer():
    bn = nn.BatchNorm3d(5, eps=1e-3)
    layer = nn.SyncBatchNorm.convert_sync_batchnorm(bn)
    assert type(layer) is nn.SyncBatchNorm and layer is not bn
    assert layer.weight is bn.weight and layer.running_var is bn.running_var and layer.eps == 1e-3
    assert nn.SyncBatchNorm.convert_sync_batchnorm(nn.ReLU()).__class__ is nn.ReLU


def test_convert_sync_batchnorm_refuses_an_uninitialized_lazy_batch_norm():
    with pytest.raises(ArgumentError, match="forward pass first"):
        nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.LazyBatchNorm2d()))
    lazy = nn.LazyBatchNorm2d()
    lazy(hubkit.randn(2, 3, 4, 4))
    assert nn.SyncBatchNorm.convert_sync_batchnorm(lazy).num_features == 3


# ---------------------------------------------------------------- a world of one process


@pytest.fixture
def world_of_one():
    pytest.importorskip("mpi4py")
    dist.init_process_group("mpi", timeout=30)
    yield dist.group.WORLD
    dist.destroy_process_group()


def test_in_a_world_of_one_it_is_batch_norm(world_of_one):
    assert dist.get_world_size() == 1
    _assert_same_as_batch_norm(_layer(3), (4, 3, 5))
    _assert_same_as_batch_norm(_layer(3, process_group=dist.new_group([0])), (2, 3, 2, 2))


@pytest.mark.parametrize("shape", SHAPES[:4])
def test_synchronized_op_gradcheck(world_of_one, shape):
    c = shape[1]
    gradcheck(lambda x, w, b: _SyncBatchNorm(None, None, 0.1, 1e-5, world_of_one)(x, w, b),
              [_rand(*shape), RNG.uniform(0.5, 1.5, c), _rand(c)])
    gradcheck(lambda x: _SyncBatchNorm(None, None, 0.1, 1e-5, world_of_one)(x, None, None), [_rand(*shape)])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_synchronized_op_equals_batch_norm_including_running_stats(world_of_one, dtype):
    x, w, b = _rand(3, 4, 5).astype(dtype), RNG.uniform(0.5, 1.5, 4).astype(dtype), _rand(4).astype(dtype)
    stats = [np.zeros(4, dtype=dtype), np.ones(4, dtype=dtype)]
    ref_stats = [hubkit.from_numpy(s.copy()) for s in stats]
    inputs = [hubkit.from_numpy(a).requires_grad_() for a in (x, w, b)]
    ref_inputs = [hubkit.from_numpy(a.copy()).requires_grad_() for a in (x, w, b)]
    y = _SyncBatchNorm(*stats, 0.1, 1e-5, world_of_one)(*inputs)
    yr = F.batch_norm(ref_inputs[0], *ref_stats, *ref_inputs[1:], True, 0.1, 1e-5)
    g = hubkit.from_numpy(_rand(3, 4, 5).astype(dtype))
    (y * g).sum().backward()
    (yr * g).sum().backward()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert y.dtype == dtype
    np.testing.assert_allclose(y.numpy(), yr.numpy(), rtol=tol, atol=tol)
    for a, r in zip(inputs, ref_inputs):
        np.testing.assert_allclose(a.grad.numpy(), r.grad.numpy(), rtol=tol, atol=tol)
    for s, r in zip(stats, ref_stats):
        np.testing.assert_allclose(s, r.numpy(), rtol=tol, atol=tol)


def test_synchronized_op_needs_two_values_per_channel(world_of_one):
    with pytest.raises(ShapeError, match="more than 1 value per channel .* over all ranks"):
        _SyncBatchNorm(None, None, 0.1, 1e-5, world_of_one)(hubkit.zeros(1, 3), None, None)


@pytest.mark.gpu
def test_synchronized_op_on_the_gpu_equals_the_cpu():
    pytest.importorskip("cupy.cuda.nccl")
    x, w, b = _rand(3, 4, 2, 2), RNG.uniform(0.5, 1.5, 4), _rand(4)
    g = _rand(3, 4, 2, 2)
    results = {}
    for device, backend in (("cpu", "mpi"), ("cuda", "nccl")):
        if backend == "mpi":
            pytest.importorskip("mpi4py")
        dist.init_process_group(backend, rank=0, world_size=1, timeout=30)
        try:
            stats = [hubkit.zeros(4, dtype=hubkit.float64, device=device), hubkit.ones(4, dtype=hubkit.float64,
                                                                                       device=device)]
            inputs = [hubkit.tensor(a, device=device, requires_grad=True) for a in (x, w, b)]
            y = _SyncBatchNorm(stats[0].array, stats[1].array, 0.1, 1e-5, dist.group.WORLD)(*inputs)
            (y * hubkit.tensor(g, device=device)).sum().backward()
            results[device] = [t.cpu().numpy() for t in (y, *stats, *(i.grad for i in inputs))]
        finally:
            dist.destroy_process_group()
    for cpu, cuda in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(cuda, cpu, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- parity with torch


@pytest.mark.parity
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_sync_batch_norm_outside_a_process_group(shape):
    torch = pytest.importorskip("torch")
    c = shape[1]
    theirs = torch.nn.SyncBatchNorm(c, momentum=0.3, dtype=torch.float64)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.normal_()
    ours = nn.SyncBatchNorm(c, momentum=0.3, dtype=hubkit.float64)
    ours.load_state_dict({k: hubkit.from_numpy(v.numpy().copy()) for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    for _ in range(2):
        x, g = _rand(*shape), _rand(*shape)
        xt = torch.from_numpy(x).requires_grad_()
        xh = hubkit.from_numpy(x.copy()).requires_grad_()
        theirs.zero_grad()
        ours.zero_grad()
        yt, yh = theirs(xt), ours(xh)
        (yt * torch.from_numpy(g)).sum().backward()
        (yh * hubkit.from_numpy(g)).sum().backward()
        np.testing.assert_allclose(yh.numpy(), yt.detach().numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(xh.grad.numpy(), xt.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ours.bias.grad.numpy(), theirs.bias.grad.numpy(), rtol=1e-10, atol=1e-10)
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[name].numpy(), value.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parity
def test_convert_sync_batchnorm_converts_the_layers_torch_converts():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    theirs = tnn.Sequential(
        tnn.Conv2d(1, 4, 3), tnn.BatchNorm2d(4), tnn.ReLU(),
        tnn.Sequential(tnn.Conv2d(4, 4, 3), tnn.BatchNorm2d(4, momentum=None, bias=False), tnn.InstanceNorm2d(4)),
        tnn.Flatten(), tnn.Linear(4 * 4 * 4, 6), tnn.BatchNorm1d(6, affine=False), tnn.Linear(6, 2),
    )
    theirs = tnn.SyncBatchNorm.convert_sync_batchnorm(theirs)
    ours = nn.SyncBatchNorm.convert_sync_batchnorm(small_cnn())
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    assert [repr(m) for m in ours.modules()][1:] == [repr(m) for m in theirs.modules()][1:]
    assert list(ours.state_dict()) == list(theirs.state_dict())
