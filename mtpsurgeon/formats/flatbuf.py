"""Bounds checks around the generated flatbuffer readers.

The generated classes trust the bytes. Python itself refuses out-of-range
scalar reads, but a corrupt vector length could make a loop run for billions
of iterations. ``vector_len`` validates a vector against the buffer before
anything iterates over it, which keeps parsing time bounded by file size.
Flatbuffer offsets to tables/vectors are unsigned and point forward, so a
walk over a schema without recursive tables cannot cycle.
"""
from __future__ import annotations

import struct
from typing import Any

#: Exceptions that generated readers raise on corrupt bytes.
CORRUPT = (struct.error, IndexError, ValueError, TypeError, UnicodeDecodeError, OverflowError)


class FlatbufferBoundsError(ValueError):
    """A vector or table of the flatbuffer lies outside its buffer."""


def slot(field_index: int) -> int:
    """vtable slot offset of the schema's ``field_index``-th field."""
    return 4 + 2 * field_index


def vector_len(table: Any, field_index: int, elem_size: int, what: str) -> int:
    """Length of a vector field, after checking it fits inside the buffer."""
    tab = table._tab
    off = tab.Offset(slot(field_index))
    if off == 0:
        return 0
    start = tab.Vector(off)
    count = tab.VectorLen(off)
    if start < 0 or start + count * elem_size > len(tab.Bytes):
        raise FlatbufferBoundsError(f"{what}: vector of {count} entries overruns the flatbuffer")
    return count


def string(value: bytes | None) -> str | None:
    """Decode a flatbuffer string (UTF-8, replacement on bad bytes)."""
    if value is None:
        return None
    return value.decode("utf-8", errors="replace")


def check_root(buf: memoryview, what: str) -> None:
    """Check that the root table offset and its vtable lie inside ``buf``."""
    if len(buf) < 8:
        raise FlatbufferBoundsError(f"{what}: too short to hold a flatbuffer ({len(buf)} bytes)")
    (root,) = struct.unpack_from("<I", buf, 0)
    if root + 4 > len(buf):
        raise FlatbufferBoundsError(f"{what}: root table offset {root} is past the end")
    (vt_rel,) = struct.unpack_from("<i", buf, root)
    vtable = root - vt_rel
    if vtable < 0 or vtable + 4 > len(buf):
        raise FlatbufferBoundsError(f"{what}: root vtable offset {vtable} is outside the buffer")
