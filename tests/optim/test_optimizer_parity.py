"""Every optimizer against torch: 10 steps of a small float64 MLP on a fixed loss, state dicts both ways.

The same initial weights go into a hubkit and a torch MLP; each step both compute the loss on the same
batch, backpropagate, and step. After 10 steps the weights must agree within 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.optim as optim

STEPS = 10


def _weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"0.weight": rng.standard_normal((8, 4)) * 0.5, "0.bias": rng.standard_normal(8) * 0.1,
            "2.weight": rng.standard_normal((3, 8)) * 0.5, "2.bias": rng.standard_normal(3) * 0.1}


def _batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((5, 4)), rng.standard_normal((5, 3))


def _hubkit_mlp() -> nn.Module:
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    for name, p in model.named_parameters():
        p.array[...] = _weights()[name]
    return model


def _torch_mlp():
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(_weights()[name]))
    return model


def _hubkit_steps(model: nn.Module, opt: optim.Optimizer, steps: range) -> None:
    for t in steps:
        x, y = _batch(t)
        opt.zero_grad()
        loss = ((model(hubkit.from_numpy(x)) - hubkit.from_numpy(y)) ** 2).mean()
        loss.backward()
        opt.step()


def _torch_steps(model, opt, steps: range) -> None:
    import torch

    for t in steps:
        x, y = _batch(t)
        opt.zero_grad()
        loss = ((model(torch.from_numpy(x)) - torch.from_numpy(y)) ** 2).mean()
        loss.backward()
        opt.step()


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.5, "maximize": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1, "foreach": False}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "foreach": True}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.3, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.9, "maximize": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.8, "eps": 1e-5, "weight_decay": 0.1}),
    ("Adadelta", {"lr": 0.5, "maximize": True, "foreach": False}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    ("Adamax", {"lr": 0.01, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True, "maximize": True}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "betas": (0.9, 0.9), "weight_decay": 0.1}),  # rectified from step 3 on
    ("RAdam", {"lr": 0.01, "betas": (0.8, 0.9), "weight_decay": 0.1, "decoupled_weight_decay": True,
               "maximize": True}),
    ("ASGD", {"lr": 0.05}),
    ("ASGD", {"lr": 0.05, "lambd": 0.01, "alpha": 0.5, "t0": 3, "weight_decay": 0.1}),
    ("ASGD", {"lr": 0.05, "t0": 2, "maximize": True}),
    ("Rprop", {}),
    ("Rprop", {"lr": 0.05, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.2)}),
    ("Rprop", {"lr": 0.05, "maximize": True}),
]
IDS = [f"{name}-{'-'.join(kwargs) or 'default'}" for name, kwargs in CASES]


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_ten_mlp_steps_agree_with_torch(name, kwargs):
    import torch

    ours, theirs = _hubkit_mlp(), _torch_mlp()
    hopt = getattr(optim, name)(ours.parameters(), **kwargs)
    topt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    _hubkit_steps(ours, hopt, range(STEPS))
    _torch_steps(theirs, topt, range(STEPS))
    for (key, a), b in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5, err_msg=key)
    # the state holds the same buffers under the same names
    hsd, tsd = hopt.state_dict(), topt.state_dict()
    assert sorted(hsd["state"]) == sorted(tsd["state"])
    for i, tstate in tsd["state"].items():
        assert set(hsd["state"][i]) == set(tstate)
        for key, value in tstate.items():
            np.testing.assert_allclose(np.asarray(hsd["state"][i][key].numpy()), value.numpy(), rtol=1e-5,
                                       atol=1e-6, err_msg=key)
    assert hsd["param_groups"] == tsd["param_groups"]


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_torch_state_dict_resumes_in_hubkit(name, kwargs):
    """5 torch steps, its state_dict converted to numpy and loaded into hubkit, 5 more steps on each side."""
    import torch

    theirs = _torch_mlp()
    topt = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    _torch_steps(theirs, topt, range(5))
    ours = _hubkit_mlp()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        a.array[...] = b.detach().numpy()
    tsd = topt.state_dict()
    converted = {"state": {i: {k: v.numpy().copy() if torch.is_tensor(v) else v for k, v in s.items()}
                           for i, s in tsd["state"].items()},
                 "param_groups": tsd["param_groups"]}
    hopt = getattr(optim, name)(ours.parameters(), **{**kwargs, "lr": 123.0})
    hopt.load_state_dict(converted)
    assert hopt.param_groups[0]["lr"] == kwargs.get("lr", topt.defaults["lr"])
    _torch_steps(theirs, topt, range(5, STEPS))
    _hubkit_steps(ours, hopt, range(5, STEPS))
    for a, b in zip(ours.parameters(), theirs.parameters()):
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name,kwargs", CASES, ids=IDS)
def test_state_dict_round_trip_continues_the_same_trajectory(name, kwargs):
    straight = _hubkit_mlp()
    _hubkit_steps(straight, getattr(optim, name)(straight.parameters(), **kwargs), range(STEPS))

    model = _hubkit_mlp()
    opt = getattr(optim, name)(model.parameters(), **kwargs)
    _hubkit_steps(model, opt, range(5))
    saved = opt.state_dict()
    as_numpy = {"state": {i: {k: v.numpy().copy() if isinstance(v, hubkit.Tensor) else v for k, v in s.items()}
                          for i, s in saved["state"].items()},
                "param_groups": saved["param_groups"]}
    resumed = getattr(optim, name)(model.parameters(), **kwargs)
    resumed.load_state_dict(as_numpy)
    _hubkit_steps(model, resumed, range(5, STEPS))
    for a, b in zip(model.parameters(), straight.parameters()):
        # float32 scalar state (NAdam mu_product, ASGD eta and mu) loads in the parameter dtype, as in torch,
        # so the resumed run rounds those scalars differently (relative 1e-8)
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- SparseAdam on embedding rows


def _lookups(step: int) -> np.ndarray:
    return np.random.default_rng(7 + step).integers(0, 6, size=(4,))  # 10 rows: some never looked up


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", [{}, {"lr": 0.05, "betas": (0.8, 0.9)}, {"lr": 0.05, "maximize": True}])
def test_sparse_adam_on_embedding_rows_matches_torch_sparse_gradients(kwargs):
    import torch

    weight = np.random.default_rng(3).standard_normal((10, 3))
    ours = nn.Embedding(10, 3).double()
    ours.weight.array[...] = weight
    theirs = torch.nn.Embedding(10, 3, sparse=True).double()
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(weight))
    hopt, topt = optim.SparseAdam(ours.parameters(), **kwargs), torch.optim.SparseAdam(theirs.parameters(), **kwargs)
    target = np.random.default_rng(4).standard_normal(3)
    for t in range(STEPS):
        idx = _lookups(t)
        hopt.zero_grad()
        ((ours(hubkit.from_numpy(idx)) - hubkit.from_numpy(target)) ** 2).sum().backward()
        hopt.step()
        topt.zero_grad()
        ((theirs(torch.from_numpy(idx)) - torch.from_numpy(target)) ** 2).sum().backward()
        topt.step()
    np.testing.assert_allclose(ours.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-5, atol=1e-5)
    untouched = sorted(set(range(10)) - {int(i) for t in range(STEPS) for i in _lookups(t)})
    assert untouched and np.array_equal(ours.weight.numpy()[untouched], weight[untouched])
    tstate = topt.state_dict()["state"][0]
    hstate = hopt.state_dict()["state"][0]
    assert hstate["step"] == tstate["step"] == STEPS
    np.testing.assert_allclose(hstate["exp_avg_sq"].numpy(), tstate["exp_avg_sq"].numpy(), rtol=1e-5, atol=1e-8)


def test_sparse_adam_leaves_rows_without_gradient_alone():
    emb = nn.Embedding(5, 2)
    before = emb.weight.numpy().copy()
    opt = optim.SparseAdam(emb.parameters(), lr=0.1)
    emb(hubkit.tensor([1, 3])).sum().backward()
    opt.step()
    after = emb.weight.numpy()
    np.testing.assert_array_equal(after[[0, 2, 4]], before[[0, 2, 4]])
    np.testing.assert_allclose(after[[1, 3]], before[[1, 3]] - 0.1, rtol=1e-5)  # Adam's first step is lr
    assert np.all(opt.state[emb.weight]["exp_avg"].numpy()[[0, 2, 4]] == 0)
