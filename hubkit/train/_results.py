"""What ``self.log`` records: per-step values and batch-size-weighted epoch reductions, Lightning's rules.

A metric logged with ``on_step`` is reported at each step; with ``on_epoch`` it is reduced over the
epoch (``reduce_fx`` mean weighted by batch size, sum, max or min). With both, the logger gets
``name_step`` and ``name_epoch`` and the callbacks see ``name`` (the epoch value once the epoch ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hubkit.errors import TrainerError

# where self.log is allowed, and its (on_step, on_epoch) defaults there (Lightning's fx_validator)
HOOK_DEFAULTS: dict[str, tuple[bool, bool]] = {
    "training_step": (True, False),
    "on_train_batch_start": (True, False),
    "on_train_batch_end": (True, False),
    "on_before_backward": (True, False),
    "on_after_backward": (True, False),
    "on_before_optimizer_step": (True, False),
    "on_before_zero_grad": (True, False),
    "on_train_start": (False, True),
    "on_train_epoch_start": (False, True),
    "on_train_epoch_end": (False, True),
    "validation_step": (False, True),
    "on_validation_batch_start": (False, True),
    "on_validation_batch_end": (False, True),
    "on_validation_start": (False, True),
    "on_validation_epoch_start": (False, True),
    "on_validation_epoch_end": (False, True),
    "test_step": (False, True),
    "on_test_batch_start": (False, True),
    "on_test_batch_end": (False, True),
    "on_test_epoch_start": (False, True),
    "on_test_epoch_end": (False, True),
}

_REDUCE = ("mean", "sum", "max", "min")


def to_float(value: Any, name: str) -> float:
    """A logged value as a Python float: a one-element Tensor or array, or a number."""
    if hasattr(value, "array"):
        value = value.array
    if hasattr(value, "get") and hasattr(value, "__cuda_array_interface__"):
        value = value.get()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TrainerError(f"self.log({name!r}, ...) got a {type(value).__name__}; log a number or a "
                           "one-element tensor (use log_dict for several)") from None
    if array.size != 1:
        raise TrainerError(f"self.log({name!r}, ...) got a tensor of shape {array.shape}; log a one-element "
                           "tensor (reduce it first, e.g. .mean())")
    return float(array.reshape(()))


@dataclass
class _Metric:
    on_step: bool
    on_epoch: bool
    prog_bar: bool
    logger: bool
    reduce_fx: str
    last: float = math.nan
    total: float = 0.0
    weight: float = 0.0
    extreme: float | None = None
    steps: int = 0

    def update(self, value: float, batch_size: int) -> None:
        self.last = value
        self.steps += 1
        if self.reduce_fx == "mean":
            self.total += value * batch_size
            self.weight += batch_size
        elif self.reduce_fx == "sum":
            self.total += value
        elif self.reduce_fx == "max":
            self.extreme = value if self.extreme is None else max(self.extreme, value)
        else:
            self.extreme = value if self.extreme is None else min(self.extreme, value)

    def epoch_value(self) -> float:
        if self.reduce_fx == "mean":
            return self.total / self.weight if self.weight else math.nan
        if self.reduce_fx == "sum":
            return self.total
        return math.nan if self.extreme is None else self.extreme


@dataclass
class Results:
    """The metrics of the running stage (``fit``'s train and validation, ``validate``, ``test``)."""

    hook: str | None = None
    batch_size: int = 1
    metrics: dict[str, dict[str, _Metric]] = field(default_factory=dict)  # stage -> name -> metric
    stage: str = "train"
    callback_metrics: dict[str, float] = field(default_factory=dict)
    progress_bar_metrics: dict[str, float] = field(default_factory=dict)
    pending_step: dict[str, float] = field(default_factory=dict)  # for the logger, flushed by the trainer

    def log(self, name: str, value: Any, *, prog_bar: bool, logger: bool, on_step: bool | None,
            on_epoch: bool | None, reduce_fx: str, batch_size: int | None) -> None:
        if self.hook not in HOOK_DEFAULTS:
            raise TrainerError(f"self.log({name!r}) is not allowed in {self.hook or 'this place'}: log from "
                               "training_step, validation_step, test_step or the batch/epoch hooks")
        if reduce_fx not in _REDUCE:
            raise TrainerError(f"self.log({name!r}, reduce_fx={reduce_fx!r}): use one of {_REDUCE}")
        default_step, default_epoch = HOOK_DEFAULTS[self.hook]
        on_step = default_step if on_step is None else on_step
        on_epoch = default_epoch if on_epoch is None else on_epoch
        if on_step and self.hook.startswith("on_") and self.hook.endswith(("_start", "_end")) \
                and "batch" not in self.hook:
            raise TrainerError(f"self.log({name!r}, on_step=True) is not allowed in {self.hook}: it runs once "
                               "per epoch; use on_epoch=True")
        value = to_float(value, name)
        stage = self.metrics.setdefault(self.stage, {})
        metric = stage.get(name)
        if metric is None:
            metric = stage[name] = _Metric(on_step, on_epoch, prog_bar, logger, reduce_fx)
        metric.update(value, batch_size or self.batch_size)
        if on_step:
            key = f"{name}_step" if on_epoch else name
            if logger:
                self.pending_step[key] = value
            self.callback_metrics[name] = value
            if prog_bar:
                self.progress_bar_metrics[name] = value

    def reset_stage(self, stage: str) -> None:
        self.metrics[stage] = {}

    def end_epoch(self, stage: str) -> dict[str, float]:
        """Reduce ``stage``'s epoch metrics; returns what the logger gets (``name`` or ``name_epoch``)."""
        logged = {}
        for name, metric in self.metrics.get(stage, {}).items():
            if not metric.on_epoch:
                continue
            value = metric.epoch_value()
            self.callback_metrics[name] = value
            if metric.on_step:
                self.callback_metrics[f"{name}_epoch"] = value
            if metric.prog_bar:
                self.progress_bar_metrics[name] = value
            if metric.logger:
                logged[f"{name}_epoch" if metric.on_step else name] = value
        return logged


def batch_size_of(batch: Any) -> int:
    """The batch size Lightning infers: the first dimension of the first tensor or array in the batch."""
    stack = [batch]
    while stack:
        item = stack.pop(0)
        shape = getattr(item, "shape", None)
        if shape is not None and len(shape) > 0:
            return int(shape[0])
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return 1
