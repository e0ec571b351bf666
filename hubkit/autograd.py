"""Reverse-mode automatic differentiation.

An op is a ``Function`` whose ``forward`` and ``backward`` take and return raw arrays
(numpy or cupy). Calling a Function instance on Tensors runs ``forward`` and, when a
gradient is needed, records the instance as the outputs' creator. ``backward`` walks the
recorded graph iteratively in reverse topological order, so a 10,000-op chain is fine.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any

from hubkit.errors import GradError

# ---------------------------------------------------------------- grad mode

_state = threading.local()


def is_grad_enabled() -> bool:
    return getattr(_state, "enabled", True)


def _set_enabled(flag: bool) -> None:
    _state.enabled = flag


class _GradMode:
    """Base of ``no_grad``/``enable_grad``: a context manager that also works as a decorator."""

    _target: bool

    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        _set_enabled(self._target)

    def __exit__(self, *exc: object) -> None:
        _set_enabled(self._prev)

    def __call__(self, fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):  # noqa: N801  (PyTorch's name)
    """Disable graph recording: ``with hubkit.no_grad(): ...`` or ``@hubkit.no_grad()``."""

    _target = False


class enable_grad(_GradMode):  # noqa: N801
    """Re-enable graph recording inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_GradMode):  # noqa: N801
    """Set grad mode to ``mode`` for a block (or for good, when not used as a context manager)."""

    def __init__(self, mode: bool) -> None:
        self._target = bool(mode)
        self._prev = is_grad_enabled()
        _set_enabled(self._target)

    def __enter__(self) -> None:
        pass

    def __call__(self, fn: Callable) -> Callable:
        _set_enabled(self._prev)
        mode = self._target

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            prev = is_grad_enabled()
            _set_enabled(mode)
            try:
                return fn(*args, **kwargs)
            finally:
                _set_enabled(prev)

        return wrapper


# ---------------------------------------------------------------- Function


class Function:
    """One differentiable op.

    Subclasses take hyper-parameters in ``__init__`` and implement ``forward(*arrays)`` and
    ``backward(*grad_outputs)`` on raw arrays. ``forward`` may read ``self.needs_input_grad``
    to save only what ``backward`` will use. ``backward`` returns one gradient per input
    (``None`` where none is needed); a gradient whose shape is a broadcast of its input's
    shape is summed back automatically. Backward functions must not modify their inputs.
    """

    needs_input_grad: tuple[bool, ...] = ()
    inputs: tuple | None = None
    # for each input, (creator, output index) at call time, or None for leaves and non-tensors: the
    # graph edge. It is captured at call time because ``x[i] = v`` later rebases ``x`` on a new creator.
    parents: tuple | None = None
    outputs: tuple = ()

    def forward(self, *xs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, *gys: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not support backward")

    def __call__(self, *inputs: Any) -> Any:
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        record = is_grad_enabled() and any(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        if record:
            self.needs_input_grad = tuple(isinstance(x, Tensor) and x.requires_grad for x in inputs)
        else:
            self.needs_input_grad = (False,) * len(inputs)
        ys = self.forward(*arrays)
        single = not isinstance(ys, tuple)
        outs = tuple(Tensor._make(y) for y in ((ys,) if single else ys))
        if record:
            self.inputs = inputs
            self.parents = tuple(_node_of(x) for x in inputs)
            self.outputs = tuple(weakref.ref(o) for o in outs)
            self._meta = tuple((o.data.shape, o.data.dtype) for o in outs)
            for o in outs:
                if o.data.dtype.kind in "fc":
                    o.requires_grad = True
                    o._creator = self
        return outs[0] if single else outs

    def _out_meta(self, i: int) -> tuple[tuple[int, ...], Any]:
        return self._meta[i]

    def _free(self) -> None:
        """Drop what forward saved, so memory is released once backward has used it."""
        for name in list(vars(self)):
            if name not in ("inputs", "parents", "outputs", "needs_input_grad"):
                delattr(self, name)

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        return cls(**params)(*inputs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


# ---------------------------------------------------------------- backward


def _node_of(x: Any) -> tuple[Function, int] | None:
    """The graph node holding ``x``'s current value: (its creator, which output), or None for a leaf."""
    creator = getattr(x, "_creator", None)
    if creator is None:
        return None
    for i, ref in enumerate(creator.outputs):
        if ref() is x:
            return creator, i
    return creator, 0


def _sum_to(g: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back to ``shape``."""
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, n in enumerate(shape) if n == 1 and g.shape[i + lead] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    if lead:
        g = g.reshape(shape)
    return g


def _topological_order(root_fn: Function) -> list[Function]:
    """Functions reachable from ``root_fn``, each after every function that consumes its outputs.

    Iterative depth-first post-order (no recursion limit); a function is marked when it is
    expanded, not when it is pushed, so a shared input is finished before its consumers.
    """
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(root_fn, False)]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in visited:
            continue
        visited.add(id(fn))
        stack.append((fn, True))
        if fn.inputs is None:
            raise GradError(
                "trying to backward through the graph a second time (its saved values were freed); "
                "pass retain_graph=True to the first backward() if you need to do this"
            )
        for parent in fn.parents:
            if parent is not None and id(parent[0]) not in visited:
                stack.append((parent[0], False))
    order.reverse()
    return order


def backward(root: Tensor, gradient: Any = None, retain_graph: bool = False) -> None:
    """Accumulate d(root)/d(leaf) into ``leaf.grad`` for every leaf that requires grad."""
    if not root.requires_grad:
        raise GradError(
            "element 0 of tensors does not require grad and does not have a grad_fn: "
            "create the inputs with requires_grad=True (and not under no_grad()) before computing"
        )
    xp = root._xp
    if gradient is None:
        if root.data.size != 1:
            raise GradError(
                f"grad can be implicitly created only for scalar outputs, but the output has shape "
                f"{tuple(root.shape)}: pass gradient= with that shape to backward()"
            )
        g0 = xp.ones_like(root.data)
    else:
        g0 = gradient.data if isinstance(gradient, Tensor) else xp.asarray(gradient, dtype=root.data.dtype)
        if g0.shape != root.data.shape:
            raise GradError(f"backward: gradient has shape {g0.shape} but the output has shape {root.data.shape}")
        g0 = g0.copy()

    if root._creator is None:  # backward on a leaf: its gradient is the seed itself
        _accumulate_leaf(root, g0, owned=True)
        return

    # gradients of non-leaf values, keyed by their node (id(creator), output index); fns stay alive in ``order``
    root_fn, root_index = _node_of(root)
    grads: dict[tuple[int, int], Any] = {(id(root_fn), root_index): g0}
    leaf_grads: dict[int, tuple[Tensor, Any]] = {}
    handed_out: dict[int, int] = {}
    for fn in _topological_order(root_fn):
        gys = [grads.pop((id(fn), i), None) for i in range(len(fn.outputs))]
        for ref, g in zip(fn.outputs, gys):
            out = ref()
            if g is not None and out is not None and out._retain_grad and out._creator is fn:
                out.grad = Tensor._make(g.copy())
        if all(g is None for g in gys):
            continue
        gys = [xp.zeros(*fn._out_meta(i)) if g is None else g for i, g in enumerate(gys)]
        gxs = fn.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        if len(gxs) != len(fn.inputs):
            raise GradError(f"{type(fn).__name__}.backward returned {len(gxs)} gradients for {len(fn.inputs)} inputs")
        for x, parent, gx, needed in zip(fn.inputs, fn.parents, gxs, fn.needs_input_grad):
            if not needed or gx is None:
                continue
            if gx.shape != x.data.shape:
                gx = _sum_to(gx, x.data.shape)
            if gx.dtype != x.data.dtype:
                gx = gx.astype(x.data.dtype)
            handed_out[id(gx)] = handed_out.get(id(gx), 0) + 1
            if parent is None:
                prev = leaf_grads.get(id(x))
                leaf_grads[id(x)] = (x, gx if prev is None else prev[1] + gx)
            else:
                key = (id(parent[0]), parent[1])
                prev = grads.get(key)
                grads[key] = gx if prev is None else prev + gx
        if not retain_graph:
            fn.inputs = fn.parents = None
            fn._free()
    for x, g in leaf_grads.values():
        owned = g.base is None and handed_out.get(id(g), 0) <= 1
        _accumulate_leaf(x, g, owned=owned)


def _accumulate_leaf(x: Tensor, g: Any, owned: bool) -> None:
    if x.grad is None:
        x.grad = Tensor._make(g if owned else g.copy())
    else:
        x.grad.data += g


def grad(outputs: Tensor, inputs: list[Tensor] | tuple[Tensor, ...], grad_outputs: Any = None,
         retain_graph: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) without touching any ``.grad`` (first order only)."""
    saved = [(t, t.grad) for t in inputs]
    for t in inputs:
        if t._creator is not None:
            raise GradError("autograd.grad supports leaf inputs only")
        t.grad = None
    try:
        backward(outputs, grad_outputs, retain_graph=retain_graph)
        return tuple(t.grad for t in inputs)
    finally:
        for t, g in saved:
            t.grad = g


from hubkit.tensor import Tensor  # noqa: E402  (tensor.py imports this module at its end)
