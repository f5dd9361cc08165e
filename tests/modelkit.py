"""Build small TFLite models for tests with the schema's own object API.

This is test scaffolding, independent of mtpsurgeon's writer: it packs a
``ModelT`` with flatbuffers' Builder exactly as LiteRT's own tools do.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as fb

T = fb.TensorType
OP = fb.BuiltinOperator


@dataclass
class Kit:
    """Accumulates one subgraph's tensors/ops and the model's buffers."""

    model: fb.ModelT = field(default_factory=fb.ModelT)

    def __post_init__(self) -> None:
        self.model.version = 3
        self.model.buffers = [fb.BufferT()]
        self.model.operatorCodes = []
        self.model.subgraphs = []
        self.model.signatureDefs = []

    def subgraph(self, name: str = "main") -> fb.SubGraphT:
        sg = fb.SubGraphT()
        sg.name = name
        sg.tensors, sg.operators, sg.inputs, sg.outputs = [], [], [], []
        self.model.subgraphs.append(sg)
        return sg

    def buffer(self, data: bytes | None) -> int:
        b = fb.BufferT()
        if data:
            b.data = np.frombuffer(data, dtype=np.uint8)
        self.model.buffers.append(b)
        return len(self.model.buffers) - 1

    def tensor(self, sg: fb.SubGraphT, name: str, shape, ttype=T.FLOAT32, data: bytes | None = None,
               scale=None, zero_point=None, qdim: int = 0, blockwise: tuple[int, int] | None = None) -> int:
        t = fb.TensorT()
        t.name = name
        t.shape = list(shape)
        t.type = ttype
        t.buffer = self.buffer(data) if data is not None else 0
        if scale is not None or blockwise is not None:
            q = fb.QuantizationParametersT()
            if scale is not None:
                q.scale = list(np.atleast_1d(scale).astype(float))
                q.zeroPoint = list(np.atleast_1d(zero_point if zero_point is not None else np.zeros(len(q.scale))).astype(int))
            q.quantizedDimension = qdim
            if blockwise is not None:
                bq = fb.BlockwiseQuantizationT()
                bq.scales, bq.blockSize = blockwise
                q.detailsType = fb.QuantizationDetails.BlockwiseQuantization
                q.details = bq
            t.quantization = q
        sg.tensors.append(t)
        return len(sg.tensors) - 1

    def opcode(self, builtin: int) -> int:
        for i, oc in enumerate(self.model.operatorCodes):
            if oc.builtinCode == builtin:
                return i
        oc = fb.OperatorCodeT()
        oc.builtinCode = builtin
        oc.deprecatedBuiltinCode = min(builtin, 127)
        oc.version = 1
        self.model.operatorCodes.append(oc)
        return len(self.model.operatorCodes) - 1

    def op(self, sg: fb.SubGraphT, builtin: int, inputs, outputs, options_type: int = 0, options=None) -> None:
        o = fb.OperatorT()
        o.opcodeIndex = self.opcode(builtin)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if options is not None:
            o.builtinOptionsType, o.builtinOptions = options_type, options
        sg.operators.append(o)

    def signature(self, key: str, sg_index: int, inputs: dict[str, int], outputs: dict[str, int]) -> None:
        sd = fb.SignatureDefT()
        sd.signatureKey = key
        sd.subgraphIndex = sg_index

        def maps(d):
            out = []
            for n, i in d.items():
                m = fb.TensorMapT()
                m.name, m.tensorIndex = n, i
                out.append(m)
            return out

        sd.inputs, sd.outputs = maps(inputs), maps(outputs)
        self.model.signatureDefs.append(sd)

    def to_bytes(self) -> bytes:
        b = flatbuffers.Builder(1024)
        b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    def save(self, path: Path) -> Path:
        path.write_bytes(self.to_bytes())
        return path


def f32(a) -> bytes:
    return np.asarray(a, dtype=np.float32).tobytes()


def pack_int4(values: np.ndarray) -> bytes:
    """Pack signed 4-bit values two per byte, low nibble first (LiteRT order)."""
    v = (np.asarray(values, dtype=np.int8).reshape(-1) & 0xF).astype(np.uint8)
    if len(v) % 2:
        v = np.append(v, 0)
    return (v[0::2] | (v[1::2] << 4)).astype(np.uint8).tobytes()


def fc_options() -> tuple[int, object]:
    o = fb.FullyConnectedOptionsT()
    return fb.BuiltinOptions.FullyConnectedOptions, o


def add_options() -> tuple[int, object]:
    return fb.BuiltinOptions.AddOptions, fb.AddOptionsT()


def tiny_fc_model(path: Path, with_orphan: bool = True) -> Path:
    """x[1,4] -> FC(W int8 per-channel [3,4]) -> y[1,3]; plus an orphan weight."""
    rng = np.random.default_rng(0)
    k = Kit()
    sg = k.subgraph()
    x = k.tensor(sg, "x", [1, 4])
    wq = rng.integers(-127, 128, size=(3, 4)).astype(np.int8)
    w = k.tensor(sg, "fc.weight", [3, 4], T.INT8, wq.tobytes(), scale=[0.01, 0.02, 0.03], zero_point=[0, 0, 0])
    y = k.tensor(sg, "y", [1, 3])
    k.op(sg, OP.FULLY_CONNECTED, [x, w, -1], [y], *fc_options())
    sg.inputs, sg.outputs = [x], [y]
    if with_orphan:
        k.tensor(sg, "mtp.head.weight", [4, 4], T.FLOAT32, f32(rng.standard_normal((4, 4))))
    k.signature("serving_default", 0, {"x": x}, {"y": y})
    return k.save(path)


def save_with_offset_buffers(kit: Kit, path: Path, align: int = 16) -> Path:
    """Write ``kit`` with every non-empty buffer stored after the flatbuffer.

    Placeholder-then-patch: pack with placeholder offsets to learn the
    flatbuffer size, then pack again with the real offsets.
    """
    datas = []
    for b in kit.model.buffers:
        data = b"" if b.data is None else np.asarray(b.data, dtype=np.uint8).tobytes()
        datas.append(data)
        b.data = None
        if data:
            b.offset, b.size = 2, len(data)  # placeholder > 1, real size
    size = len(kit.to_bytes())
    pos = (size + align - 1) // align * align
    layout = []
    for b, data in zip(kit.model.buffers, datas):
        if data:
            b.offset = pos
            layout.append((pos, data))
            pos = (pos + len(data) + align - 1) // align * align
    head = kit.to_bytes()
    assert len(head) == size
    with open(path, "wb") as f:
        f.write(head)
        for off, data in layout:
            f.seek(off)
            f.write(data)
    return path
