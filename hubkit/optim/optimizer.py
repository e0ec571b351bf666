"""``Optimizer``: parameter groups, per-parameter state, and torch-shaped ``state_dict``.

Subclasses implement ``_update_group(group)``, which updates every parameter of the group that has a
gradient, in place on ``param.array`` with raw array operations: no autograd graph is built.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from hubkit._backend import get_array_module, to_device
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.tensor import Tensor


class _Required:
    """Marks a hyper-parameter that has no default and must be given (per group or to the constructor)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of the optimizers.

    ``params`` is an iterable of Tensors, of ``(name, Tensor)`` pairs, or of dicts (parameter groups)
    with a ``"params"`` entry and per-group hyper-parameters that override ``defaults``.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise ArgumentTypeError(
                "params argument given to the optimizer should be an iterable of Tensors or dicts, but got a "
                "Tensor; pass [tensor] or model.parameters()"
            )
        groups = [{"params": params}] if isinstance(params, set) else list(params)
        if not groups:
            raise ArgumentError("optimizer got an empty parameter list: pass model.parameters() of a model with "
                                "parameters")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

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
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise ArgumentTypeError(
                "optimizer parameters need to be organized in ordered collections, but the ordering of tensors in "
                "sets will change between runs; use a list instead"
            )
        params = list(params)
        if params and isinstance(params[0], tuple):
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not isinstance(p, Tensor):
                raise ArgumentTypeError(f"optimizer can only optimize Tensors, but one of the params is {type(p)}")
            if not p.is_leaf:
                raise ArgumentError("can't optimize a non-leaf Tensor: optimize the leaves it was computed from")
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ArgumentError(f"parameter group didn't specify a value of required optimization parameter "
                                    f"{name}")
            group.setdefault(name, default)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ArgumentError("some parameters appear in more than one parameter group (or twice in one)")
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
            from hubkit.autograd import enable_grad

            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _update_group")

    @staticmethod
    def _grad(p: Tensor, maximize: bool) -> Any:
        g = p.grad.array
        return -g if maximize else g

    # ------------------------------------------------------------ state dict
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [indices]}]}``, as torch writes it.

        Parameters are numbered in group order; ``step`` is a 0-d float32 tensor and buffers are
        Tensors sharing memory with the optimizer's state.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            ids = []
            for p in group["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            packed["params"] = ids
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: self._export(k, v) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    @staticmethod
    def _export(key: str, value: Any) -> Any:
        if key == "step":
            import numpy as np

            return Tensor._make(np.asarray(value, dtype=np.float32))
        return Tensor._make(value) if hasattr(value, "shape") else value

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore state saved by ``state_dict()`` (hubkit's or torch's, with numpy arrays or Tensors)."""
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ArgumentError("optimizer state_dict must be a dict with 'state' and 'param_groups' entries")
        saved_groups = state_dict["param_groups"]
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
        self.state = {}
        for key, values in state_dict["state"].items():
            p = id_map.get(int(key) if not isinstance(key, int) else key)
            if p is None:
                continue
            self.state[p] = {k: self._import(k, v, p) for k, v in values.items()}
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            group = copy.deepcopy({k: v for k, v in s.items() if k != "params"})
            group["params"] = g["params"]
            new_groups.append(group)
        self.param_groups = new_groups

    @staticmethod
    def _import(key: str, value: Any, p: Tensor) -> Any:
        array = value.array if isinstance(value, Tensor) else value
        if hasattr(array, "detach") and hasattr(array, "numpy"):  # a torch.Tensor
            array = array.detach().cpu().numpy()
        if key == "step":
            return int(float(array))
        if not hasattr(array, "shape"):
            return copy.deepcopy(value)
        array = to_device(array, p.device)
        xp = get_array_module(array)
        dtype = p.dtype if array.dtype.kind in "fc" else array.dtype
        return xp.array(array, dtype=dtype, copy=True)
