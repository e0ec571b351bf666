"""Classification and regression metrics that stay correct when accumulated over batches of unequal size.

Each metric class follows torchmetrics' pattern: ``update(preds, target)`` per batch, ``compute()`` at
the end, ``reset()`` to start again. They accumulate counts (correct predictions, the confusion
matrix, sums of squares), never per-batch averages, so the result equals the metric of the
concatenated batches. The functions (``accuracy``, ``f1_score``, ...) compute one batch at once.

``preds`` are class scores ``(N, C)`` (logits or probabilities; the top scores are the predictions)
or predicted labels ``(N,)``; ``target`` holds labels ``(N,)``.
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, ShapeError

_AVERAGES = ("micro", "macro", "weighted", "none", None)


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "array"):
        x = x.array
    if hasattr(x, "get") and hasattr(x, "__cuda_array_interface__"):
        x = x.get()
    return np.asarray(x)


def _labels(preds: Any, target: Any, op: str) -> tuple[np.ndarray, np.ndarray]:
    p, t = _numpy(preds), _numpy(target).reshape(-1)
    if p.ndim == 2:
        if p.shape[0] != t.shape[0]:
            raise ShapeError(f"{op}: preds {p.shape} and target {t.shape} disagree on the number of samples")
        p = p.argmax(axis=1)
    p = p.reshape(-1)
    if p.shape != t.shape:
        raise ShapeError(f"{op}: expected preds (N, C) scores or (N,) labels matching target (N,); got preds "
                         f"{_numpy(preds).shape} and target {t.shape}")
    return p.astype(np.int64), t.astype(np.int64)


def _check_average(average: Any, op: str) -> None:
    if average not in _AVERAGES:
        raise ArgumentError(f"{op}(average={average!r}): use 'micro', 'macro', 'weighted' or None")


def _topk_correct(preds: Any, target: Any, top_k: int) -> tuple[int, int]:
    p, t = _numpy(preds), _numpy(target).reshape(-1).astype(np.int64)
    if p.ndim == 1:
        if top_k != 1:
            raise ArgumentError(f"accuracy(top_k={top_k}) needs class scores (N, C), got labels of shape {p.shape}")
        if p.shape != t.shape:
            raise ShapeError(f"accuracy: preds {p.shape} and target {t.shape} differ")
        return int((p.astype(np.int64) == t).sum()), t.size
    if p.ndim != 2 or p.shape[0] != t.shape[0]:
        raise ShapeError(f"accuracy: expected preds (N, C) and target (N,), got {p.shape} and {t.shape}")
    if not 1 <= top_k <= p.shape[1]:
        raise ArgumentError(f"accuracy(top_k={top_k}): must be between 1 and the number of classes {p.shape[1]}")
    top = np.argpartition(-p, top_k - 1, axis=1)[:, :top_k] if top_k < p.shape[1] else np.arange(p.shape[1])[None]
    return int((top == t[:, None]).any(axis=1).sum()), t.size


def accuracy(preds: Any, target: Any, top_k: int = 1) -> float:
    """Fraction of samples whose target is among the ``top_k`` highest scores."""
    correct, total = _topk_correct(preds, target, top_k)
    return correct / total if total else 0.0


def confusion_matrix(preds: Any, target: Any, num_classes: int) -> np.ndarray:
    """``(num_classes, num_classes)`` counts: row = true class, column = predicted class."""
    p, t = _labels(preds, target, "confusion_matrix")
    bad = (t < 0) | (t >= num_classes) | (p < 0) | (p >= num_classes)
    if bad.any():
        raise ArgumentError(f"confusion_matrix: labels must be in [0, {num_classes}); found "
                            f"{sorted(set(np.concatenate([t[bad], p[bad]]).tolist()))[:5]}")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _from_confusion(matrix: np.ndarray, kind: str, average: Any) -> Any:
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)  # tp + fp
    actual = matrix.sum(axis=1).astype(np.float64)  # tp + fn
    if average == "micro":
        total = matrix.sum()
        return float(tp.sum() / total) if total else 0.0  # micro precision = recall = f1 = accuracy
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    per_class = {"precision": precision, "recall": recall, "f1": f1}[kind]
    if average in ("none", None):
        from hubkit.tensor import from_numpy

        return from_numpy(per_class)
    if average == "weighted":
        return float((per_class * actual).sum() / actual.sum()) if actual.sum() else 0.0
    return float(per_class.mean())


def precision(preds: Any, target: Any, num_classes: int, average: Any = "macro") -> Any:
    """tp / (tp + fp) per class, averaged (``macro``: unweighted over the classes; a class never predicted
    counts as 0, as scikit-learn's ``zero_division=0``)."""
    _check_average(average, "precision")
    return _from_confusion(confusion_matrix(preds, target, num_classes), "precision", average)


def recall(preds: Any, target: Any, num_classes: int, average: Any = "macro") -> Any:
    _check_average(average, "recall")
    return _from_confusion(confusion_matrix(preds, target, num_classes), "recall", average)


def f1_score(preds: Any, target: Any, num_classes: int, average: Any = "macro") -> Any:
    _check_average(average, "f1_score")
    return _from_confusion(confusion_matrix(preds, target, num_classes), "f1", average)


def mean_squared_error(preds: Any, target: Any) -> float:
    p, t = _numpy(preds).astype(np.float64), _numpy(target).astype(np.float64)
    if p.shape != t.shape:
        raise ShapeError(f"mean_squared_error: preds {p.shape} and target {t.shape} differ")
    return float(((p - t) ** 2).mean()) if p.size else 0.0


# ---------------------------------------------------------------- accumulating metrics


class Metric:
    """Base of the accumulating metrics: ``update`` per batch, ``compute`` at the end, ``reset``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:  # pragma: no cover - every metric overrides it
        raise NotImplementedError

    def update(self, *args: Any) -> None:  # pragma: no cover
        raise NotImplementedError

    def compute(self) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __call__(self, *args: Any) -> Any:
        """Update with this batch and return the batch's own value (torchmetrics' forward)."""
        batch = copy.copy(self)  # same settings; reset() gives it fresh state of its own
        batch.reset()
        batch.update(*args)
        self.update(*args)
        return batch.compute()


class Accuracy(Metric):
    def __init__(self, top_k: int = 1) -> None:
        self.top_k = top_k
        super().__init__()

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def update(self, preds: Any, target: Any) -> None:
        correct, total = _topk_correct(preds, target, self.top_k)
        self.correct += correct
        self.total += total

    def compute(self) -> float:
        return self.correct / self.total if self.total else 0.0


class ConfusionMatrix(Metric):
    def __init__(self, num_classes: int) -> None:
        if num_classes < 1:
            raise ArgumentError(f"ConfusionMatrix(num_classes={num_classes}): need at least one class")
        self.num_classes = num_classes
        super().__init__()

    def reset(self) -> None:
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, preds: Any, target: Any) -> None:
        self.matrix += confusion_matrix(preds, target, self.num_classes)

    def compute(self) -> Any:
        from hubkit.tensor import from_numpy

        return from_numpy(self.matrix.copy())


class _FromConfusion(ConfusionMatrix):
    _kind = ""

    def __init__(self, num_classes: int, average: Any = "macro") -> None:
        _check_average(average, type(self).__name__)
        self.average = average
        super().__init__(num_classes)

    def compute(self) -> Any:
        return _from_confusion(self.matrix, self._kind, self.average)


class Precision(_FromConfusion):
    _kind = "precision"


class Recall(_FromConfusion):
    _kind = "recall"


class F1Score(_FromConfusion):
    _kind = "f1"


class MeanSquaredError(Metric):
    def reset(self) -> None:
        self.sum_squared = 0.0
        self.count = 0

    def update(self, preds: Any, target: Any) -> None:
        p, t = _numpy(preds).astype(np.float64), _numpy(target).astype(np.float64)
        if p.shape != t.shape:
            raise ShapeError(f"MeanSquaredError: preds {p.shape} and target {t.shape} differ")
        self.sum_squared += float(((p - t) ** 2).sum())
        self.count += p.size

    def compute(self) -> float:
        return self.sum_squared / self.count if self.count else 0.0


class MeanMetric(Metric):
    """The weighted mean of every value seen: ``update(batch_mean, weight=batch_size)``."""

    def reset(self) -> None:
        self.total = 0.0
        self.weight = 0.0

    def update(self, value: Any, weight: Any = 1.0) -> None:
        v, w = _numpy(value).astype(np.float64), np.broadcast_to(_numpy(weight).astype(np.float64),
                                                                 _numpy(value).shape)
        self.total += float((v * w).sum())
        self.weight += float(w.sum())

    def compute(self) -> float:
        return self.total / self.weight if self.weight else float("nan")


class RunningMean(Metric):
    """The mean of the last ``window`` values (what a progress bar's smoothed loss shows)."""

    def __init__(self, window: int = 20) -> None:
        if window < 1:
            raise ArgumentError(f"RunningMean(window={window}): must be >= 1")
        self.window = window
        super().__init__()

    def reset(self) -> None:
        self.values: deque[float] = deque(maxlen=self.window)

    def update(self, value: Any) -> None:
        self.values.extend(_numpy(value).astype(np.float64).reshape(-1).tolist())

    def compute(self) -> float:
        return float(np.mean(self.values)) if self.values else float("nan")
