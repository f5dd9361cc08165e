"""Structural patterns the role recogniser looks for: RMS norms, soft-caps, RoPE tables."""
from __future__ import annotations

import numpy as np

from mtpsurgeon.analysis.roles.dataflow import Dataflow
from mtpsurgeon.formats.tflite.records import OperatorRecord

#: Element-wise non-linearities that mark the gate branch of a gated MLP.
NONLINEAR = frozenset({"GELU", "TANH", "LOGISTIC", "ERF", "POW", "HARD_SWISH", "RELU", "SILU"})


def is_vector_shape(shape: tuple[int, ...]) -> bool:
    """[n], [1, n], [1, 1, n]: one value per feature, n > 1."""
    return bool(shape) and shape[-1] > 1 and all(d == 1 for d in shape[:-1])


def is_inverse_frequency_table(values: np.ndarray) -> bool:
    """RoPE inverse frequencies by their values: 1, r, r², ... (0 < r < 1), then zeros (unrotated dims)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    k = int(np.count_nonzero(v))
    if v.size < 2 or k < 2 or np.any(v[k:]) or abs(v[0] - 1.0) > 1e-6:
        return False
    ratios = v[1:k] / v[: k - 1]
    return bool(0 < ratios[0] < 1 and np.allclose(ratios, ratios[0], rtol=1e-3))


def norm_scale(df: Dataflow, op: OperatorRecord) -> int | None:
    """If ``op`` scales an RMS-normalised value by a learned vector, that vector's index.

    Recognised: ``MUL(x * rsqrt(mean(x^2) + eps), w)`` in either operand order
    and association (``MUL(x, rsqrt(...) * w)``), ``w`` a constant vector.
    """
    if op.op_name != "MUL" or len(op.inputs) != 2:
        return None
    consts = df.const_inputs(op)
    if len(consts) != 1:
        return None
    w = df.const_source(consts[0])
    if not is_vector_shape(df.tensor(w).shape) or not df.tensor(w).dtype.is_float:
        return None
    other = next(i for i in op.inputs if i != consts[0])
    if df.ancestors_have(other, {"RSQRT"}, 3):
        return w
    for nxt in df.consumers.get(op.outputs[0], []):
        if nxt.op_name == "MUL" and any(df.ancestors_have(i, {"RSQRT"}, 2) for i in nxt.inputs if i != op.outputs[0]):
            return w
    return None


def nearest_norm(df: Dataflow, start: int, forward: bool) -> tuple[OperatorRecord, int] | None:
    """The closest norm-scale application from tensor ``start``, not crossing a matmul."""
    best = None
    for op in df.walk([start], forward, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)):
        w = norm_scale(df, op)
        if w is not None and (best is None or (op.index < best[0].index if forward else op.index > best[0].index)):
            best = (op, w)
    return best


def weight_matmuls(df: Dataflow, start: int, forward: bool) -> list[OperatorRecord]:
    """Weight matmuls reached from ``start`` without crossing another matmul, nearest first."""
    found = [op for op in df.walk([start], forward, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o))
             if df.is_weight_matmul(op)]
    return sorted(found, key=lambda o: o.index, reverse=not forward)


def data_matmuls(df: Dataflow, start: int, forward: bool) -> list[OperatorRecord]:
    found = [op for op in df.walk([start], forward, stop=lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o))
             if df.is_data_matmul(op)]
    return sorted(found, key=lambda o: o.index, reverse=not forward)


def softcap(df: Dataflow, head_out: int, logits: int) -> tuple[float | None, bool | None]:
    """(cap, folded) of ``cap * tanh(z / cap)`` between the LM head and the logits.

    ``folded`` is True when no division by the cap precedes the TANH, i.e. the
    exporter folded ``1/cap`` into the LM-head weights.
    """
    ops = [op for op in df.walk([head_out], True) if op.index <= df.producer[logits].index] if logits in df.producer else []
    tanh = [op for op in ops if op.op_name == "TANH"]
    if not tanh:
        return None, None
    t = tanh[0]
    cap = None
    for op in ops:
        if op.index > t.index and op.op_name == "MUL":
            c = scalar_value(df, op)
            if c is not None:
                cap = c
    folded = True
    for op in ops:
        if op.index < t.index and op.op_name in ("DIV", "MUL"):
            c = scalar_value(df, op)
            if c is not None and cap and (abs(c * cap - 1) < 1e-4 if op.op_name == "MUL" else abs(c - cap) < 1e-4):
                folded = False
    return cap, folded


def scalar_value(df: Dataflow, op: OperatorRecord) -> float | None:
    """The float scalar constant ``op`` combines its input with, if any."""
    consts = df.const_inputs(op)
    if len(consts) != 1:
        return None
    t = df.tensor(df.const_source(consts[0]))
    if t.num_elements != 1 or not t.dtype.is_float:
        return None
    return float(np.asarray(df.model.tensor_array(t), dtype=np.float64).reshape(-1)[0])


def rms_epsilon_sites(df: Dataflow) -> list[tuple[float, int | None]]:
    """Per RMS norm, the epsilon it adds before its ``RSQRT`` (``rsqrt(mean(x²) + eps)``) and its scale vector."""
    found = []
    for op in df.model.subgraphs[df.sg].operators:
        if op.op_name != "RSQRT":
            continue
        t = op.inputs[0]
        while t in df.producer and df.producer[t].op_name in ("RESHAPE", "CAST", "SQUEEZE", "EXPAND_DIMS"):
            t = df.producer[t].inputs[0]
        add = df.producer.get(t)
        value = scalar_value(df, add) if add is not None and add.op_name == "ADD" else None
        if value is not None:
            found.append((float(np.float32(value)), _scale_after(df, op.outputs[0])))
    return found


def _scale_after(df: Dataflow, rsqrt: int) -> int | None:
    """The learned vector scaling the value normed by ``rsqrt`` (within two multiplications)."""
    for op in df.consumers.get(rsqrt, []):
        for cand in (op, *df.consumers.get(op.outputs[0], [])):
            w = norm_scale(df, cand)
            if w is not None:
                return w
    return None


def rope_params(df: Dataflow, tables: list[int], head_dim: int | None) -> dict | None:
    """RoPE base (and rotated fraction) recovered from its tables, or None.

    ``inv_freq[j] = theta^(-2j/hd)``: read from a decreasing vector starting at 1
    (inverse frequencies), an increasing one (timescales), or row 1 of a
    ``cos(pos * inv_freq)`` table (row 0 all ones). Frequencies that are zero
    (Gemma 4's "proportional" RoPE rotates only a fraction of each head) give
    ``partial_rotary_factor``.
    """
    for t in tables:
        rec = df.tensor(t)
        a = np.asarray(df.model.tensor_array(rec), dtype=np.float64)
        half = a.shape[-1] if a.ndim else 0
        hd = head_dim or 2 * half
        if half < 2 or hd < 4:
            continue
        if a.size == half:  # a vector of frequencies or timescales
            v = a.reshape(-1)
            if abs(v[0] - 1) > 1e-6 or v[1] <= 0:
                continue
            freqs = v if v[1] < 1 else np.where(np.isfinite(v) & (v > 0), 1 / np.where(v > 0, v, 1), 0)
        else:
            rows = a.reshape(-1, half)
            if rows.shape[0] < 2 or not np.allclose(rows[0], 1.0, atol=1e-6):
                continue  # a sin table, or not positions from 0
            freqs = np.arccos(np.clip(rows[1], -1, 1))
        inv = float(freqs[1])
        if 0 < inv < 1:
            out = {"theta": float(f"{inv ** (-hd / 2.0):.5g}")}  # float32 tables: 5 significant digits
            rotated = int(np.count_nonzero(freqs > 1e-12))
            if rotated < len(freqs):  # the fraction of frequencies that rotate (tables of hd/2 or duplicated hd)
                out["partial_rotary_factor"] = round(rotated / len(freqs), 6)
            return out
    return None


#: comparison → (which input is the key ramp, 1 if the bound is inclusive)
_COMPARE = {"GREATER": (0, 0), "GREATER_EQUAL": (0, 1), "LESS": (1, 0), "LESS_EQUAL": (1, 1)}


def sliding_window(df: Dataflow, scores: OperatorRecord) -> int | None:
    """The window a block's attention mask enforces, if the graph computes one.

    Looks behind the mask applied to ``scores`` for a comparison of a constant
    key-position ramp (0, 1, 2, ...) with ``input_pos`` shifted by constants,
    e.g. ``ramp > pos - 33``: keys ``pos - 32 .. pos``, i.e. transformers'
    ``sliding_window`` 32 (which admits window + 1 keys).
    """
    stop = lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)  # noqa: E731
    conds = [op.inputs[0] for op in _masking(df, scores) if op.op_name == "SELECT_V2"]
    for cmp in df.walk(conds, False, stop=stop):
        if cmp.op_name not in _COMPARE:
            continue
        ramp_side, inclusive = _COMPARE[cmp.op_name]
        ramp, other = cmp.inputs[ramp_side], cmp.inputs[1 - ramp_side]
        if not df.is_const(ramp) or not _is_ramp(df, ramp):
            continue
        off = _position_offset(df, other)
        if off is not None and off < 0:  # keys pos+off+1 .. pos (or from pos+off inclusive): window + 1 of them
            return -off - 1 + inclusive
    return None


def mask_fill(df: Dataflow, scores: OperatorRecord) -> float | None:
    """The constant a block's mask writes over the scores of hidden keys (``SELECT_V2(mask, scores, fill)``)."""
    for op in _masking(df, scores):
        if op.op_name == "SELECT_V2":
            consts = [df.tensor(df.const_source(c)) for c in df.const_inputs(op)]
            if len(consts) == 1 and consts[0].num_elements == 1 and consts[0].dtype.is_float:
                return float(np.asarray(df.model.tensor_array(consts[0]), dtype=np.float64).reshape(-1)[0])
    return None


def _masking(df: Dataflow, scores: OperatorRecord) -> list[OperatorRecord]:
    """Operators between a block's scores and its softmax (all reached from the scores when it has none)."""
    softmax = df.softmax_after(scores)
    if softmax is None:
        stop = lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)  # noqa: E731
        return list(df.walk(list(scores.outputs), True, stop=stop))
    return df.between(scores.outputs[0], softmax.inputs[0])


def masks_with(df: Dataflow, scores: OperatorRecord, mask: int) -> bool | None:
    """Does graph input ``mask`` reach the softmax of ``scores``? (None: no softmax found.)"""
    softmax = df.softmax_after(scores)
    if softmax is None:
        return None
    stop = lambda o: df.is_weight_matmul(o) or df.is_data_matmul(o)  # noqa: E731
    return any(mask in op.inputs for op in df.walk([softmax.inputs[0]], False, stop=stop))


def _is_ramp(df: Dataflow, t: int) -> bool:
    a = np.asarray(df.model.tensor_array(df.tensor(df.const_source(t)))).reshape(-1)
    return a.size > 1 and bool(np.array_equal(a, np.arange(a.size)))


def _position_offset(df: Dataflow, t: int) -> int | None:
    """``c`` when tensor ``t`` is a graph input (the position) plus constant ``c``."""
    off = 0
    while t in df.producer:
        op = df.producer[t]
        if op.op_name in ("RESHAPE", "CAST", "SQUEEZE", "EXPAND_DIMS"):
            t = op.inputs[0]
            continue
        if op.op_name not in ("ADD", "SUB") or len(df.const_inputs(op)) != 1:
            return None
        c_idx = df.const_inputs(op)[0]
        if op.op_name == "SUB" and c_idx != op.inputs[1]:
            return None
        c = np.asarray(df.model.tensor_array(df.tensor(df.const_source(c_idx)))).reshape(-1)
        if c.size != 1:
            return None
        off += int(c[0]) * (-1 if op.op_name == "SUB" else 1)
        t = next(i for i in op.inputs if i != c_idx)
    return off if t in df.inputs else None
