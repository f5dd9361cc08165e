"""Where T sits inside a merged dim: cutting a dim along its row-major layout.

A dim built by merging (a reshape of [4, T] to 4*T, n equal parts
concatenated) records its factors outermost first (:attr:`Dim.layout`).
A reshape that splits it again keeps row-major order, so the factors, not the
values, decide which output dim holds T.
"""
from __future__ import annotations

from mtpsurgeon.surgery.ir.symbolic.expr import Dim, product


def cut_layout(e: Dim, values: list[int], t0: int) -> list[Dim] | None:
    """Split ``e`` over ``values`` along its row-major layout, or None when that cannot decide.

    ``e``'s layout (the factors it was merged from, outermost first) fixes
    what each output dim holds: [2, 2·T] merged is (2, 2, T), so [4, 4] at
    T=4 is [4, T], never [T, 4]. Constant factors may be split; a cut inside
    a T-dependent factor (or an unknown layout) gives None.
    """
    atoms = e.layout
    if atoms is None:
        return None
    queue = list(atoms)
    out: list[Dim] = []
    for v in values:
        group: list[Dim] = []
        size = 1
        while size < v:
            if not queue:
                return None
            a = queue.pop(0)
            av = a.at(t0)
            if v % (size * av) == 0:
                group.append(a)
                size *= av
            elif a.is_const and v % size == 0 and av % (v // size) == 0:
                need = v // size
                group.append(Dim.const(need))
                queue.insert(0, Dim.const(av // need))
                size = v
            else:
                return None
        if size != v:
            return None
        out.append(product(group))
    if any(a.at(t0) != 1 for a in queue):
        return None
    return out
