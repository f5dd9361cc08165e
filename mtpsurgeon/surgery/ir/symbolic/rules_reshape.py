"""RESHAPE (with product factoring), EXPAND_DIMS, SQUEEZE, BROADCAST_TO."""
from __future__ import annotations

from itertools import product as cartesian

from mtpsurgeon.surgery.ir.symbolic.context import RuleContext
from mtpsurgeon.surgery.ir.symbolic.expr import Dim, product, show
from mtpsurgeon.surgery.ir.symbolic.layout import cut_layout
from mtpsurgeon.surgery.ir.symbolic.registry import rule


def _split_monomial(ctx: RuleContext, e: Dim, values: list[int]) -> list[Dim]:
    """Spread ``e`` over output dims with stored ``values``; exactly one way or refuse.

    First by ``e``'s layout (:func:`cut_layout`). Else a split that reproduces,
    value for value, the factors an earlier reshape merged into ``e`` undoes
    that merge ([T, 256] -> 256*T -> [T, 256]); else the monomial must split
    over the values in exactly one way.
    """
    by_layout = cut_layout(e, values, ctx.t0)
    if by_layout is not None:
        return by_layout
    merged = ctx.merged_factors(e)
    if merged is not None and [d.at(ctx.t0) for d in merged] == values:
        return list(merged)
    mono = e.as_monomial()
    if mono is None:
        ctx.refuse(f"cannot split {e} over dims {values}: not a single term")
    coeff, power = mono
    t0 = ctx.t0
    found = []
    for ks in cartesian(range(power + 1), repeat=len(values)):
        if sum(ks) != power:
            continue
        if all(v % (t0 ** k) == 0 for v, k in zip(values, ks)):
            found.append([Dim.monomial(v // t0 ** k, k) if k else Dim.const(v) for v, k in zip(values, ks)])
    if len(found) != 1:
        alts = " or ".join(show(f) for f in found) or "nothing"
        ctx.refuse(f"splitting {e} over dims {values} is ambiguous: {alts}")
    return found[0]


def factor(ctx: RuleContext, in_dims: list[Dim], out_values: list[int]) -> list[Dim]:
    """Output dims of a reshape of ``in_dims`` to ``out_values`` (stored, at T = t0).

    Dims are grouped as the finest split/merge of adjacent dims whose products
    agree at t0 (the layout a reshape of row-major data preserves); a group's
    T-dependence goes to its one non-unit output dim, or is split uniquely.
    """
    t0 = ctx.t0
    out: list[Dim | None] = [Dim.const(1) if v == 1 else None for v in out_values]
    a = []
    for d in in_dims:
        v = d.at(t0)
        if v <= 0:
            ctx.refuse(f"input dim {d} is {v} at T={t0}")
        if v == 1 and d.depends_on_t:
            ctx.refuse(f"input dim {d} is 1 at T={t0}: cannot be told apart from a unit dim")
        if v != 1:
            a.append(d)
    b = [j for j, v in enumerate(out_values) if v != 1]
    i = j = 0
    while i < len(a) or j < len(b):
        if i >= len(a) or j >= len(b):
            ctx.refuse(f"reshape {show(in_dims)} -> {out_values}: element counts differ")
        ga, gb = [a[i]], [b[j]]
        pa, pb = a[i].at(t0), out_values[b[j]]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb and i < len(a):
                ga.append(a[i]); pa *= a[i].at(t0); i += 1
            elif pb < pa and j < len(b):
                gb.append(b[j]); pb *= out_values[b[j]]; j += 1
            else:
                ctx.refuse(f"reshape {show(in_dims)} -> {out_values}: element counts differ")
        e = product(ga)
        if len(ga) > 1 and len(gb) == 1 and e.depends_on_t:
            ctx.record_merge(e, ga)
        if e.is_const:
            for k in gb:
                out[k] = Dim.const(out_values[k])
        elif len(gb) == 1:
            out[gb[0]] = e
        else:
            for k, d in zip(gb, _split_monomial(ctx, e, [out_values[k] for k in gb])):
                out[k] = d
    return [d if d is not None else Dim.const(1) for d in out]


@rule("RESHAPE")
def reshape(ctx: RuleContext):
    x = ctx.dims(0)
    target = ctx.node.outputs[0]
    out = factor(ctx, x, list(target.shape))
    shape = ctx.values(1, "shape") if len(ctx.node.inputs) > 1 else None
    if shape is not None:
        if len(shape) != len(out) or any(s not in (-1, o.at(ctx.t0)) for s, o in zip(shape, out)):
            ctx.refuse(f"shape operand {shape} disagrees with the output shape {list(target.shape)}")
        ctx.interpret(1, [Dim.const(-1) if s == -1 else o for s, o in zip(shape, out)], "shape")
    new_shape = getattr(ctx.options, "newShape", None)
    if new_shape is not None and len(new_shape):
        ns = [int(v) for v in new_shape]
        if len(ns) != len(out) or any(s not in (-1, o.at(ctx.t0)) for s, o in zip(ns, out)):
            ctx.refuse(f"ReshapeOptions.newShape {ns} disagrees with the output shape {list(target.shape)}")
        ctx.interpret_option("newShape", [Dim.const(-1) if s == -1 else o for s, o in zip(ns, out)])
    return [out]


@rule("EXPAND_DIMS")
def expand_dims(ctx: RuleContext):
    x = ctx.dims(0)
    (axis,) = ctx.const_values(1, "axis")
    a = axis + len(x) + 1 if axis < 0 else axis
    return [x[:a] + [Dim.const(1)] + x[a:]]


@rule("SQUEEZE")
def squeeze(ctx: RuleContext):
    x = ctx.dims(0)
    axes = [ctx.axis(int(a), len(x)) for a in (getattr(ctx.options, "squeezeDims", None) or [])]
    if not axes:
        axes = [k for k, d in enumerate(x) if d.at(ctx.t0) == 1]
    for k in axes:
        if x[k] != Dim.const(1):
            ctx.refuse(f"squeezes dim {k} = {x[k]}, which is not the constant 1")
    return [[d for k, d in enumerate(x) if k not in axes]]


@rule("BROADCAST_TO")
def broadcast_to(ctx: RuleContext):
    x = ctx.dims(0)
    shape = ctx.values(1, "shape")
    if shape is None:
        shape = list(ctx.node.outputs[0].shape)
    pad = len(shape) - len(x)
    if pad < 0:
        ctx.refuse("target rank is below the input rank")
    out = []
    for k, v in enumerate(shape):
        d = x[k - pad] if k >= pad else Dim.const(1)
        if d == Dim.const(1):
            out.append(Dim.const(v))
        elif d.at(ctx.t0) == v:
            out.append(d)
        else:
            ctx.refuse(f"cannot broadcast {show(x)} to {shape}")
    ctx.interpret(1, out, "shape")
    return [out]

