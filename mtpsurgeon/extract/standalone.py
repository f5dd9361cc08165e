"""Standalone models out of a file: a container section as is, or one subgraph as its own .tflite."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtpsurgeon.errors import UsageError
from mtpsurgeon.extract.section_out import write_section
from mtpsurgeon.formats.tflite.writer import write_tflite
from mtpsurgeon.outputs import atomic_output
from mtpsurgeon.surgery.expose_signature import recovered_names
from mtpsurgeon.surgery.ir import Model, Signature

CHUNK = 1 << 24


@dataclass(frozen=True)
class StandaloneModel:
    """What ``extract_subgraph`` wrote."""

    path: Path
    sha256: str
    size: int
    signatures: tuple[str, ...]
    subgraphs: tuple[int, ...]  #: source subgraph indices, in their new order
    tensors: int
    buffers: int


def standalone_ir(tflite_model: Any, subgraph_index: int, signature_key: str | None = None) -> tuple[Model, tuple[int, ...]]:
    """An IR model holding only subgraph ``subgraph_index`` (plus the graphs it calls) and what they use.

    Signatures of that subgraph are kept (only ``signature_key`` when given);
    with none, one is created from the subgraph's inputs/outputs named by
    tensor name, keyed ``signature_key`` or the subgraph's name. Also
    returns the source indices of the graphs kept, in their new order.
    """
    m = Model.from_tflite(tflite_model)
    if not 0 <= subgraph_index < len(m.graphs):
        raise UsageError(f"subgraph {subgraph_index} does not exist ({len(m.graphs)} subgraphs)")
    root = m.graphs[subgraph_index]
    sigs = [s for s in m.signatures if s.graph is root]
    if signature_key is not None:
        chosen = [s for s in sigs if s.key == signature_key]
        if not chosen and any(s.key == signature_key for s in m.signatures):
            raise UsageError(f"signature '{signature_key}' belongs to another subgraph")
        sigs = chosen
    if not sigs:
        key = signature_key or root.name or f"subgraph_{subgraph_index}"
        sigs = [Signature(key, root, recovered_names(root.inputs, "inputs"), recovered_names(root.outputs, "outputs"))]
    source_index = {id(g): i for i, g in enumerate(m.graphs)}
    m.graphs = m.reachable_graphs([root])
    m.signatures = sigs
    m.cleanup(remove_unused_nodes=False)
    return m, tuple(source_index[id(g)] for g in m.graphs)


def extract_subgraph(tflite_model: Any, subgraph_index: int, out_path: str | os.PathLike, force: bool = False,
                     signature_key: str | None = None) -> StandaloneModel:
    """Write subgraph ``subgraph_index`` as a runnable .tflite of its own (atomically).

    Only the tensors, buffers and operator codes it needs are kept; the
    graph's nodes are all kept, in order. Weights are copied byte for byte.
    """
    m, kept = standalone_ir(tflite_model, subgraph_index, signature_key)
    out_path = Path(out_path)
    with atomic_output(out_path, force) as tmp:
        result = write_tflite(m, tmp, force=True)
        digest = hashlib.sha256()
        with open(tmp, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return StandaloneModel(out_path, digest.hexdigest(), result.size, tuple(s.key for s in m.signatures),
                           kept, sum(len(g.tensors) for g in m.graphs), len(m.buffers))
