"""Output shape and dtype inference for the operator families recipes commonly use."""
from __future__ import annotations

from typing import Any

import numpy as np

from mtpsurgeon.formats.tflite.dtypes import BY_NAME, DTYPES
from mtpsurgeon.surgery.ir import Tensor

_ELEMENTWISE = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "POW", "SQUARED_DIFFERENCE", "FLOOR_DIV",
                "FLOOR_MOD", "LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL",
                "LOGICAL_AND", "LOGICAL_OR"}
_COMPARE = {"LESS", "LESS_EQUAL", "GREATER", "GREATER_EQUAL", "EQUAL", "NOT_EQUAL", "LOGICAL_AND", "LOGICAL_OR"}
_UNARY = {"RSQRT", "SQRT", "TANH", "GELU", "SOFTMAX", "LOG_SOFTMAX", "LOGISTIC", "EXP", "LOG", "NEG", "ABS", "RELU",
          "RELU6", "SIN", "COS", "SQUARE", "FLOOR", "CEIL", "ROUND", "HARD_SWISH", "LOGICAL_NOT", "SIGN"}
_REDUCE = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"}


def _broadcast(shapes: list[list[int]], err) -> list[int]:
    try:
        return [int(d) for d in np.broadcast_shapes(*[tuple(s) for s in shapes])]
    except ValueError:
        raise err(f"shapes {shapes} do not broadcast") from None


def _const_ints(t: Tensor | None, what: str, err) -> list[int]:
    if t is None or not t.is_constant:
        raise err(f"{what} must be a constant to infer the output shape (or give 'shape')")
    return [int(x) for x in np.asarray(t.numpy()).reshape(-1)]


def infer_shapes(op: str, ins: list[Tensor | None], opts: Any, n_out: int, err) -> list[tuple[list[int], int]] | None:
    """(shape, dtype) of each output for the operators recipes commonly use; None when not inferable."""
    x = ins[0] if ins else None
    if x is None:
        return None
    if op in _ELEMENTWISE and len(ins) >= 2 and ins[1] is not None:
        dt = BY_NAME["BOOL"].code if op in _COMPARE else x.dtype
        return [(_broadcast([x.shape, ins[1].shape], err), dt)]
    if op == "SELECT_V2" and len(ins) == 3:
        return [(_broadcast([t.shape for t in ins], err), ins[1].dtype)]
    if op in _UNARY:
        return [(list(x.shape), x.dtype)]
    if op == "DEQUANTIZE":
        return [(list(x.shape), BY_NAME["FLOAT32"].code)]
    if op in _REDUCE:
        axes = {a % len(x.shape) for a in _const_ints(ins[1] if len(ins) > 1 else None, "the axis", err)} if x.shape else set()
        keep = bool(getattr(opts, "keepDims", False))
        shape = [1 if i in axes else d for i, d in enumerate(x.shape)] if keep else \
            [d for i, d in enumerate(x.shape) if i not in axes]
        return [(shape, x.dtype)]
    if op == "RESHAPE":
        new = _const_ints(ins[1] if len(ins) > 1 else None, "the new shape", err)
        n = int(np.prod(x.shape))
        if -1 in new:
            rest = int(np.prod([d for d in new if d != -1]))
            new = [n // rest if d == -1 else d for d in new]
        if int(np.prod(new)) != n:
            raise err(f"cannot reshape {list(x.shape)} ({n} elements) to {new}")
        return [(new, x.dtype)]
    if op == "TRANSPOSE":
        perm = _const_ints(ins[1] if len(ins) > 1 else None, "the permutation", err)
        return [([x.shape[p] for p in perm], x.dtype)]
    if op == "FULLY_CONNECTED":
        w = ins[1]
        if w is None or len(w.shape) != 2:
            raise err("the weights must be 2-D [out, in]")
        k = x.shape[-1] if x.shape else 1
        if w.shape[1] != k:
            raise err(f"input {list(x.shape)} and weights {list(w.shape)} disagree on the inner size")
        out_dt = BY_NAME["FLOAT32"].code if DTYPES[x.dtype].is_float else x.dtype
        if getattr(opts, "keepNumDims", False):
            return [(list(x.shape[:-1]) + [w.shape[0]], out_dt)]
        return [([int(np.prod(x.shape)) // k, w.shape[0]], out_dt)]
    if op == "BATCH_MATMUL":
        y = ins[1]
        a, bb = list(x.shape), list(y.shape)
        if getattr(opts, "adjX", False):
            a[-2], a[-1] = a[-1], a[-2]
        if getattr(opts, "adjY", False):
            bb[-2], bb[-1] = bb[-1], bb[-2]
        if a[-1] != bb[-2]:
            raise err(f"{list(x.shape)} × {list(y.shape)} (adjX={getattr(opts, 'adjX', False)}, "
                      f"adjY={getattr(opts, 'adjY', False)}) disagree on the inner size")
        batch = _broadcast([a[:-2], bb[:-2]], err)
        return [(batch + [a[-2], bb[-1]], x.dtype)]
    if op == "CONCATENATION":
        axis = int(getattr(opts, "axis", 0)) % len(x.shape)
        shape = list(x.shape)
        shape[axis] = sum(t.shape[axis] for t in ins)
        return [(shape, x.dtype)]
    return None
