"""``Trainer``: the training loop PyTorch users know from Lightning, on hubkit.

    trainer = Trainer(max_epochs=10, callbacks=[ModelCheckpoint(monitor="val_loss")])
    trainer.fit(model, train_loader, val_loader)          # a TrainModule, or any Module with loss_fn=/optimizer=
    trainer.test(model, test_loader)

Names, defaults and hook order are Lightning's (``/work/shared``'s anchors-wave2.md section 2 lists
them). A run writes ``<default_root_dir>/hubkit_logs/version_<n>/``: ``metrics.csv``,
``hparams.json``, ``curves.png`` (with matplotlib) and ``checkpoints/``. ``fit(ckpt_path=...)``
resumes exactly, mid-epoch included: weights, optimizers, schedulers, counters, callback states,
every random stream and the DataLoader's position.
"""

from __future__ import annotations

import logging
import math
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hubkit.errors import ArgumentError, TrainerError
from hubkit.train._ddp import STRATEGIES, DDPStrategy
from hubkit.train._output import CSVLogger, ProgressBar, environment, model_summary
from hubkit.train._results import Results, batch_size_of, to_float
from hubkit.train.callbacks import Callback, ModelCheckpoint
from hubkit.train.module import TrainModule, _LossModule

log = logging.getLogger("hubkit.train")


@dataclass
class LRSchedulerConfig:
    """One scheduler and when it steps (Lightning's scheduler config dict, with its defaults)."""

    scheduler: Any
    interval: str = "epoch"
    frequency: int = 1
    monitor: str | None = None
    strict: bool = True
    name: str | None = None


def _move(batch: Any, device: Any) -> Any:
    if hasattr(batch, "to") and hasattr(batch, "array"):
        return batch.to(device)
    if isinstance(batch, (list, tuple)):
        moved = [_move(b, device) for b in batch]
        return type(batch)(moved) if not hasattr(batch, "_fields") else type(batch)(*moved)
    if isinstance(batch, dict):
        return {k: _move(v, device) for k, v in batch.items()}
    return batch


def _limit(limit: int | float | None, available: int | None, what: str) -> int | None:
    """Lightning's limit_*_batches: an int caps the count, a float takes that fraction of the epoch."""
    if limit is None:
        return available
    if isinstance(limit, bool) or limit < 0:
        raise ArgumentError(f"{what}={limit!r}: use a number of batches (int) or a fraction in [0, 1] (float)")
    if isinstance(limit, int):
        return limit if available is None else min(limit, available)
    if limit > 1:
        raise ArgumentError(f"{what}={limit}: a float is a fraction of the epoch and must be <= 1.0")
    if available is None:
        if limit == 1.0:
            return None
        raise ArgumentError(f"{what}={limit}: the loader has no length, so only 1.0 or an int count can be used")
    count = int(available * limit)
    if count == 0 and limit > 0:
        raise ArgumentError(f"{what}={limit} of {available} batches is 0 batches; raise it or use an int")
    return count


def _len(loader: Any) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


class Trainer:
    """Runs ``fit``, ``validate``, ``test`` and ``predict`` for a :class:`TrainModule` (or a plain Module).

    Args follow Lightning: ``max_epochs``/``max_steps`` (optimizer steps) end ``fit`` (1000 epochs when
    neither is given); ``accelerator`` ``"auto"`` picks CUDA when available; ``accumulate_grad_batches``
    divides each loss by k and steps every k batches (and on an epoch's last batch);
    ``gradient_clip_val`` clips by norm or value before each step; ``val_check_interval`` (a fraction
    of the epoch or a batch count) and ``check_val_every_n_epoch`` say when to validate;
    ``limit_*_batches`` cap the batches per epoch; ``seed`` seeds hubkit's, numpy's and Python's
    generators; ``on_nan_loss`` ``"raise"`` (default) stops at a non-finite loss naming the step,
    ``"skip"`` skips that batch's update.
    """

    def __init__(self, max_epochs: int | None = None, max_steps: int | None = None, accelerator: str = "auto",
                 devices: int | str = 1, callbacks: Any = (), log_every_n_steps: int = 50,
                 gradient_clip_val: float | None = None, gradient_clip_algorithm: str | None = "norm",
                 accumulate_grad_batches: int = 1, val_check_interval: int | float = 1.0,
                 check_val_every_n_epoch: int | None = 1, limit_train_batches: int | float | None = None,
                 limit_val_batches: int | float | None = None, limit_test_batches: int | float | None = None,
                 limit_predict_batches: int | float | None = None, num_sanity_val_steps: int = 2,
                 deterministic: bool = False, seed: int | None = None,
                 default_root_dir: str | os.PathLike | None = None, enable_progress_bar: bool = True,
                 enable_checkpointing: bool = True, enable_model_summary: bool = True, logger: Any = True,
                 on_nan_loss: str = "raise", strategy: str = "auto") -> None:
        if max_epochs is None and max_steps is None:
            max_epochs = 1000
        if accumulate_grad_batches < 1:
            raise ArgumentError(f"accumulate_grad_batches={accumulate_grad_batches}: use 1 or more")
        if gradient_clip_algorithm not in (None, "norm", "value"):
            raise ArgumentError(f"gradient_clip_algorithm={gradient_clip_algorithm!r}: use 'norm' or 'value'")
        if on_nan_loss not in ("raise", "skip"):
            raise ArgumentError(f"on_nan_loss={on_nan_loss!r}: use 'raise' or 'skip'")
        if strategy not in ("auto", "single_device", *STRATEGIES) or (
                strategy not in STRATEGIES and devices not in (1, "1", "auto")):
            raise ArgumentError(f"Trainer(devices={devices!r}, strategy={strategy!r}): use strategy='ddp' to train "
                                "on several devices or processes (one device otherwise)")
        self.max_epochs, self.max_steps = max_epochs, max_steps
        self.device = self._pick_device(accelerator)
        self._ddp = DDPStrategy(strategy, devices, self.device) if strategy in STRATEGIES else None
        self.log_every_n_steps = log_every_n_steps
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm or "norm"
        self.accumulate_grad_batches = accumulate_grad_batches
        self.val_check_interval = val_check_interval
        self.check_val_every_n_epoch = check_val_every_n_epoch
        self.limits = {"train": limit_train_batches, "validate": limit_val_batches, "test": limit_test_batches,
                       "predict": limit_predict_batches}
        self.num_sanity_val_steps = num_sanity_val_steps
        self.deterministic = deterministic
        self.seed = seed
        self.default_root_dir = Path(default_root_dir) if default_root_dir is not None else Path.cwd()
        self.enable_progress_bar = enable_progress_bar
        self.enable_model_summary = enable_model_summary
        self.on_nan_loss = on_nan_loss
        if logger is True:
            logger = CSVLogger(self.default_root_dir)
        self.logger: CSVLogger | None = logger or None
        if self._ddp is not None:
            self._ddp.configure_trainer(self)
        self.callbacks: list[Callback] = list(callbacks)
        if enable_checkpointing and not any(isinstance(c, ModelCheckpoint) for c in self.callbacks):
            self.callbacks.append(ModelCheckpoint())
        # checkpointing callbacks run after the others, as in Lightning (they save what the others did)
        self.callbacks.sort(key=lambda c: isinstance(c, ModelCheckpoint))
        self.current_epoch = 0
        self.global_step = 0
        self.should_stop = False
        self.sanity_checking = False
        self.state = "initializing"
        self.optimizers: list[Any] = []
        self.lr_scheduler_configs: list[LRSchedulerConfig] = []
        self.model: TrainModule | None = None
        self._results = Results()
        self._has_validation = False
        self._stepped_this_batch = False
        self._batches_that_stepped = 0
        self._batch_in_epoch = 0
        self._epoch_done = True
        self._train_loader: Any = None
        self._resume: dict | None = None
        self._skipped_nan = 0
        self._progress = ProgressBar(False)
        self._progress_metrics: dict[str, float] = {}
        if not log.handlers:  # the Trainer talks to people, like Lightning's: INFO to stderr by default
            log.addHandler(logging.StreamHandler(sys.stderr))
            log.setLevel(logging.INFO)
            log.propagate = False

    # ------------------------------------------------------------ public surface
    @property
    def callback_metrics(self) -> dict[str, float]:
        return self._results.callback_metrics

    @property
    def progress_bar_metrics(self) -> dict[str, float]:
        return self._results.progress_bar_metrics

    @property
    def log_dir(self) -> Path:
        return self.logger.log_dir if self.logger is not None else self.default_root_dir

    @property
    def checkpoint_callback(self) -> ModelCheckpoint | None:
        return next((c for c in self.callbacks if isinstance(c, ModelCheckpoint)), None)

    def print(self, *args: Any) -> None:
        log.info(" ".join(str(a) for a in args))

    def fit(self, model: Any, train_dataloaders: Any = None, val_dataloaders: Any = None,
            ckpt_path: str | os.PathLike | None = None, *, loss_fn: Any = None, optimizer: Any = None,
            lr_scheduler: Any = None) -> None:
        """Train ``model``; a plain ``nn.Module`` needs ``loss_fn`` (``loss_fn(model(x), y)``) and ``optimizer``
        (an optimizer, or a function of the parameters that makes one)."""
        module = self._attach(model, loss_fn, optimizer, lr_scheduler)
        if self._ddp is not None:
            self._ddp.prepare_data(module)
        train_loader = train_dataloaders if train_dataloaders is not None else self._hook_loader(module, "train")
        if train_loader is None:
            raise TrainerError("fit needs training data: pass train_dataloaders= (a DataLoader) or define "
                               "train_dataloader() in the module")
        val_loader = val_dataloaders if val_dataloaders is not None else self._hook_loader(module, "val")
        self._has_validation = val_loader is not None and self.limits["validate"] != 0 and \
            type(module).validation_step is not TrainModule.validation_step
        self._train_loader = train_loader
        self.state = "fit"
        self._seed()
        self._call("setup", "fit")
        self._configure_optimizers(module)
        if self._ddp is not None:
            self._train_loader = train_loader = self._ddp.setup_fit(self, module, train_loader)
        checkpoint = self._load_checkpoint(ckpt_path) if ckpt_path is not None else None
        if checkpoint is not None:
            self._restore(module, checkpoint)
        if self.logger is not None:
            self.logger.log_hyperparams(self._hparams(module))
        if self.enable_model_summary:
            log.info(model_summary(module))
        try:
            self._call("on_fit_start")
            if self._has_validation and self.num_sanity_val_steps != 0 and checkpoint is None:
                self._sanity_check(val_loader)
            self._call("on_train_start")
            self._fit_loop(train_loader, val_loader)
            self._call("on_train_end")
            self._call("on_fit_end")
        except BaseException as exc:
            self._call("on_exception", exc)
            raise
        finally:
            self._progress.close()
            self._finish_logs()
            self._call("teardown", "fit")
            self.state = "finished"

    def validate(self, model: Any = None, dataloaders: Any = None, ckpt_path: Any = None, verbose: bool = True,
                 *, loss_fn: Any = None) -> list[dict[str, float]]:
        """Run ``validation_step`` over ``dataloaders`` (a plain Module: ``loss_fn``, logged as ``val_loss``)."""
        return self._evaluate("validate", model, dataloaders, ckpt_path, verbose, loss_fn)

    def test(self, model: Any = None, dataloaders: Any = None, ckpt_path: Any = None, verbose: bool = True,
             *, loss_fn: Any = None) -> list[dict[str, float]]:
        """Run ``test_step`` over ``dataloaders`` (a plain Module: ``loss_fn``, logged as ``test_loss``)."""
        return self._evaluate("test", model, dataloaders, ckpt_path, verbose, loss_fn)

    def predict(self, model: Any = None, dataloaders: Any = None, ckpt_path: Any = None) -> list[Any]:
        """``predict_step`` of every batch, in order, with gradients off and the model in eval mode."""
        import hubkit

        module = self._attach(model, purpose="predict") if model is not None else self._require_model("predict")
        loader = dataloaders if dataloaders is not None else self._hook_loader(module, "predict")
        if loader is None:
            raise TrainerError("predict needs data: pass dataloaders= or define predict_dataloader()")
        if ckpt_path is not None:
            module.load_state_dict(self._load_checkpoint(ckpt_path)["state_dict"])
        self.state = "predict"
        self._call("setup", "predict")
        outputs = []
        was_training = module.training
        module.eval()
        self._call("on_predict_start")
        self._call("on_predict_epoch_start")
        limit = _limit(self.limits["predict"], _len(loader), "limit_predict_batches")
        with hubkit.no_grad():
            for batch_idx, batch in enumerate(loader):
                if limit is not None and batch_idx >= limit:
                    break
                batch = _move(batch, self.device)
                self._call("on_predict_batch_start", batch, batch_idx)
                out = module.predict_step(batch, batch_idx)
                self._call("on_predict_batch_end", out, batch, batch_idx)
                outputs.append(out)
        self._call("on_predict_epoch_end")
        self._call("on_predict_end")
        module.train(was_training)
        self._call("teardown", "predict")
        self.state = "finished"
        return outputs

    def save_checkpoint(self, filepath: str | os.PathLike, weights_only: bool = False) -> None:
        """Write the checkpoint dict Lightning writes (with hubkit's extras for an exact resume)."""
        import hubkit

        module = self._require_model("save_checkpoint")
        checkpoint: dict[str, Any] = {
            "epoch": self.current_epoch,
            "global_step": self.global_step,
            "hubkit_version": hubkit.__version__,
            "state_dict": module.state_dict(),
            "loops": {"fit_loop": {"epoch": self.current_epoch, "batches_done": self._batch_in_epoch,
                                   "epoch_done": self._epoch_done, "batches_that_stepped": self._batches_that_stepped}},
            "hyper_parameters": dict(module.hparams),
        }
        if not weights_only:
            checkpoint["optimizer_states"] = [opt.state_dict() for opt in self.optimizers]
            checkpoint["lr_schedulers"] = [c.scheduler.state_dict() for c in self.lr_scheduler_configs]
            checkpoint["callbacks"] = {c.state_key: c.state_dict() for c in self.callbacks}
            checkpoint["rng_states"] = _rng_states()
            if hasattr(self._train_loader, "state_dict") and not self._epoch_done:
                checkpoint["train_dataloader"] = self._train_loader.state_dict()
        self._call("on_save_checkpoint", checkpoint)
        if self._ddp is not None and not self._ddp.is_global_zero:
            return
        path = Path(filepath)
        path.parent.mkdir(parents=True, exist_ok=True)
        hubkit.save(checkpoint, path)

    # ------------------------------------------------------------ setup
    @staticmethod
    def _pick_device(accelerator: str) -> Any:
        import hubkit

        if accelerator in ("cuda", "gpu"):
            if not hubkit.cuda.is_available():
                raise ArgumentError(f"Trainer(accelerator={accelerator!r}): no usable CUDA GPU here (cupy and a GPU "
                                    "are needed); use accelerator='cpu' or 'auto'")
            return hubkit.device("cuda")
        if accelerator == "auto":
            return hubkit.device("cuda" if hubkit.cuda.is_available() else "cpu")
        if accelerator == "cpu":
            return hubkit.device("cpu")
        raise ArgumentError(f"Trainer(accelerator={accelerator!r}): use 'auto', 'cpu' or 'cuda'")

    def _attach(self, model: Any, loss_fn: Any = None, optimizer: Any = None, lr_scheduler: Any = None,
                purpose: str = "fit") -> TrainModule:
        from hubkit.nn.module import Module

        if not isinstance(model, Module):
            raise TrainerError(f"the Trainer needs an nn.Module (a TrainModule, or a Module with loss_fn=), "
                               f"got {type(model).__name__}")
        if isinstance(model, TrainModule):
            if loss_fn is not None or optimizer is not None:
                raise TrainerError("loss_fn= and optimizer= are for plain Modules; a TrainModule defines "
                                   "training_step and configure_optimizers instead")
            module = model
        else:
            needed = {"fit": (("loss_fn=", loss_fn), ("optimizer=", optimizer)),
                      "evaluate": (("loss_fn=", loss_fn),), "predict": ()}[purpose]
            missing = " and ".join(n for n, v in needed if v is None)
            if missing:
                raise TrainerError(f"{type(model).__name__} has no training_step: pass {missing} (for "
                                   "example loss_fn=nn.CrossEntropyLoss(), optimizer=optim.SGD(model.parameters(), "
                                   "lr=0.1)), or subclass hubkit.train.TrainModule")
            module = _LossModule(model, loss_fn, optimizer, lr_scheduler)
        module.to(self.device)
        module.trainer = self
        self.model = module
        self._progress = ProgressBar(self._bars_enabled())
        return module

    def _require_model(self, what: str) -> TrainModule:
        if self.model is None:
            raise TrainerError(f"Trainer.{what} needs a model: pass it, or call fit first")
        return self.model

    def _bars_enabled(self) -> bool:
        from hubkit.hub.transport._progress import progress_enabled

        return progress_enabled(None if self.enable_progress_bar else False)

    def _seed(self) -> None:
        if self.seed is None:
            return
        import hubkit

        hubkit.manual_seed(self.seed)
        np.random.seed(self.seed % 2**32)
        random.seed(self.seed)

    def _hook_loader(self, module: Any, stage: str) -> Any:
        hook = getattr(module, f"{stage}_dataloader", None)
        if not callable(hook):
            return None
        if self._ddp is None:
            return hook()
        with self._ddp.rank_zero_first():  # a dataset downloads once, on rank 0
            return hook()

    def _hparams(self, module: TrainModule) -> dict[str, Any]:
        config = {k: v for k, v in vars(self).items() if not k.startswith("_") and k not in
                  ("model", "optimizers", "lr_scheduler_configs", "callbacks", "logger", "device")}
        config["device"] = str(self.device)
        config["callbacks"] = [type(c).__name__ for c in self.callbacks]
        return {"trainer": config, "seed": self.seed, "model": type(module).__name__,
                "hyper_parameters": dict(module.hparams), "environment": environment()}

    def _configure_optimizers(self, module: TrainModule) -> None:
        spec = module.configure_optimizers()
        optimizers, schedulers = _parse_optimizers(spec)
        if not optimizers:
            raise TrainerError("configure_optimizers returned no optimizer; return e.g. "
                               "hubkit.optim.SGD(self.parameters(), lr=0.1)")
        if len(optimizers) > 1:
            raise TrainerError(f"configure_optimizers returned {len(optimizers)} optimizers; hubkit's Trainer steps "
                               "one optimizer per batch (combine the parameter groups into one optimizer)")
        self.optimizers = optimizers
        self.lr_scheduler_configs = schedulers

    # ------------------------------------------------------------ hooks
    def _call(self, hook: str, *args: Any) -> Any:
        module = self.model
        previous, self._results.hook = self._results.hook, hook
        try:
            for callback in self.callbacks:
                getattr(callback, hook)(self, module, *args)
            fn = getattr(module, hook, None)
            if callable(fn):
                return fn(*args)
        finally:
            self._results.hook = previous
        return None

    def _step_fn(self, name: str, *args: Any) -> Any:
        previous, self._results.hook = self._results.hook, name
        try:
            return getattr(self.model, name)(*args)
        finally:
            self._results.hook = previous

    # ------------------------------------------------------------ fit
    def _sanity_check(self, val_loader: Any) -> None:
        self.sanity_checking = True
        self._call("on_sanity_check_start")
        limit = None if self.num_sanity_val_steps < 0 else self.num_sanity_val_steps
        self._evaluation_epoch("validate", val_loader, limit)
        self._call("on_sanity_check_end")
        self.sanity_checking = False
        self._results.callback_metrics.clear()
        self._results.progress_bar_metrics.clear()

    def _fit_loop(self, train_loader: Any, val_loader: Any) -> None:
        while not self._done():
            self._train_epoch(train_loader, val_loader)
            if self._ddp is not None:
                self.should_stop = self._ddp.any_rank(self.should_stop)
            if self.should_stop:
                break

    def _done(self) -> bool:
        return (self.max_epochs is not None and self.current_epoch >= self.max_epochs) or (
            self.max_steps is not None and self.max_steps >= 0 and self.global_step >= self.max_steps)

    def _val_every(self, n_batches: int | None) -> int | None:
        """Batches between validations within an epoch (None: only at its end)."""
        interval = self.val_check_interval
        if isinstance(interval, float):
            if interval >= 1.0 or n_batches is None:
                return None
            return max(1, int(n_batches * interval))
        return int(interval)

    def _train_epoch(self, loader: Any, val_loader: Any) -> None:
        module = self.model
        module.train()
        resume, self._resume = self._resume, None
        start = resume["batches_done"] if resume else 0
        self._epoch_done = False
        self._results.stage = "train"
        self._results.reset_stage("train")
        self._call("on_train_epoch_start")
        n_batches = _limit(self.limits["train"], _len(loader), "limit_train_batches")
        validate_now = self._has_validation and (self.check_val_every_n_epoch is None or (
            (self.current_epoch + 1) % self.check_val_every_n_epoch == 0))
        val_every = self._val_every(n_batches)
        if self._ddp is not None:
            self._ddp.set_epoch(loader, self.current_epoch)
        iterator = iter(loader)
        if resume is not None:
            _set_rng_states(resume["rng_states"])  # after iter(), which rewinds the generator to the epoch start
        self._progress.start(f"Epoch {self.current_epoch}", n_batches)
        seen = start
        for batch_idx, batch in enumerate(iterator, start=start):
            if n_batches is not None and batch_idx >= n_batches:
                break
            seen = batch_idx + 1
            if self._train_batch(batch, batch_idx, n_batches) == -1:
                break
            self._batch_in_epoch = batch_idx + 1
            if validate_now and val_every and (batch_idx + 1) % val_every == 0 and (
                    n_batches is None or batch_idx + 1 < n_batches):
                self._run_validation(val_loader)
            if self._ddp is not None:
                self.should_stop = self._ddp.any_rank(self.should_stop)
            if self.should_stop or (self.max_steps is not None and 0 <= self.max_steps <= self.global_step):
                break
        if seen == 0:
            raise TrainerError("the training DataLoader produced no batches: check that the dataset is not empty, "
                               "that batch_size <= its length with drop_last=True, and limit_train_batches")
        self._progress.close()
        if validate_now and not self.should_stop:
            self._run_validation(val_loader)
        self._step_schedulers("epoch")
        self._epoch_done = True
        self._batch_in_epoch = 0
        logged = self._results.end_epoch("train")
        self._call("on_train_epoch_end")
        self._log_to_logger(logged)
        if self.logger is not None:
            self.logger.save()
        self.current_epoch += 1

    def _train_batch(self, batch: Any, batch_idx: int, n_batches: int | None) -> int | None:
        import hubkit

        optimizer = self.optimizers[0]
        batch = _move(batch, self.device)
        self._results.batch_size = batch_size_of(batch)
        if self._call("on_train_batch_start", batch, batch_idx) == -1:
            return -1
        k = self.accumulate_grad_batches
        if batch_idx % k == 0:
            self._call("on_before_zero_grad", optimizer)
            optimizer.zero_grad()
        last = n_batches is not None and batch_idx + 1 >= n_batches
        if self._ddp is not None:  # gradients are averaged over the ranks only on the batches that step
            out = self._ddp.training_step(self, batch, batch_idx, sync=(batch_idx + 1) % k == 0 or last)
        else:
            out = self._step_fn("training_step", batch, batch_idx)
        loss = out.get("loss") if isinstance(out, dict) else out
        self._stepped_this_batch = False
        if loss is not None:
            if not isinstance(loss, hubkit.Tensor):
                raise TrainerError(f"training_step returned a {type(loss).__name__}; return the loss Tensor, a dict "
                                   "with a 'loss' Tensor, or None to skip the batch")
            value = to_float(loss, "loss")
            if not math.isfinite(value):
                if self.on_nan_loss == "raise":
                    raise TrainerError(f"the loss is {value} at epoch {self.current_epoch}, batch {batch_idx} (global "
                                       f"step {self.global_step}): lower the learning rate, clip gradients "
                                       "(gradient_clip_val=), check the inputs for nan/inf, or pass "
                                       "on_nan_loss='skip' to skip such batches")
                self._skipped_nan += 1
                loss = None
            else:
                self._progress_metrics = {"loss": value}
        if loss is not None:
            scaled = loss / k if k > 1 else loss
            self._call("on_before_backward", scaled)
            scaled.backward()
            self._call("on_after_backward")
        if (batch_idx + 1) % k == 0 or last:
            self._call("on_before_optimizer_step", optimizer)
            self._clip(optimizer)
            optimizer.step()
            self.global_step += 1
            self._batches_that_stepped += 1
            self._stepped_this_batch = True
            self._step_schedulers("step")
        self._progress.update(self._results.batch_size, {**self._progress_metrics,
                                                         **self._results.progress_bar_metrics})
        if self._stepped_this_batch and self._batches_that_stepped % self.log_every_n_steps == 0:
            self._log_to_logger(self._results.pending_step)
        self._results.pending_step = {}
        self._call("on_train_batch_end", out, batch, batch_idx)
        return None

    def _clip(self, optimizer: Any) -> None:
        if self.gradient_clip_val is None:
            return
        from hubkit.nn.utils import clip_grad_norm_, clip_grad_value_

        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if self.gradient_clip_algorithm == "norm":
            clip_grad_norm_(params, self.gradient_clip_val)
        else:
            clip_grad_value_(params, self.gradient_clip_val)

    def _step_schedulers(self, interval: str) -> None:
        counter = self.global_step if interval == "step" else self.current_epoch + 1
        for config in self.lr_scheduler_configs:
            if config.interval != interval or counter % config.frequency:
                continue
            if config.monitor is not None:
                value = self.callback_metrics.get(config.monitor)
                if value is None:
                    if config.strict:
                        raise TrainerError(f"the scheduler monitors {config.monitor!r}, which was never logged; "
                                           f"logged metrics are {sorted(self.callback_metrics)}")
                    continue
                config.scheduler.step(value)
            else:
                config.scheduler.step()

    def _run_validation(self, val_loader: Any) -> None:
        import hubkit

        module = self.model
        module.eval()
        with hubkit.no_grad():
            self._evaluation_epoch("validate", val_loader, _limit(self.limits["validate"], _len(val_loader),
                                                                  "limit_val_batches"))
        module.train()

    # ------------------------------------------------------------ validate / test
    def _evaluation_epoch(self, stage: str, loader: Any, limit: int | None) -> dict[str, float]:
        prefix = "validation" if stage == "validate" else stage
        previous_stage = self._results.stage
        self._results.stage = stage
        self._results.reset_stage(stage)
        self._call(f"on_{prefix}_start")
        self._call(f"on_{prefix}_epoch_start")
        step = "validation_step" if stage == "validate" else "test_step"
        for batch_idx, batch in enumerate(loader):
            if limit is not None and batch_idx >= limit:
                break
            batch = _move(batch, self.device)
            self._results.batch_size = batch_size_of(batch)
            self._call(f"on_{prefix}_batch_start", batch, batch_idx)
            out = self._step_fn(step, batch, batch_idx)
            self._call(f"on_{prefix}_batch_end", out, batch, batch_idx)
        self._call(f"on_{prefix}_epoch_end")
        logged = self._results.end_epoch(stage)
        if not self.sanity_checking:
            self._log_to_logger(logged)
        self._call(f"on_{prefix}_end")
        self._results.stage = previous_stage
        return logged

    def _evaluate(self, stage: str, model: Any, loader: Any, ckpt_path: Any, verbose: bool, loss_fn: Any) -> list[dict]:
        import hubkit

        module = self._attach(model, loss_fn, purpose="evaluate") if model is not None else self._require_model(stage)
        loader = loader if loader is not None else self._hook_loader(module, "val" if stage == "validate" else stage)
        if loader is None:
            raise TrainerError(f"{stage} needs data: pass dataloaders= (a DataLoader)")
        if ckpt_path is not None:
            path = self._best_path() if ckpt_path == "best" else ckpt_path
            module.load_state_dict(self._load_checkpoint(path)["state_dict"])
        self.state = stage
        self._call("setup", stage)
        was_training = module.training
        module.eval()
        limit_name = "limit_val_batches" if stage == "validate" else "limit_test_batches"
        with hubkit.no_grad():
            logged = self._evaluation_epoch(stage, loader, _limit(self.limits[stage], _len(loader), limit_name))
        module.train(was_training)
        self._finish_logs()
        self._call("teardown", stage)
        self.state = "finished"
        if verbose and logged:
            width = max(len(k) for k in logged)
            log.info("\n".join([f"{stage} metric".ljust(width) + "  value"] +
                               [f"{k.ljust(width)}  {v:.6g}" for k, v in logged.items()]))
        return [logged]

    def _best_path(self) -> str:
        callback = self.checkpoint_callback
        if callback is None or not callback.best_model_path:
            raise TrainerError("ckpt_path='best' needs a ModelCheckpoint that saved a checkpoint during fit")
        return callback.best_model_path

    # ------------------------------------------------------------ logging
    def _log_to_logger(self, metrics: dict[str, float]) -> None:
        if self.logger is not None and metrics and not self.sanity_checking:
            self.logger.log_metrics(dict(metrics), step=self.global_step, epoch=self.current_epoch)

    def _finish_logs(self) -> None:
        if self.logger is None:
            return
        self.logger.save()
        if self.logger.rows:
            self.logger.plot()

    # ------------------------------------------------------------ checkpoints
    def _load_checkpoint(self, path: Any) -> dict[str, Any]:
        import hubkit

        if not Path(path).is_file():
            raise TrainerError(f"checkpoint {path} does not exist; pass the path of a .ckpt file that "
                               "ModelCheckpoint or Trainer.save_checkpoint wrote")
        checkpoint = hubkit.load(Path(path))
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            raise TrainerError(f"{path} is not a Trainer checkpoint (no 'state_dict' entry); to load bare weights "
                               "use model.load_state_dict(hubkit.load(path))")
        return checkpoint

    def _restore(self, module: TrainModule, checkpoint: dict[str, Any]) -> None:
        module.load_state_dict(checkpoint["state_dict"])
        for opt, state in zip(self.optimizers, checkpoint.get("optimizer_states", [])):
            opt.load_state_dict(state)
        for config, state in zip(self.lr_scheduler_configs, checkpoint.get("lr_schedulers", [])):
            config.scheduler.load_state_dict(state)
        states = checkpoint.get("callbacks", {})
        for callback in self.callbacks:
            if callback.state_key in states:
                callback.load_state_dict(states[callback.state_key])
        loop = checkpoint["loops"]["fit_loop"]
        self.global_step = int(checkpoint["global_step"])
        self._batches_that_stepped = int(loop["batches_that_stepped"])
        self.current_epoch = int(loop["epoch"]) + (1 if loop["epoch_done"] else 0)
        if not loop["epoch_done"] and loop["batches_done"]:
            if hasattr(self._train_loader, "load_state_dict") and "train_dataloader" in checkpoint:
                self._train_loader.load_state_dict(checkpoint["train_dataloader"])
                self._resume = {"batches_done": int(loop["batches_done"]), "rng_states": checkpoint["rng_states"]}
            else:
                log.warning("resuming from a checkpoint taken mid-epoch, but the training loader cannot restore its "
                            "position (it has no load_state_dict): the epoch restarts from its first batch")
        if "rng_states" in checkpoint and self._resume is None:
            _set_rng_states(checkpoint["rng_states"])
        self._call("on_load_checkpoint", checkpoint)


def _rng_states() -> dict[str, Any]:
    import hubkit

    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {"hubkit": hubkit.get_rng_state(), "numpy": [name, keys.astype(np.int64), int(pos), int(has_gauss),
                                                        float(cached)],
            "python": [version, list(internal), gauss]}


def _set_rng_states(states: dict[str, Any]) -> None:
    import hubkit

    hubkit.set_rng_state(states["hubkit"])
    name, keys, pos, has_gauss, cached = states["numpy"]
    keys = np.asarray(getattr(keys, "array", keys)).astype(np.uint32)
    np.random.set_state((name, keys, int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = states["python"]
    random.setstate((int(version), tuple(int(v) for v in internal), gauss))


def _scheduler_config(item: Any) -> LRSchedulerConfig:
    if isinstance(item, dict):
        if "scheduler" not in item:
            raise TrainerError(f"a scheduler config dict needs a 'scheduler' key, got keys {sorted(item)}")
        unknown = set(item) - {"scheduler", "interval", "frequency", "monitor", "strict", "name"}
        if unknown:
            raise TrainerError(f"unknown scheduler config keys {sorted(unknown)}; use interval, frequency, monitor, "
                               "strict, name")
        config = LRSchedulerConfig(**item)
    else:
        config = LRSchedulerConfig(item)
    if config.interval not in ("epoch", "step"):
        raise TrainerError(f"scheduler interval {config.interval!r}: use 'epoch' or 'step'")
    if type(config.scheduler).__name__ == "ReduceLROnPlateau" and config.monitor is None:
        raise TrainerError("ReduceLROnPlateau needs a metric: return {'optimizer': opt, 'lr_scheduler': "
                           "{'scheduler': sched, 'monitor': 'val_loss'}} from configure_optimizers")
    return config


def _parse_optimizers(spec: Any) -> tuple[list[Any], list[LRSchedulerConfig]]:
    """Lightning's accepted return shapes of ``configure_optimizers``."""
    if spec is None:
        return [], []
    if isinstance(spec, dict):
        if "optimizer" not in spec:
            raise TrainerError(f"configure_optimizers returned a dict without 'optimizer' (keys {sorted(spec)})")
        schedulers = [_scheduler_config(spec["lr_scheduler"])] if spec.get("lr_scheduler") is not None else []
        return [spec["optimizer"]], schedulers
    if isinstance(spec, (list, tuple)):
        if len(spec) == 2 and isinstance(spec[0], (list, tuple)) and isinstance(spec[1], (list, tuple)):
            return list(spec[0]), [_scheduler_config(s) for s in spec[1]]
        optimizers, schedulers = [], []
        for item in spec:
            opts, scheds = _parse_optimizers(item)
            optimizers += opts
            schedulers += scheds
        return optimizers, schedulers
    if hasattr(spec, "step") and hasattr(spec, "param_groups"):
        return [spec], []
    raise TrainerError(f"configure_optimizers returned a {type(spec).__name__}; return an optimizer, a list of "
                       "them, ([optimizers], [schedulers]) or {'optimizer': ..., 'lr_scheduler': ...}")
