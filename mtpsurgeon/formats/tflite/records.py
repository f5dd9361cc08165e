"""Immutable records of a TFLite model's metadata.

Records keep indices exactly as stored in the file (no compaction) and, for
buffers, the absolute file offset of their bytes, so tensor data can be
viewed in place.
"""
from __future__ import annotations

import operator
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from mtpsurgeon.formats.tflite.dtypes import DType
from mtpsurgeon.formats.tflite.sparsity import Sparsity


@dataclass(frozen=True, slots=True)
class Quantization:
    """A tensor's quantization parameters, as stored."""

    scale: np.ndarray | None  #: float32, one per tensor or per channel
    zero_point: np.ndarray | None  #: int64
    quantized_dimension: int = 0
    min: np.ndarray | None = None
    max: np.ndarray | None = None
    details: str = "NONE"  #: QuantizationDetails union type name
    block_size: int = 0  #: blockwise only
    block_scales_tensor: int = -1  #: blockwise only: FLOAT16 scale tensor index
    block_zero_points_tensor: int = -1

    @property
    def scheme(self) -> str:
        """'blockwise', 'per-channel', 'per-tensor', 'custom', or 'none'."""
        if self.details == "BlockwiseQuantization":
            return "blockwise"
        if self.details not in ("NONE", "BlockwiseQuantization"):
            return "custom"
        n = 0 if self.scale is None else len(self.scale)
        if n > 1:
            return "per-channel"
        if n == 1:
            return "per-tensor"
        return "none"

    @property
    def is_empty(self) -> bool:
        """True when nothing useful is stored (no scales, no min/max, no details)."""
        return self.scheme == "none" and (self.min is None or len(self.min) == 0)

    def to_json(self) -> dict:
        """Summary for --json output (arrays only when short)."""
        out: dict = {"scheme": self.scheme, "quantized_dimension": self.quantized_dimension}
        for key in ("scale", "zero_point"):
            arr = getattr(self, key)
            out[f"{key}_count"] = 0 if arr is None else int(len(arr))
            if arr is not None and len(arr) <= 4:
                out[key] = arr.tolist()
        if self.scheme == "blockwise":
            out.update(block_size=self.block_size, block_scales_tensor=self.block_scales_tensor)
        return out


@dataclass(frozen=True, slots=True, init=False, repr=False)
class TensorRecord:
    """One tensor of one subgraph.

    ``is_variable``, ``shape_signature``, ``external_buffer`` and ``sparsity``
    are rarely set: they share one slot (None when all are unset), which
    keeps a model of 200,000 tensors about 5 MB smaller.
    """

    subgraph: int
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: DType
    buffer: int
    quantization: Quantization | None
    _extras: tuple | None  #: (is_variable, shape_signature, external_buffer, sparsity), or None: all unset

    def __init__(self, subgraph: int, index: int, name: str, shape: tuple[int, ...], dtype: DType, buffer: int,
                 quantization: Quantization | None, is_variable: bool = False,
                 shape_signature: tuple[int, ...] | None = None, external_buffer: int = 0,
                 sparsity: Sparsity | None = None) -> None:
        put = object.__setattr__
        put(self, "subgraph", subgraph)
        put(self, "index", index)
        put(self, "name", name)
        put(self, "shape", shape)
        put(self, "dtype", dtype)
        put(self, "buffer", buffer)
        put(self, "quantization", quantization)
        rare = is_variable or shape_signature is not None or external_buffer or sparsity is not None
        put(self, "_extras", (is_variable, shape_signature, external_buffer, sparsity) if rare else None)

    @property
    def is_variable(self) -> bool:
        return False if self._extras is None else self._extras[0]

    @property
    def shape_signature(self) -> tuple[int, ...] | None:
        return None if self._extras is None else self._extras[1]

    @property
    def external_buffer(self) -> int:
        return 0 if self._extras is None else self._extras[2]

    @property
    def sparsity(self) -> Sparsity | None:
        """Set when the buffer stores only kept values (see :mod:`sparsity`)."""
        return None if self._extras is None else self._extras[3]

    def __repr__(self) -> str:
        return (f"TensorRecord(subgraph={self.subgraph!r}, index={self.index!r}, name={self.name!r}, "
                f"shape={self.shape!r}, dtype={self.dtype!r}, buffer={self.buffer!r}, quantization={self.quantization!r}, "
                f"is_variable={self.is_variable!r}, shape_signature={self.shape_signature!r}, "
                f"external_buffer={self.external_buffer!r}, sparsity={self.sparsity!r})")

    @property
    def has_sparsity(self) -> bool:
        return self.sparsity is not None

    @property
    def num_elements(self) -> int:
        """Product of the static shape (1 for a scalar)."""
        n = 1
        for d in self.shape:
            n *= max(d, 0)
        return n

    @property
    def is_quantized(self) -> bool:
        """True when the tensor holds integers meant to be read through scales."""
        q = self.quantization
        return q is not None and q.scheme != "none" and not self.dtype.is_float

    @property
    def has_spurious_quantization(self) -> bool:
        """Float tensor carrying scales: they must be ignored, never applied."""
        q = self.quantization
        return q is not None and q.scheme != "none" and self.dtype.is_float


@dataclass(frozen=True, slots=True)
class BufferRecord:
    """One entry of Model.buffers; ``offset`` is absolute in the mapped file."""

    index: int
    offset: int
    size: int
    storage: str  #: 'empty', 'inline' or 'offset'


STORAGE_KINDS = ("empty", "inline", "offset")  #: BufferRecord.storage values, by code


class BufferTable(Sequence):
    """``Model.buffers`` kept as three compact arrays; each access makes its :class:`BufferRecord`.

    A model may have hundreds of thousands of buffers: a record object each
    (plus its offset int) costs about 100 bytes, the arrays 17. Records made
    here are equal (``==``) to any other record of the same entry.
    """

    __slots__ = ("_offsets", "_sizes", "_kinds")

    def __init__(self, offsets: array, sizes: array, kinds: bytes | bytearray) -> None:
        if not len(offsets) == len(sizes) == len(kinds):
            raise ValueError("buffer table columns differ in length")
        self._offsets = offsets
        self._sizes = sizes
        self._kinds = bytes(kinds)

    @classmethod
    def of(cls, records: "Sequence[BufferRecord]") -> "BufferTable":
        """A table holding ``records`` (their indices must be 0, 1, 2, …)."""
        return cls(array("q", (r.offset for r in records)), array("q", (r.size for r in records)),
                   bytes(STORAGE_KINDS.index(r.storage) for r in records))

    def __len__(self) -> int:
        return len(self._kinds)

    def __getitem__(self, index):
        if type(index) is int and index >= 0:  # the common case, kept short
            return BufferRecord(index, self._offsets[index], self._sizes[index], STORAGE_KINDS[self._kinds[index]])
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        i = operator.index(index)
        n = len(self._kinds)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"buffer index {index} out of range ({n} buffers)")
        return BufferRecord(i, self._offsets[i], self._sizes[i], STORAGE_KINDS[self._kinds[i]])

    def size(self, index: int) -> int:
        """``self[index].size`` without making the record."""
        return self._sizes[index]

    def __iter__(self) -> Iterator["BufferRecord"]:
        offsets, sizes, kinds = self._offsets, self._sizes, self._kinds
        for i in range(len(kinds)):
            yield BufferRecord(i, offsets[i], sizes[i], STORAGE_KINDS[kinds[i]])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BufferTable):
            return (self._offsets, self._sizes, self._kinds) == (other._offsets, other._sizes, other._kinds)
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self._offsets.tobytes(), self._sizes.tobytes(), self._kinds))

    def __repr__(self) -> str:
        return f"<BufferTable: {len(self)} buffers>"


@dataclass(frozen=True, slots=True)
class OperatorCodeRecord:
    """One entry of Model.operator_codes."""

    index: int
    builtin_code: int
    name: str  #: builtin name, or the custom code for CUSTOM ops
    custom_code: str | None
    version: int


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """One operator of one subgraph."""

    subgraph: int
    index: int
    opcode_index: int
    op_name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...] = ()
    called_subgraphs: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class SubgraphRecord:
    """One subgraph: tensors, operators, and its own inputs/outputs."""

    index: int
    name: str
    tensors: tuple[TensorRecord, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: tuple[OperatorRecord, ...]


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """A SignatureDef: named inputs/outputs of one subgraph."""

    index: int
    key: str
    subgraph: int
    inputs: tuple[tuple[str, int], ...]  #: (name, tensor index)
    outputs: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ExternalBufferRecord:
    """Model.external_buffers entry: bytes in a separate weights file."""

    id: int
    group: str  #: the group's name: untrusted, resolved only by :mod:`mtpsurgeon.inputs`
    offset: int
    length: int
    packing: str
    group_index: int = 0  #: index into ``ModelRecords.external_buffer_groups``


@dataclass(frozen=True, slots=True)
class ModelRecords:
    """Everything the reader extracts from the flatbuffer, nothing copied."""

    version: int
    description: str
    operator_codes: tuple[OperatorCodeRecord, ...]
    subgraphs: tuple[SubgraphRecord, ...]
    buffers: Sequence[BufferRecord]  #: a :class:`BufferTable` from the reader (indexable, iterable, sized)
    signatures: tuple[SignatureRecord, ...]
    metadata: tuple[tuple[str, int], ...]  #: (name, buffer index)
    external_buffers: tuple[ExternalBufferRecord, ...] = field(default=())
    external_buffer_groups: tuple[str, ...] = ()  #: ExternalBufferGroup names (untrusted file names)
    metadata_buffer: tuple[int, ...] = ()  #: deprecated Model.metadata_buffer: buffer indices kept alive
