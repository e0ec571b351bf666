"""Reverse-mode automatic differentiation.

An op is a ``Function`` whose ``forward`` and ``backward`` take and return raw arrays
(numpy or cupy). Calling a Function instance on Tensors runs ``forward`` and, when a
gradient is needed, records the instance as the outputs' creator. ``backward`` walks the
recorded graph iteratively in reverse topological order, so a 10,000-op chain is fine.
"""

from __future__ import annotations

import functools
import inspect
import threading
import weakref
from collections.abc import Callable
from typing import Any

from hubkit._backend import get_array_module
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


class inference_mode(_GradMode):  # noqa: N801
    """``with hubkit.inference_mode():`` — no graph is recorded (PyTorch's faster ``no_grad``).

    ``inference_mode(False)`` leaves grad mode as it is. Also a decorator, with or without the call.
    """

    def __init__(self, mode: bool = True) -> None:
        self._mode = bool(mode)

    def __enter__(self) -> None:
        self._prev = is_grad_enabled()
        self._prev_inference = is_inference_mode_enabled()
        if self._mode:
            _set_enabled(False)
            _state.inference = True

    def __exit__(self, *exc: object) -> None:
        _set_enabled(self._prev)
        _state.inference = self._prev_inference

    def __call__(self, fn: Callable) -> Callable:
        mode = self._mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(mode):
                return fn(*args, **kwargs)

        return wrapper

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):  # used as a bare decorator: @hubkit.inference_mode
            return inference_mode(True)(mode)
        return super().__new__(cls)


def is_inference_mode_enabled() -> bool:
    return getattr(_state, "inference", False)


class RemovableHandle:
    """Returned by ``register_*_hook``; ``handle.remove()`` (or leaving a ``with`` block) unregisters the hook."""

    _next_id = 0

    def __init__(self, *hook_dicts: dict) -> None:
        self._dicts = hook_dicts
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        for d in self._dicts:
            d.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


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
    """One differentiable op, in either of two styles.

    The engine's style (Chainer's): subclasses take hyper-parameters in ``__init__`` and implement
    ``forward(*arrays)`` and ``backward(*grad_outputs)`` on raw arrays; ``forward`` may read
    ``self.needs_input_grad`` to save only what ``backward`` will use. Call an instance on Tensors.

    PyTorch's style: ``@staticmethod forward(ctx, *args)`` and ``@staticmethod backward(ctx, *grads)``
    on Tensors, ``ctx.save_for_backward(...)`` / ``ctx.saved_tensors``, called as ``F.apply(*args)``.

    Either way ``backward`` returns one gradient per input (``None`` where none is needed); a
    gradient whose shape is a broadcast of its input's shape is summed back automatically.
    Backward functions must not modify their inputs.
    """

    needs_input_grad: tuple[bool, ...] = ()
    inputs: tuple | None = None
    # for each input, (creator, output index) at call time, or None for leaves and non-tensors: the
    # graph edge. It is captured at call time because an in-place op later rebases a tensor on a new creator.
    parents: tuple | None = None
    outputs: tuple = ()
    _ctx_style = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._ctx_style = isinstance(inspect.getattr_static(cls, "forward", None), staticmethod)

    def forward(self, *xs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement forward")

    def backward(self, *gys: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} does not support backward")

    def __call__(self, *inputs: Any) -> Any:
        if self._ctx_style:
            raise GradError(f"{type(self).__name__} defines a static forward(ctx, ...): call it as "
                            f"{type(self).__name__}.apply(...), not on an instance")
        # one pass over the inputs: this runs for every op, so it is kept to plain loops
        arrays = []
        needs = []
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x.array)
                needs.append(x.requires_grad)
            else:
                arrays.append(x)
                needs.append(False)
        record = True in needs and is_grad_enabled()
        self.needs_input_grad = tuple(needs) if record else (False,) * len(inputs)
        ys = self.forward(*arrays)
        single = not isinstance(ys, tuple)
        outs = (Tensor._make(ys),) if single else tuple([Tensor._make(y) for y in ys])
        if record:
            self._saved = _saved_values(self, inputs, outs)
            _connect(self, inputs, outs)
        return outs[0] if single else outs

    def _out_meta(self, i: int) -> tuple[tuple[int, ...], Any]:
        return self._meta[i]

    def _check_saved(self) -> None:
        """Refuse to run backward on values that were overwritten in place after forward saved them."""
        for tensor, array, version in self._saved:
            t = tensor() if isinstance(tensor, weakref.ref) else tensor
            if t is not None and t.array is array and t._version != version:
                raise GradError(
                    f"one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: a tensor of shape {list(t.shape)} used by {type(self).__name__} is at version "
                    f"{t._version}; expected version {version} instead. Modify a clone (x.clone()) or do the "
                    "in-place update after backward()"
                )

    def _free(self) -> None:
        """Drop what forward saved, so memory is released once backward has used it."""
        state = self.__dict__
        kept = {name: state[name] for name in _KEPT_AFTER_BACKWARD if name in state}
        state.clear()
        state.update(kept)

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        if cls._ctx_style:
            return _apply_ctx(cls, inputs)
        return cls(**params)(*inputs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}>"


_KEPT_AFTER_BACKWARD = ("inputs", "parents", "outputs", "needs_input_grad")


def _saved_values(fn: Function, inputs: tuple, outs: tuple) -> tuple:
    """(tensor or weakref to an output, its array, its version) for each array ``fn`` kept for backward.

    Any attribute of ``fn`` that is an input's or output's array (or a view straight onto it) counts.
    """
    kept = set()
    for value in vars(fn).values():
        if hasattr(value, "shape"):
            kept.add(id(value))
            base = getattr(value, "base", None)
            if base is not None:
                kept.add(id(base))
    if not kept:
        return ()
    saved = [(x, x.array, x._version) for x in inputs if isinstance(x, Tensor) and id(x.array) in kept]
    saved += [(weakref.ref(o), o.array, 0) for o in outs if id(o.array) in kept]
    return tuple(saved)


def _connect(fn: Function, inputs: tuple, outs: tuple, differentiable: Callable[[Any], bool] | None = None) -> None:
    """Record ``fn`` as the creator of ``outs`` (the floating-point ones) with ``inputs`` as its edges."""
    fn.inputs = inputs
    parents = []
    # the inputs' shapes and dtypes at call time: an in-place reshaping op (t.squeeze_(), t.t_()) may give an
    # input tensor another shape before backward reaches this node
    in_meta = []
    for x in inputs:
        if isinstance(x, Tensor):
            creator = x._creator
            if creator is None:
                parents.append(None)
            else:  # a single-output creator holds x as output 0 (what _node_of would find)
                parents.append((creator, 0) if len(creator.outputs) == 1 else _node_of(x))
            array = x.array
            in_meta.append((array.shape, array.dtype))
        else:
            parents.append(None)
            in_meta.append(None)
    fn.parents = tuple(parents)
    fn._in_meta = tuple(in_meta)
    fn.outputs = tuple([weakref.ref(o) for o in outs])
    fn._meta = tuple([(o.array.shape, o.array.dtype) for o in outs])
    for o in outs:
        if o.array.dtype.kind in "fc" and (differentiable is None or differentiable(o)):
            o.requires_grad = True
            o._creator = fn


# ---------------------------------------------------------------- PyTorch's ctx-style Function


class FunctionCtx:
    """The ``ctx`` a ctx-style ``Function`` gets in ``forward`` and ``backward``."""

    def __init__(self, needs_input_grad: tuple[bool, ...]) -> None:
        self.needs_input_grad = needs_input_grad
        self.materialize_grads = True
        self._saved: tuple = ()
        self._non_differentiable: set[int] = set()

    def save_for_backward(self, *tensors: Any) -> None:
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise GradError(f"save_for_backward can only save tensors (or None), got {type(t).__name__}; "
                                "keep other values as attributes of ctx")
        self._saved = tuple((t, None if t is None else t.array, None if t is None else t._version) for t in tensors)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        for t, array, version in self._saved:
            if t is not None and t.array is array and t._version != version:
                raise GradError(
                    f"one of the variables needed for gradient computation has been modified by an inplace "
                    f"operation: a tensor of shape {list(t.shape)} saved with save_for_backward is at version "
                    f"{t._version}; expected version {version} instead"
                )
        return tuple(t for t, _, _ in self._saved)

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def mark_dirty(self, *tensors: Tensor) -> None:
        """Declare inputs that forward modified in place (their version moves on)."""
        for t in tensors:
            t._version += 1

    def set_materialize_grads(self, value: bool) -> None:
        self.materialize_grads = bool(value)


class _CtxNode(Function):
    """The graph node of one call of a ctx-style Function: runs its static backward on Tensors."""

    def __init__(self, cls: type, ctx: FunctionCtx, positions: tuple[int, ...], n_outputs: int) -> None:
        self.cls, self.ctx, self.positions, self.n_outputs = cls, ctx, positions, n_outputs

    def backward(self, *gys: Any) -> Any:
        grads: list[Any] = [None] * self.n_outputs
        for pos, g in zip(self.positions, gys):
            grads[pos] = Tensor._make(g)
        with no_grad():
            result = self.cls.backward(self.ctx, *grads)
        result = result if isinstance(result, tuple) else (result,)
        if len(result) > len(self.inputs) and all(r is None for r in result[len(self.inputs):]):
            result = result[: len(self.inputs)]  # torch allows trailing Nones
        if len(result) != len(self.inputs):
            raise GradError(f"function {self.cls.__name__}Backward returned an incorrect number of gradients "
                            f"(expected {len(self.inputs)}, got {len(result)}): one per input of forward")
        out = []
        for r, x in zip(result, self.inputs):
            if r is None or not isinstance(x, Tensor):
                out.append(None)
            elif isinstance(r, Tensor):
                out.append(r.array)
            else:
                raise GradError(f"{self.cls.__name__}.backward returned a {type(r).__name__} as a gradient; "
                                "return a Tensor or None for each input of forward")
        return tuple(out)

    def __repr__(self) -> str:
        return f"<{self.cls.__name__}Backward>"


def _apply_ctx(cls: type, args: tuple) -> Any:
    record = is_grad_enabled() and any(isinstance(a, Tensor) and a.requires_grad for a in args)
    ctx = FunctionCtx(tuple(record and isinstance(a, Tensor) and a.requires_grad for a in args))
    with no_grad():
        result = cls.forward(ctx, *args)
    single = not isinstance(result, tuple)
    outs = list((result,) if single else result)
    if record:
        # an input returned as it is becomes a new tensor (the node's output), as PyTorch makes a view
        for i, o in enumerate(outs):
            if isinstance(o, Tensor) and any(o is a for a in args):
                outs[i] = Tensor._make(o.array)
        positions = tuple(i for i, o in enumerate(outs) if isinstance(o, Tensor))
        node = _CtxNode(cls, ctx, positions, len(outs))
        node.needs_input_grad = ctx.needs_input_grad
        node._saved = ()
        _connect(node, args, tuple(outs[i] for i in positions),
                 differentiable=lambda o: id(o) not in ctx._non_differentiable)
    return outs[0] if single else tuple(outs)


def once_differentiable(fn: Callable) -> Callable:
    """PyTorch's decorator for a backward that is not itself differentiable; hubkit's autograd is
    first-order, so every backward already is."""
    return fn


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


def _topological_order(roots: list[Function]) -> list[Function]:
    """Functions reachable from ``roots``, each after every function that consumes its outputs.

    Iterative depth-first post-order (no recursion limit); a function is marked when it is
    expanded, not when it is pushed, so a shared input is finished before its consumers.
    """
    order: list[Function] = []
    visited: set[int] = set()
    stack: list[tuple[Function, bool]] = [(fn, False) for fn in reversed(roots)]
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


def _seed(root: Tensor, gradient: Any) -> Any:
    if not root.requires_grad:
        raise GradError(
            "element 0 of tensors does not require grad and does not have a grad_fn: "
            "create the inputs with requires_grad=True (and not under no_grad()) before computing"
        )
    if gradient is None:
        if root.array.size != 1:
            raise GradError(
                f"grad can be implicitly created only for scalar outputs, but the output has shape "
                f"{tuple(root.shape)}: pass gradient= with that shape to backward()"
            )
        return root._xp.ones_like(root.array)
    g0 = gradient.array if isinstance(gradient, Tensor) else root._xp.asarray(gradient, dtype=root.array.dtype)
    if g0.shape != root.array.shape:
        raise GradError(f"backward: gradient has shape {g0.shape} but the output has shape {root.array.shape}")
    return g0.copy()


def _run_hooks(t: Tensor, g: Any) -> Any:
    for hook in list(t._hooks.values()):
        result = hook(Tensor._make(g))
        if result is not None:
            g = result.array if isinstance(result, Tensor) else result
    return g


_anomaly = threading.local()


class detect_anomaly:  # noqa: N801
    """``with hubkit.autograd.detect_anomaly():`` — backward raises at the first op whose gradient has a NaN."""

    def __init__(self, check_nan: bool = True) -> None:
        self._check = bool(check_nan)

    def __enter__(self) -> None:
        self._prev = is_anomaly_enabled()
        _anomaly.on = self._check

    def __exit__(self, *exc: object) -> None:
        _anomaly.on = self._prev


def set_detect_anomaly(mode: bool) -> None:
    _anomaly.on = bool(mode)


def is_anomaly_enabled() -> bool:
    return getattr(_anomaly, "on", False)


def _run_backward(roots: list[tuple[Tensor, Any]], retain_graph: bool,
                  capture: dict[int, Tensor] | None = None) -> dict[int, Any]:
    """Propagate the seeds ``[(output, gradient array)]`` back through the graph.

    Without ``capture`` the leaves' gradients are accumulated into their ``.grad``. With it
    (``{id(tensor): tensor}``, as ``autograd.grad`` asks) nothing is accumulated and the
    gradients of those tensors are returned by id instead.
    """
    captured: dict[int, Any] = {}
    grads: dict[tuple[int, int], Any] = {}  # gradients of non-leaf values, keyed by (id(creator), output index)
    leaf_grads: dict[int, tuple[Tensor, Any]] = {}
    root_fns = []
    for root, g0 in roots:
        if root._creator is None:  # backward on a leaf: its gradient is the seed itself
            prev = leaf_grads.get(id(root))
            leaf_grads[id(root)] = (root, g0 if prev is None else prev[1] + g0)
            continue
        fn, index = _node_of(root)
        key = (id(fn), index)
        grads[key] = g0 if key not in grads else grads[key] + g0
        root_fns.append(fn)
    handed_out: dict[int, int] = {}
    xp = roots[0][0]._xp
    anomaly = is_anomaly_enabled()
    order = _topological_order(root_fns) if root_fns else []
    # Leaves with post-accumulate hooks are finished as soon as their last contribution arrives (torch runs
    # a leaf's AccumulateGrad node then), so DistributedDataParallel can communicate during the rest of backward.
    pending = _pending_contributions(order) if capture is None and _post_accumulate_hooks_used else {}
    for fn in order:
        outputs = fn.outputs
        if len(outputs) == 1:  # most functions: no lists to build
            g = grads.pop((id(fn), 0), None)
            if g is None:
                if pending:
                    _finish_ready_leaves(fn, pending, leaf_grads, handed_out)
                continue
            out = outputs[0]()
            if out is not None and out._creator is fn:
                if out._hooks:
                    g = _run_hooks(out, g)
                if capture is not None and id(out) in capture:
                    captured[id(out)] = g
                if out._retain_grad:
                    out.grad = Tensor._make(g.copy())
            fn._check_saved()
            gxs = fn.backward(g)
        else:
            gys = [grads.pop((id(fn), i), None) for i in range(len(outputs))]
            for i, (ref, g) in enumerate(zip(outputs, gys)):
                out = ref()
                if g is None or out is None or out._creator is not fn:
                    continue
                if out._hooks:
                    g = gys[i] = _run_hooks(out, g)
                if capture is not None and id(out) in capture:
                    captured[id(out)] = g
                if out._retain_grad:
                    out.grad = Tensor._make(g.copy())
            missing = [g is None for g in gys]
            if False not in missing:
                if pending:
                    _finish_ready_leaves(fn, pending, leaf_grads, handed_out)
                continue
            fn._check_saved()
            if True in missing:
                gys = [xp.zeros(*fn._out_meta(i)) if g is None else g for i, g in enumerate(gys)]
            gxs = fn.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        if len(gxs) != len(fn.inputs):
            raise GradError(f"{type(fn).__name__}.backward returned {len(gxs)} gradients for {len(fn.inputs)} inputs")
        if anomaly:
            _check_finite(fn, gxs)
        for x, parent, gx, needed, meta in zip(fn.inputs, fn.parents, gxs, fn.needs_input_grad, fn._in_meta):
            if not needed or gx is None:
                continue
            shape, dtype = meta
            if gx.shape != shape:
                gx = _sum_to(gx, shape)
            if gx.dtype != dtype:
                gx = gx.astype(dtype)
            handed_out[id(gx)] = handed_out.get(id(gx), 0) + 1
            if parent is None:
                prev = leaf_grads.get(id(x))
                leaf_grads[id(x)] = (x, gx if prev is None else prev[1] + gx)
            else:
                key = (id(parent[0]), parent[1])
                prev = grads.get(key)
                grads[key] = gx if prev is None else prev + gx
        if pending:
            _finish_ready_leaves(fn, pending, leaf_grads, handed_out)
        if not retain_graph:
            fn.inputs = fn.parents = None
            fn._free()
    for x, g in leaf_grads.values():
        if capture is not None:
            if x._hooks:
                g = _run_hooks(x, g)
            if id(x) in capture:
                captured[id(x)] = g
            continue
        _finish_leaf(x, g, handed_out)
    return captured


# set by the first register_post_accumulate_grad_hook: until then backward skips the scan for hooked leaves
_post_accumulate_hooks_used = False


def _note_post_accumulate_hook() -> None:
    global _post_accumulate_hooks_used
    _post_accumulate_hooks_used = True


def _pending_contributions(order: list[Function]) -> dict[int, int]:
    """For each leaf with post-accumulate hooks, how many gradient contributions ``order`` will send it."""
    pending: dict[int, int] = {}
    for fn in order:
        for x, parent, needed in zip(fn.inputs, fn.parents, fn.needs_input_grad):
            if needed and parent is None and x._post_accumulate_hooks:
                pending[id(x)] = pending.get(id(x), 0) + 1
    return pending


def _finish_ready_leaves(fn: Function, pending: dict[int, int], leaf_grads: dict[int, tuple[Tensor, Any]],
                         handed_out: dict[int, int]) -> None:
    """Count ``fn``'s contributions off; a hooked leaf whose last one this was is accumulated now."""
    for x, parent, needed in zip(fn.inputs, fn.parents, fn.needs_input_grad):
        if not needed or parent is not None or id(x) not in pending:
            continue
        pending[id(x)] -= 1
        if pending[id(x)] == 0:
            del pending[id(x)]
            entry = leaf_grads.pop(id(x), None)
            if entry is not None:
                _finish_leaf(x, entry[1], handed_out)


def _finish_leaf(x: Tensor, g: Any, handed_out: dict[int, int]) -> None:
    """Run the leaf's hooks, accumulate its gradient into ``.grad``, then run its post-accumulate hooks."""
    if x._hooks:
        g = _run_hooks(x, g)
    owned = g.base is None and handed_out.get(id(g), 0) <= 1
    _accumulate_leaf(x, g, owned=owned)
    if x._post_accumulate_hooks:
        for hook in list(x._post_accumulate_hooks.values()):
            hook(x)


def _check_finite(fn: Function, gxs: tuple) -> None:
    for i, g in enumerate(gxs):
        if g is not None and bool(get_array_module(g).isnan(g).any()):
            raise GradError(f"Function '{type(fn).__name__}Backward' returned nan values in its {i}th output "
                            "(found by detect_anomaly)")


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False, inputs: Any = None) -> None:
    """Accumulate d(tensors)/d(leaf) into ``leaf.grad`` for every leaf that requires grad.

    ``tensors`` is one output or a sequence of them (their gradients add up); ``grad_tensors``
    the matching seeds (``None`` for a scalar output).
    """
    if create_graph:
        raise GradError(_NO_HIGHER_ORDER)
    if inputs is not None:
        raise GradError("backward(inputs=...) is not supported by hubkit: use hubkit.autograd.grad(outputs, inputs)")
    outs = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    seeds = [grad_tensors] if isinstance(tensors, Tensor) else (
        [None] * len(outs) if grad_tensors is None else list(grad_tensors))
    _run_backward([(t, _seed(t, g)) for t, g in zip(outs, seeds)], bool(retain_graph))


_NO_HIGHER_ORDER = ("create_graph=True (double backward, higher-order gradients) is not supported by hubkit: "
                    "its autograd is first-order")


def _accumulate_leaf(x: Tensor, g: Any, owned: bool) -> None:
    if x.grad is None:
        x._grad = Tensor._make(g if owned else g.copy())
    else:
        x._grad.array += g


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool | None = None, materialize_grads: bool = False,
         is_grads_batched: bool = False) -> tuple[Tensor | None, ...]:
    """d(outputs)/d(inputs) as a tuple, without touching any ``.grad`` (PyTorch's ``autograd.grad``).

    ``inputs`` may be leaves or intermediate values. An input the outputs do not depend on is an
    error unless ``allow_unused=True`` (then its gradient is None, or zeros with ``materialize_grads``).
    """
    if create_graph:
        raise GradError(_NO_HIGHER_ORDER)
    if is_grads_batched:
        raise GradError("autograd.grad(is_grads_batched=True) is not supported by hubkit; loop over the seeds")
    single_input = isinstance(inputs, Tensor)
    ins = [inputs] if single_input else list(inputs)
    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    seeds = [grad_outputs] if isinstance(outputs, Tensor) else (
        [None] * len(outs) if grad_outputs is None else list(grad_outputs))
    for t in ins:
        if not t.requires_grad:
            raise GradError("one of the differentiated Tensors does not require grad")
    captured = _run_backward([(t, _seed(t, g)) for t, g in zip(outs, seeds)], bool(retain_graph),
                             capture={id(t): t for t in ins})
    result = []
    for t in ins:
        g = captured.get(id(t))
        if g is None:
            if not (allow_unused or materialize_grads):
                raise GradError("one of the differentiated Tensors appears to not have been used in the graph; "
                                "set allow_unused=True if this is what you want")
            result.append(Tensor._make(t._xp.zeros_like(t.array)) if materialize_grads else None)
        else:
            result.append(Tensor._make(g.copy() if g.base is not None else g))
    return tuple(result)


from hubkit.tensor import Tensor  # noqa: E402  (tensor.py imports this module at its end)
