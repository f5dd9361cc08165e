"""What of a ``gemma4_assistant`` config the drafter emitter reproduces, and what it must refuse.

``build-drafter`` must never write a drafter that computes something other than
transformers' forward of the same checkpoint. The emitter builds one function:
a gated MLP (GELU, tanh-GELU, tanh, ReLU, SiLU or sigmoid gate), no biases, no
per-layer inputs, no MoE, q-only attention over the base's shared KV, and RoPE
whose inverse frequencies are transformers' ``default``, ``linear`` or
``proportional`` ones. A config asking for anything
else is refused with the field named (:func:`config_checks`), instead of being
read as the nearest thing the emitter knows.

Tensors transformers does not read either (it loads them as "unexpected keys")
change neither function; they are named in a note (:func:`unread_tensors`).
"""
from __future__ import annotations

from collections.abc import Iterable

from mtpsurgeon.analysis.links import LinkCheck

#: rope_type values whose inverse frequencies the emitter reproduces exactly (transformers 5.24):
#: default (theta only), linear (default / factor), proportional (partial rotation, / factor).
BUILDABLE_ROPE = ("default", "linear", "proportional")
#: transformers' hidden_activation names (ACT2FN) → the gate non-linearity the emitter builds for it.
ACTIVATIONS = {"gelu_pytorch_tanh": "gelu_tanh", "gelu_new": "gelu_tanh", "gelu": "gelu", "tanh": "tanh",
               "relu": "relu", "silu": "silu", "swish": "silu", "sigmoid": "sigmoid"}
#: Gemma 4's hidden_activation, used when config.json names none.
DEFAULT_ACTIVATION = "gelu_pytorch_tanh"
#: text_config fields that, when set, add layers the emitter does not build (transformers'
#: Gemma4AssistantConfig.validate_architecture refuses them too).
ABSENT_LAYERS = ("hidden_size_per_layer_input", "vocab_size_per_layer_input", "enable_moe_block",
                 "use_double_wide_mlp", "attention_bias")
#: tensors an assistant checkpoint may carry that the dense LiteRT drafter does not read, by config flag.
ORDERED_EMBEDDINGS = ("masked_embedding.centroids.weight", "masked_embedding.token_ordering")


def rope_checks(text: dict) -> list[LinkCheck]:
    """Failing checks for every ``rope_parameters`` entry whose rotation the emitter would not reproduce."""
    checks = []
    for kind, r in sorted((text.get("rope_parameters") or {}).items()):
        rope_type = (r or {}).get("rope_type", "default")
        if rope_type not in BUILDABLE_ROPE:
            checks.append(LinkCheck(f"rope_parameters.{kind}.rope_type", False, " / ".join(BUILDABLE_ROPE),
                                    f"{rope_type!r} (its frequencies or cos/sin scaling are not built)"))
        for key, ok, expected in (("partial_rotary_factor", lambda v: 0 <= v <= 1, "between 0 and 1"),
                                  ("rope_theta", lambda v: v > 0, "> 0"), ("factor", lambda v: v > 0, "> 0")):
            value = (r or {}).get(key)
            if isinstance(value, (int, float)) and not ok(value):
                checks.append(LinkCheck(f"rope_parameters.{kind}.{key}", False, expected, value))
    return checks


def config_checks(text: dict) -> list[LinkCheck]:
    """Failing checks for every ``text_config`` field the emitter would not reproduce."""
    checks = rope_checks(text)
    types = text.get("layer_types")
    if isinstance(types, list) and types and types[-1] != "full_attention":
        checks.append(LinkCheck("layer_types[-1]", False, "full_attention (transformers forces the last layer to it)",
                                repr(types[-1])))
    act = text.get("hidden_activation", DEFAULT_ACTIVATION)
    if not isinstance(act, str) or act not in ACTIVATIONS:
        checks.append(LinkCheck("hidden_activation", False, " / ".join(ACTIVATIONS), repr(act)))
    for name in ABSENT_LAYERS:
        if text.get(name):
            checks.append(LinkCheck(name, False, "0 / false (the drafter has no such layers)", repr(text[name])))
    return checks


def default_layer_types(n: int) -> list[str]:
    """transformers' Gemma 4 layer types when config.json lists none: every 6th full, and the last full."""
    types = ["sliding_attention" if (i + 1) % 6 else "full_attention" for i in range(n)]
    return types[:-1] + ["full_attention"] if types else types


def lm_head_source(cfg: dict, text: dict, names: Iterable[str]) -> tuple[str | None, str]:
    """(the tensor transformers uses as the LM head, or None; what was looked for).

    Tied (the default): ``model.embed_tokens.weight`` (or a lone ``lm_head.weight``); untied: ``lm_head.weight``.
    """
    present = set(names)
    if cfg.get("tie_word_embeddings", text.get("tie_word_embeddings", True)) is False:
        return ("lm_head.weight" if "lm_head.weight" in present else None), "lm_head.weight (tie_word_embeddings false)"
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        if name in present:
            return name, "model.embed_tokens.weight (tied LM head)"
    return None, "model.embed_tokens.weight (tied LM head)"


def unread_tensors(names: Iterable[str], read: set[str], cfg: dict) -> list[str]:
    """Checkpoint tensors the built drafter does not read, minus those transformers' forward ignores by design."""
    ignored = {"lm_head.weight", "model.embed_tokens.weight"}  # the one of the pair not used as the LM head
    if cfg.get("use_ordered_embeddings"):
        ignored.update(ORDERED_EMBEDDINGS)  # noted separately: the drafter computes the exact, dense LM head
    return sorted(n for n in names if n not in read and n not in ignored)
