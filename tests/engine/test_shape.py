"""Shape and indexing ops: reshape family, permutations, expand, indexing, setitem, joining and
splitting, gather, masked_fill, pad."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, GradError, IndexOutOfRangeError, ShapeError


def _n(*shapes):
    return lambda r: [np.asarray(r.standard_normal(s)) for s in shapes]


def _assign(index):
    def fn(m, x, v):
        y = x * 1.0  # assign into a non-leaf copy, as PyTorch requires
        y[index] = v
        return y

    return fn


def _assign_scalar(m, x):
    y = x * 2.0
    y[0, 1:] = 0.5
    return y


CASES = [
    ("reshape", lambda m, x: m.reshape(x, (3, -1)), _n((2, 3, 2))),
    ("view-method", lambda m, x: x.view(-1), _n((2, 3))),
    ("reshape-empty", lambda m, x: x.reshape(3, 0), _n((0, 3))),
    ("flatten", lambda m, x: m.flatten(x, 1), _n((2, 3, 2))),
    ("flatten-middle", lambda m, x: m.flatten(x, 1, 2), _n((2, 3, 2, 2))),
    ("unflatten", lambda m, x: m.unflatten(x, 1, (2, 3)), _n((2, 6))),
    ("squeeze-all", lambda m, x: m.squeeze(x), _n((1, 3, 1, 2))),
    ("squeeze-dim", lambda m, x: x.squeeze(2), _n((1, 3, 1, 2))),
    ("unsqueeze", lambda m, x: m.unsqueeze(x, -1), _n((2, 3))),
    ("unsqueeze-0d", lambda m, x: m.unsqueeze(x, 0), _n(())),
    ("permute", lambda m, x: m.permute(x, (2, 0, 1)), _n((2, 3, 4))),
    ("transpose", lambda m, x: m.transpose(x, 0, -1), _n((2, 3, 4))),
    ("t", lambda m, x: x.t(), _n((2, 3))),
    ("T-property", lambda m, x: x.T * 1.0, _n((2, 3))),
    ("expand", lambda m, x: x.expand(2, 3, 4), _n((3, 1))),
    ("expand-minus-one", lambda m, x: x.expand(-1, 4), _n((3, 1))),
    ("expand-as", lambda m, x, y: x.expand_as(y) * y, _n((1, 4), (3, 4))),
    ("getitem-int", lambda m, x: x[1], _n((3, 4))),
    ("getitem-slices", lambda m, x: x[1:, ::2], _n((3, 5))),
    ("getitem-none-ellipsis", lambda m, x: x[None, ..., 1], _n((2, 3, 4))),
    ("getitem-negative-int", lambda m, x: x[-1, :, -2], _n((2, 3, 4))),
    ("getitem-bool-mask", lambda m, x, mask: x[mask], lambda r: [r.standard_normal((3, 4)), r.random((3, 4)) > 0.4]),
    ("getitem-bool-rows", lambda m, x, mask: x[mask],
     lambda r: [r.standard_normal((4, 2)), np.array([1, 0, 1, 1], bool)]),
    ("getitem-int-array-repeats", lambda m, x, i: x[i], lambda r: [r.standard_normal((3, 2)), np.array([0, 2, 0, 0])]),
    ("getitem-two-int-arrays", lambda m, x, i, j: x[i, j],
     lambda r: [r.standard_normal((3, 4)), np.array([0, 2, 0]), np.array([1, 1, 1])]),
    ("getitem-array-and-slice", lambda m, x, i: x[i, 1:], lambda r: [r.standard_normal((3, 4)), np.array([2, 2])]),
    ("getitem-empty-result", lambda m, x: x[2:2], _n((3, 4))),
    ("setitem-slice", _assign((slice(1, None), 0)), _n((3, 4), (2,))),
    ("setitem-broadcast", _assign((Ellipsis, 1)), _n((2, 3, 4), (3,))),
    ("setitem-scalar", _assign_scalar, _n((2, 3))),
    ("cat", lambda m, a, b: m.cat([a, b], 0), _n((2, 3), (1, 3))),
    ("cat-last-dim", lambda m, a, b, c: m.cat([a, b, c], -1), _n((2, 1), (2, 3), (2, 2))),
    ("cat-with-empty", lambda m, a, b: m.cat([a, b], 0), _n((0, 3), (2, 3))),
    ("stack", lambda m, a, b: m.stack([a, b], 1), _n((2, 3), (2, 3))),
    ("stack-0d", lambda m, a, b: m.stack([a, b]), _n((), ())),
    ("split-size", lambda m, x: m.split(x, 2, 1), _n((2, 5))),
    ("split-sections", lambda m, x: x.split([1, 3], 0), _n((4, 2))),
    ("chunk", lambda m, x: m.chunk(x, 3, -1), _n((2, 7))),
    ("unbind", lambda m, x: m.unbind(x, 1), _n((2, 3))),
    ("gather", lambda m, x, i: m.gather(x, 1, i), lambda r: [r.standard_normal((3, 4)), r.integers(0, 4, (3, 5))]),
    ("gather-dim0-smaller-index", lambda m, x, i: m.gather(x, 0, i),
     lambda r: [r.standard_normal((3, 4)), r.integers(0, 3, (2, 2))]),
    ("gather-3d", lambda m, x, i: x.gather(-1, i),
     lambda r: [r.standard_normal((2, 3, 4)), r.integers(0, 4, (2, 3, 1))]),
    ("gather-empty-index", lambda m, x, i: m.gather(x, 1, i),
     lambda r: [r.standard_normal((3, 4)), np.zeros((3, 0), np.int64)]),
    ("masked-fill", lambda m, x, mask: m.masked_fill(x, mask, -2.0),
     lambda r: [r.standard_normal((3, 4)), r.random((3, 4)) > 0.5]),
    ("masked-fill-broadcast-mask", lambda m, x, mask: x.masked_fill(mask, 0.0),
     lambda r: [r.standard_normal((2, 3, 4)), r.random((3, 1)) > 0.5]),
    ("masked-fill-tensor-value", lambda m, x, mask, v: m.masked_fill(x, mask, v),
     lambda r: [r.standard_normal((3, 4)), r.random((3, 4)) > 0.5, np.asarray(r.standard_normal(()))]),
    ("pad-constant", lambda m, x: m.pad(x, (1, 2)), _n((2, 3))),
    ("pad-constant-value-2d", lambda m, x: m.pad(x, (1, 0, 2, 1), value=1.5), _n((2, 3, 2))),
    ("pad-constant-negative", lambda m, x: m.pad(x, (-1, 2, 1, -2)), _n((2, 4, 5))),
    ("pad-constant-all-dims", lambda m, x: m.pad(x, (1, 1, 1, 1)), _n((2, 3))),
    ("pad-reflect-1d", lambda m, x: m.pad(x, (2, 3), mode="reflect"), _n((2, 2, 5))),
    ("pad-reflect-2d", lambda m, x: m.pad(x, (2, 1, 1, 2), mode="reflect"), _n((1, 2, 4, 3))),
    ("pad-replicate-2d", lambda m, x: m.pad(x, (2, 1, 0, 3), mode="replicate"), _n((1, 2, 3, 3))),
    ("pad-replicate-3d", lambda m, x: m.pad(x, (1, 1, 1, 0, 0, 2), mode="replicate"), _n((1, 1, 2, 3, 2))),
    ("pad-circular-2d", lambda m, x: m.pad(x, (1, 2, 3, 0), mode="circular"), _n((1, 2, 3, 4))),
    ("pad-circular-full-width", lambda m, x: m.pad(x, (3, 3), mode="circular"), _n((1, 2, 3))),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_gradient_matches_central_differences(name, fn, make):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype)


# ---------------------------------------------------------------- indexing and assignment


def test_getitem_matches_numpy_for_every_index_kind():
    a = np.arange(24.0).reshape(2, 3, 4)
    t = hubkit.tensor(a)
    for index in [1, (1, 2), slice(None, None, 2), (Ellipsis, 1), (None, 0), (0, None, slice(1, 3)),
                  a > 10, (np.array([1, 0, 1]),), (slice(None), np.array([2, 0])), (1, np.array([0, 0]), 3)]:
        np.testing.assert_array_equal(t[index].numpy(), a[index])
    np.testing.assert_array_equal(t[hubkit.tensor([1, 1])].numpy(), a[[1, 1]])
    np.testing.assert_array_equal(t[[0, 1]].numpy(), a[[0, 1]])


def test_repeated_integer_indices_accumulate_gradient():
    x = hubkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[hubkit.tensor([0, 0, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 0.0, 1.0])


def test_bool_mask_indexing_is_differentiable():
    x = hubkit.tensor([[1.0, -2.0], [-3.0, 4.0]], requires_grad=True)
    (x[x > 0] * 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[2.0, 0.0], [0.0, 2.0]])


def test_out_of_range_index_raises_index_error_naming_the_shape():
    t = hubkit.zeros(2, 3)
    with pytest.raises(IndexOutOfRangeError, match=r"shape \(2, 3\)"):
        t[5]
    with pytest.raises(IndexError):  # IndexOutOfRangeError is an IndexError, so iteration protocols work
        t[:, 3]


def test_setitem_without_grad_writes_in_place():
    t = hubkit.zeros(2, 3)
    view = t.numpy()
    t[0, 1:] = 7.0
    t[1] = hubkit.tensor([1.0, 2.0, 3.0])
    t[t > 2.5] = -1.0
    np.testing.assert_array_equal(view, [[0, -1, -1], [1, 2, -1]])


def test_setitem_on_a_leaf_that_requires_grad_raises():
    x = hubkit.ones(3, requires_grad=True)
    with pytest.raises(GradError, match="leaf"):
        x[0] = 2.0
    with hubkit.no_grad():
        x[0] = 2.0
    assert x[0].item() == 2.0


def test_setitem_records_autograd_for_both_sides():
    x = hubkit.tensor([1.0, 2.0, 3.0], requires_grad=True)
    v = hubkit.tensor(10.0, requires_grad=True)
    y = x * 2
    early = y * 1  # uses the value before the assignment
    y[1] = v * 3
    (y.sum() + early.sum()).backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 2.0, 4.0])
    assert v.grad.item() == 3.0
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, 30.0, 6.0])


def test_setitem_into_a_plain_tensor_makes_it_require_grad():
    w = hubkit.tensor([1.0, 2.0], requires_grad=True)
    buf = hubkit.zeros(3)
    buf[1:] = w
    assert buf.requires_grad
    (buf * hubkit.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 3.0])


# ---------------------------------------------------------------- errors


def test_reshape_error_names_op_and_shapes():
    with pytest.raises(ShapeError, match=r"reshape: shape \(4, 2\) is invalid for an input of shape \(2, 3\)"):
        hubkit.zeros(2, 3).reshape(4, 2)


def test_cat_and_stack_errors_name_both_shapes():
    with pytest.raises(ShapeError, match=r"cat: .*\(2, 3\) and \(2, 4\)"):
        hubkit.cat([hubkit.zeros(2, 3), hubkit.zeros(2, 4)], 0)
    with pytest.raises(ShapeError, match=r"stack: .*\(2, 3\) and \(3, 2\)"):
        hubkit.stack([hubkit.zeros(2, 3), hubkit.zeros(3, 2)])


def test_expand_error_names_shapes():
    with pytest.raises(ShapeError, match=r"expand: can't expand shape \(3, 2\) to \(3, 4\)"):
        hubkit.zeros(3, 2).expand(3, 4)


def test_gather_validates_index():
    x = hubkit.zeros(2, 3)
    with pytest.raises(IndexOutOfRangeError, match="gather: index 3 is out of bounds for dim 1 of size 3"):
        hubkit.gather(x, 1, hubkit.tensor([[0, 3]]))
    with pytest.raises(IndexOutOfRangeError, match="index -1"):
        hubkit.gather(x, 1, hubkit.tensor([[-1, 0]]))
    with pytest.raises(DTypeError, match="integer"):
        hubkit.gather(x, 1, hubkit.tensor([[0.0]]))
    with pytest.raises(ShapeError, match=r"gather: index \(3,\) must have as many dims as input \(2, 3\)"):
        hubkit.gather(x, 1, hubkit.tensor([0, 1, 2]))
    with pytest.raises(ShapeError, match=r"larger than input \(2, 3\) in dim 0"):
        hubkit.gather(x, 1, hubkit.zeros(3, 1, dtype=hubkit.int64))


def test_masked_fill_needs_a_bool_mask_and_keeps_the_input_dtype():
    i = hubkit.tensor([1, 2, 3])
    out = i.masked_fill(i > 1, 9.7)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), [1, 9, 9])
    with pytest.raises(DTypeError, match="bool"):
        i.masked_fill(i, 0)
    with pytest.raises(ShapeError, match=r"masked_fill: shapes \(2,\) and \(3,\)"):
        i.masked_fill(hubkit.tensor([True, False]), 0)


def test_pad_validates_its_arguments():
    x = hubkit.zeros(1, 2, 3)
    with pytest.raises(ShapeError, match=r"pad: reflect padding \(3, 0\) of dim 2 of \(1, 2, 3\)"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ShapeError, match="at most 3"):
        F.pad(x, (0, 4), mode="circular")
    with pytest.raises(ShapeError, match="even length"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ArgumentError, match="mode must be one of"):
        F.pad(x, (1, 1), mode="wrap")
    with pytest.raises(ArgumentError, match="does not take a fill value"):
        F.pad(x, (1, 1), mode="replicate", value=2.0)


def test_pad_keeps_dtype_and_fills_with_value():
    out = F.pad(hubkit.ones(2, dtype=hubkit.int32), (1, 2), value=7)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), [7, 1, 1, 7, 7])


def test_iterating_a_tensor_yields_its_rows_and_a_0d_tensor_is_not_iterable():
    rows = list(hubkit.tensor([[1, 2], [3, 4]]))
    assert [r.tolist() for r in rows] == [[1, 2], [3, 4]]
    with pytest.raises(TypeError, match="0-d"):
        iter(hubkit.tensor(1.0))


def test_int_index_without_grad_is_a_view_with_no_graph_node():
    # the fast path taken by Dataset's tensor[i]: same values and view semantics as the recorded path
    t = hubkit.tensor(np.arange(12.0).reshape(3, 4))
    row = t[1]
    assert row._creator is None and row.shape == (4,)
    np.testing.assert_array_equal(row.numpy(), [4.0, 5.0, 6.0, 7.0])
    row.array[0] = 100.0  # shares t's memory, as in torch
    assert t.numpy()[1, 0] == 100.0
    assert t[-1].numpy().tolist() == [8.0, 9.0, 10.0, 11.0]
    with pytest.raises(IndexOutOfRangeError):
        t[3]
    with pytest.raises(IndexOutOfRangeError):
        hubkit.tensor(5.0)[0]


def test_int_index_with_grad_is_recorded_and_not_under_no_grad():
    w = hubkit.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    (w[1] * 2).sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), [[0, 0, 0], [2, 2, 2]])
    with hubkit.no_grad():
        r = w[0]
    assert r._creator is None and not r.requires_grad
