"""Parse a TFLite flatbuffer into immutable records, reading metadata only.

``read_tflite`` walks the model's tables once through the generated schema
readers, checking every vector, index and data range against the file, and
returns a :class:`TFLiteModel` whose tensor data are views into the map.
"""
from __future__ import annotations

import struct
from array import array
from typing import Iterator

import numpy as np

from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.formats.flatbuf import CORRUPT, FlatbufferBoundsError, check_root, string, vector_len
from mtpsurgeon.formats.mapped import MappedFile
from mtpsurgeon.formats.tflite.dtypes import DTYPES
from mtpsurgeon.formats.tflite.model import TFLiteModel
from mtpsurgeon.formats.tflite.records import (
    STORAGE_KINDS,
    BufferRecord,
    BufferTable,
    ExternalBufferRecord,
    ModelRecords,
    OperatorCodeRecord,
    OperatorRecord,
    Quantization,
    SignatureRecord,
    SubgraphRecord,
    TensorRecord,
)
from mtpsurgeon.formats.tflite.schema import (
    BUILTIN_OP_NAMES,
    CONTROL_FLOW_SUBGRAPH_FIELDS,
    FILE_IDENTIFIER,
    QUANT_DETAILS_NAMES,
    fb,
)
from mtpsurgeon.formats.tflite.sparsity import parse_sparsity


class _Bad(Exception):
    """Internal: a structural problem, turned into MalformedFileError."""


def read_tflite(source: MappedFile, offset: int = 0, length: int | None = None, label: str | None = None) -> TFLiteModel:
    """Read the TFLite model stored at ``source[offset:offset+length]``.

    ``label`` names the model in error messages (e.g. ``section 3``).
    """
    length = source.size - offset if length is None else length
    where = f"{label}: " if label else ""
    buf = source.slice(offset, length, f"{label or 'model'}")
    if length < 8 or bytes(buf[4:8]) != FILE_IDENTIFIER:
        raise MalformedFileError(source.path, f"{where}not a TFLite model (missing 'TFL3' file identifier)")
    try:
        check_root(buf, "model")
        records = _parse(buf, offset, length)
    except _Bad as exc:
        raise MalformedFileError(source.path, f"{where}{exc}") from exc
    except FlatbufferBoundsError as exc:
        raise MalformedFileError(source.path, f"{where}corrupt flatbuffer: {exc}") from exc
    except CORRUPT as exc:
        raise MalformedFileError(source.path, f"{where}corrupt flatbuffer ({type(exc).__name__}: {exc})") from exc
    for i, name in enumerate(records.external_buffer_groups):  # refused now, before any verb reads or writes
        source.side_files.check_name(source.path, f"{where}external buffer group {i}", name)
    source.release_pages(offset, length)  # the records hold what is needed; weights fault back in on use
    return TFLiteModel(source, offset, length, records, label)


def _parse(buf: memoryview, base: int, length: int) -> ModelRecords:
    model = fb.Model.GetRootAs(buf, 0)
    opcodes = tuple(_opcode(model.OperatorCodes(i), i) for i in range(vector_len(model, 1, 4, "operator_codes")))
    raw = _Raw(buf)
    ints = _Ints()
    ints.upto(vector_len(model, 4, 4, "buffers"))
    offsets, sizes, kinds = array("q"), array("q"), bytearray()
    for i, pos in enumerate(raw.tables(model._tab.Pos, 12, "buffers")):
        off, size, kind = _raw_buffer(raw, pos, i, base, length)
        offsets.append(off)
        sizes.append(size)
        kinds.append(kind)
    buffers = BufferTable(offsets, sizes, kinds)
    n_sub = vector_len(model, 2, 4, "subgraphs")
    subgraphs = tuple(_subgraph(model.Subgraphs(i), i, opcodes, len(buffers), n_sub, ints) for i in range(n_sub))
    signatures = tuple(
        _signature(model.SignatureDefs(i), i, subgraphs) for i in range(vector_len(model, 7, 4, "signature_defs"))
    )
    metadata = []
    for i in range(vector_len(model, 6, 4, "metadata")):
        m = model.Metadata(i)
        metadata.append((string(m.Name()) or "", m.Buffer()))
    metadata_buffer = _ints(model, 5, "MetadataBufferAsNumpy", "metadata_buffer")
    groups = [string(model.ExternalBufferGroups(i).Name()) or "" for i in range(vector_len(model, 8, 4, "external_buffer_groups"))]
    externals = []
    for i in range(vector_len(model, 9, 4, "external_buffers")):
        e = model.ExternalBuffers(i)
        g = e.Group()
        if not 0 <= g < len(groups):
            raise _Bad(f"external buffer {e.Id()} names group {g}, but the model declares {len(groups)} group(s)")
        externals.append(ExternalBufferRecord(e.Id(), groups[g], e.Offset(), e.Length(), string(e.Packing()) or "", g))
    return ModelRecords(
        version=model.Version(),
        description=string(model.Description()) or "",
        operator_codes=opcodes,
        subgraphs=subgraphs,
        buffers=buffers,
        signatures=signatures,
        metadata=tuple(metadata),
        external_buffers=tuple(externals),
        external_buffer_groups=tuple(groups),
        metadata_buffer=metadata_buffer,
    )


def _opcode(oc: "fb.OperatorCode", index: int) -> OperatorCodeRecord:
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    if code not in BUILTIN_OP_NAMES:
        raise _Bad(f"operator code {index}: unknown builtin operator {code} (file newer than the installed LiteRT schema?)")
    custom = string(oc.CustomCode())
    name = BUILTIN_OP_NAMES[code]
    if name == "CUSTOM" and custom:
        name = custom
    return OperatorCodeRecord(index, code, name, custom, oc.Version())


def _buffer(b: "fb.Buffer", index: int, base: int, length: int) -> BufferRecord:
    off, size = b.Offset(), b.Size()
    if off > 1:
        if off + size > length:
            raise _Bad(f"buffer {index}: offset {off} + size {size} runs past the end of the model ({length} bytes)")
        return BufferRecord(index, base + off, size, "offset")
    n = vector_len(b, 0, 1, f"buffer {index} data")
    if n == 0:
        return BufferRecord(index, 0, 0, "empty")
    start = b._tab.Vector(b._tab.Offset(4))
    return BufferRecord(index, base + start, n, "inline")


_U64 = struct.Struct("<Q").unpack_from


_EMPTY, _INLINE, _OFFSET = (STORAGE_KINDS.index(k) for k in ("empty", "inline", "offset"))


def _raw_buffer(raw: "_Raw", pos: int, index: int, base: int, length: int) -> tuple[int, int, int]:
    """(absolute offset, size, storage code) of one Buffer table read directly (same checks as :func:`_buffer`)."""
    p = raw.field(pos, 6)
    off = _U64(raw.buf, p)[0] if p else 0
    if off > 1:
        p = raw.field(pos, 8)
        size = _U64(raw.buf, p)[0] if p else 0
        if off + size > length:
            raise _Bad(f"buffer {index}: offset {off} + size {size} runs past the end of the model ({length} bytes)")
        return base + off, size, _OFFSET
    p = raw.field(pos, 4)
    if not p:
        return 0, 0, _EMPTY
    start, n = raw.vector(p, 1, f"buffer {index} data")
    if n == 0:
        return 0, 0, _EMPTY
    return base + start, n, _INLINE


def _ints(table: object, field_index: int, getter: str, what: str) -> tuple[int, ...]:
    n = vector_len(table, field_index, 4, what)
    if n == 0:
        return ()
    return tuple(int(x) for x in getattr(table, getter)())


def _quantization(q: "fb.QuantizationParameters | None", where: str) -> Quantization | None:
    if q is None:
        return None

    def arr(field_index: int, size: int, getter: str) -> np.ndarray | None:
        if vector_len(q, field_index, size, f"{where} quantization") == 0:
            return None
        return getattr(q, getter)()

    details = QUANT_DETAILS_NAMES.get(q.DetailsType())
    if details is None:
        raise _Bad(f"{where}: unknown quantization details type {q.DetailsType()}")
    block_size, scales_t, zps_t = 0, -1, -1
    if details == "BlockwiseQuantization":
        bq = fb.BlockwiseQuantization()
        table = q.Details()
        bq.Init(table.Bytes, table.Pos)
        block_size, scales_t, zps_t = bq.BlockSize(), bq.Scales(), bq.ZeroPoints()
    return Quantization(
        scale=arr(2, 4, "ScaleAsNumpy"),
        zero_point=arr(3, 8, "ZeroPointAsNumpy"),
        quantized_dimension=q.QuantizedDimension(),
        min=arr(0, 4, "MinAsNumpy"),
        max=arr(1, 4, "MaxAsNumpy"),
        details=details,
        block_size=block_size,
        block_scales_tensor=scales_t,
        block_zero_points_tensor=zps_t,
    )


_U8 = struct.Struct("<B").unpack_from
_I8 = struct.Struct("<b").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from


class _Ints:
    """One int object per index, shared by every record of a model that holds that index.

    Python caches only -5..256; a model of 200,000 tensors would otherwise
    hold one 28-byte int per tensor index, buffer reference and operator
    input/output (about 20 MB). ``table[i]`` is ``i`` for ``0 <= i < n`` and
    ``table[-1]`` is ``-1`` (an optional operator input).
    """

    __slots__ = ("table",)

    def __init__(self) -> None:
        self.table: list[int] = [-1]

    def upto(self, n: int) -> list[int]:
        """The table, covering at least ``0 .. n-1``."""
        t = self.table
        if len(t) - 1 < n:
            t.pop()
            t.extend(range(len(t), n))
            t.append(-1)
        return t


_SLOTS = {n: struct.Struct(f"<{n}H").unpack_from for n in (11,)}  #: vtable readers of the tables read per tensor
_NO_QUANTIZATION = Quantization(None, None)  #: shared by every tensor whose quantization table is empty (records are immutable)


class _Raw:
    """Direct field access into one flatbuffer (the generated readers cost ~20 calls per field).

    Used for the per-tensor and per-operator tables, which a model has
    hundreds of thousands of. Every read is bounds-checked: struct refuses
    to read past the buffer, and vectors are checked before they are read.
    """

    __slots__ = ("buf", "size", "shapes")

    def __init__(self, buf: memoryview) -> None:
        self.buf = buf
        self.size = len(buf)
        self.shapes: dict[tuple[int, ...], tuple[int, ...]] = {}  #: one tuple per distinct shape

    def field(self, table: int, slot: int) -> int:
        """Absolute position of field ``slot`` (vtable byte offset) of ``table``, or 0 when absent."""
        buf = self.buf
        vt = table - _I32(buf, table)[0]
        if slot >= _U16(buf, vt)[0]:
            return 0
        off = _U16(buf, vt + slot)[0]
        return table + off if off else 0

    def slots(self, table: int, n: int) -> tuple[int, ...]:
        """Offsets in ``table`` of its first ``n`` fields (0 = absent), from one read of its vtable."""
        buf = self.buf
        vt = table - _I32(buf, table)[0]
        have = (_U16(buf, vt)[0] - 4) >> 1
        if have >= n:
            return _SLOTS[n](buf, vt + 4)
        if have <= 0:
            return (0,) * n
        return struct.unpack_from(f"<{have}H", buf, vt + 4) + (0,) * (n - have)

    def ints_at(self, pos: int, what: str) -> tuple[int, ...]:
        start, n = self.vector(pos, 4, what)
        return struct.unpack_from(f"<{n}i", self.buf, start) if n else ()

    def str_at(self, pos: int) -> str:
        start, n = self.vector(pos, 1, "string")
        return str(self.buf[start : start + n], "utf-8", "replace")

    def table(self, pos: int) -> int:
        """The table an offset field at ``pos`` points to."""
        return pos + _U32(self.buf, pos)[0]

    def vector(self, pos: int, elem_size: int, what: str) -> tuple[int, int]:
        """(start of the elements, count) of the vector an offset field at ``pos`` points to."""
        vec = pos + _U32(self.buf, pos)[0]
        n = _U32(self.buf, vec)[0]
        if vec + 4 + n * elem_size > self.size:
            raise FlatbufferBoundsError(f"{what}: vector of {n} entries overruns the flatbuffer")
        return vec + 4, n

    def ints(self, table: int, slot: int, what: str) -> tuple[int, ...] | None:
        """An int32 vector field (None when absent)."""
        pos = self.field(table, slot)
        if not pos:
            return None
        start, n = self.vector(pos, 4, what)
        return struct.unpack_from(f"<{n}i", self.buf, start) if n else ()

    def string(self, table: int, slot: int) -> str | None:
        pos = self.field(table, slot)
        if not pos:
            return None
        start, n = self.vector(pos, 1, "string")
        return bytes(self.buf[start : start + n]).decode("utf-8", errors="replace")

    def tables(self, table: int, slot: int, what: str) -> Iterator[int]:
        """Positions of the tables in a vector-of-tables field (generated one by one)."""
        pos = self.field(table, slot)
        if not pos:
            return iter(())
        start, n = self.vector(pos, 4, what)
        return (start + 4 * i + _U32(self.buf, start + 4 * i)[0] for i in range(n))


# Tensor / Operator field slots in the LiteRT schema (vtable byte offsets: 4 + 2 * field id).
_T_SHAPE, _T_TYPE, _T_BUFFER, _T_NAME, _T_QUANT, _T_VARIABLE, _T_SPARSITY, _T_SHAPE_SIG, _T_EXTERNAL = 4, 6, 8, 10, 12, 14, 16, 18, 24
_OP_OPCODE, _OP_INPUTS, _OP_OUTPUTS, _OP_INTERMEDIATES = 4, 6, 8, 20


def _raw_tensor(raw: _Raw, pos: int, sg: int, index: int, n_buffers: int, ints: list[int]) -> TensorRecord:
    """One tensor read straight from its table (same record and checks as :func:`_tensor`)."""
    buf = raw.buf
    o = raw.slots(pos, 11)  # the vtable, read once: each field's offset in the table (0 = absent)
    code = _I8(buf, pos + o[1])[0] if o[1] else 0
    dtype = DTYPES.get(code)
    if dtype is None:
        raise _Bad(f"subgraph {sg} tensor {index}: unknown tensor type {code}")
    buffer = _U32(buf, pos + o[2])[0] if o[2] else 0
    if buffer and not buffer < n_buffers:
        raise _Bad(f"subgraph {sg} tensor {index}: buffer index {buffer} out of range ({n_buffers} buffers)")
    shape = raw.ints_at(pos + o[0], "tensor shape") if o[0] else ()
    shape = raw.shapes.setdefault(shape, shape)
    quant = None
    if o[4]:
        q = raw.table(pos + o[4])
        if _U16(buf, q - _I32(buf, q)[0])[0] <= 4:  # a table with no fields set (converters write one per tensor)
            quant = _NO_QUANTIZATION
        else:
            table = fb.QuantizationParameters()
            table.Init(buf, q)
            quant = _quantization(table, f"subgraph {sg} tensor {index}")
    return TensorRecord(
        subgraph=sg,
        index=index,
        name=raw.str_at(pos + o[3]) if o[3] else "",
        shape=shape,
        dtype=dtype,
        buffer=ints[buffer],
        quantization=quant,
        is_variable=bool(_U8(buf, pos + o[5])[0]) if o[5] else False,
        shape_signature=raw.ints_at(pos + o[7], "tensor shape_signature") if o[7] else None,
        external_buffer=_U32(buf, pos + o[10])[0] if o[10] else 0,
        sparsity=_raw_sparsity(raw, pos + o[6], sg, index) if o[6] else None,
    )


def _raw_sparsity(raw: _Raw, field_pos: int, sg: int, index: int):
    """The tensor's SparsityParameters (rare: parsed through the generated table API)."""
    sp = fb.SparsityParameters()
    sp.Init(raw.buf, raw.table(field_pos))
    return parse_sparsity(sp, f"subgraph {sg} tensor {index}")


def _called_subgraphs(op: "fb.Operator", name: str, where: str) -> tuple[int, ...]:
    fields = CONTROL_FLOW_SUBGRAPH_FIELDS.get(name)
    if not fields:
        return ()
    if name.startswith("STABLEHLO_") and op.BuiltinOptions2Type():
        options = fb.BuiltinOptions2Creator(op.BuiltinOptions2Type(), op.BuiltinOptions2())
    elif op.BuiltinOptionsType():
        options = fb.BuiltinOptionsCreator(op.BuiltinOptionsType(), op.BuiltinOptions())
    else:
        return ()
    called: list[int] = []
    for f in fields:
        value = getattr(options, f, None)
        if value is None:
            continue
        called.extend(int(v) for v in (value if hasattr(value, "__len__") else [value]))
    return tuple(called)


def _subgraph(s: "fb.SubGraph", sg: int, opcodes: tuple[OperatorCodeRecord, ...], n_buffers: int, n_sub: int,
              ints: _Ints) -> SubgraphRecord:
    raw = _Raw(s._tab.Bytes)
    n_tensors = vector_len(s, 0, 4, f"subgraph {sg} tensors")
    n_ops = vector_len(s, 3, 4, f"subgraph {sg} operators")
    table = ints.upto(max(n_tensors, n_ops, n_buffers, 1))
    tensors = tuple(_raw_tensor(raw, pos, sg, table[i], n_buffers, table)
                    for i, pos in enumerate(raw.tables(s._tab.Pos, 4, f"subgraph {sg} tensors")))
    n_t = len(tensors)
    shared = table.__getitem__

    def check(ids: tuple[int, ...], what: str) -> tuple[int, ...]:
        """``ids`` checked against the tensors, made of the model's shared int objects."""
        for i in ids:
            if not -1 <= i < n_t:
                raise _Bad(f"subgraph {sg} {what}: tensor index {i} out of range ({n_t} tensors)")
        return tuple(map(shared, ids)) if ids else ()

    ops = []
    for i, pos in enumerate(raw.tables(s._tab.Pos, 10, f"subgraph {sg} operators")):
        p = raw.field(pos, _OP_OPCODE)
        oc = _U32(raw.buf, p)[0] if p else 0
        if not 0 <= oc < len(opcodes):
            raise _Bad(f"subgraph {sg} operator {i}: opcode index {oc} out of range ({len(opcodes)} operator codes)")
        name = opcodes[oc].name
        called = ()
        if name in CONTROL_FLOW_SUBGRAPH_FIELDS:
            op = fb.Operator()
            op.Init(raw.buf, pos)
            called = _called_subgraphs(op, name, f"subgraph {sg} operator {i}")
        for c in called:
            if not 0 <= c < n_sub:
                raise _Bad(f"subgraph {sg} operator {i} ({name}): calls subgraph {c}, which does not exist")
        ops.append(
            OperatorRecord(
                subgraph=sg,
                index=table[i],
                opcode_index=oc,
                op_name=name,
                inputs=check(raw.ints(pos, _OP_INPUTS, "op inputs") or (), f"operator {i} inputs"),
                outputs=check(raw.ints(pos, _OP_OUTPUTS, "op outputs") or (), f"operator {i} outputs"),
                intermediates=check(raw.ints(pos, _OP_INTERMEDIATES, "op intermediates") or (), f"operator {i} intermediates"),
                called_subgraphs=called,
            )
        )
    return SubgraphRecord(
        index=sg,
        name=string(s.Name()) or "",
        tensors=tensors,
        inputs=check(_ints(s, 1, "InputsAsNumpy", "inputs"), "inputs"),
        outputs=check(_ints(s, 2, "OutputsAsNumpy", "outputs"), "outputs"),
        operators=tuple(ops),
    )


def _signature(sd: "fb.SignatureDef", index: int, subgraphs: tuple[SubgraphRecord, ...]) -> SignatureRecord:
    key = string(sd.SignatureKey()) or ""
    sg = sd.SubgraphIndex()
    if not 0 <= sg < len(subgraphs):
        raise _Bad(f"signature '{key}': subgraph index {sg} out of range ({len(subgraphs)} subgraphs)")
    n_t = len(subgraphs[sg].tensors)

    def maps(field_index: int, getter: str, what: str) -> tuple[tuple[str, int], ...]:
        out = []
        for j in range(vector_len(sd, field_index, 4, f"signature '{key}' {what}")):
            m = getattr(sd, getter)(j)
            t = m.TensorIndex()
            if not 0 <= t < n_t:
                raise _Bad(f"signature '{key}' {what} '{string(m.Name())}': tensor index {t} out of range")
            out.append((string(m.Name()) or "", t))
        return tuple(out)

    return SignatureRecord(index, key, sg, maps(0, "Inputs", "input"), maps(1, "Outputs", "output"))
