"""The TFLite reader against independent oracles: the LiteRT interpreter and the raw schema."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as fb
from ai_edge_litert.interpreter import Interpreter

import modelkit
from mtpsurgeon import open_file
from mtpsurgeon.formats.tflite.dtypes import unpack_subbyte


def test_tensors_match_interpreter(tiny_tflite):
    model = open_file(tiny_tflite)
    details = {d["index"]: d for d in Interpreter(model_path=str(tiny_tflite)).get_tensor_details()}
    ours = model.subgraphs[0].tensors
    assert len(details) == len(ours)
    for t in ours:
        d = details[t.index]
        assert d["name"] == t.name
        assert tuple(d["shape"]) == t.shape
        assert np.dtype(d["dtype"]) == np.dtype(t.dtype.numpy)
        qp = d["quantization_parameters"]
        if t.quantization is None or t.quantization.scale is None:
            assert len(qp["scales"]) == 0
        else:
            np.testing.assert_array_equal(qp["scales"], t.quantization.scale)
            np.testing.assert_array_equal(qp["zero_points"], t.quantization.zero_point)
            assert qp["quantized_dimension"] == t.quantization.quantized_dimension


def test_weight_bytes_are_zero_copy_and_exact(tiny_tflite):
    model = open_file(tiny_tflite)
    w = model.tensor(0, 1)
    arr = model.tensor_array(w)
    assert not arr.flags.owndata and not arr.flags.writeable  # a view into the read-only map
    raw = fb.ModelT.InitFromPackedBuf(tiny_tflite.read_bytes(), 0)
    expected = np.asarray(raw.buffers[raw.subgraphs[0].tensors[1].buffer].data, dtype=np.uint8).view(np.int8)
    np.testing.assert_array_equal(arr.reshape(-1), expected)


def test_signatures_match_interpreter(tiny_tflite):
    model = open_file(tiny_tflite)
    sigs = Interpreter(model_path=str(tiny_tflite)).get_signature_list()
    assert {s.key: {"inputs": [n for n, _ in s.inputs], "outputs": [n for n, _ in s.outputs]} for s in model.signatures} == sigs


def _offset_model(tmp_path):
    """A model whose weights live after the flatbuffer (Buffer.offset/size)."""
    rng = np.random.default_rng(1)
    k = modelkit.Kit()
    sg = k.subgraph()
    x = k.tensor(sg, "x", [1, 8])
    w_vals = rng.standard_normal((5, 8)).astype(np.float32)
    w = k.tensor(sg, "w", [5, 8], data=w_vals.tobytes())
    y = k.tensor(sg, "y", [1, 5])
    k.op(sg, modelkit.OP.FULLY_CONNECTED, [x, w, -1], [y], *modelkit.fc_options())
    sg.inputs, sg.outputs = [x], [y]
    k.signature("serving_default", 0, {"x": x}, {"y": y})
    path = modelkit.save_with_offset_buffers(k, tmp_path / "offset.tflite")
    return path, w_vals


def test_offset_buffers_read_in_place(tmp_path):
    path, w_vals = _offset_model(tmp_path)
    model = open_file(path)
    w = next(t for t in model.tensors() if t.name == "w")
    assert model.buffers[w.buffer].storage == "offset"
    np.testing.assert_array_equal(model.tensor_array(w), w_vals)
    # Oracle: the interpreter runs the same weights.
    x = np.arange(8, dtype=np.float32)[None]
    y = Interpreter(model_path=str(path)).get_signature_runner()(x=x)["y"]
    np.testing.assert_allclose(y, x @ w_vals.T, rtol=1e-5)


def test_int4_unpack_low_nibble_first():
    vals = np.array([-8, 7, -1, 0, 3, -5, 1], dtype=np.int8)
    packed = modelkit.pack_int4(vals)
    # Independent expectation: first value in the low nibble of byte 0.
    assert packed[0] == ((-8 & 0xF) | ((7 & 0xF) << 4))
    np.testing.assert_array_equal(unpack_subbyte(packed, 4, True, len(vals)), vals)


def test_int2_unpack():
    vals = np.array([-2, 1, 0, -1, 1], dtype=np.int8)
    byte0 = sum((int(v) & 3) << (2 * i) for i, v in enumerate(vals[:4]))
    packed = bytes([byte0, int(vals[4]) & 3])
    np.testing.assert_array_equal(unpack_subbyte(packed, 2, True, len(vals)), vals)


def test_blockwise_and_int4_records(tmp_path):
    k = modelkit.Kit()
    sg = k.subgraph()
    scales = k.tensor(sg, "w.scales", [4, 2], modelkit.T.FLOAT16, np.ones((4, 2), np.float16).tobytes())
    q = np.random.default_rng(0).integers(-8, 8, size=(4, 64)).astype(np.int8)
    w = k.tensor(sg, "w", [4, 64], modelkit.T.INT4, modelkit.pack_int4(q), blockwise=(scales, 32))
    path = k.save(tmp_path / "bw.tflite")
    model = open_file(path)
    t = model.tensor(0, w)
    assert t.dtype.name == "INT4" and t.quantization.scheme == "blockwise"
    assert t.quantization.block_size == 32 and t.quantization.block_scales_tensor == scales
    np.testing.assert_array_equal(model.tensor_array(t, unpack=True), q)
    assert model.tensor_array(t).nbytes == 4 * 64 // 2


@pytest.mark.parametrize("name", ["FLOAT8_E4M3FN", "FLOAT8_E5M2"])
def test_float8_decode_matches_ml_dtypes(name):
    import ml_dtypes  # a dependency of ai-edge-litert
    from mtpsurgeon.formats.tflite.dtypes import float8_to_f32

    raw = np.arange(256, dtype=np.uint8)
    ref = raw.view(getattr(ml_dtypes, name.lower())).astype(np.float32)
    ours = float8_to_f32(raw, name)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_array_equal(ours[~np.isnan(ref)], ref[~np.isnan(ref)])
