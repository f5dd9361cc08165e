"""Orphan analysis on hand-built models where the answer is known by construction."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as fb

import modelkit
from mtpsurgeon import open_file
from mtpsurgeon.analysis.orphans import find_orphans
from mtpsurgeon.analysis.reachability import reachable_subgraphs


def _model_with_everything(tmp_path):
    """sg0 (signed): FC + orphan weight + blockwise weight read by nothing but whose scales are referenced.
    sg1: called by a WHILE-free path? no: unreachable. sg2: body reached from sg0 via CALL_ONCE.
    Plus an unreferenced buffer and an unused operator code."""
    k = modelkit.Kit()
    sg0 = k.subgraph("main")
    x = k.tensor(sg0, "x", [1, 4])
    w = k.tensor(sg0, "w", [3, 4], data=modelkit.f32(np.ones((3, 4))))
    y = k.tensor(sg0, "y", [1, 3])
    k.op(sg0, modelkit.OP.FULLY_CONNECTED, [x, w, -1], [y], *modelkit.fc_options())
    orphan = k.tensor(sg0, "mtp.orphan", [4, 4], data=modelkit.f32(np.zeros((4, 4))))
    scales = k.tensor(sg0, "bw.scales", [2, 2], modelkit.T.FLOAT16, np.ones((2, 2), np.float16).tobytes())
    bw = k.tensor(sg0, "bw", [2, 64], modelkit.T.INT4, bytes(64), blockwise=(scales, 32))
    k.op(sg0, modelkit.OP.CALL_ONCE, [], [], fb.BuiltinOptions.CallOnceOptions, _call_once(2))
    sg0.inputs, sg0.outputs = [x], [y]
    k.signature("serving_default", 0, {"x": x}, {"y": y})
    sg1 = k.subgraph("unreached")
    a = k.tensor(sg1, "a", [1])
    b = k.tensor(sg1, "b", [1])
    k.op(sg1, modelkit.OP.ABS, [a], [b])
    sg1.inputs, sg1.outputs = [a], [b]
    k.subgraph("init")  # empty body reached through CALL_ONCE
    stray = k.buffer(b"\x01\x02\x03\x04")
    k.opcode(modelkit.OP.TANH)  # never used
    path = k.save(tmp_path / "all.tflite")
    return path, dict(orphan=orphan, bw=bw, scales=scales, stray=stray)


def _call_once(index):
    o = fb.CallOnceOptionsT()
    o.initSubgraphIndex = index
    return o


def test_orphans_by_construction(tmp_path):
    path, ids = _model_with_everything(tmp_path)
    model = open_file(path)
    o = find_orphans(model)
    names = {t.name for t in o.tensors}
    # the blockwise weight is read by no op: orphan; its scale tensor is referenced by quantization: not orphan
    assert names == {"mtp.orphan", "bw"}
    assert o.buffers == [ids["stray"]]
    assert [s.index for s in o.subgraphs] == [1]
    unused = {model.operator_codes[i].name for i in o.operator_codes}
    assert unused == {"TANH"}


def test_control_flow_reaches_called_subgraph(tmp_path):
    path, _ = _model_with_everything(tmp_path)
    reached = reachable_subgraphs(open_file(path))
    assert reached[0].startswith("signature")
    assert "CALL_ONCE" in reached[2]
    assert 1 not in reached


def _unsigned(tmp_path):
    """The control-flow model with its SignatureDef stripped, plus buffers that only
    ``Model.metadata`` / the deprecated ``Model.metadata_buffer`` reference."""
    path, ids = _model_with_everything(tmp_path)
    data = fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    data.signatureDefs = []
    k = modelkit.Kit()
    k.model = data
    ids["meta"] = k.buffer(b"meta-entry")
    md = fb.MetadataT()
    md.name, md.buffer = "min_runtime_version", ids["meta"]
    data.metadata = [md]
    ids["meta_buf"] = k.buffer(b"\x10\x20\x30\x40")
    data.metadataBuffer = [ids["meta_buf"]]
    return k.save(tmp_path / "nosig.tflite"), ids


def test_model_without_signatures_enters_at_subgraph0(tmp_path):
    path, ids = _unsigned(tmp_path)
    model = open_file(path)
    reached = reachable_subgraphs(model)
    assert reached[0].startswith("entry")
    assert "CALL_ONCE" in reached[2]  # control flow from the entry point still counts
    o = find_orphans(model, reached)
    assert [s.index for s in o.subgraphs] == [1]
    assert "entry point" in o.subgraphs[0].reason
    # metadata and metadata_buffer keep their buffers; the stray buffer is still an orphan
    assert o.buffers == [ids["stray"]]
    assert model.records.metadata_buffer == (ids["meta_buf"],)


def test_metadata_buffer_alone_would_be_an_orphan(tmp_path):
    """Control for the test above: drop the metadata_buffer vector and its buffer is reported."""
    path, ids = _unsigned(tmp_path)
    data = fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    data.metadataBuffer = None
    kit = modelkit.Kit()
    kit.model = data
    o = find_orphans(open_file(kit.save(tmp_path / "dropped.tflite")))
    assert sorted(o.buffers) == sorted([ids["stray"], ids["meta_buf"]])
