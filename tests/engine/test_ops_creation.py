"""Creation ops and Tensor layout/type methods (hubkit/ops/creation.py, layout.py): values and dtypes
against PyTorch, random samplers' shapes, ranges and reproducibility, and errors."""

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, ShapeError


def _same(ours, theirs, **kw):
    assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), **kw)


@pytest.mark.parity
def test_ranges_and_windows_match_torch():
    import torch

    _same(hubkit.logspace(0, 2, 5), torch.logspace(0, 2, 5), rtol=1e-6)
    _same(hubkit.logspace(-1, 1, 3, base=2.0, dtype=hubkit.float64), torch.logspace(-1, 1, 3, base=2.0,
                                                                                    dtype=torch.float64))
    _same(hubkit.range(0, 2, 0.5), torch.range(0, 2, 0.5))
    _same(hubkit.tril_indices(3, 3), torch.tril_indices(3, 3))
    for name in ("hann_window", "hamming_window", "blackman_window", "bartlett_window", "kaiser_window"):
        for length in (0, 1, 6):
            for periodic in (True, False):
                _same(getattr(hubkit, name)(length, periodic), getattr(torch, name)(length, periodic),
                      rtol=1e-5, atol=1e-6)
    _same(hubkit.hamming_window(5, True, 0.5, 0.5), torch.hamming_window(5, True, 0.5, 0.5), atol=1e-7)
    _same(hubkit.kaiser_window(5, True, 4.0, dtype=hubkit.float64), torch.kaiser_window(5, True, 4.0,
                                                                                        dtype=torch.float64))


def test_asarray_and_frombuffer_share_memory():
    a = np.arange(4.0, dtype=np.float32)
    t = hubkit.asarray(a)
    a[0] = 9.0
    assert t.numpy()[0] == 9.0
    assert hubkit.asarray([1, 2]).dtype == np.int64
    assert hubkit.asarray(a, dtype=hubkit.float64).dtype == np.float64
    with pytest.raises(ArgumentError, match="copy=False but converting"):
        hubkit.asarray(a, dtype=hubkit.float64, copy=False)
    buf = bytearray(np.arange(3, dtype=np.int32).tobytes())
    f = hubkit.frombuffer(buf, dtype=hubkit.int32, count=2, offset=4)
    assert f.tolist() == [1, 2]
    assert hubkit.empty_strided((2, 3), (3, 1)).shape == (2, 3)


def test_random_samplers_shapes_dtypes_ranges_and_seeds():
    g = hubkit.Generator().manual_seed(3)
    a = hubkit.normal(2.0, 0.5, size=(4000,), generator=g)
    assert a.dtype == np.float32 and abs(a.mean().item() - 2.0) < 0.05
    b = hubkit.normal(hubkit.zeros(3, dtype=hubkit.float64), hubkit.tensor([1.0, 2.0, 3.0], dtype=hubkit.float64))
    assert b.shape == (3,) and b.dtype == np.float64
    p = hubkit.full((5000,), 0.3)
    draws = hubkit.bernoulli(p, generator=hubkit.Generator().manual_seed(0))
    assert draws.dtype == np.float32 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert abs(draws.mean().item() - 0.3) < 0.03
    again = hubkit.bernoulli(p, generator=hubkit.Generator().manual_seed(0))
    np.testing.assert_array_equal(draws.numpy(), again.numpy())
    counts = hubkit.poisson(hubkit.full((2000,), 4.0))
    assert abs(counts.mean().item() - 4.0) < 0.2
    rows = hubkit.multinomial(hubkit.tensor([[0.0, 1.0, 1.0, 1.0]] * 3), 3)
    assert rows.dtype == np.int64 and rows.shape == (3, 3)
    assert all(sorted(r) == [1, 2, 3] for r in rows.tolist())  # without replacement: each non-zero once
    with_rep = hubkit.multinomial(hubkit.tensor([1.0, 0.0]), 5, replacement=True)
    assert with_rep.tolist() == [0] * 5
    r = hubkit.randint_like(hubkit.zeros(100, dtype=hubkit.int32), 3, 6)
    assert r.dtype == np.int32 and r.numpy().min() >= 3 and r.numpy().max() < 6


def test_inplace_random_samplers_fill_the_tensor():
    t = hubkit.zeros(1000)
    alias = t.data
    assert t.exponential_(2.0) is t
    assert alias.numpy().min() >= 0 and abs(alias.mean().item() - 0.5) < 0.08
    t.bernoulli_(0.25)
    assert set(np.unique(t.numpy())) <= {0.0, 1.0}
    t.random_(0, 10)
    assert t.numpy().min() >= 0 and t.numpy().max() <= 9 and np.all(t.numpy() == np.round(t.numpy()))
    t.geometric_(0.5)
    assert t.numpy().min() >= 1
    t.log_normal_()
    assert t.numpy().min() > 0
    t.cauchy_()
    assert np.isfinite(t.numpy()).all()
    w = hubkit.zeros(3, requires_grad=True)
    with pytest.raises(hubkit.errors.GradError, match="leaf Variable that requires grad"):
        w.exponential_()


def test_random_sampler_errors():
    with pytest.raises(ArgumentError, match="bernoulli: probabilities must be in"):
        hubkit.bernoulli(hubkit.tensor([1.5]))
    with pytest.raises(ArgumentError, match="multinomial: cannot draw 3 samples without replacement"):
        hubkit.multinomial(hubkit.tensor([1.0, 1.0, 0.0]), 3)
    with pytest.raises(ArgumentError, match="normal: std must be non-negative"):
        hubkit.normal(0.0, -1.0, size=(2,))
    with pytest.raises(ShapeError, match="multinomial: expects a 1-d or 2-d tensor"):
        hubkit.multinomial(hubkit.ones(2, 2, 2), 1)


@pytest.mark.parity
def test_new_factories_follow_the_source_tensor_like_torch():
    import torch

    for dtype in (np.float64, np.int32):
        h, t = hubkit.tensor(np.zeros(2, dtype=dtype)), torch.tensor(np.zeros(2, dtype=dtype))
        _same(h.new_tensor([1, 2]), t.new_tensor([1, 2]))
        _same(h.new_full((2, 3), 7), t.new_full((2, 3), 7))
        _same(h.new_zeros(2, 3), t.new_zeros(2, 3))
        _same(h.new_ones((3,)), t.new_ones((3,)))
        assert h.new_empty(4).shape == tuple(t.new_empty(4).shape)
    assert hubkit.zeros(2).new_ones(2, dtype=hubkit.int64).dtype == np.int64


@pytest.mark.parity
def test_layout_methods_match_torch():
    import torch

    x = np.arange(24.0, dtype=np.float32).reshape(2, 3, 4)
    h, t = hubkit.tensor(x), torch.tensor(x)
    assert h.stride() == t.stride() and h.stride(1) == t.stride(1)
    ht, tt = h.transpose(0, 2), t.transpose(0, 2)
    assert ht.stride() == tt.stride() and ht.is_contiguous() == tt.is_contiguous() is False
    assert ht.contiguous().is_contiguous() and h.contiguous() is h
    sl_h, sl_t = h[1, 1:], t[1, 1:]
    assert sl_h.storage_offset() == sl_t.storage_offset()
    assert h.nbytes == t.nbytes and h.itemsize == t.itemsize and h.ndimension() == t.ndimension()
    assert h.get_device() == t.get_device() == -1
    assert h.is_signed() and not hubkit.tensor([1], dtype=hubkit.uint8).is_signed()
    _same(hubkit.ones(2, 3).sum_to_size(1, 3), torch.ones(2, 3).sum_to_size(1, 3))
    _same(hubkit.ones(2, 3, 4).sum_to_size(3, 1), torch.ones(2, 3, 4).sum_to_size(3, 1))
    _same(h.reshape_as(hubkit.ones(6, 4)), t.reshape_as(torch.ones(6, 4)))
    for method in ("byte", "char", "short"):
        _same(getattr(h, method)(), getattr(t, method)())
    for rows, wrap in ((3, False), (7, False), (7, True)):
        fh, ft = hubkit.zeros(rows, 3), torch.zeros(rows, 3)
        fh.fill_diagonal_(5.0, wrap=wrap)
        ft.fill_diagonal_(5.0, wrap=wrap)
        _same(fh, ft)
    cube_h, cube_t = hubkit.zeros(3, 3, 3), torch.zeros(3, 3, 3)
    cube_h.fill_diagonal_(1.0)
    cube_t.fill_diagonal_(1.0)
    _same(cube_h, cube_t)
    m = np.arange(4.0).reshape(2, 2)
    _same(hubkit.tensor(m).H, torch.tensor(m).H)
    _same(hubkit.tensor(np.ones((2, 2, 3))).mH, torch.tensor(np.ones((2, 2, 3))).mH)
    assert hubkit.promote_types(hubkit.int64, hubkit.float16) == np.float16
    assert hubkit.result_type(hubkit.tensor([1]), 1.0) == np.float32
    assert hubkit.can_cast(hubkit.float32, hubkit.int32) is torch.can_cast(torch.float32, torch.int32)
    assert hubkit.can_cast(hubkit.int32, hubkit.float32) is torch.can_cast(torch.int32, torch.float32)


def test_type_names_and_casts():
    x = hubkit.ones(2)
    assert x.type() == "hubkit.FloatTensor"
    assert hubkit.tensor([1]).type() == "hubkit.LongTensor"
    assert x.type(hubkit.int64).dtype == np.int64
    assert x.type("torch.DoubleTensor").dtype == np.float64
    with pytest.raises(hubkit.errors.DTypeError, match="type: unknown tensor type"):
        x.type("torch.QuaternionTensor")


def test_apply_and_map_call_python_per_element():
    t = hubkit.tensor([1.0, 2.0, 3.0])
    t.apply_(lambda v: v * 10)
    np.testing.assert_array_equal(t.numpy(), [10, 20, 30])
    t.map_(hubkit.tensor([1.0, 2.0, 3.0]), lambda a, b: a - b)
    np.testing.assert_array_equal(t.numpy(), [9, 18, 27])


def test_small_queries():
    x = hubkit.ones(2, 3)
    assert hubkit.numel(x) == 6 and hubkit.is_floating_point(x) and not hubkit.is_floating_point(x.long())
    assert hubkit.clone(x) is not x and hubkit.clone(x).tolist() == x.tolist()
    assert x.is_same_size(hubkit.zeros(2, 3)) and not x.is_same_size(hubkit.zeros(3, 2))
    assert hubkit.tensor([2.0]).is_nonzero() and not hubkit.tensor([0]).is_nonzero()
    with pytest.raises(ShapeError, match="is_nonzero: a Tensor with 6 elements"):
        x.is_nonzero()
    assert x.pin_memory() is x and not x.is_pinned()
    y = x * 2
    assert not y.retains_grad
    with pytest.raises(ShapeError, match="sum_to_size: size .* is not expandable"):
        x.sum_to_size(4)
    with pytest.raises(ShapeError, match="fill_diagonal_: expects a 2-d tensor or one with all dims equal"):
        hubkit.zeros(2, 3, 4).fill_diagonal_(1.0)
