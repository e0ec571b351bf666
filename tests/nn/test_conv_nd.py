"""conv3d, conv_transpose1d/3d, fold/unfold and their layers: gradcheck, PyTorch parity (functional and
modules, weights loaded from a torch state dict by key), padding modes, output_size, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn as nn
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, ShapeError

RNG = np.random.default_rng(11)


def _rand(*shape):
    return RNG.standard_normal(shape)


# (input shape, weight shape, kwargs): odd sizes, strides, padding, dilation, groups, batch 1, unbatched
CONV3D_CASES = [
    ((2, 2, 3, 4, 3), (3, 2, 2, 2, 2), dict()),
    ((1, 4, 4, 3, 5), (4, 2, 3, 2, 2), dict(stride=(2, 1, 2), padding=(1, 0, 1), groups=2)),
    ((1, 2, 5, 4, 4), (2, 1, 2, 2, 2), dict(padding=1, dilation=(2, 1, 2), groups=2)),  # depthwise, dilated
    ((1, 3, 3, 4, 3), (2, 3, 1, 1, 1), dict(stride=2)),  # pointwise, strided
    ((1, 2, 3, 4, 4), (2, 2, 2, 3, 2), dict(padding="same")),  # even kernels: asymmetric same padding
    ((3, 4, 3, 4), (2, 3, 2, 2, 2), dict(padding="valid", stride=(1, 2, 1))),  # unbatched (C, D, H, W)
]

CONVT1D_CASES = [
    ((2, 3, 5), (3, 2, 3), dict()),
    ((1, 4, 4), (4, 1, 2), dict(stride=3, padding=1, output_padding=2, groups=2)),
    ((2, 2, 6), (2, 3, 3), dict(stride=2, padding=2, output_padding=1, dilation=2)),
    ((3, 4), (3, 2, 3), dict(stride=2, output_padding=1)),  # unbatched (C, L)
]

CONVT3D_CASES = [
    ((1, 2, 2, 3, 2), (2, 2, 2, 2, 2), dict()),
    ((2, 4, 2, 3, 2), (4, 1, 3, 2, 2), dict(stride=(2, 1, 2), padding=(1, 0, 1), output_padding=(1, 0, 0), groups=2)),
    ((1, 2, 3, 2, 2), (2, 2, 2, 2, 2), dict(stride=2, output_padding=(0, 1, 1), dilation=(1, 2, 1))),
    ((2, 2, 3, 2), (2, 1, 2, 2, 2), dict(stride=(1, 2, 1))),  # unbatched (C, D, H, W)
]


@pytest.mark.parametrize("xs, ws, kw", CONV3D_CASES)
def test_conv3d_gradcheck(xs, ws, kw):
    gradcheck(lambda x, w, b: F.conv3d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])])


@pytest.mark.parametrize("xs, ws, kw", CONVT1D_CASES)
def test_conv_transpose1d_gradcheck(xs, ws, kw):
    out = ws[1] * kw.get("groups", 1)
    gradcheck(lambda x, w, b: F.conv_transpose1d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(out)])


@pytest.mark.parametrize("xs, ws, kw", CONVT3D_CASES)
def test_conv_transpose3d_gradcheck(xs, ws, kw):
    out = ws[1] * kw.get("groups", 1)
    gradcheck(lambda x, w, b: F.conv_transpose3d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(out)])


def test_conv3d_on_non_contiguous_input_and_weight_gradcheck():
    # the input arrives with D and W swapped, the weight with its two channel axes swapped
    gradcheck(lambda x, w: F.conv3d(x.transpose(2, 4), w.transpose(0, 1), None, stride=(1, 2, 1), padding=1),
              [_rand(1, 2, 3, 4, 3), _rand(2, 3, 2, 2, 2)])  # fmt: skip


def test_conv_transpose3d_without_bias_on_a_non_contiguous_input_gradcheck():
    gradcheck(lambda x, w: F.conv_transpose3d(x.permute(0, 1, 4, 3, 2), w, None, stride=2, padding=1),
              [_rand(1, 2, 2, 3, 3), _rand(2, 2, 3, 2, 2)])  # fmt: skip


@pytest.mark.parity
@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, kw", CONV3D_CASES)
def test_conv3d_matches_torch(xs, ws, kw, dtype):
    compare_with_torch(lambda m, x, w, b: m.conv3d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(ws[0])],
                       dtype=dtype)  # fmt: skip


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, kw", CONVT1D_CASES)
def test_conv_transpose1d_matches_torch(xs, ws, kw, dtype):
    out = ws[1] * kw.get("groups", 1)
    compare_with_torch(lambda m, x, w, b: m.conv_transpose1d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(out)],
                       dtype=dtype)  # fmt: skip


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("xs, ws, kw", CONVT3D_CASES)
def test_conv_transpose3d_matches_torch(xs, ws, kw, dtype):
    out = ws[1] * kw.get("groups", 1)
    compare_with_torch(lambda m, x, w, b: m.conv_transpose3d(x, w, b, **kw), [_rand(*xs), _rand(*ws), _rand(out)],
                       dtype=dtype)  # fmt: skip


def test_conv3d_of_a_delta_kernel_shifts_the_volume():
    x = _rand(1, 1, 4, 5, 6).astype(np.float32)
    w = np.zeros((1, 1, 3, 3, 3), np.float32)
    w[0, 0, 0, 1, 2] = 1  # output (d, h, w) reads input (d - 1, h, w + 1) with padding 1
    y = F.conv3d(hubkit.tensor(x), hubkit.tensor(w), padding=1).numpy()
    np.testing.assert_array_equal(y[0, 0, 1:, :, :-1], x[0, 0, :-1, :, 1:])
    assert y.dtype == np.float32


# ---------------------------------------------------------------- fold / unfold

UNFOLD_CASES = [
    ((2, 3, 5, 6), dict(kernel_size=2)),
    ((1, 2, 6, 7), dict(kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))),
    ((2, 4, 4), dict(kernel_size=3, padding=1)),  # unbatched (C, H, W)
]
FOLD_CASES = [
    ((2, 12, 20), dict(output_size=(5, 6), kernel_size=2)),
    ((1, 12, 20), dict(output_size=(6, 7), kernel_size=(2, 3), dilation=(1, 2), padding=1, stride=(2, 1))),
    ((18, 16), dict(output_size=4, kernel_size=3, padding=1)),  # unbatched (C*KH*KW, L)
]


@pytest.mark.parametrize("shape, kw", UNFOLD_CASES)
def test_unfold_gradcheck(shape, kw):
    gradcheck(lambda x: F.unfold(x, **kw), [_rand(*shape)])


@pytest.mark.parametrize("shape, kw", FOLD_CASES)
def test_fold_gradcheck(shape, kw):
    gradcheck(lambda x: F.fold(x, **kw), [_rand(*shape)])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kw", UNFOLD_CASES)
def test_unfold_matches_torch(shape, kw, dtype):
    compare_with_torch(lambda m, x: m.unfold(x, **kw), [_rand(*shape)], dtype=dtype)


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape, kw", FOLD_CASES)
def test_fold_matches_torch(shape, kw, dtype):
    compare_with_torch(lambda m, x: m.fold(x, **kw), [_rand(*shape)], dtype=dtype)


def test_fold_of_unfold_counts_how_many_blocks_cover_each_pixel():
    ones = hubkit.ones(1, 1, 4, 5)
    cover = F.fold(F.unfold(ones, 2), (4, 5), 2).numpy()[0, 0]
    expected = np.outer([1, 2, 2, 1], [1, 2, 2, 2, 1])
    np.testing.assert_array_equal(cover, expected)


def test_unfold_then_matmul_is_a_convolution():
    x, w = _rand(2, 3, 5, 6), _rand(4, 3, 3, 3)
    cols = F.unfold(hubkit.tensor(x), 3, padding=1)  # (N, C*9, L)
    y = (hubkit.tensor(w.reshape(4, -1)) @ cols).reshape(2, 4, 5, 6)
    np.testing.assert_allclose(y.numpy(), F.conv2d(hubkit.tensor(x), hubkit.tensor(w), padding=1).numpy(),
                               rtol=1e-10, atol=1e-12)  # fmt: skip


# ---------------------------------------------------------------- layers

LAYER_CASES = [
    ("Conv3d", (4, 6, 3), {"stride": 2, "padding": 1, "groups": 2}, (2, 4, 5, 4, 5)),
    ("Conv3d", (3, 2, (2, 3, 2)), {"padding": "same", "padding_mode": "reflect"}, (1, 3, 4, 5, 4)),
    ("Conv3d", (2, 3, 3), {"padding": 1, "padding_mode": "circular", "bias": False}, (1, 2, 3, 4, 3)),
    ("Conv3d", (2, 3, 3), {"padding": (1, 2, 0), "padding_mode": "replicate", "dilation": (1, 2, 1)}, (2, 2, 4, 5, 3)),
    ("Conv1d", (2, 4, 3), {"padding": 2, "padding_mode": "reflect", "dilation": 2}, (2, 2, 7)),
    ("Conv1d", (2, 4, 4), {"padding": "same", "padding_mode": "circular"}, (2, 2, 7)),
    ("Conv2d", (2, 3, 3), {"padding": (1, 2), "padding_mode": "replicate", "stride": 2}, (2, 2, 5, 6)),
    ("ConvTranspose1d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (2, 4, 5)),
    ("ConvTranspose1d", (3, 2, 2), {"bias": False, "dilation": 3}, (1, 3, 4)),
    ("ConvTranspose3d", (4, 2, 3), {"stride": 2, "padding": 1, "output_padding": (1, 0, 1)}, (1, 4, 2, 3, 2)),
    ("ConvTranspose3d", (2, 4, (2, 3, 2)), {"groups": 2, "dilation": (2, 1, 1)}, (2, 2, 2, 2, 3)),
]


def _torch_pair(name, args, kwargs):
    import torch

    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(*args, **kwargs)
    ours = getattr(nn, name)(*args, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


@pytest.mark.parity
@pytest.mark.parametrize("name, args, kwargs, shape", LAYER_CASES)
def test_conv_layers_match_torch_forward_backward_repr_and_state_dict(name, args, kwargs, shape):
    import torch

    ours, theirs = _torch_pair(name, args, kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = _rand(*shape).astype(np.float32)
    hx, tx = hubkit.tensor(x, requires_grad=True), torch.from_numpy(x).requires_grad_(True)
    hy, ty = ours(hx), theirs(tx)
    np.testing.assert_allclose(hy.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = _rand(*ty.shape).astype(np.float32)
    hy.backward(hubkit.tensor(g))
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(hx.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    tparams = dict(theirs.named_parameters())
    for pname, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), tparams[pname].grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=pname)


@pytest.mark.parity
@pytest.mark.parametrize("name, shape, output_size", [
    ("ConvTranspose1d", (1, 4, 5), (10,)),
    ("ConvTranspose3d", (1, 4, 2, 3, 2), (1, 6, 3, 5, 4)),
])  # fmt: skip
def test_conv_transpose_output_size_picks_output_padding_like_torch(name, shape, output_size):
    import torch

    ours, theirs = _torch_pair(name, (4, 6, 3), {"stride": 2, "padding": 1})
    x = _rand(*shape).astype(np.float32)
    hy = ours(hubkit.tensor(x), output_size=output_size)
    ty = theirs(torch.from_numpy(x), output_size=output_size)
    assert hy.shape == tuple(ty.shape)
    np.testing.assert_allclose(hy.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_conv_layers_have_torch_shapes_and_parameter_names():
    conv = nn.Conv3d(4, 6, (3, 2, 1), groups=2, bias=False)
    assert conv.weight.shape == (6, 2, 3, 2, 1) and conv.bias is None
    assert list(conv.state_dict()) == ["weight"]
    up = nn.ConvTranspose3d(4, 6, 3, groups=2)
    assert up.weight.shape == (4, 3, 3, 3, 3) and up.bias.shape == (6,)
    assert nn.ConvTranspose1d(3, 5, 4, stride=2, padding=1)(hubkit.randn(2, 3, 6)).shape == (2, 5, 12)
    assert nn.Conv3d(2, 3, 3, padding=1)(hubkit.randn(2, 4, 4, 4)).shape == (3, 4, 4, 4)  # unbatched
    assert nn.Fold(4, 2)(hubkit.randn(2, 8, 9)).shape == (2, 2, 4, 4)
    assert nn.Unfold(2, stride=2)(hubkit.randn(2, 3, 4, 4)).shape == (2, 12, 4)


def test_state_dict_with_wrong_shapes_is_refused():
    from hubkit.errors import StateDictError

    with pytest.raises(StateDictError, match="weight"):
        nn.Conv3d(2, 3, 3).load_state_dict({"weight": np.zeros((3, 2, 3, 3)), "bias": np.zeros(3)})


# ---------------------------------------------------------------- bad input


def test_conv_nd_errors_say_what_was_expected():
    x3, w3 = hubkit.randn(1, 2, 4, 4, 4), hubkit.randn(3, 2, 3, 3, 3)
    with pytest.raises(ShapeError, match=r"conv3d: expected a 5-d batched or 4-d unbatched input, got shape \(2, 4\)"):
        F.conv3d(hubkit.randn(2, 4), w3)
    with pytest.raises(ShapeError, match=r"conv3d: expected a 5-d input .* and a 5-d weight, .* \(3, 2, 3, 3\)"):
        F.conv3d(x3, hubkit.randn(3, 2, 3, 3))
    with pytest.raises(ShapeError, match="has 4 channels"):
        F.conv3d(hubkit.randn(1, 4, 4, 4, 4), w3)
    with pytest.raises(ShapeError, match="too small"):
        F.conv3d(hubkit.randn(1, 2, 2, 4, 4), w3)
    with pytest.raises(ArgumentError, match="stride must be"):
        F.conv3d(x3, w3, stride=(1, 2))
    with pytest.raises(ArgumentError, match="'same' is not supported for strided"):
        F.conv3d(x3, w3, stride=2, padding="same")
    with pytest.raises(DTypeError, match="share a dtype"):
        F.conv3d(x3.double(), w3)
    with pytest.raises(ShapeError, match="bias has shape"):
        F.conv3d(x3, w3, hubkit.randn(2))
    with pytest.raises(ArgumentError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose3d(x3, hubkit.randn(2, 3, 3, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ArgumentError, match="output padding must be smaller than either stride or dilation"):
        F.conv_transpose1d(hubkit.randn(1, 2, 5), hubkit.randn(2, 3, 3), stride=1, output_padding=1)
    with pytest.raises(ShapeError, match="conv_transpose1d: expected input"):
        F.conv_transpose1d(hubkit.randn(1, 2, 5, 5), hubkit.randn(2, 3, 3))
    with pytest.raises(ShapeError, match="empty output"):
        F.conv_transpose3d(hubkit.randn(1, 2, 1, 1, 1), hubkit.randn(2, 3, 1, 1, 1), padding=1)


def test_conv_layer_errors():
    with pytest.raises(ArgumentError, match="divisible by groups"):
        nn.Conv3d(3, 4, 3, groups=2)
    with pytest.raises(ArgumentError, match="padding_mode"):
        nn.Conv3d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ArgumentError, match="only supports padding_mode='zeros'"):
        nn.ConvTranspose3d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ArgumentError, match="not reachable"):
        nn.ConvTranspose1d(2, 2, 3, stride=2)(hubkit.randn(1, 2, 4), output_size=(12,))
    with pytest.raises(ArgumentError, match="output padding must be smaller"):
        nn.ConvTranspose3d(2, 2, 3, stride=2, output_padding=2)(hubkit.randn(1, 2, 2, 2, 2))


def test_fold_and_unfold_errors():
    with pytest.raises(ShapeError, match="divisible by the product of kernel_size"):
        F.fold(hubkit.randn(1, 7, 4), 3, 2)
    with pytest.raises(ShapeError, match=r"2 \* 2 = 4 blocks, but input dim 2 is 8"):
        F.fold(hubkit.randn(1, 8, 8), 3, 2)
    with pytest.raises(ShapeError, match="unfold: expected a 4-d"):
        F.unfold(hubkit.randn(1, 1, 3, 3, 3), 2)
    with pytest.raises(ShapeError, match="no complete block"):
        F.unfold(hubkit.randn(1, 1, 2, 2), 3)
    with pytest.raises(ArgumentError, match="kernel_size must be"):
        F.unfold(hubkit.randn(1, 1, 4, 4), 0)
