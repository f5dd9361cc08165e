"""TFLiteModel: the records of one model plus zero-copy access to its data."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.mapped import MappedFile
from mtpsurgeon.formats.tflite.dtypes import bf16_to_f32, float8_to_f32, unpack_subbyte
from mtpsurgeon.formats.tflite.records import (
    BufferRecord,
    BufferTable,
    ExternalBufferRecord,
    ModelRecords,
    OperatorCodeRecord,
    SignatureRecord,
    SubgraphRecord,
    TensorRecord,
)
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.formats.tflite.sparsity import densify_tensor


class TFLiteModel:
    """A parsed TFLite model living at ``[offset, offset+length)`` of a mapped file.

    Metadata are immutable records (see :mod:`records`); tensor payloads are
    numpy views into the map, copied only when sub-byte values are unpacked.
    """

    def __init__(self, source: MappedFile, offset: int, length: int, records: ModelRecords, label: str | None = None) -> None:
        self.source = source
        self.offset = offset
        self.length = length
        self.records = records
        self.label = label
        self._side_files: dict[int, MappedFile] | None = None  #: external weights files, by group, once opened
        self._external_by_id: dict[int, ExternalBufferRecord] | None = None

    # -- metadata -----------------------------------------------------------
    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def subgraphs(self) -> tuple[SubgraphRecord, ...]:
        return self.records.subgraphs

    @property
    def buffers(self) -> Sequence[BufferRecord]:
        return self.records.buffers

    @property
    def operator_codes(self) -> tuple[OperatorCodeRecord, ...]:
        return self.records.operator_codes

    @property
    def signatures(self) -> tuple[SignatureRecord, ...]:
        return self.records.signatures

    def signature(self, key: str) -> SignatureRecord | None:
        """The SignatureDef with this key, or None."""
        return next((s for s in self.signatures if s.key == key), None)

    def tensors(self):
        """Iterate over every tensor of every subgraph."""
        for sg in self.subgraphs:
            yield from sg.tensors

    def tensor(self, subgraph: int, index: int) -> TensorRecord:
        return self.subgraphs[subgraph].tensors[index]

    def has_data(self, t: TensorRecord) -> bool:
        """True when the tensor carries constant bytes (inline, offset or external)."""
        if t.external_buffer != 0:
            return True
        if t.buffer <= 0:
            return False
        buffers = self.buffers
        return (buffers.size(t.buffer) if isinstance(buffers, BufferTable) else buffers[t.buffer].size) > 0

    def stored_size(self, t: TensorRecord) -> int:
        """How many bytes the tensor's payload takes where it is stored (no external file is opened)."""
        if t.external_buffer:
            ext = self._external_entry(t.external_buffer)
            return ext.length if ext is not None else 0
        return self.buffers[t.buffer].size if t.buffer > 0 else 0

    def sha256(self) -> str:
        """sha256 of the model's bytes (streamed)."""
        return self.source.sha256(self.offset, self.length)

    def _fail(self, problem: str) -> MalformedFileError:
        prefix = f"{self.label}: " if self.label else ""
        return MalformedFileError(self.path, prefix + problem)

    def operator_options(self, subgraph: int, index: int) -> object | None:
        """Operator ``index``'s builtin options as the generated schema's object (``SoftmaxOptionsT``, ...), or None.

        Read from the file on demand: the records keep no options (few callers need them).
        """
        buf = self.source.slice(self.offset, self.length, "model")
        op = fb.Model.GetRootAs(buf, 0).Subgraphs(subgraph).Operators(index)
        kind = op.BuiltinOptionsType()
        return fb.BuiltinOptionsCreator(kind, op.BuiltinOptions()) if kind else None

    # -- data ---------------------------------------------------------------
    def buffer_bytes(self, index: int) -> memoryview:
        """The raw bytes of buffer ``index`` (empty for buffer 0 / no data)."""
        b = self.buffers[index]
        if b.size == 0:
            return memoryview(b"")
        return self.source.slice(b.offset, b.size, f"buffer {index}")

    def tensor_bytes(self, t: TensorRecord) -> memoryview:
        """The stored payload of a constant tensor, exactly as in the file."""
        if t.external_buffer:
            return self._external_bytes(t)
        return self.buffer_bytes(t.buffer)

    def _external_bytes(self, t: TensorRecord) -> memoryview:
        ext = self._external_entry(t.external_buffer)
        if ext is None:
            raise self._fail(f"tensor '{t.name}': external buffer {t.external_buffer} is not declared")
        mapped = self.side_file(ext.group_index)
        return mapped.slice(ext.offset, ext.length, f"external buffer {ext.id} (tensor '{t.name}')")

    def _external_entry(self, id_: int) -> ExternalBufferRecord | None:
        if self._external_by_id is None:
            self._external_by_id = {}
            for e in self.records.external_buffers:
                self._external_by_id.setdefault(e.id, e)  # the first entry of a repeated id, as before
        return self._external_by_id.get(id_)

    def side_file(self, group: int) -> MappedFile:
        """The weights file of external buffer group ``group``, opened once through the input policy."""
        if self._side_files is None:
            self._side_files = {}
        mapped = self._side_files.get(group)
        if mapped is None:
            name = self.records.external_buffer_groups[group]
            what = f"{self.label + ': ' if self.label else ''}external buffer group {group}"
            path, fh = self.source.side_files.open(self.path, what, name)
            try:
                mapped = MappedFile(path, fh)  # the views handed out keep the map alive
            except MalformedFileError as exc:  # an empty weights file
                raise self._fail(f"external buffer group {group}: weights file {exc}") from exc
            self._side_files[group] = mapped
        return mapped

    def tensor_array(self, t: TensorRecord, unpack: bool = False) -> np.ndarray:
        """The tensor's stored values as a numpy array shaped like the tensor.

        Byte-aligned types are zero-copy views. Sub-byte types (INT4, UINT4,
        INT2) come back as their packed uint8 bytes unless ``unpack`` is true,
        in which case a new int8/uint8 array of one value per element is made.
        BFLOAT16 and FLOAT8 are returned as raw words (uint16 / uint8) unless
        ``unpack`` asks for exact float32 values. A sparse tensor comes back
        densified (a new array; see :mod:`sparsity`).
        """
        raw = self.tensor_bytes(t)
        dt = t.dtype
        if t.sparsity is not None:
            arr = densify_tensor(self, t)
            if unpack and dt.name == "BFLOAT16":
                return bf16_to_f32(arr)
            if unpack and dt.name.startswith("FLOAT8"):
                return float8_to_f32(arr, dt.name)
            return arr
        if dt.numpy is None:
            raise self._fail(f"tensor '{t.name}' has type {dt.name}, which has no fixed-size elements")
        count = t.num_elements
        expected = dt.nbytes(count)
        if len(raw) < expected:
            raise self._fail(f"tensor '{t.name}': {dt.name}{list(t.shape)} needs {expected} bytes, buffer has {len(raw)}")
        if dt.packed:
            if not unpack:
                return np.frombuffer(raw, dtype=np.uint8, count=expected)
            return unpack_subbyte(raw[:expected], dt.bits, dt.signed, count).reshape(t.shape)
        arr = np.frombuffer(raw, dtype=np.dtype(dt.numpy), count=count).reshape(t.shape)
        if unpack and dt.name == "BFLOAT16":
            return bf16_to_f32(arr)
        if unpack and dt.name.startswith("FLOAT8"):
            return float8_to_f32(arr, dt.name)
        return arr

    def __repr__(self) -> str:
        where = f" {self.label}" if self.label else ""
        return f"<TFLiteModel {self.path.name}{where}: {len(self.subgraphs)} subgraphs, {len(self.buffers)} buffers>"
