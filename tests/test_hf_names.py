"""--names hf: a drafter-shaped model maps 1:1 onto gemma4_assistant names, nothing is guessed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from modelkit import T, Kit
from mtpsurgeon import open_file
from mtpsurgeon.extract import dump_safetensors, map_hf_names
from mtpsurgeon.extract.dump import PartialMappingError
from mtpsurgeon.extract.hf_names import candidates
from quantkit import pack_bits

REPO = Path(__file__).resolve().parents[1]
D, H, V, I, HEADS = 16, 12, 40, 24, 2
HEAD_DIMS = [8, 8, 16]  # layers 0-1 sliding, layer 2 full


def _expected_names() -> set[str]:
    names = {"pre_projection.weight", "post_projection.weight", "model.embed_tokens.weight", "model.norm.weight"}
    for n in range(len(HEAD_DIMS)):
        p = f"model.layers.{n}."
        names |= {p + s for s in ("self_attn.q_proj.weight", "self_attn.q_norm.weight", "self_attn.o_proj.weight",
                                  "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
                                  "input_layernorm.weight", "post_attention_layernorm.weight",
                                  "pre_feedforward_layernorm.weight", "post_feedforward_layernorm.weight")}
    return names


def drafter_model(path: Path, extra: bool = True) -> tuple[Path, dict[str, tuple[str, tuple]]]:
    """Weights named the way converters spell torch paths; returns {source name: (hf name, hf shape)}."""
    rng = np.random.default_rng(0)
    k = Kit()
    sg = k.subgraph("mtp_drafter")
    want: dict[str, tuple[str, tuple]] = {}

    def int4(name, shape, hf):
        n = int(np.prod(shape))
        k.tensor(sg, name, shape, T.INT4, pack_bits(rng.integers(-8, 8, n).tolist(), 4),
                 scale=rng.uniform(0.01, 0.1, shape[0]).tolist(), zero_point=[0] * shape[0], qdim=0)
        want[name] = (hf, tuple(shape))

    def norm(name, dim, hf, spurious=False):
        q = {"scale": [0.0], "zero_point": [0]} if spurious else {}
        k.tensor(sg, name, (1, 1, dim), T.FLOAT32, rng.standard_normal(dim).astype(np.float32).tobytes(), **q)
        want[name] = (hf, (dim,))  # size-1 dims dropped to fit transformers

    int4("pre_projection.weight", (D, 2 * H), "pre_projection.weight")
    int4("mtp/post_projection", (H, D), "post_projection.weight")
    q = rng.integers(-127, 128, V * D).astype(np.int8)
    k.tensor(sg, "embed_tokens.weight", (V, D), T.INT8, q.tobytes(), scale=[0.02] * V, zero_point=[0] * V)
    want["embed_tokens.weight"] = ("model.embed_tokens.weight", (V, D))
    norm("norm.weight", D, "model.norm.weight", spurious=True)
    for n, hd in enumerate(HEAD_DIMS):
        pfx = ["layers.{n}.", "p_layers_{n}_", "drafter/layers.{n}/"][n].format(n=n)
        sep = "." if n == 0 else ("_" if n == 1 else "/")
        int4(f"{pfx}self_attn{sep}q_proj{sep}weight", (HEADS * hd, D), f"model.layers.{n}.self_attn.q_proj.weight")
        int4(f"{pfx}self_attn{sep}o_proj{sep}weight", (D, HEADS * hd), f"model.layers.{n}.self_attn.o_proj.weight")
        norm(f"{pfx}self_attn{sep}q_norm{sep}weight", hd, f"model.layers.{n}.self_attn.q_norm.weight")
        for part, shape in (("gate_proj", (I, D)), ("up_proj", (I, D)), ("down_proj", (D, I))):
            int4(f"{pfx}mlp{sep}{part}", shape, f"model.layers.{n}.mlp.{part}.weight")
        for ln in ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                   "post_feedforward_layernorm"):
            norm(f"{pfx}{ln}{sep}weight", D, f"model.layers.{n}.{ln}.weight")
    if extra:
        k.tensor(sg, "mystery.weight", (3, 3), T.FLOAT32, bytes(36))
        k.tensor(sg, "layers.0.mlp.gate_proj.weight;layers.0.mlp.up_proj.weight", (2,), T.FLOAT32, bytes(8))
        k.tensor(sg, "arith.constant", (2,), T.INT32, bytes(8))
    for name, kh in (("kv_cache_k_13", 8), ("kv_cache_k_14", 16)):
        k.tensor(sg, name, (1, 1, 32, kh), T.INT8, None, scale=[0.1], zero_point=[0])
    kv = {t.name: i for i, t in enumerate(sg.tensors) if t.name.startswith("kv_cache")}
    k.signature("mtp_drafter", 0, kv, {})
    return k.save(path), want


def test_name_matching_rules():
    assert candidates("layers.0.self_attn.q_norm.weight") == {"model.layers.0.self_attn.q_norm.weight"}
    assert candidates("p_layers_12_mlp_down_proj_weight") == {"model.layers.12.mlp.down_proj.weight"}
    assert candidates("final/norm.weight") == {"model.norm.weight"}
    assert candidates("model.norm") == {"model.norm.weight"}
    assert candidates("encoder.q_norm.weight") == set()  # a q_norm is not the final norm
    assert candidates("embed_tokens_per_layer.weight") == set()  # a path must end or be followed by weight
    assert candidates("layers.0.self_attn.k_proj.weight") == set()  # the assistant has no k/v projections
    assert candidates("layers.0.mlp.gate_proj.bias") == set()
    assert candidates("lm_head.weight") == {"lm_head.weight"}
    assert len(candidates("layers.0.mlp.gate_proj.weight;layers.0.mlp.up_proj.weight")) == 2


def test_drafter_maps_one_to_one_and_the_rest_is_reported(tmp_path):
    path, want = drafter_model(tmp_path / "d.tflite")
    model = open_file(path)
    data = [t for t in model.tensors() if model.has_data(t)]
    m = map_hf_names(data, model)
    by_key = {(t.subgraph, t.index): t for t in data}
    got = {by_key[k].name: v for k, v in m.names.items()}
    assert got == {src: hf for src, (hf, _) in want.items()}
    assert set(got.values()) == _expected_names()
    assert {by_key[k].name: s for k, s in m.shapes.items()} == {src: s for src, (_, s) in want.items()}
    unmapped = {t.name: why for t, why in m.unmapped}
    assert set(unmapped) == {"mystery.weight", "layers.0.mlp.gate_proj.weight;layers.0.mlp.up_proj.weight",
                             "arith.constant"}
    assert "ambiguous" in unmapped["layers.0.mlp.gate_proj.weight;layers.0.mlp.up_proj.weight"]
    assert set(m.extra) == {f"model.layers.{n}.layer_scalar" for n in range(3)}


def test_config_dims_are_inferred_from_shapes(tmp_path):
    path, _ = drafter_model(tmp_path / "d.tflite")
    model = open_file(path)
    m = map_hf_names([t for t in model.tensors() if model.has_data(t)], model, overrides={"sliding_window": 32})
    c, tc = m.config, m.config["text_config"]
    assert c["model_type"] == "gemma4_assistant" and c["backbone_hidden_size"] == H
    assert c["tie_word_embeddings"] is True and c["use_ordered_embeddings"] is False
    assert (tc["hidden_size"], tc["vocab_size"], tc["intermediate_size"]) == (D, V, I)
    assert (tc["num_hidden_layers"], tc["num_attention_heads"], tc["num_key_value_heads"]) == (3, HEADS, 1)
    assert (tc["head_dim"], tc["global_head_dim"]) == (8, 16)
    assert tc["layer_types"] == ["sliding_attention", "sliding_attention", "full_attention"]
    assert tc["num_kv_shared_layers"] == 3 and tc["hidden_size_per_layer_input"] == 0
    assert tc["sliding_window"] == 32
    assert not [n for n in m.notes if n.startswith("missing") or "does not fit" in n]


def test_a_clash_is_reported_never_resolved_by_guessing(tmp_path):
    k = Kit()
    sg = k.subgraph()
    k.tensor(sg, "a/norm.weight", (4,), T.FLOAT32, np.ones(4, np.float32).tobytes())
    k.tensor(sg, "b/norm.weight", (4,), T.FLOAT32, np.zeros(4, np.float32).tobytes())
    model = open_file(k.save(tmp_path / "c.tflite"))
    m = map_hf_names(model.tensors(), model)
    assert m.names == {}
    assert sorted(t.name for t, _ in m.unmapped) == ["a/norm.weight", "b/norm.weight"]
    assert any("missing pre_projection.weight" in n for n in m.notes)


def test_hf_dump_writes_checkpoint_and_config(tmp_path):
    path, want = drafter_model(tmp_path / "d.tflite")
    model = open_file(path)
    out = tmp_path / "ckpt" / "model.safetensors"
    with pytest.raises(PartialMappingError) as err:  # a partial mapping is refused by default, nothing written
        dump_safetensors(model, model.tensors(), out, dtype="bf16", names="hf")
    assert "mystery.weight" in str(err.value)
    assert not out.exists() and not (out.parent / "config.json").exists()
    rep = dump_safetensors(model, model.tensors(), out, dtype="bf16", names="hf", allow_partial=True)
    with open(out, "rb") as fh:
        header = json.loads(fh.read(int.from_bytes(fh.read(8), "little")))
    names = set(header) - {"__metadata__"}
    assert names == _expected_names() | {f"model.layers.{n}.layer_scalar" for n in range(3)}
    assert all(header[n]["dtype"] == "BF16" for n in names)
    assert header["model.layers.1.input_layernorm.weight"]["shape"] == [D]
    assert header["model.layers.2.self_attn.q_proj.weight"]["shape"] == [HEADS * 16, D]
    config = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["text_config"]["vocab_size"] == V
    assert rep.config_path == tmp_path / "ckpt" / "config.json"
    assert {t.name for t, _ in rep.skipped} >= {"mystery.weight", "arith.constant"}
    assert any("mystery.weight" in n for n in rep.notes)
    f32 = dump_safetensors(model, model.tensors(), tmp_path / "f32" / "model.safetensors", dtype="f32", names="hf",
                           allow_partial=True)
    got = load_file(f32.path)
    src = next(t for t in model.tensors() if t.name == "norm.weight")
    assert got["model.norm.weight"].tobytes() == bytes(model.tensor_bytes(src))  # spurious quant ignored


FIXTURE = REPO / "fixtures" / "gemma4-mini.litertlm"


@pytest.mark.skipif(not FIXTURE.exists(), reason="fixtures/gemma4-mini.litertlm not built yet")
def test_the_fixture_drafter_maps_completely(tmp_path):
    container = open_file(FIXTURE)
    sec = container.find("tf_lite_mtp_drafter")
    model = container.model(sec.index)
    m = map_hf_names([t for t in model.tensors() if model.has_data(t)], model)
    tc = m.config["text_config"]
    layers = tc["num_hidden_layers"]
    assert set(m.names.values()) >= {"pre_projection.weight", "post_projection.weight", "model.norm.weight",
                                     "model.embed_tokens.weight", f"model.layers.{layers - 1}.mlp.down_proj.weight"}
    assert len(m.names) == 4 + 10 * layers
    assert not [n for n in m.notes if n.startswith("missing") or "does not fit" in n]
    assert all(t.dtype.name == "INT32" or "arith" in t.name or "fixtures" in t.name or t.num_elements <= 1
               for t, _ in m.unmapped)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None,
                    reason="transformers (test-only) not installed")
def test_transformers_loads_the_hf_dump_strictly(tmp_path):
    import transformers

    path, _ = drafter_model(tmp_path / "d.tflite", extra=False)
    model = open_file(path)
    out = tmp_path / "ckpt" / "model.safetensors"
    dump_safetensors(model, model.tensors(), out, dtype="f32", names="hf")
    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(out.parent, output_loading_info=True)
    assert type(loaded).__name__ == "Gemma4AssistantForCausalLM"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ref = load_file(out)
    state = loaded.state_dict()
    for name, arr in ref.items():
        np.testing.assert_array_equal(state[name].detach().numpy().reshape(arr.shape), arr)


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None or importlib.util.find_spec("torch") is None,
                    reason="transformers (test-only) not installed")
def test_transformers_loads_the_fixture_drafter_strictly(tmp_path):
    import transformers

    from conftest import FIXTURES
    from mtpsurgeon.analysis.weights import weight_tensors

    container = open_file(FIXTURES / "gemma4-mini.litertlm")
    drafter = container.model(container.find("tf_lite_mtp_drafter").index)
    out = tmp_path / "ckpt" / "model.safetensors"
    dump_safetensors(drafter, weight_tensors(drafter), out, dtype="f32", names="hf")
    loaded, info = transformers.AutoModelForCausalLM.from_pretrained(out.parent, output_loading_info=True)
    assert type(loaded).__name__ == "Gemma4AssistantForCausalLM"
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
