"""Every lr scheduler against torch: 30-step lr (and momentum) sequences, state_dicts, and the warnings."""

from __future__ import annotations

import math
import warnings
from collections import Counter

import pytest

import hubkit
import hubkit.nn as nn
from hubkit import optim
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.optim import lr_scheduler as sched

STEPS = 30


def _optimizer(lib: str, name: str = "SGD"):
    """Two parameter groups (lr 0.1 and 0.2); SGD gets a momentum so momentum cycling has something to move."""
    if lib == "torch":
        import torch

        mod, params = torch.optim, [torch.nn.Parameter(torch.zeros(2)) for _ in range(2)]
    else:
        mod, params = optim, [nn.Parameter(hubkit.zeros(2)) for _ in range(2)]
    extra = {"momentum": 0.9} if name == "SGD" else {}
    return getattr(mod, name)([{"params": [params[0]]}, {"params": [params[1]], "lr": 0.2}], lr=0.1, **extra)


def _mod(lib: str):
    if lib == "torch":
        import torch

        return torch.optim.lr_scheduler
    return sched


def _record(opt) -> list[tuple]:
    return [(g["lr"], g.get("momentum"), tuple(g["betas"]) if "betas" in g else None) for g in opt.param_groups]


def _run(scheduler, opt, steps: int = STEPS, metrics=None) -> list[list[tuple]]:
    seq = [_record(opt)]
    for t in range(steps):
        opt.step()
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[t])
        seq.append(_record(opt))
    return seq


def _assert_sequences_equal(ours, theirs):
    for t, (a, b) in enumerate(zip(ours, theirs)):
        for (lr_a, m_a, betas_a), (lr_b, m_b, betas_b) in zip(a, b):
            assert lr_a == pytest.approx(lr_b, rel=1e-12, abs=1e-15), f"lr at step {t}"
            for a_val, b_val, what in ((m_a, m_b, "momentum"), (betas_a, betas_b, "betas")):
                assert (a_val is None) == (b_val is None), f"{what} at step {t}"
                if b_val is not None:
                    assert a_val == pytest.approx(b_val, rel=1e-12), f"{what} at step {t}"


def _assert_state_equal(ours, theirs, path="state_dict"):
    if isinstance(theirs, dict) and not isinstance(theirs, Counter):
        assert set(ours) == set(theirs), f"{path}: keys {sorted(set(ours) ^ set(theirs))} differ"
        for k in theirs:
            _assert_state_equal(ours[k], theirs[k], f"{path}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert len(ours) == len(theirs), path
        for i, (a, b) in enumerate(zip(ours, theirs)):
            _assert_state_equal(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-15), path
    else:
        assert ours == theirs, path


class Halving:
    """A callable object: its state (``__dict__``) goes into LambdaLR's state_dict."""

    def __init__(self, every: int) -> None:
        self.every = every

    def __call__(self, epoch: int) -> float:
        return 0.5 ** (epoch // self.every)


SCHEDULERS = [
    ("LambdaLR", lambda m, o: m.LambdaLR(o, lambda e: 0.95**e), "SGD"),
    ("LambdaLR-per-group", lambda m, o: m.LambdaLR(o, [Halving(4), lambda e: 1 / (1 + e)]), "SGD"),
    ("MultiplicativeLR", lambda m, o: m.MultiplicativeLR(o, lambda e: 0.9 if e % 3 else 1.0), "SGD"),
    ("StepLR", lambda m, o: m.StepLR(o, step_size=4, gamma=0.5), "SGD"),
    ("MultiStepLR", lambda m, o: m.MultiStepLR(o, milestones=[3, 8, 8, 20], gamma=0.3), "SGD"),
    ("ConstantLR", lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=7), "SGD"),
    ("LinearLR", lambda m, o: m.LinearLR(o, start_factor=0.1, end_factor=0.8, total_iters=12), "SGD"),
    ("ExponentialLR", lambda m, o: m.ExponentialLR(o, gamma=0.9), "SGD"),
    ("PolynomialLR", lambda m, o: m.PolynomialLR(o, total_iters=20, power=2.0), "SGD"),
    ("PolynomialLR-linear", lambda m, o: m.PolynomialLR(o, total_iters=10), "Adam"),
    ("CosineAnnealingLR", lambda m, o: m.CosineAnnealingLR(o, T_max=8, eta_min=0.01), "SGD"),
    ("CosineAnnealingWarmRestarts", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=5, eta_min=0.001), "SGD"),
    ("CosineAnnealingWarmRestarts-Tmult", lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2), "SGD"),
    ("CyclicLR-triangular", lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=[0.1, 0.3], step_size_up=4), "SGD"),
    ("CyclicLR-triangular2", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3, step_size_down=5,
                                                     mode="triangular2", base_momentum=0.7, max_momentum=0.95), "SGD"),
    ("CyclicLR-exp_range", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=4, mode="exp_range", gamma=0.97),
     "Adam"),
    ("CyclicLR-scale_fn", lambda m, o: m.CyclicLR(o, 0.01, 0.1, step_size_up=3, scale_fn=lambda x: 0.9**x,
                                                  scale_mode="iterations", cycle_momentum=False), "Adagrad"),
    ("OneCycleLR", lambda m, o: m.OneCycleLR(o, max_lr=[0.5, 1.0], total_steps=STEPS), "SGD"),
    ("OneCycleLR-three_phase", lambda m, o: m.OneCycleLR(o, max_lr=0.3, epochs=6, steps_per_epoch=5,
                                                         anneal_strategy="linear", three_phase=True,
                                                         pct_start=0.25), "Adam"),
    ("ChainedScheduler", lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=4),
                                                          m.ExponentialLR(o, gamma=0.9)]), "SGD"),
    ("ChainedScheduler-optimizer", lambda m, o: m.ChainedScheduler([m.LinearLR(o, 0.2, total_iters=5),
                                                                    m.CosineAnnealingLR(o, T_max=10)], o), "SGD"),
    ("SequentialLR", lambda m, o: m.SequentialLR(o, [m.LinearLR(o, start_factor=0.2, total_iters=4),
                                                     m.CosineAnnealingLR(o, T_max=6),
                                                     m.StepLR(o, step_size=2, gamma=0.5)], milestones=[4, 11]), "SGD"),
    ("SequentialLR-nested", lambda m, o: m.SequentialLR(
        o, [m.SequentialLR(o, [m.ExponentialLR(o, 0.8), m.PolynomialLR(o, total_iters=8)], milestones=[5]),
            m.ConstantLR(o, factor=0.5, total_iters=3)],
        milestones=[12]), "SGD"),
]


@pytest.mark.parity
@pytest.mark.parametrize("build,opt_name", [s[1:] for s in SCHEDULERS], ids=[s[0] for s in SCHEDULERS])
def test_lr_sequence_and_state_dict_equal_torch(build, opt_name):
    topt, hopt = _optimizer("torch", opt_name), _optimizer("hubkit", opt_name)
    with warnings.catch_warnings(record=True) as torch_warned:
        warnings.simplefilter("always")
        tsched = build(_mod("torch"), topt)
        theirs = _run(tsched, topt)
    with warnings.catch_warnings(record=True) as hubkit_warned:
        warnings.simplefilter("always")
        hsched = build(_mod("hubkit"), hopt)
        ours = _run(hsched, hopt)
    # steps in the right order: neither library warns, except where torch itself does (a nested SequentialLR)
    assert len(hubkit_warned) == len(torch_warned), [str(w.message) for w in hubkit_warned]
    _assert_sequences_equal(ours, theirs)
    assert hsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
    _assert_state_equal(hsched.state_dict(), tsched.state_dict())
    _assert_state_equal({k: v for k, v in hopt.param_groups[0].items() if k != "params"},
                        {k: v for k, v in topt.param_groups[0].items() if k != "params"})


PLATEAU = [
    ({"patience": 2}, [1.0, 0.9, 0.95, 0.95, 0.95, 0.8, 0.8, 0.8, 0.8, 0.79995, 0.7, 0.71, 0.72, 0.73, 0.74]),
    ({"mode": "max", "factor": 0.5, "patience": 1, "cooldown": 2, "min_lr": [0.02, 0.01]},
     [0.1, 0.2, 0.2, 0.2, 0.2, 0.2, 0.3, 0.29, 0.28, 0.27, 0.26, 0.25, 0.24, 0.23, 0.22, 0.21, 0.2]),
    ({"threshold_mode": "abs", "threshold": 0.05, "patience": 0, "factor": 0.3, "eps": 1e-3},
     [1.0, 0.97, 0.9, 0.88, 0.8, 0.79, 0.7, 0.69, 0.68, 0.67, 0.5, 0.49, 0.48]),
    ({"mode": "max", "threshold_mode": "abs", "threshold": 0.1, "patience": 1, "min_lr": 0.015,
      "factor": 0.5},
     [0.0, 0.05, 0.12, 0.15, 0.2, 0.35, 0.4, 0.4, 0.4, 0.4, 0.41, 0.5, 0.55, 0.6, 0.6, 0.6, 0.6]),
]


@pytest.mark.parity
@pytest.mark.parametrize("kwargs,metrics", PLATEAU)
def test_reduce_lr_on_plateau_follows_torch_on_the_same_metrics(kwargs, metrics):
    topt, hopt = _optimizer("torch"), _optimizer("hubkit")
    tsched = _mod("torch").ReduceLROnPlateau(topt, **kwargs)
    hsched = sched.ReduceLROnPlateau(hopt, **kwargs)
    theirs = _run(tsched, topt, len(metrics), metrics)
    ours = _run(hsched, hopt, len(metrics), metrics)
    _assert_sequences_equal(ours, theirs)
    assert len({s[0][0] for s in ours}) > 2, "the metric sequence should trigger at least two cuts"
    _assert_state_equal(hsched.state_dict(), tsched.state_dict())


@pytest.mark.parity
@pytest.mark.parametrize("name,kwargs", [("StepLR", {"step_size": 3, "gamma": 0.5}),
                                         ("MultiStepLR", {"milestones": [2, 6], "gamma": 0.1}),
                                         ("ConstantLR", {"factor": 0.5, "total_iters": 4}),
                                         ("LinearLR", {"start_factor": 0.5, "total_iters": 4}),
                                         ("ExponentialLR", {"gamma": 0.9}),
                                         ("PolynomialLR", {"total_iters": 6, "power": 0.5}),
                                         ("CosineAnnealingLR", {"T_max": 5})])
def test_step_with_epoch_uses_the_closed_form_like_torch(name, kwargs):
    topt, hopt = _optimizer("torch"), _optimizer("hubkit")
    tsched, hsched = getattr(_mod("torch"), name)(topt, **kwargs), getattr(sched, name)(hopt, **kwargs)
    for epoch in [3, 7, 1, 5, 9]:
        topt.step()
        hopt.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tsched.step(epoch)
        with pytest.warns(UserWarning, match="epoch parameter"):
            hsched.step(epoch)
        assert hsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)
        assert hsched._get_closed_form_lr() == pytest.approx(tsched._get_closed_form_lr(), rel=1e-12)


@pytest.mark.parity
def test_warm_restarts_with_fractional_epochs_follow_torch():
    topt, hopt = _optimizer("torch"), _optimizer("hubkit")
    tsched = _mod("torch").CosineAnnealingWarmRestarts(topt, T_0=2, T_mult=3, eta_min=0.01)
    hsched = sched.CosineAnnealingWarmRestarts(hopt, T_0=2, T_mult=3, eta_min=0.01)
    for epoch in range(12):
        for batch in range(4):
            topt.step()
            hopt.step()
            tsched.step(epoch + batch / 4)
            hsched.step(epoch + batch / 4)
            assert hsched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-12)


# ---------------------------------------------------------------- behaviour


def _sgd(lr: float = 1.0) -> optim.SGD:
    return optim.SGD([nn.Parameter(hubkit.zeros(2))], lr=lr, momentum=0.9)


def test_scheduler_step_before_optimizer_step_warns_once():
    opt = _sgd()
    s = sched.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        s.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s.step()


def test_no_warning_when_the_optimizer_steps_first():
    opt = _sgd()
    s = sched.ExponentialLR(opt, gamma=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step()
        s.step()
    assert s.get_last_lr() == [0.5]


def test_calling_get_lr_directly_warns_to_use_get_last_lr():
    s = sched.StepLR(_sgd(), step_size=2)
    with pytest.warns(UserWarning, match="get_last_lr"):
        s.get_lr()


def test_lambda_lr_state_dict_saves_callable_objects_not_functions():
    opt = optim.SGD([{"params": [nn.Parameter(hubkit.zeros(1))]}, {"params": [nn.Parameter(hubkit.zeros(1))]}],
                    lr=1.0)
    fn = Halving(2)
    s = sched.LambdaLR(opt, [fn, lambda e: 1.0])
    state = s.state_dict()
    assert state["lr_lambdas"] == [{"every": 2}, None]
    other = Halving(5)
    s2 = sched.LambdaLR(opt, [other, lambda e: 1.0])
    s2.load_state_dict(state)
    assert other.every == 2


def test_scheduler_state_dict_round_trip_resumes_the_sequence():
    opt = _sgd()
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    straight = _run(s, opt, 20)
    opt = _sgd()
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    first = _run(s, opt, 8)
    saved_opt, saved = opt.state_dict(), s.state_dict()
    opt2 = _sgd()
    s2 = sched.OneCycleLR(opt2, max_lr=1.0, total_steps=20)
    opt2.load_state_dict(saved_opt)
    s2.load_state_dict(saved)
    rest = _run(s2, opt2, 12)
    assert [x[0][0] for x in first + rest[1:]] == pytest.approx([x[0][0] for x in straight], rel=1e-12)


def test_cyclic_lr_cycles_momentum_against_the_lr():
    opt = _sgd()
    s = sched.CyclicLR(opt, base_lr=0.1, max_lr=1.0, step_size_up=2, base_momentum=0.8, max_momentum=0.9)
    seq = _run(s, opt, 4)
    assert [x[0][0] for x in seq] == pytest.approx([0.1, 0.55, 1.0, 0.55, 0.1])
    assert [x[0][1] for x in seq] == pytest.approx([0.9, 0.85, 0.8, 0.85, 0.9])


def test_plateau_cuts_after_patience_and_respects_min_lr():
    opt = _sgd(1.0)
    s = sched.ReduceLROnPlateau(opt, patience=1, factor=0.5, min_lr=0.3)
    for metric, lr in [(1.0, 1.0), (1.0, 1.0), (1.0, 0.5), (1.0, 0.5), (1.0, 0.3), (0.5, 0.3), (0.5, 0.3)]:
        s.step(metric)
        assert opt.param_groups[0]["lr"] == pytest.approx(lr)
    assert s.get_last_lr() == [pytest.approx(0.3)]


def test_scheduler_bad_arguments_raise_clear_errors():
    opt = _sgd()
    with pytest.raises(ArgumentTypeError, match="not an Optimizer"):
        sched.StepLR(object(), step_size=1)
    with pytest.raises(ArgumentError, match="lr_lambdas"):
        sched.LambdaLR(opt, [lambda e: 1.0, lambda e: 1.0])
    with pytest.raises(ArgumentTypeError, match="function"):
        sched.MultiplicativeLR(opt, 0.9)
    with pytest.raises(ArgumentError, match="factor"):
        sched.ConstantLR(opt, factor=1.5)
    with pytest.raises(ArgumentError, match="T_0"):
        sched.CosineAnnealingWarmRestarts(opt, T_0=0)
    with pytest.raises(ArgumentError, match="mode"):
        sched.CyclicLR(opt, 0.1, 1.0, mode="square")
    with pytest.raises(ArgumentError, match="momentum"):
        sched.CyclicLR(optim.Adagrad([nn.Parameter(hubkit.zeros(1))]), 0.1, 1.0)
    with pytest.raises(ArgumentError, match="factor should be < 1.0"):
        sched.ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ArgumentError, match="mode"):
        sched.ReduceLROnPlateau(opt, mode="up")
    with pytest.raises(ArgumentError, match="threshold_mode"):
        sched.ReduceLROnPlateau(opt, threshold_mode="pct")
    with pytest.raises(ArgumentError, match="ReduceLROnPlateau"):
        sched.ChainedScheduler([sched.ReduceLROnPlateau(opt)])
    with pytest.raises(ArgumentError, match="same optimizer"):
        sched.ChainedScheduler([sched.StepLR(opt, 1), sched.StepLR(_sgd(), 1)])
    with pytest.raises(ArgumentError, match="at least one"):
        sched.SequentialLR(opt, [], milestones=[])


def test_lr_sequences_stay_finite_and_positive_over_long_runs():
    opt = _sgd(0.1)
    s = sched.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2)
    lrs = [x[0][0] for x in _run(s, opt, 100)]
    assert all(math.isfinite(v) and 0 <= v <= 0.1 for v in lrs)
    assert lrs[3] == pytest.approx(0.1) and lrs[9] == pytest.approx(0.1)  # restarts after 3 and 3 + 6 epochs
