"""Embedding: lookup, gradient accumulation over repeated indices, padding_idx, max_norm, errors."""

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, rng_for

import hubkit
import hubkit.nn.functional as F
from hubkit.errors import ArgumentError, DTypeError, IndexOutOfRangeError, ShapeError

CASES = [
    ("embedding", lambda m, i, w: m.embedding(i, w), lambda r: [r.integers(0, 5, (2, 3)), r.standard_normal((5, 4))]),
    ("embedding-repeats", lambda m, i, w: m.embedding(i, w),
     lambda r: [np.array([[1, 1, 4], [1, 0, 1]]), r.standard_normal((5, 3))]),
    ("embedding-padding-idx", lambda m, i, w: m.embedding(i, w, padding_idx=1),
     lambda r: [np.array([[1, 2, 1, 0]]), r.standard_normal((4, 2))]),
    ("embedding-negative-padding-idx", lambda m, i, w: m.embedding(i, w, padding_idx=-1),
     lambda r: [np.array([3, 2, 3]), r.standard_normal((4, 2))]),
    ("embedding-scale-grad-by-freq", lambda m, i, w: m.embedding(i, w, scale_grad_by_freq=True),
     lambda r: [np.array([[0, 2, 2], [2, 1, 0]]), r.standard_normal((3, 2))]),
    ("embedding-0d-index", lambda m, i, w: m.embedding(i, w), lambda r: [np.array(2), r.standard_normal((3, 4))]),
    ("embedding-empty", lambda m, i, w: m.embedding(i, w),
     lambda r: [np.zeros((0, 2), np.int64), r.standard_normal((3, 4))]),
]
IDS = [c[0] for c in CASES]
# padding_idx and scale_grad_by_freq change the gradient on purpose, so only PyTorch can judge them
TRUE_GRADIENT_CASES = [c for c in CASES if "padding" not in c[0] and "freq" not in c[0]]


@pytest.mark.parametrize(("name", "fn", "make"), TRUE_GRADIENT_CASES, ids=[c[0] for c in TRUE_GRADIENT_CASES])
def test_gradient_matches_central_differences(name, fn, make):
    gradcheck(lambda *xs: fn(F, *xs), make(rng_for(name)))


@pytest.mark.parity
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "fn", "make"), CASES, ids=IDS)
def test_forward_and_backward_match_torch(name, fn, make, dtype):
    compare_with_torch(fn, make(rng_for(name)), dtype=dtype)


def test_embedding_picks_rows_and_padding_row_gets_no_gradient():
    w = hubkit.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    idx = hubkit.tensor([[0, 2], [2, 3]])
    out = F.embedding(idx, w, padding_idx=2)
    assert out.shape == (2, 2, 3)
    np.testing.assert_array_equal(out.detach().numpy()[1, 0], [6.0, 7.0, 8.0])
    out.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy()[:, 0], [1.0, 0.0, 0.0, 1.0])


def test_max_norm_renormalizes_looked_up_rows_in_place():
    w = hubkit.tensor([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])
    F.embedding(hubkit.tensor([0, 1]), w, max_norm=1.0)
    norms = np.linalg.norm(w.numpy(), axis=1)
    np.testing.assert_allclose(norms[:2], [1.0, 0.5], rtol=1e-5)
    assert norms[2] == pytest.approx(10.0)  # not looked up, not touched


@pytest.mark.parity
def test_max_norm_matches_torch():
    import torch

    rng = np.random.default_rng(0)
    w = rng.standard_normal((6, 3)) * 2
    idx = np.array([[0, 1, 1], [4, 5, 0]])
    hw, tw = hubkit.tensor(w), torch.tensor(w)
    out_h = F.embedding(hubkit.tensor(idx), hw, max_norm=1.5, norm_type=3.0)
    out_t = torch.nn.functional.embedding(torch.tensor(idx), tw, max_norm=1.5, norm_type=3.0)
    np.testing.assert_allclose(out_h.numpy(), out_t.numpy(), rtol=1e-6)
    np.testing.assert_allclose(hw.numpy(), tw.numpy(), rtol=1e-6)


def test_embedding_errors_say_what_is_wrong():
    w = hubkit.zeros(4, 2)
    with pytest.raises(IndexOutOfRangeError, match="index 4 is out of range for a weight with 4 rows"):
        F.embedding(hubkit.tensor([0, 4]), w)
    with pytest.raises(IndexOutOfRangeError, match="index -1"):
        F.embedding(hubkit.tensor([-1]), w)
    with pytest.raises(DTypeError, match="integer"):
        F.embedding(hubkit.tensor([0.0]), w)
    with pytest.raises(ShapeError, match=r"weight must be 2-d"):
        F.embedding(hubkit.tensor([0]), hubkit.zeros(4))
    with pytest.raises(ArgumentError, match="padding_idx 4"):
        F.embedding(hubkit.tensor([0]), w, padding_idx=4)
    with pytest.raises(ArgumentError, match="sparse"):
        F.embedding(hubkit.tensor([0]), w, sparse=True)
