"""SLICE, STRIDED_SLICE, GATHER, EMBEDDING_LOOKUP, DYNAMIC_UPDATE_SLICE."""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.expr import Dim
from mtpsurgeon.surgery.ir.symbolic.registry import rule


def _part_of(ctx: RuleContext, whole: Dim, size: int, what: str) -> Dim:
    """A part of size ``size`` taken from a T-dependent dim: constant unless T could explain it."""
    t0 = ctx.t0
    for k in range(1, whole.degree + 1):
        if size % t0 ** k == 0:
            ctx.refuse(f"{what}: size {size} of dim {whole} could be constant or {size // t0 ** k}*T^{k} (ambiguous)")
    return Dim.const(size)


@rule("SLICE")
def slice_(ctx: RuleContext):
    x = ctx.dims(0)
    begin = ctx.values(1, "begin")
    size = ctx.values(2, "size")
    if size is None:
        ctx.refuse("slice sizes are not constant")
    if begin is not None:
        ctx.const_values(1, "begin")  # begins are positions, recorded as constants
    out, size_exprs = [], []
    for k, (d, s) in enumerate(zip(x, size)):
        b = 0 if begin is None else begin[k]
        if d.depends_on_t and begin is None:
            ctx.refuse(f"dynamic begin on dim {k} = {d}, which depends on T")
        if d.depends_on_t and b != 0:
            ctx.refuse(f"begin {b} on dim {k} = {d}: constant or relative to T? (ambiguous)")
        if s == -1:
            out.append(d - b); size_exprs.append(Dim.const(-1))
        elif b == 0 and s == d.at(ctx.t0):
            out.append(d); size_exprs.append(d)
        elif d.depends_on_t:
            e = _part_of(ctx, d, s, f"slice of dim {k}")
            out.append(e); size_exprs.append(e)
        else:
            out.append(Dim.const(s)); size_exprs.append(Dim.const(s))
    ctx.interpret(2, size_exprs, "size")
    return [out]


@rule("STRIDED_SLICE")
def strided_slice(ctx: RuleContext):
    o = ctx.options
    if getattr(o, "ellipsisMask", 0) or getattr(o, "newAxisMask", 0) or getattr(o, "offset", False):
        ctx.refuse("ellipsis / new-axis masks and offset mode have no symbolic rule")
    x = ctx.dims(0)
    begin, end = ctx.values(1, "begin"), ctx.values(2, "end")
    strides = ctx.const_values(3, "strides") if len(ctx.node.inputs) > 3 and ctx.input(3) is not None else [1] * len(x)
    if begin is None or end is None:
        ctx.refuse("begin/end are not constant")
    ctx.const_values(1, "begin")
    bm, em, sm = o.beginMask, o.endMask, o.shrinkAxisMask
    out, end_exprs = [], []
    for k, d in enumerate(x):
        b, e, s = begin[k], end[k], strides[k]
        n = d.at(ctx.t0)
        if d.depends_on_t:
            if s != 1:
                ctx.refuse(f"stride {s} on dim {k} = {d}, which depends on T")
            b0 = 0 if bm >> k & 1 else b
            if sm >> k & 1:
                if b0 != 0:
                    ctx.refuse(f"takes index {b0} of dim {k} = {d}: constant or relative to T? (ambiguous)")
                end_exprs.append(Dim.const(e))
                continue
            if b0 != 0:
                ctx.refuse(f"begin {b0} on dim {k} = {d}: constant or relative to T? (ambiguous)")
            if em >> k & 1 or e >= n:
                out.append(d)
                end_exprs.append(d if (not em >> k & 1 and e == n) else Dim.const(e))
            else:
                part = _part_of(ctx, d, e, f"strided slice of dim {k}")
                out.append(part); end_exprs.append(part)
            continue
        end_exprs.append(Dim.const(e))
        if sm >> k & 1:
            continue
        out.append(Dim.const(len(range(*slice(None if bm >> k & 1 else b, None if em >> k & 1 else e, s).indices(n)))))
    ctx.interpret(2, end_exprs, "end")
    return [out]


@rule("GATHER")
def gather(ctx: RuleContext):
    params, idx = ctx.dims(0), ctx.dims(1)
    axis = ctx.axis(int(getattr(ctx.options, "axis", 0)), len(params))
    batch = int(getattr(ctx.options, "batchDims", 0) or 0)
    return [params[:axis] + idx[batch:] + params[axis + 1:]]


@rule("EMBEDDING_LOOKUP")
def embedding_lookup(ctx: RuleContext):
    ids, table = ctx.dims(0), ctx.dims(1)
    return [ids + table[1:]]


@rule("DYNAMIC_UPDATE_SLICE")
def dynamic_update_slice(ctx: RuleContext):
    operand, update = ctx.dims(0), ctx.dims(1)
    ctx.dims(2)
    if len(operand) != len(update):
        ctx.refuse("update and operand differ in rank")
    return [operand]
