"""Trainer callbacks with Lightning's names and meanings: ``Callback`` (the hook set), ``ModelCheckpoint``,
``EarlyStopping``, ``LearningRateMonitor`` and ``Timer``.

Every hook receives ``(trainer, module, ...)``; a callback's hook runs right before the module's
hook of the same name. ``state_dict``/``load_state_dict`` carry a callback's state in checkpoints.
"""

from __future__ import annotations

import datetime
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from hubkit.errors import ArgumentError, TrainerError


class Callback:
    """The hooks the Trainer calls, each a no-op here; subclass and override the ones you need."""

    @property
    def state_key(self) -> str:
        return type(self).__qualname__

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        pass

    def setup(self, trainer: Any, module: Any, stage: str) -> None: ...
    def teardown(self, trainer: Any, module: Any, stage: str) -> None: ...
    def on_fit_start(self, trainer: Any, module: Any) -> None: ...
    def on_fit_end(self, trainer: Any, module: Any) -> None: ...
    def on_sanity_check_start(self, trainer: Any, module: Any) -> None: ...
    def on_sanity_check_end(self, trainer: Any, module: Any) -> None: ...
    def on_train_start(self, trainer: Any, module: Any) -> None: ...
    def on_train_end(self, trainer: Any, module: Any) -> None: ...
    def on_train_epoch_start(self, trainer: Any, module: Any) -> None: ...
    def on_train_epoch_end(self, trainer: Any, module: Any) -> None: ...
    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None: ...
    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None: ...
    def on_validation_start(self, trainer: Any, module: Any) -> None: ...
    def on_validation_end(self, trainer: Any, module: Any) -> None: ...
    def on_validation_epoch_start(self, trainer: Any, module: Any) -> None: ...
    def on_validation_epoch_end(self, trainer: Any, module: Any) -> None: ...
    def on_validation_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int,
                                  dataloader_idx: int = 0) -> None: ...
    def on_validation_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None: ...
    def on_test_start(self, trainer: Any, module: Any) -> None: ...
    def on_test_end(self, trainer: Any, module: Any) -> None: ...
    def on_test_epoch_start(self, trainer: Any, module: Any) -> None: ...
    def on_test_epoch_end(self, trainer: Any, module: Any) -> None: ...
    def on_test_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int,
                            dataloader_idx: int = 0) -> None: ...
    def on_test_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int,
                          dataloader_idx: int = 0) -> None: ...
    def on_predict_start(self, trainer: Any, module: Any) -> None: ...
    def on_predict_end(self, trainer: Any, module: Any) -> None: ...
    def on_predict_epoch_start(self, trainer: Any, module: Any) -> None: ...
    def on_predict_epoch_end(self, trainer: Any, module: Any) -> None: ...
    def on_predict_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int,
                               dataloader_idx: int = 0) -> None: ...
    def on_predict_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int,
                             dataloader_idx: int = 0) -> None: ...
    def on_before_backward(self, trainer: Any, module: Any, loss: Any) -> None: ...
    def on_after_backward(self, trainer: Any, module: Any) -> None: ...
    def on_before_optimizer_step(self, trainer: Any, module: Any, optimizer: Any) -> None: ...
    def on_before_zero_grad(self, trainer: Any, module: Any, optimizer: Any) -> None: ...
    def on_save_checkpoint(self, trainer: Any, module: Any, checkpoint: dict) -> None: ...
    def on_load_checkpoint(self, trainer: Any, module: Any, checkpoint: dict) -> None: ...
    def on_exception(self, trainer: Any, module: Any, exception: BaseException) -> None: ...


def _monitored(trainer: Any, monitor: str, owner: str, strict: bool = True) -> float | None:
    metrics = trainer.callback_metrics
    if monitor not in metrics:
        if not strict:
            return None
        available = sorted(metrics) or ["(none logged yet)"]
        raise TrainerError(f"{owner}(monitor={monitor!r}) found no metric {monitor!r}; logged metrics are "
                           f"{available}. Log it with self.log({monitor!r}, value) in training_step or "
                           "validation_step, or monitor one of those")
    return float(metrics[monitor])


def _better(mode: str, a: float, b: float) -> bool:
    return a < b if mode == "min" else a > b


class ModelCheckpoint(Callback):
    """Save checkpoints during ``fit``: the last one, or the ``save_top_k`` best by a ``monitor``ed metric.

    ``filename`` is a template over ``epoch``, ``step`` and logged metrics (``"{epoch}-{val_loss:.2f}"``
    becomes ``epoch=3-val_loss=0.12.ckpt``); ``save_last`` also keeps ``last.ckpt``. Files are written
    atomically with ``hubkit.save`` (PyTorch's zip format). ``dirpath`` defaults to the run's
    ``checkpoints`` folder.
    """

    CHECKPOINT_JOIN_CHAR = "-"
    CHECKPOINT_EQUALS_CHAR = "="
    CHECKPOINT_NAME_LAST = "last"
    FILE_EXTENSION = ".ckpt"

    def __init__(self, dirpath: str | os.PathLike | None = None, filename: str | None = None,
                 monitor: str | None = None, verbose: bool = False, save_last: bool | None = None,
                 save_top_k: int = 1, save_weights_only: bool = False, mode: str = "min",
                 auto_insert_metric_name: bool = True, every_n_train_steps: int | None = None,
                 every_n_epochs: int | None = None, save_on_train_epoch_end: bool | None = None) -> None:
        if mode not in ("min", "max"):
            raise ArgumentError(f"ModelCheckpoint(mode={mode!r}): use 'min' or 'max'")
        if save_top_k < -1:
            raise ArgumentError(f"ModelCheckpoint(save_top_k={save_top_k}): use -1 (all), 0 (none) or a count")
        if monitor is None and save_top_k not in (-1, 0, 1):
            raise ArgumentError(f"ModelCheckpoint(save_top_k={save_top_k}) ranks checkpoints by a metric: pass "
                                "monitor= too (without one only the latest checkpoint is kept)")
        if every_n_train_steps is not None and every_n_epochs is not None:
            raise ArgumentError("ModelCheckpoint: every_n_train_steps and every_n_epochs are mutually exclusive")
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.filename = filename
        self.monitor = monitor
        self.verbose = verbose
        self.save_last = save_last
        self.save_top_k = save_top_k
        self.save_weights_only = save_weights_only
        self.mode = mode
        self.auto_insert_metric_name = auto_insert_metric_name
        self.every_n_train_steps = every_n_train_steps
        self.every_n_epochs = 1 if every_n_epochs is None and every_n_train_steps is None else every_n_epochs
        self.save_on_train_epoch_end = save_on_train_epoch_end
        self.best_k_models: dict[str, float] = {}
        self.kth_best_model_path = ""
        self.kth_value = math.inf if mode == "min" else -math.inf
        self.best_model_path = ""
        self.best_model_score: float | None = None
        self.current_score: float | None = None
        self.last_model_path = ""
        self._last_global_step_saved = -1

    @property
    def state_key(self) -> str:
        return (f"ModelCheckpoint{{'monitor': {self.monitor!r}, 'mode': {self.mode!r}, 'every_n_train_steps': "
                f"{self.every_n_train_steps!r}, 'every_n_epochs': {self.every_n_epochs!r}}}")

    def state_dict(self) -> dict[str, Any]:
        return {"monitor": self.monitor, "best_model_score": self.best_model_score,
                "best_model_path": self.best_model_path, "current_score": self.current_score,
                "dirpath": str(self.dirpath) if self.dirpath else None, "best_k_models": dict(self.best_k_models),
                "kth_best_model_path": self.kth_best_model_path, "kth_value": self.kth_value,
                "last_model_path": self.last_model_path, "last_global_step_saved": self._last_global_step_saved}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_model_score = state_dict.get("best_model_score")
        self.best_model_path = state_dict.get("best_model_path", "")
        self.current_score = state_dict.get("current_score")
        self.best_k_models = dict(state_dict.get("best_k_models", {}))
        self.kth_best_model_path = state_dict.get("kth_best_model_path", "")
        self.kth_value = state_dict.get("kth_value", self.kth_value)
        self.last_model_path = state_dict.get("last_model_path", "")
        self._last_global_step_saved = state_dict.get("last_global_step_saved", -1)

    # ------------------------------------------------------------ when
    def setup(self, trainer: Any, module: Any, stage: str) -> None:
        if self.dirpath is None:
            self.dirpath = Path(trainer.log_dir) / "checkpoints"

    def _on_epoch_end_here(self, trainer: Any) -> bool:
        if self.save_on_train_epoch_end is not None:
            return self.save_on_train_epoch_end
        return not trainer._has_validation

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        n = self.every_n_train_steps
        if n and trainer.global_step % n == 0 and trainer.global_step != self._last_global_step_saved \
                and trainer._stepped_this_batch:
            self._save_topk_or_last(trainer)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        if self._on_epoch_end_here(trainer) and self._epoch_due(trainer):
            self._save_topk_or_last(trainer)

    def on_validation_end(self, trainer: Any, module: Any) -> None:
        if trainer.sanity_checking or trainer.state != "fit" or self._on_epoch_end_here(trainer):
            return
        if self._epoch_due(trainer) or self.every_n_train_steps:
            self._save_topk_or_last(trainer)

    def _epoch_due(self, trainer: Any) -> bool:
        return bool(self.every_n_epochs) and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    # ------------------------------------------------------------ what
    def format_checkpoint_name(self, metrics: dict[str, Any], filename: str | None = None) -> str:
        template = filename or self.filename or "{epoch}" + self.CHECKPOINT_JOIN_CHAR + "{step}"
        names = re.findall(r"\{([^{}:!]+)", template)
        if self.auto_insert_metric_name:
            for name in sorted(set(names), key=len, reverse=True):
                template = re.sub(r"\{" + re.escape(name) + r"([:!}])", f"{name}{self.CHECKPOINT_EQUALS_CHAR}"
                                  + "{" + name + r"\1", template)
        values = {name: metrics.get(name, 0) for name in names}
        safe = {name: f"v{i}" for i, name in enumerate(values)}  # metric names may hold '/' or '.'
        for name, alias in safe.items():
            template = template.replace("{" + name, "{" + alias)
        return template.format(**{safe[k]: v for k, v in values.items()}) + self.FILE_EXTENSION

    def _candidates(self, trainer: Any) -> dict[str, Any]:
        metrics = dict(trainer.callback_metrics)
        metrics.setdefault("epoch", trainer.current_epoch)
        metrics.setdefault("step", trainer.global_step)
        return metrics

    def _unique(self, path: Path) -> Path:
        version, candidate = 1, path
        while candidate.exists() and str(candidate) not in self.best_k_models and str(candidate) != \
                self.last_model_path:
            candidate = path.with_name(f"{path.stem}{self.CHECKPOINT_JOIN_CHAR}v{version}{path.suffix}")
            version += 1
        return candidate

    def _save_topk_or_last(self, trainer: Any) -> None:
        self._last_global_step_saved = trainer.global_step
        metrics = self._candidates(trainer)
        if self.monitor is None:
            if self.save_top_k != 0:
                path = self._unique(self.dirpath / self.format_checkpoint_name(metrics))
                previous = self.best_model_path
                trainer.save_checkpoint(path, weights_only=self.save_weights_only)
                if self.save_top_k == 1 and previous and previous != str(path):
                    Path(previous).unlink(missing_ok=True)
                self.best_model_path = str(path)
                if self.save_top_k == -1:
                    self.best_k_models[str(path)] = 0.0
        else:
            self._save_if_top_k(trainer, metrics)
        if self.save_last:
            last = self.dirpath / (self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
            trainer.save_checkpoint(last, weights_only=self.save_weights_only)
            self.last_model_path = str(last)

    def _save_if_top_k(self, trainer: Any, metrics: dict[str, Any]) -> None:
        score = _monitored(trainer, self.monitor, "ModelCheckpoint")
        self.current_score = score
        if self.save_top_k == 0 or math.isnan(score):
            return
        full = self.save_top_k != -1 and len(self.best_k_models) >= self.save_top_k
        if full and not _better(self.mode, score, self.kth_value):
            return
        path = self._unique(self.dirpath / self.format_checkpoint_name(metrics))
        trainer.save_checkpoint(path, weights_only=self.save_weights_only)
        self.best_k_models[str(path)] = score
        if full:
            worst = self.kth_best_model_path
            self.best_k_models.pop(worst, None)
            if worst and worst != str(path):
                Path(worst).unlink(missing_ok=True)
        ranked = sorted(self.best_k_models.items(), key=lambda kv: kv[1], reverse=self.mode == "max")
        self.best_model_path, self.best_model_score = ranked[0]
        self.kth_best_model_path, self.kth_value = ranked[-1]
        if self.verbose:
            trainer.print(f"Epoch {trainer.current_epoch}, global step {trainer.global_step}: {self.monitor} "
                          f"reached {score:.5f}; saved {path}")


class EarlyStopping(Callback):
    """Stop ``fit`` when ``monitor`` has not improved by ``min_delta`` for ``patience`` validation checks."""

    def __init__(self, monitor: str, min_delta: float = 0.0, patience: int = 3, verbose: bool = False,
                 mode: str = "min", strict: bool = True, check_finite: bool = True,
                 stopping_threshold: float | None = None, divergence_threshold: float | None = None,
                 check_on_train_epoch_end: bool | None = None) -> None:
        if mode not in ("min", "max"):
            raise ArgumentError(f"EarlyStopping(mode={mode!r}): use 'min' or 'max'")
        self.monitor, self.mode, self.patience, self.verbose = monitor, mode, patience, verbose
        self.min_delta = abs(min_delta) * (-1 if mode == "min" else 1)
        self.strict, self.check_finite = strict, check_finite
        self.stopping_threshold, self.divergence_threshold = stopping_threshold, divergence_threshold
        self.check_on_train_epoch_end = check_on_train_epoch_end
        self.wait_count = 0
        self.stopped_epoch = 0
        self.best_score = math.inf if mode == "min" else -math.inf
        self.stopping_reason_message: str | None = None

    @property
    def state_key(self) -> str:
        return f"EarlyStopping{{'monitor': {self.monitor!r}, 'mode': {self.mode!r}}}"

    def state_dict(self) -> dict[str, Any]:
        return {"wait_count": self.wait_count, "stopped_epoch": self.stopped_epoch, "best_score": self.best_score,
                "patience": self.patience, "stopping_reason_message": self.stopping_reason_message}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.wait_count = state_dict["wait_count"]
        self.stopped_epoch = state_dict["stopped_epoch"]
        self.best_score = state_dict["best_score"]
        self.patience = state_dict["patience"]
        self.stopping_reason_message = state_dict.get("stopping_reason_message")

    def _on_epoch_end_here(self, trainer: Any) -> bool:
        if self.check_on_train_epoch_end is not None:
            return self.check_on_train_epoch_end
        return not trainer._has_validation

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        if self._on_epoch_end_here(trainer):
            self._check(trainer)

    def on_validation_end(self, trainer: Any, module: Any) -> None:
        if not trainer.sanity_checking and trainer.state == "fit" and not self._on_epoch_end_here(trainer):
            self._check(trainer)

    def _check(self, trainer: Any) -> None:
        current = _monitored(trainer, self.monitor, "EarlyStopping", strict=self.strict)
        if current is None:
            return
        stop, reason = self._evaluate(current)
        if stop:
            trainer.should_stop = True
            self.stopped_epoch = trainer.current_epoch
            self.stopping_reason_message = reason
            if self.verbose:
                trainer.print(reason)

    def _evaluate(self, current: float) -> tuple[bool, str | None]:
        name = self.monitor
        if self.check_finite and not math.isfinite(current):
            return True, f"Monitored metric {name} = {current} is not finite; stopping"
        if self.stopping_threshold is not None and _better(self.mode, current, self.stopping_threshold):
            return True, f"Stopping threshold reached: {name} = {current} (threshold {self.stopping_threshold})"
        if self.divergence_threshold is not None and _better(self.mode, self.divergence_threshold, current):
            return True, f"Divergence threshold reached: {name} = {current} (threshold {self.divergence_threshold})"
        if _better(self.mode, current - self.min_delta, self.best_score):
            self.best_score = current
            self.wait_count = 0
            return False, None
        self.wait_count += 1
        if self.wait_count >= self.patience:
            return True, (f"Monitored metric {name} did not improve in the last {self.wait_count} checks; best "
                          f"score {self.best_score:.6f}; stopping")
        return False, None


class LearningRateMonitor(Callback):
    """Log each optimizer's learning rate as ``lr-<Optimizer>`` (``/pg<i>`` per extra param group)."""

    def __init__(self, logging_interval: str | None = None, log_momentum: bool = False) -> None:
        if logging_interval not in (None, "step", "epoch"):
            raise ArgumentError(f"LearningRateMonitor(logging_interval={logging_interval!r}): use None, "
                                "'step' or 'epoch'")
        self.logging_interval = logging_interval
        self.log_momentum = log_momentum
        self.lrs: dict[str, list[float]] = {}

    def _values(self, trainer: Any) -> dict[str, float]:
        values = {}
        for optimizer in trainer.optimizers:
            base = f"lr-{type(optimizer).__name__}"
            for i, group in enumerate(optimizer.param_groups):
                name = base if len(optimizer.param_groups) == 1 else f"{base}/pg{i + 1}"
                values[name] = float(group["lr"])
                if self.log_momentum:
                    momentum = group.get("momentum", group.get("betas", (None,))[0])
                    if momentum is not None:
                        values[name.replace("lr-", "lr-momentum-", 1)] = float(momentum)
        return values

    def _record(self, trainer: Any) -> None:
        values = self._values(trainer)
        for name, value in values.items():
            self.lrs.setdefault(name, []).append(value)
        trainer._log_to_logger(values)

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, batch_idx: int) -> None:
        interval = self.logging_interval or ("step" if any(c.interval == "step" for c in
                                                           trainer.lr_scheduler_configs) else None)
        if interval == "step" and batch_idx % trainer.accumulate_grad_batches == 0:  # this window's lr
            self._record(trainer)

    def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
        if self.logging_interval in (None, "epoch") and not any(c.interval == "step" for c in
                                                                trainer.lr_scheduler_configs):
            self._record(trainer)


def _parse_duration(duration: Any) -> float | None:
    if duration is None:
        return None
    if isinstance(duration, datetime.timedelta):
        return duration.total_seconds()
    if isinstance(duration, dict):
        return datetime.timedelta(**duration).total_seconds()
    if isinstance(duration, str):
        m = re.fullmatch(r"(\d+):(\d\d):(\d\d):(\d\d)", duration.strip())
        if m is None:
            raise ArgumentError(f"Timer(duration={duration!r}): use 'DD:HH:MM:SS', a timedelta or a dict")
        days, hours, minutes, seconds = (int(g) for g in m.groups())
        return datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds).total_seconds()
    raise ArgumentError(f"Timer(duration={duration!r}): use 'DD:HH:MM:SS', a timedelta or a dict")


class Timer(Callback):
    """Time each stage, and stop ``fit`` once ``duration`` has passed (checked every step or epoch)."""

    def __init__(self, duration: Any = None, interval: str = "step", verbose: bool = True) -> None:
        if interval not in ("step", "epoch"):
            raise ArgumentError(f"Timer(interval={interval!r}): use 'step' or 'epoch'")
        self._duration = _parse_duration(duration)
        self._interval = interval
        self._verbose = verbose
        self._start: dict[str, float] = {}
        self._end: dict[str, float] = {}
        self._offset = 0.0

    def start_time(self, stage: str = "train") -> float | None:
        return self._start.get(stage)

    def end_time(self, stage: str = "train") -> float | None:
        return self._end.get(stage)

    def time_elapsed(self, stage: str = "train") -> float:
        start = self._start.get(stage)
        if start is None:
            return self._offset if stage == "train" else 0.0
        end = self._end.get(stage, time.monotonic())
        return end - start + (self._offset if stage == "train" else 0.0)

    def time_remaining(self, stage: str = "train") -> float | None:
        return None if self._duration is None else self._duration - self.time_elapsed(stage)

    def state_dict(self) -> dict[str, Any]:
        return {"time_elapsed": {"train": self.time_elapsed("train")}}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._offset = float(state_dict.get("time_elapsed", {}).get("train", 0.0))

    def on_train_start(self, trainer: Any, module: Any) -> None:
        self._start["train"] = time.monotonic()

    def on_train_end(self, trainer: Any, module: Any) -> None:
        self._end["train"] = time.monotonic()

    def on_validation_start(self, trainer: Any, module: Any) -> None:
        self._start["validate"] = time.monotonic()

    def on_validation_end(self, trainer: Any, module: Any) -> None:
        self._end["validate"] = time.monotonic()

    def on_test_start(self, trainer: Any, module: Any) -> None:
        self._start["test"] = time.monotonic()

    def on_test_end(self, trainer: Any, module: Any) -> None:
        self._end["test"] = time.monotonic()

    def _check(self, trainer: Any) -> None:
        if self._duration is not None and self.time_elapsed("train") >= self._duration:
            trainer.should_stop = True
            if self._verbose:
                trainer.print(f"Time limit reached ({self._duration:.0f} s); signalling the Trainer to stop")

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._interval == "step":
            self._check(trainer)

    def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
        if self._interval == "epoch":
            self._check(trainer)
