"""A data-only pickle machine for the pickles inside PyTorch checkpoints.

``pickle.load`` imports and calls whatever a file names, so a checkpoint can run any code. This
machine never imports or calls anything from the file: GLOBAL opcodes resolve against a fixed
allowlist (``collections.OrderedDict``, torch's tensor-rebuild functions, storage classes and dtypes)
to inert markers, and REDUCE on a marker runs hubkit's own re-implementation of that function, which
only builds a :class:`TensorRef` (a description of a tensor, no data). A few published checkpoints also
pickle an instance of a plain attribute-bag class (``_RECORD_CLASSES``); NEWOBJ + BUILD on such a class
give an :class:`AttributeRecord` (its name and attributes, as data), never the class. Every other global
raises :class:`UnsafeCheckpointError` naming it, and so does every opcode torch never writes that could
call something (INST, OBJ, NEWOBJ on anything else, EXT*). Unknown opcodes are errors.

Torch writes protocol 2; the data-only opcodes of protocols 3-5 are read too, for files saved with a
higher ``pickle_protocol``. Dictionary keys are restricted to scalars and flat tuples of scalars so
that hashing a key can never recurse, and a dict or set whose keys share one hash value more than
``_HASH_LIMIT`` times is refused: such keys (``k * (2**61 - 1)`` for ints, crafted tuples) make every
insertion walk all the others, so a few megabytes of pickle would take hours.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from hubkit.errors import CheckpointError, UnsafeCheckpointError

# ---------------------------------------------------------------- dtypes


@dataclass(frozen=True)
class TorchDType:
    """A torch dtype as hubkit stores it: ``storage`` is the numpy layout of its bytes."""

    name: str
    storage: np.dtype

    @property
    def itemsize(self) -> int:
        return self.storage.itemsize


def _dt(name: str, code: str) -> TorchDType:
    return TorchDType(name, np.dtype(code))


FLOAT64, FLOAT32, FLOAT16 = _dt("float64", "<f8"), _dt("float32", "<f4"), _dt("float16", "<f2")
BFLOAT16 = _dt("bfloat16", "<u2")  # numpy has no bfloat16: keep the bit pattern, widen on request
INT64, INT32, INT16, INT8 = _dt("int64", "<i8"), _dt("int32", "<i4"), _dt("int16", "<i2"), _dt("int8", "i1")
UINT8, UINT16, UINT32, UINT64 = _dt("uint8", "u1"), _dt("uint16", "<u2"), _dt("uint32", "<u4"), _dt("uint64", "<u8")
BOOL = _dt("bool", "?")
COMPLEX64, COMPLEX128 = _dt("complex64", "<c8"), _dt("complex128", "<c16")

TORCH_DTYPES: dict[str, TorchDType] = {
    d.name: d
    for d in (FLOAT64, FLOAT32, FLOAT16, BFLOAT16, INT64, INT32, INT16, INT8, UINT8, UINT16, UINT32, UINT64,
              BOOL, COMPLEX64, COMPLEX128)
}
_DTYPE_ALIASES = {"double": FLOAT64, "float": FLOAT32, "half": FLOAT16, "long": INT64, "int": INT32,
                  "short": INT16, "cfloat": COMPLEX64, "cdouble": COMPLEX128}

# storage class name -> dtype (torch/storage.py, _dtype_to_storage_type_map)
_STORAGE_CLASSES = {
    "DoubleStorage": FLOAT64, "FloatStorage": FLOAT32, "HalfStorage": FLOAT16, "BFloat16Storage": BFLOAT16,
    "LongStorage": INT64, "IntStorage": INT32, "ShortStorage": INT16, "CharStorage": INT8,
    "ByteStorage": UINT8, "BoolStorage": BOOL, "ComplexFloatStorage": COMPLEX64,
    "ComplexDoubleStorage": COMPLEX128,
}
# legacy tensor classes, named in the old tar format's "tensors" member
_TENSOR_CLASSES = {name.replace("Storage", "Tensor"): dt for name, dt in _STORAGE_CLASSES.items()}

# Torch globals that are safe but describe tensors hubkit cannot represent: a clear "unsupported".
_UNSUPPORTED = {
    "torch._utils._rebuild_qtensor": "a quantized tensor",
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor",
    "torch._utils._rebuild_nested_tensor": "a nested tensor",
    "torch._utils._rebuild_meta_tensor_no_storage": "a meta tensor (it has no data)",
    "torch._utils._rebuild_wrapper_subclass": "a tensor subclass without its own storage",
    **{f"torch.{q}Storage": "a quantized storage" for q in ("QInt8", "QUInt8", "QInt32", "QUInt4x2", "QUInt2x4")},
    **{f"torch.{n}": "a dtype numpy cannot hold" for n in (
        "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
        "float4_e2m1fn_x2", "complex32", "chalf", "qint8", "quint8", "qint32", "quint4x2", "quint2x4",
        "bits1x8", "bits2x4", "bits4x2", "bits8", "bits16",
        *(f"uint{i}" for i in range(1, 8)), *(f"int{i}" for i in range(1, 8)))},
}

# ---------------------------------------------------------------- values the machine produces


@dataclass(eq=False)
class StorageRef:
    """One storage named by a persistent id: ``numel`` elements of ``dtype`` under ``key``.

    A legacy "view" storage points into ``base`` starting at element ``offset`` of the base's dtype.
    ``location`` is the device torch saved it from (``"cpu"``, ``"cuda:0"``), which ``torch.load``
    restores unless told otherwise.
    """

    key: str
    dtype: TorchDType
    numel: int
    untyped: bool = False
    base: StorageRef | None = None
    offset: int = 0
    location: str = "cpu"

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(eq=False)
class TensorRef:
    """A tensor the pickle described: ``shape``/``stride``/``offset`` in elements of ``dtype``.

    ``parameter`` marks an ``nn.Parameter`` (``_rebuild_parameter``); ``requires_grad`` is the flag
    torch pickled with it.
    """

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: TorchDType
    conj: bool = False
    neg: bool = False
    requires_grad: bool = False
    parameter: bool = False


@dataclass(frozen=True)
class Global:
    """An allowlisted global, as an inert marker: what it is, never the object itself."""

    module: str
    name: str
    kind: str  # "dict" | "rebuild" | "storage" | "dtype" | "tensor_class" | "size" | "record"
    dtype: TorchDType | None = None
    untyped: bool = False

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"


_REBUILDS = ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_parameter",
             "_rebuild_parameter_with_state")

# Attribute-bag classes whose pickled instances are read as AttributeRecord. Each is a class with no methods
# of its own beyond an empty __init__ (no __reduce__, __setstate__ or __slots__), so what pickle would do with
# it is object.__new__ plus __dict__.update(state): reading the state as data loses nothing. Add a class only
# after reading its source; a class with behaviour of its own must never be listed.
_RECORD_CLASSES = {
    # facebookresearch/pytorch_GAN_zoo models/utils/config.py: the `config` of every PGAN/DCGAN checkpoint that
    # torch.hub serves (models/base_GAN.py saves {"config": BaseConfig, "netG", "netD", "avgG"})
    ("models.utils.config", "BaseConfig"),
}


class AttributeRecord:
    """An instance of an allowlisted attribute-bag class (``_RECORD_CLASSES``), as data.

    ``qualname`` is the class's ``module.name`` as the file names it; ``attributes`` the ``__dict__`` pickle
    would have restored. Attributes read as ``record.depthScale0`` or ``record.attributes["depthScale0"]``.
    Nothing of the original class is imported or run.
    """

    __slots__ = ("attributes", "qualname")

    def __init__(self, qualname: str, attributes: dict[str, Any] | None = None) -> None:
        self.qualname = qualname
        self.attributes = {} if attributes is None else attributes

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probes (__deepcopy__, __getstate__, ...) are not attributes
            raise AttributeError(name)
        try:
            return self.attributes[name]
        except KeyError:
            raise AttributeError(f"the pickled {self.qualname} has no attribute {name!r}; it has "
                                 f"{sorted(self.attributes)}") from None

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, AttributeRecord) and self.qualname == other.qualname
                and self.attributes == other.attributes)

    __hash__ = None  # mutable, like the instance it stands for

    def __repr__(self) -> str:
        return f"AttributeRecord({self.qualname!r}, {self.attributes!r})"


def _allowlist() -> dict[tuple[str, str], Global]:
    table = {("collections", "OrderedDict"): Global("collections", "OrderedDict", "dict"),
             ("torch", "Size"): Global("torch", "Size", "size"),
             ("torch._tensor", "_rebuild_from_type_v2"): Global("torch._tensor", "_rebuild_from_type_v2",
                                                                 "rebuild"),
             ("torch", "Tensor"): Global("torch", "Tensor", "tensor_class"),
             ("torch.nn.parameter", "Parameter"): Global("torch.nn.parameter", "Parameter", "tensor_class"),
             ("torch", "UntypedStorage"): Global("torch", "UntypedStorage", "storage", UINT8, untyped=True),
             ("torch.storage", "UntypedStorage"): Global("torch.storage", "UntypedStorage", "storage", UINT8,
                                                         untyped=True)}
    for fn in _REBUILDS:
        table["torch._utils", fn] = Global("torch._utils", fn, "rebuild")
    for module in ("torch", "torch.cuda"):  # legacy files saved from a GPU name torch.cuda.FloatStorage
        for name, dt in _STORAGE_CLASSES.items():
            table[module, name] = Global(module, name, "storage", dt)
        for name, dt in _TENSOR_CLASSES.items():
            table[module, name] = Global(module, name, "tensor_class", dt)
    for name, dt in {**TORCH_DTYPES, **_DTYPE_ALIASES}.items():
        table["torch", name] = Global("torch", name, "dtype", dt)
    for module, name in _RECORD_CLASSES:
        table[module, name] = Global(module, name, "record")
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], Global] = _allowlist()


def refuse_global(where: str, qualname: str, how: str = "") -> UnsafeCheckpointError:
    """The error for a global outside the allowlist; ``.global_name`` holds ``module.name``."""
    err = UnsafeCheckpointError(
        f"{where}: the pickle references {qualname}{how}, which is not on hubkit's allowlist of torch "
        "tensor-rebuild functions, storage classes, dtypes and plain configuration classes of published "
        "checkpoints; nothing was imported or executed. Only "
        "load files you trust; if you trust this one, open it with torch.load(weights_only=False) and "
        "re-save its state dict with torch.save or hubkit.save"
    )
    err.global_name = qualname
    return err


def lookup_global(module: str, name: str, where: str) -> Global:
    found = ALLOWED_GLOBALS.get((module, name))
    if found is not None:
        return found
    qualname = f"{module}.{name}"
    if qualname in _UNSUPPORTED:
        raise CheckpointError(
            f"{where}: the checkpoint holds {_UNSUPPORTED[qualname]} ({qualname}), which hubkit does not "
            "read; convert it to a dense float/int tensor with torch and save it again"
        )
    raise refuse_global(where, qualname)


# ---------------------------------------------------------------- the rebuild functions, re-implemented


def _int(value: Any, what: str, where: str, *, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise CheckpointError(f"{where}: {what} should be an integer >= {minimum}, found {_describe(value)}")
    return value


def _int_tuple(value: Any, what: str, where: str) -> tuple[int, ...]:
    if not isinstance(value, tuple | list):
        raise CheckpointError(f"{where}: {what} should be a tuple of integers, found {_describe(value)}")
    return tuple(_int(v, what, where) for v in value)


def _flag(value: Any, what: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise CheckpointError(f"{where}: {what} should be True or False, found {_describe(value)}")
    return value


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, where: str,
            dtype: TorchDType | None = None, metadata: Any = None, requires_grad: bool = False) -> TensorRef:
    if not isinstance(storage, StorageRef):
        raise CheckpointError(f"{where}: a tensor's storage should be a persistent id, found {_describe(storage)}")
    shape = _int_tuple(size, "a tensor size", where)
    strides = _int_tuple(stride, "a tensor stride", where)
    if len(shape) != len(strides):
        raise CheckpointError(f"{where}: tensor size {shape} and stride {strides} have different lengths")
    if len(shape) > 32:
        raise CheckpointError(f"{where}: a tensor has {len(shape)} dimensions; hubkit reads at most 32")
    if dtype is None:
        if storage.untyped:
            raise CheckpointError(f"{where}: an untyped storage is used without a dtype (_rebuild_tensor_v3)")
        dtype = storage.dtype
    flags = {}
    if metadata is not None:
        if not isinstance(metadata, dict) or not set(metadata) <= {"conj", "neg"}:
            raise CheckpointError(f"{where}: unexpected tensor metadata {_describe(metadata)}")
        flags = {k: bool(v) for k, v in metadata.items()}
    return TensorRef(storage, _int(offset, "a storage offset", where), shape, strides, dtype,
                     requires_grad=requires_grad, **flags)


def _reduce(fn: Global, args: tuple, where: str) -> Any:
    """What calling the allowlisted ``fn(*args)`` would give, built without calling anything."""
    n = len(args)
    if fn.kind == "dict":
        if n == 0:
            return OrderedDict()
        if n == 1 and isinstance(args[0], list | tuple) and not args[0]:
            return OrderedDict()
        raise CheckpointError(f"{where}: OrderedDict is called with {n} arguments; torch writes none")
    if fn.kind == "size":
        if n == 1:
            return _int_tuple(args[0], "torch.Size", where)
        raise CheckpointError(f"{where}: torch.Size is called with {n} arguments; expected 1")
    if fn.kind != "rebuild":
        raise refuse_global(where, fn.qualname, " as a function to call")
    name = fn.name
    if name == "_rebuild_tensor" and n == 4:
        return _tensor(*args, where)
    if name == "_rebuild_tensor_v2" and n in (6, 7):
        storage, offset, size, stride, requires_grad, _hooks, *meta = args
        return _tensor(storage, offset, size, stride, where, metadata=meta[0] if meta else None,
                       requires_grad=_flag(requires_grad, "requires_grad", where))
    if name == "_rebuild_tensor_v3" and n in (7, 8):
        storage, offset, size, stride, requires_grad, _hooks, dtype, *meta = args
        if not (isinstance(dtype, Global) and dtype.kind == "dtype"):
            raise CheckpointError(f"{where}: _rebuild_tensor_v3 needs a torch dtype, found {_describe(dtype)}")
        return _tensor(storage, offset, size, stride, where, dtype.dtype, meta[0] if meta else None,
                       _flag(requires_grad, "requires_grad", where))
    if name in ("_rebuild_parameter", "_rebuild_parameter_with_state") and n in (3, 4):
        if not isinstance(args[0], TensorRef):
            raise CheckpointError(f"{where}: {name} wraps {_describe(args[0])}, not a tensor")
        # a new ref: the inner tensor may also be reachable through the memo as a plain tensor
        return replace(args[0], parameter=True, requires_grad=_flag(args[1], "requires_grad", where))
    if name == "_rebuild_from_type_v2" and n == 4:
        func, cls, inner, _state = args
        if not (isinstance(func, Global) and func.kind == "rebuild" and func.name != "_rebuild_from_type_v2"):
            raise CheckpointError(f"{where}: _rebuild_from_type_v2 wraps {_describe(func)}")
        if not (isinstance(cls, Global) and cls.kind == "tensor_class" and cls.dtype is None):
            raise CheckpointError(f"{where}: _rebuild_from_type_v2 makes a {_describe(cls)}, not a tensor")
        if not isinstance(inner, tuple):
            raise CheckpointError(f"{where}: _rebuild_from_type_v2 arguments are {_describe(inner)}")
        return _reduce(func, inner, where)
    raise CheckpointError(f"{where}: {fn.qualname} is called with {n} arguments, which torch never writes")


def _describe(value: Any) -> str:
    """A short, never-recursive description of a value for error messages."""
    if isinstance(value, Global):
        return value.qualname
    if isinstance(value, TensorRef):
        return "a tensor"
    if isinstance(value, AttributeRecord):
        return f"a {value.qualname} instance"
    if isinstance(value, str):
        return repr(value[:60])
    if isinstance(value, int | float | bool) or value is None:
        return repr(value)
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------- the machine


class _Mark:
    pass


_MARK = _Mark()
_SCALARS = (str, bytes, int, float, bool, type(None))
_LIMIT_LINE = 512  # GLOBAL module/name lines
_HASH_LIMIT = 64  # keys of one dict or set that may share a hash value; honest ones never come close


@dataclass
class _Machine:
    data: Any  # bytes-like: data[i] -> int, data[a:b] -> bytes
    pos: int
    end: int
    persistent_load: Callable[[Any], Any]
    where: str
    stack: list = field(default_factory=list)
    marks: list = field(default_factory=list)
    memo: dict = field(default_factory=dict)
    # id(container) -> (container, {hash: keys with that hash}); the container is held so its id stays its own
    hashes: dict = field(default_factory=dict)

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.where}: {what} (pickle byte {self.pos}); the file is corrupted or not "
                               "a torch checkpoint")

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > self.end:
            raise self.fail(f"the pickle ends early: {n} more bytes needed")
        out = self.data[self.pos : end]
        self.pos = end
        return out

    def line(self) -> str:
        end = self.pos
        limit = min(self.end, self.pos + _LIMIT_LINE)
        while end < limit and self.data[end] != 0x0A:
            end += 1
        if end >= limit:
            raise self.fail("a GLOBAL name is not newline-terminated")
        raw = self.take(end - self.pos)
        self.pos += 1
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise self.fail("a GLOBAL name is not ASCII") from None

    def pop(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise self.fail("the pickle pops from an empty stack")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise self.fail("the pickle reads from an empty stack")
        return self.stack[-1]

    def pop_mark(self) -> list:
        if not self.marks:
            raise self.fail("the pickle closes a MARK that was never opened")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def key(self, value: Any) -> Any:
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, tuple) and all(isinstance(v, _SCALARS) for v in value):
            return value
        raise self.fail(f"a dictionary key is {_describe(value)}; torch writes only scalar keys")

    def watch(self, target: dict | set | frozenset, key: Any) -> None:
        """Count ``key``'s hash before it is added to ``target``; refuse a flood of equal hashes.

        Containers under ``_HASH_LIMIT`` keys are not watched (they cannot be slow); a bigger one is
        counted from then on, so each membership test below walks at most ``_HASH_LIMIT`` equal hashes.
        """
        if len(target) < _HASH_LIMIT:
            return
        entry = self.hashes.get(id(target))
        if entry is None:
            counts: dict[int, int] = {}
            for k in target:
                counts[hash(k)] = counts.get(hash(k), 0) + 1
            entry = self.hashes[id(target)] = (target, counts)
        counts = entry[1]
        if key in target:
            return
        h = hash(key)
        counts[h] = counts.get(h, 0) + 1
        if counts[h] > _HASH_LIMIT:
            raise self.fail(f"more than {_HASH_LIMIT} keys of one dict or set share a hash value (like "
                            f"{_describe(key)}); keys crafted to collide make loading quadratic, a real "
                            "checkpoint never has them")

    def setitem(self, target: dict, key: Any, value: Any) -> None:
        key = self.key(key)
        self.watch(target, key)
        target[key] = value

    def add(self, target: set, key: Any) -> None:
        key = self.key(key)
        self.watch(target, key)
        target.add(key)

    def text(self, raw: bytes) -> str:
        try:
            return raw.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise self.fail("a string is not valid UTF-8") from None

    def run(self) -> Any:
        while True:
            if self.pos >= self.end:
                raise self.fail("the pickle ends without a STOP opcode")
            op = self.data[self.pos]
            self.pos += 1
            if op == 0x2E:  # STOP
                if len(self.stack) != 1 or self.marks:
                    raise self.fail("the pickle stops with a malformed stack")
                return self.stack[0]
            handler = _OPS.get(op)
            if handler is None:
                raise self.fail(f"opcode {bytes([op])!r} is not one torch writes (unknown or unsupported)")
            handler(self)


def _op_proto(m: _Machine) -> None:
    version = m.take(1)[0]
    if not 2 <= version <= 5:
        raise m.fail(f"pickle protocol {version} is not supported (torch writes protocol 2)")


def _op_frame(m: _Machine) -> None:
    m.take(8)


def _op_global(m: _Machine) -> None:
    module = m.line()
    name = m.line()
    m.stack.append(lookup_global(module, name, m.where))


def _op_stack_global(m: _Machine) -> None:
    name = m.pop()
    module = m.pop()
    if not (isinstance(module, str) and isinstance(name, str)):
        raise m.fail("STACK_GLOBAL needs two strings")
    m.stack.append(lookup_global(module, name, m.where))


def _op_inst(m: _Machine) -> None:
    module = m.line()
    name = m.line()
    raise refuse_global(m.where, f"{module}.{name}", " through the INST opcode, which torch never writes,")


def _op_obj(m: _Machine) -> None:
    items = m.pop_mark()
    target = _describe(items[0]) if items else "nothing"
    raise refuse_global(m.where, target, " through the OBJ opcode, which torch never writes,")


def _op_ext(m: _Machine) -> None:
    raise refuse_global(m.where, "a copyreg extension code", " (EXT opcode)")


def _op_reduce(m: _Machine) -> None:
    args = m.pop()
    fn = m.pop()
    if not isinstance(fn, Global):
        raise refuse_global(m.where, _describe(fn), " as a function to call")
    if not isinstance(args, tuple):
        raise m.fail(f"REDUCE arguments are {_describe(args)}, not a tuple")
    m.stack.append(_reduce(fn, args, m.where))


def _op_newobj(m: _Machine) -> None:
    args = m.pop()
    cls = m.pop()
    if isinstance(cls, Global) and cls.kind == "dict" and args == ():
        m.stack.append(OrderedDict())
        return
    if isinstance(cls, Global) and cls.kind == "record" and args == ():  # copyreg.__newobj__: __new__, no __init__
        m.stack.append(AttributeRecord(cls.qualname))
        return
    raise refuse_global(m.where, _describe(cls), " through NEWOBJ")


def _op_newobj_ex(m: _Machine) -> None:
    m.pop()
    m.pop()
    raise refuse_global(m.where, _describe(m.pop()), " through NEWOBJ_EX")


def _op_build(m: _Machine) -> None:
    state = m.pop()
    target = m.top()
    # OrderedDict.__reduce__ sends its attributes (a state dict's _metadata) as BUILD state; torch
    # tensors with Python attributes do too. Attributes are not items, so the state is dropped.
    if isinstance(target, dict | TensorRef) and isinstance(state, dict | tuple | type(None)):
        return
    if isinstance(target, AttributeRecord):  # what object.__setstate__ does: __dict__.update(state)
        if not (isinstance(state, dict) and all(isinstance(k, str) for k in state)):
            raise m.fail(f"BUILD gives {target.qualname} {_describe(state)}, not a dict of attribute names")
        target.attributes.update(state)
        return
    raise refuse_global(m.where, _describe(target), f" through BUILD with {_describe(state)}")


def _op_binpersid(m: _Machine) -> None:
    m.stack.append(m.persistent_load(m.pop()))


def _op_mark(m: _Machine) -> None:
    m.marks.append(len(m.stack))


def _op_pop(m: _Machine) -> None:
    if m.stack and m.marks and len(m.stack) == m.marks[-1]:
        m.marks.pop()  # POP of a MARK, as in pickle's own machine
    else:
        m.pop()


def _op_dup(m: _Machine) -> None:
    m.stack.append(m.top())


def _op_tuple(m: _Machine) -> None:
    m.stack.append(tuple(m.pop_mark()))


def _tuple_n(n: int) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        items = [m.pop() for _ in range(n)]
        m.stack.append(tuple(reversed(items)))

    return op


def _op_list(m: _Machine) -> None:
    m.stack.append(m.pop_mark())


def _op_dict(m: _Machine) -> None:
    items = m.pop_mark()
    if len(items) % 2:
        raise m.fail("DICT with an odd number of items")
    out: dict = {}
    for i in range(0, len(items), 2):
        m.setitem(out, items[i], items[i + 1])
    m.stack.append(out)


def _op_append(m: _Machine) -> None:
    value = m.pop()
    target = m.top()
    if not isinstance(target, list):
        raise m.fail(f"APPEND to {_describe(target)}")
    target.append(value)


def _op_appends(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if not isinstance(target, list):
        raise m.fail(f"APPENDS to {_describe(target)}")
    target.extend(items)


def _op_setitem(m: _Machine) -> None:
    value = m.pop()
    key = m.pop()
    target = m.top()
    if not isinstance(target, dict):
        raise m.fail(f"SETITEM on {_describe(target)}")
    m.setitem(target, key, value)


def _op_setitems(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if not isinstance(target, dict) or len(items) % 2:
        raise m.fail(f"SETITEMS on {_describe(target)} with {len(items)} items")
    for i in range(0, len(items), 2):
        m.setitem(target, items[i], items[i + 1])


def _op_additems(m: _Machine) -> None:
    items = m.pop_mark()
    target = m.top()
    if not isinstance(target, set):
        raise m.fail(f"ADDITEMS on {_describe(target)}")
    for v in items:
        m.add(target, v)


def _op_frozenset(m: _Machine) -> None:
    members: set = set()
    for v in m.pop_mark():
        m.add(members, v)
    m.stack.append(frozenset(members))


def _push(value_fn: Callable[[], Any]) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        m.stack.append(value_fn())

    return op


def _fixed(n: int, decode: Callable[[bytes], Any]) -> Callable[[_Machine], None]:
    def op(m: _Machine) -> None:
        m.stack.append(decode(m.take(n)))

    return op


def _sized(width: int, kind: str) -> Callable[[_Machine], None]:
    fmt = {1: "<B", 4: "<I", 8: "<Q"}[width]

    def op(m: _Machine) -> None:
        (n,) = struct.unpack(fmt, m.take(width))
        raw = m.take(n)
        if kind == "str":
            m.stack.append(m.text(raw))
        elif kind == "long":
            m.stack.append(int.from_bytes(raw, "little", signed=True))
        else:
            m.stack.append(bytes(raw))

    return op


def _memo_get(width: int) -> Callable[[_Machine], None]:
    fmt = {1: "<B", 4: "<I"}[width]

    def op(m: _Machine) -> None:
        (index,) = struct.unpack(fmt, m.take(width))
        if index not in m.memo:
            raise m.fail(f"memo entry {index} is read before it is written")
        m.stack.append(m.memo[index])

    return op


def _memo_put(width: int) -> Callable[[_Machine], None]:
    fmt = {1: "<B", 4: "<I"}[width]

    def op(m: _Machine) -> None:
        (index,) = struct.unpack(fmt, m.take(width))
        m.memo[index] = m.top()

    return op


def _op_memoize(m: _Machine) -> None:
    m.memo[len(m.memo)] = m.top()


_OPS: dict[int, Callable[[_Machine], None]] = {
    0x80: _op_proto, 0x95: _op_frame,
    ord("("): _op_mark, ord("0"): _op_pop, ord("1"): lambda m: m.pop_mark() and None, ord("2"): _op_dup,
    ord("N"): _push(lambda: None), 0x88: _push(lambda: True), 0x89: _push(lambda: False),
    ord("J"): _fixed(4, lambda b: struct.unpack("<i", b)[0]),
    ord("K"): _fixed(1, lambda b: b[0]),
    ord("M"): _fixed(2, lambda b: struct.unpack("<H", b)[0]),
    ord("G"): _fixed(8, lambda b: struct.unpack(">d", b)[0]),
    0x8A: _sized(1, "long"), 0x8B: _sized(4, "long"),
    ord("X"): _sized(4, "str"), 0x8C: _sized(1, "str"), 0x8D: _sized(8, "str"),
    ord("U"): _sized(1, "str"), ord("T"): _sized(4, "str"),  # Python 2 str, read as text
    ord("C"): _sized(1, "bytes"), ord("B"): _sized(4, "bytes"), 0x8E: _sized(8, "bytes"),
    ord(")"): _push(tuple), ord("t"): _op_tuple, 0x85: _tuple_n(1), 0x86: _tuple_n(2), 0x87: _tuple_n(3),
    ord("]"): _push(list), ord("l"): _op_list, ord("a"): _op_append, ord("e"): _op_appends,
    ord("}"): _push(dict), ord("d"): _op_dict, ord("s"): _op_setitem, ord("u"): _op_setitems,
    0x8F: _push(set), 0x90: _op_additems, 0x91: _op_frozenset,
    ord("h"): _memo_get(1), ord("j"): _memo_get(4), ord("q"): _memo_put(1), ord("r"): _memo_put(4),
    0x94: _op_memoize,
    ord("c"): _op_global, 0x93: _op_stack_global,
    ord("R"): _op_reduce, 0x81: _op_newobj, 0x92: _op_newobj_ex, ord("b"): _op_build,
    ord("i"): _op_inst, ord("o"): _op_obj, 0x82: _op_ext, 0x83: _op_ext, 0x84: _op_ext,
    ord("Q"): _op_binpersid,
}


def unpickle(data: Any, pos: int, *, persistent_load: Callable[[Any], Any], where: str,
             end: int | None = None) -> tuple[Any, int]:
    """Run one pickle from ``data[pos:end]`` and return ``(value, position after STOP)``.

    ``persistent_load(pid)`` turns each BINPERSID id into a value (a :class:`StorageRef` for torch
    files). Raises :class:`CheckpointError` for anything malformed, :class:`UnsafeCheckpointError`
    for anything that would import or call code outside the allowlist.
    """
    machine = _Machine(data, pos, len(data) if end is None else end, persistent_load, where)
    try:
        value = machine.run()
    except CheckpointError:
        raise
    except (TypeError, ValueError, OverflowError, MemoryError, struct.error) as e:
        raise machine.fail(f"malformed pickle ({type(e).__name__}: {e})") from e
    return value, machine.pos
