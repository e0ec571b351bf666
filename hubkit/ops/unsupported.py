"""What PyTorch documents and hubkit does not provide, as data, and the errors that say so.

The lists were derived once, by a script, from PyTorch's own documentation: every name in the
autosummary blocks of ``docs/source/torch.md`` (top-level ``torch.X``) and ``docs/source/tensors.md``
(``Tensor.X``) of pytorch/pytorch, minus what ``hubkit`` and ``hubkit.Tensor`` had at the time.
tests/engine/test_ops_table.py checks that every name here is still missing from hubkit (so an op
added later must be taken off this list) and that using one raises ``UnsupportedError``.

``hubkit.X`` for a name in ``FUNCTIONS`` raises ``UnsupportedError`` (a ``HubkitError`` and an
``AttributeError``) from ``hubkit.__getattr__``; the Tensor names are bound by ``hubkit/ops/table.py``
to stand-ins that raise it when called (methods) or read (attributes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hubkit.errors import UnsupportedError

# torch.X: documented top-level names hubkit lacks
FUNCTIONS: frozenset[str] = frozenset({
    "Event", "Stream", "SymBool", "SymFloat", "SymInt", "as_strided", "compiled_with_cxx11_abi", "complex", "cond",
    "dequantize", "fake_quantize_per_channel_affine", "fake_quantize_per_tensor_affine", "from_dlpack", "from_file",
    "get_device_module", "histogramdd", "igamma", "igammac", "istft", "polar", "quantize_per_channel",
    "quantize_per_tensor", "quantized_batch_norm", "quantized_max_pool1d", "quantized_max_pool2d",
    "set_default_tensor_type", "set_flush_denormal", "sparse_bsc_tensor", "sparse_bsr_tensor", "sparse_coo_tensor",
    "sparse_csc_tensor", "sparse_csr_tensor", "stft", "sym_float", "sym_fresh_size", "sym_int", "sym_ite", "sym_max",
    "sym_min", "sym_not", "sym_sum", "view_as_complex", "view_as_real", "vmap",
})

# Tensor.X(): documented methods hubkit lacks
TENSOR_METHODS: frozenset[str] = frozenset({
    "as_strided", "as_subclass", "bfloat16", "cdouble", "cfloat", "chalf", "const_data_ptr", "dense_dim",
    "dequantize", "dim_order", "igamma", "igamma_", "igammac", "igammac_", "indices", "int_repr", "is_inference",
    "is_set_to", "is_shared", "istft", "module_load", "nonzero_static", "q_per_channel_axis", "q_per_channel_scales",
    "q_per_channel_zero_points", "q_scale", "q_zero_point", "qscheme", "record_stream", "set_", "share_memory_",
    "smm", "sparse_dim", "sparse_mask", "sspaddmm", "stft", "storage", "storage_type", "to_dense", "to_mkldnn",
    "to_sparse", "to_sparse_bsc", "to_sparse_bsr", "to_sparse_csc", "to_sparse_csr", "untyped_storage", "values",
    "xpu",
})

# torch.nn.X and torch.nn.functional.X that hubkit lacks (kept by hand; the coverage script lists them too)
NN_MODULES: frozenset[str] = frozenset()
NN_FUNCTIONAL: frozenset[str] = frozenset({"grouped_mm", "scaled_grouped_mm", "scaled_mm"})

# Tensor.X: documented attributes (properties) hubkit lacks
TENSOR_ATTRIBUTES: frozenset[str] = frozenset({

})

# why a family of names is missing, matched by substring, first match wins
_REASONS: tuple[tuple[str, str], ...] = (
    ("sparse", "hubkit has no sparse tensors; use dense tensors"),
    ("quantiz", "hubkit has no quantized tensors"),
    ("q_", "hubkit has no quantized tensors"),
    ("qscheme", "hubkit has no quantized tensors"),
    ("int_repr", "hubkit has no quantized tensors"),
    ("fft", "hubkit has no FFT ops"),
    ("stft", "hubkit has no FFT ops"),
    ("complex", "hubkit's tensors are real: there are no complex views"),
    ("polar", "hubkit's tensors are real: there are no complex views"),
    ("chalf", "hubkit's tensors are real: there are no complex views"),
    ("cfloat", "hubkit's tensors are real: there are no complex views"),
    ("cdouble", "hubkit's tensors are real: there are no complex views"),
    ("mH", "hubkit's tensors are real: use .mT"),
    ("storage", "hubkit tensors wrap numpy/cupy arrays and expose no storage objects; use .numpy() or .array"),
    ("sym_", "hubkit does not trace programs (no symbolic shapes)"),
    ("Sym", "hubkit does not trace programs (no symbolic shapes)"),
    ("cxx11", "hubkit is pure Python: there is no C++ ABI to ask about"),
    ("vmap", "hubkit has no function transforms; write the batch dimension explicitly"),
    ("_mm", "hubkit has no float8/bfloat16 dtypes or grouped GEMM kernels; use matmul/bmm in float32"),
)


def reason(name: str) -> str:
    for key, why in _REASONS:
        if key in name:
            return why
    return "it may be added later; see the coverage table in README.md"


def unsupported_error(qualified: str) -> UnsupportedError:
    """The error for using ``qualified`` (e.g. ``'torch.stft'``, ``'Tensor.stft'``)."""
    short = qualified.rsplit(".", 1)[-1]
    return UnsupportedError(f"{qualified} is not supported by hubkit: {reason(short)}")


def _method_stub(name: str) -> Callable[..., Any]:
    def stub(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise unsupported_error(f"torch.Tensor.{name}")

    stub.__name__ = stub.__qualname__ = name
    stub.__doc__ = f"Not supported by hubkit (PyTorch's Tensor.{name}); calling it raises UnsupportedError."
    return stub


def _attribute_stub(name: str) -> property:
    def getter(self: Any) -> Any:
        raise unsupported_error(f"torch.Tensor.{name}")

    return property(getter, doc=f"Not supported by hubkit (PyTorch's Tensor.{name}); reading it raises "
                                "UnsupportedError.")


def method_stubs() -> dict[str, Any]:
    """A raising stand-in for each unsupported Tensor method (a function) and attribute (a property)."""
    stubs: dict[str, Any] = {name: _method_stub(name) for name in TENSOR_METHODS}
    stubs.update({name: _attribute_stub(name) for name in TENSOR_ATTRIBUTES})
    return stubs
