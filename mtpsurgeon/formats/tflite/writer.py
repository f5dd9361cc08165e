"""Serialise a surgery IR :class:`~mtpsurgeon.surgery.ir.Model` to a .tflite file.

The model's tables are packed with the schema's object API and a
``flatbuffers.Builder`` (file identifier ``TFL3``). Weight bytes are never
re-encoded: inline buffers are copied byte for byte into the flatbuffer (16-byte
aligned, as the schema's ``force_align`` asks). When the weights would push the
flatbuffer past its 2 GiB limit (or when asked), buffers are written as offset
buffers instead: the flatbuffer holds only ``Buffer.offset/size`` and the bytes
follow it, aligned, streamed from their source map in chunks. Offsets are
learned with a placeholder pack first (scalars have a fixed width, so the real
pack has the same size, which is asserted).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any

import flatbuffers

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import FILE_IDENTIFIER, fb
from mtpsurgeon.outputs import atomic_output

FLATBUFFER_LIMIT = 2**31  #: flatbuffers' 32-bit signed offsets
INLINE_ALIGN = 16  #: ``Buffer.data`` is ``force_align: 16`` in the schema
_SLACK = 1 << 20
_PLACEHOLDER_OFFSET = 1 << 40  #: any value > 1: same packed size as the real offsets
CHUNK = 1 << 24


@dataclass(frozen=True)
class TFLiteWriteResult:
    """What was written: total bytes, flatbuffer bytes, and the buffer mode."""

    size: int
    flatbuffer_size: int
    offset_buffers: bool
    buffers_after_flatbuffer: int  #: number of offset buffers appended


class _BufferT(fb.BufferT):
    """A Buffer packed either inline (16-aligned bytes) or as offset/size only."""

    def __init__(self, payload: memoryview | None, inline: bool) -> None:
        super().__init__()
        self.payload = payload
        self.inline = inline

    def Pack(self, builder: flatbuffers.Builder) -> int:  # noqa: N802 (object-API name)
        data = None
        if self.inline and self.payload is not None and self.payload.nbytes:
            data = _byte_vector(builder, self.payload, INLINE_ALIGN)
        fb.BufferStart(builder)
        if data is not None:
            fb.BufferAddData(builder, data)
        if not self.inline and self.payload is not None and self.payload.nbytes:
            fb.BufferAddOffset(builder, self.offset)
            fb.BufferAddSize(builder, self.size)
        return fb.BufferEnd(builder)


def _byte_vector(builder: flatbuffers.Builder, data: memoryview, align: int) -> int:
    """A [ubyte] vector whose first byte is ``align``-aligned; one copy, no re-encoding."""
    n = data.nbytes
    builder.StartVector(1, n, align)
    builder.head -= n
    builder.Bytes[builder.head : builder.head + n] = data
    builder.vectorNumElems = n
    return builder.EndVector()


def _pack(mt: "fb.ModelT", initial: int = 1 << 16) -> memoryview:
    b = flatbuffers.Builder(max(1024, min(initial, FLATBUFFER_LIMIT - 1)))
    b.Finish(mt.Pack(b), file_identifier=FILE_IDENTIFIER)
    return memoryview(b.Bytes)[b.head :]  # no copy of Output()


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def write_tflite(model: Any, out: str | os.PathLike | IO[bytes], *, force_offset_buffers: bool = False,
                 force: bool = False, alignment: int = 64) -> TFLiteWriteResult:
    """Write ``model`` (an IR Model) as a .tflite file or into a binary stream.

    A path is written atomically and refused if it exists unless ``force``.
    ``alignment`` (16 or more) aligns offset buffers; offsets count from the
    start of the model, so a model written into a container stays valid.
    Buffers named by ``Model.metadata`` or ``Model.metadata_buffer`` always stay inline.
    """
    if alignment < 16 or alignment & (alignment - 1):
        raise SurgeryError(f"alignment must be a power of two >= 16, not {alignment}")
    mt = model.to_modelT()
    meta = {md.buffer for md in mt.metadata or []} | {int(b) for b in (mt.metadataBuffer if mt.metadataBuffer is not None else [])}
    bufs: list[_BufferT] = []
    for i, bt in enumerate(mt.buffers):
        payload = None if bt.data is None else memoryview(bt.data)
        bufs.append(_BufferT(payload, inline=(i in meta or i == 0)))
    mt.buffers = bufs
    if bufs and bufs[0].payload is not None and bufs[0].payload.nbytes:
        raise SurgeryError("buffer 0 must be the empty sentinel")
    movable = [b for b in bufs if not b.inline and b.payload is not None and b.payload.nbytes]
    for b in movable:
        b.offset, b.size = _PLACEHOLDER_OFFSET, b.payload.nbytes
    header = _pack(mt)  # tables only: no weights in the Builder
    header_size = header.nbytes

    if not force_offset_buffers:
        estimate = header_size + sum(_align(b.payload.nbytes + 4, INLINE_ALIGN) + INLINE_ALIGN for b in movable)
        if estimate + _SLACK < FLATBUFFER_LIMIT:
            for b in movable:
                b.inline = True
            try:
                flat = _pack(mt, estimate + _SLACK)
            except flatbuffers.builder.BuilderSizeError:
                for b in movable:
                    b.inline = False
            else:
                return _emit(out, force, flat, [], alignment, offset_mode=False)

    # offset buffers: lay the bytes out after the flatbuffer, then pack for real
    pos = _align(header_size, alignment)
    layout = []
    for b in movable:
        b.offset = pos
        layout.append((pos, b.payload))
        pos = _align(pos + b.payload.nbytes, alignment)
    flat = _pack(mt, header_size + 1024)
    if flat.nbytes != header_size:
        raise SurgeryError(f"internal: flatbuffer size changed from {header_size} to {flat.nbytes} between packs")
    return _emit(out, force, flat, layout, alignment, offset_mode=True)


def _emit(out: Any, force: bool, flat: memoryview, layout: list[tuple[int, memoryview]], alignment: int,
          offset_mode: bool) -> TFLiteWriteResult:
    if isinstance(out, (str, os.PathLike)):
        with atomic_output(out, force) as tmp, open(tmp, "wb") as f:
            size = _stream(f, flat, layout)
    else:
        size = _stream(out, flat, layout)
    return TFLiteWriteResult(size, flat.nbytes, offset_mode, len(layout))


def _stream(f: IO[bytes], flat: memoryview, layout: list[tuple[int, memoryview]]) -> int:
    """Write the flatbuffer, then each offset buffer at its offset (zero padding between)."""
    f.write(flat)
    pos = flat.nbytes
    for offset, data in layout:
        if offset > pos:
            f.write(b"\0" * (offset - pos))
        for start in range(0, data.nbytes, CHUNK):
            f.write(data[start : start + CHUNK])
        pos = offset + data.nbytes
    return pos


def tflite_bytes(model: Any, **kwargs: Any) -> bytes:
    """The serialised model as bytes (small models and tests)."""
    import io

    bio = io.BytesIO()
    write_tflite(model, bio, **kwargs)
    return bio.getvalue()
