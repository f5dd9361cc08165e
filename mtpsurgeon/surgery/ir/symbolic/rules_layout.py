"""Layout operators: TRANSPOSE, CONCATENATION, PACK/UNPACK, SPLIT, TILE, PAD, SHAPE."""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.expr import Dim, product
from mtpsurgeon.surgery.ir.symbolic.registry import rule


@rule("TRANSPOSE")
def transpose(ctx: RuleContext):
    x = ctx.dims(0)
    perm = ctx.const_values(1, "permutation")
    if sorted(perm) != list(range(len(x))):
        ctx.refuse(f"permutation {perm} does not fit rank {len(x)}")
    return [[x[p] for p in perm]]


@rule("CONCATENATION")
def concatenation(ctx: RuleContext):
    parts = [ctx.dims(t) for t in ctx.node.inputs if t is not None]
    rank = len(parts[0])
    axis = ctx.axis(int(ctx.options.axis), rank)
    out = list(parts[0])
    for p in parts[1:]:
        if len(p) != rank:
            ctx.refuse("operands differ in rank")
        for k in range(rank):
            out[k] = out[k] + p[k] if k == axis else ctx.same(out[k], p[k], f"dim {k} of concatenated operands")
    along = [p[axis] for p in parts]
    if along[0].depends_on_t and all(d == along[0] and d.same_layout(along[0]) for d in along):
        out[axis] = product([Dim.const(len(parts)), along[0]])  # n equal parts: layout (n, part)
    return [out]


@rule("PACK")
def pack(ctx: RuleContext):
    parts = [ctx.dims(t) for t in ctx.node.inputs if t is not None]
    first = parts[0]
    for p in parts[1:]:
        if len(p) != len(first):
            ctx.refuse("operands differ in rank")
        first = [ctx.same(a, b, "packed operands") for a, b in zip(first, p)]
    axis = int(ctx.options.axis)
    axis = axis + len(first) + 1 if axis < 0 else axis
    return [first[:axis] + [Dim.const(len(parts))] + first[axis:]]


@rule("UNPACK")
def unpack(ctx: RuleContext):
    x = ctx.dims(0)
    axis = ctx.axis(int(ctx.options.axis), len(x))
    if x[axis].depends_on_t:
        ctx.refuse(f"unpacks along dim {x[axis]}, which depends on T (the output count would change)")
    return [x[:axis] + x[axis + 1:] for _ in ctx.node.outputs]


def _split_dims(ctx: RuleContext, x: list[Dim], axis: int, n: int) -> list[list[Dim]]:
    d = x[axis].exact_div(n)
    if d is None:
        ctx.refuse(f"dim {x[axis]} does not split evenly in {n}")
    return [x[:axis] + [d] + x[axis + 1:] for _ in range(n)]


@rule("SPLIT")
def split(ctx: RuleContext):
    (axis,) = ctx.const_values(0, "axis")
    x = ctx.dims(1)
    return _split_dims(ctx, x, ctx.axis(axis, len(x)), len(ctx.node.outputs))


@rule("SPLIT_V")
def split_v(ctx: RuleContext):
    x = ctx.dims(0)
    sizes = ctx.const_values(1, "size_splits")
    (axis,) = ctx.const_values(2, "axis")
    axis = ctx.axis(axis, len(x))
    if x[axis].depends_on_t:
        ctx.refuse(f"splits dim {x[axis]}, which depends on T, into constant sizes {sizes}")
    return [x[:axis] + [Dim.const(s)] + x[axis + 1:] for s in sizes]


@rule("TILE")
def tile(ctx: RuleContext):
    x = ctx.dims(0)
    mult = ctx.const_values(1, "multiples")
    return [[d * m for d, m in zip(x, mult)]]


@rule("PAD", "PADV2", "MIRROR_PAD")
def pad(ctx: RuleContext):
    x = ctx.dims(0)
    p = ctx.const_values(1, "paddings")
    if len(p) != 2 * len(x):
        ctx.refuse(f"paddings {p} do not fit rank {len(x)}")
    return [[d + p[2 * k] + p[2 * k + 1] for k, d in enumerate(x)]]


@rule("SHAPE")
def shape(ctx: RuleContext):
    return [[Dim.const(len(ctx.dims(0)))]]
