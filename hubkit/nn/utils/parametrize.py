"""``torch.nn.utils.parametrize``: compute a parameter from others each time it is read.

``register_parametrization(module, "weight", P)`` moves the tensor to
``module.parametrizations.weight.original`` (or ``original0``, ``original1``, ... when ``P.right_inverse``
returns several tensors) and makes ``module.weight`` a property that returns ``P(original)``. The
state-dict keys are torch's, so checkpoints of parametrized torch models load by key.

As in torch, the module's class is swapped for a subclass made for it alone (``ParametrizedLinear``)
that holds the property: plain attribute reads of every other module never pay for the feature.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator, Sequence
from typing import Any

from hubkit.autograd import no_grad
from hubkit.errors import ArgumentError, ArgumentTypeError
from hubkit.nn.module import Module
from hubkit.nn.modules.container import ModuleDict, ModuleList
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor

_cache_enabled = 0
_cache: dict[tuple[int, str], Tensor] = {}


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Inside this block each parametrized tensor is computed once, on its first read, and reused."""
    global _cache_enabled
    _cache_enabled += 1
    try:
        yield
    finally:
        _cache_enabled -= 1
        if not _cache_enabled:
            _cache.clear()


def _register_parameter_or_buffer(module: Module, name: str, value: Tensor) -> None:
    if isinstance(value, Parameter):
        module.register_parameter(name, value)
    else:
        module.register_buffer(name, value)


def _maybe_set(dest: Tensor, src: Tensor) -> None:
    """Make ``dest`` hold ``src``'s data (torch's ``set_``): the object, and so optimizer state, is kept."""
    dest.array = src.array
    dest._version += 1


def _check_tensor(what: str, value: Any, dtype: Any = None, shape: Any = None) -> None:
    if not isinstance(value, Tensor):
        raise ArgumentTypeError(f"{what} must return a tensor; got {type(value).__name__}")
    if dtype is not None and value.dtype != dtype:
        raise ArgumentError(f"{what} may not change the dtype of the tensor, unless the `unsafe` flag is enabled: "
                            f"expected {dtype}, got {value.dtype}")
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise ArgumentError(f"{what} may not change the shape of the tensor, unless the `unsafe` flag is enabled: "
                            f"expected {tuple(shape)}, got {tuple(value.shape)}")


class ParametrizationList(ModuleList):
    """The parametrizations of one tensor, applied in order to ``original`` (or ``original0, original1, ...``).

    Built by ``register_parametrization``, not by hand. ``right_inverse(value)`` runs the
    parametrizations' right inverses in reverse order and stores the result as the originals.
    """

    def __init__(self, modules: Sequence[Module], original: Tensor, unsafe: bool = False) -> None:
        if len(modules) == 0:
            raise ArgumentError("ParametrizationList requires one or more modules")
        super().__init__(modules)
        self.unsafe = unsafe
        original_shape, original_dtype = tuple(original.shape), original.dtype
        with no_grad():
            new: Any = original
            for module in reversed(list(self)):
                if hasattr(module, "right_inverse"):
                    with contextlib.suppress(NotImplementedError):
                        new = module.right_inverse(new)
        if not isinstance(new, (Tensor, Sequence)):
            raise ArgumentTypeError(f"'right_inverse' must return a Tensor or a Sequence of tensors (list, tuple...); "
                                    f"got {type(new).__name__}")
        self.is_tensor = isinstance(new, Tensor)
        self.ntensors = 1 if self.is_tensor else len(new)
        if self.is_tensor:
            if new.dtype != original.dtype:
                raise ArgumentError(f"when `right_inverse` outputs one tensor, it may not change the dtype: "
                                    f"original {original.dtype}, right_inverse(original) {new.dtype}")
            with no_grad():
                _maybe_set(original, new)
            _register_parameter_or_buffer(self, "original", original)
        else:
            for i, part in enumerate(new):
                if not isinstance(part, Tensor):
                    raise ArgumentTypeError(f"'right_inverse' must return a Tensor or a Sequence of tensors; "
                                            f"element {i} is a {type(part).__name__}")
                if isinstance(original, Parameter):
                    part = Parameter(part, original.requires_grad)
                _register_parameter_or_buffer(self, f"original{i}", part)
        if not self.unsafe:
            _check_tensor("a parametrization", self(), original_dtype, original_shape)

    def right_inverse(self, value: Tensor) -> None:
        """Store ``value`` as the parametrized tensor: the originals become the right inverse of it."""
        with no_grad():
            for module in reversed(list(self)):
                if not hasattr(module, "right_inverse"):
                    raise ArgumentError(f"parametrization {type(module).__name__} does not implement right_inverse, "
                                        "so the parametrized tensor cannot be assigned")
                value = module.right_inverse(value)
            if self.is_tensor:
                _check_tensor("`right_inverse`", value, self.original.dtype)
                _maybe_set(self.original, value)
            else:
                if not isinstance(value, Sequence) or len(value) != self.ntensors:
                    raise ArgumentError(f"'right_inverse' must return a sequence of {self.ntensors} tensors; got "
                                        f"{type(value).__name__}")
                for i, part in enumerate(value):
                    original_i = getattr(self, f"original{i}")
                    _check_tensor(f"`right_inverse` (element {i})", part, original_i.dtype)
                    _maybe_set(original_i, part)

    def forward(self) -> Tensor:
        modules = list(self)
        if self.is_tensor:
            x = modules[0](self.original)
        else:
            x = modules[0](*(getattr(self, f"original{i}") for i in range(self.ntensors)))
        for module in modules[1:]:
            x = module(x)
        return x


def _inject_new_class(module: Module) -> None:
    """Give ``module`` a class of its own (``Parametrized<Class>``) to hang the properties on."""
    cls = module.__class__

    def getstate(self: Module) -> Any:
        raise ArgumentTypeError(
            "serialization of parametrized modules is only supported through state_dict(); save "
            "module.state_dict() and load it into a model with the same parametrizations registered"
        )

    def default_deepcopy(self: Module, memo: dict) -> Module:
        replica = memo.get(id(self))
        if replica is not None:
            return replica
        # the copy gets a class of its own too, so removing a parametrization from one leaves the other intact
        own = {k: v for k, v in vars(self.__class__).items() if k not in ("__dict__", "__weakref__")}
        replica = self.__new__(type(self.__class__.__name__, self.__class__.__bases__, own))
        memo[id(self)] = replica
        replica.__dict__ = copy.deepcopy(self.__dict__, memo)
        return replica

    namespace: dict[str, Any] = {"__getstate__": getstate}
    if not hasattr(cls, "__deepcopy__"):
        namespace["__deepcopy__"] = default_deepcopy
    module.__class__ = type(f"Parametrized{cls.__name__}", (cls,), namespace)


def _inject_property(module: Module, tensor_name: str) -> None:
    def get_parametrized(self: Module) -> Tensor:
        parametrization = self.parametrizations[tensor_name]
        if not _cache_enabled:
            return parametrization()
        key = (id(self), tensor_name)
        tensor = _cache.get(key)
        if tensor is None:
            tensor = _cache[key] = parametrization()
        return tensor

    def set_original(self: Module, value: Tensor) -> None:
        self.parametrizations[tensor_name].right_inverse(value)

    setattr(module.__class__, tensor_name, property(get_parametrized, set_original))


def register_parametrization(module: Module, tensor_name: str, parametrization: Module, *,
                             unsafe: bool = False) -> Module:
    """Make ``module.<tensor_name>`` read as ``parametrization(original)``; a second call on the same
    tensor chains another parametrization after the first. Returns ``module``.

    ``parametrization`` is a Module whose forward takes the original tensor(s). An optional
    ``right_inverse(X)`` tells what to store so that the parametrization gives ``X``: it runs now on the
    current tensor, and on every later assignment ``module.<tensor_name> = X``. It may return a tuple of
    tensors (stored as ``original0``, ``original1``, ...). Unless ``unsafe``, the parametrized tensor
    must keep the original's dtype and shape (checked once, here).
    """
    if not isinstance(parametrization, Module):
        raise ArgumentTypeError(f"register_parametrization: the parametrization must be an nn.Module, got "
                                f"{type(parametrization).__name__}")
    parametrization.train(module.training)
    if is_parametrized(module, tensor_name):
        if not unsafe:
            y = getattr(module, tensor_name)
            x = parametrization(y)
            _check_tensor("a parametrization", x, y.dtype, y.shape)
            if hasattr(parametrization, "right_inverse"):
                try:
                    z = parametrization.right_inverse(x)
                except NotImplementedError:
                    pass
                else:
                    _check_tensor("parametrization.right_inverse", z, y.dtype, y.shape)
        plist = module.parametrizations[tensor_name]
        plist.append(parametrization)
        plist.unsafe |= unsafe
    elif tensor_name in module._buffers or tensor_name in module._parameters:
        original = getattr(module, tensor_name)
        if original is None:
            raise ArgumentError(f"register_parametrization: {type(module).__name__}.{tensor_name} is None; there is "
                                "no tensor to parametrize")
        plist = ParametrizationList([parametrization], original, unsafe=unsafe)
        delattr(module, tensor_name)
        if not is_parametrized(module):
            _inject_new_class(module)
            module.parametrizations = ModuleDict()
        module.parametrizations[tensor_name] = plist
        _inject_property(module, tensor_name)
    else:
        raise ArgumentError(f"module '{type(module).__name__}' does not have a parameter, a buffer, or a parametrized "
                            f"element with name '{tensor_name}'")
    return module


def is_parametrized(module: Module, tensor_name: str | None = None) -> bool:
    """Whether ``module`` has any parametrization (or one on ``tensor_name``)."""
    parametrizations = module.__dict__.get("_modules", {}).get("parametrizations")
    if not isinstance(parametrizations, ModuleDict):
        return False
    if tensor_name is None:
        return len(parametrizations) > 0
    return tensor_name in parametrizations


def remove_parametrizations(module: Module, tensor_name: str, leave_parametrized: bool = True) -> Module:
    """Undo ``register_parametrization`` on ``tensor_name``: it becomes a plain parameter (or buffer) again,
    holding the parametrized value (``leave_parametrized=True``) or the original one. Returns ``module``.

    With a single original the Parameter object is kept (its optimizer state stays valid).
    """
    if not is_parametrized(module, tensor_name):
        raise ArgumentError(f"module {type(module).__name__} does not have a parametrization on {tensor_name}")
    plist = module.parametrizations[tensor_name]
    if plist.is_tensor:
        original = plist.original
        if leave_parametrized:
            with no_grad():
                t = getattr(module, tensor_name)
                _maybe_set(original, t)
    else:
        if not leave_parametrized:
            raise ArgumentError("cannot leave unparametrized (`leave_parametrized=False`) a tensor that is "
                                "parametrized in terms of a sequence of tensors")
        t = getattr(module, tensor_name)
        original = Parameter(t.detach(), t.requires_grad) if t.requires_grad else t.detach()
    delattr(module.__class__, tensor_name)
    del module.parametrizations[tensor_name]
    _register_parameter_or_buffer(module, tensor_name, original)
    if not is_parametrized(module):
        delattr(module, "parametrizations")
        module.__class__ = module.__class__.__bases__[0]
    return module


def type_before_parametrizations(module: Module) -> type:
    """The module's class as it was before any parametrization was registered."""
    if is_parametrized(module):
        return module.__class__.__bases__[0]
    return type(module)


def transfer_parametrizations_and_params(from_module: Module, to_module: Module,
                                         tensor_name: str | None = None) -> Module:
    """Register ``from_module``'s parametrizations (all, or those of ``tensor_name``) on ``to_module`` and copy
    their originals over; a tensor ``to_module`` lacks is created first. Returns ``to_module``."""
    if not is_parametrized(from_module):
        return to_module
    names = list(from_module.parametrizations) if tensor_name is None else [tensor_name]
    for name in names:
        if not hasattr(to_module, name):
            setattr(to_module, name, Parameter(getattr(from_module, name).detach()))
        source = from_module.parametrizations[name]
        for parametrization in source:
            register_parametrization(to_module, name, parametrization)
        target = to_module.parametrizations[name]
        with no_grad():
            if source.is_tensor:
                _maybe_set(target.original, source.original)
            else:
                for i in range(source.ntensors):
                    _maybe_set(getattr(target, f"original{i}"), getattr(source, f"original{i}"))
    return to_module
