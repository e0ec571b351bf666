"""Adafactor and Muon: torch 2.14's update rules (10 steps of a float64 MLP against torch within 1e-5, and much
closer in practice), state dicts both ways, argument checks, and Muon's bfloat16 Newton-Schulz."""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
import hubkit.optim as optim
from hubkit.errors import ArgumentError, ShapeError
from hubkit.optim.adafactor import lerp_
from hubkit.optim.muon import round_to_bfloat16, zeropower_via_newtonschulz

STEPS = 10


@pytest.fixture(autouse=True)
def _leave_the_global_generator_as_found():
    # these tests build models (drawing initial weights); later files' unseeded tests must see the same stream
    state = hubkit.get_rng_state()
    yield
    hubkit.set_rng_state(state)


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"0.weight": rng.standard_normal((8, 4)) * 0.5, "0.bias": rng.standard_normal(8) * 0.1,
            "2.weight": rng.standard_normal((3, 8)) * 0.5, "2.bias": rng.standard_normal(3) * 0.1}


def _batch(step: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + step)
    return rng.standard_normal((5, 4)), rng.standard_normal((5, 3))


def _train(lib, name, kwargs, only_matrices, steps=range(STEPS), model=None, opt=None):
    if model is None:
        model = lib.nn.Sequential(lib.nn.Linear(4, 8), lib.nn.Tanh(), lib.nn.Linear(8, 3)).double()
        with lib.no_grad():
            for n, p in model.named_parameters():
                p.copy_(lib.tensor(_weights()[n]))
    if opt is None:
        params = [p for n, p in model.named_parameters() if not only_matrices or p.ndim == 2]
        opt = getattr(lib.optim, name)(params, **kwargs)
    for t in steps:
        x, y = _batch(t)
        opt.zero_grad()
        ((model(lib.tensor(x)) - lib.tensor(y)) ** 2).mean().backward()
        opt.step()
    return model, opt


CASES = [
    ("Adafactor", {}),
    ("Adafactor", {"lr": 0.05, "weight_decay": 0.1, "maximize": True, "d": 1.5}),
    ("Adafactor", {"eps": (1e-30, 1e-3), "beta2_decay": -0.5, "foreach": True}),
    ("Muon", {"lr": 0.02}),
    ("Muon", {"lr": 0.05, "nesterov": False, "adjust_lr_fn": "match_rms_adamw", "momentum": 0.9}),
    ("Muon", {"lr": 0.05, "adjust_lr_fn": "spectral_unclamped", "weight_decay": 0.0, "ns_steps": 3}),
    ("Muon", {"lr": 0.03, "ns_coefficients": (2.0, -1.5, 0.5), "adjust_lr_fn": "original"}),
]


@pytest.mark.parametrize("name, kwargs", CASES)
def test_training_moves_the_loss_the_right_way(name, kwargs):
    model, _ = _train(hubkit, name, kwargs, name == "Muon", steps=range(0))
    x, y = (hubkit.tensor(a) for a in _batch(0))
    before = ((model(x) - y) ** 2).mean().item()
    _train(hubkit, name, kwargs, name == "Muon", steps=[0] * 30, model=model)
    after = ((model(x) - y) ** 2).mean().item()
    assert after > before if kwargs.get("maximize") else after < before


@pytest.mark.parity
@pytest.mark.parametrize("name, kwargs", CASES)
def test_ten_steps_match_torch(name, kwargs):
    import torch

    h, h_opt = _train(hubkit, name, kwargs, name == "Muon")
    t, t_opt = _train(torch, name, kwargs, name == "Muon")
    for (k, hp), (_, tp) in zip(h.state_dict().items(), t.state_dict().items()):
        np.testing.assert_allclose(hp.numpy(), tp.numpy(), rtol=1e-5, atol=1e-12, err_msg=k)
    h_state, t_state = h_opt.state_dict(), t_opt.state_dict()
    assert h_state["param_groups"][0].keys() == t_state["param_groups"][0].keys()
    for i, values in t_state["state"].items():
        assert h_state["state"][i].keys() == values.keys()
        for key, value in values.items():
            np.testing.assert_allclose(np.asarray(h_state["state"][i][key].numpy()), value.numpy(), rtol=1e-5,
                                       atol=1e-12, err_msg=f"state {i} {key}")


@pytest.mark.parity
@pytest.mark.parametrize("name, kwargs", [CASES[1], CASES[3]])
def test_state_dicts_load_both_ways(name, kwargs):
    import torch

    h, h_opt = _train(hubkit, name, kwargs, name == "Muon", steps=range(5))
    t, t_opt = _train(torch, name, kwargs, name == "Muon", steps=range(5))
    # swap the optimizers' states across libraries, then take 5 more steps each
    torch_state = t_opt.state_dict()
    h_opt.load_state_dict({"state": {i: {k: v.numpy() for k, v in s.items()} for i, s in torch_state["state"].items()},
                           "param_groups": torch_state["param_groups"]})
    t_opt.load_state_dict({"state": {i: {k: torch.from_numpy(np.array(v.numpy())) for k, v in s.items()}
                                     for i, s in h_opt.state_dict()["state"].items()},
                           "param_groups": h_opt.state_dict()["param_groups"]})
    _train(hubkit, name, kwargs, name == "Muon", steps=range(5, 10), model=h, opt=h_opt)
    _train(torch, name, kwargs, name == "Muon", steps=range(5, 10), model=t, opt=t_opt)
    for (k, hp), (_, tp) in zip(h.state_dict().items(), t.state_dict().items()):
        np.testing.assert_allclose(hp.numpy(), tp.numpy(), rtol=1e-5, atol=1e-12, err_msg=k)


def test_adafactor_state_is_factored_for_matrices():
    model, opt = _train(hubkit, "Adafactor", {}, False, steps=range(2))
    w, b = model[0].weight, model[0].bias
    assert opt.state[w]["row_var"].shape == (8, 1) and opt.state[w]["col_var"].shape == (1, 4)
    assert "variance" not in opt.state[w] and opt.state[b]["variance"].shape == (8,)
    assert opt.state[w]["step"].item() == 2.0


def test_adafactor_and_muon_argument_checks():
    p = [nn.Parameter(hubkit.ones(2, 2))]
    for kwargs, message in (({"lr": -1.0}, "invalid learning rate"), ({"beta2_decay": 0.5}, "beta2_decay should be"),
                            ({"eps": (-1.0, 1e-3)}, "epsilon1 should be"), ({"d": 0.5}, "Clipping threshold d"),
                            ({"weight_decay": -1.0}, "weight_decay should be")):
        with pytest.raises(ArgumentError, match=message):
            optim.Adafactor(p, **kwargs)
    with pytest.raises(ArgumentError, match="momentum should be >= 0"):
        optim.Muon(p, momentum=-0.1)
    with pytest.raises(ArgumentError, match="Adjust learning rate function fancy is not supported"):
        optim.Muon(p, adjust_lr_fn="fancy")
    with pytest.raises(ShapeError, match="Muon only supports 2D parameters"):
        optim.Muon([nn.Parameter(hubkit.ones(3))])
    with pytest.raises(TypeError):
        optim.Muon(p, foreach=True)  # torch's Muon has no foreach option either
    bad = optim.Muon(p, ns_steps=100)
    p[0].grad = hubkit.ones(2, 2)
    with pytest.raises(ArgumentError, match="Number of steps must be less than 100"):
        bad.step()


def test_round_to_bfloat16():
    values = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-7 + 2**-9, -2.5, np.inf, 0.0], dtype=np.float32)
    # 1 + 2^-8 is halfway between 1 and 1 + 2^-7: the tie goes to the even mantissa (1); 1 + 3 * 2^-8 is
    # halfway between 1 + 2^-7 and 1 + 2^-6 and goes to the even 1 + 2^-6; 1 + 2^-7 + 2^-9 rounds down
    out = round_to_bfloat16(values)
    assert out.dtype == np.float32
    assert out.tolist() == [1.0, 1.0, 1 + 2**-6, 1 + 2**-7, -2.5, np.inf, 0.0]
    assert np.isnan(round_to_bfloat16(np.array([np.nan], dtype=np.float32)))[0]
    big = round_to_bfloat16(np.random.default_rng(0).standard_normal(1000) * 1e30)
    assert (big.view(np.uint32) & 0xFFFF == 0).all()  # only bfloat16's 16 high bits are left


def test_newton_schulz_orthogonalizes():
    g = np.random.default_rng(0).standard_normal((6, 10))
    o = zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7)
    assert o.shape == (6, 10) and o.dtype == np.float32
    singular = np.linalg.svd(o.astype(np.float64), compute_uv=False)
    assert (singular > 0.5).all() and (singular < 1.5).all()  # torch's documented S' ~ U(0.5, 1.5)
    tall = zeropower_via_newtonschulz(g.T, (3.4445, -4.7750, 2.0315), 5, 1e-7)
    np.testing.assert_array_equal(tall, o.T)


def test_lerp_uses_torchs_two_formulas():
    a = np.array([1.0, 2.0])
    assert lerp_(a.copy(), np.array([3.0, 6.0]), 0.25).tolist() == [1.5, 3.0]
    assert lerp_(a.copy(), np.array([3.0, 6.0]), 1.0).tolist() == [3.0, 6.0]


@pytest.mark.parity
def test_bfloat16_rounding_and_newton_schulz_match_torch():
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz

    rng = np.random.default_rng(1)
    values = (rng.standard_normal(10000) * 10.0 ** rng.integers(-30, 30, 10000)).astype(np.float32)
    np.testing.assert_array_equal(round_to_bfloat16(values), torch.from_numpy(values).bfloat16().float().numpy())
    for shape in ((4, 7), (9, 3), (16, 16), (128, 64)):
        g = rng.standard_normal(shape)
        h = zeropower_via_newtonschulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7)
        t = _zeropower_via_newtonschulz(torch.from_numpy(g), (3.4445, -4.7750, 2.0315), 5, 1e-7).float().numpy()
        if shape[0] * shape[1] < 64:  # short float32 sums: the same at every step, so bit for bit torch's
            np.testing.assert_array_equal(h, t)
        # otherwise a float32 sum may land on the other side of a bfloat16 rounding boundary than torch's
        # (its oneDNN kernels add in another order); the iteration then differs at bfloat16 precision
        assert np.linalg.norm(h - t) / np.linalg.norm(t) < 1e-2
