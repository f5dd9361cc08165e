"""Assign indices again and export the IR to the schema's object API."""
from __future__ import annotations

import copy
from typing import Any, Iterable

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir.elements import (
    _PLACEHOLDER_FOR_GREATER_OP_CODES,
    Buffer,
    OpCode,
    Tensor,
)
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.model_data import ModelData


class _Index:
    """Identity-keyed index assignment."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.items: list[Any] = []
        self._pos: dict[int, int] = {}
        for x in items:
            self.add(x)

    def add(self, x: Any) -> int:
        k = id(x)
        if k not in self._pos:
            self._pos[k] = len(self.items)
            self.items.append(x)
        return self._pos[k]

    def get(self, x: Any) -> int | None:
        return self._pos.get(id(x))


def export_model(m: ModelData) -> "fb.ModelT":
    """The object-API model for ``m`` (indices assigned afresh; data not copied)."""
    mt = fb.ModelT()
    mt.version = m.version
    mt.description = m.description or None
    # operator codes: the model's own list first (stable indices), then new ones
    codes = _Index(m.opcodes)

    def opcode_index(oc: OpCode) -> int:
        i = codes.get(oc)
        if i is not None:
            return i
        same = next((j for j, o in enumerate(codes.items) if o.same_as(oc)), None)
        return same if same is not None else codes.add(oc)

    # buffers: sentinel, the model's list, then new ones in first-use order
    sentinel = Buffer(b"")
    bufs = _Index([sentinel, *m.buffers])

    def buffer_index(b: Buffer | None) -> int:
        return 0 if b is None else bufs.add(b)

    gindex = _Index(m.graphs)
    mt.subgraphs = []
    for g in m.graphs:
        sg = fb.SubGraphT()
        sg.name = g.name or None
        sg.debugMetadataIndex = g.debug_metadata_index
        tix = _Index(g.tensors)

        def ti(t: Tensor | None, where: str) -> int:
            if t is None:
                return -1
            i = tix.get(t)
            if i is None:
                raise SurgeryError(f"graph '{g.name}' {where}: tensor '{t.name}' is not in the graph's tensor list")
            return i

        sg.tensors = []
        for t in g.tensors:
            tt = fb.TensorT()
            tt.name = t.name
            tt.shape = list(t.shape)
            tt.type = t.dtype
            tt.buffer = buffer_index(t.buffer)
            q = t.quantization
            if t.block_scales is not None and q is not None and q.details is not None:
                q = copy.copy(q)
                q.details = copy.copy(q.details)
                q.details.scales = ti(t.block_scales, "block scales")
                q.details.zeroPoints = ti(t.block_zero_points, "block zero points") if t.block_zero_points is not None else -1
            tt.quantization = q
            tt.isVariable = t.is_variable
            tt.sparsity = t.sparsity
            tt.shapeSignature = None if t.shape_signature is None else list(t.shape_signature)
            tt.hasRank = t.has_rank
            tt.variantTensors = t.variant_tensors
            tt.externalBuffer = t.external_buffer
            sg.tensors.append(tt)
        sg.inputs = [ti(t, "inputs") for t in g.inputs]
        sg.outputs = [ti(t, "outputs") for t in g.outputs]
        sg.operators = []
        for n in g.nodes:
            o = fb.OperatorT()
            o.opcodeIndex = opcode_index(n.opcode)
            o.inputs = [ti(t, f"{n!r} inputs") for t in n.inputs]
            o.outputs = [ti(t, f"{n!r} outputs") for t in n.outputs]
            o.intermediates = [ti(t, f"{n!r} intermediates") for t in n.intermediates] or None
            opts, opts2 = n.options, n.options2
            if n.called:
                target = copy.copy(opts2 if n.op.startswith("STABLEHLO_") and opts2 is not None else opts)
                for f, ref in n.called.items():
                    def gi(x: Graph) -> int:
                        i = gindex.get(x)
                        if i is None:
                            raise SurgeryError(f"{n!r} calls graph '{x.name}', which is not part of the model")
                        return i
                    setattr(target, f, [gi(x) for x in ref] if isinstance(ref, list) else gi(ref))
                if n.op.startswith("STABLEHLO_") and opts2 is not None:
                    opts2 = target
                else:
                    opts = target
            o.builtinOptionsType, o.builtinOptions = (n.options_type, opts) if opts is not None else (0, None)
            o.builtinOptions2Type, o.builtinOptions2 = (n.options2_type, opts2) if opts2 is not None else (0, None)
            if n.custom_options is not None:
                o.customOptions = np.frombuffer(n.custom_options, dtype=np.uint8)
            o.customOptionsFormat = n.custom_options_format
            o.mutatingVariableInputs = n.mutating_variable_inputs
            o.debugMetadataIndex = n.debug_metadata_index
            sg.operators.append(o)
        mt.subgraphs.append(sg)
    mt.signatureDefs = []
    for s in m.signatures:
        gi_ = gindex.get(s.graph)
        if gi_ is None:
            raise SurgeryError(f"signature '{s.key}': its graph '{s.graph.name}' is not part of the model")
        g = s.graph
        pos = {id(t): i for i, t in enumerate(g.tensors)}
        sd = fb.SignatureDefT()
        sd.signatureKey = s.key
        sd.subgraphIndex = gi_

        def tmaps(d: dict[str, Tensor]) -> list:
            out = []
            for name, t in d.items():
                if id(t) not in pos:
                    raise SurgeryError(f"signature '{s.key}' '{name}': tensor '{t.name}' is not in graph '{g.name}'")
                tm = fb.TensorMapT()
                tm.name, tm.tensorIndex = name, pos[id(t)]
                out.append(tm)
            return out

        sd.inputs, sd.outputs = tmaps(s.inputs), tmaps(s.outputs)
        mt.signatureDefs.append(sd)
    mt.metadata = []
    for name, b in m.metadata:
        md = fb.MetadataT()
        md.name, md.buffer = name, buffer_index(b)
        mt.metadata.append(md)
    if not mt.metadata:
        mt.metadata = None
    mt.metadataBuffer = None if m.metadata_buffer is None else [buffer_index(b) for b in m.metadata_buffer]
    mt.externalBufferGroups = m.external_buffer_groups
    mt.externalBuffers = m.external_buffers
    mt.operatorCodes = []
    for oc in codes.items:
        c = fb.OperatorCodeT()
        c.builtinCode = oc.builtin_code
        c.deprecatedBuiltinCode = (oc.deprecated_builtin_code if oc.deprecated_builtin_code is not None
                                   else min(oc.builtin_code, _PLACEHOLDER_FOR_GREATER_OP_CODES))
        c.customCode = oc.custom_code
        c.version = oc.version
        mt.operatorCodes.append(c)
    mt.buffers = []
    for b in bufs.items:
        bt = fb.BufferT()
        if b.nbytes:
            bt.data = b.numpy()
        mt.buffers.append(bt)
    return mt
