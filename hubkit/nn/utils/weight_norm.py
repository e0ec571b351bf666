"""Weight normalization (Salimans & Kingma, 2016), torch's legacy hook version: ``weight = g * v / ||v||``.

``weight_norm(module)`` replaces the parameter ``weight`` by ``weight_g`` (the magnitudes) and
``weight_v`` (the directions), torch's state-dict keys, and recomputes ``module.weight`` before every
forward. ``hubkit.nn.utils.parametrizations.weight_norm`` is the newer form of the same thing.
"""

from __future__ import annotations

import warnings
from typing import Any

from hubkit.errors import ArgumentError, ShapeError
from hubkit.nn.module import Module
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor


def norm_except_dim(v: Tensor, pow: float = 2, dim: int = 0) -> Tensor:  # noqa: A002  (torch's name)
    """The ``pow``-norm of ``v`` over every dim but ``dim``, keeping them as size 1: for ``v (out, in)`` and
    ``dim=0``, ``(out, 1)``. ``dim=-1`` (torch's convention here, also what ``None`` becomes) is the norm of
    the whole tensor, 0-d."""
    if dim == -1:
        axes = tuple(range(v.ndim))
        return (v.abs() ** pow).sum(dim=axes) ** (1.0 / pow) if pow != 2 else (v * v).sum(dim=axes).sqrt()
    if not -v.ndim <= dim < v.ndim:
        raise ArgumentError(f"norm_except_dim: dim {dim} is out of range for a tensor of shape {tuple(v.shape)}")
    dim %= v.ndim
    axes = tuple(d for d in range(v.ndim) if d != dim)
    if pow == 2:
        return (v * v).sum(dim=axes, keepdim=True).sqrt()
    return (v.abs() ** pow).sum(dim=axes, keepdim=True) ** (1.0 / pow)


def _weight_norm(v: Tensor, g: Tensor, dim: int = 0) -> Tensor:
    """``v * (g / ||v||)`` with the norm taken as ``norm_except_dim(v, 2, dim)``; differentiable in both."""
    return v * (g / norm_except_dim(v, 2, dim))


class WeightNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_g`` and ``<name>_v``."""

    def __init__(self, name: str, dim: int) -> None:
        self.name = name
        self.dim = -1 if dim is None else dim

    def compute_weight(self, module: Module) -> Tensor:
        return _weight_norm(getattr(module, self.name + "_v"), getattr(module, self.name + "_g"), self.dim)

    @staticmethod
    def apply(module: Module, name: str, dim: int | None) -> WeightNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, WeightNorm) and hook.name == name:
                raise ArgumentError(f"cannot register two weight_norm hooks on the same parameter {name!r}")
        weight = module._parameters.get(name)
        if weight is None:
            raise ArgumentError(f"weight_norm: module {type(module).__name__} has no parameter {name!r}")
        fn = WeightNorm(name, dim)
        if fn.dim != -1 and not -weight.ndim <= fn.dim < weight.ndim:
            raise ShapeError(f"weight_norm: dim {dim} is out of range for {name} of shape {tuple(weight.shape)}")
        del module._parameters[name]
        module.register_parameter(name + "_g", Parameter(norm_except_dim(weight, 2, fn.dim).detach()))
        module.register_parameter(name + "_v", Parameter(weight.detach()))
        setattr(module, name, fn.compute_weight(module))
        module.register_forward_pre_hook(fn)
        return fn

    def remove(self, module: Module) -> None:
        weight = self.compute_weight(module).detach()
        delattr(module, self.name)
        del module._parameters[self.name + "_g"]
        del module._parameters[self.name + "_v"]
        setattr(module, self.name, Parameter(weight))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module))


def weight_norm(module: Module, name: str = "weight", dim: int | None = 0) -> Module:
    """Reparametrize ``module.<name>`` as ``<name>_g * <name>_v / ||<name>_v||`` (norm over every dim but
    ``dim``; ``None`` or -1: over the whole tensor). Returns ``module``. Deprecated, as in torch."""
    warnings.warn("`torch.nn.utils.weight_norm` is deprecated in favor of "
                  "`torch.nn.utils.parametrizations.weight_norm`.", FutureWarning, stacklevel=2)
    WeightNorm.apply(module, name, dim)
    return module


def remove_weight_norm(module: Module, name: str = "weight") -> Module:
    """Fold ``<name>_g`` and ``<name>_v`` back into one parameter ``<name>`` and drop the hook."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, WeightNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ArgumentError(f"weight_norm of '{name}' not found in {type(module).__name__}")
