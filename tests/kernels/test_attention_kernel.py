"""Scaled dot-product attention's kernels (``kernels/generic.py``): by blocks of the batch on hubkit's pool
(with the compiled float32 softmax when numba is installed) against one block of numpy, and both against a plain
numpy statement of the math; the compiled softmax against the numpy one on odd rows.

The CPU kernels cut the batch's longest axis into blocks (operands broadcast along it are read whole); the
cases cover broadcast key/value and masks, a mask that widens the batch, bool masks with fully masked rows,
dropout, non-contiguous (permuted) operands, batch 1, no batch axes and float64. Gradients are checked
against finite differences in tests/nn/test_attention.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import hubkit
from hubkit.kernels import _jit, cpu, cpu_elementwise, generic

RNG = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def two_threads_small_blocks(monkeypatch):
    """Two pool threads, blocks of any size and compiled kernels for any size, so that the small shapes here
    are split and run the compiled softmax."""
    monkeypatch.setattr(generic, "_ATTENTION_BLOCK_MIN_MACS", 1)
    monkeypatch.setattr(_jit, "MIN_WORK", 0)
    before = hubkit.get_num_threads()
    hubkit.set_num_threads(2)
    yield
    hubkit.set_num_threads(before)


def reference(q, k, v, scale, mask, keep, dropout_keep, p):
    """The math, in float64, with numpy broadcasting."""
    scores = (q.astype(np.float64) @ np.swapaxes(k, -1, -2).astype(np.float64)) * scale
    if mask is not None:
        scores = scores + mask
    if keep is not None:
        scores = np.where(keep, scores, -np.inf)
    top = scores.max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0)
    e = np.exp(scores - top)
    total = e.sum(axis=-1, keepdims=True)
    attn = e / np.where(total > 0, total, 1)
    weights = attn if dropout_keep is None else attn * dropout_keep / (1 - p)
    return weights @ v.astype(np.float64), attn


def permuted(shape, dtype):
    """A non-contiguous array of ``shape`` (..., H, L, E): (..., L, H, E) in memory, as attention heads are."""
    *lead, h, length, e = shape
    return RNG.standard_normal((*lead, length, h, e)).astype(dtype).swapaxes(-2, -3)


# q, k, v batch shapes, L, S, E, Ev, mask shape (float) or None, keep shape (bool) or None, dropout
CASES = [
    ((4, 3), (4, 3), (4, 3), 5, 7, 8, 6, None, None, False),
    ((2, 3), (1, 3), (1, 3), 4, 5, 6, 3, (3, 4, 5), None, False),  # broadcast key/value, a per-head mask
    ((3,), (3,), (3,), 6, 6, 4, 4, None, (6, 6), False),  # causal-like keep shared by the batch
    ((5, 2), (5, 2), (5, 2), 3, 9, 5, 7, None, (5, 1, 1, 9), True),  # padding keep per sample, dropout
    ((1, 4), (1, 4), (1, 4), 7, 3, 2, 5, (2, 1, 7, 3), None, False),  # a mask that widens the batch
    ((), (), (), 6, 5, 3, 4, (6, 5), None, False),  # no batch axes: one block
    ((1,), (1,), (1,), 8, 8, 4, 4, None, None, True),  # batch 1
]


def _case(case, dtype):
    qb, kb, vb, length, source, e, ev, mask_shape, keep_shape, dropout = case
    q = permuted((*qb, length, e), dtype) if len(qb) >= 1 else RNG.standard_normal((length, e)).astype(dtype)
    k = RNG.standard_normal((*kb, source, e)).astype(dtype)
    v = RNG.standard_normal((*vb, source, ev)).astype(dtype)
    mask = RNG.standard_normal(mask_shape).astype(dtype) if mask_shape else None
    keep = None
    if keep_shape:
        keep = RNG.random(keep_shape) > 0.4
        keep[..., 0, :] = False  # a query (or a sample) with nothing to attend to gives zeros
    batch = np.broadcast_shapes(qb, kb, vb, *(s[:-2] for s in (mask_shape, keep_shape) if s and len(s) > 2))
    dropout_keep = (RNG.random((*batch, length, source)) >= 0.25).astype(dtype) if dropout else None
    return q, k, v, mask, keep, dropout_keep


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
def test_blocks_match_one_block_and_the_math(case, dtype):
    q, k, v, mask, keep, dropout_keep = _case(case, dtype)
    p, scale = 0.25, 0.37
    out, attn, dropped = cpu.attention_forward(q, k, v, scale, mask, keep, dropout_keep, p)
    one = generic.attention_forward(q, k, v, scale, mask, keep, dropout_keep, p)
    want_out, want_attn = reference(q, k, v, scale, mask, keep, dropout_keep, p)
    assert out.dtype == dtype and out.shape == want_out.shape and attn.shape == want_attn.shape
    rtol, atol = (1e-5, 1e-6) if dtype == np.float32 else (1e-12, 1e-13)
    np.testing.assert_allclose(out, one[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(attn, one[1], rtol=rtol, atol=atol)
    np.testing.assert_allclose(out, want_out, rtol=rtol * 10, atol=atol * 10)
    np.testing.assert_allclose(attn, want_attn, rtol=rtol * 10, atol=atol * 10)
    assert np.isfinite(out).all()
    if dropout_keep is None:
        assert dropped is attn

    gy = RNG.standard_normal(out.shape).astype(dtype)
    needs = (True, True, True, mask is not None)
    grads = cpu.attention_backward(gy, q, k, v, scale, attn, dropped, dropout_keep, p, needs)
    want = generic.attention_backward(gy, q, k, v, scale, one[1], one[2], dropout_keep, p, needs)
    for got, expected in zip(grads, want):
        if expected is None:
            assert got is None
        else:
            np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)
            assert np.isfinite(got).all()


def test_the_cpu_kernel_splits_the_longest_batch_axis(monkeypatch):
    """The blocks are real: two threads cut (2, 6) along its second axis into ranges that cover it once."""
    seen = []
    real = generic._by_blocks

    def spy(batch, macs, body, split):
        def record(n, run, min_items):
            def run_and_log(start, stop):
                seen.append((start, stop))
                run(start, stop)

            split(n, run_and_log, min_items)

        real(batch, macs, body, record)

    monkeypatch.setattr(generic, "_by_blocks", spy)
    q, k, v, *_ = _case(((2, 6), (2, 6), (2, 6), 4, 4, 3, 3, None, None, False), np.float64)  # (float32: per head)
    cpu.attention_forward(q, k, v, 0.5, None, None, None, 0.0)
    assert len(seen) > 1
    covered = sorted(i for start, stop in seen for i in range(start, stop))
    assert covered == list(range(6))


def test_only_wanted_gradients_are_computed():
    q, k, v, *_ = _case(((3,), (3,), (3,), 4, 5, 2, 3, None, None, False), np.float64)
    out, attn, dropped = cpu.attention_forward(q, k, v, 1.0, None, None, None, 0.0)
    gy = np.ones_like(out)
    gq, gk, gv, gmask = cpu.attention_backward(gy, q, k, v, 1.0, attn, dropped, None, 0.0, (False, False, True, False))
    assert gq is None and gk is None and gmask is None and gv.shape == v.shape
    gq, gk, gv, gmask = cpu.attention_backward(gy, q, k, v, 1.0, attn, dropped, None, 0.0, (True, False, False, False))
    assert gv is None and gk is None and gq.shape == q.shape


def test_a_float_mask_of_another_dtype_is_cast_to_the_query_dtype():
    import hubkit.nn.functional as F

    q = hubkit.tensor(RNG.standard_normal((2, 3, 4)).astype(np.float32), requires_grad=True)
    mask = hubkit.tensor(RNG.standard_normal((3, 3)), requires_grad=True)  # float64
    y = F.scaled_dot_product_attention(q, q, q, attn_mask=mask)
    assert y.dtype == hubkit.float32
    y.sum().backward()
    assert mask.grad.dtype == hubkit.float64 and mask.grad.shape == (3, 3)
    want, _ = reference(q.numpy(), q.numpy(), q.numpy(), 0.5, mask.numpy().astype(np.float32), None, None, 0.0)
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)


needs_numba = pytest.mark.skipif(not _jit.available(), reason="numba is not installed: no compiled softmax to test")


@needs_numba
@pytest.mark.parametrize("width", [1, 7, 40, 499])
@pytest.mark.parametrize("scale", [1.0, 0.125, -0.6])
def test_compiled_softmax_matches_numpy(width, scale):
    x = (RNG.standard_normal((4, 6, width)) * 6).astype(np.float32)
    x[2, 3, 0] = -95.0 / scale  # below exp's normal range after the shift (a weight of 0 next to the row's maximum)
    masked = -np.inf if scale > 0 else np.inf  # what the scaling turns into -inf
    x[0, 1] = masked  # a row with nothing to attend to: zeros
    x[1, 2, ::2] = masked  # masked positions: exactly 0
    want, got = x.copy(), x.copy()
    generic.softmax_rows_(want, scale)
    cpu_elementwise.softmax_rows_(got, scale)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
    assert np.all(got[0, 1] == 0) and np.all(got[1, 2, ::2] == 0)
    if width > 1:
        np.testing.assert_allclose(got.sum(axis=-1)[np.arange(4) != 0].ravel(), 1, rtol=1e-5)


@needs_numba
def test_compiled_softmax_on_rows_that_do_not_merge_and_nan():
    """A block cut from a middle axis cannot be viewed as one (R, S) matrix: its parts are done in place."""
    base = (RNG.standard_normal((3, 8, 5, 9)) * 3).astype(np.float32)
    want = base.copy()
    generic.softmax_rows_(want[:, 2:6], 0.5)
    got = base.copy()
    cpu_elementwise.softmax_rows_(got[:, 2:6], 0.5)
    np.testing.assert_allclose(got, np.concatenate([base[:, :2], want[:, 2:6], base[:, 6:]], axis=1), rtol=2e-6,
                               atol=1e-7)  # fmt: skip
    row = np.array([[0.5, np.nan, 1.0], [1.0, 2.0, 3.0]], dtype=np.float32)
    cpu_elementwise.softmax_rows_(row)
    assert np.isnan(row[0]).all() and np.isfinite(row[1]).all()


def test_float64_softmax_is_the_numpy_reference():
    x = RNG.standard_normal((5, 7))
    want, got = x.copy(), x.copy()
    generic.softmax_rows_(want, 0.3)
    cpu_elementwise.softmax_rows_(got, 0.3)
    np.testing.assert_array_equal(got, want)


@needs_numba
@pytest.mark.parametrize("width", [1, 9, 48, 131])
@pytest.mark.parametrize("ndim", [2, 3, 4])
def test_compiled_scores_softmax_with_mask_and_keep_matches_numpy(width, ndim):
    """The fused kernel (scale, float mask, keep, softmax in one pass per row) against the numpy passes, with
    broadcast masks (per sample, per head, shared), a fully masked row and a NaN score."""
    shape = (3, 4, 5, width)[4 - ndim :]
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    mask = RNG.standard_normal(shape[-2:]).astype(np.float32)  # shared by the batch
    keep = RNG.random((shape[0],) + (1,) * (ndim - 2) + (width,)) > 0.3  # per sample, as padding is
    keep[(0,) * (ndim - 1)] = False  # a sample with nothing to attend to: zeros
    x[(-1,) * (ndim - 1) + (0,)] = np.nan
    for scale, m, k in ((0.3, mask, keep), (1.0, None, keep), (-0.7, mask, None)):
        want, got = x.copy(), x.copy()
        generic.scores_softmax_(want, scale, m, k)
        cpu_elementwise.scores_softmax_(got, scale, m, k)
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7)
        assert np.array_equal(np.isnan(got), np.isnan(want))
        if k is not None:
            masked = np.broadcast_to(~k, shape) & ~np.isnan(got)  # (the NaN score's row is NaN throughout)
            assert masked.any() and np.all(got[masked] == 0)


@needs_numba
@pytest.mark.parametrize("case", CASES, ids=range(len(CASES)))
@pytest.mark.parametrize("threads", [1, 2])
def test_float32_heads_run_compiled_and_match_the_blocks(case, threads, monkeypatch):
    """Float32 without dropout runs one head at a time in compiled code (``cpu_attention``), on numba's threads or
    the pool's; its weights and outputs match the numpy blocks' on every case (broadcast operands and masks, fully
    masked rows, permuted operands, no batch axes)."""
    from hubkit.kernels import cpu_attention

    q, k, v, mask, keep, _ = _case(case, np.float32)
    hubkit.set_num_threads(threads)
    calls = []
    real = cpu_attention.attention_forward
    monkeypatch.setattr(cpu_attention, "attention_forward", lambda *a: calls.append(1) or real(*a))
    out, attn, dropped = cpu.attention_forward(q, k, v, 0.37, mask, keep, None, 0.0)
    assert calls and dropped is attn
    want = generic.attention_forward(q, k, v, 0.37, mask, keep, None, 0.0)
    np.testing.assert_allclose(attn, want[1], rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(out, want[0], rtol=1e-5, atol=1e-6)
    assert out.shape == want[0].shape and attn.shape == want[1].shape


@needs_numba
def test_compiled_heads_copy_operands_blas_cannot_take():
    """A key whose features are not adjacent (every other column) is copied into a layout BLAS takes."""
    from hubkit.kernels import cpu_attention

    q = RNG.standard_normal((2, 3, 5, 4)).astype(np.float32)
    k = RNG.standard_normal((2, 3, 6, 8)).astype(np.float32)[..., ::2]
    v = RNG.standard_normal((2, 3, 6, 5)).astype(np.float32)
    got = cpu_attention.attention_forward(q, k, v, 0.5, None, None)
    assert got is not None
    want, attn = reference(q, k, v, 0.5, None, None, None, 0.0)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1], attn, rtol=1e-5, atol=1e-6)


@needs_numba
def test_compiled_heads_leave_what_they_do_not_take_to_the_blocks():
    from hubkit.kernels import cpu_attention

    q = RNG.standard_normal((2, 2, 3, 5, 4)).astype(np.float32)  # three batch axes
    assert cpu_attention.attention_forward(q, q, q, 0.5, None, None) is None
    q64 = RNG.standard_normal((2, 5, 4))
    assert cpu_attention.attention_forward(q64, q64, q64, 0.5, None, None) is None
