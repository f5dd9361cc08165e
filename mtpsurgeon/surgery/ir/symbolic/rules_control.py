"""Operators that call other graphs: STABLEHLO_COMPOSITE, IF, WHILE, CALL_ONCE."""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.registry import rule


@rule("STABLEHLO_COMPOSITE")
def composite(ctx: RuleContext):
    body = ctx.node.called.get("decompositionSubgraphIndex")
    if body is None:
        ctx.refuse("composite without a decomposition graph")
    return ctx.call(body, [ctx.dims(t) for t in ctx.node.inputs if t is not None])


@rule("IF")
def if_(ctx: RuleContext):
    ctx.dims(0)
    args = [ctx.dims(t) for t in ctx.node.inputs[1:] if t is not None]
    then = ctx.call(ctx.node.called["thenSubgraphIndex"], args)
    other = ctx.call(ctx.node.called["elseSubgraphIndex"], args)
    return [[ctx.same(a, b, "IF branch outputs") for a, b in zip(x, y)] for x, y in zip(then, other)]


@rule("WHILE")
def while_(ctx: RuleContext):
    args = [ctx.dims(t) for t in ctx.node.inputs if t is not None]
    ctx.call(ctx.node.called["condSubgraphIndex"], args)
    out = ctx.call(ctx.node.called["bodySubgraphIndex"], args)
    if out != args:
        ctx.refuse("loop body changes its carried shapes")
    return out


@rule("CALL_ONCE")
def call_once(ctx: RuleContext):
    ctx.call(ctx.node.called["initSubgraphIndex"], [])
    return []
