"""``TrainModule``: an ``nn.Module`` that knows how to train itself (Lightning's ``LightningModule``).

    class Classifier(TrainModule):
        def __init__(self, lr=0.1):
            super().__init__()
            self.save_hyperparameters()
            self.net = nn.Linear(784, 10)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = F.cross_entropy(self.net(x), y)
            self.log("train_loss", loss, prog_bar=True)
            return loss

        def configure_optimizers(self):
            return optim.SGD(self.parameters(), lr=self.hparams.lr)

Hook names and meanings are Lightning's; a Lightning user reads a TrainModule without a manual.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from hubkit.errors import TrainerError
from hubkit.nn.module import Module


class AttributeDict(dict):
    """A dict whose keys are also attributes: ``hparams.lr`` and ``hparams["lr"]``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"no hyper-parameter {name!r}; saved: {sorted(self)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value


class TrainModule(Module):
    """A Module with the training recipe attached: steps, optimizers and the hooks the Trainer calls.

    Override ``training_step`` (required), ``configure_optimizers`` (required unless the Trainer is
    given ``optimizer=``), and as needed ``validation_step``, ``test_step``, ``predict_step`` and
    any hook of :class:`hubkit.train.Callback` (``on_train_epoch_end``, ...), which the Trainer
    calls on the module right after the callbacks. ``self.log`` records metrics.
    """

    def __init__(self) -> None:
        super().__init__()
        d = self.__dict__
        d["trainer"] = None
        d["hparams"] = AttributeDict()

    # ------------------------------------------------------------ steps (override)
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        """Return the loss (a scalar Tensor), a dict with a ``"loss"`` key, or None to skip the batch."""
        raise TrainerError(f"{type(self).__name__} has no training_step: define training_step(self, batch, "
                           "batch_idx) returning the loss")

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        return None

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        raise TrainerError(f"{type(self).__name__} has no test_step: define test_step(self, batch, batch_idx) "
                           "to use Trainer.test")

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        """By default the model's output for the batch (its first element when the batch is a pair)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x)

    def configure_optimizers(self) -> Any:
        """An optimizer; a list of them; ``([optimizers], [schedulers])``; ``{"optimizer": ..., "lr_scheduler":
        ...}``; or a list of such dicts (Lightning's accepted shapes)."""
        raise TrainerError(f"{type(self).__name__} has no configure_optimizers: define it to return an optimizer "
                           "(e.g. hubkit.optim.SGD(self.parameters(), lr=0.1)), or pass optimizer= to Trainer.fit")

    # ------------------------------------------------------------ logging
    def log(self, name: str, value: Any, prog_bar: bool = False, logger: bool = True, on_step: bool | None = None,
            on_epoch: bool | None = None, reduce_fx: str = "mean", batch_size: int | None = None,
            sync_dist: bool = False) -> None:
        """Record a metric. Defaults follow Lightning: in ``training_step`` per step only, in
        ``validation_step``/``test_step`` per epoch only (the batch-size-weighted mean); with both, the
        logger gets ``name_step`` and ``name_epoch``. ``prog_bar`` shows it on the progress bar."""
        if self.trainer is None:
            raise TrainerError(f"self.log({name!r}) was called outside a Trainer run: log from training_step, "
                               "validation_step or a hook while Trainer.fit/validate/test runs")
        self.trainer._results.log(name, value, prog_bar=prog_bar, logger=logger, on_step=on_step,
                                  on_epoch=on_epoch, reduce_fx=reduce_fx, batch_size=batch_size)

    def log_dict(self, dictionary: Mapping[str, Any], **kwargs: Any) -> None:
        for name, value in dictionary.items():
            self.log(name, value, **kwargs)

    # ------------------------------------------------------------ hyper-parameters
    def save_hyperparameters(self, *names: str, ignore: str | list[str] | None = None) -> None:
        """Store the arguments of the subclass's ``__init__`` in ``self.hparams`` (and in checkpoints
        and ``hparams.json``); pass names to keep only those, ``ignore`` to leave some out."""
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        if caller is None:
            return
        info = inspect.getargvalues(caller)
        values = {k: info.locals[k] for k in info.args[1:] if k in info.locals}
        if info.varargs:
            values[info.varargs] = info.locals[info.varargs]
        if info.keywords:
            values.update(info.locals[info.keywords])
        skip = {ignore} if isinstance(ignore, str) else set(ignore or ())
        for key, value in values.items():
            if (not names or key in names) and key not in skip and not isinstance(value, Module):
                self.hparams[key] = value

    # ------------------------------------------------------------ conveniences Lightning users expect
    @property
    def current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    @property
    def global_step(self) -> int:
        return self.trainer.global_step if self.trainer is not None else 0

    @property
    def device(self) -> Any:
        for p in self.parameters():
            return p.device
        from hubkit._backend import CPU

        return CPU

    def optimizers(self) -> Any:
        opts = self.trainer.optimizers if self.trainer is not None else []
        return opts[0] if len(opts) == 1 else opts

    def lr_schedulers(self) -> Any:
        configs = self.trainer.lr_scheduler_configs if self.trainer is not None else []
        schedulers = [c.scheduler for c in configs]
        return schedulers[0] if len(schedulers) == 1 else (schedulers or None)


class _LossModule(TrainModule):
    """A plain ``nn.Module`` trained as ``loss_fn(model(x), y)`` with a given optimizer (``Trainer.fit(model,
    loader, loss_fn=..., optimizer=...)``). Batches are ``(x, y)``; validation logs ``val_loss``."""

    def __init__(self, model: Module, loss_fn: Any, optimizer: Any, scheduler: Any = None) -> None:
        super().__init__()
        self.model = model
        self.__dict__["loss_fn"] = loss_fn
        self.__dict__["_optimizer"] = optimizer
        self.__dict__["_scheduler"] = scheduler

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def _loss(self, batch: Any) -> Any:
        if not isinstance(batch, (tuple, list)) or len(batch) != 2:
            raise TrainerError("with loss_fn=, each batch must be a pair (inputs, targets); write a TrainModule "
                               f"with training_step for other batches (got {type(batch).__name__})")
        x, y = batch
        return self.loss_fn(self.model(x), y)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._loss(batch)
        self.log("val_loss", loss, prog_bar=True)
        return loss

    def test_step(self, batch: Any, batch_idx: int) -> Any:
        loss = self._loss(batch)
        self.log("test_loss", loss)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = self._optimizer
        if callable(optimizer) and not hasattr(optimizer, "step"):  # a factory: lambda params: SGD(params, ...)
            optimizer = optimizer(self.model.parameters())
        if self._scheduler is None:
            return optimizer
        scheduler = self._scheduler(optimizer) if callable(self._scheduler) and not hasattr(
            self._scheduler, "step") else self._scheduler
        return {"optimizer": optimizer, "lr_scheduler": scheduler}

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:
        return self.model.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.model.load_state_dict(state_dict, strict=strict)
