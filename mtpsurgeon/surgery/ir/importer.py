"""Build the IR from a TFLite flatbuffer (object API over the source map, zero copy)."""
from __future__ import annotations

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import CONTROL_FLOW_SUBGRAPH_FIELDS, fb
from mtpsurgeon.surgery.ir.elements import (
    Buffer,
    Node,
    OpCode,
    Tensor,
    _as_bytes_view,
    _str,
)
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.model_data import ModelData, Signature


def import_model(mt: "fb.ModelT", view: memoryview, m: ModelData) -> ModelData:
    """Fill the empty model ``m`` from ``mt``; constant data stay views into ``view``."""
    m.version = mt.version
    m.description = _str(mt.description) or ""
    for oc in mt.operatorCodes or []:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        m.opcodes.append(OpCode(code, _str(oc.customCode), oc.version, oc.deprecatedBuiltinCode))
    raw = mt.buffers or []
    bufs: list[Buffer | None] = [None]  # index 0: the sentinel
    for i, b in enumerate(raw[1:], start=1):
        if b.offset > 1:
            if b.offset + b.size > len(view):
                raise SurgeryError(f"buffer {i}: offset {b.offset} + size {b.size} runs past the model")
            buf = Buffer(view[b.offset : b.offset + b.size])
        elif b.data is not None:
            buf = Buffer(b.data)  # np.frombuffer view into the source map
        else:
            buf = Buffer(b"")
        bufs.append(buf)
    m.buffers = [b for b in bufs[1:]]

    def buffer_at(i: int) -> Buffer | None:
        if not 0 <= i < len(bufs):
            raise SurgeryError(f"buffer index {i} out of range")
        return bufs[i]

    m.graphs = [Graph(_str(sg.name) or "") for sg in mt.subgraphs or []]
    for g, sg in zip(m.graphs, mt.subgraphs or []):
        g.debug_metadata_index = sg.debugMetadataIndex
        for t in sg.tensors or []:
            g.tensors.append(Tensor(
                name=_str(t.name) or "",
                shape=[int(d) for d in (t.shape if t.shape is not None else [])],
                dtype=t.type,
                buffer=buffer_at(t.buffer),
                quantization=t.quantization,
                is_variable=bool(t.isVariable),
                shape_signature=None if t.shapeSignature is None else [int(d) for d in t.shapeSignature],
                sparsity=t.sparsity,
                has_rank=bool(t.hasRank),
                variant_tensors=t.variantTensors,
                external_buffer=t.externalBuffer,
            ))
        ts = g.tensors

        def tref(i: int, where: str) -> Tensor | None:
            i = int(i)
            if i == -1:
                return None
            if not 0 <= i < len(ts):
                raise SurgeryError(f"graph '{g.name}' {where}: tensor index {i} out of range")
            return ts[i]

        for t in ts:
            q = t.quantization
            if q is not None and q.detailsType == fb.QuantizationDetails.BlockwiseQuantization and q.details is not None:
                t.block_scales = tref(q.details.scales, f"tensor '{t.name}' block scales")
                t.block_zero_points = tref(q.details.zeroPoints, f"tensor '{t.name}' block zero points") if q.details.zeroPoints >= 0 else None
        g.inputs = [tref(i, "inputs") for i in (sg.inputs if sg.inputs is not None else [])]
        g.outputs = [tref(i, "outputs") for i in (sg.outputs if sg.outputs is not None else [])]
        for op in sg.operators or []:
            if not 0 <= op.opcodeIndex < len(m.opcodes):
                raise SurgeryError(f"graph '{g.name}': opcode index {op.opcodeIndex} out of range")
            custom = op.customOptions
            if op.largeCustomOptionsOffset > 1:
                custom = view[op.largeCustomOptionsOffset : op.largeCustomOptionsOffset + op.largeCustomOptionsSize]
            elif custom is not None:
                custom = _as_bytes_view(custom)
            node = Node(
                opcode=m.opcodes[op.opcodeIndex],
                inputs=[tref(i, "op inputs") for i in (op.inputs if op.inputs is not None else [])],
                outputs=[tref(i, "op outputs") for i in (op.outputs if op.outputs is not None else [])],
                options=op.builtinOptions, options_type=op.builtinOptionsType,
                options2=op.builtinOptions2, options2_type=op.builtinOptions2Type,
                custom_options=custom, custom_options_format=op.customOptionsFormat,
                mutating_variable_inputs=None if op.mutatingVariableInputs is None else [bool(x) for x in op.mutatingVariableInputs],
                intermediates=[tref(i, "op intermediates") for i in (op.intermediates if op.intermediates is not None else [])],
                debug_metadata_index=op.debugMetadataIndex,
            )
            opts = node.options2 if node.op.startswith("STABLEHLO_") and node.options2 is not None else node.options
            for f in CONTROL_FLOW_SUBGRAPH_FIELDS.get(node.op, ()):
                v = getattr(opts, f, None) if opts is not None else None
                if v is None:
                    continue
                def graph_at(k: int) -> Graph:
                    if not 0 <= int(k) < len(m.graphs):
                        raise SurgeryError(f"{node!r} calls subgraph {k}, which does not exist")
                    return m.graphs[int(k)]
                node.called[f] = [graph_at(k) for k in v] if hasattr(v, "__len__") else graph_at(v)
            g.nodes.append(node)
    for sd in mt.signatureDefs or []:
        if not 0 <= sd.subgraphIndex < len(m.graphs):
            raise SurgeryError(f"signature '{_str(sd.signatureKey)}': subgraph {sd.subgraphIndex} out of range")
        g = m.graphs[sd.subgraphIndex]

        def maps(tms: list | None) -> dict[str, Tensor]:
            out = {}
            for tm in tms or []:
                if not 0 <= tm.tensorIndex < len(g.tensors):
                    raise SurgeryError(f"signature '{_str(sd.signatureKey)}': tensor index {tm.tensorIndex} out of range")
                out[_str(tm.name) or ""] = g.tensors[tm.tensorIndex]
            return out

        m.signatures.append(Signature(_str(sd.signatureKey) or "", g, maps(sd.inputs), maps(sd.outputs)))
    m.metadata = [(_str(md.name) or "", buffer_at(md.buffer) or Buffer(b"")) for md in mt.metadata or []]
    if mt.metadataBuffer is not None:
        m.metadata_buffer = [buffer_at(int(x)) for x in mt.metadataBuffer]  # None: the sentinel
    m.external_buffer_groups = mt.externalBufferGroups
    m.external_buffers = mt.externalBuffers
    return m


