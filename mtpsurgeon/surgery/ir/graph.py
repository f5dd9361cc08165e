"""Graph: one subgraph's tensors and nodes, with cleanup() and toposort()."""
from __future__ import annotations

import heapq
from typing import Any, Iterable

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.dtypes import DTYPES
from mtpsurgeon.surgery.ir.elements import (
    SIDE_EFFECT_OPS,
    Buffer,
    Node,
    OpCode,
    Tensor,
    _options_union,
    dtype_code,
)


class Graph:
    """A subgraph: tensors, nodes (in execution order), inputs and outputs."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.tensors: list[Tensor] = []
        self.nodes: list[Node] = []
        self.inputs: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.debug_metadata_index = -1

    def __repr__(self) -> str:
        return f"<Graph '{self.name}': {len(self.nodes)} nodes, {len(self.tensors)} tensors>"

    # -- queries -------------------------------------------------------------
    def find_tensor(self, name: str) -> Tensor | None:
        """The first tensor called ``name``, or None."""
        return next((t for t in self.tensors if t.name == name), None)

    def tensor(self, name: str) -> Tensor:
        """Like ``find_tensor`` but raises when absent."""
        t = self.find_tensor(name)
        if t is None:
            raise SurgeryError(f"graph '{self.name}' has no tensor '{name}'")
        return t

    def producers(self, tensor: Tensor) -> list[Node]:
        return [n for n in self.nodes if any(o is tensor for o in n.outputs)]

    def consumers(self, tensor: Tensor) -> list[Node]:
        return [n for n in self.nodes if any(i is tensor for i in n.inputs)]

    def called_graphs(self) -> list["Graph"]:
        """Graphs called by control-flow nodes of this graph (direct calls only)."""
        out: list[Graph] = []
        for n in self.nodes:
            for g in n.called.values():
                for x in g if isinstance(g, list) else [g]:
                    if x not in out:
                        out.append(x)
        return out

    # -- construction ----------------------------------------------------------
    def add_tensor(self, name: str, shape: Iterable[int], dtype: int | str | np.dtype = "FLOAT32", *,
                   quantization: Any = None, is_variable: bool = False,
                   shape_signature: Iterable[int] | None = None) -> Tensor:
        """Add an activation (non-constant) tensor."""
        t = Tensor(name, [int(d) for d in shape], dtype_code(dtype), None, quantization, is_variable,
                   None if shape_signature is None else [int(d) for d in shape_signature])
        self.tensors.append(t)
        return t

    def add_constant(self, name: str, values: np.ndarray | bytes | memoryview, dtype: int | str | np.dtype | None = None,
                     *, shape: Iterable[int] | None = None, quantization: Any = None) -> Tensor:
        """Add a constant tensor holding ``values``.

        A numpy array gives its shape and (unless ``dtype`` says otherwise) its
        type; raw bytes (e.g. packed INT4) need ``dtype`` and ``shape``. Arrays
        are stored as given (no copy when contiguous); bytes are kept by reference.
        """
        if isinstance(values, np.ndarray):
            code = dtype_code(values.dtype if dtype is None else dtype)
            shape = list(values.shape) if shape is None else list(shape)
            if values.dtype.byteorder == ">":
                values = values.astype(values.dtype.newbyteorder("<"))
        else:
            if dtype is None or shape is None:
                raise SurgeryError(f"constant '{name}': raw bytes need an explicit dtype and shape")
            code = dtype_code(dtype)
        t = Tensor(name, [int(d) for d in shape], code, Buffer(values), quantization)
        n = 1
        for d in t.shape:
            n *= max(d, 0)
        if DTYPES[code].bits and t.buffer.nbytes < DTYPES[code].nbytes(n):
            raise SurgeryError(f"constant '{name}': {t.buffer.nbytes} bytes cannot hold {t.dtype_name}{t.shape}")
        self.tensors.append(t)
        return t

    def add_node(self, op: str | int | OpCode, inputs: Iterable[Tensor | None], outputs: Iterable[Tensor | None],
                 options: Any = None, *, version: int = 1, custom_code: str | None = None,
                 custom_options: bytes | None = None, intermediates: Iterable[Tensor] = ()) -> Node:
        """Append an operator (by builtin name like 'FULLY_CONNECTED'); returns it.

        ``options`` is the object-API options object (``fb.FullyConnectedOptionsT()``);
        its union type is inferred. Tensors must belong to this graph.
        """
        opcode = op if isinstance(op, OpCode) else OpCode.make(op, version, custom_code)
        ot, ot2 = _options_union(options)
        node = Node(opcode, list(inputs), list(outputs), options if ot else None, ot, options if ot2 else None, ot2,
                    custom_options=custom_options, intermediates=list(intermediates))
        known = {id(t) for t in self.tensors}
        for t in node.tensors():
            if id(t) not in known:
                raise SurgeryError(f"{node!r}: tensor '{t.name}' is not part of graph '{self.name}'")
        self.nodes.append(node)
        return node

    def remove(self, obj: Node | Tensor) -> "Graph":
        """Remove a node, or a tensor no node or graph input/output refers to."""
        if isinstance(obj, Node):
            self.nodes = [n for n in self.nodes if n is not obj]
            return self
        users = [n for n in self.nodes if any(t is obj for t in n.tensors())]
        if users or any(t is obj for t in (*self.inputs, *self.outputs)):
            what = ", ".join(map(repr, users)) or "a graph input/output"
            raise SurgeryError(f"cannot remove {obj!r}: still used by {what}")
        self.tensors = [t for t in self.tensors if t is not obj]
        return self

    # -- cleanup / ordering -------------------------------------------------------
    def cleanup(self, *, remove_unused_nodes: bool = True, keep_constants: bool = False,
                keep: Iterable[Tensor] = ()) -> "Graph":
        """Remove dead nodes and unreferenced tensors; returns self.

        A node is dead when none of its outputs is read by a live node or is a
        graph output (or in ``keep``); nodes without outputs, nodes touching
        variable tensors and side-effect ops (``SIDE_EFFECT_OPS``) are never
        dead; custom ops are kept too. Then every tensor nothing refers to is dropped, except constants
        when ``keep_constants``. Buffers are pruned by :meth:`Model.cleanup`.
        """
        keep_ids = {id(t) for t in (*self.outputs, *keep)}
        if remove_unused_nodes:
            live: list[Node] = []
            needed = set(keep_ids)
            for n in reversed(self.nodes):
                outs = [t for t in n.outputs if t is not None]
                pinned = (not outs or n.op in SIDE_EFFECT_OPS or n.called or n.opcode.custom_code
                          or any(t.is_variable for t in n.tensors()))
                if pinned or any(id(t) in needed for t in outs):
                    live.append(n)
                    needed.update(id(t) for t in n.inputs if t is not None)
                    needed.update(id(t) for t in n.intermediates)
            self.nodes = live[::-1]
        used = {id(t) for t in (*self.inputs, *self.outputs, *keep)}
        for n in self.nodes:
            used.update(id(t) for t in n.tensors())
        changed = True
        while changed:  # blockwise scale tensors are referenced from quantization
            changed = False
            for t in self.tensors:
                if id(t) in used or (keep_constants and t.is_constant):
                    for ref in (t.block_scales, t.block_zero_points):
                        if ref is not None and id(ref) not in used:
                            used.add(id(ref))
                            changed = True
        self.tensors = [t for t in self.tensors if id(t) in used or (keep_constants and t.is_constant)]
        return self

    def toposort(self, *, strict: bool = True) -> "Graph":
        """Order nodes so every tensor is produced before it is consumed; returns self.

        Stable: already-ordered nodes keep their order. Raises SurgeryError on a
        cycle or a tensor produced twice; with ``strict``, also on a tensor that
        is read but never produced and is neither a graph input, a constant
        nor a variable.
        """
        producer: dict[int, Node] = {}
        for n in self.nodes:
            for t in n.outputs:
                if t is None:
                    continue
                if id(t) in producer:
                    raise SurgeryError(f"tensor '{t.name}' is produced by two nodes: {producer[id(t)]!r} and {n!r}")
                producer[id(t)] = n
        inputs = {id(t) for t in self.inputs}
        deps: dict[int, set[int]] = {}
        users: dict[int, list[Node]] = {id(n): [] for n in self.nodes}
        for n in self.nodes:
            d = set()
            for t in (*n.inputs, *n.intermediates):
                if t is None:
                    continue
                p = producer.get(id(t))
                if p is not None and p is not n:
                    d.add(id(p))
                elif p is n:
                    raise SurgeryError(f"cycle: {n!r} consumes its own output '{t.name}'")
                elif strict and id(t) not in inputs and not t.is_constant and not t.is_variable:
                    raise SurgeryError(f"tensor '{t.name}' is consumed by {n!r} but never produced "
                                       "(not a graph input, constant or variable)")
            deps[id(n)] = d
            for p in d:
                users[p].append(n)
        pos = {id(n): i for i, n in enumerate(self.nodes)}
        missing = {k: len(v) for k, v in deps.items()}
        ready = [pos[id(n)] for n in self.nodes if missing[id(n)] == 0]
        heapq.heapify(ready)
        order: list[Node] = []
        while ready:
            n = self.nodes[heapq.heappop(ready)]
            order.append(n)
            for u in users[id(n)]:
                missing[id(u)] -= 1
                if missing[id(u)] == 0:
                    heapq.heappush(ready, pos[id(u)])
        if len(order) != len(self.nodes):
            stuck = [n for n in self.nodes if missing[id(n)] > 0]
            raise SurgeryError(f"graph '{self.name}' has a cycle through {len(stuck)} nodes, e.g. {stuck[0]!r}")
        self.nodes = order
        return self


