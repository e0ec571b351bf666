"""maximum/minimum: NaN propagation and torch's gradient rule (ties split, a NaN gives both sides the full
gradient), gradchecked in float64 and compared with torch."""

from __future__ import annotations

import numpy as np
import pytest
from opcheck import compare_with_torch, gradcheck, tie_free

import hubkit

NAN = float("nan")


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1))])
def test_gradcheck(name, shapes):
    a = tie_free(shapes[0], seed=1)
    b = tie_free(shapes[1], seed=2) + 0.05  # offset: no ties with a
    gradcheck(lambda x, y: getattr(hubkit, name)(x, y), [a, b])


@pytest.mark.parametrize("name, fn", [("maximum", np.fmax), ("minimum", np.fmin)])
def test_nan_in_either_input_gives_nan(name, fn):
    a = hubkit.tensor([1.0, NAN, NAN, 2.0, 3.0])
    b = hubkit.tensor([NAN, 1.0, NAN, 2.0, 1.0])
    out = getattr(hubkit, name)(a, b).numpy()
    assert np.isnan(out[:3]).all()
    assert out[3:].tolist() == fn(a.numpy()[3:], b.numpy()[3:]).tolist()
    assert getattr(a, name)(b).numpy()[0] != getattr(a, name)(b).numpy()[0]  # the method too


@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_gradient_rule_ties_nans_and_losers(name):
    a = hubkit.tensor([1.0, NAN, NAN, 2.0, 3.0, 0.0], requires_grad=True)
    b = hubkit.tensor([NAN, 1.0, NAN, 2.0, 1.0, 5.0], requires_grad=True)
    getattr(hubkit, name)(a, b).backward(hubkit.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    a_wins = name == "maximum"
    # NaN positions: both get everything; the tie: halves; then the winner gets all and the loser none
    assert a.grad.tolist() == [1.0, 2.0, 3.0, 2.0, 5.0 if a_wins else 0.0, 0.0 if a_wins else 6.0]
    assert b.grad.tolist() == [1.0, 2.0, 3.0, 2.0, 0.0 if a_wins else 5.0, 6.0 if a_wins else 0.0]


def test_only_the_input_that_needs_a_gradient_gets_one():
    a = hubkit.tensor([1.0, 4.0], requires_grad=True)
    hubkit.maximum(a, hubkit.tensor([2.0, 3.0])).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0]


def test_integer_inputs_and_python_scalars():
    assert hubkit.maximum(hubkit.tensor([1, 5]), hubkit.tensor([3, 2])).tolist() == [3, 5]
    assert hubkit.minimum(hubkit.tensor([1.5, 5.0]), hubkit.tensor(2.0)).tolist() == [1.5, 2.0]


@pytest.mark.parity
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_matches_torch_with_nans_and_ties(name):
    a = np.array([[1.0, NAN, NAN, 2.0], [3.0, 0.0, -1.0, 7.0]])
    b = np.array([[NAN, 1.0, NAN, 2.0], [1.0, 5.0, -1.0, 6.5]])
    compare_with_torch(lambda m, x, y: getattr(m, name)(x, y), [a, b], atol=0, rtol=0)


@pytest.mark.parity
@pytest.mark.parametrize("name", ["maximum", "minimum"])
def test_matches_torch_broadcast_float32(name):
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 1, 4)).astype(np.float32)
    b = rng.standard_normal((5, 1)).astype(np.float32)
    b[0, 0] = NAN
    compare_with_torch(lambda m, x, y: getattr(m, name)(x, y), [a, b], dtype=np.float32)
