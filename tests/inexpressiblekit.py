"""Variants of the real fixture drafters that no ``gemma4_assistant`` config.json expresses.

Every edit goes through Google's generated TFLite schema (``ai_edge_litert.schema_py_generated``: its reader
for byte edits of a constant in place, its object API plus ``flatbuffers`` for edits that add tensors or
operators), never through mtpsurgeon's reader or writer, so the recogniser is not checking its own output.
Sites are found by structure (operators and constants), as the library must find them, not by tensor names.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as S

_OP_NAMES = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
_NUMPY = {S.TensorType.FLOAT32: np.float32, S.TensorType.INT32: np.int32, S.TensorType.INT64: np.int64}
_MATMULS = {"FULLY_CONNECTED", "BATCH_MATMUL"}
_RESHAPES = {"RESHAPE", "CAST", "SQUEEZE", "EXPAND_DIMS"}
_COMPARISONS = {"GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"}


@dataclass(frozen=True)
class Op:
    index: int
    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


class Graph:
    """Subgraph 0 of a .tflite held in ``data``, read with the generated schema reader.

    ``const(t)`` is a numpy view onto ``data``'s bytes: writing it edits the file image in place.
    """

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.model = S.Model.GetRootAs(data, 0)
        self.sg = self.model.Subgraphs(0)
        self.ops: list[Op] = []
        for k in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(k)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            name = _OP_NAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())]
            self.ops.append(Op(k, name, tuple(op.InputsAsNumpy().tolist()), tuple(op.OutputsAsNumpy().tolist())))
        self.producer = {t: op for op in self.ops for t in op.outputs}
        self.consumers: dict[int, list[Op]] = {}
        for op in self.ops:
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)

    def const(self, t: int) -> np.ndarray | None:
        tensor = self.sg.Tensors(t)
        buf = self.model.Buffers(tensor.Buffer())
        if buf.DataLength() == 0:
            return None
        return buf.DataAsNumpy().view(_NUMPY[tensor.Type()])

    def is_data(self, t: int) -> bool:
        return t >= 0 and self.const(t) is None

    def forward(self, t: int, through=lambda op: op.name not in _MATMULS) -> list[Op]:
        """Operators reached from tensor ``t``, walking on through those ``through`` admits."""
        seen, todo, found = set(), [t], []
        while todo:
            for op in self.consumers.get(todo.pop(), []):
                if op.index not in seen:
                    seen.add(op.index)
                    found.append(op)
                    if through(op):
                        todo.extend(op.outputs)
        return sorted(found, key=lambda o: o.index)

    def is_score_matmul(self, op: Op) -> bool:
        """A matmul of two activations: attention scores or attention-weighted values."""
        return op.name in _MATMULS and sum(self.is_data(t) for t in op.inputs[:2]) == 2

    def norm_epsilon_adds(self) -> list[Op]:
        """The ``ADD(mean(x²), eps)`` before each RMS norm's RSQRT, in execution order."""
        adds = []
        for op in self.ops:
            if op.name == "RSQRT":
                t = op.inputs[0]
                while self.producer[t].name in _RESHAPES:
                    t = self.producer[t].inputs[0]
                adds.append(self.producer[t])
        return adds

    def epsilon_of(self, add: Op) -> int:
        return next(t for t in add.inputs if not self.is_data(t))

    def q_norm_adds(self) -> list[Op]:
        """Epsilon ADDs of the query norms (block order): norms whose output reaches attention scores
        without crossing a weight matmul."""
        return [add for add in self.norm_epsilon_adds()
                if any(self.is_score_matmul(op) for op in self.forward(add.outputs[0]))]

    def attention_selects(self) -> list[Op]:
        """Per block (execution order) the ``SELECT_V2(mask, scores, fill)`` masking its attention scores."""
        out = []
        for op in self.ops:
            if self.is_score_matmul(op) and not any(self.is_score_matmul(self.producer[t]) for t in op.inputs[:2]
                                                    if t in self.producer and self._behind_scores(t)):
                sel = [o for o in self.forward(op.outputs[0]) if o.name == "SELECT_V2"]
                if sel:
                    out.append(sel[0])
        return out

    def _behind_scores(self, t: int) -> bool:
        """Is ``t`` computed from a softmax (the value matmul's probabilities) within a few steps?"""
        for _ in range(4):
            op = self.producer.get(t)
            if op is None:
                return False
            if op.name == "SOFTMAX":
                return True
            t = op.inputs[0]
        return False

    def window_chain(self, select: Op) -> list[Op]:
        """The window operators behind a select's mask, in order: ``SUB(position, c)``..., the comparison
        with the key ramp, the ``LOGICAL_AND`` with the mask input. Empty: the select masks no window."""
        combine = self.producer.get(select.inputs[0])
        if combine is None or combine.name != "LOGICAL_AND":
            return []
        cmp = next((self.producer[t] for t in combine.inputs if t in self.producer
                    and self.producer[t].name in _COMPARISONS), None)
        if cmp is None:
            return []
        subs, t = [], next(t for t in cmp.inputs if self.is_data(t))
        while t in self.producer and self.producer[t].name == "SUB":
            subs.append(self.producer[t])
            t = self.producer[t].inputs[0]
        return [*subs[::-1], cmp, combine]

    def query_rotations(self) -> list[tuple[Op, int]]:
        """Per roped block (execution order): its RoPE ``ADD(q*cos, rotate(q)*sin)`` and the un-rotated q.

        The un-rotated q is the tensor both the cos and the sin branch read (the q norm's output).
        """
        found = []
        for op in self.ops:
            if op.name != "ADD" or len(op.inputs) != 2 or not all(t in self.producer for t in op.inputs):
                continue
            a, b = (self.producer[t] for t in op.inputs)
            if a.name == b.name == "MUL" and any(self._trig(t) for t in a.inputs) and any(self._trig(t) for t in b.inputs):
                found.append((op, next(t for t in a.inputs if not self._trig(t))))
        return found

    def _trig(self, t: int) -> bool:
        return t in self.producer and self.producer[t].name in ("COS", "SIN")

    def rope_frequency_tables(self) -> list[int]:
        """Float vector constants multiplying the position before a COS (one per table, execution order)."""
        tables = []
        for op in self.ops:
            if op.name != "COS":
                continue
            t = op.inputs[0]
            while t in self.producer and self.producer[t].name != "MUL":
                t = self.producer[t].inputs[0]
            mul = self.producer.get(t)
            const = [x for x in mul.inputs if not self.is_data(x)] if mul else []
            if const and const[0] not in tables:
                tables.append(const[0])
        return tables


def load(path: Path) -> Graph:
    return Graph(bytearray(path.read_bytes()))


def save(graph: Graph, path: Path) -> Path:
    path.write_bytes(bytes(graph.data))
    return path


class ObjectEdit:
    """An edit through the schema's object API (``ModelT``): may add buffers, tensors and operators."""

    def __init__(self, path: Path) -> None:
        self.model = S.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
        self.sg = self.model.subgraphs[0]

    def constant_like(self, like: int, values: np.ndarray) -> int:
        """A new constant tensor shaped and typed like tensor ``like``, holding ``values``."""
        buf = S.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), np.uint8).copy()
        self.model.buffers.append(buf)
        return self._tensor_like(like, len(self.model.buffers) - 1, b"variant_constant")

    def activation_like(self, like: int) -> int:
        return self._tensor_like(like, 0, b"variant_activation")

    def _tensor_like(self, like: int, buffer: int, name: bytes) -> int:
        src = self.sg.tensors[like]
        t = S.TensorT()
        t.shape, t.type, t.buffer, t.name = list(src.shape), src.type, buffer, name + b"_%d" % len(self.sg.tensors)
        if src.shapeSignature is not None:
            t.shapeSignature = list(src.shapeSignature)
        self.sg.tensors.append(t)
        return len(self.sg.tensors) - 1

    def clone_op(self, index: int, inputs: list[int], outputs: list[int]) -> S.OperatorT:
        """A copy of operator ``index`` (same code and options) reading ``inputs``, writing ``outputs``."""
        src = self.sg.operators[index]
        op = S.OperatorT()
        op.opcodeIndex, op.builtinOptionsType, op.builtinOptions = src.opcodeIndex, src.builtinOptionsType, src.builtinOptions
        op.inputs, op.outputs = list(inputs), list(outputs)
        return op

    def set_input(self, op: int, slot: int, tensor: int) -> None:
        self.sg.operators[op].inputs[slot] = tensor

    def insert_ops(self, at: int, ops: list[S.OperatorT]) -> None:
        self.sg.operators[at:at] = ops

    def save(self, path: Path) -> Path:
        b = flatbuffers.Builder(1024)
        b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
        path.write_bytes(bytes(b.Output()))
        return path


def own_epsilon(src: Path, out: Path, add: Op, value: float) -> Path:
    """``src`` with the norm of epsilon-ADD ``add`` given a constant of its own holding ``value``."""
    g = load(src)
    eps = g.epsilon_of(add)
    edit = ObjectEdit(src)
    new = edit.constant_like(eps, np.full(g.const(eps).shape, value, np.float32))
    edit.set_input(add.index, add.inputs.index(eps), new)
    return edit.save(out)


def own_window(src: Path, out: Path, select: Op, window: int) -> Path:
    """``src`` with attention select ``select`` masked by a window of its own: the window operators
    (position - window - 1 < key ramp, and the mask input) cloned with ``window`` in place of the first
    constant, and the select reading the clone."""
    g = load(src)
    chain = g.window_chain(select)
    const = next(t for t in chain[0].inputs if not g.is_data(t))
    edit = ObjectEdit(src)
    renamed = {const: edit.constant_like(const, np.full(g.const(const).shape, window, g.const(const).dtype))}
    clones = []
    for op in chain:
        outs = [renamed.setdefault(t, edit.activation_like(t)) for t in op.outputs]
        clones.append(edit.clone_op(op.index, [renamed.get(t, t) for t in op.inputs], outs))
    edit.set_input(select.index, 0, renamed[chain[-1].outputs[0]])
    edit.insert_ops(chain[-1].index + 1, clones)
    return edit.save(out)


def skip_rotation(src: Path, out: Path, block: int) -> Path:
    """``src`` with roped block ``block`` reading its un-rotated q (its RoPE operators left unused)."""
    g = load(src)
    add, q = g.query_rotations()[block]
    edit = ObjectEdit(src)
    for op in g.consumers[add.outputs[0]]:
        for slot, t in enumerate(op.inputs):
            if t == add.outputs[0]:
                edit.set_input(op.index, slot, q)
    return edit.save(out)


def run(path: Path, positions: list[int], seed: int = 0) -> list[dict[str, np.ndarray]]:
    """The drafter's outputs in the LiteRT interpreter at ``positions`` (the runtime's input convention)."""
    import roundtripkit as R
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    runner = Interpreter(model_path=str(path), experimental_op_resolver_type=(
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)).get_signature_runner("mtp_drafter")
    rng = np.random.default_rng(seed)
    return [runner(**R._feed(runner.get_input_details(), rng, p)) for p in positions]


def scale_scores(src: Path, out: Path, select: Op, factor: float) -> Path:
    """``src`` with the attention scores masked by ``select`` multiplied by ``factor`` first (a new ``MUL``)."""
    g = load(src)
    scores = select.inputs[1]
    fill = select.inputs[2]
    mul = next(op for op in g.ops if op.name == "MUL" and len(op.inputs) == 2)
    edit = ObjectEdit(src)
    c = edit.constant_like(fill, np.full(g.const(fill).shape, factor, np.float32))
    scaled = edit.activation_like(scores)
    edit.insert_ops(select.index, [edit.clone_op(mul.index, [scores, c], [scaled])])
    edit.set_input(select.index + 1, 1, scaled)
    return edit.save(out)


def softmax_beta(src: Path, out: Path, select: Op, beta: float) -> Path:
    """``src`` with the softmax after attention select ``select`` computing ``softmax(beta · scores)``."""
    g = load(src)
    softmax = next(op for op in g.forward(select.outputs[0]) if op.name == "SOFTMAX")
    edit = ObjectEdit(src)
    edit.sg.operators[softmax.index].builtinOptions.beta = beta
    return edit.save(out)


def interleave_kv_heads(src: Path, out: Path) -> Path:
    """``src`` with every KV broadcast ``[1, kv, 1, C, d] -> [1, kv, g, C, d]`` (query head h reads KV head
    h // g) edited in place to ``[1, 1, kv, C, d] -> [1, g, kv, C, d]`` (h reads h % kv): the shape operands only."""
    g = load(src)
    edited = 0
    for op in g.ops:
        if op.name != "BROADCAST_TO" or g.producer[op.inputs[0]].name != "RESHAPE":
            continue
        shape, target = g.const(g.producer[op.inputs[0]].inputs[1]), g.const(op.inputs[1])
        if len(shape) == 5 and shape[2] == 1 and target[1] == shape[1] and target[2] > 1:
            kv, group = int(shape[1]), int(target[2])
            shape[1], shape[2] = 1, kv
            target[1], target[2] = group, kv
            edited += 1
    assert edited, "no grouped-query KV broadcast found"
    return save(g, out)


def gate_nonlinearities(graph: Graph) -> list[Op]:
    """The GELU of each block's MLP gate, in block order."""
    return [op for op in graph.ops if op.name == "GELU"]


def swap_nonlinearity(src: Path, out: Path, ops: list[Op], to: str) -> Path:
    """``src`` with operators ``ops`` computing ``to`` (a builtin the model already uses, e.g. the soft-cap's
    TANH) on the same input instead."""
    g = load(src)
    code = next(op for op in g.ops if op.name == to)
    edit = ObjectEdit(src)
    for op in ops:
        target = edit.sg.operators[op.index]
        target.opcodeIndex = edit.sg.operators[code.index].opcodeIndex
        target.builtinOptionsType, target.builtinOptions = 0, None
    return edit.save(out)


def bypass_mask(src: Path, out: Path, select: Op) -> Path:
    """``src`` with the softmax after attention select ``select`` reading the unmasked scores (the select and
    its window operators left in place, unused: a recogniser must not be fooled by them)."""
    g = load(src)
    softmax = next(op for op in g.forward(select.outputs[0]) if op.name == "SOFTMAX")
    edit = ObjectEdit(src)
    edit.set_input(softmax.index, softmax.inputs.index(select.outputs[0]), select.inputs[1])
    return edit.save(out)
