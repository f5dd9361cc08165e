"""build-drafter on synthetic checkpoints and bases: GQA, INT8 caches, RoPE (default and
proportional), sliding window, layer_scalar, bf16 weights, refusals. The oracle is an
independent numpy transcription of transformers' Gemma4AssistantForCausalLM
(tests/drafterkit.py) run against the drafter in the real LiteRT interpreter."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

import drafterkit as K
from mtpsurgeon.surgery.drafter import BuildRefused, build_drafter

C = 40


def _inputs(details, rng, pos, int8):
    ins = {}
    for n, d in details.items():
        if n == "input_pos":
            ins[n] = np.array([pos], np.int32)
        elif n == "mask":
            ins[n] = (np.arange(C) <= pos).reshape(d["shape"])
        elif n.startswith("kv_cache") and int8:
            ins[n] = rng.integers(-127, 128, d["shape"]).astype(np.int8)
        else:
            ins[n] = rng.standard_normal(d["shape"]).astype(np.float32)
    return ins


@pytest.mark.parametrize("kv_dtype,dtype,window", [("INT8", "F32", 8), ("FLOAT32", "BF16", 512)])
def test_built_drafter_matches_numpy_transformers_reference(tmp_path, kv_dtype, dtype, window):
    cfg = K.assistant_config(window=window)
    w = K.assistant_weights(cfg)
    if dtype == "BF16":  # the reference sees the same rounded weights
        import ml_dtypes
        w = {k: v.astype(ml_dtypes.bfloat16).astype(np.float32) for k, v in w.items()}
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w, dtype)
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=C,
                            kv={0: (2, 16, kv_dtype), 1: (2, 32, kv_dtype), 2: (2, 16, kv_dtype), 3: (2, 32, kv_dtype)})
    built = build_drafter(ck, base)
    # the last layer of each head_dim was chosen
    assert any("layer 2" in n for n in built.notes) and any("layer 3" in n for n in built.notes)
    run = Interpreter(model_content=built.data).get_signature_runner("mtp_drafter")
    det = run.get_input_details()
    assert det["kv_cache_k_3"]["dtype"] == (np.int8 if kv_dtype == "INT8" else np.float32)
    if kv_dtype == "INT8":
        assert det["kv_cache_k_3"]["quantization_parameters"]["scales"].tolist() == pytest.approx([0.05])
    rng = np.random.default_rng(3)
    for pos in (0, 5, 21, 39):
        ins = _inputs(det, rng, pos, kv_dtype == "INT8")
        got = run(**ins)
        ref = K.reference_drafter(cfg, w, ins, {"sliding_attention": 2, "full_attention": 3},
                                  kv_scale=0.05 if kv_dtype == "INT8" else None)
        for k in ("logits", "projected_activations"):
            assert np.abs(got[k] - ref[k]).max() < 2e-4 * max(1.0, np.abs(ref[k]).max()), (k, pos)
    # RoPE matters: the same drafter without it differs from the reference
    plain = Interpreter(model_content=build_drafter(ck, base, rope=False).data).get_signature_runner("mtp_drafter")
    assert np.abs(plain(**ins)["logits"] - ref["logits"]).max() > 1e-2


def test_sliding_window_masks_old_positions(tmp_path):
    cfg = K.assistant_config(window=4)
    w = K.assistant_weights(cfg)
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=C, kv={0: (2, 16, "FLOAT32"), 1: (2, 32, "FLOAT32")})
    run = Interpreter(model_content=build_drafter(ck, base).data).get_signature_runner("mtp_drafter")
    rng = np.random.default_rng(0)
    ins = _inputs(run.get_input_details(), rng, 30, False)
    a = run(**ins)["logits"]
    ins["kv_cache_k_0"] = ins["kv_cache_k_0"].copy()
    ins["kv_cache_k_0"][:, :, :26] = 99.0  # outside the window of 4 at position 30 (keys 26..30): no effect
    assert np.array_equal(run(**ins)["logits"], a)
    ins["kv_cache_k_0"][:, :, 26] = 99.0  # |30 - 26| <= 4: inside, changes the logits
    assert not np.array_equal(run(**ins)["logits"], a)


def test_window_convention_is_transformers_assistant_mask():
    """The assistant masks the shared KV with transformers' bidirectional sliding window (|q - k| <= w);
    the reference and the emitter admit the w + 1 most recent keys, as that function does."""
    from transformers.masking_utils import sliding_window_bidirectional_overlay

    inside = sliding_window_bidirectional_overlay(4)
    assert [k for k in range(31) if inside(0, 0, 30, k)] == [26, 27, 28, 29, 30]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "mtpsurgeon", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def _refused(tmp_path, ck, base, *extra, expect):
    out = tmp_path / "out.tflite"
    p = _cli("build-drafter", ck, "--base", base, "-o", out, *extra)
    assert p.returncode != 0, p.stdout
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    for e in expect:
        assert e in lines[0], (e, lines[0])
    assert "nothing written" in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out.tflite.partial-*"))
    return lines[0]


@pytest.fixture()
def good(tmp_path):
    cfg = K.assistant_config()
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=C, kv={0: (2, 16, "INT8"), 1: (2, 32, "INT8")})
    return cfg, K.assistant_weights(cfg), base


def test_refuses_wrong_backbone_hidden(tmp_path, good):
    cfg, w, base = good
    cfg["backbone_hidden_size"] = 40
    w["pre_projection.weight"] = w["pre_projection.weight"][:, :80]
    w["post_projection.weight"] = w["post_projection.weight"][:40]
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    _refused(tmp_path, ck, base, expect=["backbone_hidden_size = base hidden: expected 48, got 40",
                                         "activations width = 2 x base hidden"])


def test_refuses_wrong_vocab(tmp_path, good):
    cfg, w, base = good
    cfg["text_config"]["vocab_size"] = 90
    w["model.embed_tokens.weight"] = w["model.embed_tokens.weight"][:90]
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    _refused(tmp_path, ck, base, expect=["vocab = base vocab: expected 96, got 90", "vocab matches base logits"])


def test_refuses_missing_tensors_listing_each(tmp_path, good):
    cfg, w, base = good
    del w["model.layers.2.mlp.up_proj.weight"], w["model.norm.weight"]
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    line = _refused(tmp_path, ck, base, expect=["model.layers.2.mlp.up_proj.weight", "model.norm.weight", "missing"])
    assert "2 failing check(s)" in line


def test_refuses_wrong_dtype(tmp_path, good):
    cfg, w, base = good
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    from safetensors.numpy import load_file, save_file
    st = load_file(str(ck / "model.safetensors"))
    st["model.layers.0.self_attn.q_proj.weight"] = st["model.layers.0.self_attn.q_proj.weight"].astype(np.int32)
    save_file(st, str(ck / "model.safetensors"))
    _refused(tmp_path, ck, base, expect=["model.layers.0.self_attn.q_proj.weight' dtype", "F32, F16 or BF16", "I32"])


def test_refuses_kv_layers_the_base_lacks(tmp_path, good):
    cfg, w, base = good
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    _refused(tmp_path, ck, base, "--kv-layers", "sliding=0,full=7", expect=["KV cache layer 7", "base layers [0, 1]"])
    # a full-attention head_dim no base cache has
    cfg2 = K.assistant_config(ghd=24)
    ck2 = K.write_checkpoint(tmp_path / "ck2", cfg2, K.assistant_weights(cfg2))
    _refused(tmp_path, ck2, base, expect=["KV cache of head_dim 24 for full_attention"])


def test_single_file_needs_config_and_builds_with_it(tmp_path, good):
    cfg, w, base = good
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    p = _cli("build-drafter", ck / "model.safetensors", "--base", base, "-o", tmp_path / "d.tflite")
    assert p.returncode == 2 and "--config" in p.stderr
    p = _cli("build-drafter", ck / "model.safetensors", "--config", ck / "config.json", "--base", base,
             "-o", tmp_path / "d.tflite", "--json")
    assert p.returncode == 0, p.stderr
    assert Interpreter(model_path=str(tmp_path / "d.tflite")).get_signature_list() == {
        "mtp_drafter": {"inputs": ["activations", "input_pos", "kv_cache_k_0", "kv_cache_k_1", "kv_cache_v_0",
                                   "kv_cache_v_1", "mask"], "outputs": ["logits", "projected_activations"]}}
    # no overwrite without --force
    p = _cli("build-drafter", ck, "--base", base, "-o", tmp_path / "d.tflite")
    assert p.returncode != 0 and "exists" in p.stderr


def test_refusal_is_a_library_exception_with_the_checks(tmp_path, good):
    cfg, w, base = good
    cfg["text_config"]["vocab_size"] = 90
    w["model.embed_tokens.weight"] = w["model.embed_tokens.weight"][:90]
    with pytest.raises(BuildRefused) as exc:
        build_drafter(K.write_checkpoint(tmp_path / "ck", cfg, w), base)
    assert {c.name for c in exc.value.checks} >= {"checkpoint vocab = base vocab", "vocab matches base logits"}


@pytest.mark.parametrize("case", ["no-such-dir", "bad-json", "not-assistant", "bad-safetensors", "bad-suffix"])
def test_bad_inputs_fail_with_one_line(tmp_path, good, case):
    cfg, w, base = good
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    out = tmp_path / "out.tflite"
    if case == "no-such-dir":
        ck = tmp_path / "missing"
    elif case == "bad-json":
        (ck / "config.json").write_text("{not json")
    elif case == "not-assistant":
        (ck / "config.json").write_text('{"model_type": "llama"}')
    elif case == "bad-safetensors":
        (ck / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    else:
        out = tmp_path / "out.bin"
    p = _cli("build-drafter", ck, "--base", base, "-o", out)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert not out.exists()


def test_refusal_json_lists_failing_checks(tmp_path, good):
    import json

    cfg, w, base = good
    cfg["text_config"]["vocab_size"] = 90
    w["model.embed_tokens.weight"] = w["model.embed_tokens.weight"][:90]
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    p = _cli("build-drafter", ck, "--base", base, "-o", tmp_path / "o.tflite", "--json")
    assert p.returncode == 1
    doc = json.loads(p.stdout)
    assert doc["refused"] is True
    assert {c["check"] for c in doc["failing_checks"]} == {"checkpoint vocab = base vocab", "vocab matches base logits"}
    assert all(c["passed"] is False for c in doc["failing_checks"])


def test_role_recogniser_finds_every_weight_of_a_built_drafter_by_dataflow(tmp_path, good):
    """inspect/extract's structural recogniser reads the emitted graph back: each weight's role,
    found from the dataflow alone, is the one whose transformers name the emitter gave it."""
    from mtpsurgeon.analysis.roles.from_dataflow import recognise
    from mtpsurgeon.analysis.signatures import signature_io
    from mtpsurgeon.formats.open import open_file

    cfg, w, base = good
    out = tmp_path / "d.tflite"
    out.write_bytes(build_drafter(K.write_checkpoint(tmp_path / "ck", cfg, w), base, quant="int4c").data)
    m = open_file(out)
    rm = recognise(m, signature_io(m, m.signatures[0]))
    named = {r.hf_name: m.tensor(rm.subgraph, t).name for t, r in rm.roles.items()
             if r.source == "dataflow" and r.hf_name}
    expected = {k for k in w if not k.endswith("layer_scalar")}
    assert expected <= set(named), sorted(expected - set(named))
    for hf, tensor in named.items():
        if hf.endswith("layer_scalar"):
            continue  # scalars are shared constants named by the emitter's scope
        assert tensor == hf, (hf, tensor)
    # a layer_scalar != 1 is multiplied in and recognised; 1.0 (block 2 in drafterkit) emits no operator
    scaled = {k for k in w if k.endswith("layer_scalar") and float(w[k][0]) != 1.0}
    assert scaled == {f"model.layers.{i}.layer_scalar" for i in (0, 1, 3)}
    assert {k for k in named if k.endswith("layer_scalar")} == scaled
    assert [b.heads for b in rm.blocks] == [4, 4, 4, 4] and [b.kv_heads for b in rm.blocks] == [2, 2, 2, 2]
    # RoPE: the frequency constants the angles are computed from are found on each block's query path
    assert all(b.rope and b.rope["tables"] >= 1 for b in rm.blocks), [b.rope for b in rm.blocks]
    ropes = {(b.layer_type, b.rope["theta"], b.rope.get("partial_rotary_factor")) for b in rm.blocks}
    assert ropes == {("sliding_attention", 10000.0, None), ("full_attention", 1e6, 0.25)}, ropes
    assert not rm.unassigned, rm.unassigned


def test_checkpoint_build_extract_round_trip_gives_the_checkpoint_back(tmp_path, good):
    """checkpoint → build-drafter (f32) → extract --names hf: every tensor comes back, by structure alone —
    the soft-cap fold undone, the layer scalars read off the graph (1.0 where the graph multiplies by nothing)."""
    from safetensors.numpy import load_file

    cfg, w, base = good
    out = tmp_path / "d.tflite"
    out.write_bytes(build_drafter(K.write_checkpoint(tmp_path / "ck", cfg, w), base, quant="f32").data)
    p = _cli("extract", out, "-o", tmp_path / "hf", "--dtype", "f32", "--names", "hf", "--no-models")
    assert p.returncode == 0, p.stderr
    got = load_file(tmp_path / "hf" / "model.safetensors")
    assert set(got) == set(w), sorted(set(got) ^ set(w))
    for k, v in w.items():
        np.testing.assert_allclose(got[k].reshape(v.shape), v.astype(np.float32), rtol=1e-6, atol=1e-6, err_msg=k)
    tc = json.loads((tmp_path / "hf" / "config.json").read_text())["text_config"]
    assert tc["rope_parameters"] == cfg["text_config"]["rope_parameters"]
    assert (tc["num_attention_heads"], tc["num_key_value_heads"]) == (4, 2)


def test_ordered_embeddings_checkpoint_builds_the_full_head(tmp_path):
    """use_ordered_embeddings with masked_embedding.* tensors: those are ignored, the full LM head is built,
    and a note says so; logits equal the reference's full head."""
    from safetensors.numpy import load_file, save_file

    cfg = {**K.assistant_config(), "use_ordered_embeddings": True, "num_centroids": 8, "centroid_intermediate_top_k": 2}
    w = K.assistant_weights(cfg)
    ck = K.write_checkpoint(tmp_path / "ck", cfg, w)
    st_path = next(ck.glob("*.safetensors"))
    st = load_file(str(st_path))
    st["masked_embedding.centroids.weight"] = np.zeros((8, 32), np.float32)
    st["masked_embedding.token_ordering"] = np.arange(96, dtype=np.int64)
    save_file(st, str(st_path))
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=C, kv={0: (2, 16, "FLOAT32"), 1: (2, 32, "FLOAT32")})
    built = build_drafter(ck, base)
    assert any("use_ordered_embeddings" in n and "full LM head" in n for n in built.notes)
    run = Interpreter(model_content=built.data).get_signature_runner("mtp_drafter")
    ins = _inputs(run.get_input_details(), np.random.default_rng(1), 5, False)
    got = run(**ins)["logits"]
    ref = K.reference_drafter(cfg, w, ins, {"sliding_attention": 0, "full_attention": 1})["logits"]
    assert got.shape == (1, 1, 96) and np.abs(got - ref).max() < 2e-4 * max(1.0, np.abs(ref).max())
