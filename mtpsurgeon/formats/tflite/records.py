"""Immutable records of a TFLite model's metadata.

Records keep indices exactly as stored in the file (no compaction) and, for
buffers, the absolute file offset of their bytes, so tensor data can be
viewed in place.
"""
from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class TensorRecord:
    """One tensor of one subgraph."""

    subgraph: int
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: DType
    buffer: int
    quantization: Quantization | None
    is_variable: bool = False
    shape_signature: tuple[int, ...] | None = None
    external_buffer: int = 0
    sparsity: Sparsity | None = None  #: set when the buffer stores only kept values (see :mod:`sparsity`)

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
    group: str
    offset: int
    length: int
    packing: str


@dataclass(frozen=True, slots=True)
class ModelRecords:
    """Everything the reader extracts from the flatbuffer, nothing copied."""

    version: int
    description: str
    operator_codes: tuple[OperatorCodeRecord, ...]
    subgraphs: tuple[SubgraphRecord, ...]
    buffers: tuple[BufferRecord, ...]
    signatures: tuple[SignatureRecord, ...]
    metadata: tuple[tuple[str, int], ...]  #: (name, buffer index)
    external_buffers: tuple[ExternalBufferRecord, ...] = field(default=())
    metadata_buffer: tuple[int, ...] = ()  #: deprecated Model.metadata_buffer: buffer indices kept alive
