"""Learned parameters vs converter constants."""
from __future__ import annotations

from mtpsurgeon.analysis.reachability import quantization_companions
from mtpsurgeon.formats.tflite import TFLiteModel
from mtpsurgeon.formats.tflite.records import TensorRecord


def weight_tensors(model: TFLiteModel, subgraph: int | None = None) -> list[TensorRecord]:
    """Constant tensors that are learned parameters: not INT32/INT64 shape or axis
    vectors, not scalars (eps, fill values), not quantization companions."""
    out = []
    for sg in model.subgraphs if subgraph is None else [model.subgraphs[subgraph]]:
        companions = quantization_companions(model, sg.index)
        out.extend(t for t in sg.tensors if model.has_data(t) and t.dtype.name not in ("INT32", "INT64")
                   and t.num_elements > 1 and t.index not in companions)
    return out
