"""``config.json`` for transformers' ``gemma4_assistant``, read off the drafter's graph.

Every field the graph determines comes from the role recogniser's
architecture (:class:`~mtpsurgeon.analysis.roles.model.RoleMap`): sizes,
heads per block, head dims, KV heads, layer types, RoPE base, soft-cap.
Fields the graph cannot show are Gemma 4 defaults, listed in ``notes``.
"""
from __future__ import annotations

import numpy as np

from mtpsurgeon.analysis.roles.model import RoleMap
from mtpsurgeon.surgery.drafter.spec import RopeSpec, rope_from_config

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


#: transformers' expression of "no RoPE" for one layer type: proportional RoPE rotating no frequency (identity).
NO_ROPE = {"rope_type": "proportional", "partial_rotary_factor": 0.0}


def _rope_for(kind: str, blocks: list, tables: dict[int, list[np.ndarray]], unfaithful: list[str],
              notes: list[str]) -> dict:
    """``rope_parameters[kind]`` computing exactly the graph's rotation, or the nearest with ``unfaithful`` told why."""
    mine = [b for b in blocks if b.layer_type == kind]
    roped = [b for b in mine if b.rope]
    theta_default = DEFAULT_ROPE[kind]["rope_theta"]
    if not roped:
        notes.append(f"{kind} blocks apply no RoPE in the graph: rope_parameters.{kind} is proportional RoPE with "
                     f"partial_rotary_factor 0.0 (transformers' rotation is then the identity)")
        return {**NO_ROPE, "rope_theta": theta_default}
    if len(roped) != len(mine):
        unfaithful.append(f"{kind} blocks {[b.index for b in roped]} rotate q, blocks "
                          f"{[b.index for b in mine if not b.rope]} do not (rope_parameters is one per layer type)")
        return dict(DEFAULT_ROPE[kind])
    thetas = {b.rope.get("theta") for b in roped}
    partial = {b.rope.get("partial_rotary_factor") for b in roped}
    if None in thetas or len(thetas) != 1:
        unfaithful.append(f"{kind}: RoPE tables whose base could not be read (thetas {sorted(map(str, thetas))})")
        return dict(DEFAULT_ROPE[kind])
    if len(partial) != 1:
        unfaithful.append(f"{kind}: blocks rotate different fractions of q {sorted(map(str, partial))}")
        return dict(DEFAULT_ROPE[kind])
    theta, factor = thetas.pop(), partial.pop()
    rope = ({"rope_type": "proportional", "partial_rotary_factor": factor, "rope_theta": theta}
            if factor is not None else {"rope_type": "default", "rope_theta": theta})
    for b in roped:
        stored = tables.get(b.index)
        spec = rope_from_config(rope, kind)
        if stored and b.head_dim and not any(_table_fits(t, spec, b.head_dim) for t in stored):
            unfaithful.append(f"block {b.index}: its RoPE table is not transformers' {rope} frequencies for "
                              f"head_dim {b.head_dim}")
    return rope


def _table_fits(table: np.ndarray, rope: RopeSpec, head_dim: int) -> bool:
    """Does a stored RoPE table hold ``rope``'s frequencies?

    Forms: hd/2 frequencies or timescales, the same duplicated or signed over hd ([f, f], [-f, f]), or a cos
    table of positions × frequencies.
    """
    inv = rope.inv_freq(head_dim).astype(np.float64)
    a = np.asarray(table, dtype=np.float64)
    v = np.abs(a.reshape(-1))
    for want in (inv, np.concatenate([inv, inv])):
        if v.size != want.size:
            continue
        with np.errstate(divide="ignore"):
            timescale = np.where(want > 0, 1 / np.where(want > 0, want, 1), np.inf)
        if np.allclose(v, want, rtol=1e-5, atol=1e-9):
            return True
        finite = np.isfinite(timescale)
        if np.array_equal(np.isfinite(v), finite) and np.allclose(v[finite], timescale[finite], rtol=1e-5):
            return True
    if a.size % inv.size == 0 and a.size > inv.size:
        rows = a.reshape(-1, inv.size)
        return bool(np.allclose(rows, np.cos(np.arange(rows.shape[0])[:, None] * inv), atol=1e-5))
    return False


def _window(blocks: list, cache_len: int | None, unfaithful: list[str], notes: list[str]) -> int | None:
    """``sliding_window`` reproducing the sliding blocks' masks: theirs, or the cache length when they have none."""
    sliding = [b for b in blocks if b.layer_type == "sliding_attention"]
    windows = {b.sliding_window for b in sliding}
    if not sliding:
        return None
    if len(windows) > 1:
        by_window = "; ".join(f"blocks {[b.index for b in sliding if b.sliding_window == w]} "
                              f"{'no window' if w is None else f'window {w}'}"
                              for w in sorted(windows, key=lambda w: (w is None, w or 0)))
        unfaithful.append(f"sliding_attention blocks mask different windows: {by_window} "
                          "(sliding_window is one value)")
        return min((w for w in windows if w), default=None)
    window = windows.pop()
    if window is not None:
        return window
    if cache_len is None:
        unfaithful.append("sliding_attention blocks mask no window, and the cache length that would express that "
                          "is unknown")
        return None
    notes.append(f"sliding_attention blocks mask no window in the graph: sliding_window is the cache length "
                 f"{cache_len} (transformers' window then covers every key)")
    return cache_len


def _shared_caches(blocks: list, unfaithful: list[str]) -> None:
    """transformers gives every block of a layer type the same shared KV: the graph must too."""
    for kind in ("sliding_attention", "full_attention"):
        caches = {tuple(sorted(b.kv_inputs)) for b in blocks if b.layer_type == kind and b.kv_inputs}
        if len(caches) > 1:
            unfaithful.append(f"{kind} blocks read different KV caches {sorted(caches)} (transformers shares one "
                              "per layer type)")


def _score_scales(blocks: list, unfaithful: list[str]) -> None:
    """transformers' Gemma 4 attention multiplies scores by 1.0: a graph scaling them otherwise computes more."""
    for b in blocks:
        if b.score_scale is not None and abs(b.score_scale - 1.0) > 1e-6:
            unfaithful.append(f"block {b.index} multiplies its attention scores by {b.score_scale:.6g} "
                              "(gemma4_assistant's attention scale is 1.0)")


def _kv_groups(blocks: list, unfaithful: list[str], notes: list[str]) -> None:
    """transformers' repeat_kv gives query head h KV head h // (heads / kv_heads): the graph must group so too."""
    wrong: dict[tuple, list[int]] = {}
    for b in blocks:
        if not (b.heads and b.kv_heads and b.kv_heads > 1 and b.heads % b.kv_heads == 0):
            continue
        want = [h // (b.heads // b.kv_heads) for h in range(b.heads)]
        if b.head_kv is None:
            notes.append(f"block {b.index}: which KV head each query head reads was not followed through the graph; "
                         f"transformers' consecutive groups {want} assumed")
        elif b.head_kv != want:
            wrong.setdefault((tuple(b.head_kv), tuple(want)), []).append(b.index)
    for (got, want), idx in wrong.items():
        unfaithful.append(f"blocks {idx}: query heads read KV heads {list(got)} (transformers' repeat_kv reads "
                          f"{list(want)})")


def _activation(blocks: list, unfaithful: list[str], notes: list[str]) -> str | None:
    """``hidden_activation`` as the graph's MLP gates compute it (None: not read, the Gemma 4 default stays)."""
    named = {b.activation for b in blocks if b.activation}
    unnamed = [b.index for b in blocks if b.intermediate and not b.activation]
    if len(named) > 1:
        by = "; ".join(f"blocks {[b.index for b in blocks if b.activation == a]} {a}" for a in sorted(named))
        unfaithful.append(f"MLP gates apply different non-linearities: {by} (hidden_activation is one value)")
        return None
    if unnamed:
        notes.append(f"blocks {unnamed}: the MLP gate's non-linearity is not one operator read here; "
                     f"hidden_activation {GEMMA4_DEFAULTS['hidden_activation']!r} assumed")
        return None
    return named.pop() if named else None


#: A mask fill at or below this leaves hidden keys no float32 softmax weight whatever the scores (exp underflows).
HIDDEN_FILL = -1e4


def _mask_fills(blocks: list, unfaithful: list[str]) -> None:
    """transformers gives hidden keys no weight: a graph ignoring the mask, or filling their scores with a modest
    value, does."""
    unmasked = [b.index for b in blocks if b.masked is False]
    if unmasked:
        unfaithful.append(f"blocks {unmasked} ignore the mask input: they attend to every cache slot "
                          "(gemma4_assistant attends to the visible positions only)")
    for fill in sorted({b.mask_fill for b in blocks if b.mask_fill is not None and b.mask_fill > HIDDEN_FILL}):
        unfaithful.append(f"blocks {[b.index for b in blocks if b.mask_fill == fill]} fill the scores of masked keys "
                          f"with {fill:.6g}, so those keep softmax weight (gemma4_assistant gives them none)")


def _epsilon_groups(arch: dict) -> str:
    """``1e-06 (20 norms), 0.1 (layers.1.q_norm)``: each epsilon with the norms adding it (the most common one
    counted, the others named)."""
    groups = arch.get("eps_norms") or [{"eps": e, "norms": []} for e in arch["eps_values"]]
    common = max(len(g["norms"]) for g in groups)
    parts = []
    for g in groups:
        n = g["norms"]
        who = (f"{len(n)} norms" if len(n) == common and len(n) > 3 else ", ".join(n)) if n else "?"
        parts.append(f"{g['eps']:.6g} ({who})")
    return ", ".join(parts)


def _uniform(what: str, values: list, unfaithful: list[str]) -> None:
    if len(set(values)) > 1:
        unfaithful.append(f"{what} differ between blocks {sorted(set(values))} (gemma4_assistant has one value)")


def config_from_roles(rm: RoleMap, notes: list[str], overrides: dict | None = None, *,
                      unfaithful: list[str] | None = None, cache_len: int | None = None,
                      tables: dict[int, list[np.ndarray]] | None = None) -> dict:
    """The assistant's config as the graph describes it; ``notes`` gets every assumption.

    ``unfaithful`` collects what the graph computes that no ``gemma4_assistant``
    config can express (the config written then computes something else);
    ``cache_len`` (the KV caches' length) expresses "no window"; ``tables``
    (block index → its stored RoPE tables) are checked against the frequencies the
    config implies.
    """
    unfaithful = [] if unfaithful is None else unfaithful
    a = rm.arch
    blocks = rm.blocks
    heads = sorted({b.heads for b in blocks if b.heads})
    kv_heads = sorted({b.kv_heads for b in blocks if b.kv_heads})
    inter = sorted({b.intermediate for b in blocks if b.intermediate})
    types = [b.layer_type or "sliding_attention" for b in blocks]
    sliding_hd = sorted({b.head_dim for b in blocks if b.head_dim and b.layer_type != "full_attention"})
    full_hd = sorted({b.head_dim for b in blocks if b.head_dim and b.layer_type == "full_attention"})
    live = rm.method == "dataflow"  # a pruned drafter's operators are gone: its function is not in the file
    if live:
        _uniform("attention heads", [b.heads for b in blocks if b.heads], unfaithful)
        _uniform("KV heads", [b.kv_heads for b in blocks if b.kv_heads], unfaithful)
        _uniform("MLP widths", [b.intermediate for b in blocks if b.intermediate], unfaithful)
        _uniform("sliding_attention head dims", sliding_hd, unfaithful)
        _uniform("full_attention head dims", full_hd, unfaithful)
        _shared_caches(blocks, unfaithful)
        _score_scales(blocks, unfaithful)
        _mask_fills(blocks, unfaithful)
        _kv_groups(blocks, unfaithful, notes)
        if types and types[-1] != "full_attention":
            unfaithful.append(f"the last block ({blocks[-1].index}) is {types[-1]}: transformers forces the last "
                              "layer of a gemma4 config to full_attention")
    else:
        if len(heads) > 1:
            notes.append(f"attention heads differ between blocks {heads}; config uses {heads[0]}")
        if len(kv_heads) > 1:
            notes.append(f"KV heads differ between blocks {kv_heads}; config uses {kv_heads[0]}")
    activation = _activation(blocks, unfaithful, notes) if live else None
    rope: dict = {}
    for kind in ("sliding_attention", "full_attention"):
        if not any(b.layer_type == kind for b in blocks):
            continue
        if live:
            rope[kind] = _rope_for(kind, blocks, tables or {}, unfaithful, notes)
        else:
            rope[kind] = _rope_unverified(kind, blocks, notes)
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
    if activation:
        text["hidden_activation"] = activation
    if a.get("eps"):  # the norms' constant (a pruned drafter: the one left over)
        text["rms_norm_eps"] = float(f"{a['eps']:.6g}")  # a float32 constant: 1e-06, not 9.99999997e-07
    if live and a.get("eps_values"):
        unfaithful.append(f"RMS norms add different epsilons: {_epsilon_groups(a)} (rms_norm_eps is one value)")
    window = _window(blocks, cache_len, unfaithful, notes) if live else None
    windows = ([window] if window is not None else []) if live else sorted({b.sliding_window for b in blocks
                                                                          if b.sliding_window})
    if windows:
        text["sliding_window"] = windows[0]
        if len(windows) > 1:
            notes.append(f"sliding windows differ between blocks {windows}; config uses {windows[0]}")
    for key, value in (overrides or {}).items():
        (config if key in config and key != "text_config" else text)[key] = value
    if unfaithful and live:
        notes.extend(f"NOT EXPRESSIBLE in gemma4_assistant: {u}" for u in unfaithful)
    defaults = sorted(set(GEMMA4_DEFAULTS) - set(overrides or {}) - ({"sliding_window"} if windows else set())
                      - ({"rms_norm_eps"} if a.get("eps") else set()) - ({"hidden_activation"} if activation else set()))
    notes.append(f"config.json: {', '.join(defaults)} are Gemma 4 defaults, not shown by the graph")
    if text["final_logit_softcapping"] is None and rm.method == "shapes":
        notes.append("final_logit_softcapping: not visible without the drafter's operators (Gemma 4 drafters use 30.0)")
    missing = [k for k, v in text.items() if v is None and k != "final_logit_softcapping"]
    if missing:
        notes.append(f"config fields the graph did not determine: {', '.join(missing)}")
    return config


def _rope_unverified(kind: str, blocks: list, notes: list[str]) -> dict:
    """A pruned drafter's RoPE: from its stored tables when they show it, else Gemma 4's default."""
    roped = [b for b in blocks if b.layer_type == kind and b.rope]
    thetas = {b.rope.get("theta") for b in roped}
    if not roped or None in thetas or len(thetas) != 1:
        notes.append(f"{kind}: RoPE not visible without the drafter's operators; Gemma 4 default kept")
        return dict(DEFAULT_ROPE[kind])
    partial = {b.rope.get("partial_rotary_factor") for b in roped} - {None}
    theta = thetas.pop()
    return ({"rope_type": "proportional", "partial_rotary_factor": partial.pop(), "rope_theta": theta}
            if len(partial) == 1 else {"rope_type": "default", "rope_theta": theta})
