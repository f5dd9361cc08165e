"""extract through its CLI on the fixtures: standalone drafters and dumps, checked by
the LiteRT interpreter, sha256 and the safetensors library."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import load_file

from conftest import FIXTURES
from test_restore_fixtures import assert_same_drafter

GT_SHA = hashlib.sha256((FIXTURES / "mtp_drafter.tflite").read_bytes()).hexdigest()
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())["files"]


def extract(*args, expect=0):
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", *map(str, args), "--json"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == expect, p.stderr
    return json.loads(p.stdout) if expect == 0 else p


@pytest.mark.parametrize("name", ["gemma4-mini.litertlm", "hidden/untagged-drafter.litertlm", "hidden/mistagged-drafter.litertlm"])
def test_drafter_section_comes_out_byte_identical(name, tmp_path):
    out = extract(FIXTURES / name, "-o", tmp_path)
    (model,) = out["models"]
    assert model["kind"] == "section"
    assert hashlib.sha256(open(model["path"], "rb").read()).hexdigest() == model["sha256"] == GT_SHA
    (dump,) = out["dumps"]
    assert dump["tensors"] == 44  # learned parameters only, no converter constants


def test_unsigned_subgraph_becomes_runnable_drafter(tmp_path):
    out = extract(FIXTURES / "hidden/unsigned-drafter.tflite", "-o", tmp_path)
    (model,) = out["models"]
    assert model["kind"] == "subgraph" and model["signatures"] == ["mtp_drafter"]
    assert_same_drafter(open(model["path"], "rb").read())


def test_pruned_weights_raw_and_dequantized(tmp_path):
    raw = extract(FIXTURES / "hidden/pruned-drafter.tflite", "-o", tmp_path / "raw")
    (dump,) = raw["dumps"]
    weights = load_file(dump["path"])
    with safe_open(dump["path"], "np") as f:
        originals = {v["name"] for v in json.loads(f.metadata()["mtpsurgeon.tensors"]).values() if "name" in v}
    assert originals == set(EXPECTED["hidden/pruned-drafter.tflite"]["mtp"]["details"]["weight_tensors"])
    assert weights["pre_projection.weight"].dtype == np.uint8  # INT4 stays packed in raw mode
    assert "pre_projection.weight.scale" in weights
    f32 = extract(FIXTURES / "hidden/pruned-drafter.tflite", "-o", tmp_path / "f32", "--dtype", "f32")
    deq = load_file(f32["dumps"][0]["path"])
    w = deq["pre_projection.weight"]
    assert w.dtype == np.float32 and w.shape == (64, 128)
    with safe_open(f32["dumps"][0]["path"], "np") as f:
        meta = f.metadata()
    assert meta["mtpsurgeon.source_sha256"] == hashlib.sha256((FIXTURES / "hidden/pruned-drafter.tflite").read_bytes()).hexdigest()


def test_spurious_norm_is_not_zeroed(tmp_path):
    out = extract(FIXTURES / "mtp_drafter.tflite", "-o", tmp_path, "--dtype", "f32", "--match", "norm.weight")
    w = load_file(out["dumps"][0]["path"])["norm.weight"]
    assert np.abs(w).max() > 0.1
    assert any("spurious" in n or "quantization parameters" in n for n in out["dumps"][0]["notes"])


def test_hf_names_and_config(tmp_path):
    out = extract(FIXTURES / "gemma4-mini.litertlm", "-o", tmp_path, "--dtype", "f32", "--names", "hf", "--no-models")
    weights = load_file(out["dumps"][0]["path"])
    assert {"pre_projection.weight", "post_projection.weight", "model.embed_tokens.weight", "model.norm.weight",
            "model.layers.3.self_attn.q_proj.weight"} <= set(weights)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "gemma4_assistant" and config["backbone_hidden_size"] == 64
    assert not out["models"]


def test_existing_outputs_need_force(tmp_path):
    extract(FIXTURES / "mtp_drafter.tflite", "-o", tmp_path)
    p = extract(FIXTURES / "mtp_drafter.tflite", "-o", tmp_path, expect=1)
    assert "already exists" in p.stderr and "--force" in p.stderr
    extract(FIXTURES / "mtp_drafter.tflite", "-o", tmp_path, "--force")


def test_nothing_to_extract_is_an_error(tmp_path):
    p = extract(FIXTURES / "base_prefill_decode.tflite", "-o", tmp_path, expect=2)
    assert "no MTP weights" in p.stderr


def test_section_by_model_type_and_by_index(tmp_path):
    by_type = extract(FIXTURES / "gemma4-mini.litertlm", "-o", tmp_path / "a", "--section", "mtp_drafter")
    by_index = extract(FIXTURES / "gemma4-mini.litertlm", "-o", tmp_path / "b", "--section", "5")
    assert by_type["models"][0]["sha256"] == by_index["models"][0]["sha256"] == GT_SHA
    assert by_type["dumps"] == by_index["dumps"] == []  # --section alone: the section, nothing else
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["gemma4-mini.section5.mtp_drafter.tflite"]
    with_weights = extract(FIXTURES / "gemma4-mini.litertlm", "-o", tmp_path / "c", "--section", "5", "--all")
    assert with_weights["models"][0]["sha256"] == GT_SHA
    assert with_weights["dumps"][0]["tensors"] > 44  # every constant of the section


def test_signature_becomes_a_standalone_model(tmp_path):
    out = extract(FIXTURES / "gemma4-mini.litertlm", "-o", tmp_path, "--signature", "mtp_drafter", "--no-models")
    assert not out["models"] and out["dumps"]
    out = extract(FIXTURES / "mtp_drafter.tflite", "-o", tmp_path / "sig", "--signature", "mtp_drafter")
    (model,) = out["models"]
    assert_same_drafter(open(model["path"], "rb").read())


def test_base_subgraph_extracted_and_runs(tmp_path):
    """--subgraph on the base model: the decode subgraph alone (plus the bodies it calls) runs like the original."""
    from ai_edge_litert.interpreter import Interpreter

    from mtpsurgeon.surgery.verify import synthetic_inputs

    out = extract(FIXTURES / "base_prefill_decode.tflite", "-o", tmp_path, "--signature", "decode")
    (model,) = out["models"]
    ref = Interpreter(model_path=str(FIXTURES / "base_prefill_decode.tflite")).get_signature_runner("decode")
    ours = Interpreter(model_path=model["path"]).get_signature_runner("decode")
    feed = synthetic_inputs(ref.get_input_details())
    want, got = ref(**feed), ours(**feed)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k])
