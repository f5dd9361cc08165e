"""A small mutable IR over a TFLite model, in the spirit of onnx-graphsurgeon.

    model = Model.from_tflite(read_tflite(mapped))
    g = model.graphs[0]
    h = g.find_tensor("hidden")
    w = g.add_constant("head.w", weights)
    y = g.add_tensor("head.logits", [1, 8], "FLOAT32")
    g.add_node("FULLY_CONNECTED", [h, w, None], [y], fb.FullyConnectedOptionsT())
    model.signature("serving_default").outputs["head"] = y
    model.cleanup().toposort()
    write_tflite(model, "out.tflite")

Objects refer to each other directly (a node's inputs are Tensor objects, a
tensor's buffer is a Buffer object, a signature names a Graph), so edits never
juggle indices; indices are assigned again only when the model is exported.
Weights imported from a file stay zero-copy memoryviews into its map until the
writer streams them out. Nothing is removed unless ``cleanup`` is called.
"""
from __future__ import annotations

import copy
import heapq
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.formats.tflite.dtypes import BY_NAME, DTYPES
from mtpsurgeon.formats.tflite.schema import BUILTIN_OP_CODES, BUILTIN_OP_NAMES, CONTROL_FLOW_SUBGRAPH_FIELDS, fb

#: Operators kept by ``cleanup`` even when nothing reads their outputs.
SIDE_EFFECT_OPS = frozenset({"ASSIGN_VARIABLE", "CALL_ONCE", "IF", "WHILE", "CALL"})
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127


def _str(v: Any) -> str | None:
    if v is None:
        return None
    return v.decode("utf-8", errors="replace") if isinstance(v, (bytes, bytearray)) else str(v)


def _as_bytes_view(data: Any) -> memoryview:
    """A flat uint8 memoryview over ``data`` (no copy when it is contiguous)."""
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data)
        return memoryview(data.reshape(-1).view(np.uint8))
    mv = data if isinstance(data, memoryview) else memoryview(data)
    return mv.cast("B") if mv.format != "B" or mv.ndim != 1 else mv


def dtype_code(dtype: int | str | np.dtype | type) -> int:
    """TensorType code from a code, a name ('FLOAT32') or a numpy dtype."""
    if isinstance(dtype, (int, np.integer)) and not isinstance(dtype, bool):
        if int(dtype) not in DTYPES:
            raise SurgeryError(f"unknown TensorType code {dtype}")
        return int(dtype)
    if isinstance(dtype, str) and dtype.upper() in BY_NAME:
        return BY_NAME[dtype.upper()].code
    np_dt = np.dtype(dtype)
    for code, d in DTYPES.items():
        if d.numpy and np.dtype(d.numpy) == np_dt and not d.packed and d.name not in ("BFLOAT16",) and not d.name.startswith("FLOAT8"):
            return code
    raise SurgeryError(f"no TensorType for {dtype!r}")


class Buffer:
    """Constant bytes: a zero-copy view into a source map, or new bytes.

    ``data`` is a flat uint8 memoryview; it is never copied until written.
    """

    __slots__ = ("data", "__weakref__")

    def __init__(self, data: Any = b"") -> None:
        self.data = _as_bytes_view(data)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    def numpy(self) -> np.ndarray:
        """The bytes as a read-only uint8 array (a view, not a copy)."""
        return np.frombuffer(self.data, dtype=np.uint8)

    def __repr__(self) -> str:
        return f"<Buffer {self.nbytes} bytes>"


@dataclass(eq=False)
class OpCode:
    """One operator code: builtin (by code) or custom (by name), with version."""

    builtin_code: int
    custom_code: str | None = None
    version: int = 1
    deprecated_builtin_code: int | None = None

    @property
    def name(self) -> str:
        n = BUILTIN_OP_NAMES.get(self.builtin_code, str(self.builtin_code))
        return self.custom_code if n == "CUSTOM" and self.custom_code else n

    def same_as(self, other: "OpCode") -> bool:
        return (self.builtin_code, self.custom_code, self.version) == (other.builtin_code, other.custom_code, other.version)

    @classmethod
    def make(cls, op: str | int, version: int = 1, custom_code: str | None = None) -> "OpCode":
        """From a builtin name ('FULLY_CONNECTED'), a code, or a custom op name."""
        if isinstance(op, str) and op.upper() in BUILTIN_OP_CODES:
            code = BUILTIN_OP_CODES[op.upper()]
        elif isinstance(op, int):
            code = op
        else:  # an unknown name is a custom operator
            code, custom_code = BUILTIN_OP_CODES["CUSTOM"], custom_code or str(op)
        return cls(code, custom_code, version)


@dataclass(eq=False)
class Tensor:
    """A tensor of one graph. ``buffer`` is None for activations (buffer 0)."""

    name: str
    shape: list[int]
    dtype: int  #: TensorType code
    buffer: Buffer | None = None
    quantization: Any = None  #: fb.QuantizationParametersT, kept as imported
    is_variable: bool = False
    shape_signature: list[int] | None = None
    sparsity: Any = None  #: fb.SparsityParametersT
    has_rank: bool = False
    variant_tensors: Any = None
    external_buffer: int = 0
    #: Blockwise quantization names its scale / zero-point tensors by index;
    #: the IR holds them as objects and writes their indices back on export.
    block_scales: "Tensor | None" = None
    block_zero_points: "Tensor | None" = None

    @property
    def dtype_name(self) -> str:
        return DTYPES[self.dtype].name

    @property
    def is_constant(self) -> bool:
        return (self.buffer is not None and self.buffer.nbytes > 0) or self.external_buffer != 0

    def numpy(self) -> np.ndarray:
        """Stored values (byte-aligned types only) as a read-only view."""
        d = DTYPES[self.dtype]
        if self.buffer is None or d.numpy is None or d.packed:
            raise SurgeryError(f"tensor '{self.name}': no byte-aligned constant data")
        return np.frombuffer(self.buffer.data, dtype=np.dtype(d.numpy)).reshape(self.shape)

    def __repr__(self) -> str:
        kind = "const " if self.is_constant else ""
        return f"<Tensor {kind}'{self.name}' {self.dtype_name}{list(self.shape)}>"


@dataclass(eq=False)
class Node:
    """One operator. Optional inputs are None (index -1 in the file)."""

    opcode: OpCode
    inputs: list[Tensor | None] = field(default_factory=list)
    outputs: list[Tensor | None] = field(default_factory=list)
    options: Any = None  #: object-API ``...OptionsT`` (BuiltinOptions union)
    options_type: int = 0
    options2: Any = None  #: BuiltinOptions2 union (StableHLO ops)
    options2_type: int = 0
    custom_options: memoryview | bytes | None = None
    custom_options_format: int = 0
    mutating_variable_inputs: list[bool] | None = None
    intermediates: list[Tensor] = field(default_factory=list)
    debug_metadata_index: int = -1
    #: control-flow option field → called Graph (or list of Graphs)
    called: dict[str, Any] = field(default_factory=dict)

    @property
    def op(self) -> str:
        return self.opcode.name

    def tensors(self) -> Iterator[Tensor]:
        for t in (*self.inputs, *self.outputs, *self.intermediates):
            if t is not None:
                yield t

    def __repr__(self) -> str:
        ins = ", ".join(t.name if t else "-" for t in self.inputs)
        outs = ", ".join(t.name if t else "-" for t in self.outputs)
        return f"<Node {self.op}({ins}) -> {outs}>"


def _options_union(options: Any) -> tuple[int, int]:
    """(BuiltinOptions type, BuiltinOptions2 type) for an ``...OptionsT`` object."""
    if options is None:
        return 0, 0
    name = type(options).__name__.removesuffix("T")
    if hasattr(fb.BuiltinOptions, name):
        return getattr(fb.BuiltinOptions, name), 0
    if hasattr(fb.BuiltinOptions2, name):
        return 0, getattr(fb.BuiltinOptions2, name)
    raise SurgeryError(f"{type(options).__name__} is not a BuiltinOptions or BuiltinOptions2 type")


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


@dataclass(eq=False)
class Signature:
    """A SignatureDef: a key and named inputs/outputs of one graph."""

    key: str
    graph: Graph
    inputs: dict[str, Tensor] = field(default_factory=dict)
    outputs: dict[str, Tensor] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"<Signature '{self.key}' on '{self.graph.name}': {list(self.inputs)} -> {list(self.outputs)}>"


class Model:
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
        self.metadata_buffer: list[int] | None = None  #: deprecated int vector, kept as is
        self.external_buffer_groups: Any = None  #: passed through untouched
        self.external_buffers: Any = None
        self.source: Any = None  #: keeps the mapped source alive

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
        return _import(mt, view)

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
        return _export(self)


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


# ---------------------------------------------------------------------------- import
def _import(mt: "fb.ModelT", view: memoryview) -> Model:
    m = Model()
    m.version = mt.version
    m.description = _str(mt.description) or ""
    for oc in mt.operatorCodes or []:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        m.opcodes.append(OpCode(code, _str(oc.customCode), oc.version, oc.deprecatedBuiltinCode))
    raw = mt.buffers or []
    bufs: list[Buffer | None] = [None]  # index 0: the sentinel
    for i, b in enumerate(raw[1:], start=1):
        if b.offset > 1:
            if b.offset + b.size > len(view):
                raise SurgeryError(f"buffer {i}: offset {b.offset} + size {b.size} runs past the model")
            buf = Buffer(view[b.offset : b.offset + b.size])
        elif b.data is not None:
            buf = Buffer(b.data)  # np.frombuffer view into the source map
        else:
            buf = Buffer(b"")
        bufs.append(buf)
    m.buffers = [b for b in bufs[1:]]

    def buffer_at(i: int) -> Buffer | None:
        if not 0 <= i < len(bufs):
            raise SurgeryError(f"buffer index {i} out of range")
        return bufs[i]

    m.graphs = [Graph(_str(sg.name) or "") for sg in mt.subgraphs or []]
    for g, sg in zip(m.graphs, mt.subgraphs or []):
        g.debug_metadata_index = sg.debugMetadataIndex
        for t in sg.tensors or []:
            g.tensors.append(Tensor(
                name=_str(t.name) or "",
                shape=[int(d) for d in (t.shape if t.shape is not None else [])],
                dtype=t.type,
                buffer=buffer_at(t.buffer),
                quantization=t.quantization,
                is_variable=bool(t.isVariable),
                shape_signature=None if t.shapeSignature is None else [int(d) for d in t.shapeSignature],
                sparsity=t.sparsity,
                has_rank=bool(t.hasRank),
                variant_tensors=t.variantTensors,
                external_buffer=t.externalBuffer,
            ))
        ts = g.tensors

        def tref(i: int, where: str) -> Tensor | None:
            i = int(i)
            if i == -1:
                return None
            if not 0 <= i < len(ts):
                raise SurgeryError(f"graph '{g.name}' {where}: tensor index {i} out of range")
            return ts[i]

        for t in ts:
            q = t.quantization
            if q is not None and q.detailsType == fb.QuantizationDetails.BlockwiseQuantization and q.details is not None:
                t.block_scales = tref(q.details.scales, f"tensor '{t.name}' block scales")
                t.block_zero_points = tref(q.details.zeroPoints, f"tensor '{t.name}' block zero points") if q.details.zeroPoints >= 0 else None
        g.inputs = [tref(i, "inputs") for i in (sg.inputs if sg.inputs is not None else [])]
        g.outputs = [tref(i, "outputs") for i in (sg.outputs if sg.outputs is not None else [])]
        for op in sg.operators or []:
            if not 0 <= op.opcodeIndex < len(m.opcodes):
                raise SurgeryError(f"graph '{g.name}': opcode index {op.opcodeIndex} out of range")
            custom = op.customOptions
            if op.largeCustomOptionsOffset > 1:
                custom = view[op.largeCustomOptionsOffset : op.largeCustomOptionsOffset + op.largeCustomOptionsSize]
            elif custom is not None:
                custom = _as_bytes_view(custom)
            node = Node(
                opcode=m.opcodes[op.opcodeIndex],
                inputs=[tref(i, "op inputs") for i in (op.inputs if op.inputs is not None else [])],
                outputs=[tref(i, "op outputs") for i in (op.outputs if op.outputs is not None else [])],
                options=op.builtinOptions, options_type=op.builtinOptionsType,
                options2=op.builtinOptions2, options2_type=op.builtinOptions2Type,
                custom_options=custom, custom_options_format=op.customOptionsFormat,
                mutating_variable_inputs=None if op.mutatingVariableInputs is None else [bool(x) for x in op.mutatingVariableInputs],
                intermediates=[tref(i, "op intermediates") for i in (op.intermediates if op.intermediates is not None else [])],
                debug_metadata_index=op.debugMetadataIndex,
            )
            opts = node.options2 if node.op.startswith("STABLEHLO_") and node.options2 is not None else node.options
            for f in CONTROL_FLOW_SUBGRAPH_FIELDS.get(node.op, ()):
                v = getattr(opts, f, None) if opts is not None else None
                if v is None:
                    continue
                def graph_at(k: int) -> Graph:
                    if not 0 <= int(k) < len(m.graphs):
                        raise SurgeryError(f"{node!r} calls subgraph {k}, which does not exist")
                    return m.graphs[int(k)]
                node.called[f] = [graph_at(k) for k in v] if hasattr(v, "__len__") else graph_at(v)
            g.nodes.append(node)
    for sd in mt.signatureDefs or []:
        if not 0 <= sd.subgraphIndex < len(m.graphs):
            raise SurgeryError(f"signature '{_str(sd.signatureKey)}': subgraph {sd.subgraphIndex} out of range")
        g = m.graphs[sd.subgraphIndex]

        def maps(tms: list | None) -> dict[str, Tensor]:
            out = {}
            for tm in tms or []:
                if not 0 <= tm.tensorIndex < len(g.tensors):
                    raise SurgeryError(f"signature '{_str(sd.signatureKey)}': tensor index {tm.tensorIndex} out of range")
                out[_str(tm.name) or ""] = g.tensors[tm.tensorIndex]
            return out

        m.signatures.append(Signature(_str(sd.signatureKey) or "", g, maps(sd.inputs), maps(sd.outputs)))
    m.metadata = [(_str(md.name) or "", buffer_at(md.buffer) or Buffer(b"")) for md in mt.metadata or []]
    if mt.metadataBuffer is not None:
        m.metadata_buffer = [int(x) for x in mt.metadataBuffer]
    m.external_buffer_groups = mt.externalBufferGroups
    m.external_buffers = mt.externalBuffers
    return m


# ---------------------------------------------------------------------------- export
class _Index:
    """Identity-keyed index assignment."""

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self.items: list[Any] = []
        self._pos: dict[int, int] = {}
        for x in items:
            self.add(x)

    def add(self, x: Any) -> int:
        k = id(x)
        if k not in self._pos:
            self._pos[k] = len(self.items)
            self.items.append(x)
        return self._pos[k]

    def get(self, x: Any) -> int | None:
        return self._pos.get(id(x))


def _export(m: Model) -> "fb.ModelT":
    mt = fb.ModelT()
    mt.version = m.version
    mt.description = m.description or None
    # operator codes: the model's own list first (stable indices), then new ones
    codes = _Index(m.opcodes)

    def opcode_index(oc: OpCode) -> int:
        i = codes.get(oc)
        if i is not None:
            return i
        same = next((j for j, o in enumerate(codes.items) if o.same_as(oc)), None)
        return same if same is not None else codes.add(oc)

    # buffers: sentinel, the model's list, then new ones in first-use order
    sentinel = Buffer(b"")
    bufs = _Index([sentinel, *m.buffers])

    def buffer_index(b: Buffer | None) -> int:
        return 0 if b is None else bufs.add(b)

    gindex = _Index(m.graphs)
    mt.subgraphs = []
    for g in m.graphs:
        sg = fb.SubGraphT()
        sg.name = g.name or None
        sg.debugMetadataIndex = g.debug_metadata_index
        tix = _Index(g.tensors)

        def ti(t: Tensor | None, where: str) -> int:
            if t is None:
                return -1
            i = tix.get(t)
            if i is None:
                raise SurgeryError(f"graph '{g.name}' {where}: tensor '{t.name}' is not in the graph's tensor list")
            return i

        sg.tensors = []
        for t in g.tensors:
            tt = fb.TensorT()
            tt.name = t.name
            tt.shape = list(t.shape)
            tt.type = t.dtype
            tt.buffer = buffer_index(t.buffer)
            q = t.quantization
            if t.block_scales is not None and q is not None and q.details is not None:
                q = copy.copy(q)
                q.details = copy.copy(q.details)
                q.details.scales = ti(t.block_scales, "block scales")
                q.details.zeroPoints = ti(t.block_zero_points, "block zero points") if t.block_zero_points is not None else -1
            tt.quantization = q
            tt.isVariable = t.is_variable
            tt.sparsity = t.sparsity
            tt.shapeSignature = None if t.shape_signature is None else list(t.shape_signature)
            tt.hasRank = t.has_rank
            tt.variantTensors = t.variant_tensors
            tt.externalBuffer = t.external_buffer
            sg.tensors.append(tt)
        sg.inputs = [ti(t, "inputs") for t in g.inputs]
        sg.outputs = [ti(t, "outputs") for t in g.outputs]
        sg.operators = []
        for n in g.nodes:
            o = fb.OperatorT()
            o.opcodeIndex = opcode_index(n.opcode)
            o.inputs = [ti(t, f"{n!r} inputs") for t in n.inputs]
            o.outputs = [ti(t, f"{n!r} outputs") for t in n.outputs]
            o.intermediates = [ti(t, f"{n!r} intermediates") for t in n.intermediates] or None
            opts, opts2 = n.options, n.options2
            if n.called:
                target = copy.copy(opts2 if n.op.startswith("STABLEHLO_") and opts2 is not None else opts)
                for f, ref in n.called.items():
                    def gi(x: Graph) -> int:
                        i = gindex.get(x)
                        if i is None:
                            raise SurgeryError(f"{n!r} calls graph '{x.name}', which is not part of the model")
                        return i
                    setattr(target, f, [gi(x) for x in ref] if isinstance(ref, list) else gi(ref))
                if n.op.startswith("STABLEHLO_") and opts2 is not None:
                    opts2 = target
                else:
                    opts = target
            o.builtinOptionsType, o.builtinOptions = (n.options_type, opts) if opts is not None else (0, None)
            o.builtinOptions2Type, o.builtinOptions2 = (n.options2_type, opts2) if opts2 is not None else (0, None)
            if n.custom_options is not None:
                o.customOptions = np.frombuffer(n.custom_options, dtype=np.uint8)
            o.customOptionsFormat = n.custom_options_format
            o.mutatingVariableInputs = n.mutating_variable_inputs
            o.debugMetadataIndex = n.debug_metadata_index
            sg.operators.append(o)
        mt.subgraphs.append(sg)
    mt.signatureDefs = []
    for s in m.signatures:
        gi_ = gindex.get(s.graph)
        if gi_ is None:
            raise SurgeryError(f"signature '{s.key}': its graph '{s.graph.name}' is not part of the model")
        g = s.graph
        pos = {id(t): i for i, t in enumerate(g.tensors)}
        sd = fb.SignatureDefT()
        sd.signatureKey = s.key
        sd.subgraphIndex = gi_

        def tmaps(d: dict[str, Tensor]) -> list:
            out = []
            for name, t in d.items():
                if id(t) not in pos:
                    raise SurgeryError(f"signature '{s.key}' '{name}': tensor '{t.name}' is not in graph '{g.name}'")
                tm = fb.TensorMapT()
                tm.name, tm.tensorIndex = name, pos[id(t)]
                out.append(tm)
            return out

        sd.inputs, sd.outputs = tmaps(s.inputs), tmaps(s.outputs)
        mt.signatureDefs.append(sd)
    mt.metadata = []
    for name, b in m.metadata:
        md = fb.MetadataT()
        md.name, md.buffer = name, buffer_index(b)
        mt.metadata.append(md)
    if not mt.metadata:
        mt.metadata = None
    mt.metadataBuffer = m.metadata_buffer
    mt.externalBufferGroups = m.external_buffer_groups
    mt.externalBuffers = m.external_buffers
    mt.operatorCodes = []
    for oc in codes.items:
        c = fb.OperatorCodeT()
        c.builtinCode = oc.builtin_code
        c.deprecatedBuiltinCode = (oc.deprecated_builtin_code if oc.deprecated_builtin_code is not None
                                   else min(oc.builtin_code, _PLACEHOLDER_FOR_GREATER_OP_CODES))
        c.customCode = oc.custom_code
        c.version = oc.version
        mt.operatorCodes.append(c)
    mt.buffers = []
    for b in bufs.items:
        bt = fb.BufferT()
        if b.nbytes:
            bt.data = b.numpy()
        mt.buffers.append(bt)
    return mt
