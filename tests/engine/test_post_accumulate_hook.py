"""``Tensor.register_post_accumulate_grad_hook``: runs once per backward, as soon as a leaf's gradient is final."""

import numpy as np
import pytest

import hubkit
from hubkit import nn
from hubkit.errors import GradError


def test_hook_sees_the_accumulated_grad_summed_over_all_uses():
    w = hubkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    y = (w * w).sum() + (3 * w).sum()  # two uses of w: 2w + 3
    y.backward()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0], [5.0, 7.0, 9.0])
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 7.0, 9.0])


def test_hook_runs_after_an_earlier_grad_is_accumulated_into():
    w = hubkit.tensor([1.0, 1.0], requires_grad=True)
    seen = []
    w.register_post_accumulate_grad_hook(lambda t: seen.append(t.grad.numpy().copy()))
    (2 * w).sum().backward()
    (2 * w).sum().backward()
    np.testing.assert_allclose(seen[1], [4.0, 4.0])


def test_hooks_fire_during_backward_last_layer_first():
    """The last layer's parameters are final before the first layer's backward runs: the hook fires then."""
    hubkit.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    order = []
    for name, p in net.named_parameters():
        p.register_post_accumulate_grad_hook(lambda t, name=name: order.append((name, t.grad is not None)))
    net(hubkit.randn(5, 4)).sum().backward()
    names = [n for n, _ in order]
    assert all(ok for _, ok in order)
    assert sorted(names) == sorted(n for n, _ in net.named_parameters())
    assert names.index("2.weight") < names.index("0.weight")
    assert names.index("2.bias") < names.index("0.bias")


def test_grads_of_two_hooked_leaves_never_share_memory():
    a = hubkit.tensor([1.0, 2.0], requires_grad=True)
    b = hubkit.tensor([3.0, 4.0], requires_grad=True)
    for t in (a, b):
        t.register_post_accumulate_grad_hook(lambda t: None)
    (a + b).sum().backward()
    a.grad.array[0] = 100.0
    assert b.grad.numpy()[0] == 1.0


def test_removed_hook_does_not_run_and_unused_leaf_gets_none():
    w = hubkit.tensor([1.0], requires_grad=True)
    unused = hubkit.tensor([1.0], requires_grad=True)
    calls = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append("w"))
    unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused"))
    handle.remove()
    (w * 2).sum().backward()
    assert calls == []
    assert unused.grad is None


def test_autograd_grad_does_not_run_post_accumulate_hooks():
    w = hubkit.tensor([1.0, 2.0], requires_grad=True)
    calls = []
    w.register_post_accumulate_grad_hook(lambda t: calls.append(1))
    (g,) = hubkit.autograd.grad((w * w).sum(), w)
    np.testing.assert_allclose(g.numpy(), [2.0, 4.0])
    assert calls == [] and w.grad is None


def test_registering_on_a_non_leaf_or_a_constant_is_an_error():
    w = hubkit.tensor([1.0], requires_grad=True)
    with pytest.raises(GradError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(GradError, match="doesn't require gradient"):
        hubkit.tensor([1.0]).register_post_accumulate_grad_hook(lambda t: None)


@pytest.mark.parity
def test_hook_order_and_values_match_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    hubkit.manual_seed(1)
    net = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2))
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    with torch.no_grad():
        for p, tp in zip(net.parameters(), tnet.parameters()):
            tp.copy_(torch.from_numpy(p.numpy()))
    ours, theirs = [], []
    for (name, p), tp in zip(net.named_parameters(), tnet.parameters()):
        p.register_post_accumulate_grad_hook(lambda t, name=name: ours.append((name, t.grad.numpy().copy())))
        tp.register_post_accumulate_grad_hook(lambda t, name=name: theirs.append((name, t.grad.numpy().copy())))
    net(hubkit.from_numpy(x)).pow(2).sum().backward()
    tnet(torch.from_numpy(x)).pow(2).sum().backward()
    assert sorted(n for n, _ in ours) == sorted(n for n, _ in theirs)
    theirs_by_name = dict(theirs)
    for name, g in ours:
        np.testing.assert_allclose(g, theirs_by_name[name], rtol=1e-5, atol=1e-6)
