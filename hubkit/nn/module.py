"""``Module``: the base class of every layer and model, with PyTorch's contract and names.

Assigning a ``Parameter``, a ``Module`` or (after ``register_buffer``) a Tensor to an attribute
registers it, so ``parameters()``, ``state_dict()`` and ``to()`` find it. State-dict keys are the
dotted attribute paths (``layer1.0.conv1.weight``), so an upstream PyTorch checkpoint loads by key.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from hubkit._backend import Device, get_array_module, to_device
from hubkit.autograd import Function, RemovableHandle, is_grad_enabled, no_grad
from hubkit.errors import ArgumentError, ArgumentTypeError, StateDictError
from hubkit.nn.parameter import Parameter
from hubkit.tensor import Tensor, _as_dtype, _looks_like_device


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it did not find and the keys it did not use."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _HookInputs(Function):
    """Identity on a module's tensor inputs; its backward runs the module's full backward hooks."""

    def __init__(self, hooks: _BackwardHooks) -> None:
        self.hooks = hooks

    def forward(self, *xs: Any) -> tuple:
        return xs

    def backward(self, *gxs: Any) -> tuple:
        return self.hooks.on_grad_input(gxs)


class _HookOutputs(Function):
    """Identity on a module's tensor outputs; its backward records grad_output and runs the pre-hooks."""

    def __init__(self, hooks: _BackwardHooks) -> None:
        self.hooks = hooks

    def forward(self, *ys: Any) -> tuple:
        return ys

    def backward(self, *gys: Any) -> tuple:
        return self.hooks.on_grad_output(gys)


def _as_arrays(grads: Any, like: tuple) -> tuple:
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(like):
        raise ArgumentError(f"a backward hook returned {len(grads)} gradients, expected {len(like)}")
    return tuple(g.array if isinstance(g, Tensor) else g for g in grads)


class _BackwardHooks:
    """One call's worth of ``register_full_backward_hook`` plumbing (PyTorch's BackwardHook)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.grad_output: tuple = ()
        self.inputs_tracked = False

    def wrap_inputs(self, args: tuple) -> tuple:
        positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
        if not positions:
            return args
        self.inputs_tracked = True
        wrapped = _HookInputs(self)(*(args[i] for i in positions))
        args = list(args)
        for i, t in zip(positions, wrapped):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, out: Any) -> Any:
        single = isinstance(out, Tensor)
        items = [out] if single else list(out) if isinstance(out, tuple) else None
        if items is None:
            return out
        positions = [i for i, o in enumerate(items) if isinstance(o, Tensor) and o.requires_grad]
        if not positions:
            return out
        wrapped = _HookOutputs(self)(*(items[i] for i in positions))
        for i, t in zip(positions, wrapped):
            items[i] = t
        return items[0] if single else tuple(items)

    def on_grad_output(self, gys: tuple) -> tuple:
        grads = tuple(Tensor._make(g) for g in gys)
        for hook in list(self.module._backward_pre_hooks.values()):
            result = hook(self.module, grads)
            if result is not None:
                grads = tuple(Tensor._make(a) for a in _as_arrays(result, grads))
        self.grad_output = grads
        if not self.inputs_tracked:  # no input needs a gradient: the hooks see grad_input=(None,)
            for hook in list(self.module._backward_hooks.values()):
                hook(self.module, (None,), grads)
        return tuple(g.array for g in grads)

    def on_grad_input(self, gxs: tuple) -> tuple:
        grads = tuple(Tensor._make(g) for g in gxs)
        for hook in list(self.module._backward_hooks.values()):
            result = hook(self.module, grads, self.grad_output)
            if result is not None:
                grads = tuple(Tensor._make(a) for a in _as_arrays(result, grads))
        return tuple(g.array for g in grads)


def _addindent(text: str, spaces: int) -> str:
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    return lines[0] + "\n" + "\n".join(" " * spaces + line for line in lines[1:])


def _state_array(value: Any, key: str) -> Any:
    """The raw array behind a state-dict value: a hubkit Tensor, a numpy/cupy array, or anything array-like."""
    if isinstance(value, Tensor):
        return value.array
    if hasattr(value, "shape") and hasattr(value, "dtype") and not hasattr(value, "detach"):
        return value
    if hasattr(value, "detach") and hasattr(value, "cpu") and hasattr(value, "numpy"):  # a torch.Tensor
        return value.detach().cpu().numpy()
    raise ArgumentTypeError(
        f"state_dict[{key!r}] is a {type(value).__name__}; expected a hubkit Tensor or a numpy array "
        "(convert it with numpy.asarray first)"
    )


def _parse_to_args(args: tuple, kwargs: dict) -> tuple[Device | None, np.dtype | None]:
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise ArgumentError(f"Module.to() got unexpected keyword arguments {sorted(kwargs)}; use device= or dtype=")
    for a in args:
        if isinstance(a, Tensor):
            device, dtype = a.device, a.dtype
        elif _looks_like_device(a):
            device = a
        else:
            dtype = a
    dtype = _as_dtype(dtype)
    if dtype is not None and dtype.kind not in "fc":
        raise ArgumentTypeError(
            f"Module.to() only accepts floating point or complex dtypes, got {dtype}; "
            "integer buffers keep their dtype when you pass a float dtype"
        )
    return (Device(device) if device is not None else None), dtype


class Module:
    """Base class for all layers and models.

    Subclasses call ``super().__init__()`` first, assign their parameters and submodules as
    attributes, and implement ``forward``; calling the module runs the hooks and ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        d = self.__dict__
        d["training"] = True
        d["_parameters"] = {}
        d["_buffers"] = {}
        d["_non_persistent_buffers_set"] = set()
        d["_modules"] = {}
        d["_forward_pre_hooks"] = OrderedDict()
        d["_forward_hooks"] = OrderedDict()
        d["_backward_pre_hooks"] = OrderedDict()
        d["_backward_hooks"] = OrderedDict()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise ArgumentError(
            f'Module [{type(self).__name__}] is missing the required "forward" function: define forward() in it'
        )

    # ------------------------------------------------------------ calling
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hooks = None
        if (self._backward_hooks or self._backward_pre_hooks) and is_grad_enabled():
            backward_hooks = _BackwardHooks(self)
            args = backward_hooks.wrap_inputs(args)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        if backward_hooks is not None:
            out = backward_hooks.wrap_outputs(out)
        return out

    def register_full_backward_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_input, grad_output) -> None or new grad_input`` runs when the gradients
        with respect to the module's tensor inputs have been computed (tuples of Tensors or None)."""
        return self._add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, grad_output) -> None or new grad_output`` runs before the module's backward."""
        return self._add_hook(self._backward_pre_hooks, hook, prepend)

    def register_backward_hook(self, hook: Callable) -> RemovableHandle:
        """PyTorch's deprecated non-full hook; hubkit gives it the full hook's (correct) gradients."""
        return self.register_full_backward_hook(hook)

    def register_forward_pre_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args) -> None or new args`` runs before ``forward``."""
        return self._add_hook(self._forward_pre_hooks, hook, prepend)

    def register_forward_hook(self, hook: Callable, *, prepend: bool = False) -> RemovableHandle:
        """``hook(module, args, output) -> None or new output`` runs after ``forward``."""
        return self._add_hook(self._forward_hooks, hook, prepend)

    @staticmethod
    def _add_hook(hooks: OrderedDict, hook: Callable, prepend: bool) -> RemovableHandle:
        handle = RemovableHandle(hooks)
        hooks[handle.id] = hook
        if prepend:
            hooks.move_to_end(handle.id, last=False)
        return handle

    # ------------------------------------------------------------ registration
    def _check_initialized(self, what: str) -> None:
        if "_parameters" not in self.__dict__:
            raise ArgumentError(
                f"cannot assign {what} before Module.__init__() call: call super().__init__() first in "
                f"{type(self).__name__}.__init__"
            )

    @staticmethod
    def _check_name(name: Any, kind: str, owner: Module) -> None:
        if not isinstance(name, str):
            raise ArgumentTypeError(f"{kind} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise ArgumentError(f'{kind} name can\'t contain "." and can\'t be empty, got {name!r}')
        if hasattr(owner, name) and name not in owner.__dict__[f"_{kind}s"]:
            raise ArgumentError(f"attribute {name!r} already exists on {type(owner).__name__}; pick another name")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Add ``param`` (or ``None``, a declared-but-absent parameter) under ``name``."""
        self._check_initialized("parameters")
        self._check_name(name, "parameter", self)
        if param is not None and not isinstance(param, Parameter):
            raise ArgumentTypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(hubkit.nn.Parameter or None required)"
            )
        if param is not None and param._creator is not None:
            raise ArgumentError(
                f"cannot assign non-leaf Tensor to parameter '{name}': parameters must be created explicitly; "
                "wrap a detached copy in nn.Parameter"
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Add a non-learnable tensor (running statistics, masks...) under ``name``.

        Persistent buffers are part of ``state_dict()``; non-persistent ones are not.
        """
        self._check_initialized("buffers")
        self._check_name(name, "buffer", self)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise ArgumentTypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' (hubkit Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child called ``name`` (reachable as an attribute)."""
        self._check_initialized("child modules")
        if module is not None and not isinstance(module, Module):
            raise ArgumentTypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_name(name, "module", self)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            self._check_initialized("parameters")
            self._forget(name, d, self._buffers, self._modules, self._non_persistent_buffers_set)
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(hubkit.nn.Parameter or None expected)"
                )
            params[name] = None
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            self._check_initialized("child modules")
            self._forget(name, d, self._parameters, self._buffers, self._non_persistent_buffers_set)
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' (Module or None expected)"
                )
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise ArgumentTypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' (hubkit Tensor or None expected)"
                )
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    @staticmethod
    def _forget(name: str, *containers: Any) -> None:
        for c in containers:
            if name in c:
                if isinstance(c, set):
                    c.discard(name)
                else:
                    del c[name]

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            items = d.get(store)
            if items is not None and name in items:
                return items[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        keys = set(super().__dir__()) | set(self._parameters) | set(self._buffers) | set(self._modules)
        return sorted(k for k in keys if not k[0].isdigit())

    def get_submodule(self, target: str) -> Module:
        """The submodule at dotted path ``target`` (``""`` is this module)."""
        mod: Module = self
        if target == "":
            return mod
        for i, part in enumerate(target.split(".")):
            child = mod._modules.get(part) if isinstance(mod, Module) else None
            if child is None:
                where = ".".join(target.split(".")[:i]) or type(self).__name__
                raise AttributeError(
                    f"{where} has no submodule {part!r} (looking up {target!r}); children are {list(mod._modules)}"
                )
            mod = child
        return mod

    def get_parameter(self, target: str) -> Parameter:
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter {name!r} (looking up {target!r})")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        module_path, _, name = target.rpartition(".")
        mod = self.get_submodule(module_path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer {name!r} (looking up {target!r})")
        return mod._buffers[name]

    # ------------------------------------------------------------ traversal
    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Module]]:
        """``(dotted_name, module)`` for this module and every descendant, depth first, each once."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + ("." if prefix else "") + name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, m in self.named_children():
            yield m

    def _named_members(self, store: str, prefix: str, recurse: bool,
                       remove_duplicate: bool = True) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse else [(prefix, self)]
        for mod_prefix, mod in modules:
            for name, value in getattr(mod, store).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                if remove_duplicate:
                    seen.add(id(value))
                yield mod_prefix + ("." if mod_prefix else "") + name, value

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted_name, parameter)`` pairs; a parameter shared by two modules is yielded once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # ------------------------------------------------------------ modes and gradients
    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (dropout and batch norm depend on it)."""
        if not isinstance(mode, bool):
            raise ArgumentTypeError(f"train(mode): mode must be a bool, got {type(mode).__name__}")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self) -> Module:
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop (``set_to_none=True``) or zero every parameter's ``.grad``."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.array[...] = 0

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every child (recursively), then on this module; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    # ------------------------------------------------------------ devices and dtypes
    def _apply(self, convert: Callable[[Any], Any], floating_only: bool = False) -> Module:
        """Replace the array of every parameter, gradient and buffer with ``convert(array)`` in place."""
        def applies(t: Tensor) -> bool:
            return not floating_only or t.array.dtype.kind in "fc"

        for m in self.modules():
            for p in m._parameters.values():
                if p is None or not applies(p):
                    continue
                p.array = convert(p.array)
                if p.grad is not None:
                    p.grad.array = convert(p.grad.array)
            for b in m._buffers.values():
                if b is not None and applies(b):
                    b.array = convert(b.array)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """``to(device)``, ``to(dtype)``, ``to(tensor)`` or ``to(device=..., dtype=...)``, in place.

        Parameters keep their identity (optimizers holding them stay valid); a dtype applies to
        floating point parameters and buffers only (``num_batches_tracked`` stays int64).
        """
        device, dtype = _parse_to_args(args, dict(kwargs))
        if device is not None:
            self._apply(lambda a: to_device(a, device))
        if dtype is not None:
            self._apply(lambda a: a if a.dtype == dtype else a.astype(dtype), floating_only=True)
        return self

    def cpu(self) -> Module:
        return self.to("cpu")

    def cuda(self, device: int | str | None = None) -> Module:
        if device is None:
            return self.to("cuda")
        return self.to(device if isinstance(device, str) else f"cuda:{device}")

    def float(self) -> Module:
        return self.to(np.float32)

    def double(self) -> Module:
        return self.to(np.float64)

    def half(self) -> Module:
        return self.to(np.float16)

    # ------------------------------------------------------------ state dict
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *, destination: dict | None = None, prefix: str = "",
                   keep_vars: bool = False) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, sharing memory with the module.

        Order: each module's parameters, then its buffers, then its children, depth first.
        """
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars)
        return destination

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, missing: list[str],
                              mismatched: list[tuple[str, tuple, tuple]], used: set[str]) -> None:
        """Copy this module's own entries (not its children's) from ``state_dict`` into place."""
        local = itertools.chain(
            self._parameters.items(),
            ((k, v) for k, v in self._buffers.items() if k not in self._non_persistent_buffers_set),
        )
        for name, target in local:
            if target is None:
                continue
            key = prefix + name
            if key not in state_dict:
                missing.append(key)
                continue
            used.add(key)
            src = _state_array(state_dict[key], key)
            if target.array.ndim == 0 and tuple(src.shape) == (1,):
                src = src.reshape(())
            if tuple(src.shape) != tuple(target.shape):
                mismatched.append((key, tuple(target.shape), tuple(src.shape)))
                continue
            src = to_device(src, target.device)
            xp = get_array_module(target.array)
            target.array[...] = xp.asarray(src).astype(target.array.dtype, copy=False)
            target._version += 1

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True,
                        assign: bool = False) -> IncompatibleKeys:
        """Copy ``state_dict`` values (hubkit Tensors or numpy arrays) into this module's parameters and buffers.

        Values are cast to each target's dtype and copied in place (parameters keep their identity;
        ``assign=True`` is accepted and copies too). Shape mismatches always raise ``StateDictError``;
        missing and unexpected keys raise it when ``strict``. Returns
        ``IncompatibleKeys(missing_keys, unexpected_keys)``, as PyTorch does.
        """
        if not isinstance(state_dict, Mapping):
            raise ArgumentTypeError(f"expected state_dict to be a mapping of names to arrays, got {type(state_dict)}")
        missing: list[str] = []
        mismatched: list[tuple[str, tuple, tuple]] = []
        used: set[str] = set()
        with no_grad():
            for prefix, module in self.named_modules(remove_duplicate=False):
                module._load_from_state_dict(state_dict, prefix + "." if prefix else "", missing, mismatched, used)
        unexpected = [k for k in state_dict if k not in used]
        if mismatched or (strict and (missing or unexpected)):
            raise StateDictError(
                _state_dict_message(type(self).__name__, missing if strict else [], unexpected if strict else [],
                                    mismatched),
                missing=missing, unexpected=unexpected, mismatched=mismatched,
            )
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ repr
    def extra_repr(self) -> str:
        """One line (or several) of this module's settings, shown inside its ``repr``."""
        return ""

    def _get_name(self) -> str:
        return type(self).__name__

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(module), 2) for key, module in self._modules.items()]
        lines = extra_lines + child_lines
        main = self._get_name() + "("
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                main += extra_lines[0]
            else:
                main += "\n  " + "\n  ".join(lines) + "\n"
        return main + ")"


def _state_dict_message(model: str, missing: list[str], unexpected: list[str],
                        mismatched: list[tuple[str, tuple, tuple]]) -> str:
    parts = [f"Error(s) in loading state_dict for {model}:"]
    if missing:
        parts.append("  Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + ".")
    if unexpected:
        parts.append("  Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in unexpected) + ".")
    for key, expected, found in mismatched:
        parts.append(
            f"  size mismatch for {key}: copying a param with shape {found} from checkpoint, "
            f"the shape in current model is {expected}."
        )
    parts.append(
        "Check that the checkpoint was saved from the same architecture and configuration; pass strict=False "
        "to load the matching keys only (shape mismatches still fail)."
    )
    return "\n".join(parts)
