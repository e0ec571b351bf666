"""``hubkit.backends.cuda``: ``matmul.allow_tf32`` as torch spells it (hubkit's GEMMs run in FP32)."""

from __future__ import annotations


class _MatmulFlags:
    allow_tf32 = False
    allow_fp16_reduced_precision_reduction = True


matmul = _MatmulFlags()


def is_built() -> bool:
    from hubkit import cuda

    return cuda.is_available()
