"""hubkit.train.metrics: exact formulas, and accumulation over unequal batches equals one big batch."""

import numpy as np
import pytest

import hubkit
from hubkit.errors import ArgumentError, ShapeError
from hubkit.train import metrics as M


def _case(n=103, c=5, seed=0):
    rng = np.random.default_rng(seed)
    scores = rng.standard_normal((n, c)).astype(np.float32)
    target = rng.integers(0, c, n)
    target[:10] = scores[:10].argmax(1)  # some right answers
    return scores, target


def _brute(scores, target, c):
    pred = scores.argmax(1)
    per = {}
    for k in range(c):
        tp = np.sum((pred == k) & (target == k))
        fp = np.sum((pred == k) & (target != k))
        fn = np.sum((pred != k) & (target == k))
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        per[k] = (p, r, 2 * p * r / (p + r) if p + r else 0.0, np.sum(target == k))
    return per


def test_functional_metrics_match_the_definitions():
    scores, target = _case()
    per = _brute(scores, target, 5)
    assert M.accuracy(scores, target) == pytest.approx(np.mean(scores.argmax(1) == target))
    top3 = np.argsort(-scores, 1)[:, :3]
    assert M.accuracy(scores, target, top_k=3) == pytest.approx(np.mean((top3 == target[:, None]).any(1)))
    for i, kind in enumerate(("precision", "recall", "f1_score")):
        fn = getattr(M, kind)
        assert fn(scores, target, 5) == pytest.approx(np.mean([per[k][i] for k in range(5)]))
        support = np.array([per[k][3] for k in range(5)])
        weighted = np.sum([per[k][i] * support[k] for k in range(5)]) / support.sum()
        assert fn(scores, target, 5, average="weighted") == pytest.approx(weighted)
        np.testing.assert_allclose(fn(scores, target, 5, average=None).numpy(), [per[k][i] for k in range(5)])
        assert fn(scores, target, 5, average="micro") == pytest.approx(M.accuracy(scores, target))
    cm = M.confusion_matrix(hubkit.from_numpy(scores), hubkit.tensor(target), 5)
    assert cm.sum() == 103 and np.trace(cm) == np.sum(scores.argmax(1) == target)
    assert cm[target[0], scores[0].argmax()] >= 1
    assert M.mean_squared_error(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(2.5)


@pytest.mark.parametrize("cls,args", [(M.Accuracy, ()), (M.Accuracy, (2,)), (M.Precision, (5,)), (M.Recall, (5,)),
                                      (M.F1Score, (5,)), (M.F1Score, (5, "weighted")), (M.ConfusionMatrix, (5,))])
def test_accumulating_unequal_batches_equals_the_whole(cls, args):
    scores, target = _case()
    metric = cls(*args)
    for lo, hi in ((0, 1), (1, 40), (40, 41), (41, 103)):
        metric.update(hubkit.from_numpy(scores[lo:hi]), hubkit.tensor(target[lo:hi]))
    whole = cls(*args)
    whole.update(scores, target)
    a, b = metric.compute(), whole.compute()
    np.testing.assert_allclose(np.asarray(a.numpy() if hasattr(a, "numpy") else a),
                               np.asarray(b.numpy() if hasattr(b, "numpy") else b))
    metric.reset()
    assert cls(*args).compute() is not None


def test_call_returns_the_batch_value_and_accumulates():
    acc = M.Accuracy()
    assert acc(np.array([0, 1]), np.array([0, 0])) == 0.5
    assert acc(np.array([1, 1, 1, 1]), np.array([1, 1, 1, 1])) == 1.0
    assert acc.compute() == pytest.approx(5 / 6)


def test_mean_metrics():
    mse = M.MeanSquaredError()
    mse.update(np.array([1.0]), np.array([3.0]))
    mse.update(np.array([0.0, 0.0, 0.0]), np.array([1.0, 1.0, 1.0]))
    assert mse.compute() == pytest.approx((4 + 3) / 4)
    mean = M.MeanMetric()
    mean.update(2.0, weight=1)
    mean.update(hubkit.tensor(5.0), weight=3)
    assert mean.compute() == pytest.approx(17 / 4)
    running = M.RunningMean(window=2)
    for v in (1.0, 2.0, 4.0):
        running.update(v)
    assert running.compute() == 3.0


def test_bad_metric_input():
    with pytest.raises(ShapeError, match=r"expected preds \(N, C\) and target \(N,\), got \(3, 2\) and \(4,\)"):
        M.accuracy(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ArgumentError, match="top_k"):
        M.accuracy(np.zeros((3, 2)), np.zeros(3), top_k=3)
    with pytest.raises(ArgumentError, match=r"\[0, 2\)"):
        M.confusion_matrix(np.array([0, 2]), np.array([0, 1]), 2)
    with pytest.raises(ArgumentError, match="average"):
        M.F1Score(3, average="samples")
