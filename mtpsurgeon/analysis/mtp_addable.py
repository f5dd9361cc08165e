"""A base exported without MTP: what `enable-mtp` / `build-drafter` would add, and which checkpoints fit.

The LiteRT-LM MTP path needs a `verify` signature and `activations` outputs
on the base model; an export without an assistant has neither. When the base
has a `decode` with `logits`, they can be added (see
:mod:`mtpsurgeon.surgery.add_verify`); this finding says what would be added
and what an assistant checkpoint must match: backbone width = the base's
hidden size, its vocabulary, and the base KV layers its blocks read (by
default the last layer of each KV head_dim: sliding and full attention).
"""
from __future__ import annotations

import re

from mtpsurgeon.analysis.dims import BaseDims
from mtpsurgeon.analysis.findings import Finding
from mtpsurgeon.analysis.signatures import signature_io
from mtpsurgeon.formats.tflite import TFLiteModel

KIND = "mtp_addable"
DEFAULT_DRAFT_STEPS = 3
_K_CACHE = re.compile(r"kv_cache_k_(\d+)$")


def read_kv_layers(dims: BaseDims) -> dict[int, int]:
    """head_dim -> the last base layer with K caches of that head_dim (what a drafter block reads by default)."""
    out: dict[int, int] = {}
    for name, t in dims.kv.items():
        m = _K_CACHE.match(name)
        if m and len(t.shape) == 4:
            hd, layer = t.shape[-1], int(m.group(1))
            out[hd] = max(out.get(hd, -1), layer)
    return dict(sorted(out.items()))


def addable_finding(model: TFLiteModel, dims: BaseDims) -> Finding | None:
    """The finding when ``model`` has `decode` + `logits` but lacks `verify` or decode's `activations`."""
    sigs = {s.key: signature_io(model, s) for s in model.signatures}
    dec = sigs.get("decode")
    if dec is None or "logits" not in dec.outputs or ("verify" in sigs and "activations" in dec.outputs):
        return None
    emb = dec.inputs.get("embeddings")
    hidden = emb.shape[-1] if emb is not None and emb.shape else dims.hidden
    vocab = dec.outputs["logits"].shape[-1]
    T = DEFAULT_DRAFT_STEPS + 1
    added = []
    if "activations" not in dec.outputs:
        added.append(f"'decode' output 'activations' f32[1,1,{hidden}] (the LM head's input, after the final norm)")
    if "verify" not in sigs:
        token = "embeddings" if emb is not None else "tokens"
        added.append(f"signature 'verify' over G+1 = {T} tokens (--draft-steps G, default {DEFAULT_DRAFT_STEPS}): "
                     f"{token} [1,{T},…], input_pos [{T}], mask [1,1,{T},{dims.cache_len}], the same KV caches; "
                     f"logits [1,{T},{vocab}], activations [1,{T},{hidden}]")
    layers = read_kv_layers(dims)
    kinds = ["sliding", "full"] if len(layers) == 2 else [f"head_dim {hd}" for hd in layers]
    reads = ", ".join(f"{k} blocks: layer {l} (head_dim {hd})" for k, (hd, l) in zip(kinds, layers.items()))
    evidence = [f"'{dims.label}' has 'decode' with 'logits' but " +
                " and ".join(x for x, missing in (("no 'verify' signature", "verify" not in sigs),
                                                   ("no 'activations' output", "activations" not in dec.outputs))
                             if missing),
                *(f"will add {a}" for a in added),
                f"checkpoints that fit: backbone_hidden_size = {hidden}, vocab_size = {vocab}; the drafter reads the "
                f"base's KV caches — {reads or 'none found'}"]
    fit = {"backbone_hidden_size": hidden, "vocab_size": vocab,
           "kv_layers": {str(hd): l for hd, l in layers.items()}, "kv_heads": dims.kv_heads}
    return Finding(KIND, False, dims.label, "high", evidence,
                   dims={"adds": added, "default_draft_steps": DEFAULT_DRAFT_STEPS, "checkpoint_fit": fit})
