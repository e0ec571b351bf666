"""``hubkit.backends.mkl``: whether hubkit's CPU matrix products run on Intel MKL (``torch.backends.mkl``).

MKL is optional (``pip install 'hubkit[mkl]'``): when its library is found, the products hubkit's CPU kernels
and ``matmul``/``Linear`` run go to MKL's sequential GEMM, one call per thread slice of hubkit's pool; without
it they run on numpy's BLAS. Results agree to floating-point rounding, not bit for bit.
"""

from __future__ import annotations

from hubkit.kernels import _mkl

enabled = True  # False: numpy's BLAS for every product, also where MKL is installed


def is_available() -> bool:
    """Whether MKL's library was found and loaded (``torch.backends.mkl.is_available``)."""
    return _mkl.library() is not None


def version() -> str | None:
    """MKL's version string, or None when it is not available."""
    lib = _mkl.library()
    return None if lib is None else lib.version


def unavailable_reason() -> str | None:
    """Why MKL is not used (None when it is available)."""
    return _mkl.unavailable_reason()
