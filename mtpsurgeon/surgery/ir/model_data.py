"""ModelData and Signature: the whole IR as data, and named entry points.

Format I/O lives elsewhere: importer.py builds a ModelData from a flatbuffer,
exporter.py turns one back; model.py adds those as Model methods. Imports run
one way: model -> importer/exporter -> model_data -> graph -> elements.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.ir.elements import Buffer, OpCode, Tensor
from mtpsurgeon.surgery.ir.graph import Graph


@dataclass(eq=False)
class Signature:
    """A SignatureDef: a key and named inputs/outputs of one graph."""

    key: str
    graph: Graph
    inputs: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, Tensor] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Signature '{self.key}' on '{self.graph.name}': {list(self.inputs)} -> {list(self.outputs)}>"


class ModelData:
    """A whole model as data: operator codes, buffers, graphs, signatures, metadata.

    ``buffers`` and ``opcodes`` keep the source order so an unedited model
    exports with the same indices; buffers and opcodes that new tensors and
    nodes bring are appended on export. ``metadata`` is a list of
    (name, Buffer). Buffer 0 (the empty sentinel) is implicit.
    """

    def __init__(self) -> None:
        self.version = 3
        self.description = ""
        self.opcodes: list[OpCode] = []
        self.buffers: list[Buffer] = []
        self.graphs: list[Graph] = []
        self.signatures: list[Signature] = []
        self.metadata: list[tuple[str, Buffer]] = []
        self.metadata_buffer: list[Buffer | None] | None = None  #: deprecated Model.metadata_buffer, as buffers
        self.external_buffer_groups: Any = None  #: passed through untouched
        self.external_buffers: Any = None
        self.source: Any = None  #: keeps the mapped source alive

    def __repr__(self) -> str:
        return f"<Model: {len(self.graphs)} graphs, {len(self.signatures)} signatures, {len(self.buffers)} buffers>"

    # -- lookup / edits ------------------------------------------------------------
    def signature(self, key: str) -> Signature | None:
        return next((s for s in self.signatures if s.key == key), None)

    def add_graph(self, name: str = "") -> Graph:
        g = Graph(name)
        self.graphs.append(g)
        return g

    def add_signature(self, key: str, graph: Graph, inputs: dict[str, Tensor] | None = None,
                      outputs: dict[str, Tensor] | None = None) -> Signature:
        """Add a SignatureDef; by default it names the graph's inputs/outputs by tensor name.

        Tensors named by the signature that are not yet graph inputs/outputs
        are appended to them (the runtime only reads signatures through them).
        """
        if self.signature(key) is not None:
            raise SurgeryError(f"signature '{key}' already exists")
        if graph not in self.graphs:
            raise SurgeryError(f"graph '{graph.name}' is not part of this model")
        inputs = names_from_tensors(graph.inputs) if inputs is None else dict(inputs)
        outputs = names_from_tensors(graph.outputs) if outputs is None else dict(outputs)
        for t in inputs.values():
            if not any(t is x for x in graph.inputs):
                graph.inputs.append(t)
        for t in outputs.values():
            if not any(t is x for x in graph.outputs):
                graph.outputs.append(t)
        sig = Signature(key, graph, inputs, outputs)
        self.signatures.append(sig)
        return sig

    def remove(self, obj: Signature | Graph) -> "ModelData":
        """Remove a signature, or a graph no signature or control-flow node uses."""
        if isinstance(obj, Signature):
            self.signatures = [s for s in self.signatures if s is not obj]
            return self
        if any(s.graph is obj for s in self.signatures) or any(obj in g.called_graphs() for g in self.graphs if g is not obj):
            raise SurgeryError(f"cannot remove graph '{obj.name}': a signature or control-flow node uses it")
        self.graphs = [g for g in self.graphs if g is not obj]
        return self

    def cleanup(self, *, remove_unused_nodes: bool = True, keep_constants: bool = False) -> "ModelData":
        """Graph cleanups (see :meth:`Graph.cleanup`), then drop unreferenced buffers and opcodes."""
        for g in self.graphs:
            keep = [t for s in self.signatures if s.graph is g for t in (*s.inputs.values(), *s.outputs.values())]
            g.cleanup(remove_unused_nodes=remove_unused_nodes, keep_constants=keep_constants, keep=keep)
        used = {id(t.buffer) for g in self.graphs for t in g.tensors if t.buffer is not None}
        used.update(id(b) for _, b in self.metadata)
        used.update(id(b) for b in self.metadata_buffer or [] if b is not None)
        self.buffers = [b for b in self.buffers if id(b) in used]
        ops = {id(n.opcode) for g in self.graphs for n in g.nodes}
        self.opcodes = [o for o in self.opcodes if id(o) in ops]
        return self

    def toposort(self, *, strict: bool = True) -> "ModelData":
        """Toposort every graph (see :meth:`Graph.toposort`)."""
        for g in self.graphs:
            g.toposort(strict=strict)
        return self

    def reachable_graphs(self, roots: Iterable[Graph]) -> list[Graph]:
        """``roots`` plus every graph they call through control flow, roots first."""
        out: list[Graph] = []
        todo = list(roots)
        while todo:
            g = todo.pop(0)
            if g not in out:
                out.append(g)
                todo.extend(g.called_graphs())
        return out

def names_from_tensors(tensors: list[Tensor]) -> dict[str, Tensor]:
    """Name tensors by their own names (made unique; ``tensor_<i>`` when empty)."""
    out: dict[str, Tensor] = {}
    for i, t in enumerate(tensors):
        name = t.name or f"tensor_{i}"
        base, k = name, 1
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out[name] = t
    return out


