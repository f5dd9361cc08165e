"""Models whose weights live in a file beside them, as converters write them (``Model.external_buffers``).

Test scaffolding, independent of mtpsurgeon's reader and writer: it unpacks a
model with the LiteRT schema's object API (``ai_edge_litert.schema_py_generated``),
moves every constant buffer into one weights file (``ExternalBufferGroup`` +
``ExternalBuffer`` entries, tensors pointing at them through ``external_buffer``)
and packs it again with flatbuffers' Builder. LiteRT's ``CompiledModel`` loads
such a model and reads the weights file from the model's folder.
"""
from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
from ai_edge_litert import schema_py_generated as fb

#: Where the first weight starts in the weights file, and how every weight is aligned.
ALIGN = 64


@dataclass
class External:
    """An externalized model: its bytes and the weights file it names."""

    model: bytes
    weights: bytes
    group: str  #: the ExternalBufferGroup name written (the weights file's name)
    buffers: int  #: external buffers written


def _payload(m: fb.ModelT, data: bytes, index: int) -> bytes:
    b = m.buffers[index]
    if b.data is not None and len(b.data):
        return bytes(bytearray(b.data))
    if b.offset > 1:  # stored after the flatbuffer (models > 2 GiB, ai-edge-quantizer for large data)
        return data[b.offset : b.offset + b.size]
    return b""


def externalize(data: bytes, group: str, *, offset_shift: int = 0, length_shift: int = 0,
                group_index: int = 0) -> External:
    """Move every constant of the model ``data`` into one weights file named ``group``.

    ``offset_shift`` / ``length_shift`` / ``group_index`` write a deliberately
    wrong table (entries past the end of the file, an undeclared group) for
    hostile-input tests.
    """
    m = fb.ModelT.InitFromPackedBuf(bytearray(data), 0)
    weights = bytearray(ALIGN)
    ids: dict[int, int] = {}
    entries = []
    for sg in m.subgraphs or []:
        for t in sg.tensors or []:
            if not t.buffer or t.isVariable:
                continue
            if t.buffer not in ids:
                payload = _payload(m, data, t.buffer)
                if not payload:
                    continue
                weights += bytes(-len(weights) % ALIGN)
                e = fb.ExternalBufferT()
                e.id, e.group = len(entries) + 1, group_index
                e.offset, e.length = len(weights) + offset_shift, len(payload) + length_shift
                weights += payload
                entries.append(e)
                ids[t.buffer] = e.id
            t.externalBuffer = ids[t.buffer]
            t.buffer = 0
    for index in ids:
        b = m.buffers[index]
        b.data, b.offset, b.size = None, 0, 0
    g = fb.ExternalBufferGroupT()
    g.name = group
    m.externalBufferGroups = [g]
    m.externalBuffers = entries
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return External(bytes(builder.Output()), bytes(weights), group, len(entries))


def rename_group(model: bytes, name: str) -> bytes:
    """``model`` with its first ExternalBufferGroup renamed to ``name`` (any string: hostile names too)."""
    m = fb.ModelT.InitFromPackedBuf(bytearray(model), 0)
    m.externalBufferGroups[0].name = name
    builder = flatbuffers.Builder(len(model) + len(name.encode("utf-8", "surrogatepass")) + 1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
