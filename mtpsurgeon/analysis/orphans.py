"""Orphans: data no operator reads, buffers no tensor references, unreachable subgraphs."""
from __future__ import annotations

from dataclasses import dataclass, field

from mtpsurgeon.analysis.reachability import reachable_subgraphs, tensor_uses
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord


@dataclass(frozen=True)
class OrphanSubgraph:
    index: int
    name: str
    operators: int
    tensors: int
    reason: str


@dataclass
class Orphans:
    """Everything in one model that the execution graph does not use."""

    tensors: list[TensorRecord] = field(default_factory=list)
    buffers: list[int] = field(default_factory=list)
    subgraphs: list[OrphanSubgraph] = field(default_factory=list)
    operator_codes: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.tensors or self.buffers or self.subgraphs)


def find_orphans(model: TFLiteModel, reached: dict[int, str] | None = None) -> Orphans:
    """Scan one model.

    - a tensor is orphaned when it carries data, no operator reads it, no
      subgraph or signature exposes it, and no quantization refers to it;
    - a buffer is orphaned when it holds bytes and no tensor, ``Model.metadata``
      entry or (deprecated) ``Model.metadata_buffer`` index points at it;
    - a subgraph is orphaned when no entry point reaches it (directly or via
      control-flow ops): the subgraphs signatures name or, in a model with no
      signatures, subgraph 0;
    - an operator code is unused when no operator refers to it.
    """
    out = Orphans()
    for sg in model.subgraphs:
        uses = tensor_uses(model, sg.index)
        referenced = uses.read_by_ops | uses.exposed | uses.quantization_refs
        out.tensors.extend(t for t in sg.tensors if model.has_data(t) and t.index not in referenced)

    used_buffers = {t.buffer for t in model.tensors()} | {b for _, b in model.records.metadata}
    used_buffers |= set(model.records.metadata_buffer)
    out.buffers = [b.index for b in model.buffers if b.index > 0 and b.size > 0 and b.index not in used_buffers]

    reached = reachable_subgraphs(model) if reached is None else reached
    for sg in model.subgraphs:
        if sg.index not in reached:
            reason = "no signature reaches it" if model.signatures else "subgraph 0 (the entry point) does not call it"
            out.subgraphs.append(OrphanSubgraph(sg.index, sg.name, len(sg.operators), len(sg.tensors), reason))

    used_codes = {op.opcode_index for sg in model.subgraphs for op in sg.operators}
    out.operator_codes = [oc.index for oc in model.operator_codes if oc.index not in used_codes]
    return out
