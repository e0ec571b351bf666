"""Spectral normalization (Miyato et al., 2018), torch's legacy hook version: ``weight = W / sigma(W)``.

``spectral_norm(module)`` keeps the raw weight as the parameter ``weight_orig`` and the power-iteration
vectors as the buffers ``weight_u`` and ``weight_v`` (torch's state-dict keys), and recomputes
``module.weight`` before every forward, running ``n_power_iterations`` steps first while training.
``hubkit.nn.utils.parametrizations.spectral_norm`` is the newer form of the same thing.
"""

from __future__ import annotations

from typing import Any

from hubkit.autograd import no_grad
from hubkit.errors import ArgumentError
from hubkit.nn import init
from hubkit.nn.module import Module
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor, empty


def default_dim(module: Module) -> int:
    """0, or 1 for a transposed conv, whose weight ``(in, out / groups, *kernel)`` has its outputs in dim 1."""
    transposed = ("ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d")
    return 1 if any(c.__name__ in transposed for c in type(module).__mro__) else 0


def weight_to_matrix(weight: Tensor, dim: int) -> Tensor:
    """``weight`` as a matrix ``(weight.shape[dim], everything else)``: ``dim`` moved first, the rest flattened."""
    dim %= weight.ndim
    if dim != 0:
        weight = weight.permute(dim, *(d for d in range(weight.ndim) if d != dim))
    return weight.reshape(weight.shape[0], -1)


def normalize_into(target: Tensor, vector: Any, eps: float) -> None:
    """``target.array[...] = vector / max(||vector||, eps)``: the buffers keep their identity, as torch's
    ``normalize(..., out=)`` keeps them."""
    xp = target._xp
    norm = xp.sqrt((vector * vector).sum())
    target.array[...] = vector / xp.maximum(norm, vector.dtype.type(eps))
    target._version += 1


class SpectralNorm:
    """The forward pre-hook that recomputes ``module.<name>`` from ``<name>_orig``, ``<name>_u`` and ``<name>_v``."""

    def __init__(self, name: str = "weight", n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        if n_power_iterations <= 0:
            raise ArgumentError(f"spectral_norm: expected n_power_iterations to be positive, but got "
                                f"n_power_iterations={n_power_iterations}")
        self.name = name
        self.dim = dim
        self.n_power_iterations = n_power_iterations
        self.eps = eps

    def compute_weight(self, module: Module, do_power_iteration: bool) -> Tensor:
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = weight_to_matrix(weight, self.dim)
        if do_power_iteration:
            with no_grad():
                w = weight_mat.array
                for _ in range(self.n_power_iterations):
                    normalize_into(v, w.T @ u.array, self.eps)
                    normalize_into(u, w @ v.array, self.eps)
            u, v = u.clone(), v.clone()
        sigma = (u * (weight_mat @ v)).sum()
        return weight / sigma

    def remove(self, module: Module) -> None:
        with no_grad():
            weight = self.compute_weight(module, do_power_iteration=False)
        delattr(module, self.name)
        delattr(module, self.name + "_u")
        delattr(module, self.name + "_v")
        delattr(module, self.name + "_orig")
        module.register_parameter(self.name, Parameter(weight.detach()))

    def __call__(self, module: Module, inputs: Any) -> None:
        setattr(module, self.name, self.compute_weight(module, do_power_iteration=module.training))

    @staticmethod
    def apply(module: Module, name: str, n_power_iterations: int, dim: int, eps: float) -> SpectralNorm:
        for hook in module._forward_pre_hooks.values():
            if isinstance(hook, SpectralNorm) and hook.name == name:
                raise ArgumentError(f"cannot register two spectral_norm hooks on the same parameter {name!r}")
        weight = module._parameters.get(name)
        if weight is None:
            raise ArgumentError(f"spectral_norm: module {type(module).__name__} has no parameter {name!r}")
        fn = SpectralNorm(name, n_power_iterations, dim, eps)
        with no_grad():
            h, w = weight_to_matrix(weight, dim).shape
            u = init.normal_(empty(h, dtype=weight.dtype, device=weight.device))
            v = init.normal_(empty(w, dtype=weight.dtype, device=weight.device))
            normalize_into(u, u.array, eps)
            normalize_into(v, v.array, eps)
        delattr(module, name)
        module.register_parameter(name + "_orig", weight)
        setattr(module, name, weight.detach())
        module.register_buffer(name + "_u", u)
        module.register_buffer(name + "_v", v)
        module.register_forward_pre_hook(fn)
        return fn


def spectral_norm(module: Module, name: str = "weight", n_power_iterations: int = 1, eps: float = 1e-12,
                  dim: int | None = None) -> Module:
    """Divide ``module.<name>`` by its largest singular value, estimated by power iteration (one step per
    training forward by default). ``dim``: the dim of the output channels (default 0, or 1 for transposed
    convolutions). Returns ``module``."""
    if dim is None:
        dim = default_dim(module)
    SpectralNorm.apply(module, name, n_power_iterations, dim, eps)
    return module


def remove_spectral_norm(module: Module, name: str = "weight") -> Module:
    """Fold ``<name>_orig`` / sigma back into one parameter ``<name>`` and drop the hook and buffers."""
    for key, hook in list(module._forward_pre_hooks.items()):
        if isinstance(hook, SpectralNorm) and hook.name == name:
            hook.remove(module)
            del module._forward_pre_hooks[key]
            return module
    raise ArgumentError(f"spectral_norm of '{name}' not found in {type(module).__name__}")
