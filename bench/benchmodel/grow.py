"""Function-preserving growth of a trained Gemma 4 text model and its MTP drafter.

Base (transformers `Gemma4ForCausalLM`, hidden H -> H', intermediate I -> I',
L -> L' layers). Gemma 4's RMSNorm is `x * (mean(x^2) + eps)^-0.5 * w` (no 1+w),
its embedding is scaled by sqrt(hidden), each decoder layer is
`x += post_attn_norm(attn(in_norm(x)))`, `x += post_ffw_norm(mlp(pre_ffw_norm(x)))`,
`x *= layer_scalar`, and the LM head is tied to the embedding. So:

* widening H -> H' keeps the residual stream equal on the first H dimensions and
  zero on the new ones: the embedding is multiplied by sqrt(H/H') (the model then
  scales by sqrt(H') instead of sqrt(H): the embedder's output is unchanged) and
  zero-padded; every projection reading the stream gets zero columns, every
  projection writing it zero rows. An RMSNorm over H' of a vector zero-padded
  from H sees mean' = mean * H/H': with eps' = eps * H/H' its output is exactly
  sqrt(H'/H) times the original, which every norm weight w * sqrt(H/H') (zero on
  the new dimensions) cancels - except the final norm, which keeps w so that the
  tied LM head (embedding scaled by sqrt(H/H')) gives the original logits; the
  final norm's output (the `activations` the drafter reads) is therefore sqrt(H'/H)
  times the original. eps is one config value: the per-head q/k/v norms (head
  dims unchanged) get eps' too, a relative change of ~1e-6 (checked numerically).
* widening I -> I': the new gate/up rows are random, the matching down columns
  zero, so the new units add exactly zero.
* deepening: new layers are inserted BEFORE the trained ones (which stay the last
  sliding and last full layer, whose caches the drafter reads); all their weights
  are random except post_attention_layernorm and post_feedforward_layernorm,
  which are zero, so both residual branches add exactly zero and layer_scalar is 1.

Drafter: `activations` input [emb | act] of 2H -> 2H': pre_projection gets zero
columns for the new dimensions and its act columns divided by the act scale
sqrt(H'/H); post_projection gets zero rows and is multiplied by that scale, so the
projected activations it feeds back keep the act slot's scale.
"""

import math

import torch

from .sizes import SEED_GROW, Size

_STREAM_NORMS = ("input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm", "post_feedforward_layernorm")
_READS_STREAM = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")


def grown_config(small_config, size: Size):
    """The small model's config with the grown sizes (per-layer fields re-derived by the constructor)."""
    d = small_config.to_dict()
    full = small_config.layer_types.index("full_attention")
    d["global_head_dim"] = small_config.per_layer_config[full].head_dim
    for k in ("per_layer_config", "transformers_version", "architectures", "model_type"):
        d.pop(k, None)
    layer_types = list(size.inserted) + list(small_config.layer_types)
    d.update(
        hidden_size=size.hidden,
        intermediate_size=size.intermediate,
        layer_types=layer_types,
        num_hidden_layers=len(layer_types),
        rms_norm_eps=small_config.rms_norm_eps * small_config.hidden_size / size.hidden,
    )
    return small_config.__class__(**d)


def act_scale(small_config, size: Size) -> float:
    """Factor by which the grown base's `activations` (final-norm output) exceed the small one's."""
    return math.sqrt(size.hidden / small_config.hidden_size)


@torch.no_grad()
def grow_base(small, size: Size):
    """Returns the grown Gemma4ForCausalLM (eval, float32); `small` is not changed."""
    from transformers import AutoModelForCausalLM

    sc = small.config
    H, H2, I = sc.hidden_size, size.hidden, sc.intermediate_size
    assert size.hidden >= H and size.intermediate >= I
    torch.manual_seed(SEED_GROW)
    big = AutoModelForCausalLM.from_config(grown_config(sc, size), attn_implementation="eager").eval()
    src, dst = small.state_dict(), big.state_dict()
    norm_gain = math.sqrt(H / H2)
    off = len(size.inserted)
    done = set()

    def put(name, value):
        dst[name].copy_(value)
        done.add(name)

    for i in range(off):
        for n in ("post_attention_layernorm", "post_feedforward_layernorm"):
            dst[f"model.layers.{i}.{n}.weight"].zero_()
        dst[f"model.layers.{i}.layer_scalar"].fill_(1.0)
    for name, w in src.items():
        if name == "model.embed_tokens.weight":
            put(name, _pad(w * norm_gain, (w.shape[0], H2)))
        elif name == "model.norm.weight":
            put(name, _pad(w, (H2,)))
        elif name.startswith("model.layers."):
            parts = name.split(".")
            target = ".".join(["model", "layers", str(int(parts[2]) + off)] + parts[3:])
            local = ".".join(parts[3:])
            if any(local == f"{n}.weight" for n in _STREAM_NORMS):
                put(target, _pad(w * norm_gain, (H2,)))
            elif any(local == f"{n}.weight" for n in _READS_STREAM):
                put(target, _pad(w, (w.shape[0], H2)))
            elif local in ("self_attn.o_proj.weight", "mlp.down_proj.weight"):
                put(target, _pad(w, (H2, dst[target].shape[1])))
            elif local in ("mlp.gate_proj.weight", "mlp.up_proj.weight"):
                new = dst[target].clone()  # random rows for the new units
                new[:I] = 0
                new[:I, :H] = w
                put(target, new)
            elif local in ("self_attn.q_norm.weight", "self_attn.k_norm.weight", "layer_scalar"):
                put(target, w)
            else:
                raise ValueError(f"grow_base: no rule for {name} {tuple(w.shape)}")
        elif name == "lm_head.weight" and sc.tie_word_embeddings:
            done.add(name)
        else:
            raise ValueError(f"grow_base: no rule for {name} {tuple(w.shape)}")
    big.load_state_dict(dst)
    if sc.tie_word_embeddings:
        big.tie_weights()
    return big


@torch.no_grad()
def grow_drafter(small_drafter, big_drafter, H: int, H2: int, scale: float):
    """Copies `small_drafter` (activations 2H) into `big_drafter` (built for 2H')."""
    src = small_drafter.state_dict()
    dst = big_drafter.state_dict()
    for name, w in src.items():
        if name == "pre_projection.weight":  # [D, 2H] = [emb | act]
            new = torch.zeros_like(dst[name])
            new[:, :H] = w[:, :H]
            new[:, H2 : H2 + H] = w[:, H:] / scale
            dst[name].copy_(new)
        elif name == "post_projection.weight":  # [H, D]
            dst[name].copy_(_pad(w * scale, tuple(dst[name].shape)))
        else:
            assert dst[name].shape == w.shape, name
            dst[name].copy_(w)
    big_drafter.load_state_dict(dst)
    return big_drafter.eval()


def _pad(w, shape):
    out = torch.zeros(shape, dtype=w.dtype)
    out[tuple(slice(0, s) for s in w.shape)] = w
    return out
