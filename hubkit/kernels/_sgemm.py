"""hubkit's own float32 matrix-product micro-kernels for AVX-512 CPUs, compiled at run time with llvmlite.

Why: numpy's wheels bundle OpenBLAS, whose single-precision product reaches 80-90% of an AVX-512 core's peak
on the shapes transformers and convolutions run (MiniLM's 384 x 384 and 384 x 1536 layers at 300-2,000 rows),
where MKL, which torch uses, reaches 95-100%. That gap was most of the default install's MiniLM time against
sentence-transformers (bench/RESULTS.md). The kernel below closes it without a 700 MB dependency.

How: the classic BLIS design. One micro-kernel computes a 12 x 32 block of ``C`` as 24 AVX-512 accumulators,
``C[i, j0:j0+32] += A[i, k] * B[k, j0:j0+32]`` for every ``k``: per step, two vector loads of a packed ``B``
row, twelve broadcasts of ``A`` and 24 fused multiply-adds, unrolled eight steps per loop iteration. It is
written in LLVM's IR here (explicit ``<16 x float>`` vectors and ``llvm.fma``, so no auto-vectoriser is
involved) and compiled for the host CPU by llvmlite, which numba already brings. The loops around it (packing
``B`` into 32-column slivers that stay in the core's L2 cache, edges, threads) are numba code in
``_jit_kernels`` (``sgemm_*``).

Two variants: ``rows`` reads ``A`` in place (row ``r`` at ``a + r*lda``, consecutive ``k`` adjacent: a C-ordered
operand), ``packed`` reads a 12-row sliver packed as ``a[k*12 + r]`` (any other layout, and the last rows of
a matrix, are copied that way first). ``mode`` says what happens to the block at the end: 0 store, 1 add to
``C``, 2 store plus ``bias[j0:j0+32]``. Each output is one chain of fused multiply-adds in ``k`` order per
block of ``K`` (``_jit_kernels.sgemm_k_blocks``), then added to what ``C`` holds: the numbers do not depend on
the thread count or on where a block falls.

``microkernels()`` compiles once per process (about 0.1 s) and returns None where the CPU lacks AVX-512F,
llvmlite is missing or older than LLVM 15 (the IR uses opaque pointers), or ``HUBKIT_SGEMM=0`` is set; the
products then stay on BLAS.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import os
import threading
from typing import NamedTuple

log = logging.getLogger("hubkit.kernels")

ROWS = 12  # rows of C per micro-kernel call (broadcasts of A)
COLS = 32  # columns per call: two 16-float vectors
_UNROLL = 8  # k steps per loop iteration (fewer loop instructions competing with the FMAs for ports)
_ENV_VAR = "HUBKIT_SGEMM"

_lock = threading.Lock()
_kernels: Kernels | None = None
_searched = False
_enabled: bool | None = None


class Kernels(NamedTuple):
    """The compiled micro-kernels as ctypes function pointers (numba calls them directly), and the engine that
    owns their machine code (kept alive with them)."""

    rows: object
    packed: object
    engine: object


def enabled() -> bool:
    """Whether hubkit's kernel may take float32 products (``HUBKIT_SGEMM``, ``set_enabled``); it runs only where
    :func:`microkernels` also compiled."""
    global _enabled
    if _enabled is None:
        _enabled = os.environ.get(_ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")
    return _enabled


def set_enabled(flag: bool) -> None:
    """Let hubkit's float32 kernel take the products it fits (``True``, the default) or leave them to BLAS."""
    global _enabled
    _enabled = bool(flag)


def microkernels() -> Kernels | None:
    """The compiled micro-kernels, or None where they cannot run here (see the module's docstring)."""
    global _kernels, _searched
    if not _searched:
        with _lock:
            if not _searched:
                _kernels = _compile()
                _searched = True
    return _kernels if enabled() else None


def _signature() -> type:
    """``void kernel(i64 k, ptr a, i64 lda, ptr b, ptr c, i64 ldc, i64 mode, ptr bias)``; pointers as integers."""
    i = ctypes.c_int64
    return ctypes.CFUNCTYPE(None, i, i, i, i, i, i, i, i)


def _compile() -> Kernels | None:
    if importlib.util.find_spec("llvmlite") is None:
        return None
    try:
        import llvmlite.binding as llvm

        if llvm.llvm_version_info < (15,):
            log.debug("hubkit's sgemm needs LLVM >= 15 (llvmlite %s): products stay on BLAS",
                      llvm.llvm_version_info)  # fmt: skip
            return None
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        features = llvm.get_host_cpu_features()
        if not features.get("avx512f", False):
            return None
        machine = llvm.Target.from_default_triple().create_target_machine(
            cpu=llvm.get_host_cpu_name(), features=features.flatten(), opt=3
        )
        module = llvm.parse_assembly(kernel_ir())
        module.verify()
        engine = llvm.create_mcjit_compiler(module, machine)
        engine.finalize_object()
        make = _signature()
        return Kernels(make(engine.get_function_address("hubkit_sgemm_rows")),
                       make(engine.get_function_address("hubkit_sgemm_packed")), engine)  # fmt: skip
    except Exception as exc:  # a broken or unusual llvmlite: BLAS still computes every product
        log.warning("hubkit's sgemm kernel did not compile (%s: %s); float32 products stay on BLAS",
                    type(exc).__name__, exc)  # fmt: skip
        return None


def kernel_ir(unroll: int = _UNROLL) -> str:
    """The LLVM IR of both micro-kernels (a module of its own)."""
    head = "declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)\n"
    attributes = 'attributes #0 = { nounwind "min-legal-vector-width"="512" "prefer-vector-width"="512" }\n'
    return (
        head
        + _function("hubkit_sgemm_rows", False, unroll)
        + _function("hubkit_sgemm_packed", True, unroll)
        + (attributes)
    )


class _Emitter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.steps = 0

    def __call__(self, line: str) -> None:
        self.lines.append("  " + line if not line.endswith(":") else line)

    def step(self, pa: str, pb: str, kofs: int, acc: list[list[str]], packed: bool) -> list[list[str]]:
        """One ``k`` step at ``kofs`` past the pointers ``%pa`` (A) and ``%pb`` (B): 24 FMAs into ``acc``."""
        self.steps += 1
        s, e = self.steps, self
        for v in range(2):
            e(f"%pb{s}.{v} = getelementptr float, ptr %{pb}, i64 {kofs * COLS + 16 * v}")
            e(f"%b{s}.{v} = load <16 x float>, ptr %pb{s}.{v}, align 4")
        new = []
        for r in range(ROWS):
            if packed:
                e(f"%pa{s}.{r} = getelementptr float, ptr %{pa}, i64 {kofs * ROWS + r}")
            else:
                e(f"%row{s}.{r} = getelementptr float, ptr %{pa}, i64 %off{r}")
                e(f"%pa{s}.{r} = getelementptr float, ptr %row{s}.{r}, i64 {kofs}")
            e(f"%as{s}.{r} = load float, ptr %pa{s}.{r}, align 4")
            e(f"%av{s}.{r} = insertelement <16 x float> poison, float %as{s}.{r}, i32 0")
            e(f"%a{s}.{r} = shufflevector <16 x float> %av{s}.{r}, <16 x float> poison, <16 x i32> zeroinitializer")
            sums = []
            for v in range(2):
                e(f"%f{s}.{r}.{v} = call <16 x float> @llvm.fma.v16f32(<16 x float> %a{s}.{r}, "
                  f"<16 x float> %b{s}.{v}, <16 x float> %{acc[r][v]})")  # fmt: skip
                sums.append(f"f{s}.{r}.{v}")
            new.append(sums)
        return new


def _function(name: str, packed: bool, unroll: int) -> str:
    """One micro-kernel: a main loop of ``unroll`` steps, a loop for the remaining ``k % unroll`` steps, then
    the store (``mode``). Every accumulator is a loop-carried SSA value, so all 24 live in registers."""
    e = _Emitter()
    a_step = ROWS if packed else 1  # floats between consecutive k of one row of A
    grid = [(r, v) for r in range(ROWS) for v in range(2)]
    e(f"define void @{name}(i64 %k, ptr noalias %a, i64 %lda, ptr noalias %b, ptr noalias %c, i64 %ldc, "
      f"i64 %mode, ptr noalias %bias) #0 {{")  # fmt: skip
    e("entry:")
    for r in range(ROWS):
        e(f"%off{r} = mul i64 %lda, {r}")
    e(f"%kmain = and i64 %k, {-unroll}")
    e("%hasmain = icmp ugt i64 %kmain, 0")
    e("br i1 %hasmain, label %main, label %tailcheck")

    e("main:")
    last_main = e.steps + unroll  # the main loop's steps are numbered last_main - unroll + 1 .. last_main
    e("%i = phi i64 [0, %entry], [%inext, %main]")
    e("%pa = phi ptr [%a, %entry], [%pan, %main]")
    e("%pb = phi ptr [%b, %entry], [%pbn, %main]")
    for r, v in grid:
        e(f"%m.{r}.{v} = phi <16 x float> [zeroinitializer, %entry], [%f{last_main}.{r}.{v}, %main]")
    acc = [[f"m.{r}.{v}" for v in range(2)] for r in range(ROWS)]
    for u in range(unroll):
        acc = e.step("pa", "pb", u, acc, packed)
    e(f"%pan = getelementptr float, ptr %pa, i64 {unroll * a_step}")
    e(f"%pbn = getelementptr float, ptr %pb, i64 {unroll * COLS}")
    e(f"%inext = add i64 %i, {unroll}")
    e("%more = icmp ult i64 %inext, %kmain")
    e("br i1 %more, label %main, label %tailcheck")

    e("tailcheck:")
    e("%ti = phi i64 [0, %entry], [%inext, %main]")
    e("%tpa = phi ptr [%a, %entry], [%pan, %main]")
    e("%tpb = phi ptr [%b, %entry], [%pbn, %main]")
    for r, v in grid:
        e(f"%t.{r}.{v} = phi <16 x float> [zeroinitializer, %entry], [%f{last_main}.{r}.{v}, %main]")
    e("%hastail = icmp ult i64 %ti, %k")
    e("br i1 %hastail, label %tail, label %done")

    e("tail:")
    last_tail = e.steps + 1
    e("%j = phi i64 [%ti, %tailcheck], [%jnext, %tail]")
    e("%qa = phi ptr [%tpa, %tailcheck], [%qan, %tail]")
    e("%qb = phi ptr [%tpb, %tailcheck], [%qbn, %tail]")
    for r, v in grid:
        e(f"%u.{r}.{v} = phi <16 x float> [%t.{r}.{v}, %tailcheck], [%f{last_tail}.{r}.{v}, %tail]")
    e.step("qa", "qb", 0, [[f"u.{r}.{v}" for v in range(2)] for r in range(ROWS)], packed)
    e(f"%qan = getelementptr float, ptr %qa, i64 {a_step}")
    e(f"%qbn = getelementptr float, ptr %qb, i64 {COLS}")
    e("%jnext = add i64 %j, 1")
    e("%tmore = icmp ult i64 %jnext, %k")
    e("br i1 %tmore, label %tail, label %done")

    e("done:")
    for r, v in grid:
        e(f"%d.{r}.{v} = phi <16 x float> [%t.{r}.{v}, %tailcheck], [%f{last_tail}.{r}.{v}, %tail]")
    e("switch i64 %mode, label %store [ i64 1, label %add i64 2, label %biased ]")
    for label in ("store", "add", "biased"):
        e(f"{label}:")
        if label == "biased":
            for v in range(2):
                e(f"%pbias{v} = getelementptr float, ptr %bias, i64 {16 * v}")
                e(f"%bias{v} = load <16 x float>, ptr %pbias{v}, align 4")
        for r, v in grid:
            x = f"{label}.{r}.{v}"
            e(f"%o.{x} = mul i64 %ldc, {r}")
            e(f"%q.{x} = add i64 %o.{x}, {16 * v}")
            e(f"%p.{x} = getelementptr float, ptr %c, i64 %q.{x}")
            value = f"%d.{r}.{v}"
            if label == "add":
                e(f"%old.{x} = load <16 x float>, ptr %p.{x}, align 4")
                e(f"%sum.{x} = fadd <16 x float> %old.{x}, %d.{r}.{v}")
                value = f"%sum.{x}"
            elif label == "biased":
                e(f"%sum.{x} = fadd <16 x float> %d.{r}.{v}, %bias{v}")
                value = f"%sum.{x}"
            e(f"store <16 x float> {value}, ptr %p.{x}, align 4")
        e("ret void")
    e("}")
    return "\n".join(e.lines) + "\n"
