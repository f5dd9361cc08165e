"""The constant factor a block's graph multiplies its attention scores by.

transformers' Gemma 4 attention scales scores by exactly 1.0 (the q norm takes the place of
``1/sqrt(head_dim)``), so a drafter whose graph multiplies the normed query or the scores by another
constant computes something a ``gemma4_assistant`` checkpoint does not. Found by structure: a scalar
``MUL``/``DIV`` that every path from the normed query to the score matmul (or from the scores to the
softmax) passes through, and the softmax's ``beta`` (converters fuse a scale into it). A scalar on only some paths (RoPE's rotate-half negation) scales nothing.
The key side is not searched: there a scalar is the KV cache's own dequantization.
"""
from __future__ import annotations

from mtpsurgeon.analysis.roles.dataflow import Dataflow
from mtpsurgeon.analysis.roles.patterns import scalar_value
from mtpsurgeon.formats.tflite.records import OperatorRecord


def score_scale(df: Dataflow, query_start: int, scores: OperatorRecord, query: int) -> float:
    """Product of the scalars on every path ``query_start`` → ``query`` (an input of ``scores``) and
    ``scores`` → its softmax; 1.0 when there are none."""
    factor = _dominating_factor(df, query_start, query)
    softmax = df.softmax_after(scores)
    if softmax is not None:
        factor *= _dominating_factor(df, scores.outputs[0], softmax.inputs[0])
        beta = getattr(df.model.operator_options(df.sg, softmax.index), "beta", None)  # softmax(beta · x)
        factor *= 1.0 if beta is None else float(beta)
    return factor


def _dominating_factor(df: Dataflow, source: int, sink: int) -> float:
    path = df.between(source, sink)
    factor = 1.0
    for op in path:
        c = scalar_value(df, op) if op.op_name in ("MUL", "DIV") else None
        if c is None or (op.op_name == "DIV" and df.const_inputs(op) != [op.inputs[1]]):
            continue  # not a constant factor (c / x is no scale)
        if not _reaches(df, path, source, sink, skip=op.index):  # every path passes through it
            factor = factor * c if op.op_name == "MUL" else factor / c
    return factor


def _reaches(df: Dataflow, path: list[OperatorRecord], source: int, sink: int, skip: int) -> bool:
    """Is ``sink`` computed from ``source`` by the operators of ``path`` other than ``skip``?"""
    reached = {source}
    for op in path:
        if op.index != skip and any(i in reached for i in op.inputs):
            reached.update(o for o in op.outputs if o >= 0)
    return sink in reached
