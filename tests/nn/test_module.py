"""Module's contract: registration, traversal, state dicts, modes, devices/dtypes, hooks, repr, copying."""

from __future__ import annotations

import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import hubkit
import hubkit.nn as nn
from hubkit.errors import ArgumentError, ArgumentTypeError, HubkitError, StateDictError


class Block(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.register_buffer("scale", hubkit.ones(4), persistent=False)

    def forward(self, x):
        return self.bn1(self.conv1(x))


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(Block(3), Block(4))
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.layer1(x).mean(dim=(2, 3)))


def test_setattr_registers_parameters_buffers_and_submodules():
    m = nn.Module()
    m.w = nn.Parameter(hubkit.zeros(2))
    m.child = nn.Linear(2, 2)
    m.register_buffer("stat", hubkit.zeros(3))
    m.plain = 5
    assert list(m._parameters) == ["w"]
    assert list(m._modules) == ["child"]
    assert list(m._buffers) == ["stat"]
    assert m.plain == 5 and "plain" in m.__dict__
    assert m.w is m._parameters["w"] and m.stat is m._buffers["stat"]


def test_reassigning_registered_names_checks_type_and_accepts_none():
    m = nn.Linear(2, 3)
    m.bias = None
    assert m.bias is None and "bias" in m._parameters
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(ArgumentTypeError, match="parameter 'weight'"):
        m.weight = hubkit.zeros(3, 2)
    bn = nn.BatchNorm1d(3)
    bn.running_mean = hubkit.full((3,), 2.0)
    assert bn._buffers["running_mean"].numpy().tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(ArgumentTypeError, match="buffer 'running_mean'"):
        bn.running_mean = np.zeros(3)


def test_assigning_before_super_init_says_to_call_it():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(hubkit.zeros(1))

    with pytest.raises(ArgumentError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_register_rejects_dotted_and_taken_names():
    m = nn.Linear(2, 2)
    with pytest.raises(ArgumentError, match="can't contain"):
        m.register_buffer("a.b", hubkit.zeros(1))
    m.other = 3
    with pytest.raises(ArgumentError, match="already exists"):
        m.register_parameter("other", nn.Parameter(hubkit.zeros(1)))


def test_delattr_unregisters():
    m = nn.Linear(2, 2)
    del m.bias
    assert "bias" not in m._parameters
    with pytest.raises(AttributeError):
        _ = m.bias


def test_named_parameters_yields_a_shared_parameter_once():
    a, b = nn.Linear(3, 3), nn.Linear(3, 3)
    b.weight = a.weight
    seq = nn.Sequential(a, b)
    names = [n for n, _ in seq.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.bias"]
    assert len(list(seq.parameters())) == 3
    assert [n for n, _ in seq.named_parameters(remove_duplicate=False)] == ["0.weight", "0.bias", "1.weight",
                                                                           "1.bias"]
    assert [n for n, _ in seq.named_parameters(prefix="model")][0] == "model.0.weight"
    assert list(seq.named_parameters(recurse=False)) == []


def test_traversal_names_and_get_submodule():
    net = Net()
    names = [n for n, _ in net.named_modules()]
    assert names == ["", "layer1", "layer1.0", "layer1.0.conv1", "layer1.0.bn1", "layer1.1", "layer1.1.conv1",
                     "layer1.1.bn1", "fc"]
    assert [n for n, _ in net.named_children()] == ["layer1", "fc"]
    assert net.get_submodule("layer1.1.bn1") is net.layer1[1].bn1
    assert net.get_parameter("layer1.0.conv1.weight") is net.layer1[0].conv1.weight
    assert net.get_buffer("layer1.0.bn1.running_var") is net.layer1[0].bn1.running_var
    with pytest.raises(AttributeError, match="no submodule 'conv9'"):
        net.get_submodule("layer1.0.conv9")
    shared = nn.Linear(1, 1)
    assert len(list(nn.Sequential(shared, shared).modules())) == 2


def test_state_dict_keys_order_and_non_persistent_buffers():
    net = Net()
    keys = list(net.state_dict())
    assert keys == [
        "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
        "layer1.0.bn1.running_var", "layer1.0.bn1.num_batches_tracked",
        "layer1.1.conv1.weight", "layer1.1.bn1.weight", "layer1.1.bn1.bias", "layer1.1.bn1.running_mean",
        "layer1.1.bn1.running_var", "layer1.1.bn1.num_batches_tracked", "fc.weight", "fc.bias",
    ]
    assert "layer1.0.scale" in dict(net.named_buffers())
    sd = net.state_dict()
    assert not isinstance(sd["fc.weight"], nn.Parameter) and not sd["fc.weight"].requires_grad
    assert np.shares_memory(sd["fc.weight"].numpy(), net.fc.weight.numpy())
    assert isinstance(net.state_dict(keep_vars=True)["fc.weight"], nn.Parameter)


def test_load_state_dict_copies_in_place_with_cast_from_numpy_and_tensors():
    src, dst = Net(), Net()
    sd = {k: v.numpy().astype(np.float64) if v.dtype.kind == "f" else v.numpy() for k, v in src.state_dict().items()}
    sd["fc.bias"] = hubkit.tensor(sd["fc.bias"])
    weight = dst.fc.weight
    missing, unexpected = dst.load_state_dict(sd)
    assert (missing, unexpected) == ([], [])
    assert dst.fc.weight is weight and weight.dtype == np.float32
    for k, v in dst.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), src.state_dict()[k].numpy())
    sd["fc.weight"][0, 0] = 123.0
    assert dst.fc.weight.numpy()[0, 0] != 123.0  # a copy, not an alias


def test_load_state_dict_strict_error_lists_every_problem():
    net = Net()
    sd = dict(net.state_dict())
    del sd["fc.bias"]
    sd["fc.extra"] = np.zeros(1)
    sd["layer1.0.conv1.weight"] = np.zeros((4, 3, 5, 5), np.float32)
    with pytest.raises(StateDictError) as info:
        net.load_state_dict(sd)
    err = info.value
    assert isinstance(err, HubkitError)
    assert err.missing == ["fc.bias"] and err.unexpected == ["fc.extra"]
    assert err.mismatched == [("layer1.0.conv1.weight", (4, 3, 3, 3), (4, 3, 5, 5))]
    text = str(err)
    assert '"fc.bias"' in text and '"fc.extra"' in text
    assert "(4, 3, 5, 5)" in text and "(4, 3, 3, 3)" in text


def test_load_state_dict_non_strict_returns_keys_but_shape_mismatch_still_fails():
    net = Net()
    sd = dict(net.state_dict())
    del sd["fc.bias"]
    sd["head.weight"] = np.zeros(2)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["fc.bias"] and unexpected == ["head.weight"]
    sd["fc.weight"] = np.zeros((3, 3))
    with pytest.raises(StateDictError, match="size mismatch for fc.weight"):
        net.load_state_dict(sd, strict=False)


def test_load_state_dict_tolerates_missing_num_batches_tracked_and_one_element_scalars():
    bn = nn.BatchNorm2d(2)
    sd = {k: v.numpy().copy() for k, v in bn.state_dict().items()}
    del sd["num_batches_tracked"]
    assert bn.load_state_dict(sd) == ([], [])
    sd["num_batches_tracked"] = np.array([7])
    bn.load_state_dict(sd)
    assert bn.num_batches_tracked.item() == 7 and bn.num_batches_tracked.dtype == np.int64


def test_train_and_eval_are_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_to_dtype_keeps_parameter_identity_and_converts_grads_not_int_buffers():
    net = Net()
    w = net.fc.weight
    net(hubkit.randn(2, 3, 5, 5)).sum().backward()
    net.to(hubkit.float64)
    assert net.fc.weight is w and w.dtype == np.float64 and w.grad.dtype == np.float64
    assert net.layer1[0].bn1.running_mean.dtype == np.float64
    assert net.layer1[0].bn1.num_batches_tracked.dtype == np.int64
    assert net.float() is net and w.dtype == np.float32
    net.to("cpu", dtype=hubkit.float64)
    assert w.dtype == np.float64
    with pytest.raises(ArgumentTypeError, match="floating point"):
        net.to(hubkit.int32)


def test_zero_grad_requires_grad_and_apply():
    net = Net()
    net(hubkit.randn(2, 3, 4, 4)).sum().backward()
    net.zero_grad(set_to_none=False)
    assert all(np.all(p.grad.numpy() == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Conv2d"


def test_forward_hooks_modify_input_and_output_and_are_removable():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda mod, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda mod, args, out: calls.append(out.shape) or out + 1)
    y = lin(hubkit.ones(1, 2))
    np.testing.assert_allclose(y.numpy(), lin.bias.numpy()[None] + 1, rtol=1e-6)
    assert calls == [(1, 2)]
    h1.remove()
    with h2:
        pass
    x = hubkit.ones(1, 2)
    np.testing.assert_allclose(lin(x).numpy(), (x.numpy() @ lin.weight.numpy().T) + lin.bias.numpy(), rtol=1e-6)
    assert calls == [(1, 2)]


def test_prepend_hook_runs_first():
    lin = nn.Identity()
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append("second"))
    lin.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    lin(hubkit.ones(1))
    assert order == ["first", "second"]


def test_repr_matches_pytorch_format():
    model = nn.Sequential(
        nn.Conv2d(3, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(10, 5),
        nn.ModuleList([nn.Linear(2, 2) for _ in range(3)]), nn.ModuleDict({"a": nn.ReLU()}),
    )
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(3, 6, kernel_size=(5, 5), stride=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)\n"
        "  (3): Flatten(start_dim=1, end_dim=-1)\n"
        "  (4): Linear(in_features=10, out_features=5, bias=True)\n"
        "  (5): ModuleList(\n"
        "    (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
        "  )\n"
        "  (6): ModuleDict(\n"
        "    (a): ReLU()\n"
        "  )\n"
        ")"
    )
    assert repr(nn.Parameter(hubkit.ones(2))) == "Parameter containing:\ntensor([1., 1.], requires_grad=True)"


def test_deepcopy_and_pickle_give_independent_equal_modules():
    net = Net()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.fc.weight is not net.fc.weight and isinstance(clone.fc.weight, nn.Parameter)
        assert clone.fc.weight.requires_grad
        for (k, a), (_, b) in zip(net.state_dict().items(), clone.state_dict().items()):
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
        clone.fc.weight.array[...] = 0
        assert np.any(net.fc.weight.numpy() != 0)


def test_parameter_shares_memory_and_defaults_to_requires_grad():
    t = hubkit.zeros(3)
    p = nn.Parameter(t)
    assert p.requires_grad and p.is_leaf
    p.array[0] = 5
    assert t.numpy()[0] == 5
    assert not nn.Parameter(t, requires_grad=False).requires_grad


def test_call_without_forward_explains():
    with pytest.raises(ArgumentError, match="forward"):
        nn.Module()(1)


def test_sequential_indexing_slicing_and_mutation():
    a, b, c = nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 1)
    seq = nn.Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and list(sub) == [b, c] and list(sub._modules) == ["1", "2"]
    seq.append(nn.Tanh())
    assert list(seq._modules) == ["0", "1", "2", "3"]
    del seq[1]
    assert list(seq._modules) == ["0", "1", "2"] and seq[1] is c
    seq.insert(0, nn.Identity())
    assert isinstance(seq[0], nn.Identity) and seq[1] is a
    assert seq.pop(0).__class__ is nn.Identity
    named = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, 1, 1)), ("act", nn.ReLU())]))
    assert list(named.state_dict()) == ["conv.weight", "conv.bias"]
    with pytest.raises(IndexError):
        seq[10]
    x = hubkit.randn(4, 1)
    np.testing.assert_allclose(nn.Sequential(a, c)(x).numpy(), c(a(x)).numpy())


def test_module_list_and_dict():
    ml = nn.ModuleList([nn.Linear(1, 1)])
    ml.append(nn.ReLU())
    ml += [nn.Tanh()]
    assert len(ml) == 3 and isinstance(ml[-1], nn.Tanh)
    assert [type(m).__name__ for m in ml[1:]] == ["ReLU", "Tanh"]
    del ml[0]
    assert list(ml._modules) == ["0", "1"]
    md = nn.ModuleDict({"a": nn.Linear(1, 2)})
    md["b"] = nn.Linear(2, 1)
    assert list(md.keys()) == ["a", "b"] and "a" in md and len(md) == 2
    assert list(md.state_dict()) == ["a.weight", "a.bias", "b.weight", "b.bias"]
    with pytest.raises(KeyError, match="keys are"):
        md["zz"]


@pytest.mark.parity
def test_state_dict_keys_and_reprs_equal_torch():
    import torch

    hk = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                       nn.Sequential(nn.Linear(8, 4), nn.Dropout(0.1)), nn.LayerNorm(4), nn.GroupNorm(2, 8),
                       nn.Embedding(10, 4, padding_idx=0), nn.MultiheadAttention(8, 2, batch_first=True))
    th = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8),
                             torch.nn.ReLU(),
                             torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.Dropout(0.1)),
                             torch.nn.LayerNorm(4), torch.nn.GroupNorm(2, 8), torch.nn.Embedding(10, 4, padding_idx=0),
                             torch.nn.MultiheadAttention(8, 2, batch_first=True))
    assert list(hk.state_dict()) == list(th.state_dict())
    for k, v in th.state_dict().items():
        assert tuple(hk.state_dict()[k].shape) == tuple(v.shape), k
    assert repr(hk) == repr(th)
    hk.load_state_dict({k: v.numpy() for k, v in th.state_dict().items()})
    assert repr(nn.Parameter(hubkit.tensor([1.0, 2.0]))) == repr(torch.nn.Parameter(torch.tensor([1.0, 2.0])))


@pytest.mark.gpu
def test_to_cuda_moves_everything_and_a_training_step_matches_the_cpu():
    from hubkit import optim

    cpu = Net()
    gpu = copy.deepcopy(cpu)
    w = gpu.fc.weight
    assert gpu.cuda() is gpu and gpu.fc.weight is w and w.device.type == "cuda"
    assert all(t.device.type == "cuda" for t in [*gpu.parameters(), *gpu.buffers()])
    x = hubkit.randn(2, 3, 5, 5)
    for model, inp in ((cpu, x), (gpu, x.to("cuda"))):
        opt = optim.Adam(model.parameters(), lr=0.01)
        # Squared, not a plain sum: a sum of a linear layer after train-mode BatchNorm has exactly zero
        # gradient upstream of it, and Adam would turn that rounding noise into full-size steps.
        (model(inp) ** 2).sum().backward()
        opt.step()
    for (k, a), (_, b) in zip(cpu.state_dict().items(), gpu.cpu().state_dict().items()):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-5, err_msg=k)
