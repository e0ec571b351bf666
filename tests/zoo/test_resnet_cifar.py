"""ResNet-20/32/44/56/110 for CIFAR-10 (option-A shortcuts), and parity with the same network written in torch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import hubkit
import hubkit.nn.functional as F
from hubkit import nn
from hubkit.errors import ArgumentError
from hubkit.zoo.vision.resnet_cifar import CifarResNet, ShortcutA, resnet20


def test_load_builds_resnet20_with_0_27m_parameters_and_cifar_shapes():
    hubkit.manual_seed(0)
    model = hubkit.load("resnet20")
    assert isinstance(model, CifarResNet)
    count = sum(p.numel() for p in model.parameters())
    assert count == 269_722 and round(count / 1e6, 2) == 0.27  # He et al. 2016, Table 6: 0.27M
    weighted = [m for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(weighted) == 20  # 6n + 2 with n = 3
    x = hubkit.from_numpy(np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32))
    out = F.relu(model.bn1(model.conv1(x)))
    for layer, shape in ((model.layer1, (2, 16, 32, 32)), (model.layer2, (2, 32, 16, 16)),
                         (model.layer3, (2, 64, 8, 8))):
        out = layer(out)
        assert out.shape == shape
    assert model(x).shape == (2, 10)


@pytest.mark.parametrize(("name", "n", "params"), [("resnet32", 5, 464_154), ("resnet44", 7, 658_586),
                                                    ("resnet56", 9, 853_018), ("resnet110", 18, 1_727_962)])
def test_deeper_variants_come_from_the_same_code(name, n, params):
    model = hubkit.load(name)
    assert [len(model.layer1), len(model.layer2), len(model.layer3)] == [n, n, n]
    assert sum(p.numel() for p in model.parameters()) == params
    # akamaster/pytorch_resnet_cifar10's README: 0.46M, 0.66M, 0.85M, 1.7M
    assert round(params / 1e6, 2 if params < 1e6 else 1) == {5: 0.46, 7: 0.66, 9: 0.85, 18: 1.7}[n]


def test_state_dict_keys_are_akamasters_and_shortcuts_have_no_parameters():
    keys = list(resnet20().state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"] and keys[-2:] == ["linear.weight", "linear.bias"]
    assert "layer2.0.conv1.weight" in keys and "layer3.2.bn2.running_var" in keys
    assert not any("shortcut" in k for k in keys)
    model = resnet20()
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    assert isinstance(model.layer2[0].shortcut, ShortcutA) and model.layer2[0].shortcut.pad == 8
    assert isinstance(model.layer3[0].shortcut, ShortcutA) and model.layer3[0].shortcut.pad == 16
    assert isinstance(model.layer2[1].shortcut, nn.Identity)


def test_option_a_shortcut_subsamples_and_zero_pads_channels_evenly():
    x = np.random.default_rng(1).standard_normal((2, 4, 5, 6))
    t = hubkit.tensor(x, requires_grad=True)
    y = ShortcutA(2)(t)
    assert y.shape == (2, 8, 3, 3)
    got = y.numpy()
    np.testing.assert_array_equal(got[:, 2:6], x[:, :, ::2, ::2])
    assert not got[:, :2].any() and not got[:, 6:].any()
    y.sum().backward()
    grad = np.zeros_like(x)
    grad[:, :, ::2, ::2] = 1.0
    np.testing.assert_array_equal(t.grad.numpy(), grad)


def test_kaiming_normal_init_of_convs_and_linear():
    hubkit.manual_seed(3)
    model = resnet20()
    w = model.layer3[1].conv1.weight.numpy()  # 64 x 64 x 3 x 3: fan_in 576
    assert abs(w.std() / math.sqrt(2 / 576) - 1) < 0.05 and abs(w.mean()) < 0.01
    lin = model.linear.weight.numpy()  # 10 x 64: 640 draws, fan_in 64
    assert abs(lin.std() / math.sqrt(2 / 64) - 1) < 0.15
    bn = model.layer1[0].bn1
    assert (bn.weight.numpy() == 1).all() and (bn.bias.numpy() == 0).all()


def test_only_option_a_shapes_are_accepted():
    with pytest.raises(ArgumentError, match="three positive ints"):
        CifarResNet([3, 3])
    from hubkit.zoo.vision.resnet_cifar import BasicBlock

    with pytest.raises(ArgumentError, match="double the channels"):
        BasicBlock(16, 48, stride=2)


def test_a_few_sgd_steps_lower_the_loss():
    hubkit.manual_seed(0)
    model = resnet20().train()
    rng = np.random.default_rng(0)
    x = hubkit.from_numpy(rng.standard_normal((4, 3, 8, 8)).astype(np.float32))  # small: any H, W runs
    y = hubkit.tensor(rng.integers(0, 10, 4))
    opt = hubkit.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert all(np.isfinite(losses)) and losses[-1] < 0.5 * losses[0], losses


# ---------------------------------------------------------------- parity with torch


def torch_resnet20(torch):
    """The same network written with torch.nn, the way akamaster/pytorch_resnet_cifar10 builds it."""
    tnn, tF = torch.nn, torch.nn.functional

    class Pad(tnn.Module):
        def __init__(self, pad):
            super().__init__()
            self.pad = pad

        def forward(self, x):
            return tF.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad), "constant", 0)

    class Block(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.shortcut = Pad(cout // 4) if stride != 1 or cin != cout else tnn.Sequential()

        def forward(self, x):
            out = tF.relu(self.bn1(self.conv1(x)))
            return tF.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(16)
            widths = [(16, 16, 1), (16, 32, 2), (32, 64, 2)]
            for i, (cin, cout, stride) in enumerate(widths, 1):
                blocks = [Block(cin, cout, stride), Block(cout, cout, 1), Block(cout, cout, 1)]
                setattr(self, f"layer{i}", tnn.Sequential(*blocks))
            self.linear = tnn.Linear(64, 10)

        def forward(self, x):
            out = tF.relu(self.bn1(self.conv1(x)))
            out = self.layer3(self.layer2(self.layer1(out)))
            out = tF.avg_pool2d(out, out.size()[3])
            return self.linear(out.view(out.size(0), -1))

    return Net()


@pytest.mark.parity
def test_resnet20_matches_torch_on_copied_weights_in_train_and_eval_mode():
    torch = pytest.importorskip("torch")
    hubkit.manual_seed(4)
    model = resnet20()
    ref = torch_resnet20(torch)
    state = {k: torch.from_numpy(np.array(v.numpy())) for k, v in model.state_dict().items()}
    ref.load_state_dict(state, strict=True)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 16, 16)).astype(np.float32)
    y = rng.integers(0, 10, 2)

    # training mode: batch statistics, gradients of every parameter, updated running statistics
    loss = F.cross_entropy(model.train()(hubkit.from_numpy(x)), hubkit.tensor(y))
    loss.backward()
    ref_loss = torch.nn.functional.cross_entropy(ref.train()(torch.from_numpy(x)), torch.from_numpy(y))
    ref_loss.backward()
    np.testing.assert_allclose(float(loss.item()), float(ref_loss.item()), rtol=1e-5)
    ref_params = dict(ref.named_parameters())
    for name, p in model.named_parameters():
        want = ref_params[name].grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), want, rtol=1e-3, atol=1e-4 * np.abs(want).max(), err_msg=name)
    ref_buffers = dict(ref.named_buffers())
    for name, b in model.named_buffers():
        np.testing.assert_allclose(b.numpy(), ref_buffers[name].numpy(), rtol=1e-4, atol=1e-6, err_msg=name)

    # eval mode: running statistics
    with hubkit.no_grad():
        got = model.eval()(hubkit.from_numpy(x)).numpy()
    with torch.no_grad():
        want = ref.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
