"""What a shape rule sees: the dims of its inputs, constant operands, and how to refuse."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import numpy as np

from mtpsurgeon.errors import SurgeryError
from mtpsurgeon.surgery.ir.elements import Node, Tensor
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.symbolic.expr import Dim, consts, show



class Inference(Protocol):
    """What a rule context needs of the driver (:class:`~mtpsurgeon.surgery.ir.symbolic.infer.Inference`),
    declared here so this module does not import the driver that imports it."""

    t0: int
    option_uses: list
    merges: dict

    def dims_of(self, t: Tensor, data_use: bool = ...) -> Any: ...
    def record_constant(self, use: Any, ctx: Any) -> None: ...
    def record_merge(self, merged: Any, factors: Any) -> None: ...
    def infer_called(self, graph: Graph, inputs: Any, ctx: Any) -> Any: ...


def quote(name: str) -> str:
    """A name from the model file for a message: quoted, control characters escaped, long names cut from the left."""
    name = name.encode("unicode_escape").decode("ascii")
    return repr(name if len(name) <= 60 else "..." + name[-57:])


def label(t: Tensor) -> str:
    return quote(t.name)


class SymbolicShapeError(SurgeryError):
    """The shapes cannot be expressed in T with certainty (unknown op, ambiguity, mismatch)."""


@dataclass
class ConstantUse:
    """A constant operand read as shape data (a RESHAPE shape, SLICE sizes, ...): one reading of it.

    A converter stores equal constants once, so one tensor may be read as two
    different expressions ([1, T, 4, 32] by one reshape, [1, 4, T, 32] by
    another when T = 4 heads): each reading is its own ConstantUse, with the
    operand slots that read it that way.
    """

    tensor: Tensor
    graph: Graph
    exprs: list[Dim]  #: one expression per stored value (flattened)
    role: str  #: e.g. "RESHAPE shape"
    uses: list[tuple[Node, int]] = field(default_factory=list)  #: (operator, input slot) reading it this way

    @property
    def depends_on_t(self) -> bool:
        return any(e.depends_on_t for e in self.exprs)


@dataclass
class OptionUse:
    """An operator option field holding T-dependent sizes (e.g. ReshapeOptions.newShape)."""

    node: Node
    field: str
    exprs: list[Dim]


class RuleContext:
    """Per-node view for a rule. Rules return one dim list per output."""

    def __init__(self, inference: "Inference", graph: Graph, node: Node) -> None:
        self._inf = inference
        self.graph = graph
        self.node = node
        self.t0 = inference.t0

    # -- reading -------------------------------------------------------------------
    @property
    def op(self) -> str:
        return self.node.op

    @property
    def options(self) -> Any:
        return self.node.options if self.node.options is not None else self.node.options2

    def input(self, i: int) -> Tensor | None:
        return self.node.inputs[i] if i < len(self.node.inputs) else None

    def dims(self, i_or_tensor: int | Tensor) -> list[Dim]:
        """Symbolic dims of a data operand (constants: their stored shape)."""
        t = self.input(i_or_tensor) if isinstance(i_or_tensor, int) else i_or_tensor
        if t is None:
            self.refuse(f"operand {i_or_tensor} is missing")
        return self._inf.dims_of(t, data_use=True)

    def stored(self, t: Tensor) -> list[int]:
        return list(t.shape)

    def values(self, i: int, what: str) -> list[int] | None:
        """Stored integer values of constant operand ``i`` (flattened), or None if not constant."""
        t = self.input(i)
        if t is None or not t.is_constant:
            return None
        if t.dtype_name not in ("INT32", "INT64", "INT16", "INT8", "UINT8"):
            self.refuse(f"{what} operand {label(t)} is {t.dtype_name}, expected integers")
        return [int(v) for v in np.asarray(t.numpy()).reshape(-1)]

    def const_values(self, i: int, what: str) -> list[int]:
        v = self.values(i, what)
        if v is None:
            self.refuse(f"{what} operand is not a constant")
        self.interpret(i, consts(v), what)
        return v

    # -- recording ---------------------------------------------------------------------
    def interpret(self, i: int, exprs: list[Dim], role: str) -> None:
        """Record that constant operand ``i`` holds ``exprs`` (a T-dependent one gets rewritten)."""
        t = self.input(i)
        if t is None or not t.is_constant:
            return
        self._inf.record_constant(ConstantUse(t, self.graph, list(exprs), f"{self.op} {role}", [(self.node, i)]), self)

    def interpret_option(self, field: str, exprs: list[Dim]) -> None:
        self._inf.option_uses.append(OptionUse(self.node, field, list(exprs)))

    def record_merge(self, merged: Dim, factors: list[Dim]) -> None:
        """A reshape merged ``factors`` into one dim; equal expressions merged differently cancel out."""
        self._inf.record_merge(merged, factors)

    def merged_factors(self, merged: Dim) -> list[Dim] | None:
        return self._inf.merges.get(merged)

    def call(self, graph: Graph, inputs: list[list[Dim]]) -> list[list[Dim]]:
        """Infer a called graph with its inputs bound; returns its outputs' dims."""
        return self._inf.infer_called(graph, inputs, self)

    def refuse(self, msg: str) -> NoReturn:
        raise SymbolicShapeError(f"{self.where()}: {msg}")

    def where(self) -> str:
        outs = ", ".join(label(t) for t in self.node.outputs if t is not None)
        return f"{self.op} in graph {quote(self.graph.name)} (-> {outs})"

    # -- helpers shared by rules -----------------------------------------------------------
    def axis(self, axis: int, rank: int) -> int:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < max(rank, 1):
            self.refuse(f"axis {axis} out of range for rank {rank}")
        return a

    def same(self, a: Dim, b: Dim, what: str) -> Dim:
        """Two dims that must be equal; equal values but different expressions are ambiguous."""
        if a == b:
            return a if a.same_layout(b) else a.plain()  # two layouts of one size: neither is known to hold
        if a.at(self.t0) == b.at(self.t0):
            self.refuse(f"{what}: {a} and {b} are equal at T={self.t0} but not in general (ambiguous)")
        self.refuse(f"{what}: {a} vs {b} do not match")

    def broadcast(self, *shapes: list[Dim]) -> list[Dim]:
        """Numpy-style broadcast of symbolic shapes."""
        rank = max(len(s) for s in shapes)
        out: list[Dim] = []
        for k in range(rank):
            col = [s[len(s) - rank + k] for s in shapes if len(s) - rank + k >= 0]
            d = Dim.const(1)
            for x in col:
                if x == Dim.const(1):
                    continue
                d = x if d == Dim.const(1) else self.same(d, x, f"broadcast of {' vs '.join(show(s) for s in shapes)}")
            out.append(d)
        return out
