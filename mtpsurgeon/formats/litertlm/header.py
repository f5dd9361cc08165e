"""Decode the .litertlm header flatbuffer (``LiteRTLMMetaData``) with ``struct`` alone.

The official generated reader imports ``flatbuffers``, which imports numpy:
about 0.1 s that copying one section out (``extract --section``) does not
need. This walks the few tables of the header directly, checking every
offset, vector and string against the buffer, and returns plain tuples.

Schema (``litertlm_header_schema``): ``LiteRTLMMetaData { system_metadata:
SystemMetadata; section_metadata: SectionMetadata }``, ``SystemMetadata {
entries: [KeyValuePair] }``, ``SectionMetadata { objects: [SectionObject] }``,
``SectionObject { items: [KeyValuePair]; begin_offset: ulong; end_offset:
ulong; data_type: AnySectionDataType (ubyte) }``, ``KeyValuePair { key:
string; value: VData (union) }``; every ``VData`` member is a table with one
``value`` field.
"""
from __future__ import annotations

import struct
from typing import Any

from mtpsurgeon.formats.litertlm.schema import VDATA_NAMES, section_type_name

_U8 = struct.Struct("<B").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_U64 = struct.Struct("<Q").unpack_from

#: VData member -> struct format of its ``value`` field ('' = string)
_VALUE_FORMATS = {"UInt8": "<B", "Int8": "<b", "UInt16": "<H", "Int16": "<h", "UInt32": "<I", "Int32": "<i",
                  "Float32": "<f", "Bool": "<B", "StringValue": "", "UInt64": "<Q", "Int64": "<q", "Double": "<d"}

Item = tuple[str, Any, int]  #: (key, value, VData code)
Section = tuple[int, tuple[Item, ...], int, int]  #: (data type code, items, begin, end)


class HeaderError(ValueError):
    """The header flatbuffer is corrupt or holds something this reader cannot decode."""


class _Buf:
    """Bounds-checked reads of one flatbuffer."""

    __slots__ = ("buf", "size")

    def __init__(self, buf: bytes | memoryview) -> None:
        self.buf = buf
        self.size = len(buf)

    def _need(self, pos: int, n: int, what: str) -> None:
        if pos < 0 or pos + n > self.size:
            raise HeaderError(f"{what} at byte {pos} lies outside the header flatbuffer ({self.size} bytes)")

    def table(self, pos: int, what: str) -> tuple[int, tuple[int, ...]]:
        """(table position, its field offsets) of the table at ``pos``."""
        self._need(pos, 4, what)
        vt = pos - _I32(self.buf, pos)[0]
        self._need(vt, 4, f"{what} vtable")
        vt_size = _U16(self.buf, vt)[0]
        n = max(0, (vt_size - 4) // 2)
        self._need(vt, 4 + 2 * n, f"{what} vtable")
        return pos, struct.unpack_from(f"<{n}H", self.buf, vt + 4)

    def field(self, table: tuple[int, tuple[int, ...]], index: int) -> int:
        """Absolute position of field ``index`` of ``table``, 0 when absent."""
        pos, offsets = table
        off = offsets[index] if index < len(offsets) else 0
        return pos + off if off else 0

    def indirect(self, pos: int, what: str) -> int:
        self._need(pos, 4, what)
        return pos + _U32(self.buf, pos)[0]

    def scalar(self, pos: int, fmt: str, default: Any, what: str) -> Any:
        if not pos:
            return default
        self._need(pos, struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """(first element position, count) of the vector an offset field at ``pos`` points to."""
        vec = self.indirect(pos, what)
        self._need(vec, 4, what)
        n = _U32(self.buf, vec)[0]
        self._need(vec + 4, n * elem, f"{what} ({n} entries)")
        return vec + 4, n

    def tables(self, table: tuple[int, tuple[int, ...]], index: int, what: str) -> list[tuple[int, tuple[int, ...]]]:
        pos = self.field(table, index)
        if not pos:
            return []
        start, n = self.vector(pos, 4, what)
        return [self.table(self.indirect(start + 4 * i, what), f"{what}[{i}]") for i in range(n)]

    def string(self, pos: int, what: str) -> bytes | None:
        if not pos:
            return None
        start, n = self.vector(pos, 1, what)
        return bytes(self.buf[start : start + n])


def _item(b: _Buf, kvp: tuple[int, tuple[int, ...]], where: str) -> Item:
    raw_key = b.string(b.field(kvp, 0), f"{where} item key")
    key = "" if raw_key is None else raw_key.decode("utf-8", errors="replace")
    vtype = b.scalar(b.field(kvp, 1), "<B", 0, f"{where} item '{key}' type")
    name = VDATA_NAMES.get(vtype)
    if name is None:
        raise HeaderError(f"{where} item '{key}': unknown value type {vtype}")
    pos = b.field(kvp, 2)
    value: Any = None
    if name != "NONE" and pos:
        table = b.table(b.indirect(pos, f"{where} item '{key}' value"), f"{where} item '{key}' value")
        fmt = _VALUE_FORMATS[name]
        field = b.field(table, 0)
        if fmt == "":
            raw = b.string(field, f"{where} item '{key}' string")
            value = None if raw is None else raw.decode("utf-8", errors="replace")
        else:
            value = b.scalar(field, fmt, 0.0 if fmt in ("<f", "<d") else 0, f"{where} item '{key}' value")
            if name == "Bool":
                value = bool(value)
    return key, value, vtype


def parse_header(buf: bytes | memoryview) -> tuple[tuple[Item, ...], tuple[Section, ...]]:
    """(system metadata items, sections) of a ``LiteRTLMMetaData`` flatbuffer; raises :class:`HeaderError`."""
    b = _Buf(buf)
    if b.size < 8:
        raise HeaderError(f"too short to hold a flatbuffer ({b.size} bytes)")
    root = b.table(b.indirect(0, "root"), "root table")
    system: tuple[Item, ...] = ()
    pos = b.field(root, 0)
    if pos:
        sm = b.table(b.indirect(pos, "system metadata"), "system metadata")
        system = tuple(_item(b, kvp, "system metadata") for kvp in b.tables(sm, 0, "system metadata entries"))
    sections: list[Section] = []
    pos = b.field(root, 1)
    if pos:
        smeta = b.table(b.indirect(pos, "section metadata"), "section metadata")
        for i, obj in enumerate(b.tables(smeta, 0, "sections")):
            where = f"section {i}"
            dt = b.scalar(b.field(obj, 3), "<B", 0, f"{where} data type")
            if section_type_name(dt) is None:
                raise HeaderError(f"{where}: unknown section data type {dt}")
            items = tuple(_item(b, kvp, where) for kvp in b.tables(obj, 0, f"{where} items"))
            begin = b.scalar(b.field(obj, 1), "<Q", 0, f"{where} begin offset")
            end = b.scalar(b.field(obj, 2), "<Q", 0, f"{where} end offset")
            sections.append((dt, items, begin, end))
    return system, tuple(sections)
