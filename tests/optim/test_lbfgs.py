"""LBFGS: closure-driven steps on the Rosenbrock function, with and without the strong-Wolfe line search."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.optim as optim
from hubkit.errors import ArgumentError

START = np.array([-1.5, 2.0, 0.5, -0.8])


def _rosenbrock(x):
    """sum_i (1 - x_i)^2 + 100 (x_{i+1} - x_i^2)^2 over consecutive pairs: minimum 0 at all ones."""
    return ((1 - x[:-1]) ** 2 + 100 * (x[1:] - x[:-1] ** 2) ** 2).sum()


def _hubkit_run(steps: int, start: np.ndarray = START, **kwargs):
    x = nn.Parameter(hubkit.from_numpy(start.copy()))
    opt = optim.LBFGS([x], **kwargs)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x, opt, losses, closure


def _torch_run(steps: int, **kwargs):
    import torch

    x = torch.nn.Parameter(torch.from_numpy(START.copy()))
    opt = torch.optim.LBFGS([x], **kwargs)

    def closure():
        opt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    losses = [opt.step(closure).item() for _ in range(steps)]
    return x, opt, losses, closure


CASES = [
    {"lr": 0.01, "max_iter": 10},
    {"lr": 0.02, "max_iter": 5, "history_size": 3},
    {"lr": 1.0, "max_iter": 10, "line_search_fn": "strong_wolfe"},
    {"lr": 1.0, "max_iter": 8, "history_size": 2, "line_search_fn": "strong_wolfe", "max_eval": 12},
    {"lr": 0.5, "max_iter": 6, "line_search_fn": "strong_wolfe", "tolerance_change": 1e-4},
]


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", CASES)
def test_lbfgs_on_rosenbrock_matches_torch(kwargs):
    ours, hopt, our_losses, _ = _hubkit_run(4, **kwargs)
    theirs, topt, their_losses, _ = _torch_run(4, **kwargs)
    np.testing.assert_allclose(our_losses, their_losses, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-5)
    hstate, tstate = hopt.state[ours], topt.state[theirs]
    assert hstate["func_evals"] == tstate["func_evals"] and hstate["n_iter"] == tstate["n_iter"]
    assert len(hstate["old_dirs"]) == len(tstate["old_dirs"])
    assert set(hopt.state_dict()["state"][0]) == set(topt.state_dict()["state"][0])


@pytest.mark.parity
def test_torch_lbfgs_state_dict_resumes_in_hubkit():
    import torch

    kwargs = {"lr": 1.0, "max_iter": 4, "history_size": 5, "line_search_fn": "strong_wolfe"}
    theirs, topt, _, tclosure = _torch_run(2, **kwargs)
    x = nn.Parameter(hubkit.from_numpy(theirs.detach().numpy().copy()))
    hopt = optim.LBFGS([x], **kwargs)

    def closure():
        hopt.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    def to_numpy(v):
        if torch.is_tensor(v):
            return v.numpy().copy()
        return [to_numpy(e) for e in v] if isinstance(v, list) else v

    tsd = topt.state_dict()
    hopt.load_state_dict({"state": {i: {k: to_numpy(v) for k, v in s.items()} for i, s in tsd["state"].items()},
                          "param_groups": tsd["param_groups"]})
    for _ in range(2):
        topt.step(tclosure)
        hopt.step(closure)
    np.testing.assert_allclose(x.numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_strong_wolfe_converges_to_the_minimum():
    # from START both libraries stop early on a flat stretch (tolerance_change); from 0 they reach the minimum
    x, opt, losses, _ = _hubkit_run(10, np.zeros(4), lr=1.0, max_iter=20, line_search_fn="strong_wolfe")
    assert losses[-1] < 1e-8 < losses[0]
    np.testing.assert_allclose(x.numpy(), np.ones(4), atol=1e-4)


def test_lbfgs_state_dict_round_trip_continues_the_same_run():
    kwargs = {"lr": 1.0, "max_iter": 3, "history_size": 4, "line_search_fn": "strong_wolfe"}
    straight, _, _, _ = _hubkit_run(4, **kwargs)
    x, opt, _, _ = _hubkit_run(2, **kwargs)
    saved = opt.state_dict()
    resumed = optim.LBFGS([x], **kwargs)
    resumed.load_state_dict(saved)

    def closure():
        resumed.zero_grad()
        loss = _rosenbrock(x)
        loss.backward()
        return loss

    for _ in range(2):
        resumed.step(closure)
    np.testing.assert_allclose(x.numpy(), straight.numpy(), rtol=1e-10, atol=1e-12)


def test_lbfgs_fits_a_small_model_with_a_closure():
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((32, 3))
    targets = inputs @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    hubkit.manual_seed(0)  # the starting weights decide how many iterations the fit needs
    model = nn.Linear(3, 1).double()
    opt = optim.LBFGS(model.parameters(), line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = ((model(hubkit.from_numpy(inputs)) - hubkit.from_numpy(targets)) ** 2).mean()
        loss.backward()
        return loss

    first = float(opt.step(closure))
    assert float(closure()) < 1e-10 < first
    np.testing.assert_allclose(model.bias.numpy(), [0.3], atol=1e-5)


def test_lbfgs_maximize_climbs():
    x = nn.Parameter(hubkit.from_numpy(np.array([3.0])))
    opt = optim.LBFGS([x], lr=0.5, maximize=True)

    def closure():
        opt.zero_grad()
        loss = -((x - 1.0) ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    assert x.item() == pytest.approx(1.0, abs=1e-4)


def test_lbfgs_argument_errors():
    p = nn.Parameter(hubkit.zeros(2))
    with pytest.raises(ArgumentError, match="parameter groups"):
        optim.LBFGS([{"params": [p]}, {"params": [nn.Parameter(hubkit.zeros(1))]}])
    with pytest.raises(ArgumentError, match="strong_wolfe"):
        optim.LBFGS([p], line_search_fn="backtracking")
    with pytest.raises(ArgumentError, match="learning rate"):
        optim.LBFGS([p], lr=-1.0)
    with pytest.raises(ArgumentError, match="closure"):
        optim.LBFGS([p]).step()
