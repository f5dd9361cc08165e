"""Faithful round trips (issue 20), on both fixture families and a real-shaped synthetic drafter.

* ``extract --names hf`` writes a config.json whose transformers forward computes the drafter's function:
  transformers' own rotary buffers and its parity with the LiteRT interpreter at positions over the whole cache
  (past the sliding window) are the oracles;
* a graph no gemma4_assistant config expresses is named and refused (exit 1), ``--allow-partial`` writes it noted;
* drafter -> ``extract --names hf`` -> ``build-drafter --quant f32`` computes the original function within 1e-5
  relative at every sampled position (the LiteRT interpreter running both is the oracle).
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import drafterkit as K
import roundtripkit as R
from mtpsurgeon.analysis import analyze

FX = Path(__file__).resolve().parent.parent / "fixtures"
FAMILIES = {"torch": FX, "jax": FX / "jax"}
transformers = pytest.importorskip("transformers", reason="transformers is a test dependency")


def _roles(drafter: Path):
    return next(iter(analyze(drafter).models[0].roles.values()))


def _extract(drafter: Path, out: Path, *extra: str):
    return R.cli("extract", drafter, "-o", out, "--names", "hf", "--dtype", "f32", "--no-models", *extra)


def _rotary(hf: Path) -> dict[str, np.ndarray]:
    """transformers' own inverse frequencies per layer type for the written config (the oracle for "no RoPE")."""
    import torch

    model = transformers.AutoModelForCausalLM.from_pretrained(str(hf), dtype=torch.float32)
    rot = model.model.rotary_emb
    return {t: getattr(rot, f"{t}_inv_freq").numpy() for t in rot.layer_types}


def test_torch_family_config_says_no_rope_and_no_window(tmp_path):
    """The torch drafters rotate nothing and mask no window: identity RoPE, a window covering the cache."""
    hf = tmp_path / "hf"
    _extract(FX / "mtp_drafter_f32.tflite", hf)
    tc = json.loads((hf / "config.json").read_text())["text_config"]
    for kind in ("sliding_attention", "full_attention"):
        assert tc["rope_parameters"][kind]["rope_type"] == "proportional"
        assert tc["rope_parameters"][kind]["partial_rotary_factor"] == 0.0
    assert tc["sliding_window"] == 128  # the cache length: transformers' window then admits every key
    freqs = _rotary(hf)
    assert set(freqs) == {"sliding_attention", "full_attention"}
    assert all(not f.any() for f in freqs.values()), freqs  # transformers' rotation is the identity


def test_jax_family_config_keeps_the_graphs_rope_and_window(tmp_path):
    hf = tmp_path / "hf"
    _extract(FX / "jax" / "mtp_drafter_f32.tflite", hf)
    tc = json.loads((hf / "config.json").read_text())["text_config"]
    want = json.loads((FX / "jax" / "expected.json").read_text())["model_dims"]
    assert tc["rope_parameters"] == want["rope"]
    assert tc["sliding_window"] == want["sliding_window"]
    freqs = _rotary(hf)
    assert np.count_nonzero(freqs["full_attention"]) == 64 // 2 // 4  # partial 0.25 of head_dim 64 rotates
    assert np.count_nonzero(freqs["sliding_attention"]) == 32 // 2


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_transformers_parity_over_the_whole_cache(tmp_path, family):
    from mtpsurgeon.extract.parity import check_parity

    src = FAMILIES[family] / "mtp_drafter_f32.tflite"
    hf = tmp_path / "hf"
    _extract(src, hf)
    res = check_parity(hf, src, _roles(src), samples=12)
    assert res.passed(), res.per_position
    assert res.cache_length == 128 and res.positions[0] == 0 and res.positions[-1] == 127
    assert res.sliding_window == {"torch": 128, "jax": 32}[family]  # torch: no window, i.e. one covering the cache
    assert any(p > 32 for p in res.positions) and {31, 32, 33} <= set(res.positions) or family == "torch"
    assert len(res.per_position) == len(res.positions) and all(r["top1"] for r in res.per_position)
    assert res.logits_max_abs <= 1e-3 * max(1.0, res.logits_scale)


def test_parity_catches_a_config_that_rotates_what_the_graph_does_not(tmp_path):
    """The old config (Gemma 4's default RoPE for a drafter without RoPE) fails away from position 0."""
    from mtpsurgeon.extract.parity import check_parity

    src = FX / "mtp_drafter_f32.tflite"
    hf = tmp_path / "hf"
    _extract(src, hf)
    cfg = json.loads((hf / "config.json").read_text())
    cfg["text_config"]["rope_parameters"] = {
        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
        "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1e6}}
    (hf / "config.json").write_text(json.dumps(cfg))
    res = check_parity(hf, src, _roles(src), samples=8)
    assert not res.passed()
    at = {r["position"]: r for r in res.per_position}
    assert at[0]["logits_max_abs"] < 1e-3 and at[127]["logits_max_abs"] > 0.1, at


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_round_trip_gives_the_original_function_at_every_position(tmp_path, family):
    fx = FAMILIES[family]
    src = fx / "mtp_drafter_f32.tflite"
    rebuilt = R.round_trip(src, fx / "gemma4-mini.litertlm", tmp_path)
    rows = R.compare(src, rebuilt, R.spread(128, 32, 16))
    assert max(r["logits_rel"] for r in rows) <= 1e-5, rows
    assert max(r["projected_rel"] for r in rows) <= 1e-5, rows
    assert all(r["top1"] for r in rows)


def _op_names(data: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=data)
    return [op["op_name"] for op in interp._get_ops_details()]


def test_build_drafter_reads_identity_rope_and_a_cache_wide_window_as_none(tmp_path):
    """proportional RoPE with factor 0 emits no rotation; sliding_window >= the cache emits no window."""
    from mtpsurgeon.surgery.drafter import build_drafter

    cfg = K.assistant_config(window=40, full_rope=("proportional", 1e6, 0.0))
    cfg["text_config"]["rope_parameters"]["sliding_attention"] = {"rope_type": "proportional",
                                                                  "partial_rotary_factor": 0.0, "rope_theta": 1e4}
    ck = K.write_checkpoint(tmp_path / "ck", cfg, K.assistant_weights(cfg))
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=40,
                            kv={0: (2, 16, "INT8"), 1: (2, 32, "INT8")})
    ops = _op_names(build_drafter(ck, base).data)
    assert "SIN" not in ops and "COS" not in ops, ops
    windowed = K.assistant_config(window=8)
    ck8 = K.write_checkpoint(tmp_path / "ck8", windowed, K.assistant_weights(windowed))
    ops8 = _op_names(build_drafter(ck8, base, rope=False).data)
    compares = {"GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"}
    assert compares & set(ops8) and not compares & set(ops), (sorted(set(ops8)), sorted(set(ops)))


def test_real_shaped_drafter_without_rope_or_window_past_512(tmp_path):
    """GQA, INT8 caches, no RoPE, no window, a cache longer than Gemma 4's default window of 512: the config must
    not fall back to sliding_window 512, and transformers agrees with LiteRT past position 512."""
    from mtpsurgeon.extract.parity import check_parity
    from mtpsurgeon.surgery.drafter import build_drafter

    C = 600
    cfg = K.assistant_config(window=None)
    ck = K.write_checkpoint(tmp_path / "ck", cfg, K.assistant_weights(cfg))
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=C, kv={0: (2, 16, "INT8"), 1: (2, 32, "INT8")})
    drafter = tmp_path / "d.tflite"
    drafter.write_bytes(build_drafter(ck, base, rope=False).data)
    hf = tmp_path / "hf"
    _extract(drafter, hf)
    tc = json.loads((hf / "config.json").read_text())["text_config"]
    assert tc["sliding_window"] == C
    assert all(r["partial_rotary_factor"] == 0.0 for r in tc["rope_parameters"].values())
    res = check_parity(hf, drafter, _roles(drafter), samples=8)
    assert res.passed(), res.per_position
    assert max(res.positions) == C - 1 and any(p > 512 for p in res.positions)
    rebuilt = tmp_path / "rebuilt.tflite"
    R.cli("build-drafter", hf, "--base", base, "-o", rebuilt, "--quant", "f32")
    rows = R.compare(drafter, rebuilt, R.spread(C, None, 8))
    assert max(r["logits_rel"] for r in rows) <= 1e-5 and all(r["top1"] for r in rows), rows


def test_rms_epsilon_is_read_off_the_graph(tmp_path):
    from mtpsurgeon.extract.parity import check_parity
    from mtpsurgeon.surgery.drafter import build_drafter

    cfg = K.assistant_config(window=8)
    cfg["text_config"]["rms_norm_eps"] = 1e-3  # large enough that 1e-6 would show in the outputs
    ck = K.write_checkpoint(tmp_path / "ck", cfg, K.assistant_weights(cfg))
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=40, kv={0: (2, 16, "INT8"), 1: (2, 32, "INT8")})
    drafter = tmp_path / "d.tflite"
    drafter.write_bytes(build_drafter(ck, base).data)
    hf = tmp_path / "hf"
    _extract(drafter, hf)
    assert json.loads((hf / "config.json").read_text())["text_config"]["rms_norm_eps"] == 1e-3
    res = check_parity(hf, drafter, _roles(drafter), samples=6)
    assert res.passed(), res.per_position


def _emitted_variant(tmp_path: Path, name: str, edit) -> Path:
    """A synthetic assistant's drafter emitted after ``edit(spec)``: a graph no config.json describes."""
    from mtpsurgeon.formats.tflite.writer import tflite_bytes
    from mtpsurgeon.surgery.drafter.base_interface import drafter_interface
    from mtpsurgeon.surgery.drafter.build import open_base
    from mtpsurgeon.surgery.drafter.emit import emit_drafter
    from mtpsurgeon.surgery.drafter.spec import load_spec

    cfg = K.assistant_config(window=8)
    ck = K.write_checkpoint(tmp_path / "ck", cfg, K.assistant_weights(cfg))
    base = K.synthetic_base(tmp_path / "base.tflite", H=48, V=96, C=40, kv={0: (2, 16, "INT8"), 1: (2, 32, "INT8")})
    spec = load_spec(ck)
    edit(spec)
    _, dims, _ = open_base(base)
    iface, _ = drafter_interface(spec, dims, None, None, [])
    out = tmp_path / name
    out.write_bytes(tflite_bytes(emit_drafter(spec, iface)))
    return out


def _mixed_rope_drafter(tmp_path: Path) -> Path:
    """A drafter whose sliding blocks 0 and 2 rotate q and block 1 does not: one rope_parameters per layer
    type cannot say that."""
    def edit(spec):
        spec.blocks[1] = replace(spec.blocks[1], rope=None)
    return _emitted_variant(tmp_path, "mixed.tflite", edit)


def test_inexpressible_graph_is_named_and_refused(tmp_path):
    drafter = _mixed_rope_drafter(tmp_path)
    r = R.cli("extract", drafter, "-o", tmp_path / "hf", "--names", "hf", "--dtype", "f32", "--no-models", ok=False)
    assert r.returncode == 1, r.stderr
    assert "no gemma4_assistant config.json computes what this drafter computes" in r.stderr
    assert "blocks [0, 2] rotate q, blocks [1] do not" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "hf").exists()
    r = R.cli("extract", drafter, "-o", tmp_path / "hf", "--names", "hf", "--dtype", "f32", "--no-models",
              "--allow-partial", "--json")
    dump = json.loads(r.stdout)["dumps"][0]
    assert any("rotate q" in u for u in dump["unfaithful"]), dump
    assert "NOT reproduced" in (tmp_path / "hf" / "README.md").read_text()
    r = R.cli("extract", drafter, "-o", tmp_path / "hf2", "--names", "hf", "--dtype", "f32", "--no-models",
              "--allow-partial", "--check-parity", "--json", ok=False)
    assert r.returncode == 1  # the checkpoint computes something else: parity says so
    assert not json.loads(r.stdout)["dumps"][0]["parity"]["passed"]


def test_check_parity_text_lists_every_position(tmp_path):
    r = _extract(FX / "jax" / "mtp_drafter_f32.tflite", tmp_path / "hf", "--check-parity")
    out = " ".join(r.stdout.split())
    assert "positions over the cache of 128, sliding window 32" in out
    assert "position max |Δlogits| max |Δprojected| top-1" in out
    for pos in (0, 31, 32, 33, 127):
        assert f" {pos} " in out


def _last_block_sliding_drafter(tmp_path: Path) -> Path:
    """A drafter whose blocks run sliding, sliding, full, sliding: transformers would make the last one full."""
    order = [0, 1, 3, 2]  # new block j is old block order[j]

    def edit(spec):
        assert [spec.blocks[i].layer_type for i in order][-1] == "sliding_attention"
        weights = {}
        for label in list(spec.weights):
            parts = label.split(".")
            if parts[0] == "layers":
                parts[1] = str(order.index(int(parts[1])))
            weights[".".join(parts)] = spec.weights[label]
        spec.blocks = [replace(spec.blocks[i], index=j) for j, i in enumerate(order)]
        spec.weights = weights
    return _emitted_variant(tmp_path, "last-sliding.tflite", edit)


def test_a_last_sliding_block_is_named_and_refused(tmp_path):
    drafter = _last_block_sliding_drafter(tmp_path)
    r = R.cli("extract", drafter, "-o", tmp_path / "hf", "--names", "hf", "--dtype", "f32", "--no-models", ok=False)
    assert r.returncode == 1 and "the last block (3) is sliding_attention" in r.stderr, r.stderr
    assert not (tmp_path / "hf").exists()
