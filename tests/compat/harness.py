"""Run a PyTorch program under hubkit with only its imports rewritten, and (for parity) under torch.

    from harness import run_program
    result = run_program("mnist_cnn", ["--epochs", "1"], framework="hubkit", workdir=tmp_path)
    result.losses        # every number printed after the word "loss" (case-insensitive), in order

Each program in ``programs/`` is plain torch code. ``rewrite_imports`` points its import lines at
hubkit (``import torch`` -> ``import hubkit as torch``, ``torchvision`` -> hubkit's modules) and
changes nothing else.

For a parity run the two frameworks must start from the same weights and draw the same random
numbers. ``same_start`` does both without touching the program: the torch run records the
state_dict of each top-level module at its first forward call (before any optimizer step), and
the hubkit run loads them at the same moments; ``shared_randomness`` routes the randomness the
programs use at run time (dropout masks, ``randn``/``rand``/``randint``/``randperm``/``*_like``,
the shuffling sampler) to one numpy stream per run, identical for both frameworks.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PROGRAMS = Path(__file__).parent / "programs"

_IMPORT = re.compile(r"^(?P<indent>\s*)(?P<kind>import|from)\s+(?P<module>torchvision|torch)(?P<rest>\b.*)$")


def rewrite_imports(source: str) -> str:
    """The same program with its ``torch``/``torchvision`` imports pointed at hubkit; nothing else changes."""
    out = []
    for line in source.splitlines():
        m = _IMPORT.match(line)
        if m is None:
            out.append(line)
            continue
        indent, kind, module, rest = m["indent"], m["kind"], m["module"], m["rest"]
        if kind == "import" and not rest.startswith(".") and " as " not in rest:
            out.append(f"{indent}import hubkit as {module}{rest}")  # import torch / import torchvision
        else:
            out.append(f"{indent}{kind} hubkit{rest}")  # torch.nn -> hubkit.nn, torchvision.utils -> hubkit.utils
    return "\n".join(out) + "\n"


def load_program(name: str, framework: str) -> types.ModuleType:
    source = (PROGRAMS / f"{name}.py").read_text()
    if framework == "hubkit":
        source = rewrite_imports(source)
    module = types.ModuleType(f"compat_{name}_{framework}")
    module.__file__ = str(PROGRAMS / f"{name}.py")
    exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102  (our own test programs)
    return module


# "loss" (or "Loss_D", "losses"), then the first number after it on the line
_LOSS = re.compile(r"loss\w*[^0-9+\-\n\w]*([-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?)", re.IGNORECASE)


@dataclass
class Run:
    output: str
    losses: list[float] = field(default_factory=list)


def run_program(name: str, argv: list[str], framework: str, workdir: Path) -> Run:
    """Run ``programs/<name>.py``'s ``main(argv)`` in ``workdir`` and collect what it printed."""
    module = load_program(name, framework)
    buffer = io.StringIO()
    old = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(buffer):
            module.main(argv)
    finally:
        os.chdir(old)
    text = buffer.getvalue()
    return Run(text, [float(v) for v in _LOSS.findall(text)])


# ---------------------------------------------------------------- parity: same start, same randomness


def _frameworks(framework: str) -> tuple[Any, Any, Any]:
    """(top-level module, nn.functional, the RandomSampler class) of a framework."""
    if framework == "torch":
        import torch
        import torch.nn.functional as F
        from torch.utils.data import RandomSampler

        return torch, F, RandomSampler
    import hubkit
    import hubkit.nn.functional as F
    from hubkit.data import RandomSampler

    return hubkit, F, RandomSampler


class _Stream:
    """One numpy generator both frameworks draw from, so a parity pair sees the same numbers."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def array(self, kind: str, shape: tuple[int, ...], **kw: Any) -> np.ndarray:
        if kind == "randn":
            return self.rng.standard_normal(shape)
        if kind == "rand":
            return self.rng.random(shape)
        if kind == "randint":
            return self.rng.integers(kw["low"], kw["high"], size=shape)
        raise ValueError(kind)


def _shape(args: tuple) -> tuple[int, ...]:
    if len(args) == 1 and isinstance(args[0], (tuple, list)):
        args = tuple(args[0])
    return tuple(int(a) for a in args)


@contextlib.contextmanager
def shared_randomness(framework: str, seed: int = 0) -> Iterator[None]:
    """Route the run-time randomness of ``framework`` to a numpy stream seeded with ``seed``."""
    top, F, sampler = _frameworks(framework)
    stream = _Stream(seed)
    float_default = top.get_default_dtype()

    def make(values: np.ndarray, dtype: Any, device: Any, requires_grad: bool = False) -> Any:
        t = top.tensor(values, dtype=dtype or float_default, device=device)
        return t.requires_grad_(True) if requires_grad else t

    def randn(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any) -> Any:
        return make(stream.array("randn", _shape(size)), dtype, device, requires_grad)

    def rand(*size: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **_: Any) -> Any:
        return make(stream.array("rand", _shape(size)), dtype, device, requires_grad)

    def randn_like(t: Any, dtype: Any = None, **_: Any) -> Any:
        return make(stream.array("randn", tuple(t.shape)), dtype or t.dtype, t.device)

    def rand_like(t: Any, dtype: Any = None, **_: Any) -> Any:
        return make(stream.array("rand", tuple(t.shape)), dtype or t.dtype, t.device)

    def randint(low: int, high: Any = None, size: Any = (), dtype: Any = None, device: Any = None, **_: Any) -> Any:
        if high is None or isinstance(high, (tuple, list)):
            low, high, size = 0, low, high if high is not None else size
        values = stream.array("randint", tuple(size), low=low, high=high)
        return top.tensor(values, dtype=dtype or top.int64, device=device)

    def randperm(n: int, dtype: Any = None, device: Any = None, **_: Any) -> Any:
        return top.tensor(stream.rng.permutation(n), dtype=dtype or top.int64, device=device)

    def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:  # noqa: A002
        return _masked(input, p, training, tuple(input.shape))

    def dropout2d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:  # noqa: A002
        return _masked(input, p, training, tuple(input.shape[:2]) + (1,) * (input.ndim - 2))

    def _masked(input: Any, p: float, training: bool, mask_shape: tuple[int, ...]) -> Any:  # noqa: A002
        if not training or p == 0:
            return input
        keep = stream.array("rand", mask_shape) >= p
        return input * top.tensor(keep / (1 - p), dtype=input.dtype, device=input.device)

    def sdpa(query: Any, key: Any, value: Any, attn_mask: Any = None, dropout_p: float = 0.0, is_causal: bool = False,
             scale: float | None = None, **_: Any) -> Any:
        """Attention written out, so its dropout draws from the shared stream (torch's fused kernel would not)."""
        scores = (query @ key.transpose(-2, -1)) * (scale if scale is not None else query.shape[-1] ** -0.5)
        if is_causal:
            keep = top.ones(scores.shape[-2], scores.shape[-1], dtype=top.bool).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        if attn_mask is not None and attn_mask.dtype == top.bool:
            scores = scores.masked_fill(~attn_mask, float("-inf"))
        elif attn_mask is not None:
            scores = scores + attn_mask
        weights = top.softmax(scores, dim=-1)
        if dropout_p > 0:
            weights = _masked(weights, dropout_p, True, tuple(weights.shape))
        return weights @ value

    def sampler_iter(self: Any) -> Iterator[int]:
        yield from stream.rng.permutation(len(self.data_source)).tolist()

    replaced = [(top, "randn", randn), (top, "rand", rand), (top, "randn_like", randn_like),
                (top, "rand_like", rand_like), (top, "randint", randint), (top, "randperm", randperm),
                (F, "dropout", dropout), (F, "dropout2d", dropout2d), (F, "scaled_dot_product_attention", sdpa),
                (sampler, "__iter__", sampler_iter)]
    saved = [(owner, name, owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name))
             for owner, name, _ in replaced]
    try:
        for owner, name, fn in replaced:
            setattr(owner, name, fn)
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


class same_start:  # noqa: N801
    """Record (torch run) or impose (hubkit run) the weights each top-level module starts from.

    A module is top-level when it is called from outside any other module's forward; it is
    captured or loaded at its first such call, the n-th module to be first called getting the
    n-th state. Modules without state (losses, and torchvision transforms, which are Modules in
    torch but not in hubkit) are passed over. Wrapping ``Module.__call__`` is the one seam: the
    program itself is untouched.
    """

    def __init__(self, framework: str, states: list[dict[str, np.ndarray]] | None = None) -> None:
        self.framework = framework
        self.states: list[dict[str, np.ndarray]] = [] if states is None else states
        self._seen: set[int] = set()
        # The seen modules stay referenced: a freed module's id can be reused by the next model a program builds
        # (nn_tutorial builds three), which would then be skipped on one side only.
        self._kept: list[Any] = []
        self._depth = 0
        self._loaded = 0

    def __enter__(self) -> same_start:
        top, _, _ = _frameworks(self.framework)
        self._cls = top.nn.Module
        self._call = self._cls.__call__
        original, harness = self._call, self

        def call(module: Any, *args: Any, **kwargs: Any) -> Any:
            if harness._depth == 0 and id(module) not in harness._seen:
                harness._seen.add(id(module))
                harness._kept.append(module)
                harness._first_call(module)
            harness._depth += 1
            try:
                return original(module, *args, **kwargs)
            finally:
                harness._depth -= 1

        self._cls.__call__ = call
        return self

    def __exit__(self, *exc: object) -> None:
        self._cls.__call__ = self._call

    def _first_call(self, module: Any) -> None:
        state = module.state_dict()
        if not state:
            return
        if self.framework == "torch":
            self.states.append({k: v.detach().cpu().numpy().copy() for k, v in state.items()})
            return
        index = self._loaded
        self._loaded += 1
        if index >= len(self.states):
            raise AssertionError(f"the hubkit run called more top-level modules ({index + 1}) than torch's")
        import hubkit

        module.load_state_dict({k: hubkit.tensor(v) for k, v in self.states[index].items()})


def run_parity(name: str, argvs: tuple[list[str], list[str]], workdirs: tuple[Path, Path],
               seed: int = 0) -> tuple[Run, Run]:
    """Run a program under torch, then under hubkit from the same weights and randomness.

    ``argvs`` and ``workdirs`` are (hubkit's, torch's): each framework reads its own copy of the data.
    Returns (hubkit's run, torch's run).
    """
    states: list[dict[str, np.ndarray]] = []
    with same_start("torch", states), shared_randomness("torch", seed):
        theirs = run_program(name, argvs[1], "torch", workdirs[1])
    with same_start("hubkit", states), shared_randomness("hubkit", seed):
        ours = run_program(name, argvs[0], "hubkit", workdirs[0])
    return ours, theirs
