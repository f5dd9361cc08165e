"""A read-only dataflow view of one subgraph: producers, consumers, constants.

TFLite stores operators in execution order, so an operator's index is its
topological position; searches use it to pick the nearest match.
"""
from __future__ import annotations

from collections import deque
from functools import cached_property
from typing import Callable, Iterator

from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import OperatorRecord, TensorRecord

#: Operators that move or convert values without computing new features.
TRANSPARENT = frozenset({
    "RESHAPE", "TRANSPOSE", "DEQUANTIZE", "QUANTIZE", "CAST", "EXPAND_DIMS", "SQUEEZE", "BROADCAST_TO",
    "SLICE", "STRIDED_SLICE", "GATHER", "TILE", "CONCATENATION", "PACK", "UNPACK", "SPLIT", "SPLIT_V",
})

#: Operators that multiply by a learned matrix when one operand is constant.
MATMUL = frozenset({"FULLY_CONNECTED", "BATCH_MATMUL", "EINSUM", "CONV_2D", "DEPTHWISE_CONV_2D"})


class Dataflow:
    """Producers and consumers of every tensor of subgraph ``sg`` of ``model``."""

    def __init__(self, model: TFLiteModel, sg: int) -> None:
        self.model = model
        self.sg = sg
        self.record = model.subgraphs[sg]
        self.producer: dict[int, OperatorRecord] = {}
        self.consumers: dict[int, list[OperatorRecord]] = {}
        for op in self.record.operators:
            for t in op.outputs:
                if t >= 0:
                    self.producer[t] = op
            for t in op.inputs:
                if t >= 0:
                    self.consumers.setdefault(t, []).append(op)

    def tensor(self, i: int) -> TensorRecord:
        return self.record.tensors[i]

    def is_const(self, i: int) -> bool:
        """Holds data in the file (directly, or through a DEQUANTIZE/CAST of a constant)."""
        if i < 0:
            return False
        if self.model.has_data(self.record.tensors[i]):
            return True
        op = self.producer.get(i)
        return op is not None and op.op_name in ("DEQUANTIZE", "CAST") and self.is_const(op.inputs[0])

    def const_source(self, i: int) -> int:
        """The stored tensor behind ``i`` (through DEQUANTIZE/CAST of a constant)."""
        while not self.model.has_data(self.record.tensors[i]):
            i = self.producer[i].inputs[0]
        return i

    def data_inputs(self, op: OperatorRecord) -> list[int]:
        """Inputs of ``op`` that carry activations (not constants)."""
        return [i for i in op.inputs if i >= 0 and not self.is_const(i)]

    def const_inputs(self, op: OperatorRecord) -> list[int]:
        return [i for i in op.inputs if i >= 0 and self.is_const(i)]

    def weight_of(self, op: OperatorRecord) -> int | None:
        """The constant matrix a matmul-like ``op`` multiplies by (stored tensor index)."""
        if op.op_name not in MATMUL:
            return None
        ins = [i for i in op.inputs[:2] if i >= 0]
        consts = [i for i in ins if self.is_const(i)]
        if len(consts) != 1 or len(ins) != 2:
            return None
        src = self.const_source(consts[0])
        return src if self.tensor(src).num_elements > 1 else None

    def is_weight_matmul(self, op: OperatorRecord) -> bool:
        return self.weight_of(op) is not None

    def is_data_matmul(self, op: OperatorRecord) -> bool:
        """A matmul of two activations (attention scores, attention-weighted values)."""
        return op.op_name in MATMUL and len(self.data_inputs(op)) >= 2

    def walk(self, starts: list[int], forward: bool, stop: Callable[[OperatorRecord], bool] | None = None,
             ) -> Iterator[OperatorRecord]:
        """Operators reachable from tensors ``starts`` (breadth first, each once).

        A ``stop`` operator is yielded but not walked through.
        """
        seen: set[int] = set()
        queue = deque(starts)
        visited_t: set[int] = set(starts)
        while queue:
            t = queue.popleft()
            ops = self.consumers.get(t, []) if forward else ([self.producer[t]] if t in self.producer else [])
            for op in ops:
                if op.index in seen:
                    continue
                seen.add(op.index)
                yield op
                if stop is not None and stop(op):
                    continue
                nxt = op.outputs if forward else [i for i in op.inputs if i >= 0 and not self.is_const(i)]
                for n in nxt:
                    if n >= 0 and n not in visited_t:
                        visited_t.add(n)
                        queue.append(n)

    def between(self, source: int, sink: int) -> list[OperatorRecord]:
        """Operators on a path from tensor ``source`` to tensor ``sink`` (not crossing a matmul), in order.

        Operators whose outputs lead elsewhere (dead ones left by an edit, side branches) are not on it.
        """
        stop = lambda o: self.is_weight_matmul(o) or self.is_data_matmul(o)  # noqa: E731
        ahead = {op.index for op in self.walk([source], True, stop=stop)}
        return sorted((op for op in self.walk([sink], False, stop=stop) if op.index in ahead), key=lambda o: o.index)

    def softmax_after(self, scores: OperatorRecord) -> OperatorRecord | None:
        """The softmax an attention score matmul's output reaches first (None: none before another matmul)."""
        stop = lambda o: self.is_weight_matmul(o) or self.is_data_matmul(o)  # noqa: E731
        return next((op for op in self.walk(list(scores.outputs), True, stop=stop) if op.op_name == "SOFTMAX"), None)

    def ancestors_have(self, t: int, op_names: frozenset[str] | set[str], hops: int) -> bool:
        """Does an operator named in ``op_names`` produce ``t`` within ``hops`` steps back?"""
        frontier = [t]
        for _ in range(hops):
            nxt = []
            for x in frontier:
                op = self.producer.get(x)
                if op is None:
                    continue
                if op.op_name in op_names:
                    return True
                nxt.extend(i for i in op.inputs if i >= 0 and not self.is_const(i))
            frontier = nxt
        return False

    @cached_property
    def inputs(self) -> tuple[int, ...]:
        return tuple(self.record.inputs)

    @cached_property
    def outputs(self) -> tuple[int, ...]:
        return tuple(self.record.outputs)
