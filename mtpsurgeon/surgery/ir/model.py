"""Model: the whole IR, with import from / export to TFLite and graph edits (Signature lives in core)."""
from __future__ import annotations

from typing import Any, Iterable

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir.core import ModelData, Signature
from mtpsurgeon.surgery.ir.elements import Tensor
from mtpsurgeon.surgery.ir.exporter import export_model
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.importer import import_model


class Model(ModelData):
    """A whole model (see :class:`~mtpsurgeon.surgery.ir.core.ModelData` for its parts),
    with import from / export to TFLite and graph edits."""

    def __repr__(self) -> str:
        return f"<Model: {len(self.graphs)} graphs, {len(self.signatures)} signatures, {len(self.buffers)} buffers>"

    # -- import ------------------------------------------------------------------
    @classmethod
    def from_tflite(cls, tflite_model: Any) -> "Model":
        """Build from a :class:`TFLiteModel` (zero-copy: weights stay views of its map)."""
        view = tflite_model.source.slice(tflite_model.offset, tflite_model.length, "model")
        m = cls.from_buffer(view)
        m.source = tflite_model
        return m

    @classmethod
    def from_buffer(cls, view: memoryview | bytes) -> "Model":
        """Build from a TFLite flatbuffer held in memory (kept by reference)."""
        view = memoryview(view)
        mt = fb.ModelT.InitFromObj(fb.Model.GetRootAs(view, 0))
        return import_model(mt, view, cls())

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

    def remove(self, obj: Signature | Graph) -> "Model":
        """Remove a signature, or a graph no signature or control-flow node uses."""
        if isinstance(obj, Signature):
            self.signatures = [s for s in self.signatures if s is not obj]
            return self
        if any(s.graph is obj for s in self.signatures) or any(obj in g.called_graphs() for g in self.graphs if g is not obj):
            raise SurgeryError(f"cannot remove graph '{obj.name}': a signature or control-flow node uses it")
        self.graphs = [g for g in self.graphs if g is not obj]
        return self

    def cleanup(self, *, remove_unused_nodes: bool = True, keep_constants: bool = False) -> "Model":
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

    def toposort(self, *, strict: bool = True) -> "Model":
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

    # -- export --------------------------------------------------------------------
    def to_modelT(self) -> "fb.ModelT":
        """Export to the object API. Buffer data are zero-copy uint8 views."""
        return export_model(self)


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


