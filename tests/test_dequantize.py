"""Exact dequantization against an independent per-element reference and the LiteRT interpreter."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from modelkit import T, Kit
from mtpsurgeon import open_file
from mtpsurgeon.errors import MalformedFileError
from mtpsurgeon.extract.dequantize import (
    DequantizeError,
    dequantize,
    iter_dequantized,
    raw_companions,
)
from quantkit import blockwise_fc_model, dequantize_model, quant_model, ref_block_dequant, unpack_ref

QUANTIZED = ["w8.q0", "w8.q1", "w4.pc", "w4.pt", "w2.pc", "u8.pt", "i16.pc", "w4.block"]


@pytest.fixture()
def qmodel(tmp_path):
    path, exp = quant_model(tmp_path / "q.tflite")
    model = open_file(path)
    yield model, exp, {t.name: t for t in model.tensors()}
    model.source.close()


@pytest.mark.parametrize("name", QUANTIZED)
def test_quantized_tensors_match_the_reference(qmodel, name):
    model, exp, by_name = qmodel
    res = dequantize(model, by_name[name])
    assert res.values.dtype == np.float32 and res.values.shape == exp[name].shape
    assert res.note is None
    np.testing.assert_array_equal(res.values, exp[name].values)


@pytest.mark.parametrize("name", QUANTIZED + ["f16", "f32"])
@pytest.mark.parametrize("chunk", [1, 2, 5, 7, 1 << 20])
def test_chunks_reassemble_to_the_whole_tensor(qmodel, name, chunk):
    model, exp, by_name = qmodel
    t = by_name[name]
    parts = list(iter_dequantized(model, t, chunk_elements=chunk))
    assert parts[0][0] == 0 and parts[-1][1] == (t.shape[0] if t.shape else 1)
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    np.testing.assert_array_equal(np.concatenate([p[2] for p in parts]), exp[name].values)


def test_reference_unpacking_agrees_with_the_test_packing():
    # the oracle itself: low nibble first, sign-extended
    assert unpack_ref(bytes([0x8F, 0x07]), 4, 3) == [-1, -8, 7]
    assert unpack_ref(bytes([0b11100100]), 2, 4) == [0, 1, -2, -1]


def test_int4_is_low_nibble_first_not_high(qmodel):
    model, exp, by_name = qmodel
    values = dequantize(model, by_name["w4.pt"]).values
    assert values.tolist() == [-4.0, 3.5, 0.0, -0.5, 0.5, -3.5, 1.5]  # 0.5 * [-8, 7, 0, -1, 1, -7, 3]


def test_spurious_quantization_on_a_float_norm_is_ignored_and_reported(qmodel):
    model, exp, by_name = qmodel
    t = by_name["layers.0.input_layernorm.weight"]
    assert t.has_spurious_quantization and t.quantization.scale.tolist() == [0.0]
    res = dequantize(model, t)
    assert res.values.tobytes() == exp[t.name].stored  # bit-identical, not zeros
    assert res.note and "ignored" in res.note and "FLOAT32" in res.note
    assert raw_companions(model, t) == {}


def test_float16_is_widened_exactly(qmodel):
    model, exp, by_name = qmodel
    res = dequantize(model, by_name["f16"])
    np.testing.assert_array_equal(res.values, np.frombuffer(exp["f16"].stored, np.float16).astype(np.float32).reshape(3, 4))


def test_unquantized_integers_are_not_dequantized(qmodel):
    model, _, by_name = qmodel
    with pytest.raises(DequantizeError, match="not quantized"):
        dequantize(model, by_name["shape_const"])


def test_raw_companions(qmodel):
    model, exp, by_name = qmodel
    c = raw_companions(model, by_name["w8.q1"])
    np.testing.assert_array_equal(c["scale"], np.float32([0.1, 0.25, 0.003, 1.5, 7.0]))
    assert c["zero_point"].dtype == np.int64 and c["zero_point"].tolist() == [1, -2, 0, 3, 5]
    b = raw_companions(model, by_name["w4.block"])
    assert set(b) == {"block_scale"}  # default zero_points index 0 does not fit: no zero points
    assert b["block_scale"].dtype == np.float16 and b["block_scale"].shape == (4, 2)
    assert b["block_scale"].tobytes() == exp["w4.block_scales"].stored


def test_bad_per_channel_scale_count_is_a_malformed_file(tmp_path):
    k = Kit()
    sg = k.subgraph()
    k.tensor(sg, "w", (3, 2), T.INT8, bytes(6), scale=[1.0, 2.0], zero_point=[0, 0], qdim=0)
    path = k.save(tmp_path / "bad.tflite")
    model = open_file(path)
    with pytest.raises(MalformedFileError, match="2 scales for dimension 0 of size 3"):
        dequantize(model, model.tensor(0, 0))


def test_bf16_with_spurious_quantization_comes_out_unchanged(tmp_path):
    words = np.array([0x3F80, 0x4049, 0xBF00, 0x0001], np.uint16)
    k = Kit()
    sg = k.subgraph()
    k.tensor(sg, "norm", (4,), T.BFLOAT16, words.tobytes(), scale=[0.5], zero_point=[3])
    model = open_file(k.save(tmp_path / "bf.tflite"))
    res = dequantize(model, model.tensor(0, 0))
    expected = np.array([int(w) << 16 for w in words], np.uint32).view(np.float32)
    assert res.values.tobytes() == expected.tobytes() and res.note


# -- the LiteRT interpreter as oracle ----------------------------------------------------

def _run(path, x=None):
    it = Interpreter(model_path=str(path),
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    if x is not None:
        it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.parametrize("weight", ["int8", "int4"])
def test_agrees_with_the_interpreters_dequantize_op(tmp_path, weight):
    path, _, _ = dequantize_model(tmp_path / f"{weight}.tflite", weight)
    expected = _run(path)
    model = open_file(path)
    got = dequantize(model, model.tensor(0, 0)).values
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # exact: same single rounding


def test_blockwise_agrees_with_the_interpreters_fully_connected(tmp_path):
    path, q, bs = blockwise_fc_model(tmp_path / "bw.tflite")
    wt = _run(path, np.eye(64, dtype=np.float32))  # x = I  →  y = W^T
    model = open_file(path)
    w = next(t for t in model.tensors() if t.name == "w")
    got = dequantize(model, w).values
    np.testing.assert_allclose(got, wt.T, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got, ref_block_dequant(q, (4, 64), bs, 32))
    # scales read block-major ([in/block, out]) would disagree: the oracle tells layouts apart
    block_major = bs.reshape(-1).reshape(2, 4).T
    assert np.abs(ref_block_dequant(q, (4, 64), block_major, 32) - wt.T).max() > 1e-3


# -- the fixtures' fp32 twin as oracle ---------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _step(model, t) -> np.ndarray:
    """The quantization step of every element (per-channel scale, or the block's FLOAT16 scale)."""
    q = t.quantization
    if q.scheme == "blockwise":
        scales = model.tensor_array(model.tensor(t.subgraph, q.block_scales_tensor)).astype(np.float32)
        return np.repeat(scales.reshape(-1, t.shape[-1] // q.block_size), q.block_size, axis=1).reshape(t.shape)
    shape = [1] * len(t.shape)
    if q.scheme == "per-channel":
        shape[q.quantized_dimension] = -1
    return q.scale.reshape(shape)


@pytest.mark.parametrize("quantized", ["mtp_drafter.tflite", "mtp_drafter_blockwise.tflite"])
def test_fixture_drafter_is_within_half_a_step_of_its_fp32_twin(quantized):
    if not (FIXTURES / quantized).exists():
        pytest.skip("fixtures not built")
    twin = open_file(FIXTURES / "mtp_drafter_f32.tflite")
    model = open_file(FIXTURES / quantized)
    ref = {t.name: t for t in twin.tensors() if twin.has_data(t) and t.dtype.name == "FLOAT32"}
    schemes, compared = set(), 0
    for t in model.tensors():
        if not model.has_data(t) or t.name not in ref or t.dtype.name == "INT32":
            continue
        expected = dequantize(twin, ref[t.name]).values
        got = dequantize(model, t).values
        if t.is_quantized:
            schemes.add((t.dtype.name, t.quantization.scheme))
            assert np.max(np.abs(got - expected) / _step(model, t)) <= 0.5 + 1e-3, t.name
        else:
            np.testing.assert_array_equal(got, expected)  # floats, spurious norms included, unchanged
        compared += 1
    assert compared >= 40
    want = {("INT4", "blockwise")} if "blockwise" in quantized else {("INT4", "per-channel"), ("INT8", "per-channel")}
    assert want <= schemes
