"""The IR's plain data: Signature and ModelData, which the importer fills and the exporter reads.

:class:`~mtpsurgeon.surgery.ir.model.Model` adds import/export and edits on
top; keeping the data here lets importer and exporter depend on it without
depending on Model (which calls them), so the imports run one way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    """A whole model: operator codes, buffers, graphs, signatures, metadata.

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
