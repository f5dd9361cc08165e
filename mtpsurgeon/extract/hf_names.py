"""``--names hf``: a Gemma 4 drafter's tensors under transformers' ``gemma4_assistant`` names.

A tensor is recognised when its name contains a torch parameter path of the
assistant (``layers.0.self_attn.q_proj.weight``, ``pre_projection.weight``,
``norm.weight``, ...). Names are compared as token sequences (runs of letters
and digits, lower-cased), so ``p_layers_0_mlp_gate_proj_weight`` and
``drafter/layers.0/mlp/gate_proj`` match too. A path must be followed by the
end of the name or by ``weight``. A tensor matching no path, or several, or
whose path another (different) tensor already claims, is reported and left
out: nothing is guessed.

:func:`map_hf_names` also infers the ``config.json`` (dims from the shapes)
and lists what transformers would miss for a strict load.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable

import numpy as np

from mtpsurgeon.analysis.roles.model import RoleMap
from mtpsurgeon.extract.hf_config import GEMMA4_DEFAULTS as HF_CONFIG_DEFAULTS
from mtpsurgeon.extract.hf_config import config_from_roles
from mtpsurgeon.formats.tflite.records import TensorRecord

if TYPE_CHECKING:
    from mtpsurgeon.formats.tflite.model import TFLiteModel

#: Per-layer parameter paths (tokens) → transformers suffix under ``model.layers.N.``.
LAYER_PARAMS: dict[tuple[str, ...], str] = {
    ("self", "attn", "q", "proj"): "self_attn.q_proj.weight",
    ("self", "attn", "q", "norm"): "self_attn.q_norm.weight",
    ("self", "attn", "o", "proj"): "self_attn.o_proj.weight",
    ("mlp", "gate", "proj"): "mlp.gate_proj.weight",
    ("mlp", "up", "proj"): "mlp.up_proj.weight",
    ("mlp", "down", "proj"): "mlp.down_proj.weight",
    ("input", "layernorm"): "input_layernorm.weight",
    ("post", "attention", "layernorm"): "post_attention_layernorm.weight",
    ("pre", "feedforward", "layernorm"): "pre_feedforward_layernorm.weight",
    ("post", "feedforward", "layernorm"): "post_feedforward_layernorm.weight",
    ("layer", "scalar"): "layer_scalar",
}

#: Top-level parameter paths (tokens) → transformers name.
TOP_PARAMS: dict[tuple[str, ...], str] = {
    ("pre", "projection"): "pre_projection.weight",
    ("post", "projection"): "post_projection.weight",
    ("embed", "tokens"): "model.embed_tokens.weight",
    ("lm", "head"): "lm_head.weight",
    ("norm",): "model.norm.weight",
    ("masked", "embedding", "centroids"): "masked_embedding.centroids.weight",
    ("masked", "embedding", "token", "ordering"): "masked_embedding.token_ordering",
}

#: A bare ``norm`` preceded by one of these is some other norm, not ``model.norm``.
_NOT_FINAL_NORM = {"q", "k", "v", "input", "projection", "attention", "feedforward", "layer"}

#: Gemma 4 constants written to config.json when the name-based mapper has no graph to read them from
#: (the soft-cap too: without the drafter's operators it is not visible).
GEMMA4_DEFAULTS = {**HF_CONFIG_DEFAULTS, "final_logit_softcapping": 30.0}

_TOKEN = re.compile(r"[a-z0-9]+")


def tokens(name: str) -> list[str]:
    """Lower-cased runs of letters/digits: the form names are compared in."""
    return _TOKEN.findall(name.lower())


def _followed_ok(tk: list[str], end: int) -> bool:
    return end == len(tk) or tk[end] == "weight"


def candidates(name: str) -> set[str]:
    """Every transformers name this source name contains a path for."""
    tk = tokens(name)
    found: set[str] = set()
    in_layer = False
    for i in range(len(tk) - 1):
        if tk[i] == "layers" and tk[i + 1].isdigit():
            in_layer = True
            rest = i + 2
            for path, suffix in LAYER_PARAMS.items():
                end = rest + len(path)
                if tuple(tk[rest:end]) == path and _followed_ok(tk, end):
                    found.add(f"model.layers.{int(tk[i + 1])}.{suffix}")
    for path, target in TOP_PARAMS.items():
        n = len(path)
        for i in range(len(tk) - n + 1):
            if tuple(tk[i : i + n]) != path or not _followed_ok(tk, i + n):
                continue
            if path == ("norm",) and (in_layer or (i > 0 and tk[i - 1] in _NOT_FINAL_NORM)):
                continue
            if path in (("pre", "projection"), ("post", "projection")) and in_layer:
                continue
            found.add(target)
    return found


@dataclass
class HfMapping:
    """Result of :func:`map_hf_names`."""

    names: dict[tuple[int, int], str] = field(default_factory=dict)  #: (sg, index) → hf name
    shapes: dict[tuple[int, int], tuple[int, ...]] = field(default_factory=dict)  #: shape to write
    unmapped: list[tuple[TensorRecord, str]] = field(default_factory=list)  #: (tensor, reason)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  #: tensors filled with defaults
    factors: dict[tuple[int, int], float] = field(default_factory=dict)  #: (sg, index) → multiply values by
    extra_origin: dict[str, str] = field(default_factory=dict)  #: where each ``extra`` value came from
    config: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unfaithful: list[str] = field(default_factory=list)  #: what the graph computes that the config cannot express


def _same_data(model: "TFLiteModel | None", a: TensorRecord, b: TensorRecord) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.buffer and a.buffer == b.buffer and not a.external_buffer and not b.external_buffer:
        return True
    return model is not None and bytes(model.tensor_bytes(a)) == bytes(model.tensor_bytes(b))


def map_by_roles(tensors: Iterable[TensorRecord], roles: RoleMap, model: "TFLiteModel | None" = None,
                 overrides: dict | None = None) -> HfMapping:
    """Map tensors by the roles the graph gave them; config from the graph's architecture."""
    m = HfMapping()
    claimed: dict[str, TensorRecord] = {}
    constants = 0
    for t in tensors:
        role = roles.roles.get(t.index) if t.subgraph == roles.subgraph else None
        if role is None and (t.dtype.name in ("INT32", "INT64") or t.num_elements <= 1):
            constants += 1  # shape vectors, axes, eps and fill scalars: the converter's, not parameters
        elif role is None:
            m.unmapped.append((t, "no drafter role recognised for it"))
        elif role.kind == "layer_scalar":
            pass  # written from the graph's values below: one constant may serve several blocks
        elif role.hf_name is None:
            m.notes.append(f"'{t.name}' is a {role.kind} ({role.evidence}); gemma4_assistant computes it, not written")
        elif role.hf_name in claimed and not _same_data(model, claimed[role.hf_name], t):
            m.unmapped.append((t, f"{role.hf_name} is also claimed by '{claimed[role.hf_name].name}'"))
        else:
            claimed.setdefault(role.hf_name, t)
    head = claimed.get("model.embed_tokens.weight")
    cap, folded = roles.arch.get("softcap"), roles.arch.get("softcap_folded")
    if head is not None and cap and folded:
        m.factors[(head.subgraph, head.index)] = float(cap)
        m.notes.append(f"the graph computes logits = {cap:g} * tanh(x W^T) with no division by {cap:g} before the "
                       f"tanh: the exporter folded 1/{cap:g} into the LM head, so model.embed_tokens.weight is written "
                       f"x{cap:g} (unfolded)")
    if head is not None and cap:
        m.notes.append(f"gemma4_assistant applies no final-logit soft-cap in its forward: to reproduce the LiteRT "
                       f"drafter's logits apply logits = {cap:g} * tanh(logits / {cap:g}) (greedy top-1 is unchanged)")
    if constants:
        m.notes.append(f"{constants} converter constants (shape vectors, scalars) are not parameters: not written")
    for target, t in claimed.items():
        m.names[(t.subgraph, t.index)] = target
        m.shapes[(t.subgraph, t.index)] = tuple(t.shape)
    m.config = config_from_roles(roles, m.notes, overrides, unfaithful=m.unfaithful,
                                 cache_len=cache_length(model, roles) if model is not None else None,
                                 tables=_rope_tables(model, roles) if model is not None else None)
    shape = {k: _squeezed(tuple(t.shape)) for k, t in claimed.items()}
    layers = sorted({int(k.split(".")[2]) for k in claimed if k.startswith("model.layers.")})
    head_dims = {b.index: b.head_dim for b in roles.blocks}
    _check_shapes(claimed, shape, m.config, layers, head_dims, m)
    for n, value in roles.arch.get("layer_scalars", {}).items():
        m.extra[f"model.layers.{n}.layer_scalar"] = np.array([value], dtype=np.float32)
        m.extra_origin[f"model.layers.{n}.layer_scalar"] = "the scalar the graph multiplies block's output by"
    _fill_layer_scalars(set(claimed) | set(m.extra), sorted(set(layers) | {b.index for b in roles.blocks}), m)
    return m


def cache_length(model: "TFLiteModel", roles: RoleMap) -> int | None:
    """The length C of the KV caches the drafter reads ([1, heads, C, d] K inputs of its signature)."""
    names = {n for b in roles.blocks for n in b.kv_inputs}
    lengths = {model.tensor(sig.subgraph, idx).shape[2] for sig in model.signatures if sig.subgraph == roles.subgraph
               for name, idx in sig.inputs if name in names and len(model.tensor(sig.subgraph, idx).shape) == 4
               and "_v_" not in name}
    return int(lengths.pop()) if len(lengths) == 1 else None


def _rope_tables(model: "TFLiteModel", roles: RoleMap) -> dict[int, list[np.ndarray]]:
    """Block index → the RoPE tables stored on its query path."""
    tensors = model.subgraphs[roles.subgraph].tensors
    out: dict[int, list[np.ndarray]] = {}
    for i, role in roles.roles.items():
        if role.kind == "rope_table" and role.layer is not None:
            out.setdefault(role.layer, []).append(np.asarray(model.tensor_array(tensors[i])))
    return out


def map_hf_names(tensors: Iterable[TensorRecord], model: "TFLiteModel | None" = None,
                 num_key_value_heads: int | None = None, overrides: dict | None = None,
                 roles: RoleMap | None = None) -> HfMapping:
    """Map tensors to gemma4_assistant names and infer its config.

    With ``roles`` (a live drafter's dataflow roles) names follow the roles
    and the config follows the graph (:func:`map_by_roles`); without, names are
    matched against parameter paths in the tensor names.
    ``overrides`` replaces config fields the weights cannot tell (``sliding_window``,
    ``rms_norm_eps``, ...): keys of ``text_config`` or of the top level.
    """
    if roles is not None:
        return map_by_roles(tensors, roles, model, overrides)
    m = HfMapping()
    claimed: dict[str, TensorRecord] = {}
    clashes: set[str] = set()
    for t in tensors:
        found = candidates(t.name)
        if not found:
            m.unmapped.append((t, "no gemma4_assistant parameter path in its name"))
            continue
        if len(found) > 1:
            m.unmapped.append((t, f"ambiguous: contains paths for {', '.join(sorted(found))}"))
            continue
        target = found.pop()
        first = claimed.get(target)
        if first is None:
            claimed[target] = t
        elif _same_data(model, first, t):
            m.notes.append(f"'{t.name}' (subgraph {t.subgraph}, tensor {t.index}) repeats '{first.name}' "
                           f"as {target}; written once")
        else:
            clashes.add(target)
            m.unmapped.append((t, f"{target} is also claimed by '{first.name}' with different data"))
    for target in clashes:
        t = claimed.pop(target)
        m.unmapped.append((t, f"{target} is claimed by several tensors with different data"))
    _resolve_lm_head(claimed, m)
    for target, t in claimed.items():
        m.names[(t.subgraph, t.index)] = target
        m.shapes[(t.subgraph, t.index)] = tuple(t.shape)
    if num_key_value_heads is None and model is not None:
        num_key_value_heads = kv_heads_from_model(model)
    m.config = _infer_config(claimed, m, num_key_value_heads)
    for key, value in (overrides or {}).items():
        target = m.config if key in m.config and key != "text_config" else m.config["text_config"]
        target[key] = value
    defaults = sorted(set(GEMMA4_DEFAULTS) - set(overrides or {}))
    m.notes.append(f"config.json: {', '.join(defaults)} are Gemma 4 defaults, not read from the weights")
    return m


def _resolve_lm_head(claimed: dict[str, TensorRecord], m: HfMapping) -> None:
    """transformers ties ``lm_head`` to ``model.embed_tokens``: a lone LM head is that table."""
    head = claimed.get("lm_head.weight")
    if head is None:
        return
    if "model.embed_tokens.weight" not in claimed:
        claimed["model.embed_tokens.weight"] = claimed.pop("lm_head.weight")
        m.notes.append(f"'{head.name}' (LM head) written as model.embed_tokens.weight: gemma4_assistant ties them")


def kv_heads_from_model(model: "TFLiteModel") -> int | None:
    """KV heads read off ``kv_cache_k_*`` signature inputs ([1, heads, C, head_dim]), if any."""
    heads = set()
    for sig in model.signatures:
        for name, idx in sig.inputs:
            if name.startswith("kv_cache_k"):
                shape = model.tensor(sig.subgraph, idx).shape
                if len(shape) == 4:
                    heads.add(int(shape[1]))
    return heads.pop() if len(heads) == 1 else None


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1) or ((1,) if shape else ())


def _infer_config(claimed: dict[str, TensorRecord], m: HfMapping, kv_heads: int | None) -> dict:
    shape = {k: _squeezed(tuple(t.shape)) for k, t in claimed.items()}

    def dim(key: str, axis: int) -> int | None:
        s = shape.get(key)
        return s[axis] if s is not None and len(s) > axis else None

    pre = shape.get("pre_projection.weight")
    hidden = dim("pre_projection.weight", 0) or dim("model.norm.weight", 0) or dim("model.embed_tokens.weight", 1)
    backbone = (pre[1] // 2 if pre and len(pre) == 2 else None) or dim("post_projection.weight", 0)
    vocab = dim("model.embed_tokens.weight", 0)
    layers = sorted({int(k.split(".")[2]) for k in claimed if k.startswith("model.layers.")})
    n_layers = layers[-1] + 1 if layers else 0
    if layers and layers != list(range(n_layers)):
        m.notes.append(f"layers {layers} are not 0..{n_layers - 1}; missing layers will not load")

    head_dims = {n: dim(f"model.layers.{n}.self_attn.q_norm.weight", 0) for n in layers}
    heads = set()
    for n, hd in head_dims.items():
        q_out = dim(f"model.layers.{n}.self_attn.q_proj.weight", 0)
        if hd and q_out:
            heads.add(q_out // hd)
    inter = {dim(f"model.layers.{n}.mlp.gate_proj.weight", 0) for n in layers} - {None}
    if len(heads) > 1:
        m.notes.append(f"attention heads differ between layers {sorted(heads)}; config uses the first")
    if len(inter) > 1:
        m.notes.append(f"intermediate sizes differ between layers {sorted(inter)}; config uses the largest")
    known_hd = sorted({hd for hd in head_dims.values() if hd})
    head_dim = known_hd[0] if known_hd else 256
    global_head_dim = known_hd[-1] if known_hd else head_dim
    if len(known_hd) > 1:
        layer_types = ["full_attention" if head_dims[n] == global_head_dim else "sliding_attention"
                       for n in range(n_layers)]
    else:
        layer_types = ["sliding_attention"] * max(n_layers - 1, 0) + ["full_attention"] * (n_layers > 0)
        m.notes.append("all layers share one head_dim: layer_types assumed sliding except the last (full)")
    if kv_heads is None:
        kv_heads = 1
        m.notes.append("num_key_value_heads is not in the drafter's weights; set to 1 "
                       "(use the base model's KV cache head count)")

    text = {
        "model_type": "gemma4_text",
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": max(inter) if inter else None,
        "num_hidden_layers": n_layers,
        "num_attention_heads": min(heads) if heads else None,
        "num_key_value_heads": kv_heads,
        "head_dim": head_dim,
        "global_head_dim": global_head_dim,
        "layer_types": layer_types,
        "num_kv_shared_layers": n_layers,
        **GEMMA4_DEFAULTS,
    }
    centroids = shape.get("masked_embedding.centroids.weight")
    config = {
        "architectures": ["Gemma4AssistantForCausalLM"],
        "model_type": "gemma4_assistant",
        "backbone_hidden_size": backbone,
        "use_ordered_embeddings": centroids is not None,
        "num_centroids": int(centroids[0]) if centroids else 2048,
        "centroid_intermediate_top_k": 32,
        "tie_word_embeddings": "lm_head.weight" not in claimed,
        "text_config": text,
    }
    missing = [k for k, v in text.items() if v is None] + (["backbone_hidden_size"] if backbone is None else [])
    if missing:
        m.notes.append(f"config fields not inferable from the mapped tensors: {', '.join(missing)}")
    _check_shapes(claimed, shape, config, layers, head_dims, m)
    _fill_layer_scalars(claimed, layers, m)
    return config


def expected_shapes(config: dict, layers: Iterable[int], head_dims: dict[int, int | None]) -> dict[str, tuple]:
    """The shape transformers gives every parameter of this config (unknown dims: None)."""
    tc = config["text_config"]
    d, h, v, i = tc["hidden_size"], config["backbone_hidden_size"], tc["vocab_size"], tc["intermediate_size"]
    heads = tc["num_attention_heads"]
    out: dict[str, tuple] = {
        "pre_projection.weight": (d, None if h is None else 2 * h),
        "post_projection.weight": (h, d),
        "model.embed_tokens.weight": (v, d),
        "model.norm.weight": (d,),
    }
    for n in layers:
        hd = head_dims.get(n)
        q = None if hd is None or heads is None else heads * hd
        p = f"model.layers.{n}."
        out.update({
            p + "self_attn.q_proj.weight": (q, d), p + "self_attn.q_norm.weight": (hd,),
            p + "self_attn.o_proj.weight": (d, q),
            p + "mlp.gate_proj.weight": (i, d), p + "mlp.up_proj.weight": (i, d), p + "mlp.down_proj.weight": (d, i),
            **{p + f"{ln}.weight": (d,) for ln in ("input_layernorm", "post_attention_layernorm",
                                                   "pre_feedforward_layernorm", "post_feedforward_layernorm")},
        })
    return out


def _check_shapes(claimed: dict[str, TensorRecord], shape: dict[str, tuple], config: dict, layers: list[int],
                  head_dims: dict, m: HfMapping) -> None:
    """Note missing parameters and misfit shapes; drop size-1 dims where that makes a fit."""
    want_all = expected_shapes(config, layers, head_dims)
    if "lm_head.weight" in claimed:
        want_all["lm_head.weight"] = want_all["model.embed_tokens.weight"]
    for key, want in want_all.items():
        got = shape.get(key)
        if got is None:
            m.notes.append(f"missing {key}: no source tensor maps to it (strict loading will fail)")
        elif len(got) != len(want) or any(w is not None and g != w for g, w in zip(got, want)):
            m.notes.append(f"{key}: shape {list(got)} does not fit gemma4_assistant's {list(want)}")
        elif None not in want:
            t = claimed[key]
            m.shapes[(t.subgraph, t.index)] = tuple(want)


def _fill_layer_scalars(present: Iterable[str], layers: list[int], m: HfMapping) -> None:
    """``layer_scalar`` is a persistent buffer; absent from the source it is 1.0 (its init)."""
    filled = []
    present = set(present)
    for n in layers:
        key = f"model.layers.{n}.layer_scalar"
        if key not in present:
            m.extra[key] = np.ones(1, dtype=np.float32)
            m.extra_origin[key] = "1.0 (transformers' init; no scalar in the source)"
            filled.append(n)
    if filled:
        m.notes.append(f"model.layers.N.layer_scalar not in the source for layers {filled}; "
                       "written as 1.0 (transformers' initial value) so strict loading succeeds")
