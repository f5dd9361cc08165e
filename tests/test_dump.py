"""dump_safetensors: every dtype mode loads with safetensors and matches independent references."""
from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import safetensors
from safetensors.numpy import load_file

import mtpsurgeon
from modelkit import T, Kit
from mtpsurgeon import open_file
from mtpsurgeon.errors import OutputExistsError, UsageError
from mtpsurgeon.extract import dump_safetensors, original_names, sanitize, total_input_bytes
from mtpsurgeon.extract.dump import f32_to_bf16_bits
from quantkit import quant_model

QUANTIZED = ["w8.q0", "w8.q1", "w4.pc", "w4.pt", "w2.pc", "u8.pt", "i16.pc", "w4.block"]
NORM = "layers.0.input_layernorm.weight"


@pytest.fixture()
def qmodel(tmp_path):
    path, exp = quant_model(tmp_path / "q.tflite")
    model = open_file(path)
    yield model, exp
    model.source.close()


def _meta(path):
    with safetensors.safe_open(path, framework="np") as f:
        meta = f.metadata()
        keys = set(f.keys())
    return meta, json.loads(meta["mtpsurgeon.tensors"]), keys


def _bf16_ref(x: np.ndarray) -> np.ndarray:
    """Round-to-nearest-even f32 → bf16, one element at a time with Python ints."""
    out = []
    for v in np.asarray(x, np.float32).reshape(-1):
        (b,) = struct.unpack("<I", struct.pack("<f", float(v)))
        if v != v:
            out.append((b >> 16) | 0x40)
            continue
        lower, upper = b & 0xFFFF, b >> 16
        if lower > 0x8000 or (lower == 0x8000 and upper & 1):
            upper += 1
        out.append(upper)
    return np.array(out, np.uint16).reshape(np.shape(x))


def test_raw_keeps_payloads_and_writes_companions(qmodel, tmp_path):
    model, exp = qmodel
    out = tmp_path / "raw.safetensors"
    rep = dump_safetensors(model, model.tensors(), out, dtype="raw")
    got = load_file(out)
    meta, tensors, keys = _meta(out)
    for name, e in exp.items():
        assert got[name].tobytes() == e.stored, name
    assert got["w4.pc"].dtype == np.uint8 and got["w4.pc"].shape == (8,)  # 15 nibbles → 8 bytes
    assert got["w2.pc"].shape == (6,)
    np.testing.assert_array_equal(got["w8.q1.scale"], np.float32([0.1, 0.25, 0.003, 1.5, 7.0]))
    assert got["w8.q1.zero_point"].tolist() == [1, -2, 0, 3, 5]
    assert got["w4.block.block_scale"].tobytes() == exp["w4.block_scales"].stored
    assert NORM + ".scale" not in got  # spurious parameters are not offered as companions
    d = tensors["w4.pc"]
    assert d["name"] == "w4.pc" and d["dtype"] == "INT4" and d["shape"] == [3, 5] and d["stored_as"] == "U8"
    assert "low bits first" in d["quantization"]["packing"] and d["quantization"]["scheme"] == "per-channel"
    assert d["companions"] == {"scale": "w4.pc.scale", "zero_point": "w4.pc.zero_point"}
    assert tensors["w4.block"]["quantization"]["block_size"] == 32
    assert tensors[NORM]["quantization"]["spurious"]
    assert "x" not in keys and any("'x'" in n and "no constant data" in n for n in rep.notes)
    assert rep.tensors == len(exp) and rep.companions == len(keys) - len(exp)
    assert rep.bytes_in == sum(len(e.stored) for e in exp.values())
    assert rep.bytes_out == out.stat().st_size


@pytest.mark.parametrize("dtype", ["f32", "f16", "bf16"])
def test_dequantized_modes_match_the_reference(qmodel, tmp_path, dtype):
    model, exp = qmodel
    out = tmp_path / f"{dtype}.safetensors"
    rep = dump_safetensors(model, model.tensors(), out, dtype=dtype)
    items = {n: info for n, info in safetensors.deserialize(out.read_bytes())}
    for name in QUANTIZED + ["f16", "f32", NORM]:
        ref = exp[name].values
        info = items[name]
        assert info["shape"] == list(ref.shape), name
        data = bytes(info["data"])
        if dtype == "f32":
            assert info["dtype"] == "F32" and data == ref.astype(np.float32).tobytes(), name
        elif dtype == "f16":
            assert info["dtype"] == "F16" and data == ref.astype(np.float16).tobytes(), name
        else:
            assert info["dtype"] == "BF16" and data == _bf16_ref(ref).tobytes(), name
    assert items["shape_const"]["dtype"] == "I32" and bytes(items["shape_const"]["data"]) == exp["shape_const"].stored
    assert not any(n.endswith(".scale") for n in items)
    assert any("ignored" in n and NORM in n for n in rep.notes)
    assert rep.parameters == sum(int(np.prod(e.shape)) for e in exp.values())
    if dtype != "bf16":
        load_file(out)  # numpy has no bfloat16; the Rust loader above read it


def test_f32_norm_is_bit_identical(qmodel, tmp_path):
    model, exp = qmodel
    out = tmp_path / "n.safetensors"
    dump_safetensors(model, [t for t in model.tensors() if t.name == NORM], out, dtype="f32")
    assert load_file(out)[NORM].tobytes() == exp[NORM].stored


def test_provenance_metadata(qmodel, tmp_path):
    model, _ = qmodel
    out = tmp_path / "p.safetensors"
    dump_safetensors(model, model.tensors(), out, dtype="f32", section=11, extra_metadata={"note": "hi"})
    meta, tensors, _ = _meta(out)
    assert meta["format"] == "np" and meta["mtpsurgeon.version"] == mtpsurgeon.__version__
    assert meta["mtpsurgeon.source"] == "q.tflite"
    assert meta["mtpsurgeon.source_sha256"] == hashlib.sha256(model.path.read_bytes()).hexdigest()
    assert meta["mtpsurgeon.section"] == "11" and meta["mtpsurgeon.dtype"] == "f32" and meta["note"] == "hi"
    assert tensors["w8.q1"]["subgraph"] == 0 and tensors["w8.q1"]["index"] == 1
    assert tensors["w8.q1"]["quantization"]["quantized_dimension"] == 1


def test_container_section_is_recorded(tmp_path, tiny_container):
    container = open_file(tiny_container)
    model = container.model(1)
    out = tmp_path / "s.safetensors"
    dump_safetensors(model, model.tensors(), out, dtype="f32", section=1)
    meta, _, keys = _meta(out)
    data = tiny_container.read_bytes()
    s = container.sections[1]
    assert meta["mtpsurgeon.section_sha256"] == hashlib.sha256(data[s.begin:s.end]).hexdigest()
    assert "mtpsurgeon.source_sha256" not in meta  # the container is hashed only on request
    assert {"fc.weight", "mtp.head.weight"} <= keys
    whole = hashlib.sha256(data).hexdigest()
    dump_safetensors(model, model.tensors(), out, dtype="f32", section=1, source_sha256=whole, force=True)
    assert _meta(out)[0]["mtpsurgeon.source_sha256"] == whole


def test_progress_reports_every_stored_byte(qmodel, tmp_path):
    model, _ = qmodel
    seen = []
    rep = dump_safetensors(model, model.tensors(), tmp_path / "a.safetensors", dtype="f32",
                           progress=seen.append, chunk_elements=3)
    assert sum(seen) == rep.bytes_in == total_input_bytes(model, model.tensors())
    assert len(seen) > rep.tensors  # chunked
    seen.clear()
    rep = dump_safetensors(model, model.tensors(), tmp_path / "b.safetensors", dtype="raw", progress=seen.append)
    assert sum(seen) == rep.bytes_in


def test_existing_output_needs_force_and_failures_leave_nothing(qmodel, tmp_path):
    model, _ = qmodel
    out = tmp_path / "o.safetensors"
    out.write_bytes(b"keep")
    with pytest.raises(OutputExistsError):
        dump_safetensors(model, model.tensors(), out)
    assert out.read_bytes() == b"keep"
    dump_safetensors(model, model.tensors(), out, force=True)
    assert "w8.q0" in load_file(out)
    with pytest.raises(UsageError):
        dump_safetensors(model, model.tensors(), tmp_path / "n.safetensors", dtype="f8")
    with pytest.raises(UsageError, match="dequantized"):
        dump_safetensors(model, model.tensors(), tmp_path / "n.safetensors", dtype="raw", names="hf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.safetensors", "q.tflite"]


def test_bf16_rounding_ties_to_even_and_keeps_nan():
    x = np.array([1.0, 1.00390625, 1.01171875, -3.4e38, np.inf, np.nan, 1e-40], np.float32)
    np.testing.assert_array_equal(f32_to_bf16_bits(x), _bf16_ref(x))
    assert f32_to_bf16_bits(np.float32([1.00390625]))[0] == 0x3F80  # exact tie → even (down)


# -- names ---------------------------------------------------------------------------

def test_sanitize():
    assert sanitize("a/b.c-d_e") == "a/b.c-d_e"
    assert sanitize("model;fused:0 x") == "model_fused_0_x"
    assert sanitize("", "tensor_0_3") == "tensor_0_3"
    long = sanitize("x" * 500)
    assert len(long) == 200 and long != sanitize("x" * 499)


def test_original_names_are_unique_and_companions_do_not_collide(tmp_path):
    k = Kit()
    sg = k.subgraph()
    k.tensor(sg, "w;1", (2,), T.INT8, bytes(2), scale=[1.0], zero_point=[0])
    k.tensor(sg, "w:1", (2,), T.FLOAT32, bytes(8))
    k.tensor(sg, "w_1.scale", (1,), T.FLOAT32, bytes(4))
    k.tensor(sg, "", (1,), T.FLOAT32, bytes(4))
    model = open_file(k.save(tmp_path / "n.tflite"))
    tensors = list(model.tensors())
    assert list(original_names(tensors).values()) == ["w_1", "w_1.1", "w_1.scale", "tensor_0_3"]
    out = tmp_path / "n.safetensors"
    rep = dump_safetensors(model, tensors, out, dtype="raw")
    got = load_file(out)
    assert set(got) == {"w_1", "w_1.1", "w_1.scale", "tensor_0_3", "w_1.scale.1", "w_1.zero_point"}
    assert got["w_1.scale.1"].dtype == np.float32  # the companion, renamed
    assert rep.written["w_1.1"] == (0, 1)


def test_tensors_that_cannot_be_read_are_skipped_and_reported(tmp_path):
    k = Kit()
    sg = k.subgraph()
    k.tensor(sg, "bad.scales", (3, 2), T.INT8, bytes(6), scale=[1.0, 2.0], zero_point=[0, 0], qdim=0)
    k.tensor(sg, "short", (4,), T.FLOAT32, bytes(8))
    k.tensor(sg, "good", (2,), T.FLOAT32, np.float32([1.5, -2]).tobytes())
    model = open_file(k.save(tmp_path / "b.tflite"))
    rep = dump_safetensors(model, model.tensors(), tmp_path / "f.safetensors", dtype="f32")
    assert set(load_file(rep.path)) == {"good"}
    why = {t.name: reason for t, reason in rep.skipped}
    assert "2 scales for dimension 0 of size 3" in why["bad.scales"] and "needs 16 bytes" in why["short"]
    raw = dump_safetensors(model, model.tensors(), tmp_path / "r.safetensors", dtype="raw")
    assert set(load_file(raw.path)) == {"bad.scales", "bad.scales.scale", "bad.scales.zero_point", "good"}
    assert [t.name for t, _ in raw.skipped] == ["short"]
