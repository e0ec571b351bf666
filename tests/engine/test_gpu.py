"""The same ops on a CUDA device (cupy) give the CPU's values and gradients. Skipped without a GPU."""

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit import optim

pytestmark = pytest.mark.gpu

CASES = [
    ("broadcast-arith", lambda a, b: (a * b + a / (b * b + 1) - 2.0) ** 2, [(3, 1, 4), (2, 1)]),
    ("matmul", lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("reductions", lambda a: a.sum(1) + a.mean(1) + a.var(1) + a.logsumexp(1) + a.max(1).values, [(3, 4)]),
    ("cumsum-std", lambda a: a.cumsum(0).std(), [(4, 3)]),
    ("activations", lambda a: F.gelu(a) + F.silu(a) + F.softplus(a) + F.hardswish(a) + F.elu(a) + F.tanh(a),
     [(3, 4)]),
    ("softmax", lambda a: F.log_softmax(a, 1) * F.softmax(a, 1), [(3, 5)]),
    ("indexing", lambda a: a[1:, None, ::2] + a[hubkit.tensor([0, 0, 2])][:, :1].sum(), [(3, 4)]),
    ("pad-reflect", lambda a: F.pad(a, (1, 2, 2, 1), mode="reflect"), [(1, 2, 4, 4)]),
    ("layer-norm", lambda a, w, b: F.layer_norm(a, (4,), w, b), [(3, 4), (4,), (4,)]),
    ("cross-entropy", lambda a: F.cross_entropy(a, hubkit.tensor([0, 2, -100], device=a.device),
                                                label_smoothing=0.1), [(3, 4)]),
    ("embedding", lambda w: F.embedding(hubkit.tensor([[0, 2, 2]], device=w.device), w), [(4, 3)]),
    ("gelu-erf-large-inputs", lambda a: F.gelu(a * 4), [(5, 7)]),
    ("linear-3d", lambda a, w, b: F.linear(a, w, b), [(2, 3, 4), (5, 4), (5,)]),
    ("batch-norm-train", lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True),
     [(4, 3, 5, 5), (3,), (3,)]),
    ("batch-norm-train-no-affine-1d", lambda a: F.batch_norm(a * 3 + 1, None, None, training=True), [(6, 4)]),
]


@pytest.mark.parametrize(("name", "fn", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_cuda_matches_cpu(name, fn, shapes):
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    for device in ("cpu", "cuda"):
        xs = [hubkit.tensor(a, device=device, requires_grad=True) for a in arrays]
        out = fn(*xs)
        assert out.device.type == device
        out.sum().backward()
        results.append((out.cpu().detach().numpy(), [x.grad.cpu().numpy() for x in xs]))
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = results
    np.testing.assert_allclose(gpu_out, cpu_out, rtol=1e-4, atol=1e-5)
    for g_gpu, g_cpu in zip(gpu_grads, cpu_grads):
        np.testing.assert_allclose(g_gpu, g_cpu, rtol=1e-4, atol=1e-5)


def test_dropout_on_cuda_is_reproducible_with_manual_seed():
    x = hubkit.ones(1000, device="cuda")
    hubkit.manual_seed(3)
    a = F.dropout(x, 0.5).cpu().numpy()
    hubkit.manual_seed(3)
    b = F.dropout(x, 0.5).cpu().numpy()
    np.testing.assert_array_equal(a, b)
    assert 0.4 < (a == 0).mean() < 0.6


def test_moving_between_devices_is_differentiable():
    x = hubkit.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cuda") * 3
    assert y.device == "cuda:0"
    y.cpu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_running_statistics_and_eval_gradients_match_cpu(training):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((8, 3, 4, 4)) * 2 + 1).astype(np.float32)
    gy = rng.standard_normal(x.shape).astype(np.float32)
    results = []
    for device in ("cpu", "cuda"):
        bn = nn.BatchNorm2d(3, momentum=0.3).to(device)
        bn.running_mean.array[...] = bn.running_mean._xp.asarray([0.5, -1.0, 2.0], dtype=np.float32)
        bn.train(training)
        xt = hubkit.tensor(x, device=device, requires_grad=True)
        for _ in range(2):
            out = bn(xt)
        out.backward(hubkit.tensor(gy, device=device))
        results.append([t.cpu().detach().numpy() for t in (out, xt.grad, bn.weight.grad, bn.bias.grad,
                                                           bn.running_mean, bn.running_var)])  # fmt: skip
    for gpu, cpu in zip(*results[::-1]):
        np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd-momentum-wd": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "sgd-nesterov-maximize": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.8, nesterov=True, maximize=True),
    "sgd-dampening": lambda ps: optim.SGD(ps, lr=0.1, momentum=0.5, dampening=0.3),
    "adam": lambda ps: optim.Adam(ps, lr=0.01),
    "adam-l2-maximize": lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1, maximize=True),
    "adamw": lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    "adam-amsgrad": lambda ps: optim.Adam(ps, lr=0.01, amsgrad=True),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_steps_on_cuda_match_cpu(name):
    rng = np.random.default_rng(3)
    start = rng.standard_normal((4, 5)).astype(np.float32)
    grads = [rng.standard_normal((4, 5)).astype(np.float32) for _ in range(3)]
    finals = []
    for device in ("cpu", "cuda"):
        p = nn.Parameter(hubkit.tensor(start, device=device))
        opt = OPTIMIZERS[name]([p])
        for g in grads:
            p.grad = hubkit.tensor(g, device=device)
            opt.step()
        assert p.device.type == device
        finals.append(p.detach().cpu().numpy())
    np.testing.assert_allclose(finals[1], finals[0], rtol=1e-5, atol=1e-6)
    assert not np.allclose(finals[0], start)
