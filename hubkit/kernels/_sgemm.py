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

Three variants: ``rows`` reads ``A`` in place (row ``r`` at ``a + r*lda``, consecutive ``k`` adjacent: a
C-ordered operand), ``packed`` reads a 12-row sliver packed as ``a[k*12 + r]`` (any other layout, and the last
rows of a matrix, are copied that way first), and ``stream`` reads a packed sliver of ``A`` against ``B`` in place
(rows ``ldb`` apart, fetched eight rows ahead), for products of few rows where packing ``B`` would cost more than
it saves. Two packing routines (``pack12``, ``pack32``) copy slivers with masked vector loads, or masked gathers
for other layouts (a weight read as ``W.T``). ``mode`` says what happens to a block at the end: 0 store, 1 add to
``C``, 2 store plus ``bias[j0:j0+32]``. Each output is one chain of fused multiply-adds in ``k`` order per block
of ``K`` (``_jit_kernels.sgemm_k_blocks``), then added to what ``C`` holds: the numbers do not depend on the
thread count, the split or the variant.

``microkernels()`` compiles once per process (about 0.2 s with llvmlite's import) and returns None where the
CPU lacks AVX-512F, llvmlite is missing or older than LLVM 15 (the IR uses opaque pointers), or
``HUBKIT_SGEMM=0`` is set; the products then stay on BLAS.
"""

from __future__ import annotations

import ctypes
import importlib.util
import logging
import threading
from typing import NamedTuple

from hubkit.kernels._jit import switched_off

log = logging.getLogger("hubkit.kernels")

ROWS = 12  # rows of C per micro-kernel call (broadcasts of A)
COLS = 32  # columns per call: two 16-float vectors
_UNROLL = 8  # k steps per loop iteration (fewer loop instructions competing with the FMAs for ports)
_ENV_VAR = "HUBKIT_SGEMM"
_PREFETCH_ROWS = 8  # rows of B ahead that the in-place kernel fetches

_lock = threading.Lock()
_kernels: Kernels | None = None
_searched = False
_enabled: bool | None = None


class Kernels(NamedTuple):
    """The compiled micro-kernels as ctypes function pointers (numba calls them directly), and the engine that
    owns their machine code (kept alive with them)."""

    rows: object
    packed: object
    stream: object  # A packed, B read in place (rows ``ldb`` apart): products of few rows
    pack_a: object  # 12-row slivers of A
    pack_b: object  # 32-column slivers of B
    engine: object

    @property
    def functions(self) -> tuple:
        """The five routines, as ``_jit_kernels.sgemm`` and ``sgemm_parallel`` take them."""
        return self.rows, self.packed, self.stream, self.pack_a, self.pack_b


def enabled() -> bool:
    """Whether hubkit's kernel may take float32 products (``HUBKIT_SGEMM``, ``set_enabled``); it runs only where
    :func:`microkernels` also compiled."""
    global _enabled
    if _enabled is None:
        _enabled = not switched_off(_ENV_VAR)
    return _enabled


def set_enabled(flag: bool) -> None:
    """Let hubkit's float32 kernel take the products it fits (``True``, the default) or leave them to BLAS."""
    global _enabled
    _enabled = bool(flag)


def microkernels() -> Kernels | None:
    """The compiled micro-kernels, or None where they cannot run here (see the module's docstring); nothing is
    compiled while the kernel is switched off."""
    global _kernels, _searched
    if not enabled():
        return None
    if not _searched:
        with _lock:
            if not _searched:
                _kernels = _compile()
                _searched = True
    return _kernels


def _signature() -> type:
    """``void kernel(i64 k, ptr a, i64 lda, ptr b, i64 ldb, ptr c, i64 ldc, i64 mode, ptr bias)``; pointers as
    integers."""
    i = ctypes.c_int64
    return ctypes.CFUNCTYPE(None, i, i, i, i, i, i, i, i, i)


def _pack_signature() -> type:
    """``void pack(i64 steps, ptr src, i64 step_stride, i64 lane_stride, ptr dst, i64 lanes)``."""
    i = ctypes.c_int64
    return ctypes.CFUNCTYPE(None, i, i, i, i, i, i)


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
        names = ("hubkit_sgemm_rows", "hubkit_sgemm_packed", "hubkit_sgemm_stream", "hubkit_sgemm_pack12",
                 "hubkit_sgemm_pack32")  # fmt: skip
        addresses = [engine.get_function_address(name) for name in names]
        if not all(addresses):
            raise RuntimeError("the compiled module lacks " + ", ".join(n for n, a in zip(names, addresses) if not a))
        make, pack = _signature(), _pack_signature()
        return Kernels(*(make(a) for a in addresses[:3]), *(pack(a) for a in addresses[3:]), engine)
    except Exception as exc:  # a broken or unusual llvmlite: BLAS still computes every product
        log.warning("hubkit's sgemm kernel did not compile (%s: %s); float32 products stay on BLAS",
                    type(exc).__name__, exc)  # fmt: skip
        return None


def kernel_ir(unroll: int = _UNROLL) -> str:
    """The LLVM IR of both micro-kernels and the two packing routines (a module of its own)."""
    head = (
        "declare <16 x float> @llvm.fma.v16f32(<16 x float>, <16 x float>, <16 x float>)\n"
        "declare <16 x float> @llvm.masked.load.v16f32.p0(ptr, i32 immarg, <16 x i1>, <16 x float>)\n"
        "declare <16 x float> @llvm.masked.gather.v16f32.v16p0(<16 x ptr>, i32 immarg, <16 x i1>, <16 x float>)\n"
        "declare void @llvm.prefetch.p0(ptr, i32 immarg, i32 immarg, i32 immarg)\n"
    )
    attributes = 'attributes #0 = { nounwind "min-legal-vector-width"="512" "prefer-vector-width"="512" }\n'
    return (
        head
        + _function("hubkit_sgemm_rows", False, unroll)
        + _function("hubkit_sgemm_packed", True, unroll)
        + _function("hubkit_sgemm_stream", True, unroll, b_strided=True)
        + _pack_function("hubkit_sgemm_pack12", ROWS)
        + _pack_function("hubkit_sgemm_pack32", COLS)
        + attributes
    )


def _pack_function(name: str, width: int) -> str:
    """Copy ``steps`` rows of ``lanes`` (<= ``width``) values into ``dst``, ``width`` floats apart, zero past
    ``lanes``: value ``(t, l)`` is read at ``src + t*step_stride + l*lane_stride`` (floats). Adjacent lanes are
    read with masked vector loads, any other layout with masked gathers (a weight read as ``W.T``: 16 rows of
    ``W`` at once), and nothing outside the ``lanes`` is touched. Each row is stored as whole 16-float vectors:
    for ``width`` 12 the store runs 4 floats into the next row (rewritten next step) and past the last one, so
    ``dst`` needs 4 floats of room at its end."""
    vectors = -(-width // 16)
    lane_numbers = ", ".join(f"i64 {i}" for i in range(16))
    e = _Emitter()
    e(f"define void @{name}(i64 %steps, ptr noalias %src, i64 %ss, i64 %ls, ptr noalias %dst, i64 %lanes) #0 {{")
    e("entry:")
    e("%lv0 = insertelement <16 x i64> poison, i64 %lanes, i32 0")
    e("%lv = shufflevector <16 x i64> %lv0, <16 x i64> poison, <16 x i32> zeroinitializer")
    e("%sv0 = insertelement <16 x i64> poison, i64 %ls, i32 0")
    e("%sv = shufflevector <16 x i64> %sv0, <16 x i64> poison, <16 x i32> zeroinitializer")
    for v in range(vectors):
        first = ", ".join(f"i64 {16 * v}" for _ in range(16))
        e(f"%idx{v} = add <16 x i64> <{lane_numbers}>, <{first}>")
        e(f"%mask{v} = icmp ult <16 x i64> %idx{v}, %lv")
        e(f"%off{v} = mul <16 x i64> %idx{v}, %sv")
    e("%any = icmp sgt i64 %steps, 0")
    e("%adjacent = icmp eq i64 %ls, 1")
    e("br i1 %any, label %choose, label %exit")
    e("choose:")
    e("br i1 %adjacent, label %loads, label %gathers")
    for kind in ("loads", "gathers"):
        e(f"{kind}:")
        e(f"%t.{kind} = phi i64 [0, %choose], [%tn.{kind}, %{kind}]")
        e(f"%p.{kind} = phi ptr [%src, %choose], [%pn.{kind}, %{kind}]")
        e(f"%q.{kind} = phi ptr [%dst, %choose], [%qn.{kind}, %{kind}]")
        for v in range(vectors):
            x = f"{kind}.{v}"
            if kind == "loads":
                e(f"%a.{x} = getelementptr float, ptr %p.{kind}, i64 {16 * v}")
                e(f"%v.{x} = call <16 x float> @llvm.masked.load.v16f32.p0(ptr %a.{x}, i32 4, <16 x i1> %mask{v}, "
                  "<16 x float> zeroinitializer)")  # fmt: skip
            else:
                e(f"%a.{x} = getelementptr float, ptr %p.{kind}, <16 x i64> %off{v}")
                e(f"%v.{x} = call <16 x float> @llvm.masked.gather.v16f32.v16p0(<16 x ptr> %a.{x}, i32 4, "
                  f"<16 x i1> %mask{v}, <16 x float> zeroinitializer)")  # fmt: skip
            e(f"%d.{x} = getelementptr float, ptr %q.{kind}, i64 {16 * v}")
            e(f"store <16 x float> %v.{x}, ptr %d.{x}, align 4")
        e(f"%pn.{kind} = getelementptr float, ptr %p.{kind}, i64 %ss")
        e(f"%qn.{kind} = getelementptr float, ptr %q.{kind}, i64 {width}")
        e(f"%tn.{kind} = add i64 %t.{kind}, 1")
        e(f"%more.{kind} = icmp slt i64 %tn.{kind}, %steps")
        e(f"br i1 %more.{kind}, label %{kind}, label %exit")
    e("exit:")
    e("ret void")
    e("}")
    return "\n".join(e.lines) + "\n"


class _Emitter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.steps = 0

    def __call__(self, line: str) -> None:
        self.lines.append("  " + line if not line.endswith(":") else line)

    def step(self, pa: str, pb: str, kofs: int, acc: list[list[str]], packed: bool, b_row: bool) -> list[list[str]]:
        """One ``k`` step at ``kofs`` past the pointers ``%pa`` (A) and ``%pb`` (B; with ``b_row``, ``%pb`` is
        already this step's row of B): 24 FMAs into ``acc``."""
        self.steps += 1
        s, e = self.steps, self
        if b_row:  # B read in place: fetch the row _PREFETCH_ROWS ahead (its 128 bytes span two or three lines)
            e(f"%pf{s} = getelementptr float, ptr %{pb}, i64 %pfdist")
            e(f"call void @llvm.prefetch.p0(ptr %pf{s}, i32 0, i32 3, i32 1)")
            e(f"%pfe{s} = getelementptr float, ptr %pf{s}, i64 31")
            e(f"call void @llvm.prefetch.p0(ptr %pfe{s}, i32 0, i32 3, i32 1)")
        for v in range(2):
            offset = 16 * v if b_row else kofs * COLS + 16 * v
            e(f"%pb{s}.{v} = getelementptr float, ptr %{pb}, i64 {offset}")
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


def _function(name: str, packed: bool, unroll: int, b_strided: bool = False) -> str:
    """One micro-kernel: a main loop of ``unroll`` steps, a loop for the remaining ``k % unroll`` steps, then
    the store (``mode``). Every accumulator is a loop-carried SSA value, so all 24 live in registers. ``packed``:
    A is a packed sliver (else read in place, ``lda`` apart); ``b_strided``: B's rows are ``ldb`` floats apart
    (read in place), else 32 (a packed sliver)."""
    e = _Emitter()
    b_step = "%ldb" if b_strided else str(COLS)
    a_step = ROWS if packed else 1  # floats between consecutive k of one row of A
    grid = [(r, v) for r in range(ROWS) for v in range(2)]
    e(f"define void @{name}(i64 %k, ptr noalias %a, i64 %lda, ptr noalias %b, i64 %ldb, ptr noalias %c, "
      f"i64 %ldc, i64 %mode, ptr noalias %bias) #0 {{")  # fmt: skip
    e("entry:")
    for r in range(ROWS):
        e(f"%off{r} = mul i64 %lda, {r}")
    if b_strided:
        e(f"%pfdist = mul i64 %ldb, {_PREFETCH_ROWS}")
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
    row = "pb"
    for u in range(unroll):
        if b_strided and u:
            e(f"%pbrow{u} = getelementptr float, ptr %{row}, i64 %ldb")
            row = f"pbrow{u}"
        acc = e.step("pa", row, u, acc, packed, b_strided)
    e(f"%pan = getelementptr float, ptr %pa, i64 {unroll * a_step}")
    if b_strided:
        e(f"%pbn = getelementptr float, ptr %{row}, i64 %ldb")
    else:
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
    e.step("qa", "qb", 0, [[f"u.{r}.{v}" for v in range(2)] for r in range(ROWS)], packed, b_strided)
    e(f"%qan = getelementptr float, ptr %qa, i64 {a_step}")
    e(f"%qbn = getelementptr float, ptr %qb, i64 {b_step}")
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
