"""Synthetic gemma4_assistant checkpoints, synthetic base models, and a numpy reference drafter.

The reference follows transformers' Gemma4AssistantForCausalLM (5.24) line by
line (RMSNorm x·rsqrt(mean x²+eps)·w, q_norm per head, rotate-half RoPE at the
position, repeat_kv GQA, scale 1, sliding window |t − p| ≤ w (the assistant's bidirectional
sliding mask over the shared KV: w + 1 keys), GeGLU with
gelu_tanh, layer_scalar after both residuals, tied LM head) plus the soft-cap
the LiteRT runtime expects; it shares no code with mtpsurgeon.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import ml_dtypes
import numpy as np
from safetensors.numpy import save_file


def assistant_config(D=32, H=48, V=96, I=64, heads=4, kv_heads=2, hd=16, ghd=32, layers=4, window=512,
                     softcap=30.0, full_rope=("proportional", 1e6, 0.25)) -> dict:
    kind, theta, factor = full_rope
    return {
        "architectures": ["Gemma4AssistantForCausalLM"], "model_type": "gemma4_assistant", "backbone_hidden_size": H,
        "use_ordered_embeddings": False, "tie_word_embeddings": True,
        "text_config": {
            "model_type": "gemma4_text", "vocab_size": V, "hidden_size": D, "intermediate_size": I,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
            "head_dim": hd, "global_head_dim": ghd, "sliding_window": window, "rms_norm_eps": 1e-6,
            "layer_types": ["sliding_attention"] * (layers - 1) + ["full_attention"],
            "rope_parameters": {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
                                "full_attention": {"rope_type": kind, "rope_theta": theta,
                                                   "partial_rotary_factor": factor}},
            "final_logit_softcapping": softcap, "hidden_activation": "gelu_pytorch_tanh",
        },
    }


def assistant_weights(cfg: dict, seed: int = 0, scalars: bool = True) -> dict[str, np.ndarray]:
    t = cfg["text_config"]
    D, H, V, I = t["hidden_size"], cfg["backbone_hidden_size"], t["vocab_size"], t["intermediate_size"]
    rng = np.random.default_rng(seed)

    def mat(o, i):
        return (rng.standard_normal((o, i)) / math.sqrt(i)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    w = {"pre_projection.weight": mat(D, 2 * H), "post_projection.weight": mat(H, D),
         "model.embed_tokens.weight": mat(V, D), "model.norm.weight": norm(D)}
    for i, kind in enumerate(t["layer_types"]):
        hd = t["global_head_dim"] if kind == "full_attention" else t["head_dim"]
        q = t["num_attention_heads"] * hd
        p = f"model.layers.{i}."
        w.update({p + "self_attn.q_proj.weight": mat(q, D), p + "self_attn.q_norm.weight": norm(hd),
                  p + "self_attn.o_proj.weight": mat(D, q), p + "mlp.gate_proj.weight": mat(I, D),
                  p + "mlp.up_proj.weight": mat(I, D), p + "mlp.down_proj.weight": mat(D, I),
                  p + "input_layernorm.weight": norm(D), p + "post_attention_layernorm.weight": norm(D),
                  p + "pre_feedforward_layernorm.weight": norm(D), p + "post_feedforward_layernorm.weight": norm(D)})
        if scalars:
            w[p + "layer_scalar"] = np.array([0.5 + 0.25 * i], np.float32)
    return w


def write_checkpoint(folder: Path, cfg: dict, weights: dict[str, np.ndarray], dtype: str = "F32") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=1))
    conv = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16}[dtype]
    save_file({k: np.ascontiguousarray(v.astype(conv)) for k, v in weights.items()}, str(folder / "model.safetensors"))
    return folder


def synthetic_base(path: Path, H: int, V: int, C: int, kv: dict[int, tuple[int, int, str]], G: int = 3,
                   small_head: bool = False) -> Path:
    """A base with 'decode' and 'verify' signatures and KV inputs kv_cache_{k,v}_L.

    ``kv`` maps layer → (kv heads, head_dim, 'FLOAT32' | 'INT8'); INT8 caches are
    per-tensor with scale 0.05. The body is a plain LM head (only its interface
    matters); ``small_head`` makes it a [V, 1] head on mean(embeddings) so an
    E4B-sized vocab stays small.
    """
    from mtpsurgeon.formats.tflite.schema import fb
    from mtpsurgeon.formats.tflite.writer import write_tflite
    from mtpsurgeon.surgery.ir import Model
    from mtpsurgeon.surgery.ir.layers import Layers

    model = Model()
    head = np.random.default_rng(1).standard_normal((V, 1 if small_head else H)).astype(np.float32)
    for key, T in (("decode", 1), ("verify", G + 1)):
        g = model.add_graph(key)
        L = Layers(model, g)
        emb = L.input("embeddings", [1, T, H])
        L.input("input_pos", [T], "INT32")
        L.input("mask", [1, 1, T, C], "BOOL")
        for layer, (heads, hd, dt) in sorted(kv.items()):
            q = None
            if dt == "INT8":
                q = fb.QuantizationParametersT()
                q.scale, q.zeroPoint, q.quantizedDimension = [0.05], [0], 0
            L.input(f"kv_cache_k_{layer}", [1, heads, C, hd], dt, q)
            L.input(f"kv_cache_v_{layer}", [1, heads, hd, C], dt, q)
        x = emb
        if small_head:
            x = L.tensor("mean", [1, T, 1])
            L.op("MEAN", [emb, L.const("axis", np.array([2], np.int32))], x, _reducer())
        logits = L.fully_connected(x, L.const("lm_head", head))
        act = L.mul(emb, L.scalar(1.0, "one"), "activations")
        model.add_signature(key, g, {t.name: t for t in g.inputs}, {"logits": logits, "activations": act})
    write_tflite(model, path)
    return path


def _reducer():
    from mtpsurgeon.formats.tflite.schema import fb

    o = fb.ReducerOptionsT()
    o.keepDims = True
    return o


# ----------------------------------------------------------------------------- numpy reference
def _rms(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def _gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def _inv_freq(rope: dict, hd: int) -> np.ndarray:
    theta = rope["rope_theta"]
    if rope.get("rope_type") == "proportional":
        n = int(rope.get("partial_rotary_factor", 1.0) * hd // 2)
        rot = 1.0 / theta ** (np.arange(0, 2 * n, 2) / hd)
        return np.concatenate([rot, np.zeros(hd // 2 - n)])
    return 1.0 / theta ** (np.arange(0, hd, 2) / hd)


def reference_drafter(cfg: dict, w: dict[str, np.ndarray], ins: dict[str, np.ndarray], kv_layers: dict[str, int],
                      kv_scale: float | None = None, rope: bool = True) -> dict[str, np.ndarray]:
    t = cfg["text_config"]
    eps = t["rms_norm_eps"]
    w = {k: v.astype(np.float64) for k, v in w.items()}
    pos = int(ins["input_pos"][0])
    allowed = ins["mask"].reshape(-1).astype(bool)
    h = ins["activations"].astype(np.float64).reshape(-1) @ w["pre_projection.weight"].T
    for i, kind in enumerate(t["layer_types"]):
        p = f"model.layers.{i}."
        L = kv_layers[kind]
        k = ins[f"kv_cache_k_{L}"].astype(np.float64)[0]  # [kv, C, hd]
        v = ins[f"kv_cache_v_{L}"].astype(np.float64)[0].transpose(0, 2, 1)  # [kv, C, hd]
        if kv_scale is not None:
            k, v = k * kv_scale, v * kv_scale
        hd, heads = k.shape[-1], t["num_attention_heads"]
        x = _rms(h, w[p + "input_layernorm.weight"], eps)
        q = _rms((w[p + "self_attn.q_proj.weight"] @ x).reshape(heads, hd), w[p + "self_attn.q_norm.weight"], eps)
        if rope:
            f = pos * _inv_freq(t["rope_parameters"][kind], hd)
            cos, sin = np.cos(np.concatenate([f, f])), np.sin(np.concatenate([f, f]))
            q = q * cos + np.concatenate([-q[:, hd // 2:], q[:, : hd // 2]], axis=-1) * sin
        rep = heads // k.shape[0]
        k, v = np.repeat(k, rep, axis=0), np.repeat(v, rep, axis=0)
        ok = allowed.copy()
        if kind == "sliding_attention" and t.get("sliding_window"):
            ok &= np.abs(pos - np.arange(len(ok))) <= t["sliding_window"]
        s = np.einsum("hd,hcd->hc", q, k)
        s = np.where(ok[None], s, -1e9)
        pr = np.exp(s - s.max(-1, keepdims=True))
        pr /= pr.sum(-1, keepdims=True)
        ctx = np.einsum("hc,hcd->hd", pr, v).reshape(-1)
        h = h + _rms(w[p + "self_attn.o_proj.weight"] @ ctx, w[p + "post_attention_layernorm.weight"], eps)
        xf = _rms(h, w[p + "pre_feedforward_layernorm.weight"], eps)
        m = w[p + "mlp.down_proj.weight"] @ (_gelu_tanh(w[p + "mlp.gate_proj.weight"] @ xf) * (w[p + "mlp.up_proj.weight"] @ xf))
        h = h + _rms(m, w[p + "post_feedforward_layernorm.weight"], eps)
        h = h * float(w.get(p + "layer_scalar", np.ones(1))[0])
    hn = _rms(h, w["model.norm.weight"], eps)
    logits = w["model.embed_tokens.weight"] @ hn
    cap = t.get("final_logit_softcapping")
    if cap:
        logits = np.tanh(logits / cap) * cap
    return {"logits": logits.reshape(1, 1, -1), "projected_activations": (w["post_projection.weight"] @ hn).reshape(1, 1, -1)}
