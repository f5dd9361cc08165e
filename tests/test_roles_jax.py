"""The jax fixture family (JAX/TF export names, anonymous norms, converter-named I/O, RoPE from tables,
GQA, INT8 KV caches): every weight's role and the architecture come from the graph's structure.

The answer key is fixtures/jax/expected.json, written by the fixture generator
(it knows which parameter it renamed to which anonymous ``jax2tf_arg_N``).
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import FIXTURES
from mtpsurgeon.analysis import analyze

JAX = FIXTURES / "jax"
EXPECTED = json.loads((JAX / "expected.json").read_text())
DIMS = EXPECTED["model_dims"]
WEIGHTS = EXPECTED["drafter_weights"]  #: tensor name → {role, hf, ...}
SOURCES = ["mtp_drafter.tflite", "mtp_drafter_f32.tflite", "gemma4-mini.litertlm", "hidden/unsigned-drafter.tflite",
           "hidden/untagged-drafter.litertlm"]


def _drafter_roles(rel: str):
    base = JAX / "gemma4-mini.litertlm"
    r = analyze(JAX / rel, base=None if rel.endswith(".litertlm") else base)
    (rm, ma), = [(rm, ma) for ma in r.models for rm in ma.roles.values() if rm.method == "dataflow"]
    return rm, ma.model.subgraphs[rm.subgraph].tensors


@pytest.mark.parametrize("rel", SOURCES)
def test_every_weight_gets_its_ground_truth_role(rel):
    rm, tensors = _drafter_roles(rel)
    got = {tensors[i].name: r for i, r in rm.roles.items()}
    assert set(got) == set(WEIGHTS), sorted(set(got) ^ set(WEIGHTS))
    for name, want in WEIGHTS.items():
        role = got[name]
        if want["role"] == "rope_inv_freq":
            assert role.kind == "rope_table", (name, role.label)
        else:
            assert role.hf_name == want["hf"], (name, role.label, want["hf"])
    assert not rm.unassigned


@pytest.mark.parametrize("rel", SOURCES)
def test_architecture_read_off_the_graph(rel):
    rm, _ = _drafter_roles(rel)
    assert [b.layer_type for b in rm.blocks] == DIMS["drafter_block_layer_types"]
    assert {b.heads for b in rm.blocks} == {DIMS["drafter_q_heads"]} and {b.kv_heads for b in rm.blocks} == {DIMS["kv_heads"]}
    for b in rm.blocks:
        assert b.head_dim == DIMS["head_dim"][b.layer_type]
        rope = DIMS["rope"][b.layer_type]
        assert b.rope["theta"] == rope["rope_theta"]
        assert b.rope.get("partial_rotary_factor") == rope.get("partial_rotary_factor")
        assert b.sliding_window == (DIMS["sliding_window"] if b.layer_type == "sliding_attention" else None)
    assert rm.arch["softcap"] == DIMS["softcap"] and rm.arch["softcap_folded"]
    assert (rm.arch["hidden"], rm.arch["backbone_hidden"], rm.arch["vocab"]) == (DIMS["D"], DIMS["H"], DIMS["V"])


def test_names_hf_on_the_jax_family_is_complete_and_its_config_is_the_graphs(tmp_path):
    out = tmp_path / "hf"
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(JAX / "gemma4-mini.litertlm"), "-o", str(out),
                        "--dtype", "f32", "--names", "hf", "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    from safetensors.numpy import load_file

    got = load_file(out / "model.safetensors")
    want = {w["hf"] for w in WEIGHTS.values() if w.get("hf")}
    assert set(got) == want, sorted(set(got) ^ want)
    cfg = json.loads((out / "config.json").read_text())
    ref = EXPECTED["hf_assistant_config"]
    keys = [k for k in ("num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "global_head_dim",
                        "layer_types", "rope_parameters", "sliding_window", "hidden_size", "vocab_size",
                        "intermediate_size") if k in ref["text_config"]]
    assert len(keys) >= 10
    for key in keys:
        assert cfg["text_config"][key] == ref["text_config"][key], key
    assert cfg["backbone_hidden_size"] == ref["backbone_hidden_size"]
    for name, w in WEIGHTS.items():  # layer scalars come from the graph's values, not a default 1.0
        if w["role"] == "layer_scalar":
            assert got[w["hf"]].shape == (1,) and got[w["hf"]][0] != 1.0


def test_jax_float_twin_parity_with_transformers(tmp_path):
    pytest.importorskip("transformers", reason="transformers is a test dependency: pip install -e '.[test]'")
    from mtpsurgeon.extract.parity import check_parity

    src = JAX / "mtp_drafter_f32.tflite"
    out = tmp_path / "hf"
    p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(src), "-o", str(out), "--dtype", "f32",
                        "--names", "hf", "--no-models"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    import transformers

    model, info = transformers.AutoModelForCausalLM.from_pretrained(str(out), output_loading_info=True)
    assert type(model).__name__ == "Gemma4AssistantForCausalLM"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]  # strict
    rm, _ = _drafter_roles("mtp_drafter_f32.tflite")
    res = check_parity(out, src, rm, samples=30)
    assert res.passed(), res.to_json()
    assert len(set(res.positions)) > 1  # RoPE in the graph: compared at real positions, not only 0
    assert max(res.positions) > DIMS["sliding_window"]  # and past the sliding window


def test_names_hf_of_the_pruned_drafter_equals_the_live_drafters(tmp_path):
    """No operators left: table order places the anonymous norms, the leftover constants give epsilon, soft-cap
    and window; the checkpoint equals the one extracted from the live ground truth, tensor for tensor."""
    from safetensors.numpy import load_file

    def extract(src, out):
        p = subprocess.run([sys.executable, "-m", "mtpsurgeon", "extract", str(src), "--names", "hf", "--dtype", "f32",
                            "-o", str(out)], capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        return json.loads((out / "config.json").read_text()), load_file(str(out / "model.safetensors"))

    cfg_p, w_p = extract(JAX / "hidden/pruned-drafter.litertlm", tmp_path / "pruned")
    cfg_l, w_l = extract(JAX / "gemma4-mini.litertlm", tmp_path / "live")
    assert cfg_p == cfg_l and cfg_p["text_config"]["sliding_window"] == DIMS["sliding_window"]
    assert set(w_p) == set(w_l) and len(w_p) == 48
    for k in w_l:
        np.testing.assert_array_equal(w_p[k], w_l[k])
