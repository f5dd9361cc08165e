"""The driver: walk a signature's graph (and every graph it calls) applying shape rules.

Every inferred shape is checked against the shape stored in the file at T's
stored value, so a wrong rule cannot pass silently.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mtpsurgeon.surgery.ir.elements import Tensor
from mtpsurgeon.surgery.ir.graph import Graph
from mtpsurgeon.surgery.ir.model_data import ModelData, Signature
from mtpsurgeon.surgery.ir.symbolic import (  # noqa: F401  (imported to register their rules)
    rules_control,
    rules_elementwise,
    rules_layout,
    rules_linalg,
    rules_reshape,
    rules_slicing,
)
from mtpsurgeon.surgery.ir.symbolic.context import ConstantUse, OptionUse, RuleContext, SymbolicShapeError, label, quote
from mtpsurgeon.surgery.ir.symbolic.expr import Dim, evaluate, show
from mtpsurgeon.surgery.ir.symbolic.registry import RULES
from mtpsurgeon.surgery.ir.symbolic.seeds import seed_tokens


@dataclass
class SymbolicShapes:
    """Result: every tensor's dims as expressions in T, and the constants that encode T."""

    signature: Signature
    t0: int  #: T's value in the file
    seeded: list[str]
    graphs: list[Graph]  #: the signature's graph first, then called graphs
    dims: dict[int, tuple[Tensor, list[Dim]]]
    constants: list[ConstantUse] = field(default_factory=list)  #: every reading of a constant as shape data
    options: list[OptionUse] = field(default_factory=list)

    def shape(self, t: Tensor) -> list[Dim]:
        return self.dims[id(t)][1]

    def shape_at(self, t: Tensor, value: int) -> list[int]:
        return evaluate(self.shape(t), value)

    @property
    def t_constants(self) -> list[ConstantUse]:
        """Constants whose values are functions of T (to rewrite when T changes)."""
        return [c for c in self.constants if c.depends_on_t]

    def readings(self, t: Tensor) -> list[ConstantUse]:
        """Every way ``t`` is read as shape data (more than one: a constant the converter shared)."""
        return [c for c in self.constants if c.tensor is t]

    @property
    def t_options(self) -> list[OptionUse]:
        return [o for o in self.options if any(e.depends_on_t for e in o.exprs)]

    def t_tensors(self) -> list[tuple[Tensor, list[Dim]]]:
        """Tensors whose shape depends on T."""
        return [(t, d) for t, d in self.dims.values() if any(x.depends_on_t for x in d)]


class Inference:
    """Mutable state of one run (see :func:`infer_shapes`)."""

    def __init__(self, t0: int) -> None:
        self.t0 = t0
        self.dims: dict[int, tuple[Tensor, list[Dim]]] = {}
        self.constants: dict[int, list[ConstantUse]] = {}  #: id(tensor) -> its readings
        self.data_constants: dict[int, tuple[Tensor, str]] = {}
        self.option_uses: list[OptionUse] = []
        self.graphs: list[Graph] = []
        self._calls: dict[int, tuple[list[list[Dim]], list[list[Dim]]]] = {}
        self.merges: dict[Dim, list[Dim] | None] = {}  #: merged dim -> the factors merged (None: conflicting)

    def record_merge(self, merged: Dim, factors: list[Dim]) -> None:
        if merged in self.merges and self.merges[merged] != factors:
            self.merges[merged] = None
        else:
            self.merges.setdefault(merged, list(factors))

    def dims_of(self, t: Tensor, data_use: bool = True) -> list[Dim]:
        got = self.dims.get(id(t))
        if got is not None:
            return got[1]
        if t.is_constant or t.is_variable:
            d = [Dim.const(v) for v in t.shape]
            self.dims[id(t)] = (t, d)
            if data_use and t.is_constant:
                self.data_constants[id(t)] = (t, "data")
            return d
        raise SymbolicShapeError(f"tensor {label(t)} is read before any operator produces it")

    def record_constant(self, use: ConstantUse, ctx: RuleContext) -> None:
        import numpy as np

        stored = [int(v) for v in np.asarray(use.tensor.numpy()).reshape(-1)]
        if evaluate(use.exprs, self.t0) != stored:
            ctx.refuse(f"{use.role} {label(use.tensor)} holds {stored}, the rule says {show(use.exprs)}")
        readings = self.constants.setdefault(id(use.tensor), [])
        for r in readings:
            if r.exprs == use.exprs:
                r.uses.extend(u for u in use.uses if u not in r.uses)
                return
        readings.append(use)  # another reading of a constant the converter shared (see ConstantUse)

    def run_graph(self, g: Graph, inputs: list[list[Dim]]) -> list[list[Dim]]:
        if g not in self.graphs:
            self.graphs.append(g)
        if len(inputs) != len(g.inputs):
            raise SymbolicShapeError(f"graph {quote(g.name)} takes {len(g.inputs)} inputs, called with {len(inputs)}")
        for t, d in zip(g.inputs, inputs):
            if evaluate(d, self.t0) != list(t.shape):
                raise SymbolicShapeError(f"graph {quote(g.name)} input {label(t)} is {list(t.shape)}, bound to {show(d)}")
            self.dims[id(t)] = (t, list(d))
        for node in g.nodes:
            ctx = RuleContext(self, g, node)
            fn = RULES.get(node.op)
            if fn is None:
                ctx.refuse(f"no shape rule for operator {node.op}")
            outs = fn(ctx)
            if len(outs) != len(node.outputs):
                ctx.refuse(f"rule gave {len(outs)} outputs, the operator has {len(node.outputs)}")
            for t, d in zip(node.outputs, outs):
                if t is None:
                    continue
                if evaluate(d, self.t0) != list(t.shape):
                    ctx.refuse(f"output {label(t)}: rule gives {show(d)} = {evaluate(d, self.t0)} at T={self.t0}, "
                               f"the file says {list(t.shape)}")
                self.dims[id(t)] = (t, list(d))
        return [self.dims_of(t, data_use=False) for t in g.outputs]

    def infer_called(self, g: Graph, inputs: list[list[Dim]], ctx: RuleContext) -> list[list[Dim]]:
        prev = self._calls.get(id(g))
        if prev is not None:
            if prev[0] != inputs:
                ctx.refuse(f"graph {quote(g.name)} is called with T-dependence {[show(d) for d in prev[0]]} and "
                           f"{[show(d) for d in inputs]}: one graph cannot be specialized both ways")
            return prev[1]
        outs = self.run_graph(g, inputs)
        self._calls[id(g)] = (inputs, outs)
        return outs


def infer_shapes(model: ModelData, signature: str) -> SymbolicShapes:
    """Symbolic shapes of ``signature``'s graphs, T seeded from its token inputs.

    Raises :class:`SymbolicShapeError` (naming the operator) on an operator
    without a rule, a shape the rules cannot reproduce, or a constant whose
    dependence on T is ambiguous.
    """
    sig = model.signature(signature)
    if sig is None:
        raise SymbolicShapeError(f"no signature '{signature}'")
    seeds = seed_tokens(sig)
    inf = Inference(seeds.t0)
    for t in sig.graph.inputs:
        if id(t) not in seeds.dims:
            if seeds.t0 in t.shape:
                raise SymbolicShapeError(f"graph input {label(t)} {t.shape} is not a named signature input and has a "
                                         f"dim equal to T={seeds.t0} (ambiguous)")
            seeds.dims[id(t)] = [Dim.const(v) for v in t.shape]
    inf.run_graph(sig.graph, [seeds.dims[id(t)] for t in sig.graph.inputs])
    for key, (t, role) in inf.data_constants.items():
        for use in inf.constants.get(key, []):
            if use.depends_on_t:
                raise SymbolicShapeError(f"constant {label(t)} is read as {use.role} {show(use.exprs)} and also as "
                                         "data: rewriting it for another T would change that data")
    return SymbolicShapes(sig, seeds.t0, seeds.seeded, inf.graphs, inf.dims,
                          [u for readings in inf.constants.values() for u in readings], inf.option_uses)
