"""``config.json`` for transformers' ``gemma4_assistant``, read off the drafter's graph.

Every field the graph determines comes from the role recogniser's
architecture (:class:`~mtpsurgeon.analysis.roles.model.RoleMap`): sizes,
heads per block, head dims, KV heads, layer types, RoPE base, soft-cap.
Fields the graph cannot show are Gemma 4 defaults, listed in ``notes``.
"""
from __future__ import annotations

from mtpsurgeon.analysis.roles.model import RoleMap

#: Gemma 4 architecture constants the drafter graph does not show.
GEMMA4_DEFAULTS = {
    "hidden_activation": "gelu_pytorch_tanh",
    "rms_norm_eps": 1e-6,
    "sliding_window": 512,
    "attention_bias": False,
    "attention_k_eq_v": False,
    "hidden_size_per_layer_input": 0,
    "vocab_size_per_layer_input": 0,
    "enable_moe_block": False,
    "use_double_wide_mlp": False,
}

#: transformers' Gemma 4 RoPE per layer type, used where the graph has no tables to read.
DEFAULT_ROPE = {
    "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
    "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25, "rope_theta": 1000000.0},
}


def config_from_roles(rm: RoleMap, notes: list[str], overrides: dict | None = None) -> dict:
    """The assistant's config as the graph describes it; ``notes`` gets every assumption."""
    a = rm.arch
    blocks = rm.blocks
    heads = sorted({b.heads for b in blocks if b.heads})
    kv_heads = sorted({b.kv_heads for b in blocks if b.kv_heads})
    inter = sorted({b.intermediate for b in blocks if b.intermediate})
    types = [b.layer_type or "sliding_attention" for b in blocks]
    sliding_hd = sorted({b.head_dim for b in blocks if b.head_dim and b.layer_type != "full_attention"})
    full_hd = sorted({b.head_dim for b in blocks if b.head_dim and b.layer_type == "full_attention"})
    if len(heads) > 1:
        notes.append(f"attention heads differ between blocks {heads}; config uses {heads[0]}")
    if len(kv_heads) > 1:
        notes.append(f"KV heads differ between blocks {kv_heads}; config uses {kv_heads[0]}")
    rope: dict = {}
    for kind in ("sliding_attention", "full_attention"):
        thetas = {b.rope.get("theta") for b in blocks if b.layer_type == kind and b.rope}
        if not any(b.layer_type == kind for b in blocks):
            continue
        if not any(b.rope for b in blocks if b.layer_type == kind):
            rope[kind] = dict(DEFAULT_ROPE[kind])
            notes.append(f"{kind} blocks apply no RoPE in the graph; transformers always rotates q, "
                         f"so its outputs differ from the LiteRT drafter's (config keeps the Gemma 4 default)")
        elif None in thetas or len(thetas) != 1:
            rope[kind] = dict(DEFAULT_ROPE[kind])
            notes.append(f"{kind}: RoPE tables found but their base could not be read; Gemma 4 default kept")
        else:
            theta = thetas.pop()
            partial = {b.rope.get("partial_rotary_factor") for b in blocks if b.layer_type == kind and b.rope} - {None}
            rope[kind] = ({"rope_type": "proportional", "partial_rotary_factor": partial.pop(), "rope_theta": theta}
                          if len(partial) == 1 else {"rope_type": "default", "rope_theta": theta})
    text = {
        "model_type": "gemma4_text",
        "vocab_size": a.get("vocab"),
        "hidden_size": a.get("hidden"),
        "intermediate_size": inter[-1] if inter else None,
        "num_hidden_layers": len(blocks),
        "num_attention_heads": heads[0] if heads else None,
        "num_key_value_heads": kv_heads[0] if kv_heads else None,
        "head_dim": sliding_hd[0] if sliding_hd else (full_hd[0] if full_hd else None),
        "global_head_dim": full_hd[0] if full_hd else (sliding_hd[0] if sliding_hd else None),
        "layer_types": types,
        "num_kv_shared_layers": len(blocks),
        "rope_parameters": rope,
        "final_logit_softcapping": a.get("softcap"),
        **GEMMA4_DEFAULTS,
    }
    config = {
        "architectures": ["Gemma4AssistantForCausalLM"],
        "model_type": "gemma4_assistant",
        "backbone_hidden_size": a.get("backbone_hidden"),
        "use_ordered_embeddings": False,
        "num_centroids": 2048,
        "centroid_intermediate_top_k": 32,
        "tie_word_embeddings": True,
        "text_config": text,
    }
    if a.get("eps"):  # a pruned drafter's leftover constant
        text["rms_norm_eps"] = float(f"{a['eps']:.6g}")  # a float32 constant: 1e-06, not 9.99999997e-07
    windows = sorted({b.sliding_window for b in blocks if b.sliding_window})
    if windows:
        text["sliding_window"] = windows[0]
        if len(windows) > 1:
            notes.append(f"sliding windows differ between blocks {windows}; config uses {windows[0]}")
    for key, value in (overrides or {}).items():
        (config if key in config and key != "text_config" else text)[key] = value
    defaults = sorted(set(GEMMA4_DEFAULTS) - set(overrides or {}) - ({"sliding_window"} if windows else set())
                      - ({"rms_norm_eps"} if a.get("eps") else set()))
    notes.append(f"config.json: {', '.join(defaults)} are Gemma 4 defaults, not shown by the graph")
    if text["final_logit_softcapping"] is None and rm.method == "shapes":
        notes.append("final_logit_softcapping: not visible without the drafter's operators (Gemma 4 drafters use 30.0)")
    missing = [k for k, v in text.items() if v is None and k != "final_logit_softcapping"]
    if missing:
        notes.append(f"config fields the graph did not determine: {', '.join(missing)}")
    return config
