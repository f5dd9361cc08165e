"""The per-op rules of :class:`~mtpsurgeon.surgery.token_blocks.TokenLifter`: one token's op, for T tokens.

Each rule reads the node of the one-token graph, places the per-token operands so that T blocks do not
mix (T on a dim the op treats independently: a leading unit dim for elementwise ops, a row dim for a
matmul, any dim but the reduced or concatenated ones), and records where T sits in the outputs. A rule
that cannot prove this raises :class:`~mtpsurgeon.surgery.token_blocks.NotLiftable` naming the op.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from mtpsurgeon.formats.tflite.schema import fb
from mtpsurgeon.surgery.ir import Node
from mtpsurgeon.surgery.ir.symbolic.context import label
from mtpsurgeon.surgery.token_blocks import Lifted, NotLiftable, TokenLifter, block_axes, contiguous, prefer

ELEMENTWISE = frozenset({
    "ABS", "CAST", "COS", "SIN", "EXP", "LOG", "RSQRT", "SQRT", "NEG", "TANH", "LOGISTIC", "GELU", "RELU", "RELU6",
    "SQUARE", "FLOOR", "CEIL", "ROUND", "SIGN", "HARD_SWISH", "LEAKY_RELU", "ELU", "LOGICAL_NOT", "QUANTIZE",
    "DEQUANTIZE", "ADD", "SUB", "MUL", "DIV", "POW", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE", "FLOOR_DIV",
    "FLOOR_MOD", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND",
    "LOGICAL_OR", "SELECT_V2",
})
ROW_WISE = frozenset({"SOFTMAX", "LOG_SOFTMAX", "L2_NORMALIZATION"})  #: act on the last dim only
REDUCE = frozenset({"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD"})
LAYOUT = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS"})
#: ops a cache write's start index may pass through from the position input (value-preserving)
INDEX_PATH = frozenset({"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "CAST"})


def _what(n: Node) -> str:
    return f"{n.op} {label(n.outputs[0])}"


def _per_channel(t) -> bool:
    q = t.quantization
    return q is not None and getattr(q, "scale", None) is not None and len(q.scale) > 1


def _const_values(n: Node, k: int) -> list[int]:
    t = n.inputs[k] if k < len(n.inputs) else None
    if t is None or not t.is_constant:
        raise NotLiftable(f"{_what(n)}: operand {k} is not a constant")
    return [int(v) for v in np.asarray(t.numpy()).reshape(-1)]


def elementwise(lf: TokenLifter, n: Node) -> None:
    """Broadcasting elementwise ops: T on a dim where every per-token operand has the output's size and
    every shared operand broadcasts (size 1); broadcasting along the other dims is the same in every block."""
    out = n.outputs[0]
    O, r = list(out.shape), len(out.shape)
    if any(_per_channel(t) for t in (*n.inputs, out) if t is not None):
        raise NotLiftable(f"{_what(n)}: per-channel quantization")
    vals = [None if t is None else lf.val(t) for t in n.inputs]
    aligned = [None if t is None else [1] * (r - len(t.shape)) + list(t.shape) for t in n.inputs]

    def fits(a: int) -> bool:
        for v, A in zip(vals, aligned):
            if v is not None and A[a] != (O[a] if isinstance(v, Lifted) else 1):
                return False
        return True

    cands = [a for a in range(r) if fits(a)]
    if not cands:
        raise NotLiftable(f"{_what(n)}: a per-token operand is broadcast within one token")
    current = [v.axis + r - len(v.shape) for v, A in zip(vals, aligned)
               if isinstance(v, Lifted) and [1] * (r - len(v.shape)) + v.shape == A]
    a = prefer(cands, current, O)
    ins = [None if v is None else lf.as_blocks(v, A, a) if isinstance(v, Lifted) else v
           for v, A in zip(vals, aligned)]
    lf.copy_node(n, ins, [lf.put(out, O, a)])


def fully_connected(lf: TokenLifter, n: Node) -> None:
    x, rest = lf.val(n.inputs[0]), [None if t is None else lf.val(t) for t in n.inputs[1:]]
    if not isinstance(x, Lifted) or any(isinstance(v, Lifted) for v in rest):
        raise NotLiftable(f"{_what(n)}: per-token weights")
    S = list(n.inputs[0].shape)
    keep = bool(getattr(n.options, "keepNumDims", False))
    cands = [a for a in range(len(S) - 1) if keep or contiguous(S, a)]  # without keep_num_dims rows are flattened
    if not cands:
        raise NotLiftable(f"{_what(n)}: input {S} has no row dim for the tokens")
    a = prefer(cands, [x.axis] if x.shape == S else [], S)
    O = list(n.outputs[0].shape)
    if not keep and len(O) != 2:
        raise NotLiftable(f"{_what(n)}: output {O}")
    xin = lf.as_blocks(x, S, a)
    lf.copy_node(n, [xin, *rest], [lf.put(n.outputs[0], O, a if keep else 0)])


def batch_matmul(lf: TokenLifter, n: Node) -> None:
    """Per-token x times a shared y (attention over the caches): the tokens stack along x's rows (inside
    each batch dim, e.g. each KV head)."""
    x, y = lf.val(n.inputs[0]), lf.val(n.inputs[1])
    if not isinstance(x, Lifted) or isinstance(y, Lifted) or getattr(n.options, "adjX", False):
        raise NotLiftable(f"{_what(n)}: only a per-token left operand (not transposed) times a shared one lifts")
    S, O = list(n.inputs[0].shape), list(n.outputs[0].shape)
    if len(S) < 2:
        raise NotLiftable(f"{_what(n)}: a vector operand")
    lf.copy_node(n, [lf.as_blocks(x, S, len(S) - 2), y], [lf.put(n.outputs[0], O, len(O) - 2)])


def row_wise(lf: TokenLifter, n: Node) -> None:
    x, S = lf.val(n.inputs[0]), list(n.inputs[0].shape)
    cands = list(range(len(S) - 1))
    if not cands:
        raise NotLiftable(f"{_what(n)}: input {S}")
    a = prefer(cands, [x.axis] if x.shape == S else [], S)
    lf.copy_node(n, [lf.as_blocks(x, S, a), *[None if t is None else lf.val(t) for t in n.inputs[1:]]],
                [lf.put(n.outputs[0], S, a)])


def concatenation(lf: TokenLifter, n: Node) -> None:
    vals = [lf.val(t) for t in n.inputs]
    if not all(isinstance(v, Lifted) for v in vals):
        raise NotLiftable(f"{_what(n)}: joins per-token and shared values")
    O = list(n.outputs[0].shape)
    c = n.options.axis % len(O)
    cands = [a for a in range(len(O)) if a != c]
    if not cands:
        raise NotLiftable(f"{_what(n)}: no dim besides the concatenated one to hold the tokens")
    a = prefer(cands, [v.axis for v, t in zip(vals, n.inputs) if v.shape == list(t.shape)], O)
    ins = [lf.as_blocks(v, list(t.shape), a) for v, t in zip(vals, n.inputs)]
    lf.copy_node(n, ins, [lf.put(n.outputs[0], O, a)])


def layout(lf: TokenLifter, n: Node) -> None:
    """RESHAPE / SQUEEZE / EXPAND_DIMS of whole blocks (each block's bytes stay); T goes on the last leading
    unit dim."""
    x, O = lf.val(n.inputs[0]), list(n.outputs[0].shape)
    if not O:
        raise NotLiftable(f"{_what(n)}: a scalar per token")
    axes = block_axes(O)
    b = axes[-2] if len(axes) > 1 and O[axes[-1]] != 1 else axes[-1]
    out = lf.put(n.outputs[0], O, b)
    opts = fb.ReshapeOptionsT()
    opts.newShape = list(out.shape)
    lf.emit("RESHAPE", [lf.contiguous_blocks(x), lf.int_const(None, list(out.shape), f"{out.name}/shape")], [out],
            opts)


def transpose(lf: TokenLifter, n: Node) -> None:
    """The same permutation of each block: the dim that holds T moves with its own index."""
    x, O = lf.val(n.inputs[0]), list(n.outputs[0].shape)
    perm = _const_values(n, 1)
    S = list(n.inputs[0].shape)
    a = x.axis if x.shape == S else block_axes(S)[0]
    lf.copy_node(n, [lf.as_blocks(x, S, a), lf.val(n.inputs[1])], [lf.put(n.outputs[0], O, perm.index(a))])


def slice_(lf: TokenLifter, n: Node) -> None:
    x, S, O = lf.val(n.inputs[0]), list(n.inputs[0].shape), list(n.outputs[0].shape)
    begin, size = _const_values(n, 1), _const_values(n, 2)
    cands = [a for a in range(len(S)) if begin[a] == 0 and O[a] == S[a]]
    if not cands:
        raise NotLiftable(f"{_what(n)}: slices every dim that could hold the tokens")
    a = prefer(cands, [x.axis] if x.shape == S else [], S)
    new_size = list(size)
    if new_size[a] != -1:
        new_size[a] = O[a] * lf.T
    ins = [lf.as_blocks(x, S, a), lf.val(n.inputs[1]), lf.int_const(n.inputs[2], new_size, "tokens")]
    lf.copy_node(n, ins, [lf.put(n.outputs[0], O, a)])


def reduce(lf: TokenLifter, n: Node) -> None:
    x, S, O = lf.val(n.inputs[0]), list(n.inputs[0].shape), list(n.outputs[0].shape)
    axes = {v % len(S) for v in _const_values(n, 1)}
    cands = [a for a in range(len(S)) if a not in axes]
    if not cands:
        raise NotLiftable(f"{_what(n)}: reduces every dim that could hold the tokens")
    a = prefer(cands, [x.axis] if x.shape == S else [], S)
    oa = a if getattr(n.options, "keepDims", False) else a - sum(1 for r in axes if r < a)
    lf.copy_node(n, [lf.as_blocks(x, S, a), lf.val(n.inputs[1])], [lf.put(n.outputs[0], O, oa)])


def composite(lf: TokenLifter, n: Node) -> None:
    """STABLEHLO_COMPOSITE: its decomposition body is lifted the same way (once per operand layout)."""
    body = n.called.get("decompositionSubgraphIndex")
    if body is None or len(body.inputs) != len(n.inputs) or len(body.outputs) != len(n.outputs):
        raise NotLiftable(f"{_what(n)}: no decomposition body that matches its operands")
    ins, reps = [], []
    for t in n.inputs:
        v = lf.val(t)
        if isinstance(v, Lifted):
            S = list(t.shape)
            a = v.axis if v.shape == S else block_axes(S)[0]
            ins.append(lf.as_blocks(v, S, a))
            reps.append((a, tuple(S)))
        else:
            ins.append(v)
            reps.append(None)
    key = (id(body), lf.T, tuple(reps))
    if key not in lf.bodies:
        lf.bodies[key] = _lift_body(lf, body, reps)
    graph, out_reps = lf.bodies[key]
    outs = []
    for t, rep, bt in zip(n.outputs, out_reps, graph.outputs):
        if rep is None:
            o = lf.new_tensor(t, bt.shape)
            lf.shared[id(t)] = o
        else:
            o = lf.new_tensor(t, bt.shape)
            lf.lifted[id(t)] = Lifted(o, *rep)
        outs.append(o)
    lf.copy_node(n, ins, outs, called={"decompositionSubgraphIndex": graph})


def _lift_body(lf: TokenLifter, body, reps: list) -> tuple:
    g = lf.model.add_graph(f"{body.name};T{lf.T}" if any(reps) else f"{body.name};verify")
    g.debug_metadata_index = body.debug_metadata_index
    sub = TokenLifter(lf.model, body, g, lf.T, bodies=lf.bodies)
    for bt, rep in zip(body.inputs, reps):
        if rep is None:
            t = sub.new_tensor(bt, bt.shape)
            sub.shared[id(bt)] = t
        else:
            a, S = rep
            t = sub.new_tensor(bt, sub.blocks(list(S), a))
            sub.lifted[id(bt)] = Lifted(t, list(S), a)
        g.inputs.append(t)
    sub.run(RULES)
    out_reps = []
    for bt in body.outputs:
        v = sub.result(bt)
        g.outputs.append(v.tensor if isinstance(v, Lifted) else v)
        out_reps.append((v.shape, v.axis) if isinstance(v, Lifted) else None)
    return g, out_reps


def gather(lf: TokenLifter, n: Node) -> None:
    """GATHER / EMBEDDING_LOOKUP of shared rows (an embedding or RoPE table) by per-token indices: the token
    dim of the indices becomes the matching dim of the output."""
    params, idx = (n.inputs[0], n.inputs[1]) if n.op == "GATHER" else (n.inputs[1], n.inputs[0])
    vp, vi = lf.val(params), lf.val(idx)
    axis = (getattr(n.options, "axis", 0) % len(params.shape)) if n.op == "GATHER" else 0
    if isinstance(vp, Lifted) or not isinstance(vi, Lifted) or getattr(n.options, "batchDims", 0):
        raise NotLiftable(f"{_what(n)}: only shared rows gathered by per-token indices lift")
    S = list(idx.shape)
    if not S:
        raise NotLiftable(f"{_what(n)}: a scalar index per token")
    a = vi.axis if vi.shape == S else block_axes(S)[0]
    xin = lf.as_blocks(vi, S, a)
    ins = [vp, xin] if n.op == "GATHER" else [xin, vp]
    lf.copy_node(n, ins, [lf.put(n.outputs[0], list(n.outputs[0].shape), axis + a)])


def update_slice(lf: TokenLifter, n: Node) -> None:
    """A cache write of one row per token at the position: all T rows written from the first token's start.

    The start index must be a PACK / CONCATENATION of constants and one value that comes from the position
    input through value-preserving ops only: then token k's row goes to start + k (the runtime's verify
    positions are consecutive), the rows stack on the index's position dim.
    """
    cache, upd = lf.val(n.inputs[0]), lf.val(n.inputs[1])
    if isinstance(cache, Lifted) or not isinstance(upd, Lifted):
        raise NotLiftable(f"{_what(n)}: only a per-token update of a shared tensor lifts")
    p = _position_slot(lf, n)
    U = list(n.inputs[1].shape)
    if U[p] != 1:
        raise NotLiftable(f"{_what(n)}: writes {U[p]} rows per token on the position dim {p}")
    rows = lf.as_blocks(upd, U, p)
    out = lf.new_tensor(n.outputs[0], n.outputs[0].shape)
    lf.copy_node(n, [cache, rows, lf.first_row(n.inputs[2])], [out])
    lf.shared[id(n.outputs[0])] = out


def _position_slot(lf: TokenLifter, n: Node) -> int:
    idx = n.inputs[2]
    pack = lf._producer.get(id(idx))
    if pack is None or pack.op not in ("PACK", "CONCATENATION") or getattr(pack.options, "axis", 0) != 0:
        raise NotLiftable(f"{_what(n)}: its start index is not a PACK/CONCATENATION of scalars")
    varying = [k for k, e in enumerate(pack.inputs) if not lf.is_data(e)]
    if len(varying) != 1 or int(np.prod(pack.inputs[varying[0]].shape)) != 1:
        raise NotLiftable(f"{_what(n)}: its start index varies in {len(varying)} places")
    t = pack.inputs[varying[0]]
    while t is not lf.position:
        prod = lf._producer.get(id(t))
        live = [] if prod is None else [x for x in prod.inputs if x is not None and not lf.is_data(x)]
        if prod is None or prod.op not in INDEX_PATH or len(live) != 1:
            raise NotLiftable(f"{_what(n)}: its start index is not the position input itself "
                              f"({'an input' if prod is None else prod.op} on the way)")
        t = live[0]
    return varying[0]


RULES: dict[str, Callable[[TokenLifter, Node], None]] = {
    **{op: elementwise for op in ELEMENTWISE}, **{op: row_wise for op in ROW_WISE},
    **{op: reduce for op in REDUCE}, **{op: layout for op in LAYOUT},
    "FULLY_CONNECTED": fully_connected, "BATCH_MATMUL": batch_matmul, "CONCATENATION": concatenation,
    "TRANSPOSE": transpose, "SLICE": slice_, "STABLEHLO_COMPOSITE": composite,
    "DYNAMIC_UPDATE_SLICE": update_slice, "GATHER": gather, "EMBEDDING_LOOKUP": gather,
}
