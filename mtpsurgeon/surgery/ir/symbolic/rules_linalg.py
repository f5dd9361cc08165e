"""FULLY_CONNECTED, BATCH_MATMUL, reductions, ARG_MAX/ARG_MIN."""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.expr import Dim, product
from mtpsurgeon.surgery.ir.symbolic.registry import rule


@rule("FULLY_CONNECTED")
def fully_connected(ctx: RuleContext):
    x, w = ctx.dims(0), ctx.dims(1)
    if ctx.input(2) is not None:
        ctx.dims(2)
    units, k = w[0], w[-1]
    ctx.same(x[-1], k, "input depth vs weights")
    if getattr(ctx.options, "keepNumDims", False):
        return [x[:-1] + [units]]
    return [[product(x[:-1]), units]]


@rule("BATCH_MATMUL")
def batch_matmul(ctx: RuleContext):
    x, y = ctx.dims(0), ctx.dims(1)
    if len(x) < 2 or len(y) < 2:
        ctx.refuse("operands need rank >= 2")
    o = ctx.options
    xr, xc = (x[-1], x[-2]) if getattr(o, "adjX", False) else (x[-2], x[-1])
    yr, yc = (y[-1], y[-2]) if getattr(o, "adjY", False) else (y[-2], y[-1])
    ctx.same(xc, yr, "contracted dims")
    return [ctx.broadcast(x[:-2], y[:-2]) + [xr, yc]]


@rule("MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL")
def reduce(ctx: RuleContext):
    x = ctx.dims(0)
    axes = {ctx.axis(a, len(x)) for a in ctx.const_values(1, "axes")}
    if getattr(ctx.options, "keepDims", False):
        return [[Dim.const(1) if k in axes else d for k, d in enumerate(x)]]
    return [[d for k, d in enumerate(x) if k not in axes]]


@rule("ARG_MAX", "ARG_MIN")
def arg_reduce(ctx: RuleContext):
    x = ctx.dims(0)
    (axis,) = ctx.const_values(1, "axis")
    a = ctx.axis(axis, len(x))
    return [x[:a] + x[a + 1:]]
