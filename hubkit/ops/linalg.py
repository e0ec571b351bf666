"""Matrix products and BLAS/LAPACK-style ops: matmul (batched, broadcasting), mm, bmm, linear, the
add* fused forms (addmm, addmv, addr, addbmm, baddbmm), dot/inner/outer, tensordot, multi_dot, einsum,
matrix_power, and inverse/det/slogdet/logdet and the nuclear norm (numpy/cupy linalg underneath).
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np

from hubkit._backend import get_array_module
from hubkit.autograd import Function
from hubkit.errors import DTypeError, LinAlgError, ShapeError
from hubkit.tensor import Tensor


def _product(a: Any, b: Any, bias: Any = None) -> Any:
    """``a @ b`` (``+ bias`` on every row when given); numpy products go through hubkit's kernel threads
    (``kernels.matmul``), which own the cores by default instead of numpy's BLAS."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        from hubkit.kernels import matmul

        return matmul(a, b, bias)
    y = a @ b
    if bias is not None:
        y += bias
    return y


class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a = a if self.needs_input_grad[1] else None
        self.b = b if self.needs_input_grad[0] else None
        self.a_1d, self.b_1d = a.ndim == 1, b.ndim == 1
        return _product(a, b)

    def backward(self, gy: Any) -> tuple[Any, Any]:
        xp = get_array_module(gy)
        if self.a_1d and self.b_1d:  # a dot product: gy is 0-d
            return (gy * self.b if self.needs_input_grad[0] else None,
                    gy * self.a if self.needs_input_grad[1] else None)
        # lift 1-d operands to matrices so one rule covers every case
        if self.a_1d:
            gy = xp.expand_dims(gy, -2)
        if self.b_1d:
            gy = xp.expand_dims(gy, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            b = self.b[:, None] if self.b_1d else self.b
            ga = _product(gy, xp.swapaxes(b, -1, -2))
            if self.a_1d:
                ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]) if ga.ndim > 2 else ga[0]
        if self.needs_input_grad[1]:
            a = self.a[None, :] if self.a_1d else self.a
            gb = _product(xp.swapaxes(a, -1, -2), gy)
            if self.b_1d:
                gb = gb[..., 0]
        return ga, gb


def _check(op: str, a: Tensor, b: Tensor) -> None:
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"{op}: both arguments need at least 1 dim, got shapes {tuple(a.shape)} and {tuple(b.shape)}")
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ShapeError(f"{op}: {tuple(a.shape)} @ {tuple(b.shape)}: inner dims {k_a} and {k_b} differ")
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    for x, y in zip(reversed(batch_a), reversed(batch_b)):
        if x != y and x != 1 and y != 1:
            raise ShapeError(
                f"{op}: {tuple(a.shape)} @ {tuple(b.shape)}: batch dims {tuple(batch_a)} and {tuple(batch_b)} "
                "cannot be broadcast"
            )


def matmul(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """Matrix product with numpy's rules: 1-d operands are vectors, leading dims broadcast.

    ``(..., n, k) @ (..., k, m) -> (..., n, m)``
    """
    from hubkit.ops.elementwise import as_operands

    a, b = as_operands(input, other, "matmul")
    _check("matmul", a, b)
    return MatMul()(a, b)


def mm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """``(n, k) @ (k, m) -> (n, m)``; both must be 2-d."""
    if input.ndim != 2 or mat2.ndim != 2:
        raise ShapeError(f"mm: expects two 2-d tensors, got shapes {tuple(input.shape)} and {tuple(mat2.shape)}")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:  # noqa: A002
    """``(b, n, k) @ (b, k, m) -> (b, n, m)``; no broadcasting."""
    if input.ndim != 3 or mat2.ndim != 3 or input.shape[0] != mat2.shape[0]:
        raise ShapeError(
            f"bmm: expects two 3-d tensors with the same batch size, got {tuple(input.shape)} and {tuple(mat2.shape)}"
        )
    return matmul(input, mat2)


class Linear(Function):
    """``y = x @ W.T + b`` in one node: saves a transpose and a broadcast add in the graph."""

    def forward(self, x: Any, w: Any, b: Any) -> Any:
        self.x = x if self.needs_input_grad[1] else None
        self.w = w if self.needs_input_grad[0] else None
        # (*, in) as one 2-d GEMM: numpy would loop a GEMM per leading index, cupy would copy w.T per call
        y = _product(x.reshape(-1, x.shape[-1]), w.T, b).reshape(*x.shape[:-1], w.shape[0])
        return y

    def backward(self, gy: Any) -> tuple[Any, Any, Any]:
        gx = None
        if self.needs_input_grad[0]:
            gx = _product(gy.reshape(-1, gy.shape[-1]), self.w).reshape(*gy.shape[:-1], self.w.shape[1])
        gw = gb = None
        if self.needs_input_grad[1]:
            x2 = self.x.reshape(-1, self.x.shape[-1])
            gw = _product(gy.reshape(-1, gy.shape[-1]).T, x2)
        if self.needs_input_grad[2]:
            gb = gy.reshape(-1, gy.shape[-1]).sum(axis=0)
        return gx, gw, gb


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:  # noqa: A002
    """``input: (*, in_features)``, ``weight: (out_features, in_features)``, ``bias: (out_features,)``
    -> ``(*, out_features)``.
    """
    if input.ndim == 0 or weight.ndim != 2 or input.shape[-1] != weight.shape[1]:
        raise ShapeError(
            f"linear: input {tuple(input.shape)} @ weight.T {tuple(weight.shape[::-1])}: "
            f"inner dims {input.shape[-1] if input.ndim else None} and {weight.shape[1] if weight.ndim == 2 else None} "
            "differ (weight must be (out_features, in_features))"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ShapeError(f"linear: bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
    if input.dtype != weight.dtype:
        raise DTypeError(
            f"linear: input dtype {input.dtype} and weight dtype {weight.dtype} differ; cast one with .to()"
        )
    return Linear()(input, weight, bias)


# ---------------------------------------------------------------- products built on matmul


def _scaled(t: Tensor, factor: Any) -> Tensor:
    from hubkit.ops.elementwise import mul

    return t if factor == 1 else mul(t, factor)


def _add_scaled(op: str, input: Tensor, product: Tensor, beta: Any, alpha: Any) -> Tensor:
    """``beta * input + alpha * product``; with ``beta == 0`` input is ignored (its NaNs too), as in PyTorch."""
    from hubkit.ops.elementwise import _broadcast_check, add
    from hubkit.ops.shape import expand

    product = _scaled(product, alpha)
    _broadcast_check(op, input, product)
    if beta == 0:
        shape = tuple(np.broadcast_shapes(input.shape, product.shape))
        return product if product.shape == shape else expand(product, *shape)
    return add(_scaled(input, beta), product)


def addmm(input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat1 @ mat2)``: ``(n, k) @ (k, m)``, ``input`` broadcastable to ``(n, m)``."""
    return _add_scaled("addmm", input, mm(mat1, mat2), beta, alpha)


def mv(input: Tensor, vec: Tensor) -> Tensor:  # noqa: A002
    """``(n, m) @ (m,) -> (n,)``."""
    if input.ndim != 2 or vec.ndim != 1:
        raise ShapeError(f"mv: expects a 2-d matrix and a 1-d vector, got {tuple(input.shape)} and {tuple(vec.shape)}")
    return matmul(input, vec)


def addmv(input: Tensor, mat: Tensor, vec: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * (mat @ vec)``."""
    return _add_scaled("addmv", input, mv(mat, vec), beta, alpha)


def outer(input: Tensor, vec2: Tensor) -> Tensor:  # noqa: A002
    """``(n,) x (m,) -> (n, m)`` with entry (i, j) = input[i] * vec2[j]."""
    from hubkit.ops.elementwise import mul

    if input.ndim != 1 or vec2.ndim != 1:
        raise ShapeError(f"outer: expects two 1-d tensors, got {tuple(input.shape)} and {tuple(vec2.shape)}")
    return mul(input.reshape(-1, 1), vec2.reshape(1, -1))


ger = outer


def addr(input: Tensor, vec1: Tensor, vec2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * outer(vec1, vec2)``."""
    return _add_scaled("addr", input, outer(vec1, vec2), beta, alpha)


def baddbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * bmm(batch1, batch2)``: ``(b, n, k) @ (b, k, m)``."""
    return _add_scaled("baddbmm", input, bmm(batch1, batch2), beta, alpha)


def addbmm(input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Any = 1, alpha: Any = 1) -> Tensor:  # noqa: A002
    """``beta * input + alpha * sum_b batch1[b] @ batch2[b]``: the batch of products summed to one ``(n, m)``."""
    from hubkit.ops.reduction import sum

    return _add_scaled("addbmm", input, sum(bmm(batch1, batch2), 0), beta, alpha)


def dot(input: Tensor, tensor: Tensor) -> Tensor:  # noqa: A002
    """The inner product of two 1-d tensors of the same length and dtype (a 0-d tensor)."""
    if input.ndim != 1 or tensor.ndim != 1 or input.shape != tensor.shape:
        raise ShapeError(f"dot: expects two 1-d tensors of the same length, got {tuple(input.shape)} and "
                         f"{tuple(tensor.shape)}")
    if input.dtype != tensor.dtype:
        raise DTypeError(f"dot: expected both tensors to have the same dtype, got {input.dtype} and {tensor.dtype}")
    return matmul(input, tensor)


vdot = dot  # the conjugate of a real tensor is itself


def tensordot(a: Tensor, b: Tensor, dims: Any = 2) -> Tensor:
    """Contract the last ``dims`` dims of ``a`` with the first ``dims`` of ``b`` (or the listed pairs).

    ``dims`` is an int or ``([dims of a], [dims of b])``; the result has a's free dims then b's.
    """
    from hubkit.ops.reduction import normalize_dims
    from hubkit.ops.shape import permute

    if isinstance(dims, int):
        if dims < 0 or dims > min(a.ndim, b.ndim):
            raise ShapeError(f"tensordot: dims={dims} does not fit shapes {tuple(a.shape)} and {tuple(b.shape)}")
        da, db = list(range(a.ndim - dims, a.ndim)), list(range(dims))
    else:
        da_raw, db_raw = dims
        da_raw = [da_raw] if isinstance(da_raw, int) else list(da_raw)
        db_raw = [db_raw] if isinstance(db_raw, int) else list(db_raw)
        da = [normalize_dims(d, a.ndim, "tensordot")[0] for d in da_raw]
        db = [normalize_dims(d, b.ndim, "tensordot")[0] for d in db_raw]
    if len(da) != len(db) or any(a.shape[i] != b.shape[j] for i, j in zip(da, db)):
        raise ShapeError(f"tensordot: contracted dims {da} of {tuple(a.shape)} and {db} of {tuple(b.shape)} differ")
    free_a = [i for i in range(a.ndim) if i not in da]
    free_b = [j for j in range(b.ndim) if j not in db]
    k = int(np.prod([a.shape[i] for i in da]))
    a2 = permute(a, *free_a, *da).reshape(-1, k)
    b2 = permute(b, *db, *free_b).reshape(k, -1)
    return matmul(a2, b2).reshape(*[a.shape[i] for i in free_a], *[b.shape[j] for j in free_b])


def inner(input: Tensor, other: Tensor) -> Tensor:  # noqa: A002
    """The sum of products over the last dim of both (a product when either is 0-d)."""
    from hubkit.ops.elementwise import mul

    if input.ndim == 0 or other.ndim == 0:
        return mul(input, other)
    return tensordot(input, other, ([-1], [-1]))


def chain_matmul(*matrices: Tensor) -> Tensor:
    """``m0 @ m1 @ ...`` of 2-d matrices, multiplied in the cheapest order."""
    return multi_dot(list(matrices[0]) if len(matrices) == 1 and isinstance(matrices[0], (list, tuple))
                     else list(matrices))


def multi_dot(tensors: list[Tensor]) -> Tensor:
    """The product of a chain of matrices (the first and last may be 1-d), in the order with fewest flops."""
    if not tensors:
        raise ShapeError("multi_dot: expected at least one tensor")
    if len(tensors) == 1:
        return tensors[0]
    first_1d, last_1d = tensors[0].ndim == 1, tensors[-1].ndim == 1
    ts = list(tensors)
    if first_1d:
        ts[0] = ts[0].reshape(1, -1)
    if last_1d:
        ts[-1] = ts[-1].reshape(-1, 1)
    for t in ts:
        if t.ndim != 2:
            raise ShapeError(f"multi_dot: expects 2-d matrices (1-d allowed first and last), got {tuple(t.shape)}")
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    n = len(ts)
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):  # the classic matrix-chain dynamic program
        for i in range(n - length):
            j = i + length
            cost[i][j] = -1
            for s in range(i, j):
                c = cost[i][s] + cost[s + 1][j] + dims[i] * dims[s + 1] * dims[j + 1]
                if cost[i][j] < 0 or c < cost[i][j]:
                    cost[i][j], split[i][j] = c, s

    def product(i: int, j: int) -> Tensor:
        if i == j:
            return ts[i]
        return matmul(product(i, split[i][j]), product(split[i][j] + 1, j))

    out = product(0, n - 1)
    if first_1d:
        out = out.reshape(*out.shape[1:])
    if last_1d:
        out = out.reshape(*out.shape[:-1])
    return out


def matrix_power(input: Tensor, n: int) -> Tensor:  # noqa: A002
    """``input`` multiplied by itself ``n`` times (square matrices, batched); n = 0 gives the identity and
    negative n the power of the inverse."""
    from hubkit.ops.shape import expand

    if input.ndim < 2 or input.shape[-1] != input.shape[-2]:
        raise ShapeError(f"matrix_power: expects square matrices (*, n, n), got {tuple(input.shape)}")
    if n == 0:
        eye = Tensor._make(input._xp.eye(input.shape[-1], dtype=input.dtype))
        return expand(eye, *input.shape).clone()
    base = inverse(input) if n < 0 else input
    n = abs(n)
    result = None
    while n:  # square-and-multiply
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return result


# ---------------------------------------------------------------- einsum


_EINSUM_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Einsum(Function):
    """``numpy.einsum`` over explicit subscripts (no ellipsis, no broadcasting: the caller expands).

    The gradient of operand k is an einsum of the output gradient with the other operands; letters
    summed only inside operand k are broadcast back and repeated letters (diagonals) are scattered.
    """

    def __init__(self, subscripts: list[str], output: str) -> None:
        self.subscripts, self.output = subscripts, output

    def forward(self, *xs: Any) -> Any:
        xp = get_array_module(xs[0])
        self.xs = xs
        eq = ",".join(self.subscripts) + "->" + self.output
        return xp.asarray(xp.einsum(eq, *xs, optimize=len(xs) > 2))

    def backward(self, gy: Any) -> tuple[Any, ...]:
        xp = get_array_module(gy)
        sizes = {c: n for subs, x in zip(self.subscripts, self.xs) for c, n in zip(subs, x.shape)}
        grads = []
        for k, (subs, needed) in enumerate(zip(self.subscripts, self.needs_input_grad)):
            if not needed:
                grads.append(None)
                continue
            others = [(s, x) for i, (s, x) in enumerate(zip(self.subscripts, self.xs)) if i != k]
            available = set(self.output).union(*(set(s) for s, _ in others))
            unique = list(dict.fromkeys(subs))
            reachable = "".join(c for c in unique if c in available)
            eq = ",".join([self.output] + [s for s, _ in others]) + "->" + reachable
            g = xp.einsum(eq, gy, *[x for _, x in others], optimize=len(others) > 1)
            # letters summed only within operand k: their gradient is the same along them
            for pos, c in enumerate(unique):
                if c not in available:
                    g = xp.expand_dims(g, pos)
            g = xp.broadcast_to(g, [sizes[c] for c in unique])
            if len(unique) != len(subs):  # repeated letters: the gradient lives on the diagonal
                gx = xp.zeros(self.xs[k].shape, dtype=gy.dtype)
                grid = {c: xp.arange(sizes[c]).reshape([-1 if i == j else 1 for j in range(len(unique))])
                        for i, c in enumerate(unique)}
                gx[tuple(grid[c] for c in subs)] = g
                g = gx
            grads.append(xp.ascontiguousarray(g))
        return tuple(grads)


def _parse_einsum(equation: str, operands: list[Tensor]) -> tuple[list[str], str, list[tuple[int, ...]]]:
    """Explicit subscripts for every operand and the output, with ``...`` replaced by fresh letters,
    and the shape each operand must be broadcast to."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ShapeError(f"einsum: the equation has {len(terms)} operands but {len(operands)} tensors were given")
    used = set(eq) - set(".,->")
    fresh = [c for c in _EINSUM_LETTERS if c not in used]
    bad = used - set(_EINSUM_LETTERS)
    if bad:
        raise ShapeError(f"einsum: subscripts must be letters, got {sorted(bad)} in {equation!r}")
    ell_rank = 0
    for term, x in zip(terms, operands):
        if "..." in term:
            ell_rank = max(ell_rank, x.ndim - len(term.replace("...", "")))
    ell = "".join(fresh[:ell_rank])
    inputs, targets = [], []
    for term, x in zip(terms, operands):
        if "..." in term:
            k = x.ndim - len(term.replace("...", ""))
            term = term.replace("...", ell[ell_rank - k:])
        if len(term) != x.ndim:
            raise ShapeError(f"einsum: subscripts {term!r} do not match an operand of shape {tuple(x.shape)}")
        inputs.append(term)
    sizes: dict[str, int] = {}
    for term, x in zip(inputs, operands):
        for c, n in zip(term, x.shape):
            if c in sizes and n != sizes[c] and 1 not in (n, sizes[c]):
                raise ShapeError(f"einsum: subscript {c!r} has size {sizes[c]} in one operand and {n} in another")
            sizes[c] = n if c not in sizes or sizes[c] == 1 else sizes[c]
    for term in inputs:
        targets.append(tuple(sizes[c] for c in term))
    if arrow:
        output = rhs.replace("...", ell)
    else:  # implicit output: the broadcast dims, then the letters used once, alphabetically
        counts = {c: "".join(inputs).count(c) for c in set("".join(inputs))}
        output = ell + "".join(sorted(c for c, n in counts.items() if n == 1 and c not in ell))
    return inputs, output, targets


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation: ``einsum("bij,bjk->bik", a, b)``; ``...`` broadcasts, operands may be a list."""
    from hubkit.ops.shape import _same_dtype, expand

    ops = list(operands[0]) if len(operands) == 1 and isinstance(operands[0], (list, tuple)) else list(operands)
    if not ops:
        raise ShapeError("einsum: expected at least one operand")
    ops = _same_dtype(ops, "einsum")
    inputs, output, targets = _parse_einsum(equation, ops)
    ops = [x if tuple(x.shape) == t else expand(x, *t) for x, t in zip(ops, targets)]
    return Einsum(inputs, output)(*ops)


# ---------------------------------------------------------------- inverse and determinants


def _square(op: str, a: Tensor) -> None:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ShapeError(f"{op}: expects square matrices (*, n, n), got shape {tuple(a.shape)}")
    if a.dtype.kind != "f":
        raise DTypeError(f"{op}: expects a floating-point tensor, got {a.dtype}")


def _mT(a: Any) -> Any:  # noqa: N802
    return get_array_module(a).swapaxes(a, -1, -2)


class Inverse(Function):
    def forward(self, a: Any) -> Any:
        xp = get_array_module(a)
        try:
            self.y = xp.linalg.inv(a)
        except np.linalg.LinAlgError:
            raise LinAlgError("inverse: a matrix is singular (not invertible); check its rank, or regularize it "
                              "(A + eps * I)") from None
        return self.y

    def backward(self, gy: Any) -> Any:
        yt = _mT(self.y)
        return -(yt @ gy @ yt)


def inverse(input: Tensor) -> Tensor:  # noqa: A002
    """The inverse of square matrices ``(*, n, n)``."""
    _square("inverse", input)
    return Inverse()(input)


def _adjugate_t(xp: Any, a: Any) -> Any:
    """The transposed adjugate (cofactor matrix) of each matrix, from its SVD, so singular ones work too:
    A = U S V^T gives adj(A)^T = det(U) det(V) U diag(prod_{j != i} s_j) V^T."""
    u, s, vt = xp.linalg.svd(a)
    n = s.shape[-1]
    others = xp.ones_like(s)
    for i in range(n):  # n is small: the product of all singular values but the i-th
        others[..., i] = xp.prod(xp.concatenate([s[..., :i], s[..., i + 1:]], axis=-1), axis=-1)
    sign = xp.linalg.det(u) * xp.linalg.det(vt)
    return sign[..., None, None] * (u * others[..., None, :]) @ vt


class Det(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return get_array_module(a).asarray(get_array_module(a).linalg.det(a))

    def backward(self, gy: Any) -> Any:
        return gy[..., None, None] * _adjugate_t(get_array_module(gy), self.a)


def det(input: Tensor) -> Tensor:  # noqa: A002
    """The determinants of square matrices ``(*, n, n) -> (*)``."""
    _square("det", input)
    return Det()(input)


class SlogDet(Function):
    def forward(self, a: Any) -> tuple[Any, Any]:
        xp = get_array_module(a)
        sign, logabs = xp.linalg.slogdet(a)
        self.a = a
        return xp.asarray(sign).astype(a.dtype), xp.asarray(logabs).astype(a.dtype)

    def backward(self, _gsign: Any, glog: Any) -> Any:
        xp = get_array_module(glog)
        with np.errstate(all="ignore"):
            return glog[..., None, None] * _mT(xp.linalg.inv(self.a))


SlogdetResult = namedtuple("slogdet", ["sign", "logabsdet"])


def slogdet(input: Tensor) -> Any:  # noqa: A002
    """``(sign, log|det|)`` of square matrices, without overflow; the gradient flows through log|det|."""
    _square("slogdet", input)
    return SlogdetResult(*SlogDet()(input))


def logdet(input: Tensor) -> Tensor:  # noqa: A002
    """``log(det(input))``: NaN for a negative determinant, -inf for a singular matrix."""
    from hubkit.ops.elementwise import where

    sign, logabs = slogdet(input)
    return where(sign.array < 0, float("nan"), logabs)


class NuclearNorm(Function):
    def forward(self, a: Any) -> Any:
        xp = get_array_module(a)
        u, s, vt = xp.linalg.svd(a, full_matrices=False)
        self.uv = u @ vt  # the gradient of the sum of singular values
        return s.sum(axis=-1)

    def backward(self, gy: Any) -> Any:
        return gy[..., None, None] * self.uv


def nuclear_norm(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A002
    """The sum of the singular values of the matrices in the two dims ``dim`` (the last two by default)."""
    from hubkit.ops.rearrange import movedim
    from hubkit.ops.reduction import normalize_dims

    dims = (-2, -1) if dim is None else tuple(dim)
    if len(dims) != 2:
        raise ShapeError(f"nuclear norm: dim must name two dims, got {dim}")
    a1, a2 = (normalize_dims(d, input.ndim, "norm")[0] for d in dims)
    x = movedim(input, (a1, a2), (-2, -1))
    out = NuclearNorm()(x)
    if keepdim:
        for a in sorted((a1, a2)):
            out = out.unsqueeze(a)
    return out
