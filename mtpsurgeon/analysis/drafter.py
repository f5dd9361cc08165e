"""Recognise an MTP drafter by its interface, signed or not."""
from __future__ import annotations

from dataclasses import dataclass

from mtpsurgeon.analysis.signatures import NamedIO, kv_inputs, last_dim, signature_io, subgraph_io
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord

DRAFTER_SIGNATURE = "mtp_drafter"


@dataclass(frozen=True)
class DrafterMatch:
    """An entry point whose I/O is a drafter's: activations in, logits + projection out."""

    io: NamedIO
    confidence: str  #: 'high' or 'medium'
    evidence: tuple[str, ...]

    @property
    def activations_width(self) -> int | None:
        return last_dim(self.io.inputs.get("activations"))

    @property
    def projected_width(self) -> int | None:
        return last_dim(self.io.outputs.get("projected_activations"))

    @property
    def vocab(self) -> int | None:
        return last_dim(self.io.outputs.get("logits"))


def match_drafter(io: NamedIO) -> DrafterMatch | None:
    """Score ``io`` against the drafter interface LiteRT-LM expects (None: not one)."""
    act = io.inputs.get("activations")
    proj = io.outputs.get("projected_activations")
    logits = io.outputs.get("logits")
    keyed = io.signature_key == DRAFTER_SIGNATURE
    if not (act is not None and proj is not None and logits is not None) and not keyed:
        return None
    evidence = []
    if io.source.endswith("(names recovered from shapes)"):
        evidence.append("I/O names recovered from shapes: [1,1,2H] in, [1,1,V] and [1,1,H] out")
    if keyed:
        evidence.append(f"signature key '{DRAFTER_SIGNATURE}'")
    if act is not None and proj is not None and logits is not None:
        evidence.append("inputs 'activations', outputs 'logits' and 'projected_activations'")
        a, p = last_dim(act), last_dim(proj)
        if a and p and a == 2 * p:
            evidence.append(f"activations width {a} = 2 x projected width {p}")
    kv = kv_inputs(io)
    if kv:
        evidence.append(f"{len(kv)} KV-cache inputs ({', '.join(sorted(kv))})")
    confidence = "high" if len(evidence) >= 3 else "medium"
    return DrafterMatch(io, confidence, tuple(evidence))


def find_drafters(model: TFLiteModel, orphan_subgraphs: set[int],
                  base_kv: dict[str, TensorRecord] | None = None) -> list[DrafterMatch]:
    """Drafter entry points: by signature, and orphan subgraphs with drafter I/O.

    ``base_kv`` (the base model's KV-cache inputs) names an unsigned drafter's
    KV inputs when its tensor names do not.
    """
    found = []
    for sig in model.signatures:
        m = match_drafter(signature_io(model, sig))
        if m:
            found.append(m)
    for sg in sorted(orphan_subgraphs):
        if model.subgraphs[sg].operators:
            m = match_drafter(subgraph_io(model, sg, base_kv))
            if m:
                found.append(m)
    return found
