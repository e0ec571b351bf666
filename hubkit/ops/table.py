"""The op table: every op that is a top-level function (``hubkit.sin``), a Tensor method
(``t.sin()``) or both, with its in-place variant (``t.sin_()``), in one place.

``hubkit/tensor.py`` binds ``OPERATORS``, ``METHODS`` and the in-place variants onto ``Tensor``
at its end; ``hubkit/__init__.py`` exports ``FUNCTIONS``. The list follows PyTorch's
documentation of ``torch`` and ``torch.Tensor``; names PyTorch has that hubkit does not are in
``hubkit.ops.unsupported`` and raise an error saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubkit.ops import (
    activation,
    creation,
    differences,
    indexing,
    layout,
    linalg,
    matrix,
    order,
    rearrange,
    reduction,
    shape,
    unsupported,
)
from hubkit.ops import comparison as cmp
from hubkit.ops import elementwise as ew
from hubkit.ops import pointwise as pw
from hubkit.tensor import Tensor


def _reflected(fn: Any) -> Any:
    return lambda self, other: fn(other, self)


def _floordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(self, other, rounding_mode="floor")


def _rfloordiv(self: Tensor, other: Any) -> Tensor:
    return ew.div(other, self, rounding_mode="floor")


def _iter(self: Tensor) -> Any:
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(shape.unbind(self, 0))


def _view_as(self: Tensor, other: Tensor) -> Tensor:
    return shape.reshape(self, *other.shape)


def _logical(name: str) -> Any:
    def op(input: Tensor, other: Any = None) -> Tensor:  # noqa: A002
        xp = input._xp
        if other is None:
            return Tensor._make(getattr(xp, name)(input.array))
        return Tensor._make(getattr(xp, name)(input.array, other.array if isinstance(other, Tensor) else other))

    op.__name__ = name
    return op


def _reduce_bool(name: str) -> Any:
    def op(input: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:  # noqa: A002
        axes = reduction.normalize_dims(dim, input.ndim, name)
        return Tensor._make(input._xp.asarray(getattr(input.array, name)(axis=axes, keepdims=keepdim)))

    op.__name__ = name
    return op


_bitwise_not = _logical("bitwise_not")
_bitwise_and = _logical("bitwise_and")
_bitwise_or = _logical("bitwise_or")
_bitwise_xor = _logical("bitwise_xor")

# Python operators on Tensor. The augmented ones (``a -= b``) are the in-place variants, bound by tensor.py.
OPERATORS: dict[str, Callable[..., Any]] = {
    "__add__": ew.add,
    "__radd__": _reflected(ew.add),
    "__sub__": ew.sub,
    "__rsub__": _reflected(ew.sub),
    "__mul__": ew.mul,
    "__rmul__": _reflected(ew.mul),
    "__truediv__": ew.div,
    "__rtruediv__": _reflected(ew.div),
    "__floordiv__": _floordiv,
    "__rfloordiv__": _rfloordiv,
    "__pow__": ew.pow,
    "__rpow__": _reflected(ew.pow),
    "__matmul__": linalg.matmul,
    "__rmatmul__": _reflected(linalg.matmul),
    "__neg__": ew.neg,
    "__abs__": ew.abs,
    "__invert__": _bitwise_not,
    "__and__": _bitwise_and,
    "__or__": _bitwise_or,
    "__xor__": _bitwise_xor,
    "__eq__": ew.eq,
    "__ne__": ew.ne,
    "__lt__": ew.lt,
    "__le__": ew.le,
    "__gt__": ew.gt,
    "__ge__": ew.ge,
    "__getitem__": shape.getitem,
    "__setitem__": shape.setitem,
    "__iter__": _iter,
    "__pos__": pw.positive,
    "__mod__": pw.remainder,
    "__rmod__": _reflected(pw.remainder),
    "__lshift__": pw.bitwise_left_shift,
    "__rlshift__": _reflected(pw.bitwise_left_shift),
    "__rshift__": pw.bitwise_right_shift,
    "__rrshift__": _reflected(pw.bitwise_right_shift),
}

AUGMENTED: dict[str, Callable[..., Any]] = {
    "__iadd__": ew.add,
    "__isub__": ew.sub,
    "__imul__": ew.mul,
    "__itruediv__": ew.div,
    "__ifloordiv__": _floordiv,
    "__ipow__": ew.pow,
    "__iand__": _bitwise_and,
    "__ior__": _bitwise_or,
    "__ixor__": _bitwise_xor,
    "__imod__": pw.remainder,
    "__ilshift__": pw.bitwise_left_shift,
    "__irshift__": pw.bitwise_right_shift,
}

# Where each op is bound: "f" a top-level function, "m" a Tensor method, "i" also an in-place method ``name_``,
# "r" an in-place method ``name_`` whose result may have another shape (t.squeeze_(), t.t_(), t.resize_(...)).
_TABLE: list[tuple[str, Callable[..., Any], str]] = [
    # arithmetic
    ("add", ew.add, "fmi"),
    ("sub", ew.sub, "fmi"),
    ("subtract", ew.sub, "fmi"),
    ("mul", ew.mul, "fmi"),
    ("multiply", ew.mul, "fmi"),
    ("div", ew.div, "fmi"),
    ("divide", ew.div, "fmi"),
    ("true_divide", ew.div, "fmi"),
    ("pow", ew.pow, "fmi"),
    ("neg", ew.neg, "fmi"),
    ("negative", ew.neg, "fmi"),
    ("maximum", ew.maximum, "fm"),
    ("minimum", ew.minimum, "fm"),
    ("where", indexing.where, "f"),
    ("where", indexing.where_method, "m"),
    # pointwise math
    ("abs", ew.abs, "fmi"),
    ("absolute", ew.abs, "fmi"),
    ("exp", ew.exp, "fmi"),
    ("log", ew.log, "fmi"),
    ("sqrt", ew.sqrt, "fmi"),
    ("erf", ew.erf, "fmi"),
    ("clamp", ew.clamp, "fmi"),
    ("clip", ew.clamp, "fmi"),
    ("relu", activation.relu, "fmi"),
    ("sigmoid", activation.sigmoid, "fmi"),
    ("tanh", activation.tanh, "fmi"),
    ("softmax", activation.softmax, "fm"),
    ("log_softmax", activation.log_softmax, "fm"),
    # comparison
    ("eq", ew.eq, "fmi"),
    ("ne", ew.ne, "fmi"),
    ("lt", ew.lt, "fmi"),
    ("le", ew.le, "fmi"),
    ("gt", ew.gt, "fmi"),
    ("ge", ew.ge, "fmi"),
    ("logical_not", _logical("logical_not"), "fmi"),
    ("logical_and", _logical("logical_and"), "fmi"),
    ("logical_or", _logical("logical_or"), "fmi"),
    ("logical_xor", _logical("logical_xor"), "fmi"),
    ("bitwise_not", _bitwise_not, "fmi"),
    ("bitwise_and", _bitwise_and, "fmi"),
    ("bitwise_or", _bitwise_or, "fmi"),
    ("bitwise_xor", _bitwise_xor, "fmi"),
    # reductions
    ("sum", reduction.sum, "fm"),
    ("mean", reduction.mean, "fm"),
    ("max", reduction.max, "fm"),
    ("min", reduction.min, "fm"),
    ("argmax", reduction.argmax, "fm"),
    ("argmin", reduction.argmin, "fm"),
    ("var", reduction.var, "fm"),
    ("std", reduction.std, "fm"),
    ("logsumexp", reduction.logsumexp, "fm"),
    ("cumsum", reduction.cumsum, "fmi"),
    ("any", _reduce_bool("any"), "fm"),
    ("all", _reduce_bool("all"), "fm"),
    # linear algebra
    ("matmul", linalg.matmul, "fm"),
    ("mm", linalg.mm, "fm"),
    ("bmm", linalg.bmm, "fm"),
    # shape and indexing
    ("reshape", shape.reshape, "fm"),
    ("view", shape.reshape, "m"),
    ("view_as", _view_as, "m"),
    ("flatten", shape.flatten, "fm"),
    ("unflatten", shape.unflatten, "fm"),
    ("squeeze", shape.squeeze, "fmr"),
    ("unsqueeze", shape.unsqueeze, "fmr"),
    ("permute", shape.permute, "fm"),
    ("transpose", shape.transpose, "fmr"),
    ("swapaxes", shape.transpose, "fmr"),
    ("swapdims", shape.transpose, "fmr"),
    ("t", shape.t, "fmr"),
    ("expand", shape.expand, "m"),
    ("expand_as", shape.expand_as, "m"),
    ("cat", shape.cat, "f"),
    ("concat", shape.cat, "f"),
    ("concatenate", shape.cat, "f"),
    ("stack", shape.stack, "f"),
    ("split", shape.split, "fm"),
    ("chunk", shape.chunk, "fm"),
    ("unbind", shape.unbind, "fm"),
    ("gather", shape.gather, "fm"),
    ("masked_fill", shape.masked_fill, "fmi"),
    # activations torch also has at top level (torch.selu, Tensor.prelu, ...), with their in-place functions
    ("prelu", activation.prelu, "fm"),
    ("hardshrink", activation.hardshrink, "fm"),
    ("threshold", activation.threshold, "f"),
    ("threshold_", activation.threshold_, "f"),
    ("celu", activation.celu, "f"),
    ("celu_", activation.celu_, "f"),
    ("selu", activation.selu, "f"),
    ("selu_", activation.selu_, "f"),
    ("rrelu", activation.rrelu, "f"),
    ("rrelu_", activation.rrelu_, "f"),
    ("relu_", activation.relu_, "f"),
    # pointwise math
    ("sin", pw.sin, "fmi"),
    ("cos", pw.cos, "fmi"),
    ("tan", pw.tan, "fmi"),
    ("asin", pw.asin, "fmi"),
    ("arcsin", pw.asin, "fmi"),
    ("acos", pw.acos, "fmi"),
    ("arccos", pw.acos, "fmi"),
    ("atan", pw.atan, "fmi"),
    ("arctan", pw.atan, "fmi"),
    ("sinh", pw.sinh, "fmi"),
    ("cosh", pw.cosh, "fmi"),
    ("asinh", pw.asinh, "fmi"),
    ("arcsinh", pw.asinh, "fmi"),
    ("acosh", pw.acosh, "fmi"),
    ("arccosh", pw.acosh, "fmi"),
    ("atanh", pw.atanh, "fmi"),
    ("arctanh", pw.atanh, "fmi"),
    ("atan2", pw.atan2, "fmi"),
    ("arctan2", pw.atan2, "fmi"),
    ("exp2", pw.exp2, "fmi"),
    ("expm1", pw.expm1, "fmi"),
    ("log2", pw.log2, "fmi"),
    ("log10", pw.log10, "fmi"),
    ("log1p", pw.log1p, "fmi"),
    ("rsqrt", pw.rsqrt, "fmi"),
    ("reciprocal", pw.reciprocal, "fmi"),
    ("square", pw.square, "fmi"),
    ("sinc", pw.sinc, "fmi"),
    ("deg2rad", pw.deg2rad, "fmi"),
    ("rad2deg", pw.rad2deg, "fmi"),
    ("erfc", pw.erfc, "fmi"),
    ("erfinv", pw.erfinv, "fmi"),
    ("lgamma", pw.lgamma, "fmi"),
    ("digamma", pw.digamma, "fmi"),
    ("polygamma", pw.polygamma, "fmi"),
    ("mvlgamma", pw.mvlgamma, "fmi"),
    ("i0", pw.i0, "fmi"),
    ("logit", pw.logit, "fmi"),
    ("floor", pw.floor, "fmi"),
    ("ceil", pw.ceil, "fmi"),
    ("round", pw.round, "fmi"),
    ("trunc", pw.trunc, "fmi"),
    ("fix", pw.fix, "fmi"),
    ("frac", pw.frac, "fmi"),
    ("sign", pw.sign, "fmi"),
    ("sgn", pw.sgn, "fmi"),
    ("signbit", pw.signbit, "fm"),
    ("positive", pw.positive, "fm"),
    ("rsub", pw.rsub, "f"),
    ("clamp_min", pw.clamp_min, "fmi"),
    ("clamp_max", pw.clamp_max, "fmi"),
    ("nan_to_num", pw.nan_to_num, "fmi"),
    ("frexp", pw.frexp, "fm"),
    ("hypot", pw.hypot, "fmi"),
    ("logaddexp", pw.logaddexp, "fm"),
    ("logaddexp2", pw.logaddexp2, "fm"),
    ("copysign", pw.copysign, "fmi"),
    ("fmod", pw.fmod, "fmi"),
    ("remainder", pw.remainder, "fmi"),
    ("xlogy", pw.xlogy, "fmi"),
    ("fmax", pw.fmax, "fm"),
    ("fmin", pw.fmin, "fm"),
    ("float_power", pw.float_power, "fmi"),
    ("ldexp", pw.ldexp, "fmi"),
    ("lerp", pw.lerp, "fmi"),
    ("addcmul", pw.addcmul, "fmi"),
    ("addcdiv", pw.addcdiv, "fmi"),
    ("heaviside", pw.heaviside, "fmi"),
    ("nextafter", pw.nextafter, "fmi"),
    ("gcd", pw.gcd, "fmi"),
    ("lcm", pw.lcm, "fmi"),
    ("bitwise_left_shift", pw.bitwise_left_shift, "fmi"),
    ("bitwise_right_shift", pw.bitwise_right_shift, "fmi"),
    ("floor_divide", pw.floor_divide, "fmi"),
    ("real", pw.real, "f"),
    ("real", property(pw.real), "m"),  # attributes on Tensor, as in PyTorch
    ("imag", pw.imag, "f"),
    ("imag", property(pw.imag), "m"),
    ("conj", pw.conj, "fm"),
    ("conj_physical", pw.conj, "fmi"),
    ("resolve_conj", pw.conj, "fm"),
    ("resolve_neg", pw.conj, "fm"),
    ("angle", pw.angle, "fm"),
    ("is_complex", pw.is_complex, "fm"),
    ("is_conj", pw.is_conj, "fm"),
    ("is_neg", pw.is_neg, "fm"),
    ("isreal", pw.isreal, "fm"),
    # comparison
    ("greater", ew.gt, "fmi"),
    ("greater_equal", ew.ge, "fmi"),
    ("less", ew.lt, "fmi"),
    ("less_equal", ew.le, "fmi"),
    ("not_equal", ew.ne, "fmi"),
    ("isclose", cmp.isclose, "fm"),
    ("allclose", cmp.allclose, "fm"),
    ("equal", cmp.equal, "fm"),
    ("isnan", cmp.isnan, "fm"),
    ("isinf", cmp.isinf, "fm"),
    ("isposinf", cmp.isposinf, "fm"),
    ("isneginf", cmp.isneginf, "fm"),
    ("isfinite", cmp.isfinite, "fm"),
    ("isin", cmp.isin, "f"),
    # ordering, counting and searching
    ("sort", order.sort, "fm"),
    ("argsort", order.argsort, "fm"),
    ("msort", order.msort, "fm"),
    ("topk", order.topk, "fm"),
    ("kthvalue", order.kthvalue, "fm"),
    ("median", order.median, "fm"),
    ("nanmedian", order.nanmedian, "fm"),
    ("mode", order.mode, "fm"),
    ("quantile", order.quantile, "fm"),
    ("nanquantile", order.nanquantile, "fm"),
    ("unique", order.unique, "fm"),
    ("unique_consecutive", order.unique_consecutive, "fm"),
    ("searchsorted", order.searchsorted, "f"),
    ("bucketize", order.bucketize, "f"),
    ("bincount", order.bincount, "fm"),
    ("histc", order.histc, "fm"),
    ("histogram", order.histogram, "fm"),
    # reductions
    ("prod", reduction.prod, "fm"),
    ("amax", reduction.amax, "fm"),
    ("amin", reduction.amin, "fm"),
    ("aminmax", reduction.aminmax, "fm"),
    ("norm", reduction.norm, "fm"),
    ("dist", reduction.dist, "fm"),
    ("count_nonzero", reduction.count_nonzero, "fm"),
    ("nansum", reduction.nansum, "fm"),
    ("nanmean", reduction.nanmean, "fm"),
    ("std_mean", reduction.std_mean, "f"),
    ("var_mean", reduction.var_mean, "f"),
    ("cumprod", reduction.cumprod, "fmi"),
    ("cummax", reduction.cummax, "fm"),
    ("cummin", reduction.cummin, "fm"),
    ("logcumsumexp", reduction.logcumsumexp, "fm"),
    ("cov", reduction.cov, "fm"),
    ("corrcoef", reduction.corrcoef, "fm"),
    ("renorm", reduction.renorm, "fmi"),
    # differences and integrals
    ("diff", differences.diff, "fm"),
    ("gradient", differences.gradient, "f"),
    ("trapezoid", differences.trapezoid, "f"),
    ("trapz", differences.trapz, "f"),
    ("cumulative_trapezoid", differences.cumulative_trapezoid, "f"),
    # linear algebra
    ("addmm", linalg.addmm, "fmi"),
    ("addmv", linalg.addmv, "fmi"),
    ("addr", linalg.addr, "fmi"),
    ("addbmm", linalg.addbmm, "fmi"),
    ("baddbmm", linalg.baddbmm, "fmi"),
    ("dot", linalg.dot, "fm"),
    ("vdot", linalg.vdot, "fm"),
    ("inner", linalg.inner, "fm"),
    ("outer", linalg.outer, "fm"),
    ("ger", linalg.ger, "fm"),
    ("mv", linalg.mv, "fm"),
    ("tensordot", linalg.tensordot, "f"),
    ("chain_matmul", linalg.chain_matmul, "f"),
    ("einsum", linalg.einsum, "f"),
    ("matrix_power", linalg.matrix_power, "fm"),
    ("inverse", linalg.inverse, "fm"),
    ("det", linalg.det, "fm"),
    ("slogdet", linalg.slogdet, "fm"),
    ("logdet", linalg.logdet, "fm"),
    # matrix structure
    ("tril", matrix.tril, "fmi"),
    ("triu", matrix.triu, "fmi"),
    ("diag", matrix.diag, "fm"),
    ("diagonal", matrix.diagonal, "fm"),
    ("diag_embed", matrix.diag_embed, "fm"),
    ("diagflat", matrix.diagflat, "fm"),
    ("trace", matrix.trace, "fm"),
    ("kron", matrix.kron, "fm"),
    ("block_diag", matrix.block_diag, "f"),
    ("vander", matrix.vander, "f"),
    ("cross", matrix.cross, "fm"),
    ("cdist", matrix.cdist, "f"),
    # rearranging
    ("movedim", rearrange.movedim, "fm"),
    ("moveaxis", rearrange.moveaxis, "fm"),
    ("adjoint", rearrange.adjoint, "fm"),
    ("flip", rearrange.flip, "fm"),
    ("fliplr", rearrange.fliplr, "fm"),
    ("flipud", rearrange.flipud, "fm"),
    ("roll", rearrange.roll, "fm"),
    ("rot90", rearrange.rot90, "fm"),
    ("repeat", rearrange.repeat, "m"),
    ("tile", rearrange.tile, "fm"),
    ("repeat_interleave", rearrange.repeat_interleave, "fm"),
    ("atleast_1d", rearrange.atleast_1d, "f"),
    ("atleast_2d", rearrange.atleast_2d, "f"),
    ("atleast_3d", rearrange.atleast_3d, "f"),
    ("hstack", rearrange.hstack, "f"),
    ("vstack", rearrange.vstack, "f"),
    ("row_stack", rearrange.row_stack, "f"),
    ("dstack", rearrange.dstack, "f"),
    ("column_stack", rearrange.column_stack, "f"),
    ("broadcast_shapes", rearrange.broadcast_shapes, "f"),
    ("broadcast_to", rearrange.broadcast_to, "fm"),
    ("broadcast_tensors", rearrange.broadcast_tensors, "f"),
    ("tensor_split", rearrange.tensor_split, "fm"),
    ("hsplit", rearrange.hsplit, "fm"),
    ("vsplit", rearrange.vsplit, "fm"),
    ("dsplit", rearrange.dsplit, "fm"),
    ("split_with_sizes", rearrange.split_with_sizes, "fm"),
    ("ravel", rearrange.ravel, "fm"),
    ("unfold", rearrange.unfold, "m"),
    ("meshgrid", rearrange.meshgrid, "f"),
    ("cartesian_prod", rearrange.cartesian_prod, "f"),
    ("combinations", rearrange.combinations, "f"),
    ("unravel_index", rearrange.unravel_index, "f"),
    # indexing and scattering
    ("index_select", indexing.index_select, "fm"),
    ("masked_select", indexing.masked_select, "fm"),
    ("take", indexing.take, "fm"),
    ("take_along_dim", indexing.take_along_dim, "fm"),
    ("narrow", indexing.narrow, "fm"),
    ("narrow_copy", indexing.narrow_copy, "fm"),
    ("select", indexing.select, "fm"),
    ("nonzero", indexing.nonzero, "fm"),
    ("argwhere", indexing.argwhere, "fm"),
    ("scatter", indexing.scatter, "fmi"),
    ("scatter_add", indexing.scatter_add, "fmi"),
    ("scatter_reduce", indexing.scatter_reduce, "fmi"),
    ("index_add", indexing.index_add, "fmi"),
    ("index_copy", indexing.index_copy, "fmi"),
    ("index_fill", indexing.index_fill, "fmi"),
    ("index_reduce", indexing.index_reduce, "fmi"),
    ("index_put", indexing.index_put, "fmi"),
    ("put", indexing.put, "mi"),
    ("masked_scatter", indexing.masked_scatter, "fmi"),
    ("select_scatter", indexing.select_scatter, "fm"),
    ("slice_scatter", indexing.slice_scatter, "fm"),
    ("diagonal_scatter", indexing.diagonal_scatter, "fm"),
    # creation
    ("logspace", creation.logspace, "f"),
    ("range", creation.range, "f"),
    ("empty_strided", creation.empty_strided, "f"),
    ("asarray", creation.asarray, "f"),
    ("frombuffer", creation.frombuffer, "f"),
    ("tril_indices", creation.tril_indices, "f"),
    ("triu_indices", creation.triu_indices, "f"),
    ("hann_window", creation.hann_window, "f"),
    ("hamming_window", creation.hamming_window, "f"),
    ("blackman_window", creation.blackman_window, "f"),
    ("bartlett_window", creation.bartlett_window, "f"),
    ("kaiser_window", creation.kaiser_window, "f"),
    ("normal", creation.normal, "f"),  # Tensor.normal_ (in-place sampling) is tensor.py's own
    ("bernoulli", creation.bernoulli, "fm"),
    ("poisson", creation.poisson, "f"),
    ("multinomial", creation.multinomial, "fm"),
    ("randint_like", creation.randint_like, "f"),
    # layout and type
    ("contiguous", layout.contiguous, "m"),
    ("is_contiguous", layout.is_contiguous, "m"),
    ("stride", layout.stride, "m"),
    ("storage_offset", layout.storage_offset, "m"),
    ("data_ptr", layout.data_ptr, "m"),
    ("nbytes", layout.nbytes, "m"),
    ("itemsize", layout.itemsize, "m"),
    ("ndimension", layout.ndimension, "m"),
    ("is_same_size", layout.is_same_size, "m"),
    ("is_signed", layout.is_signed, "m"),
    ("is_nonzero", layout.is_nonzero, "fm"),
    ("get_device", layout.get_device, "m"),
    ("reshape_as", layout.reshape_as, "m"),
    ("sum_to_size", layout.sum_to_size, "m"),
    ("type", layout.type, "m"),
    ("byte", layout.byte, "m"),
    ("char", layout.char, "m"),
    ("short", layout.short, "m"),
    ("is_sparse", layout.is_sparse, "m"),
    ("is_quantized", layout.is_quantized, "m"),
    ("is_meta", layout.is_meta, "m"),
    ("H", layout.H, "m"),
    ("mH", layout.mH, "m"),
    ("retains_grad", layout.retains_grad, "m"),
    ("pin_memory", layout.pin_memory, "m"),
    ("is_pinned", layout.is_pinned, "m"),
    ("clone", layout.clone, "f"),
    ("numel", layout.numel, "f"),
    ("is_floating_point", layout.is_floating_point, "f"),
    ("promote_types", layout.promote_types, "f"),
    ("result_type", layout.result_type, "f"),
    ("can_cast", layout.can_cast, "f"),
    ("fill_diagonal", layout.fill_diagonal, "i"),
    ("resize", layout.resize, "r"),
    ("resize_as", layout.resize_as, "r"),
    ("apply", layout.apply, "i"),
    ("map", layout.map, "i"),
    # in-place random samplers: t.exponential_(), t.bernoulli_(p), ... (no top-level or out-of-place form)
    ("bernoulli", creation.bernoulli_sample, "i"),
    ("exponential", creation.exponential, "i"),
    ("cauchy", creation.cauchy, "i"),
    ("geometric", creation.geometric, "i"),
    ("log_normal", creation.log_normal, "i"),
    ("random", creation.random, "i"),
]

FUNCTIONS: dict[str, Callable[..., Any]] = {name: fn for name, fn, where in _TABLE if "f" in where}
METHODS: dict[str, Callable[..., Any]] = {name: fn for name, fn, where in _TABLE if "m" in where}
INPLACE: dict[str, Callable[..., Any]] = {name + "_": fn for name, fn, where in _TABLE if "i" in where}
INPLACE_RESHAPING: dict[str, Callable[..., Any]] = {name + "_": fn for name, fn, where in _TABLE if "r" in where}

# Tensor methods and attributes PyTorch documents that hubkit lacks get a stand-in that raises
# UnsupportedError when called (or read), so ``t.stft()`` names what is missing instead of failing
# with an AttributeError (and Tensor needs no slow __getattr__).
METHODS.update({name: stub for name, stub in unsupported.method_stubs().items()
                if name not in METHODS and name not in INPLACE and name not in INPLACE_RESHAPING
                and not hasattr(Tensor, name)})
