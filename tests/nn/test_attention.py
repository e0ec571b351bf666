"""scaled_dot_product_attention: gradcheck, parity (masks, causal, scale), dropout and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, ShapeError

RNG = np.random.default_rng(0)


def _qkv(batch=(2, 3), length=4, source=5, e=6, ev=3):
    return (RNG.standard_normal((*batch, length, e)), RNG.standard_normal((*batch, source, e)),
            RNG.standard_normal((*batch, source, ev)))  # fmt: skip


def test_sdpa_gradcheck_plain_and_scaled():
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), list(_qkv()))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.3), list(_qkv(batch=(2,))))


def test_sdpa_gradcheck_causal_and_masks():
    q, k, v = _qkv(length=5, source=5)
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v])
    bool_mask = RNG.random((5, 5)) > 0.3
    bool_mask[:, 0] = True
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=hubkit.tensor(bool_mask)),
              [q, k, v])  # fmt: skip
    gradcheck(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
              [q, k, v, RNG.standard_normal((1, 5))])  # fmt: skip


def test_sdpa_gradcheck_broadcast_key_value_batch():
    q = RNG.standard_normal((2, 3, 4, 6))
    k = RNG.standard_normal((1, 3, 5, 6))
    v = RNG.standard_normal((1, 3, 5, 2))
    gradcheck(lambda q, k, v: F.scaled_dot_product_attention(q, k, v), [q, k, v])


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sdpa_matches_torch(dtype):
    q, k, v = _qkv()
    compare_with_torch(lambda m, q, k, v: m.scaled_dot_product_attention(q, k, v), [q, k, v], dtype=dtype)
    q, k, v = _qkv(length=4, source=6)
    compare_with_torch(lambda m, q, k, v: m.scaled_dot_product_attention(q, k, v, is_causal=True), [q, k, v],
                       dtype=dtype)  # fmt: skip
    fmask = RNG.standard_normal((3, 4, 6))
    compare_with_torch(lambda m, q, k, v, f: m.scaled_dot_product_attention(q, k, v, attn_mask=f, scale=0.5),
                       [q, k, v, fmask], dtype=dtype)  # fmt: skip


@pytest.mark.parity
def test_sdpa_bool_mask_matches_torch_including_fully_masked_rows():
    import torch

    q, k, v = _qkv(length=4, source=6)
    mask = RNG.random((4, 6)) > 0.5
    mask[2] = False  # a query that may attend to nothing
    h = F.scaled_dot_product_attention(*(hubkit.tensor(a) for a in (q, k, v)), attn_mask=hubkit.tensor(mask))
    t = torch.nn.functional.scaled_dot_product_attention(*(torch.from_numpy(a) for a in (q, k, v)),
                                                         attn_mask=torch.from_numpy(mask))  # fmt: skip
    np.testing.assert_allclose(h.numpy(), t.numpy(), rtol=1e-6, atol=1e-7)


def test_sdpa_fully_masked_row_gives_zeros_not_nan():
    q, k, v = (hubkit.tensor(a, requires_grad=True) for a in _qkv(batch=(), length=2, source=3))
    mask = hubkit.tensor(np.array([[True, False, True], [False, False, False]]))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert np.all(y.numpy()[1] == 0) and np.all(np.isfinite(y.numpy()))
    y.sum().backward()
    assert np.all(np.isfinite(q.grad.numpy())) and np.all(q.grad.numpy()[1] == 0)


def test_sdpa_dropout_is_reproducible_and_scales_kept_weights():
    q, k, v = (hubkit.tensor(a.astype(np.float32)) for a in _qkv())
    hubkit.manual_seed(3)
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    hubkit.manual_seed(3)
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32
    assert not np.allclose(a, F.scaled_dot_product_attention(q, k, v).numpy())
    # the expectation over dropout draws is the undropped output
    ones_v = hubkit.ones(2, 3, 5, 1)
    draws = [F.scaled_dot_product_attention(q, k, ones_v, dropout_p=0.25).numpy() for _ in range(400)]
    np.testing.assert_allclose(np.mean(draws), 1.0, atol=0.02)


def test_sdpa_dropout_gradient_uses_the_same_draw():
    q, k, v = _qkv(batch=(2,))
    hubkit.manual_seed(0)
    qt, kt, vt = (hubkit.tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(qt, kt, vt, dropout_p=0.4)
    y.sum().backward()
    # v's gradient is sum over queries of the dropped weights, which reproduce y for an all-ones value
    hubkit.manual_seed(0)
    ones = F.scaled_dot_product_attention(
        hubkit.tensor(q), hubkit.tensor(k), hubkit.ones(2, 5, 5, dtype=np.float64), dropout_p=0.4
    )
    np.testing.assert_allclose(vt.grad.numpy().sum(), ones.numpy()[..., 0].sum() * 3, rtol=1e-10)


def test_sdpa_errors():
    q, k, v = (hubkit.tensor(a) for a in _qkv())
    with pytest.raises(ArgumentError, match="not both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=hubkit.ones(4, 5), is_causal=True)
    with pytest.raises(ShapeError, match="embedding dim E"):
        F.scaled_dot_product_attention(q, hubkit.randn(2, 3, 5, 7, dtype=np.float64), v)
    with pytest.raises(ShapeError, match="does not broadcast"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=hubkit.ones(4, 4, dtype=np.float64))
    with pytest.raises(ArgumentError, match="dropout_p"):
        F.scaled_dot_product_attention(q, k, v, dropout_p=1.0)
