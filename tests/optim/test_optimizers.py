"""Optimizers: update rules, param groups, state_dict round trips, and 10-step parity with torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.optim as optim
from hubkit.errors import ArgumentError, ArgumentTypeError, HubkitError


def _params(seed: int = 0) -> list[nn.Parameter]:
    rng = np.random.default_rng(seed)
    return [nn.Parameter(hubkit.from_numpy(rng.standard_normal(s).astype(np.float32))) for s in [(3, 4), (4,)]]


def _grads(step: int, shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """Deterministic, step-dependent gradients shared by hubkit and torch runs."""
    rng = np.random.default_rng(1000 + step)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _run(opt_factory, steps: int = 10, seed: int = 0) -> list[np.ndarray]:
    params = _params(seed)
    opt = opt_factory(params)
    for t in range(steps):
        for p, g in zip(params, _grads(t, [p.shape for p in params])):
            p.grad = hubkit.from_numpy(g.copy())
        opt.step()
    return [p.numpy().copy() for p in params]


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.5, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "maximize": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "maximize": True, "eps": 1e-6}),
]


def test_sgd_momentum_matches_the_closed_form_rule():
    p = nn.Parameter(hubkit.tensor([1.0]))
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    buf, value = None, 1.0
    for t in range(5):
        g = float(t + 1)
        p.grad = hubkit.tensor([g])
        opt.step()
        buf = g if buf is None else 0.9 * buf + g
        value -= 0.1 * buf
        assert p.item() == pytest.approx(value, abs=1e-6)


def test_adam_first_step_moves_each_weight_by_lr():
    p = nn.Parameter(hubkit.tensor([1.0, -2.0, 3.0]))
    opt = optim.Adam([p], lr=0.01)
    p.grad = hubkit.tensor([5.0, -0.5, 0.001])
    opt.step()
    np.testing.assert_allclose(p.numpy(), [0.99, -1.99, 2.99], rtol=1e-5)


def test_adamw_decays_weights_without_gradient_signal():
    p = nn.Parameter(hubkit.tensor([2.0]))
    opt = optim.AdamW([p], lr=0.1, weight_decay=0.5)
    p.grad = hubkit.tensor([0.0])
    opt.step()
    assert p.item() == pytest.approx(2.0 * (1 - 0.1 * 0.5), rel=1e-6)
    q = nn.Parameter(hubkit.tensor([2.0]))
    adam = optim.Adam([q], lr=0.1, weight_decay=0.5)
    q.grad = hubkit.tensor([0.0])
    adam.step()
    assert q.item() == pytest.approx(2.0 - 0.1, rel=1e-5)  # L2 folded into the gradient: a full Adam step


@pytest.mark.parametrize("name,kwargs", CASES)
def test_optimizers_minimize_a_quadratic(name, kwargs):
    kwargs = {k: v for k, v in kwargs.items() if k != "maximize"}
    target = np.array([1.0, -2.0, 0.5], np.float32)
    p = nn.Parameter(hubkit.zeros(3))
    opt = getattr(optim, name)([p], **kwargs)
    start = float(((p.numpy() - target) ** 2).sum())
    for _ in range(300):
        opt.zero_grad()
        loss = ((p - hubkit.from_numpy(target)) ** 2).sum()
        loss.backward()
        opt.step()
    assert float(((p.numpy() - target) ** 2).sum()) < 0.1 * start


def test_updates_are_in_place_and_build_no_graph():
    params = _params()
    ids = [id(p.array) for p in params]
    opt = optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = hubkit.ones(*p.shape)
    opt.step()
    assert [id(p.array) for p in params] == ids
    assert all(p.is_leaf and p.grad_fn is None for p in params)


def test_parameters_without_grad_are_skipped():
    a, b = _params()
    before = b.numpy().copy()
    opt = optim.SGD([a, b], lr=1.0, momentum=0.9)
    a.grad = hubkit.ones(*a.shape)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), before)
    assert b not in opt.state


def test_param_groups_use_their_own_hyperparameters():
    a, b = _params()
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 1.0}], lr=0.1)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 1.0
    a0, b0 = a.numpy().copy(), b.numpy().copy()
    a.grad, b.grad = hubkit.ones(*a.shape), hubkit.ones(*b.shape)
    opt.step()
    np.testing.assert_allclose(a0 - a.numpy(), 0.1, rtol=1e-5)
    np.testing.assert_allclose(b0 - b.numpy(), 1.0, rtol=1e-5)
    c = nn.Parameter(hubkit.zeros(2))
    opt.add_param_group({"params": [c], "momentum": 0.5})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.5
    with pytest.raises(ArgumentError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})


def test_named_parameters_are_accepted_and_recorded():
    lin = nn.Linear(2, 2)
    opt = optim.Adam(lin.named_parameters())
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert opt.param_groups[0]["params"][0] is lin.weight


def test_bad_arguments_raise_hubkit_errors():
    with pytest.raises(ArgumentError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ArgumentTypeError, match="iterable"):
        optim.SGD(nn.Parameter(hubkit.zeros(1)), lr=0.1)
    with pytest.raises(ArgumentTypeError, match="sets"):
        optim.SGD({nn.Parameter(hubkit.zeros(1))}, lr=0.1)
    with pytest.raises(ArgumentError, match="Nesterov"):
        optim.SGD(_params(), lr=0.1, nesterov=True)
    with pytest.raises(ArgumentError, match="beta"):
        optim.Adam(_params(), betas=(1.0, 0.9))
    with pytest.raises(HubkitError, match="learning rate"):
        optim.RMSprop(_params(), lr=-1)


def test_zero_grad():
    params = _params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = hubkit.ones(*p.shape)
    opt.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)


@pytest.mark.parametrize("name,kwargs", CASES)
def test_state_dict_round_trip_continues_the_same_trajectory(name, kwargs):
    factory = getattr(optim, name)
    straight = _run(lambda ps: factory(ps, **kwargs), steps=8)

    params = _params()
    opt = factory(params, **kwargs)
    for t in range(4):
        for p, g in zip(params, _grads(t, [p.shape for p in params])):
            p.grad = hubkit.from_numpy(g.copy())
        opt.step()
    saved = opt.state_dict()
    assert set(saved) == {"state", "param_groups"} and saved["param_groups"][0]["params"] == [0, 1]
    assert all(s["step"].dtype == np.float32 for s in saved["state"].values() if "step" in s)
    saved_np = {"state": {i: {k: (v.numpy().copy() if isinstance(v, hubkit.Tensor) else v) for k, v in s.items()}
                          for i, s in saved["state"].items()},
                "param_groups": saved["param_groups"]}
    resumed = factory(params, **{**kwargs, "lr": 123.0})
    resumed.load_state_dict(saved_np)
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]
    for t in range(4, 8):
        for p, g in zip(params, _grads(t, [p.shape for p in params])):
            p.grad = hubkit.from_numpy(g.copy())
        resumed.step()
    for a, b in zip(straight, params):
        np.testing.assert_allclose(b.numpy(), a, rtol=1e-6, atol=1e-7)


def test_load_state_dict_rejects_other_group_layouts():
    opt = optim.SGD(_params(), lr=0.1)
    other = optim.SGD([{"params": _params()[:1]}, {"params": _params()[1:]}], lr=0.1)
    with pytest.raises(ArgumentError, match="parameter groups"):
        opt.load_state_dict(other.state_dict())
    with pytest.raises(ArgumentError, match="'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})


def test_clip_grad_norm_scales_all_gradients_jointly():
    a, b = nn.Parameter(hubkit.zeros(2)), nn.Parameter(hubkit.zeros(1))
    a.grad, b.grad = hubkit.tensor([3.0, 0.0]), hubkit.tensor([4.0])
    total = nn.utils.clip_grad_norm_([a, b], max_norm=1.0)
    assert total.item() == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([a.grad.numpy(), b.grad.numpy()]), [0.6, 0.0, 0.8], rtol=1e-5)
    total = nn.utils.clip_grad_norm_([a, b], max_norm=10.0)
    assert total.item() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)
    assert nn.utils.clip_grad_norm_([a, b], 1.0, norm_type=math.inf).item() == pytest.approx(0.8, rel=1e-5)
    a.grad = hubkit.tensor([math.inf, 0.0])
    with pytest.raises(HubkitError, match="non-finite"):
        nn.utils.clip_grad_norm_([a, b], 1.0, error_if_nonfinite=True)


def test_clip_grad_value_and_vector_round_trip():
    lin = nn.Linear(3, 2)
    lin.weight.grad = hubkit.full((2, 3), 5.0)
    nn.utils.clip_grad_value_(lin.parameters(), 0.5)
    assert np.all(lin.weight.grad.numpy() == 0.5)
    vec = nn.utils.parameters_to_vector(lin.parameters())
    assert vec.shape == (8,)
    nn.utils.vector_to_parameters(vec * 2, lin.parameters())
    np.testing.assert_allclose(nn.utils.parameters_to_vector(lin.parameters()).numpy(), vec.numpy() * 2)


# ---------------------------------------------------------------- parity with torch


def _torch_run(name: str, kwargs: dict, steps: int = 10, seed: int = 0):
    import torch

    params = [torch.nn.Parameter(torch.from_numpy(p.numpy().copy())) for p in _params(seed)]
    opt = getattr(torch.optim, name)(params, **kwargs)
    for t in range(steps):
        for p, g in zip(params, _grads(t, [tuple(p.shape) for p in params])):
            p.grad = torch.from_numpy(g.copy())
        opt.step()
    return [p.detach().numpy().copy() for p in params], opt


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", CASES)
def test_ten_steps_agree_with_torch(name, kwargs):
    ours = _run(lambda ps: getattr(optim, name)(ps, **kwargs))
    theirs, _ = _torch_run(name, kwargs)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", CASES)
def test_state_dict_structure_matches_torch_and_torch_state_loads(name, kwargs):
    theirs, topt = _torch_run(name, kwargs, steps=3)
    params = _params()
    opt = getattr(optim, name)(params, **kwargs)
    for t in range(3):
        for p, g in zip(params, _grads(t, [p.shape for p in params])):
            p.grad = hubkit.from_numpy(g.copy())
        opt.step()
    ours, tsd = opt.state_dict(), topt.state_dict()
    assert sorted(ours["state"]) == sorted(tsd["state"])
    for i in tsd["state"]:
        assert set(ours["state"][i]) == set(tsd["state"][i])
        for k, v in tsd["state"][i].items():
            np.testing.assert_allclose(ours["state"][i][k].numpy(), v.numpy(), rtol=1e-5, atol=1e-6)
    assert set(ours["param_groups"][0]) <= set(tsd["param_groups"][0]) | {"decoupled_weight_decay"}
    # a torch optimizer's state (converted to numpy) resumes in hubkit
    fresh = [nn.Parameter(hubkit.from_numpy(t.copy())) for t in theirs]
    resumed = getattr(optim, name)(fresh, **kwargs)
    resumed.load_state_dict({"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in tsd["state"].items()},
                             "param_groups": tsd["param_groups"]})
    assert resumed.param_groups[0]["lr"] == kwargs["lr"]


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adadelta_state_skips_the_subnormal_range_without_changing_the_update(compiled, dtype, monkeypatch):
    """Units that stop getting gradients: their state decays by rho each step and is set to 0 below the smallest
    normal number (subnormal arithmetic is 10-100x slower on CPUs) while the parameters follow the plain rule
    (no flushing) to the last bit."""
    from hubkit.kernels import _jit

    if compiled and not _jit.available():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(_jit, "_enabled", compiled)
    monkeypatch.setattr(_jit, "MIN_WORK", 0)
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(4096).astype(dtype)
    live = np.arange(4096) % 4 == 0  # three units in four get gradients only on the first step
    p = hubkit.tensor(p0.copy(), requires_grad=True)
    opt = optim.Adadelta([p], lr=1.0, rho=0.5, eps=1e-6)
    ref_p, sq, acc = p0.copy(), np.zeros_like(p0), np.zeros_like(p0)
    rho, eps = dtype(0.5), dtype(1e-6)
    saw_subnormal = False
    tiny = np.finfo(dtype).tiny
    for step in range(1200 if dtype == np.float64 else 160):
        g = rng.standard_normal(4096).astype(dtype) * (live | (step == 0))
        p.grad = hubkit.tensor(g)
        opt.step()
        sq = sq * rho + (1 - rho) * (g * g)  # the rule without flushing
        delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * g
        acc = acc * rho + (1 - rho) * (delta * delta)
        ref_p = ref_p - delta
        saw_subnormal |= bool(((sq > 0) & (sq < tiny)).any())
        state = opt.state[p]
        for name in ("square_avg", "acc_delta"):
            values = state[name].numpy()
            assert not ((values > 0) & (values < tiny)).any(), f"{name} holds subnormal numbers at step {step}"
    assert saw_subnormal  # the plain rule did go through the subnormal range
    np.testing.assert_array_equal(p.detach().numpy(), ref_p)
    assert (opt.state[p]["square_avg"].numpy()[~live] == 0).all()
