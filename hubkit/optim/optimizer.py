"""``Optimizer``: parameter groups, per-parameter state, step hooks and torch-shaped ``state_dict``.

Subclasses implement ``_update_group(group)``, which updates every parameter of the group that has a
gradient, in place on ``param.array`` with raw array operations: no autograd graph is built. Optimizers
whose step is not a per-group loop (LBFGS) override ``step`` instead.

State lives in ``self.state[param]`` as torch keeps it: array state as Tensors (``exp_avg``,
``momentum_buffer``, ...), ``step`` as a 0-d float32 Tensor (float64 when the default dtype is float64).
``foreach`` and ``fused`` pick one of torch's implementations of the same update; hubkit has mostly one (a
loop over the parameters on raw arrays, with a single fused cupy kernel per parameter on the GPU for SGD and
Adam), so those flags are accepted and recorded in the group; the exception is SGD on the GPU, whose whole
group is one launch unless ``foreach=False``. ``capturable`` (CUDA graph
capture) and ``differentiable`` (autograd through the step) have no hubkit counterpart: True is refused.
"""

from __future__ import annotations

import copy
import functools
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import Any

import numpy as np

from hubkit._backend import is_cupy_array, to_device
from hubkit.autograd import RemovableHandle, enable_grad, no_grad
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.tensor import Tensor, get_default_dtype


class _Required:
    """Marks a hyper-parameter that has no default and must be given (per group or to the constructor)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()

_global_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
_global_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Run ``hook(optimizer, args, kwargs)`` before every optimizer's ``step``; it may return new (args, kwargs)."""
    handle = RemovableHandle(_global_step_pre_hooks)
    _global_step_pre_hooks[handle.id] = hook
    return handle


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Run ``hook(optimizer, args, kwargs)`` after every optimizer's ``step``."""
    handle = RemovableHandle(_global_step_post_hooks)
    _global_step_post_hooks[handle.id] = hook
    return handle


def _hooked(step: Callable) -> Callable:
    """Wrap a class's ``step`` with the step hooks and the flag schedulers read (torch patches it the same way)."""

    @functools.wraps(step)
    def wrapper(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        for hook in chain(_global_step_pre_hooks.values(), self._optimizer_step_pre_hooks.values()):
            result = hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise ArgumentError(f"an optimizer step pre-hook must return None or a tuple (new_args, "
                                        f"new_kwargs), but {hook!r} returned {result!r}")
                args, kwargs = result
        out = step(self, *args, **kwargs)
        self._opt_called = True
        for hook in chain(self._optimizer_step_post_hooks.values(), _global_step_post_hooks.values()):
            hook(self, args, kwargs)
        return out

    wrapper._hubkit_hooked = True
    return wrapper


def to_scalar(value: Any) -> float:
    """A Python float from a float or a one-element Tensor (torch accepts Tensor learning rates)."""
    return float(value)


def _scalar_dtype() -> np.dtype:
    """The dtype of ``step`` and other scalar state: float32, or float64 when that is the default (as torch)."""
    return np.dtype(np.float64) if get_default_dtype() == np.float64 else np.dtype(np.float32)


def scalar_state(value: float) -> Tensor:
    """A 0-d Tensor holding scalar optimizer state (``step``, NAdam's ``mu_product``), on the host like torch's."""
    return Tensor._make(np.asarray(value, dtype=_scalar_dtype()))


def increment_step(state: dict[str, Any]) -> float:
    """Add one to ``state["step"]`` in place and return the new count as a float (torch's ``step_t += 1``)."""
    step = state["step"]
    if isinstance(step, Tensor):
        step.array += 1
        return float(step.array)
    state["step"] = scalar_state(float(step) + 1)
    return float(step) + 1


def check_flags(owner: str, *, capturable: bool = False, differentiable: bool = False, fused: bool | None = None,
                foreach: bool | None = None) -> None:
    """Refuse the torch options that change behaviour and hubkit cannot honour (see the module docstring)."""
    if capturable:
        raise ArgumentError(f"{owner}(capturable=True) is not supported: hubkit has no CUDA graph capture, so there "
                            "is nothing to capture; drop capturable=True (the update is the same)")
    if differentiable:
        raise ArgumentError(f"{owner}(differentiable=True) is not supported: hubkit's optimizer steps update raw "
                            "arrays outside autograd; drop differentiable=True")
    if fused and foreach:
        raise ArgumentError(f"{owner}: `fused` and `foreach` cannot be True together (as in torch); pick one")


def check_lr(owner: str, lr: Any) -> None:
    """``lr`` must be a number >= 0 or a one-element Tensor holding one."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ArgumentError(f"{owner}: a Tensor lr must have one element, got shape {tuple(lr.shape)}")
    if isinstance(lr, (str, bytes)) or not hasattr(lr, "__float__"):
        raise ArgumentTypeError(f"{owner}: lr must be a float or a one-element Tensor, got {type(lr).__name__}")
    if not to_scalar(lr) >= 0.0:
        raise ArgumentError(f"{owner}: invalid learning rate {lr}; expected lr >= 0")


def check_nonnegative(owner: str, **values: float) -> None:
    """Each named hyper-parameter must be >= 0 (NaN fails too)."""
    for name, value in values.items():
        if not value >= 0.0:
            raise ArgumentError(f"{owner}: invalid {name} value {value}; expected {name} >= 0")


def check_betas(owner: str, betas: Any) -> tuple[float, float]:
    """``betas`` must be a pair, each in [0, 1); returned as a tuple (a list given by the user is copied)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ArgumentError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= to_scalar(beta) < 1.0:
            raise ArgumentError(f"{owner}: invalid beta parameter at index {i}: {beta}; expected 0 <= beta < 1")
    return tuple(betas)


class Optimizer:
    """Base class of the optimizers.

    ``params`` is an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter groups)
    with a ``"params"`` entry and per-group hyper-parameters that override ``defaults``.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._init_hooks()
        self._patch_step_function()
        if isinstance(params, Tensor):
            raise ArgumentTypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got a "
                "Tensor; pass [tensor] or model.parameters()"
            )
        if isinstance(params, set):
            raise ArgumentTypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors in "
                "sets will change between runs; use a list instead"
            )
        try:
            groups = list(params)
        except TypeError:
            raise ArgumentTypeError(
                f"params argument given to the optimizer should be an iterable of Tensors or dicts, but got "
                f"{type(params).__name__}; pass model.parameters()"
            ) from None
        if not groups:
            raise ArgumentError("optimizer got an empty parameter list: pass model.parameters() of a model with "
                                "parameters")
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def _init_hooks(self) -> None:
        self._optimizer_step_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_step_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_pre_hooks: OrderedDict[int, Callable] = OrderedDict()
        self._optimizer_load_state_dict_post_hooks: OrderedDict[int, Callable] = OrderedDict()

    def _patch_step_function(self) -> None:
        cls = type(self)
        if not getattr(cls.step, "_hubkit_hooked", False):
            cls.step = _hooked(cls.step)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if "_optimizer_step_pre_hooks" not in self.__dict__:
            self._init_hooks()
        self._patch_step_function()

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key not in ("params", "param_names"):
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own hyper-parameters (missing ones come from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise ArgumentTypeError(f"param_group must be a dict, got {type(param_group).__name__}")
        group = dict(param_group)
        if "params" not in group:
            raise ArgumentError("a parameter group must have a 'params' entry (a list of Tensors)")
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise ArgumentTypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors in "
                "sets will change between runs; use a list instead"
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        if names:
            if len(names) != len(params):
                raise ArgumentError("all optimizer params should be with or without names; some names are missing")
            group["param_names"] = names
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise ArgumentTypeError(f"optimizer can only optimize Tensors, but one of the params is "
                                        f"{type(p).__name__}")
            if not p.is_leaf:
                raise ArgumentError("can't optimize a non-leaf Tensor: optimize the leaves it was computed from")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ArgumentError(f"parameter group didn't specify a value of required optimization parameter "
                                    f"{name}")
            group.setdefault(name, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn("optimizer contains a parameter group with duplicate parameters; in future, this will "
                          "cause an error", UserWarning, stacklevel=3)
        for other in self.param_groups:
            if ("param_names" in other) != ("param_names" in group):
                raise ArgumentError("all optimizer param groups should be with or without names; cannot add a group "
                                    + ("with names" if "param_names" in group else "without names"))
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params):
            raise ArgumentError("some parameters appear in more than one parameter group")
        self.param_groups.append(group)
        self._init_group_state(group)

    def _init_group_state(self, group: dict[str, Any]) -> None:
        """Hook for optimizers whose state exists before the first step (Adagrad)."""

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (``set_to_none=True``) or zero the gradients of every optimized parameter."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.array[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; ``closure`` re-evaluates the loss first."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
                self._mark_updated(group)
        return loss

    @staticmethod
    def _mark_updated(group: dict[str, Any]) -> None:
        # the raw-array update bypasses Tensor's in-place ops, so bump the version here: a graph that saved a
        # parameter before the step then refuses to backward through the stale value, as torch does
        for p in group["params"]:
            if p.grad is not None:
                p._version += 1

    def _update_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _update_group")

    @staticmethod
    def _grad(p: Tensor, maximize: bool) -> Any:
        g = p.grad.array
        return -g if maximize else g

    # ------------------------------------------------------------ hooks
    @staticmethod
    def _register(hooks: OrderedDict[int, Callable], hook: Callable, prepend: bool = False) -> RemovableHandle:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None or (new_args, new_kwargs)`` runs before each ``step``."""
        return self._register(self._optimizer_step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """``hook(optimizer, args, kwargs) -> None`` runs after each ``step``."""
        return self._register(self._optimizer_step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None`` runs before ``state_dict()`` builds its result."""
        return self._register(self._optimizer_state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None`` runs on ``state_dict()``'s result."""
        return self._register(self._optimizer_state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer, state_dict) -> state_dict or None`` runs on a shallow copy before loading."""
        return self._register(self._optimizer_load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """``hook(optimizer) -> None`` runs after ``load_state_dict``."""
        return self._register(self._optimizer_load_state_dict_post_hooks, hook, prepend)

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, as torch writes it.

        Parameters are numbered in group order; the state values are the optimizer's own Tensors (not
        copies), ``step`` a 0-d float32 Tensor, exactly as torch returns them.
        """
        for hook in self._optimizer_state_dict_pre_hooks.values():
            hook(self)
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            start = len(index)
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        result = {"state": state, "param_groups": groups}
        for hook in self._optimizer_state_dict_post_hooks.values():
            out = hook(self, result)
            if out is not None:
                result = out
        return result

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state saved by ``state_dict()``: hubkit's, or torch's with torch Tensors or numpy arrays.

        Array state is copied onto each parameter's device, in the parameter's dtype (``step`` keeps its own).
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ArgumentError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries")
        state_dict = dict(state_dict)
        for hook in self._optimizer_load_state_dict_pre_hooks.values():
            out = hook(self, state_dict)
            if out is not None:
                state_dict = out
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ArgumentError(
                f"loaded state dict has {len(saved_groups)} parameter groups but the optimizer has "
                f"{len(self.param_groups)}; build the optimizer with the same groups before loading"
            )
        for i, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ArgumentError(
                    f"loaded state dict's group {i} has {len(s['params'])} parameters but the optimizer's has "
                    f"{len(g['params'])}; the model or its grouping differs from the saved one"
                )
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            id_map.update(zip(s["params"], g["params"]))
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, values in state_dict["state"].items():
            p = id_map.get(key if isinstance(key, int) else int(key))
            if p is None:
                state[key] = values
            else:
                state[p] = {k: _cast_state(p, v, k) for k, v in values.items()}
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            s["params"] = g["params"]
            if "param_names" in g and "param_names" not in s:
                s["param_names"] = g["param_names"]
            for name, default in self.defaults.items():
                s.setdefault(name, default)
            new_groups.append(s)
        self.state = state
        self.param_groups = new_groups
        for hook in self._optimizer_load_state_dict_post_hooks.values():
            hook(self)


def _as_array(value: Any) -> Any:
    """The numpy/cupy array behind a hubkit Tensor, a torch Tensor or an array; None for anything else."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        return value.detach().cpu().numpy()
    if isinstance(value, np.ndarray) or is_cupy_array(value):
        return value
    return None


def _cast_state(p: Tensor, value: Any, key: str | None) -> Any:
    """A copy of one saved state value as live state for ``p``: arrays become Tensors on p's device and dtype."""
    array = _as_array(value)
    if array is not None:
        if key == "step":  # the step count keeps its dtype and stays on the host, like torch's
            return Tensor._make(np.array(to_device(array, "cpu"), copy=True))
        array = to_device(array, p.device)
        if p.dtype.kind in "fc" and array.dtype.kind in "fc":
            array = array.astype(p.dtype, copy=True)
        else:
            array = array.copy()
        return Tensor._make(array)
    if isinstance(value, dict):
        return {k: _cast_state(p, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(p, v, None) for v in value)
    return copy.deepcopy(value)
