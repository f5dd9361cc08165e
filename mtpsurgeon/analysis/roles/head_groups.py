"""Which KV head each query head of a block attends with (grouped-query attention).

transformers' ``repeat_kv`` gives query head ``h`` KV head ``h // (heads / kv_heads)`` (consecutive
groups); a graph that tiles the KV heads instead (``h % kv_heads``) computes something else. Read by
structure: head labels are carried through the operators that only move values (reshape, transpose,
broadcast, tile, slice, concatenation, element-wise arithmetic) from the normed query and from the K cache
input to the score matmul, where each batch of the matmul pairs query heads with one KV head.
"""
from __future__ import annotations

import numpy as np

from mtpsurgeon.analysis.roles.dataflow import Dataflow
from mtpsurgeon.formats.tflite.records import OperatorRecord

_SAME = frozenset({"DEQUANTIZE", "QUANTIZE", "CAST", "NEG"})
_ELEMENTWISE = frozenset({"MUL", "ADD", "SUB", "DIV"})


def head_to_kv(df: Dataflow, query_start: int, key_input: int, scores: OperatorRecord, query: int,
               heads: int, head_dim: int) -> list[int] | None:
    """``[kv head of query head 0, of head 1, ...]``, or None where the graph's moves are not followed."""
    if scores.op_name != "BATCH_MATMUL" or len(df.tensor(key_input).shape) != 4:
        return None
    key = next((i for i in df.data_inputs(scores) if i != query), None)
    q_shape = df.tensor(query_start).shape
    n = int(np.prod(q_shape))
    if key is None or n != heads * head_dim:
        return None
    kv_shape = df.tensor(key_input).shape
    lq = _carry(df, query_start, (np.arange(n) // head_dim).reshape(q_shape), query)
    lk = _carry(df, key_input, np.broadcast_to(np.arange(kv_shape[1]).reshape(1, -1, 1, 1), kv_shape), key)
    if lq is None or lk is None or lq.ndim < 3 or lk.ndim < 3:
        return None
    try:
        batch = np.broadcast_shapes(lq.shape[:-2], lk.shape[:-2])
    except ValueError:
        return None
    lq, lk = (np.broadcast_to(a, batch + a.shape[-2:]) for a in (lq, lk))
    pairs: dict[int, set[int]] = {}
    for b in np.ndindex(*batch):
        kvs = set(np.unique(lk[b]).tolist())
        if len(kvs) != 1:
            return None
        for h in np.unique(lq[b]).tolist():
            pairs.setdefault(int(h), set()).update(kvs)
    if sorted(pairs) != list(range(heads)) or any(len(v) != 1 for v in pairs.values()):
        return None
    return [pairs[h].pop() for h in range(heads)]


def _carry(df: Dataflow, source: int, labels: np.ndarray, sink: int) -> np.ndarray | None:
    """``labels`` (laid out like tensor ``source``) as they arrive at tensor ``sink``, or None."""
    known = {source: np.asarray(labels)}
    for op in df.between(source, sink):
        out = _move(df, op, known)
        if out is None:
            return known.get(sink)
        known[op.outputs[0]] = out
    return known.get(sink)


def _move(df: Dataflow, op: OperatorRecord, known: dict[int, np.ndarray]) -> np.ndarray | None:
    """What ``op`` does to the labels of its inputs (None: not a move followed here)."""
    ins = [known.get(i) for i in op.inputs if i >= 0]
    first = ins[0] if ins else None
    out_shape = tuple(df.tensor(op.outputs[0]).shape)
    const = lambda k: np.asarray(df.model.tensor_array(df.tensor(df.const_source(op.inputs[k])))).reshape(-1)  # noqa: E731
    try:
        if op.op_name in _SAME and first is not None:
            return first
        if op.op_name == "RESHAPE" and first is not None and len(op.inputs) > 1 and df.is_const(op.inputs[1]):
            return first.reshape(const(1).tolist())  # the runtime's shape: the operand, not the stored one
        if op.op_name in ("RESHAPE", "EXPAND_DIMS", "SQUEEZE") and first is not None:
            return first.reshape(out_shape)
        if op.op_name == "TRANSPOSE" and first is not None:
            return np.transpose(first, const(1).tolist())
        if op.op_name == "BROADCAST_TO" and first is not None:
            return np.broadcast_to(first, tuple(const(1).tolist()))
        if op.op_name == "TILE" and first is not None:
            return np.tile(first, const(1).tolist())
        if op.op_name == "SLICE" and first is not None:
            begin, size = const(1), const(2)
            return first[tuple(slice(b, None if s < 0 else b + s) for b, s in zip(begin, size))]
        if op.op_name == "CONCATENATION" and all(a is not None for a in ins):
            return np.concatenate(ins, axis=int(df.model.operator_options(df.sg, op.index).axis))
        if op.op_name in _ELEMENTWISE:
            carried = [a for a in ins if a is not None]
            if carried and all(np.array_equal(np.broadcast_to(a, out_shape), np.broadcast_to(carried[0], out_shape))
                               for a in carried):
                return np.broadcast_to(carried[0], out_shape)
    except (ValueError, IndexError, AttributeError, TypeError):
        return None
    return None
