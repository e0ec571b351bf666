"""Learning-rate schedulers: known sequences, state_dict, and lr sequences identical to torch's."""

from __future__ import annotations

import math

import pytest

import hubkit
import hubkit.nn as nn
from hubkit import optim
from hubkit.errors import ArgumentError
from hubkit.optim import lr_scheduler as sched


def _sgd(lr: float = 1.0, groups: int = 1) -> optim.SGD:
    params = [nn.Parameter(hubkit.zeros(2)) for _ in range(groups)]
    return optim.SGD([{"params": [p], "lr": lr * (i + 1)} for i, p in enumerate(params)], lr=lr, momentum=0.9)


def _lrs(scheduler, opt, steps: int) -> list[list[float]]:
    seq = [[g["lr"] for g in opt.param_groups]]
    for _ in range(steps):
        opt.step()
        scheduler.step()
        seq.append([g["lr"] for g in opt.param_groups])
    return seq


def test_step_lr_closed_form():
    opt = _sgd(1.0)
    seq = _lrs(sched.StepLR(opt, step_size=3, gamma=0.5), opt, 9)
    assert [s[0] for s in seq] == pytest.approx([0.5 ** (e // 3) for e in range(10)])


def test_multistep_lr_repeated_milestones_multiply_twice():
    opt = _sgd(1.0)
    seq = _lrs(sched.MultiStepLR(opt, milestones=[2, 4, 4], gamma=0.1), opt, 5)
    assert [s[0] for s in seq] == pytest.approx([1, 1, 0.1, 0.1, 0.001, 0.001])


def test_cosine_annealing_reaches_eta_min_at_t_max():
    opt = _sgd(1.0)
    seq = _lrs(sched.CosineAnnealingLR(opt, T_max=10, eta_min=0.1), opt, 10)
    expected = [0.1 + 0.9 * (1 + math.cos(math.pi * e / 10)) / 2 for e in range(11)]
    assert [s[0] for s in seq] == pytest.approx(expected)


def test_linear_lr_warms_up_then_holds():
    opt = _sgd(1.0)
    seq = _lrs(sched.LinearLR(opt, start_factor=0.25, total_iters=3), opt, 6)
    assert [s[0] for s in seq] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0])


def test_one_cycle_peaks_at_max_lr_and_cycles_momentum():
    opt = _sgd(1.0)
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.3)
    assert opt.param_groups[0]["lr"] == pytest.approx(1.0 / 25)
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.95)
    seq = _lrs(s, opt, 9)
    peak = max(range(10), key=lambda i: seq[i][0])
    assert seq[peak][0] == pytest.approx(1.0) and peak == 2
    assert seq[-1][0] == pytest.approx(1.0 / 25 / 1e4)
    s.step()  # step 10 of 10 is still allowed
    with pytest.raises(ArgumentError, match="total steps"):
        s.step()


def test_sequential_lr_switches_at_milestone():
    opt = _sgd(1.0)
    warm = sched.LinearLR(opt, start_factor=0.5, total_iters=2)
    decay = sched.ExponentialLR(opt, gamma=0.5)
    seq = _lrs(sched.SequentialLR(opt, [warm, decay], milestones=[2]), opt, 4)
    assert [s[0] for s in seq] == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.25])


def test_get_last_lr_and_state_dict_round_trip():
    opt = _sgd(1.0, groups=2)
    s = sched.StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        opt.step()
        s.step()
    assert s.get_last_lr() == pytest.approx([0.1, 0.2])
    state = s.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 3
    opt2 = _sgd(1.0, groups=2)
    s2 = sched.StepLR(opt2, step_size=5)
    s2.load_state_dict(state)
    assert s2.step_size == 2 and s2.last_epoch == 3


def test_scheduler_argument_errors():
    opt = _sgd()
    with pytest.raises(ArgumentError, match="step_size"):
        sched.StepLR(opt, step_size=0)
    with pytest.raises(ArgumentError, match="milestone"):
        sched.SequentialLR(opt, [sched.ExponentialLR(opt, 0.9)], milestones=[3])
    with pytest.raises(ArgumentError, match="total_steps"):
        sched.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ArgumentError, match="initial_lr"):
        sched.StepLR(optim.SGD([nn.Parameter(hubkit.zeros(1))], lr=0.1), step_size=1, last_epoch=3)


# ---------------------------------------------------------------- parity with torch

SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}, "SGD"),
    ("MultiStepLR", {"milestones": [2, 5, 5, 8], "gamma": 0.3}, "SGD"),
    ("ExponentialLR", {"gamma": 0.9}, "SGD"),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.01}, "SGD"),
    ("LinearLR", {"start_factor": 0.1, "end_factor": 0.9, "total_iters": 6}, "SGD"),
    ("OneCycleLR", {"max_lr": [0.5, 1.0], "total_steps": 25}, "SGD"),
    ("OneCycleLR", {"max_lr": 0.3, "epochs": 5, "steps_per_epoch": 5, "anneal_strategy": "linear",
                    "three_phase": True, "pct_start": 0.25}, "Adam"),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 25, "cycle_momentum": False}, "Adagrad"),
]


def _pair(lib, opt_name: str):
    if lib == "torch":
        import torch

        params = [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    else:
        params = [nn.Parameter(hubkit.zeros(2)) for _ in range(2)]
    mod = torch.optim if lib == "torch" else optim
    extra = {"momentum": 0.9} if opt_name == "SGD" else {}
    return getattr(mod, opt_name)([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.2}], lr=0.1, **extra)


def _sequence(lib, opt, scheduler, steps: int):
    seq = []
    for _ in range(steps):
        seq.append([(g["lr"], g.get("momentum"), g.get("betas")) for g in opt.param_groups])
        opt.step()
        scheduler.step()
    return seq


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs,opt_name", SCHEDULES)
def test_lr_sequence_equals_torch(name, kwargs, opt_name):
    import torch

    topt, hopt = _pair("torch", opt_name), _pair("hubkit", opt_name)
    theirs = _sequence("torch", topt, getattr(torch.optim.lr_scheduler, name)(topt, **kwargs), 24)
    ours = _sequence("hubkit", hopt, getattr(sched, name)(hopt, **kwargs), 24)
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for (lr_a, m_a, betas_a), (lr_b, m_b, betas_b) in zip(a, b):
            assert lr_a == pytest.approx(lr_b, rel=1e-12, abs=1e-15), f"step {t}"
            assert m_a == pytest.approx(m_b) and (betas_a is None) == (betas_b is None)
            if betas_a is not None:
                assert tuple(betas_a) == pytest.approx(tuple(betas_b))


@pytest.mark.parity
def test_sequential_lr_sequence_equals_torch():
    import torch

    def build(lib, opt):
        mod = torch.optim.lr_scheduler if lib == "torch" else sched
        return mod.SequentialLR(opt, [mod.LinearLR(opt, start_factor=0.2, total_iters=4),
                                      mod.CosineAnnealingLR(opt, T_max=6),
                                      mod.StepLR(opt, step_size=2, gamma=0.5)], milestones=[4, 9])

    topt, hopt = _pair("torch", "SGD"), _pair("hubkit", "SGD")
    theirs = _sequence("torch", topt, build("torch", topt), 20)
    ours = _sequence("hubkit", hopt, build("hubkit", hopt), 20)
    assert [x[0] for s in ours for x in s] == pytest.approx([x[0] for s in theirs for x in s], rel=1e-12)
