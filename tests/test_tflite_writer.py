"""The .tflite writer, checked by the LiteRT interpreter and the schema's own reader."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter

import modelkit
from modelkit import OP, T, Kit, f32
from mtpsurgeon.errors import OutputExistsError
from mtpsurgeon.formats.mapped import MappedFile
from mtpsurgeon.formats.open import open_file
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.surgery.ir import Model


def two_signature_model(path: Path) -> Path:
    """Graph 0 'main': y = FC(x, W int8 per-channel) + b; graph 1 'second': q = a * c.

    Also: a blockwise-quantized INT4 orphan with its FLOAT16 scale tensor, and a
    metadata buffer, so the round trip has to keep every kind of reference.
    """
    rng = np.random.default_rng(1)
    k = Kit()
    sg = k.subgraph("main")
    x = k.tensor(sg, "x", [1, 8])
    w = k.tensor(sg, "w", [16, 8], T.INT8, rng.integers(-127, 128, (16, 8)).astype(np.int8).tobytes(),
                 scale=rng.uniform(0.001, 0.01, 16), zero_point=np.zeros(16))
    h = k.tensor(sg, "h", [1, 16])
    b = k.tensor(sg, "b", [16], T.FLOAT32, f32(rng.standard_normal(16)))
    y = k.tensor(sg, "y", [1, 16])
    k.op(sg, OP.FULLY_CONNECTED, [x, w, -1], [h], *modelkit.fc_options())
    k.op(sg, OP.ADD, [h, b], [y], *modelkit.add_options())
    sg.inputs, sg.outputs = [x], [y]
    scales = k.tensor(sg, "orphan.scales", [4, 2], T.FLOAT16, np.full((4, 2), 0.5, np.float16).tobytes())
    k.tensor(sg, "orphan.int4", [4, 64], T.INT4, modelkit.pack_int4(rng.integers(-8, 8, 256)), blockwise=(scales, 32))
    k.signature("main", 0, {"x": x}, {"y": y})
    sg2 = k.subgraph("second")
    a = k.tensor(sg2, "a", [1, 3])
    c = k.tensor(sg2, "c", [1, 3], T.FLOAT32, f32([[2.0, -3.0, 0.5]]))
    q = k.tensor(sg2, "q", [1, 3])
    k.op(sg2, OP.MUL, [a, c], [q], fb.BuiltinOptions.MulOptions, fb.MulOptionsT())
    sg2.inputs, sg2.outputs = [a], [q]
    k.signature("second", 1, {"a": a}, {"q": q})
    md = fb.MetadataT()
    md.name, md.buffer = "min_runtime_version", k.buffer(b"1.5.0\0\0\0\0\0\0\0\0\0\0\0")
    k.model.metadata = [md]
    return k.save(path)


def run_all(path: Path, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Run every signature of the model at ``path`` on random inputs seeded by the signature key."""
    it = Interpreter(model_path=str(path))
    out = {}
    for key in sorted(it.get_signature_list()):
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        runner = it.get_signature_runner(key)
        inputs = {}
        for name, d in runner.get_input_details().items():
            inputs[name] = rng.standard_normal(d["shape"]).astype(d["dtype"])
        out[key] = {k: v.copy() for k, v in runner(**inputs).items()}
    return out


def schema_view(path: Path) -> dict:
    """Everything that matters, read with the schema's generated reader only."""
    data = path.read_bytes()
    assert data[4:8] == b"TFL3"
    m = fb.Model.GetRootAs(data, 0)

    def buf(i):
        b = m.Buffers(i)
        if b.Offset() > 1:
            return data[b.Offset() : b.Offset() + b.Size()]
        return b"" if b.DataIsNone() else b.DataAsNumpy().tobytes()

    graphs = []
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        tensors = {}
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            quant = None
            if q is not None and not q.ScaleIsNone():
                quant = (q.ScaleAsNumpy().tolist(), q.QuantizedDimension())
            if q is not None and q.DetailsType() == fb.QuantizationDetails.BlockwiseQuantization:
                bq = fb.BlockwiseQuantization()
                bq.Init(q.Details().Bytes, q.Details().Pos)
                quant = ("blockwise", sg.Tensors(bq.Scales()).Name().decode(), bq.BlockSize())
            tensors[t.Name().decode()] = (t.ShapeAsNumpy().tolist() if not t.ShapeIsNone() else [], t.Type(), buf(t.Buffer()), quant)
        ops = []
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            oc = m.OperatorCodes(op.OpcodeIndex())
            names = lambda v: [sg.Tensors(j).Name().decode() if j >= 0 else None for j in v]  # noqa: E731
            ops.append((max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), names(op.InputsAsNumpy()), names(op.OutputsAsNumpy())))
        graphs.append((sg.Name().decode(), tensors, ops))
    sigs = {}
    for i in range(m.SignatureDefsLength()):
        sd = m.SignatureDefs(i)
        sigs[sd.SignatureKey().decode()] = sd.SubgraphIndex()
    meta = {m.Metadata(i).Name().decode(): buf(m.Metadata(i).Buffer()) for i in range(m.MetadataLength())}
    return {"graphs": graphs, "signatures": sigs, "metadata": meta, "buffer0": buf(0) if m.BuffersLength() else b""}


@pytest.fixture()
def two_sig(tmp_path: Path) -> Path:
    return two_signature_model(tmp_path / "two.tflite")


@pytest.mark.parametrize("offset_buffers", [False, True])
def test_round_trip_runs_identically_and_reads_the_same(two_sig, tmp_path, offset_buffers):
    out = tmp_path / "out.tflite"
    ir = Model.from_tflite(open_file(two_sig))
    result = write_tflite(ir, out, force_offset_buffers=offset_buffers)
    assert result.offset_buffers is offset_buffers
    assert result.size == out.stat().st_size
    a, b = run_all(two_sig), run_all(out)
    assert a.keys() == b.keys() == {"main", "second"}
    for key in a:
        for name in a[key]:
            np.testing.assert_array_equal(a[key][name], b[key][name])
    assert schema_view(out) == schema_view(two_sig)
    assert schema_view(out)["buffer0"] == b""


def test_offset_buffers_layout(two_sig, tmp_path):
    out = tmp_path / "out.tflite"
    result = write_tflite(Model.from_tflite(open_file(two_sig)), out, force_offset_buffers=True, alignment=64)
    data = out.read_bytes()
    m = fb.Model.GetRootAs(data, 0)
    assert result.flatbuffer_size < len(data)
    moved = 0
    for i in range(1, m.BuffersLength()):
        b = m.Buffers(i)
        if b.Offset() > 1:
            moved += 1
            assert b.Offset() % 64 == 0 and b.Offset() >= result.flatbuffer_size
            assert b.DataIsNone()
    # every tensor payload except the metadata buffer lives after the flatbuffer
    assert moved == result.buffers_after_flatbuffer == 5  # w, b, scales, int4, c
    assert m.Buffers(m.Metadata(0).Buffer()).Offset() == 0


def test_inline_data_is_16_byte_aligned(two_sig, tmp_path):
    out = tmp_path / "out.tflite"
    write_tflite(Model.from_tflite(open_file(two_sig)), out)
    data = out.read_bytes()
    m = fb.Model.GetRootAs(data, 0)
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        if not b.DataIsNone() and b.DataLength():
            start = b._tab.Vector(b._tab.Offset(4))
            assert start % 16 == 0


def test_import_is_zero_copy(two_sig):
    tm = open_file(two_sig)
    ir = Model.from_tflite(tm)
    base = np.frombuffer(tm.source.view, np.uint8).ctypes.data
    for buf in ir.buffers:
        if buf.nbytes:
            addr = buf.numpy().ctypes.data
            assert base <= addr < base + tm.source.size


def test_offset_buffers_import_as_views(two_sig, tmp_path):
    out = tmp_path / "offset.tflite"
    write_tflite(Model.from_tflite(open_file(two_sig)), out, force_offset_buffers=True)
    mapped = MappedFile(out)
    from mtpsurgeon.formats.tflite import read_tflite

    ir = Model.from_tflite(read_tflite(mapped))
    base = np.frombuffer(mapped.view, np.uint8).ctypes.data
    assert any(b.nbytes for b in ir.buffers)
    for buf in ir.buffers:
        if buf.nbytes:
            assert base <= buf.numpy().ctypes.data < base + mapped.size
    again = tmp_path / "again.tflite"
    write_tflite(ir, again)  # offset → inline
    a, b = run_all(two_sig), run_all(again)
    np.testing.assert_array_equal(a["main"]["y"], b["main"]["y"])


def test_refuses_to_overwrite(two_sig, tmp_path):
    out = tmp_path / "out.tflite"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        write_tflite(Model.from_tflite(open_file(two_sig)), out)
    assert out.read_bytes() == b"keep"
    write_tflite(Model.from_tflite(open_file(two_sig)), out, force=True)
    assert out.read_bytes()[4:8] == b"TFL3"


def test_tiny_model_round_trip_keeps_orphan(tiny_tflite, tmp_path):
    out = tmp_path / "out.tflite"
    write_tflite(Model.from_tflite(open_file(tiny_tflite)), out)
    assert "mtp.head.weight" in schema_view(out)["graphs"][0][1]
    assert schema_view(out) == schema_view(tiny_tflite)


def test_switches_to_offset_buffers_above_the_limit(two_sig, tmp_path, monkeypatch):
    from mtpsurgeon.formats.tflite import writer

    monkeypatch.setattr(writer, "FLATBUFFER_LIMIT", 2100)  # stands in for 2 GiB
    monkeypatch.setattr(writer, "_SLACK", 0)
    out = tmp_path / "auto.tflite"
    result = write_tflite(Model.from_tflite(open_file(two_sig)), out)
    assert result.offset_buffers and result.flatbuffer_size < 2100
    a, b = run_all(two_sig), run_all(out)
    np.testing.assert_array_equal(a["main"]["y"], b["main"]["y"])
    np.testing.assert_array_equal(a["second"]["q"], b["second"]["q"])


def test_new_constants_and_large_custom_options_survive(tiny_tflite, tmp_path):
    ir = Model.from_tflite(open_file(tiny_tflite))
    g = ir.graphs[0]
    packed = bytes([0x21, 0x43])  # INT4 [1, 2, 3, 4], low nibble first
    t = g.add_constant("new.int4", packed, "INT4", shape=[4])
    assert t.is_constant and t.dtype_name == "INT4"
    for offset_mode in (False, True):
        out = tmp_path / f"n{offset_mode}.tflite"
        write_tflite(ir, out, force_offset_buffers=offset_mode)
        assert schema_view(out)["graphs"][0][1]["new.int4"][2] == packed
        back = Model.from_tflite(open_file(out))
        assert bytes(back.graphs[0].tensor("new.int4").buffer.data) == packed
