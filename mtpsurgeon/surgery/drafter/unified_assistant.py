"""``gemma4_unified_assistant`` (the 12B's assistant): how it differs from ``gemma4_assistant``.

transformers 5.24's ``Gemma4UnifiedAssistantForCausalLM`` subclasses
``Gemma4AssistantForCausalLM`` without changing a layer: the same parameter
names, norms, q-only attention over the target's shared KV, RoPE, layer
scalars and tied LM head. What differs is the configuration, and since
``save_pretrained`` writes only fields that differ from the class defaults, a
reader must fill in the unified classes' own defaults:

- ``Gemma4UnifiedAssistantConfig``: ``backbone_hidden_size`` 3840 (not the E2B/E4B
  widths), ``use_ordered_embeddings`` False, ``tie_word_embeddings`` True, and
  ``text_config.num_kv_shared_layers`` set to ``num_hidden_layers`` when unset;
- ``Gemma4UnifiedTextConfig`` (``model_type`` ``gemma4_unified_text``):
  ``sliding_window`` 1024 (``gemma4_text``: 512), ``max_position_embeddings``
  262144, no per-layer inputs (``hidden_size_per_layer_input`` /
  ``vocab_size_per_layer_input`` None), ``use_bidirectional_attention``
  "vision" (vision tokens only; the drafter reads text).

:func:`adapt` returns the config with those defaults filled in, so the rest of
:mod:`~mtpsurgeon.surgery.drafter.spec` reads it like any assistant config.
"""
from __future__ import annotations

from typing import Any

MODEL_TYPE = "gemma4_unified_assistant"
TEXT_MODEL_TYPE = "gemma4_unified_text"
ASSISTANT_DEFAULTS: dict[str, Any] = {"backbone_hidden_size": 3840, "use_ordered_embeddings": False,
                                      "num_centroids": 2048, "centroid_intermediate_top_k": 32,
                                      "tie_word_embeddings": True}
TEXT_DEFAULTS: dict[str, Any] = {"sliding_window": 1024, "max_position_embeddings": 262_144,
                                 "hidden_size_per_layer_input": None, "vocab_size_per_layer_input": None}


def adapt(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(config with the unified classes' defaults filled in, notes naming every default used)."""
    out = dict(cfg)
    notes = []
    for k, v in ASSISTANT_DEFAULTS.items():
        if k not in out:
            out[k] = v
            notes.append(f"{k} = {v!r} ({MODEL_TYPE} default)")
    text = dict(out.get("text_config") or {})
    for k, v in TEXT_DEFAULTS.items():
        if k not in text:
            text[k] = v
            if v is not None:
                notes.append(f"text_config.{k} = {v!r} ({TEXT_MODEL_TYPE} default)")
    if not text.get("num_kv_shared_layers") and "num_hidden_layers" in text:
        text["num_kv_shared_layers"] = text["num_hidden_layers"]
    out["text_config"] = text
    return out, notes
