"""Dimensions of a base (prefill/decode) model, read from its interface."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from mtpsurgeon.analysis.signatures import kv_inputs, last_dim, signature_io
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord


@dataclass
class BaseDims:
    """What a drafter must agree with: hidden size, vocab, KV caches, verify."""

    label: str
    hidden: int | None = None
    hidden_from: str = ""
    vocab: int | None = None
    cache_len: int | None = None
    kv: dict[str, TensorRecord] = field(default_factory=dict)
    has_verify: bool = False
    verify_len: int | None = None  #: length of verify's input_pos (draft steps + 1)
    activations_outputs: list[str] = field(default_factory=list)  #: signature keys

    @property
    def kv_heads(self) -> int | None:
        """KV heads of the base's caches ([1, heads, C, d]), when all agree."""
        heads = {t.shape[1] for t in self.kv.values() if len(t.shape) == 4}
        return heads.pop() if len(heads) == 1 else None

    def to_json(self) -> dict:
        return {
            "label": self.label,
            "hidden": self.hidden,
            "hidden_from": self.hidden_from,
            "vocab": self.vocab,
            "cache_len": self.cache_len,
            "kv": {n: {"shape": list(t.shape), "dtype": t.dtype.name} for n, t in self.kv.items()},
            "has_verify": self.has_verify,
            "verify_len": self.verify_len,
            "activations_outputs": self.activations_outputs,
        }


def base_dims(model: TFLiteModel, label: str, embedder: TFLiteModel | None = None) -> BaseDims:
    """Read H, V, C, KV caches and verify facts from a base model's signatures."""
    dims = BaseDims(label)
    for sig in model.signatures:
        io = signature_io(model, sig)
        if "logits" in io.outputs and dims.vocab is None:
            dims.vocab = last_dim(io.outputs["logits"])
        if "activations" in io.outputs:
            dims.activations_outputs.append(sig.key)
            if dims.hidden is None:
                dims.hidden, dims.hidden_from = last_dim(io.outputs["activations"]), f"'{sig.key}' activations output"
        for name, t in kv_inputs(io).items():
            dims.kv.setdefault(name, t)
        if sig.key == "verify":
            dims.has_verify = True
            pos = io.inputs.get("input_pos")
            dims.verify_len = pos.shape[0] if pos is not None and pos.shape else None
        mask = io.inputs.get("mask")
        if mask is not None and mask.shape and dims.cache_len is None and sig.key in ("decode", "verify"):
            dims.cache_len = mask.shape[-1]
    if dims.hidden is None and embedder is not None:
        for sig in embedder.signatures:
            out = next(iter(signature_io(embedder, sig).outputs.values()), None)
            if out is not None and out.shape:
                dims.hidden, dims.hidden_from = out.shape[-1], "embedder output"
                break
    if dims.hidden is None and dims.vocab:
        dims.hidden, dims.hidden_from = _hidden_from_lm_head(model, dims.vocab)
    return dims


def _hidden_from_lm_head(model: TFLiteModel, vocab: int) -> tuple[int | None, str]:
    """Fallback: the width of constant [V, X] matrices (embedding / LM head)."""
    widths = Counter(
        t.shape[1] for t in model.tensors() if len(t.shape) == 2 and t.shape[0] == vocab and model.has_data(t)
    )
    if not widths:
        return None, ""
    return widths.most_common(1)[0][0], f"constant [{vocab}, H] embedding/LM-head matrix"
