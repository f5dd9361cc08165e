"""What a tensor's name says about its role: supporting evidence, never the only one.

Exporters spell roles differently: torch parameter paths
(``layers.2.mlp.gate_proj.weight``) or JAX/TF export paths
(``layer_2.post_qkv/mlp/gating_einsum1/...``). Names are split into lower-case
tokens and matched against token sequences, so separators do not matter.
"""
from __future__ import annotations

import re

#: Name tokens (lower-cased, any separator) that say which role a weight has.
NAME_ROLES: list[tuple[tuple[str, ...], str]] = [
    (("q", "einsum"), "q_proj"), (("q", "proj"), "q_proj"),
    (("attn", "vec", "einsum"), "o_proj"), (("o", "proj"), "o_proj"),
    (("gating", "einsum1"), "gate_proj"), (("gate", "proj"), "gate_proj"),
    (("gating", "einsum2"), "up_proj"), (("up", "proj"), "up_proj"),
    (("mlp", "linear"), "down_proj"), (("down", "proj"), "down_proj"),
    (("q", "norm"), "q_norm"), (("input", "layernorm"), "input_layernorm"),
    (("post", "attention", "layernorm"), "post_attention_layernorm"),
    (("pre", "feedforward", "layernorm"), "pre_feedforward_layernorm"),
    (("post", "feedforward", "layernorm"), "post_feedforward_layernorm"),
    (("layer", "scalar"), "layer_scalar"), (("maybe", "rope"), "rope_table"),
    (("pre", "projection"), "pre_projection"), (("pre", "proj"), "pre_projection"),
    (("post", "projection"), "post_projection"), (("post", "proj"), "post_projection"),
    (("embed", "tokens"), "lm_head"), (("lm", "head"), "lm_head"), (("embedder", "decode"), "lm_head"),
]
_TOKEN = re.compile(r"[a-z]+[0-9]*|[0-9]+")


def _tokens(name: str) -> list[str]:
    return _TOKEN.findall(name.lower().replace("_", " "))


def name_role(name: str) -> str | None:
    """The one role ``name``'s tokens say, or None (no role, or several)."""
    tk = _tokens(name)
    found = {role for path, role in NAME_ROLES
             if any(tuple(tk[i:i + len(path)]) == path for i in range(len(tk) - len(path) + 1))}
    if "q_norm" in found:
        found.discard("q_proj")
    return found.pop() if len(found) == 1 else None
