"""README.md model card written beside an ``--names hf`` checkpoint."""
from __future__ import annotations

import json
from pathlib import Path

from mtpsurgeon._version import __version__
from mtpsurgeon.extract.dump import DumpReport


def model_card(dump: DumpReport, source: str, source_sha256: str | None, where: str, model_sha256: str | None = None) -> str:
    """Where the weights came from and exactly how a transformers forward relates to the LiteRT graph.

    ``source_sha256``: the whole input's hash (only when it was asked for);
    ``model_sha256``: the hash of the drafter model's own bytes (its section).
    """
    cfg = json.loads(Path(dump.config_path).read_text()) if dump.config_path and Path(dump.config_path).exists() else {}
    tc = cfg.get("text_config", {})
    cap = tc.get("final_logit_softcapping")
    lines = [
        "---", "library_name: transformers", "tags: [gemma4_assistant, mtp, speculative-decoding, mtpsurgeon]", "---", "",
        "# Gemma 4 MTP drafter extracted from a LiteRT model", "",
        f"- source: `{source}`" + (f" (sha256 `{source_sha256}`)" if source_sha256 else "") + f", {where}"
        + (f" (sha256 of its bytes `{model_sha256}`)" if model_sha256 and model_sha256 != source_sha256 else ""),
        f"- written by mtpsurgeon {__version__} (`extract --names hf --dtype {dump.dtype}`): "
        f"{dump.tensors} tensors, {dump.parameters:,} parameters",
        "- weights named by the role each plays in the LiteRT graph (recognised from dataflow, not names)", "",
        "## How its outputs relate to the LiteRT drafter", "",
        "- inputs: LiteRT `activations` [1, 1, 2H] = `inputs_embeds`; LiteRT `kv_cache_k_L` [B, kv_heads, C, d] is "
        "`shared_kv_states[layer_type][0]`; LiteRT `kv_cache_v_L` is stored transposed, [B, kv_heads, d, C]: pass "
        "`v.transpose(-1, -2)` as `shared_kv_states[layer_type][1]`; `input_pos` = `position_ids`.",
        "- `last_hidden_state` (after `post_projection`) = LiteRT `projected_activations`.",
    ]
    if cap:
        lines.append(f"- logits: the LiteRT graph soft-caps, `gemma4_assistant` does not. LiteRT `logits` = "
                     f"`{cap:g} * tanh(logits / {cap:g})` of this model's logits (top-1 and ranking are identical).")
    if dump.unfaithful:
        lines += ["", "## NOT reproduced (written with --allow-partial)", "",
                  "This checkpoint does NOT compute what the LiteRT drafter computes: no gemma4_assistant config "
                  "expresses these features of its graph.", ""] + [f"- {u}" for u in dump.unfaithful]
    lines += ["", "## Notes from the extraction", ""] + [f"- {n}" for n in dump.notes] + [""]
    return "\n".join(lines)
