"""IR building blocks: buffers, operator codes, tensors, nodes."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.dtypes import BY_NAME, DTYPES
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES, BUILTIN_OP_NAMES, fb

#: Operators kept by ``cleanup`` even when nothing reads their outputs.
SIDE_EFFECT_OPS = frozenset({"ASSIGN_VARIABLE", "CALL_ONCE", "IF", "WHILE", "CALL"})
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def _str(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode("utf-8", errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _as_bytes_view(data: Any) -> memoryview:
    """A flat uint8 memoryview over ``data`` (no copy when it is contiguous)."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data)
        return memoryview(data.reshape(-1).view(np.uint8))
    mv = data if isinstance(data, memoryview) else memoryview(data)
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


def dtype_code(dtype: int | str | np.dtype | type) -> int:
    """TensorType code from a code, a name ('FLOAT32') or a numpy dtype."""
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        if int(dtype) not in DTYPES:
            raise SurgeryError(f"unknown TensorType code {dtype}")
        return int(dtype)
    if isinstance(dtype, str) and dtype.upper() in BY_NAME:
        return BY_NAME[dtype.upper()].code
    np_dt = np.dtype(dtype)
    for code, d in DTYPES.items():
        if d.numpy and np.dtype(d.numpy) == np_dt and not d.packed and d.name not in ("BFLOAT16",) and not d.name.startswith("FLOAT8"):
            return code
    raise SurgeryError(f"no TensorType for {dtype!r}")


class Buffer:
    """Constant bytes: a zero-copy view into a source map, or new bytes.

    ``data`` is a flat uint8 memoryview; it is never copied until written.
    """

    __slots__ = ("data", "__weakref__")

    def __init__(self, data: Any = b"") -> None:
        self.data = _as_bytes_view(data)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def numpy(self) -> np.ndarray:
        """The bytes as a read-only uint8 array (a view, not a copy)."""
        return np.frombuffer(self.data, dtype=np.uint8)

    def __repr__(self) -> str:
        return f"<Buffer {self.nbytes} bytes>"


@dataclass(eq=False)
class OpCode:
    """One operator code: builtin (by code) or custom (by name), with version."""

    builtin_code: int
    custom_code: str | None = None
    version: int = 1
    deprecated_builtin_code: int | None = None

    @property
    def name(self) -> str:
        n = BUILTIN_OP_NAMES.get(self.builtin_code, str(self.builtin_code))
        return self.custom_code if n == "CUSTOM" and self.custom_code else n

    def same_as(self, other: "OpCode") -> bool:
        return (self.builtin_code, self.custom_code, self.version) == (other.builtin_code, other.custom_code, other.version)

    @classmethod
    def make(cls, op: str | int, version: int = 1, custom_code: str | None = None) -> "OpCode":
        """From a builtin name ('FULLY_CONNECTED'), a code, or a custom op name."""
        if isinstance(op, str) and op.upper() in BUILTIN_OP_CODES:
            code = BUILTIN_OP_CODES[op.upper()]
        elif isinstance(op, int):
            code = op
        else:  # an unknown name is a custom operator
            code, custom_code = BUILTIN_OP_CODES["CUSTOM"], custom_code or str(op)
        return cls(code, custom_code, version)


@dataclass(eq=False)
class Tensor:
    """A tensor of one graph. ``buffer`` is None for activations (buffer 0)."""

    name: str
    shape: list[int]
    dtype: int  #: TensorType code
    buffer: Buffer | None = None
    quantization: Any = None  #: fb.QuantizationParametersT, kept as imported
    is_variable: bool = False
    shape_signature: list[int] | None = None
    sparsity: Any = None  #: fb.SparsityParametersT
    has_rank: bool = False
    variant_tensors: Any = None
    external_buffer: int = 0
    #: Blockwise quantization names its scale / zero-point tensors by index;
    #: the IR holds them as objects and writes their indices back on export.
    block_scales: "Tensor | None" = None
    block_zero_points: "Tensor | None" = None

    @property
    def dtype_name(self) -> str:
        return DTYPES[self.dtype].name

    @property
    def is_constant(self) -> bool:
        return (self.buffer is not None and self.buffer.nbytes > 0) or self.external_buffer != 0

    def numpy(self) -> np.ndarray:
        """Stored values (byte-aligned types only) as a read-only view."""
        d = DTYPES[self.dtype]
        if self.buffer is None or d.numpy is None or d.packed:
            raise SurgeryError(f"tensor '{self.name}': no byte-aligned constant data")
        return np.frombuffer(self.buffer.data, dtype=np.dtype(d.numpy)).reshape(self.shape)

    def __repr__(self) -> str:
        kind = "const " if self.is_constant else ""
        return f"<Tensor {kind}'{self.name}' {self.dtype_name}{list(self.shape)}>"


@dataclass(eq=False)
class Node:
    """One operator. Optional inputs are None (index -1 in the file)."""

    opcode: OpCode
    inputs: list[Tensor | None] = field(default_factory=list)
    outputs: list[Tensor | None] = field(default_factory=list)
    options: Any = None  #: object-API ``...OptionsT`` (BuiltinOptions union)
    options_type: int = 0
    options2: Any = None  #: BuiltinOptions2 union (StableHLO ops)
    options2_type: int = 0
    custom_options: memoryview | bytes | None = None
    custom_options_format: int = 0
    mutating_variable_inputs: list[bool] | None = None
    intermediates: list[Tensor] = field(default_factory=list)
    debug_metadata_index: int = -1
    #: control-flow option field → called Graph (or list of Graphs)
    called: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> str:
        return self.opcode.name

    def tensors(self) -> Iterator[Tensor]:
        for t in (*self.inputs, *self.outputs, *self.intermediates):
            if t is not None:
                yield t

    def __repr__(self) -> str:
        ins = ", ".join(t.name if t else "-" for t in self.inputs)
        outs = ", ".join(t.name if t else "-" for t in self.outputs)
        return f"<Node {self.op}({ins}) -> {outs}>"


def _options_union(options: Any) -> tuple[int, int]:
    """(BuiltinOptions type, BuiltinOptions2 type) for an ``...OptionsT`` object."""
    if options is None:
        return 0, 0
    name = type(options).__name__.removesuffix("T")
    if hasattr(fb.BuiltinOptions, name):
        return getattr(fb.BuiltinOptions, name), 0
    if hasattr(fb.BuiltinOptions2, name):
        return 0, getattr(fb.BuiltinOptions2, name)
    raise SurgeryError(f"{type(options).__name__} is not a BuiltinOptions or BuiltinOptions2 type")

