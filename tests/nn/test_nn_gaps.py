"""The smaller torch.nn pieces: gumbel_softmax, CrossMapLRN2d, AdaptiveLogSoftmaxWithLoss, ParameterList,
ParameterDict, the deprecated Container and NLLLoss2d, and F.assert_int_or_pair."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ArgumentTypeError, IndexOutOfRangeError, ShapeError

# ---------------------------------------------------------------- gumbel_softmax


def _seeded_gumbel(logits, **kwargs):
    hubkit.manual_seed(7)
    return F.gumbel_softmax(logits, **kwargs)


# hard=True is left out: its forward is a piecewise-constant one-hot whose straight-through gradient is the soft
# sample's by design, not the derivative of the forward (the parity test checks it against torch's)
@pytest.mark.parametrize("kwargs", [{}, {"tau": 0.5}, {"tau": 2.0, "dim": 0}])
def test_gumbel_softmax_gradcheck(kwargs):
    logits = np.random.default_rng(0).standard_normal((3, 4))
    gradcheck(lambda x: _seeded_gumbel(x, **kwargs), [logits])


def test_gumbel_softmax_soft_and_hard_samples():
    logits = hubkit.randn(4, 6)
    soft = F.gumbel_softmax(logits, tau=0.7)
    np.testing.assert_allclose(soft.sum(dim=-1).numpy(), np.ones(4), rtol=1e-6)
    hard = _seeded_gumbel(logits, hard=True)
    assert sorted(set(hard.numpy().reshape(-1).tolist())) == [0.0, 1.0]
    assert hard.sum(dim=-1).tolist() == [1.0] * 4
    assert hard.argmax(dim=-1).tolist() == _seeded_gumbel(logits).argmax(dim=-1).tolist()
    with pytest.warns(UserWarning, match="`eps` parameter is deprecated"):
        F.gumbel_softmax(logits, eps=1e-5)


def test_gumbel_softmax_samples_follow_the_softmax():
    logits = hubkit.tensor([[0.0, 1.0, 2.0]]).expand(20000, 3)
    hubkit.manual_seed(0)
    counts = F.gumbel_softmax(logits, hard=True).sum(dim=0).numpy() / 20000
    expected = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()
    np.testing.assert_allclose(counts, expected, atol=0.015)


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", [{}, {"tau": 0.3}, {"hard": True}, {"hard": True, "dim": 0}])
def test_gumbel_softmax_matches_torch_for_the_same_noise(kwargs, monkeypatch):
    import torch

    logits = np.random.default_rng(1).standard_normal((4, 5))
    hubkit.manual_seed(11)
    noise = hubkit.empty(4, 5, dtype=hubkit.float64).exponential_().numpy().copy()
    hubkit.manual_seed(11)
    hx = hubkit.tensor(logits, requires_grad=True)
    hy = F.gumbel_softmax(hx, **kwargs)
    monkeypatch.setattr(torch.Tensor, "exponential_", lambda self, *a, **k: self.copy_(torch.from_numpy(noise)))
    tx = torch.from_numpy(logits).requires_grad_()
    ty = torch.nn.functional.gumbel_softmax(tx, **kwargs)
    np.testing.assert_allclose(hy.detach().numpy(), ty.detach().numpy(), rtol=1e-12)
    w = np.arange(20.0).reshape(4, 5)
    (hy * hubkit.tensor(w)).sum().backward()
    (ty * torch.from_numpy(w)).sum().backward()
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- CrossMapLRN2d


@pytest.mark.parametrize("size, channels", [(5, 8), (3, 4), (2, 5), (1, 3)])
def test_cross_map_lrn_gradcheck(size, channels):
    x = np.random.default_rng(size).standard_normal((2, channels, 2, 3))
    m = nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=2.0)
    gradcheck(lambda t: m(t), [x])


def test_cross_map_lrn_repr_and_errors():
    assert repr(nn.CrossMapLRN2d(3)) == "CrossMapLRN2d(3, alpha=0.0001, beta=0.75, k=1)"
    with pytest.raises(ShapeError, match="Expected input to be 4D, got 3D instead"):
        nn.CrossMapLRN2d(3)(hubkit.ones(2, 3, 4))


def test_cross_map_lrn_equals_local_response_norm_where_its_window_is_symmetric():
    x = hubkit.randn(2, 3, 4, 4, dtype=hubkit.float64)  # C <= (size - 1) // 2 + 1: every window is complete
    np.testing.assert_allclose(nn.CrossMapLRN2d(5, alpha=0.1)(x).numpy(),
                               F.local_response_norm(x, 5, alpha=0.1).numpy(), rtol=1e-12)


@pytest.mark.parity
@pytest.mark.parametrize("size, channels", [(5, 8), (3, 6), (2, 5), (4, 7), (7, 4)])
def test_cross_map_lrn_forward_matches_torch(size, channels):
    import torch

    x = np.random.default_rng(0).standard_normal((2, channels, 3, 3)).astype(np.float32)
    h = nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.0)(hubkit.tensor(x))
    t = torch.nn.CrossMapLRN2d(size, alpha=0.5, beta=0.75, k=1.0)(torch.from_numpy(x))
    np.testing.assert_allclose(h.numpy(), t.numpy(), rtol=1e-5, atol=1e-6)
    assert repr(nn.CrossMapLRN2d(size)) == repr(torch.nn.CrossMapLRN2d(size))


# ---------------------------------------------------------------- AdaptiveLogSoftmaxWithLoss


def _asm(**kwargs):
    return nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10, 15], div_value=2.0, **kwargs).double()


def test_adaptive_log_softmax_is_a_distribution_and_its_output_picks_the_targets():
    m = _asm(head_bias=True)
    x = hubkit.randn(6, 8, dtype=hubkit.float64)
    full = m.log_prob(x)
    assert full.shape == (6, 20)
    np.testing.assert_allclose(np.exp(full.numpy()).sum(axis=1), np.ones(6), rtol=1e-12)
    target = hubkit.tensor([0, 3, 4, 9, 12, 19])
    out, loss = m(x, target)
    np.testing.assert_allclose(out.detach().numpy(), full.detach().numpy()[np.arange(6), target.numpy()])
    np.testing.assert_allclose(loss.item(), -out.detach().numpy().mean())
    assert m.predict(x).tolist() == full.argmax(dim=1).tolist()
    single, single_loss = m(x[0], target[0])
    assert single.shape == () and single_loss.shape == ()


def test_adaptive_log_softmax_gradcheck():
    m = _asm()
    target = hubkit.tensor([0, 5, 11, 16, 2])
    x = np.random.default_rng(0).standard_normal((5, 8))
    gradcheck(lambda t: m(t, target).output, [x])
    weight = m.tail[1][0].weight
    gradcheck(lambda w: F.linear(hubkit.tensor(x), w).sum(), [weight.detach().numpy()])


def test_adaptive_log_softmax_errors():
    with pytest.raises(ArgumentError, match="cutoffs should be a sequence of length larger than 0"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [])
    with pytest.raises(ArgumentError, match="unique, positive integers sorted in an increasing order"):
        nn.AdaptiveLogSoftmaxWithLoss(8, 10, [5, 3])
    m = _asm()
    with pytest.raises(IndexOutOfRangeError, match=r"Target values should be in \[0, 19\]"):
        m(hubkit.randn(2, 8, dtype=hubkit.float64), hubkit.tensor([1, 20]))
    with pytest.raises(ShapeError, match="same size in the batch dimension"):
        m(hubkit.randn(2, 8, dtype=hubkit.float64), hubkit.tensor([1, 2, 3]))
    with pytest.raises(ShapeError, match="multi-target not supported"):
        m(hubkit.randn(2, 8, dtype=hubkit.float64), hubkit.tensor([[1], [2]]))


@pytest.mark.parity
def test_adaptive_log_softmax_matches_torch():
    import torch

    t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 20, [4, 10, 15], div_value=2.0, head_bias=True).double()
    h = _asm(head_bias=True)
    assert list(h.state_dict()) == list(t.state_dict()) and repr(h) == repr(t)
    h.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, 8)), rng.integers(0, 20, 9)
    hx, tx = hubkit.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_()
    ho, to = h(hx, hubkit.tensor(y)), t(tx, torch.from_numpy(y))
    np.testing.assert_allclose(ho.output.detach().numpy(), to.output.detach().numpy(), rtol=1e-12)
    ho.loss.backward()
    to.loss.backward()
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for (name, hp), (_, tp) in zip(h.named_parameters(), t.named_parameters()):
        assert (hp.grad is None) == (tp.grad is None), name  # a cluster no target falls in is not run
        if hp.grad is not None:
            np.testing.assert_allclose(hp.grad.numpy(), tp.grad.numpy(), rtol=1e-10, atol=1e-14, err_msg=name)
    np.testing.assert_allclose(h.log_prob(hubkit.tensor(x)).detach().numpy(),
                               t.log_prob(torch.from_numpy(x)).detach().numpy(), rtol=1e-12)
    assert h.predict(hubkit.tensor(x)).tolist() == t.predict(torch.from_numpy(x)).tolist()


# ---------------------------------------------------------------- ParameterList, ParameterDict


def test_parameter_list():
    pl = nn.ParameterList([nn.Parameter(hubkit.ones(2, 3)), hubkit.zeros(4), "not a tensor"])
    pl.append(hubkit.ones(1))
    assert len(pl) == 4 and [type(p).__name__ for p in pl] == ["Parameter", "Parameter", "str", "Parameter"]
    assert list(pl.state_dict()) == ["0", "1", "3"] and len(list(pl.parameters())) == 3
    assert isinstance(pl[-1], nn.Parameter) and pl[1].shape == (4,)
    pl[0] = hubkit.full((2,), 5.0)
    assert pl[0].tolist() == [5.0, 5.0] and isinstance(pl[0], nn.Parameter)
    assert len(pl[1:3]) == 2
    pl += [hubkit.ones(2)]
    assert len(pl) == 5
    assert repr(nn.ParameterList([hubkit.ones(2, 3)])) == (
        "ParameterList(  (0): Parameter containing: [hubkit.float32 of size 2x3])")
    with pytest.raises(IndexError):
        pl[9]  # noqa: B018
    with pytest.raises(ArgumentError, match="ParameterList should not be called"):
        pl(1)
    with pytest.raises(ArgumentTypeError, match="should be called with an iterable"):
        pl.extend(hubkit.ones(2))


def test_parameter_dict():
    pd = nn.ParameterDict({"b": hubkit.ones(2), "a": nn.Parameter(hubkit.zeros(3))})
    pd["c"] = hubkit.ones(1)
    assert list(pd) == ["a", "b", "c"]  # a plain dict's keys are sorted, as in torch
    assert list(pd.state_dict()) == ["a", "b", "c"] and all(isinstance(v, nn.Parameter) for v in pd.values())
    assert "a" in pd and pd.get("zz") is None and len(pd) == 3
    merged = pd | nn.ParameterDict([("z", hubkit.ones(1))])
    assert list(merged) == ["a", "b", "c", "z"] and merged["a"] is pd["a"]
    assert pd.popitem()[0] == "c" and pd.pop("b").shape == (2,) and list(pd) == ["a"]
    assert pd.setdefault("d", hubkit.zeros(2)).shape == (2,)
    copy = pd.copy()
    assert copy["a"] is pd["a"]
    pd.clear()
    assert len(pd) == 0 and list(pd.parameters()) == []
    with pytest.raises(KeyError):
        pd["missing"]  # noqa: B018
    with pytest.raises(ArgumentError, match="ParameterDict should not be called"):
        pd()


def test_parameter_containers_register_with_the_owner_module():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scales = nn.ParameterList([hubkit.ones(2) for _ in range(3)])
            self.biases = nn.ParameterDict({"x": hubkit.zeros(2)})

        def forward(self, x):
            for s in self.scales:
                x = x * s
            return x + self.biases["x"]

    net = Net()
    assert list(net.state_dict()) == ["scales.0", "scales.1", "scales.2", "biases.x"]
    opt = hubkit.optim.SGD(net.parameters(), lr=0.1)
    net(hubkit.ones(2)).sum().backward()
    opt.step()
    np.testing.assert_allclose(net.biases["x"].numpy(), [-0.1, -0.1], rtol=1e-6)


@pytest.mark.parity
def test_parameter_container_reprs_match_torch():
    import torch

    h = repr(nn.ParameterList([hubkit.ones(2, 3), "s"])) + repr(nn.ParameterDict({"w": hubkit.ones(4)}))
    t = repr(torch.nn.ParameterList([torch.ones(2, 3), "s"])) + repr(torch.nn.ParameterDict({"w": torch.ones(4)}))
    assert h == t.replace("torch.", "hubkit.")


# ---------------------------------------------------------------- deprecated names, assert_int_or_pair


def test_container_and_nll_loss_2d_are_deprecated_but_work():
    with pytest.warns(FutureWarning, match="`nn.Container` is deprecated"):
        c = nn.Container(fc=nn.Linear(2, 3))
    assert list(c.state_dict()) == ["fc.weight", "fc.bias"]
    with pytest.warns(FutureWarning, match="`NLLLoss2d` has been deprecated"):
        loss = nn.NLLLoss2d(ignore_index=1)
    x = F.log_softmax(hubkit.randn(2, 3, 4, 4), dim=1)
    y = hubkit.randint(0, 3, (2, 4, 4))
    assert isinstance(loss, nn.NLLLoss)
    np.testing.assert_allclose(loss(x, y).item(), F.nll_loss(x, y, ignore_index=1).item())


def test_assert_int_or_pair():
    F.assert_int_or_pair(3, "kernel_size", "{} must be an int or a pair")
    F.assert_int_or_pair((3, 4), "kernel_size", "{} must be an int or a pair")
    with pytest.raises(ArgumentError, match="kernel_size must be an int or a pair"):
        F.assert_int_or_pair((1, 2, 3), "kernel_size", "{} must be an int or a pair")


# ---------------------------------------------------------------- what is still missing says so


@pytest.mark.parametrize("owner, name", [(F, "grouped_mm"), (F, "scaled_mm"), (F, "scaled_grouped_mm")])
def test_torch_nn_names_hubkit_lacks_raise_unsupported_error(owner, name):
    from hubkit.errors import UnsupportedError

    prefix = "torch.nn." if owner is nn else "torch.nn.functional."
    with pytest.raises(UnsupportedError, match=rf"{prefix}{name} is not supported by hubkit"):
        getattr(owner, name)
    assert not hasattr(owner, name)
    with pytest.raises(AttributeError) as info:
        owner.no_such_name  # noqa: B018
    assert not isinstance(info.value, UnsupportedError)


@pytest.mark.parity
def test_unsupported_nn_names_exist_in_torch():
    import torch

    from hubkit.ops import unsupported

    assert all(hasattr(torch.nn, n) for n in unsupported.NN_MODULES)
    assert all(hasattr(torch.nn.functional, n) for n in unsupported.NN_FUNCTIONAL)
