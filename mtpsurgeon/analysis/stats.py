"""Per-model statistics for the overview: ops, parameters by dtype, quantization."""
from __future__ import annotations

from collections import Counter

from mtpsurgeon.formats.tflite import TFLiteModel


def op_histogram(model: TFLiteModel) -> dict[str, int]:
    """Operator name → count over every subgraph, most frequent first."""
    c = Counter(op.op_name for sg in model.subgraphs for op in sg.operators)
    return dict(c.most_common())


def params_by_dtype(model: TFLiteModel) -> dict[str, dict[str, int]]:
    """dtype → {tensors, params, bytes} over constant tensors."""
    out: dict[str, dict[str, int]] = {}
    for t in model.tensors():
        if not model.has_data(t):
            continue
        row = out.setdefault(t.dtype.name, {"tensors": 0, "params": 0, "bytes": 0})
        row["tensors"] += 1
        row["params"] += t.num_elements
        row["bytes"] += model.stored_size(t)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]["bytes"]))


def quantization_schemes(model: TFLiteModel) -> dict[str, int]:
    """'INT4 per-channel' → count of constant tensors; spurious ones counted apart."""
    c: Counter[str] = Counter()
    for t in model.tensors():
        if not model.has_data(t) or t.quantization is None or t.quantization.scheme == "none":
            continue
        label = f"{t.dtype.name} {t.quantization.scheme}"
        if t.quantization.scheme == "blockwise":
            label += f" (block {t.quantization.block_size})"
        if t.has_spurious_quantization:
            label += " (spurious on float)"
        c[label] += 1
    return dict(c.most_common())


def buffer_storage(model: TFLiteModel) -> dict[str, int]:
    """How buffers are stored: inline, offset (after the flatbuffer), external."""
    c = Counter(b.storage for b in model.buffers)
    c["external"] = len(model.records.external_buffers)
    return {k: v for k, v in c.items() if v}
