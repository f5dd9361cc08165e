"""What the execution graph can reach: subgraphs from signatures, tensor uses."""
from __future__ import annotations

from dataclasses import dataclass

from mtpsurgeon.formats.tflite import TFLiteModel


#: How :func:`reachable_subgraphs` describes the entry point of a model without signatures.
DEFAULT_ENTRY = "entry (subgraph 0: the interpreter's default; the model has no signatures)"


def entry_subgraphs(model: TFLiteModel) -> dict[int, list[str]]:
    """Subgraphs that signatures name directly: index → signature keys."""
    entries: dict[int, list[str]] = {}
    for sig in model.signatures:
        entries.setdefault(sig.subgraph, []).append(sig.key)
    return entries


def reachable_subgraphs(model: TFLiteModel) -> dict[int, str]:
    """Subgraphs the runtime can execute, directly or through control-flow ops.

    Entry points are the subgraphs signatures name; a model with no
    SignatureDefs at all (common from older converters) is run through
    subgraph 0, the interpreter's default, which is then the entry point.
    Returns index → how it is reached (``signature 'decode'``,
    :data:`DEFAULT_ENTRY`, or ``called by subgraph 0 (WHILE)``).
    """
    reached: dict[int, str] = {}
    stack: list[int] = []
    for sg, keys in entry_subgraphs(model).items():
        reached[sg] = "signature " + ", ".join(f"'{k}'" for k in keys)
        stack.append(sg)
    if not model.signatures and model.subgraphs:
        reached[0] = DEFAULT_ENTRY
        stack.append(0)
    while stack:
        sg = stack.pop()
        for op in model.subgraphs[sg].operators:
            for callee in op.called_subgraphs:
                if callee not in reached:
                    reached[callee] = f"called by subgraph {sg} ({op.op_name})"
                    stack.append(callee)
    return reached


def unsigned_subgraphs(model: TFLiteModel, reached: dict[int, str] | None = None) -> set[int]:
    """Subgraphs no signature reaches: orphans, and subgraph 0 of a model without signatures.

    These are where a drafter whose SignatureDef was stripped can sit.
    """
    reached = reachable_subgraphs(model) if reached is None else reached
    return {sg.index for sg in model.subgraphs if sg.index not in reached or reached[sg.index] == DEFAULT_ENTRY}


@dataclass(frozen=True)
class TensorUses:
    """Which tensors of one subgraph something reads or exposes."""

    read_by_ops: frozenset[int]
    produced_by_ops: frozenset[int]
    exposed: frozenset[int]  #: subgraph inputs/outputs and signature I/O
    quantization_refs: frozenset[int]  #: e.g. blockwise scale tensors


def tensor_uses(model: TFLiteModel, sg_index: int) -> TensorUses:
    """Collect every reference to a tensor of subgraph ``sg_index``."""
    sg = model.subgraphs[sg_index]
    read: set[int] = set()
    produced: set[int] = set()
    for op in sg.operators:
        read.update(i for i in op.inputs if i >= 0)
        read.update(i for i in op.intermediates if i >= 0)
        produced.update(i for i in op.outputs if i >= 0)
    exposed = set(sg.inputs) | set(sg.outputs)
    for sig in model.signatures:
        if sig.subgraph == sg_index:
            exposed.update(t for _, t in sig.inputs)
            exposed.update(t for _, t in sig.outputs)
    return TensorUses(frozenset(read), frozenset(produced), frozenset(exposed - {-1}),
                      frozenset(quantization_companions(model, sg_index)))


def quantization_companions(model: TFLiteModel, subgraph: int) -> set[int]:
    """Tensor indices that hold another tensor's blockwise scales or zero points."""
    out: set[int] = set()
    for t in model.subgraphs[subgraph].tensors:
        q = t.quantization
        if q is not None:
            out.update(i for i in (q.block_scales_tensor, q.block_zero_points_tensor) if i >= 0)
    return out
