"""Stochastic weight averaging and EMA (torch.optim.swa_utils): ``AveragedModel``, ``SWALR``, ``update_bn``.

Typical use: train as usual, and from some epoch on call ``swa_model.update_parameters(model)`` after each
epoch with ``SWALR`` as the scheduler; at the end ``update_bn(loader, swa_model)`` recomputes the
BatchNorm statistics for the averaged weights.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from hubkit._backend import to_device
from hubkit.autograd import no_grad
from hubkit.errors import ArgumentError
from hubkit.nn.module import Module
from hubkit.nn.modules.normalization import _BatchNorm
from hubkit.optim._lr_base import LRScheduler, _format_param
from hubkit.optim.optimizer import Optimizer
from hubkit.tensor import Tensor

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn", "get_ema_avg_fn",
           "get_swa_avg_fn"]


def _check_decay(decay: float) -> None:
    if not 0.0 <= decay <= 1.0:
        raise ArgumentError(f"invalid decay value {decay}: provide a value in the [0, 1] range")


def _assign(target: Tensor, value: Any) -> None:
    """Write ``value`` into ``target``'s array in place (float to int truncates toward zero, like torch's copy_)."""
    target.array[...] = value.astype(target.array.dtype, copy=False)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """An in-place exponential moving average over lists: ``ema = decay * ema + (1 - decay) * current``."""
    _check_decay(decay)

    def ema_update(ema_params: list[Tensor], current_params: list[Tensor], _: Any) -> None:
        for ema, current in zip(ema_params, current_params):
            if ema.array.dtype.kind in "fc":
                ema.array += (1 - decay) * (current.array - ema.array)
            else:
                _assign(ema, ema.array * decay + current.array * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[list[Tensor], list[Tensor], Any], None]:
    """An in-place running mean over lists: ``avg += (current - avg) / (num_averaged + 1)``."""

    def swa_update(averaged_params: list[Tensor], current_params: list[Tensor], num_averaged: Any) -> None:
        n = float(num_averaged)
        for avg, current in zip(averaged_params, current_params):
            if avg.array.dtype.kind in "fc":
                avg.array += (current.array - avg.array) / (n + 1)
            else:
                _assign(avg, avg.array + (current.array - avg.array) / (n + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """``(ema, current, num_averaged) -> decay * ema + (1 - decay) * current``, one tensor at a time."""
    _check_decay(decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Any], Tensor]:
    """``(avg, current, num_averaged) -> avg + (current - avg) / (num_averaged + 1)``, one tensor at a time."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (float(num_averaged) + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of ``model`` whose parameters hold an average of ``model``'s over ``update_parameters`` calls.

    The default average is the equal-weight running mean (SWA); ``avg_fn(avg, current, n) -> Tensor`` (one
    tensor at a time) or ``multi_avg_fn(avg_list, current_list, n)`` (in place, on lists) replace it, e.g.
    ``multi_avg_fn=get_ema_multi_avg_fn(0.999)`` for an EMA. With ``use_buffers`` the buffers are averaged
    too; otherwise they are copied from ``model`` at each update. ``n_averaged`` is an int64 buffer, so
    ``state_dict()`` has torch's keys (``n_averaged``, ``module.<name>``).
    """

    def __init__(self, model: Module, device: Any = None, avg_fn: Callable | None = None,
                 multi_avg_fn: Callable | None = None, use_buffers: bool = False) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise ArgumentError("AveragedModel: give only one of avg_fn and multi_avg_fn")
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        n_averaged = Tensor._make(np.zeros((), dtype=np.int64))
        self.register_buffer("n_averaged", n_averaged if device is None else n_averaged.to(device))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Fold ``model``'s current parameters (and buffers with ``use_buffers``) into the average."""
        if self.use_buffers:
            own = list(chain(self.module.parameters(), self.module.buffers()))
            theirs = list(chain(model.parameters(), model.buffers()))
        else:
            own, theirs = list(self.parameters()), list(model.parameters())
        own = [p.detach() for p in own]
        theirs = [Tensor._make(to_device(p.array, p_avg.device)) for p, p_avg in zip(theirs, own)]
        n = int(self.n_averaged.array)
        with no_grad():
            if n == 0:
                for p_avg, p_model in zip(own, theirs):
                    p_avg.array[...] = p_model.array
            elif self.avg_fn is not None:
                for p_avg, p_model in zip(own, theirs):
                    _assign(p_avg, self.avg_fn(p_avg, p_model, self.n_averaged).array)
            else:
                (self.multi_avg_fn or get_swa_multi_avg_fn())(own, theirs, self.n_averaged)
            if not self.use_buffers:
                own_buffers, model_buffers = list(self.module.buffers()), list(model.buffers())
                if len(own_buffers) != len(model_buffers):
                    raise ArgumentError(f"AveragedModel.update_parameters: the model has {len(model_buffers)} "
                                        f"buffers but the averaged copy has {len(own_buffers)}; pass the model the "
                                        "AveragedModel was made from")
                for b_avg, b_model in zip(own_buffers, model_buffers):
                    b_avg.array[...] = to_device(b_model.array, b_avg.device)
        self.n_averaged.array += 1


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recompute every BatchNorm's running statistics with one pass over ``loader``.

    The statistics are reset and then accumulated as a cumulative average (``momentum=None``) in train mode;
    each batch is the loader's item, or its first element when that is a list or tuple (``(input, target)``).
    Momenta and the train/eval mode are restored afterwards.
    """
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    with no_grad():
        for batch in loader:
            if isinstance(batch, (list, tuple)):
                batch = batch[0]
            if device is not None:
                batch = batch.to(device)
            model(batch)
    for module, momentum in momenta.items():
        module.momentum = momentum
    model.train(was_training)


class SWALR(LRScheduler):
    """Anneal each group's lr to ``swa_lr`` over ``anneal_epochs`` epochs, then hold it (the SWA phase).

    ``anneal_strategy`` is ``"cos"`` or ``"linear"``. Step it once per epoch, like the other schedulers.
    """

    def __init__(self, optimizer: Optimizer, swa_lr: float | list[float], anneal_epochs: int = 10,
                 anneal_strategy: str = "cos", last_epoch: int = -1) -> None:
        for lr, group in zip(_format_param("swa_lr", optimizer, swa_lr), optimizer.param_groups):
            group["swa_lr"] = lr
        if anneal_strategy not in ("cos", "linear"):
            raise ArgumentError(f"SWALR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ArgumentError(f"SWALR: anneal_epochs must be an int >= 0, got {anneal_epochs}")
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        """The lr the annealing started from, recovered from the current one (so SWALR chains like torch's)."""
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def get_lr(self) -> list[float]:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, please use `get_last_lr()`.",
                          UserWarning, stacklevel=2)
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        prev_lrs = [self._get_initial_lr(g["lr"], g["swa_lr"], prev_alpha) for g in self.optimizer.param_groups]
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [g["swa_lr"] * alpha + lr * (1 - alpha) for g, lr in zip(self.optimizer.param_groups, prev_lrs)]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "anneal_func")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)
