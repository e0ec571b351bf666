"""swa_utils against torch's: AveragedModel (SWA, EMA, custom averages, buffers), update_bn and SWALR."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit import optim
from hubkit.errors import ArgumentError
from hubkit.optim import swa_utils


def _weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"0.weight": rng.standard_normal((6, 4)), "0.bias": rng.standard_normal(6),
            "1.weight": 1 + 0.1 * rng.standard_normal(6), "1.bias": 0.1 * rng.standard_normal(6),
            "3.weight": rng.standard_normal((2, 6)), "3.bias": rng.standard_normal(2)}


def _batches(n: int = 6) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((8, 4)), rng.standard_normal((8, 2))) for _ in range(n)]


def _model(lib: str):
    if lib == "torch":
        import torch

        m = torch.nn
        model = m.Sequential(m.Linear(4, 6), m.BatchNorm1d(6), m.ReLU(), m.Linear(6, 2)).double()
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(torch.from_numpy(_weights()[name]))
        return model
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).double()
    for name, p in model.named_parameters():
        p.array[...] = _weights()[name]
    return model


def _train_and_average(lib: str, make_avg):
    """Four SGD steps; the average is updated after each. Returns (model, averaged model, lrs of SWALR)."""
    if lib == "torch":
        import torch

        tensor, swa = torch.from_numpy, torch.optim.swa_utils
        opt_cls = torch.optim.SGD
    else:
        tensor, swa, opt_cls = hubkit.from_numpy, swa_utils, optim.SGD
    model = _model(lib)
    averaged = make_avg(swa, model)
    opt = opt_cls(model.parameters(), lr=0.1, momentum=0.5)
    for x, y in _batches(4):
        opt.zero_grad()
        ((model(tensor(x)) - tensor(y)) ** 2).mean().backward()
        opt.step()
        averaged.update_parameters(model)
    return model, averaged


AVERAGES = [
    ("swa", lambda swa, m: swa.AveragedModel(m)),
    ("swa-buffers", lambda swa, m: swa.AveragedModel(m, use_buffers=True)),
    ("ema-multi", lambda swa, m: swa.AveragedModel(m, multi_avg_fn=swa.get_ema_multi_avg_fn(0.8))),
    ("ema-multi-buffers", lambda swa, m: swa.AveragedModel(m, multi_avg_fn=swa.get_ema_multi_avg_fn(0.6),
                                                            use_buffers=True)),
    ("ema-avg_fn", lambda swa, m: swa.AveragedModel(m, avg_fn=swa.get_ema_avg_fn(0.7))),
    ("swa-avg_fn", lambda swa, m: swa.AveragedModel(m, avg_fn=swa.get_swa_avg_fn(), use_buffers=True)),
    ("custom", lambda swa, m: swa.AveragedModel(m, avg_fn=lambda avg, cur, n: 0.5 * avg + 0.5 * cur)),
]


@pytest.mark.parity
@pytest.mark.parametrize("make_avg", [a[1] for a in AVERAGES], ids=[a[0] for a in AVERAGES])
def test_averaged_model_matches_torch(make_avg):
    import torch

    _, ours = _train_and_average("hubkit", make_avg)
    _, theirs = _train_and_average("torch", make_avg)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key, value in theirs_sd.items():
        np.testing.assert_allclose(ours_sd[key].numpy(), value.numpy(), rtol=1e-10, atol=1e-12, err_msg=key)
        assert ours_sd[key].numpy().dtype == value.numpy().dtype, key
    x = _batches(1)[0][0]
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(hubkit.from_numpy(x)).numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parity
def test_update_bn_recomputes_statistics_like_torch():
    import torch

    loader = [(hubkit.from_numpy(x), hubkit.from_numpy(y)) for x, y in _batches()]
    tloader = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in _batches()]
    ours, theirs = _model("hubkit").eval(), _model("torch").eval()
    swa_utils.update_bn(loader, ours)
    torch.optim.swa_utils.update_bn(tloader, theirs)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key].numpy(), value.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg=key)
    assert not ours.training and ours[1].momentum == 0.1


def test_update_bn_takes_bare_inputs_and_restores_train_mode():
    model = _model("hubkit").train()
    model[1].momentum = 0.3
    inputs = [hubkit.from_numpy(x) for x, _ in _batches(3)]
    swa_utils.update_bn(inputs, model)
    stacked = np.concatenate([x.numpy() for x in inputs])
    hidden = stacked @ model[0].weight.numpy().T + model[0].bias.numpy()
    # momentum None: the running mean is the plain average of the per-batch means
    expected = np.mean([h.mean(0) for h in np.split(hidden, 3)], axis=0)
    np.testing.assert_allclose(model[1].running_mean.numpy(), expected, rtol=1e-10)
    assert model.training and model[1].momentum == 0.3 and model[1].num_batches_tracked.item() == 3


def test_update_bn_without_batchnorm_is_a_no_op():
    model = nn.Linear(2, 2)
    swa_utils.update_bn([hubkit.zeros(1, 2)], model)
    assert model.training


def test_averaged_model_first_update_copies_then_averages():
    model = nn.Linear(2, 1, bias=False)
    model.weight.array[...] = 1.0
    avg = swa_utils.AveragedModel(model)
    assert avg.n_averaged.item() == 0 and avg.n_averaged.dtype == hubkit.int64
    avg.update_parameters(model)
    model.weight.array[...] = 3.0
    avg.update_parameters(model)
    model.weight.array[...] = 8.0
    avg.update_parameters(model)
    np.testing.assert_allclose(avg.module.weight.numpy(), [[4.0, 4.0]])
    assert avg.n_averaged.item() == 3 and model.weight.numpy()[0, 0] == 8.0
    assert list(avg.state_dict()) == ["n_averaged", "module.weight"]


def test_averaged_model_refuses_two_average_functions_and_bad_decay():
    with pytest.raises(ArgumentError, match="only one"):
        swa_utils.AveragedModel(nn.Linear(1, 1), avg_fn=swa_utils.get_swa_avg_fn(),
                                multi_avg_fn=swa_utils.get_swa_multi_avg_fn())
    with pytest.raises(ArgumentError, match="decay"):
        swa_utils.get_ema_multi_avg_fn(1.5)


SWALRS = [{"swa_lr": 0.05}, {"swa_lr": [0.01, 0.5], "anneal_epochs": 4, "anneal_strategy": "linear"},
          {"swa_lr": 0.02, "anneal_epochs": 0}]


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", SWALRS)
def test_swalr_sequence_equals_torch(kwargs):
    import torch

    def run(lib):
        if lib == "torch":
            ps, mod = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)], torch.optim
        else:
            ps, mod = [nn.Parameter(hubkit.zeros(1)) for _ in range(2)], optim
        opt = mod.SGD([{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.2}], lr=0.1)
        s = mod.swa_utils.SWALR(opt, **kwargs)
        seq = []
        for _ in range(15):
            opt.step()
            s.step()
            seq.append([g["lr"] for g in opt.param_groups])
        return seq, s

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours, hsched = run("hubkit")
    theirs, tsched = run("torch")
    assert np.allclose(ours, theirs, rtol=1e-12, atol=1e-15)
    ours_sd, theirs_sd = hsched.state_dict(), tsched.state_dict()
    assert set(ours_sd) == set(theirs_sd)
    assert ours_sd.pop("_last_lr") == pytest.approx(theirs_sd.pop("_last_lr"), rel=1e-12)
    assert ours_sd == theirs_sd


def test_swalr_reaches_swa_lr_and_holds_it():
    opt = optim.SGD([nn.Parameter(hubkit.zeros(1))], lr=1.0)
    s = swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=3, anneal_strategy="linear")
    lrs = []
    for _ in range(6):
        opt.step()
        s.step()
        lrs.append(s.get_last_lr()[0])
    assert lrs == pytest.approx([0.7, 0.4, 0.1, 0.1, 0.1, 0.1])
    with pytest.raises(ArgumentError, match="anneal_strategy"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_strategy="step")
    with pytest.raises(ArgumentError, match="anneal_epochs"):
        swa_utils.SWALR(opt, swa_lr=0.1, anneal_epochs=-1)
